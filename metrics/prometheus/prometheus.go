// Package prometheus exports a flinkgo cluster's metrics to Prometheus,
// with the names and labels of Flink's Prometheus reporter, so that
// dashboards and alerts written for Flink work.
//
// The root package pulls its figures into plain structs (flink.ClusterMetrics,
// read through flink.MetricsSource) and links no metrics client; import this
// package to serve them on the REST API's GET /metrics:
//
//	srv := flink.NewRESTServer(cluster)
//	srv.HandleMetrics(prometheus.Handler(srv, logger))
//
// or, on a node,
//
//	cfg.MetricsHandler = prometheus.Handler
//
// NewCollector registers the same figures in a registry of your own.
package prometheus

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flinkgo/flink"
)

// NewCollector returns a prometheus.Collector that reads src on
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
// flink.TaskManagerStats); the Go runtime's memory is the process's, so
// TaskManagers sharing a process report the same memory. Only the network
// exchange serializes records: bytes and buffer pool usage are 0 over the
// in-process exchange, as Flink counts no bytes between chained operators.
func NewCollector(src flink.MetricsSource) prometheus.Collector {
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

	jobStatuses = []flink.JobStatus{flink.JobCreated, flink.JobRunning, flink.JobFailing, flink.JobFailed, flink.JobCancelling,
		flink.JobCanceled, flink.JobFinished, flink.JobRestarting, flink.JobSuspended}
)

// tmDesc describes a TaskManager figure named as Flink's
// flink_taskmanager_Status_<name>.
func tmDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("flink_taskmanager_Status_"+name, help, []string{"tm_id"}, nil)
}

// promCollector describes every family it exports; each scrape takes one
// snapshot of its source.
type promCollector struct {
	src flink.MetricsSource
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
		for _, st := range jobStatuses {
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
				if s.InputWatermark != flink.MinWatermark {
					gauge(descTaskInWM, float64(s.InputWatermark), labels...)
				}
				if wm := s.OutputWatermark; wm != flink.MinWatermark {
					gauge(descTaskOutWM, float64(wm), labels...)
					if wm != flink.MaxWatermark {
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

// Handler returns an http.Handler for GET /metrics: src's figures (see
// NewCollector) and the process's Go runtime and process metrics, in
// Prometheus' text format, from a registry of the handler's own. Errors
// while gathering are logged to log (nil: discarded) and the other metrics
// are still served. Its signature is that of NodeConfig.MetricsHandler.
func Handler(src flink.MetricsSource, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}
	if log != nil {
		opts.ErrorLog = promLogger{log}
	}
	return promhttp.HandlerFor(reg, opts)
}

// promLogger sends promhttp's errors to a logger.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn("serving /metrics", "err", fmt.Sprint(v...)) }
