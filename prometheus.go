package flink

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ClusterMetrics is a snapshot of a cluster's figures, pulled with
// LocalCluster.Metrics or RESTServer.Metrics and exported to Prometheus by
// NewPrometheusCollector.
type ClusterMetrics struct {
	// TaskManagers are the registered TaskManagers, in registration order.
	TaskManagers []TaskManagerMetrics
	// Jobs are the jobs the Dispatcher knows, oldest first, including
	// those that ended.
	Jobs []JobMetrics
}

// TaskManagerMetrics are one TaskManager's slots and, as of its last
// heartbeat, its memory and network buffers.
type TaskManagerMetrics struct {
	ID         ResourceID
	Address    string
	SlotsTotal int
	SlotsFree  int
	// LastHeartbeat is when the TaskManager last sent a heartbeat (or
	// registered); Stats are the figures of that heartbeat, zero before
	// the first.
	LastHeartbeat time.Time
	Stats         TaskManagerStats
}

// JobMetrics are one job's status and its subtasks' counters.
type JobMetrics struct {
	ID   JobID
	Name string
	// Status is the job's status as the REST API reports it: terminal only
	// once the job's result is known.
	Status JobStatus
	Start  time.Time
	// End is zero while the job runs.
	End time.Time
	// Restarts counts restarts of the whole job.
	Restarts int
	// Checkpoints are the job's checkpoint figures; zero without
	// checkpoint storage.
	Checkpoints CheckpointMetrics
	// Vertices are the job's vertices in topological order.
	Vertices []VertexMetrics
}

// CheckpointMetrics are a job's checkpoint counts and its latest completed
// checkpoint, as Flink's checkpointing metrics.
type CheckpointMetrics struct {
	Completed, Failed, InProgress, Restored uint64
	// LastDuration and LastSize describe the latest completed checkpoint.
	LastDuration time.Duration
	LastSize     int64
	// LastRestore is when the job last restored a checkpoint; zero if never.
	LastRestore time.Time
}

// VertexMetrics are one vertex's subtasks.
type VertexMetrics struct {
	ID          int
	Name        string
	Parallelism int
	// Subtasks are the current attempts, by subtask index.
	Subtasks []SubtaskMetrics
}

// SubtaskMetrics are the current attempt of one subtask and its counters
// as its TaskManager last reported them: TaskManagers report running tasks
// every second and a task's final counters when it ends, so the counters
// are zero before the first report and at most a report interval old.
type SubtaskMetrics struct {
	Subtask     int
	Attempt     int
	State       ExecutionState
	TaskManager ResourceID
	// RecordsIn are the records read by the chain's head operator and
	// RecordsOut those written by its tail, as Flink's task-level
	// numRecordsIn and numRecordsOut: a source head reads the records it
	// emits and a sink tail writes the records it receives.
	RecordsIn  int64
	RecordsOut int64
	// BackPressured is the time spent waiting for an output buffer and
	// Idle the time spent waiting for input, accumulated over the attempt.
	BackPressured time.Duration
	Idle          time.Duration
	// BytesIn and BytesOut are the serialized bytes read from the input
	// gate and written to the result partitions, as Flink's numBytesIn and
	// numBytesOut: 0 over the in-process exchange, which passes Go values.
	BytesIn, BytesOut int64
	// InPoolUsage and OutPoolUsage are the shares (0 to 1) of the input
	// gate's and the result partitions' network buffers in use, as Flink's
	// inPoolUsage and outPoolUsage: 0 over the in-process exchange.
	InPoolUsage, OutPoolUsage float64
	// InputWatermark and OutputWatermark are the subtask's current input
	// and output event-time watermarks (Unix ms), MinWatermark before the
	// first: Flink's currentInputWatermark and currentOutputWatermark.
	InputWatermark, OutputWatermark int64
	// Operators are the chained operators' counts, head first.
	Operators []OperatorCounts
}

// Metrics returns a snapshot of the cluster's task managers, jobs and
// their subtasks' counters. It is safe to call concurrently.
func (c *LocalCluster) Metrics() ClusterMetrics { return clusterMetrics(c.dispatcher, c.rm) }

// Metrics returns a snapshot of the served cluster's figures, as
// LocalCluster.Metrics.
func (s *RESTServer) Metrics() ClusterMetrics { return clusterMetrics(s.d, s.rm) }

func clusterMetrics(d *Dispatcher, rm *ResourceManager) ClusterMetrics {
	var m ClusterMetrics
	for _, tm := range rm.TaskManagers() {
		m.TaskManagers = append(m.TaskManagers, TaskManagerMetrics{ID: tm.ID, Address: tm.Address,
			SlotsTotal: tm.SlotsTotal, SlotsFree: tm.SlotsFree, LastHeartbeat: tm.LastHeartbeat, Stats: tm.Stats})
	}
	m.Jobs = d.jobMetrics()
	return m
}

// jobMetrics describes every job, oldest first.
func (d *Dispatcher) jobMetrics() []JobMetrics {
	d.mu.Lock()
	ids := make([]JobID, 0, len(d.mu.jobs))
	jobs := make([]*dispatchedJob, 0, len(d.mu.jobs))
	for id, j := range d.mu.jobs {
		ids = append(ids, id)
		jobs = append(jobs, j)
	}
	d.mu.Unlock()
	out := make([]JobMetrics, 0, len(ids))
	for i, id := range ids {
		v := d.restView(id, jobs[i])
		vs, restarts := jobs[i].jm.vertexMetrics()
		jm := JobMetrics{ID: id, Name: v.name, Status: v.status, Start: v.start, End: v.end,
			Restarts: restarts, Vertices: vs}
		if st, ok := jobs[i].jm.CheckpointStats(); ok {
			jm.Checkpoints = CheckpointMetrics{Completed: st.Counts.Completed, Failed: st.Counts.Failed,
				InProgress: uint64(st.Counts.InProgress), Restored: st.Counts.Restored}
			if c := st.LatestCompleted; c != nil {
				jm.Checkpoints.LastDuration, jm.Checkpoints.LastSize = c.Duration, c.StateSize
			}
			if r := st.LatestRestored; r != nil {
				jm.Checkpoints.LastRestore = r.RestoreTime
			}
		}
		out = append(out, jm)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Start.Before(out[b].Start) })
	return out
}

// vertexMetrics returns the current attempt of every subtask with its last
// reported counters, and the number of restarts.
func (jm *JobManager) vertexMetrics() ([]VertexMetrics, int) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	vs := make([]VertexMetrics, 0, len(jm.graph.Vertices))
	for _, v := range jm.graph.Vertices {
		vm := VertexMetrics{ID: v.ID, Name: v.Name, Parallelism: v.Parallelism}
		for _, ev := range jm.mu.eg.Subtasks[v.ID] {
			sm := SubtaskMetrics{Subtask: ev.Subtask, Attempt: ev.ID.Attempt, State: ev.State, TaskManager: ev.Location,
				InputWatermark: MinWatermark, OutputWatermark: MinWatermark}
			if tm := jm.mu.metrics[ev.ID]; tm != nil {
				sm.BackPressured, sm.Idle = tm.BackPressured, tm.Idle
				sm.BytesIn, sm.BytesOut = tm.BytesIn, tm.BytesOut
				sm.InPoolUsage, sm.OutPoolUsage = usage(tm.InPoolUsed, tm.InPoolSize), usage(tm.OutPoolUsed, tm.OutPoolSize)
				sm.InputWatermark, sm.OutputWatermark = tm.InputWatermark, tm.OutputWatermark
				sm.Operators = slices.Clone(tm.Operators)
				sm.RecordsIn, sm.RecordsOut = v.chainRecords(tm.Operators)
			}
			vm.Subtasks = append(vm.Subtasks, sm)
		}
		vs = append(vs, vm)
	}
	return vs, jm.restartBase + jm.mu.restarts
}

// usage is used/size, 0 for an empty pool.
func usage(used, size int) float64 {
	if size <= 0 {
		return 0
	}
	return min(1, float64(used)/float64(size))
}

// MetricsSource is what NewPrometheusCollector reads on every scrape:
// LocalCluster and RESTServer implement it. Metrics is called concurrently
// and must not block for long; the collector does not modify its result.
type MetricsSource interface {
	Metrics() ClusterMetrics
}

// NewPrometheusCollector returns a prometheus.Collector that reads src on
// every scrape and exports its figures with the names and labels of
// Flink's Prometheus reporter, so that dashboards written for Flink work:
//
//	flink_jobmanager_numRegisteredTaskManagers        gauge
//	flink_jobmanager_taskSlotsTotal                   gauge
//	flink_jobmanager_taskSlotsAvailable               gauge
//	flink_jobmanager_numRunningJobs                   gauge   jobs not yet in a terminal status
//	flink_taskmanager_taskSlotsTotal{tm_id}           gauge
//	flink_taskmanager_taskSlotsAvailable{tm_id}       gauge
//	flink_taskmanager_Status_JVM_Memory_Heap_Used{tm_id}       gauge  bytes of heap objects
//	flink_taskmanager_Status_JVM_Memory_Heap_Committed{tm_id}  gauge  bytes of heap held from the OS
//	flink_taskmanager_Status_JVM_Memory_Heap_Max{tm_id}        gauge  GOMEMLIMIT; -1 without
//	flink_taskmanager_Status_JVM_Memory_NonHeap_Used{tm_id}    gauge  stacks and runtime metadata
//	flink_taskmanager_Status_JVM_GarbageCollector_All_Count{tm_id}  counter  GC cycles
//	flink_taskmanager_Status_JVM_GarbageCollector_All_Time{tm_id}   counter  ms of GC CPU time
//	flink_taskmanager_Status_JVM_Threads_Count{tm_id}          gauge  goroutines
//	flink_taskmanager_Status_Shuffle_Netty_TotalMemorySegments{tm_id}      gauge  network buffers
//	flink_taskmanager_Status_Shuffle_Netty_AvailableMemorySegments{tm_id}  gauge
//	flink_taskmanager_Status_Shuffle_Netty_UsedMemorySegments{tm_id}       gauge
//	flink_taskmanager_Status_Shuffle_Netty_TotalMemory{tm_id}              gauge  bytes
//	flink_taskmanager_Status_Shuffle_Netty_AvailableMemory{tm_id}          gauge  bytes
//	flink_taskmanager_Status_Shuffle_Netty_UsedMemory{tm_id}               gauge  bytes
//	flink_jobmanager_job_status{job_id, job_name, status}  gauge  1 for the job's status, 0 for the others
//	flink_jobmanager_job_uptime{job_id, job_name}     gauge   ms since submission; -1 once ended
//	flink_jobmanager_job_numRestarts{job_id, job_name}  counter
//	flink_jobmanager_job_numberOfCompletedCheckpoints{job_id, job_name}   counter  checkpoints and savepoints
//	flink_jobmanager_job_numberOfFailedCheckpoints{job_id, job_name}      counter
//	flink_jobmanager_job_numberOfInProgressCheckpoints{job_id, job_name}  gauge
//	flink_jobmanager_job_lastCheckpointDuration{job_id, job_name}         gauge  ms
//	flink_jobmanager_job_lastCheckpointSize{job_id, job_name}             gauge  bytes
//	flink_jobmanager_job_lastCheckpointRestoreTimestamp{job_id, job_name} gauge  ms since the epoch; -1 if never
//	flink_taskmanager_job_task_numRecordsIn{task labels}      counter  records read by the chain's head
//	flink_taskmanager_job_task_numRecordsOut{task labels}     counter  records written by the chain's tail
//	flink_taskmanager_job_task_accumulatedBackPressuredTime{task labels}  counter  ms waiting for output buffers
//	flink_taskmanager_job_task_accumulatedIdleTime{task labels}           counter  ms waiting for input
//	flink_taskmanager_job_task_numBytesIn{task labels}        counter  serialized bytes read from the network
//	flink_taskmanager_job_task_numBytesOut{task labels}       counter  serialized bytes written to the network
//	flink_taskmanager_job_task_buffers_inPoolUsage{task labels}   gauge  0 to 1
//	flink_taskmanager_job_task_buffers_outPoolUsage{task labels}  gauge  0 to 1
//	flink_taskmanager_job_task_currentInputWatermark{task labels}  gauge  Unix ms, once the task has one
//	flink_taskmanager_job_task_currentOutputWatermark{task labels} gauge  Unix ms, once the task emitted one
//	flink_taskmanager_job_task_watermarkLag{task labels}      gauge  ms from the output watermark to the wall clock
//	flink_taskmanager_job_task_operator_numRecordsIn{task labels, operator_id, operator_name}   counter
//	flink_taskmanager_job_task_operator_numRecordsOut{task labels, operator_id, operator_name}  counter
//
// The task labels are job_id, job_name, task_id (the vertex's index),
// task_name, subtask_index, task_attempt_num and tm_id, as Flink's; an
// operator_id is "<task_id>.<position in the chain>". Task and operator
// series exist for the current attempt of every subtask of the jobs not
// yet ended: as in Flink, a restart starts new series and an ended job's
// series disappear (its job series remain). Flink's
// backPressuredTimeMsPerSecond and idleTimeMsPerSecond are
// rate(...accumulatedBackPressuredTime[1m]) and
// rate(...accumulatedIdleTime[1m]), and numBytesInPerSecond is
// rate(...numBytesIn[1m]).
//
// The TaskManager figures are those of its last heartbeat (see
// TaskManagerStats); the Go runtime's memory is the process's, so
// TaskManagers sharing a process report the same memory. Only the network
// exchange serializes records: bytes and buffer pool usage are 0 over the
// in-process exchange, as Flink counts no bytes between chained operators.
func NewPrometheusCollector(src MetricsSource) prometheus.Collector {
	return &promCollector{src: src}
}

var (
	jobLabels      = []string{"job_id", "job_name"}
	taskLabels     = []string{"job_id", "job_name", "task_id", "task_name", "subtask_index", "task_attempt_num", "tm_id"}
	operatorLabels = append(slices.Clone(taskLabels), "operator_id", "operator_name")

	descTaskManagers   = prometheus.NewDesc("flink_jobmanager_numRegisteredTaskManagers", "Number of registered TaskManagers.", nil, nil)
	descSlotsTotal     = prometheus.NewDesc("flink_jobmanager_taskSlotsTotal", "Task slots of all registered TaskManagers.", nil, nil)
	descSlotsAvailable = prometheus.NewDesc("flink_jobmanager_taskSlotsAvailable", "Free task slots of all registered TaskManagers.", nil, nil)
	descRunningJobs    = prometheus.NewDesc("flink_jobmanager_numRunningJobs", "Number of jobs not in a terminal status.", nil, nil)
	descTMSlotsTotal   = prometheus.NewDesc("flink_taskmanager_taskSlotsTotal", "Task slots of the TaskManager.", []string{"tm_id"}, nil)
	descTMSlotsFree    = prometheus.NewDesc("flink_taskmanager_taskSlotsAvailable", "Free task slots of the TaskManager.", []string{"tm_id"}, nil)
	descTMHeapUsed     = tmDesc("JVM_Memory_Heap_Used", "Bytes of Go heap objects.")
	descTMHeapCommit   = tmDesc("JVM_Memory_Heap_Committed", "Bytes of Go heap held from the OS.")
	descTMHeapMax      = tmDesc("JVM_Memory_Heap_Max", "The Go soft memory limit (GOMEMLIMIT) in bytes; -1 without one.")
	descTMNonHeapUsed  = tmDesc("JVM_Memory_NonHeap_Used", "Bytes of goroutine stacks, runtime metadata and other non-heap memory.")
	descTMGCCount      = tmDesc("JVM_GarbageCollector_All_Count", "Completed Go garbage collection cycles.")
	descTMGCTime       = tmDesc("JVM_GarbageCollector_All_Time", "Milliseconds of CPU time spent on Go garbage collection.")
	descTMThreads      = tmDesc("JVM_Threads_Count", "Goroutines of the TaskManager's process.")
	descTMSegTotal     = tmDesc("Shuffle_Netty_TotalMemorySegments", "Network buffers of the TaskManager.")
	descTMSegAvail     = tmDesc("Shuffle_Netty_AvailableMemorySegments", "Network buffers held by no partition or gate.")
	descTMSegUsed      = tmDesc("Shuffle_Netty_UsedMemorySegments", "Network buffers held by partitions and gates.")
	descTMMemTotal     = tmDesc("Shuffle_Netty_TotalMemory", "Bytes of the TaskManager's network buffers.")
	descTMMemAvail     = tmDesc("Shuffle_Netty_AvailableMemory", "Bytes of network buffers held by no partition or gate.")
	descTMMemUsed      = tmDesc("Shuffle_Netty_UsedMemory", "Bytes of network buffers held by partitions and gates.")
	descJobStatus      = prometheus.NewDesc("flink_jobmanager_job_status", "1 for the job's current status, 0 for the other statuses.", append(slices.Clone(jobLabels), "status"), nil)
	descJobUptime      = prometheus.NewDesc("flink_jobmanager_job_uptime", "Milliseconds since the job was submitted; -1 once it ended.", jobLabels, nil)
	descJobRestarts    = prometheus.NewDesc("flink_jobmanager_job_numRestarts", "Restarts of the whole job.", jobLabels, nil)
	descCkptCompleted  = prometheus.NewDesc("flink_jobmanager_job_numberOfCompletedCheckpoints", "Completed checkpoints and savepoints.", jobLabels, nil)
	descCkptFailed     = prometheus.NewDesc("flink_jobmanager_job_numberOfFailedCheckpoints", "Failed checkpoints and savepoints.", jobLabels, nil)
	descCkptInProgress = prometheus.NewDesc("flink_jobmanager_job_numberOfInProgressCheckpoints", "Checkpoints in progress.", jobLabels, nil)
	descCkptDuration   = prometheus.NewDesc("flink_jobmanager_job_lastCheckpointDuration", "Milliseconds the latest completed checkpoint took.", jobLabels, nil)
	descCkptSize       = prometheus.NewDesc("flink_jobmanager_job_lastCheckpointSize", "Bytes of state the latest completed checkpoint wrote.", jobLabels, nil)
	descCkptRestored   = prometheus.NewDesc("flink_jobmanager_job_lastCheckpointRestoreTimestamp", "When the job last restored a checkpoint, in milliseconds since the epoch; -1 if never.", jobLabels, nil)
	descTaskIn         = prometheus.NewDesc("flink_taskmanager_job_task_numRecordsIn", "Records read by the task's first operator.", taskLabels, nil)
	descTaskOut        = prometheus.NewDesc("flink_taskmanager_job_task_numRecordsOut", "Records written by the task's last operator.", taskLabels, nil)
	descTaskBytesIn    = prometheus.NewDesc("flink_taskmanager_job_task_numBytesIn", "Serialized bytes the task read from the network exchange.", taskLabels, nil)
	descTaskBytesOut   = prometheus.NewDesc("flink_taskmanager_job_task_numBytesOut", "Serialized bytes the task wrote to the network exchange.", taskLabels, nil)
	descTaskInPool     = prometheus.NewDesc("flink_taskmanager_job_task_buffers_inPoolUsage", "Share of the task's input network buffers in use.", taskLabels, nil)
	descTaskOutPool    = prometheus.NewDesc("flink_taskmanager_job_task_buffers_outPoolUsage", "Share of the task's output network buffers in use.", taskLabels, nil)
	descTaskBP         = prometheus.NewDesc("flink_taskmanager_job_task_accumulatedBackPressuredTime", "Milliseconds the task waited for output buffers.", taskLabels, nil)
	descTaskIdle       = prometheus.NewDesc("flink_taskmanager_job_task_accumulatedIdleTime", "Milliseconds the task waited for input.", taskLabels, nil)
	descTaskInWM       = prometheus.NewDesc("flink_taskmanager_job_task_currentInputWatermark", "The task's input event-time watermark, Unix milliseconds.", taskLabels, nil)
	descTaskOutWM      = prometheus.NewDesc("flink_taskmanager_job_task_currentOutputWatermark", "The last event-time watermark the task emitted, Unix milliseconds.", taskLabels, nil)
	descTaskWMLag      = prometheus.NewDesc("flink_taskmanager_job_task_watermarkLag", "Milliseconds from the task's output watermark to the wall clock.", taskLabels, nil)
	descOperatorIn     = prometheus.NewDesc("flink_taskmanager_job_task_operator_numRecordsIn", "Records read by the operator.", operatorLabels, nil)
	descOperatorOut    = prometheus.NewDesc("flink_taskmanager_job_task_operator_numRecordsOut", "Records written by the operator.", operatorLabels, nil)

	allJobStatuses = []JobStatus{JobCreated, JobRunning, JobFailing, JobFailed, JobCancelling, JobCanceled, JobFinished, JobRestarting, JobSuspended}
)

// tmDesc describes a TaskManager figure named as Flink's
// flink_taskmanager_Status_<name>.
func tmDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("flink_taskmanager_Status_"+name, help, []string{"tm_id"}, nil)
}

// promCollector describes every family it exports; each scrape takes one
// snapshot of its source.
type promCollector struct {
	src MetricsSource
}

// Describe implements prometheus.Collector.
func (c *promCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTaskManagers, descSlotsTotal, descSlotsAvailable, descRunningJobs,
		descTMSlotsTotal, descTMSlotsFree, descTMHeapUsed, descTMHeapCommit, descTMHeapMax, descTMNonHeapUsed,
		descTMGCCount, descTMGCTime, descTMThreads, descTMSegTotal, descTMSegAvail, descTMSegUsed,
		descTMMemTotal, descTMMemAvail, descTMMemUsed, descJobStatus, descJobUptime, descJobRestarts,
		descCkptCompleted, descCkptFailed, descCkptInProgress, descCkptDuration, descCkptSize, descCkptRestored,
		descTaskIn, descTaskOut, descTaskBytesIn, descTaskBytesOut, descTaskInPool, descTaskOutPool, descTaskBP, descTaskIdle, descTaskInWM, descTaskOutWM, descTaskWMLag, descOperatorIn, descOperatorOut} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *promCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.src.Metrics()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}

	var total, free int
	for _, tm := range m.TaskManagers {
		total += tm.SlotsTotal
		free += tm.SlotsFree
		gauge(descTMSlotsTotal, float64(tm.SlotsTotal), string(tm.ID))
		gauge(descTMSlotsFree, float64(tm.SlotsFree), string(tm.ID))
		mem, buf := tm.Stats.Memory, tm.Stats.Network
		gauge(descTMHeapUsed, float64(mem.HeapUsed), string(tm.ID))
		gauge(descTMHeapCommit, float64(mem.HeapCommitted), string(tm.ID))
		gauge(descTMHeapMax, float64(mem.HeapMax), string(tm.ID))
		gauge(descTMNonHeapUsed, float64(mem.NonHeapUsed), string(tm.ID))
		counter(descTMGCCount, float64(mem.GCCount), string(tm.ID))
		counter(descTMGCTime, float64(mem.GCTime.Milliseconds()), string(tm.ID))
		gauge(descTMThreads, float64(tm.Stats.Goroutines), string(tm.ID))
		gauge(descTMSegTotal, float64(buf.TotalSegments), string(tm.ID))
		gauge(descTMSegAvail, float64(buf.AvailableSegments), string(tm.ID))
		gauge(descTMSegUsed, float64(buf.UsedSegments), string(tm.ID))
		gauge(descTMMemTotal, float64(buf.TotalMemory()), string(tm.ID))
		gauge(descTMMemAvail, float64(buf.AvailableMemory()), string(tm.ID))
		gauge(descTMMemUsed, float64(buf.UsedMemory()), string(tm.ID))
	}
	gauge(descTaskManagers, float64(len(m.TaskManagers)))
	gauge(descSlotsTotal, float64(total))
	gauge(descSlotsAvailable, float64(free))

	running := 0
	now := time.Now()
	for _, j := range m.Jobs {
		id := string(j.ID)
		if !j.Status.IsTerminal() {
			running++
		}
		for _, st := range allJobStatuses {
			v := 0.0
			if st == j.Status {
				v = 1
			}
			gauge(descJobStatus, v, id, j.Name, string(st))
		}
		uptime := float64(now.Sub(j.Start).Milliseconds())
		if !j.End.IsZero() {
			uptime = -1
		}
		gauge(descJobUptime, uptime, id, j.Name)
		counter(descJobRestarts, float64(j.Restarts), id, j.Name)
		ck := j.Checkpoints
		counter(descCkptCompleted, float64(ck.Completed), id, j.Name)
		counter(descCkptFailed, float64(ck.Failed), id, j.Name)
		gauge(descCkptInProgress, float64(ck.InProgress), id, j.Name)
		gauge(descCkptDuration, float64(ck.LastDuration.Milliseconds()), id, j.Name)
		gauge(descCkptSize, float64(ck.LastSize), id, j.Name)
		restored := int64(-1)
		if !ck.LastRestore.IsZero() {
			restored = ck.LastRestore.UnixMilli()
		}
		gauge(descCkptRestored, float64(restored), id, j.Name)
		if j.Status.IsTerminal() {
			continue // as in Flink, an ended job's tasks leave the metrics
		}
		for _, v := range j.Vertices {
			taskID := strconv.Itoa(v.ID)
			for _, s := range v.Subtasks {
				labels := []string{id, j.Name, taskID, v.Name, strconv.Itoa(s.Subtask), strconv.Itoa(s.Attempt), string(s.TaskManager)}
				counter(descTaskIn, float64(s.RecordsIn), labels...)
				counter(descTaskOut, float64(s.RecordsOut), labels...)
				counter(descTaskBytesIn, float64(s.BytesIn), labels...)
				counter(descTaskBytesOut, float64(s.BytesOut), labels...)
				gauge(descTaskInPool, s.InPoolUsage, labels...)
				gauge(descTaskOutPool, s.OutPoolUsage, labels...)
				counter(descTaskBP, float64(s.BackPressured.Milliseconds()), labels...)
				counter(descTaskIdle, float64(s.Idle.Milliseconds()), labels...)
				if s.InputWatermark != MinWatermark {
					gauge(descTaskInWM, float64(s.InputWatermark), labels...)
				}
				if wm := s.OutputWatermark; wm != MinWatermark {
					gauge(descTaskOutWM, float64(wm), labels...)
					if wm != MaxWatermark {
						gauge(descTaskWMLag, float64(now.UnixMilli()-wm), labels...)
					}
				}
				for i, o := range s.Operators {
					ol := append(slices.Clone(labels), taskID+"."+strconv.Itoa(i), o.Name)
					counter(descOperatorIn, float64(o.RecordsIn), ol...)
					counter(descOperatorOut, float64(o.RecordsOut), ol...)
				}
			}
		}
	}
	gauge(descRunningJobs, float64(running))
}

// mountMetrics serves GET /metrics: the cluster's figures (see
// NewPrometheusCollector) and the process's Go runtime and process
// metrics, in Prometheus' text format, from a registry of the server's own.
func (s *RESTServer) mountMetrics(mux *http.ServeMux) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewPrometheusCollector(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s},
		ErrorHandling: promhttp.ContinueOnError,
	}))
}

// promLogger sends promhttp's errors to the server's logger.
type promLogger struct{ s *RESTServer }

func (l promLogger) Println(v ...any) { l.s.log.Warn("serving /metrics", "err", fmt.Sprint(v...)) }
