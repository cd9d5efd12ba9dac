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

// TaskManagerMetrics are one TaskManager's slots.
type TaskManagerMetrics struct {
	ID         ResourceID
	Address    string
	SlotsTotal int
	SlotsFree  int
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
	// numRecordsIn and numRecordsOut.
	RecordsIn  int64
	RecordsOut int64
	// BackPressured is the time spent waiting for an output buffer and
	// Idle the time spent waiting for input, accumulated over the attempt.
	BackPressured time.Duration
	Idle          time.Duration
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
			SlotsTotal: tm.SlotsTotal, SlotsFree: tm.SlotsFree})
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
			sm := SubtaskMetrics{Subtask: ev.Subtask, Attempt: ev.ID.Attempt, State: ev.State, TaskManager: ev.Location}
			if tm := jm.mu.metrics[ev.ID]; tm != nil {
				sm.BackPressured, sm.Idle = tm.BackPressured, tm.Idle
				sm.Operators = slices.Clone(tm.Operators)
				if n := len(tm.Operators); n > 0 {
					sm.RecordsIn, sm.RecordsOut = tm.Operators[0].RecordsIn, tm.Operators[n-1].RecordsOut
				}
			}
			vm.Subtasks = append(vm.Subtasks, sm)
		}
		vs = append(vs, vm)
	}
	return vs, jm.mu.restarts
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
// rate(...accumulatedIdleTime[1m]).
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
	descTaskBP         = prometheus.NewDesc("flink_taskmanager_job_task_accumulatedBackPressuredTime", "Milliseconds the task waited for output buffers.", taskLabels, nil)
	descTaskIdle       = prometheus.NewDesc("flink_taskmanager_job_task_accumulatedIdleTime", "Milliseconds the task waited for input.", taskLabels, nil)
	descOperatorIn     = prometheus.NewDesc("flink_taskmanager_job_task_operator_numRecordsIn", "Records read by the operator.", operatorLabels, nil)
	descOperatorOut    = prometheus.NewDesc("flink_taskmanager_job_task_operator_numRecordsOut", "Records written by the operator.", operatorLabels, nil)

	allJobStatuses = []JobStatus{JobCreated, JobRunning, JobFailing, JobFailed, JobCancelling, JobCanceled, JobFinished, JobRestarting, JobSuspended}
)

// promCollector describes every family it exports; each scrape takes one
// snapshot of its source.
type promCollector struct {
	src MetricsSource
}

// Describe implements prometheus.Collector.
func (c *promCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTaskManagers, descSlotsTotal, descSlotsAvailable, descRunningJobs,
		descTMSlotsTotal, descTMSlotsFree, descJobStatus, descJobUptime, descJobRestarts,
		descCkptCompleted, descCkptFailed, descCkptInProgress, descCkptDuration, descCkptSize, descCkptRestored,
		descTaskIn, descTaskOut, descTaskBP, descTaskIdle, descOperatorIn, descOperatorOut} {
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
				counter(descTaskBP, float64(s.BackPressured.Milliseconds()), labels...)
				counter(descTaskIdle, float64(s.Idle.Milliseconds()), labels...)
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
