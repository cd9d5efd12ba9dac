package flink

import (
	"net/http"
	"slices"
	"sort"
	"time"
)

// ClusterMetrics is a snapshot of a cluster's figures, pulled with
// LocalCluster.Metrics or RESTServer.Metrics. Package metrics/prometheus
// exports them to Prometheus (see RESTServer.HandleMetrics and
// NodeConfig.MetricsHandler).
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

// MetricsSource is what a metrics exporter, such as package
// metrics/prometheus, reads on every scrape: LocalCluster and RESTServer
// implement it. Metrics is called concurrently and must not block for
// long; exporters do not modify its result.
type MetricsSource interface {
	Metrics() ClusterMetrics
}

// allJobStatuses are the job statuses, in Flink's order.
var allJobStatuses = []JobStatus{JobCreated, JobRunning, JobFailing, JobFailed, JobCancelling, JobCanceled, JobFinished, JobRestarting, JobSuspended}

// HandleMetrics serves GET /metrics with h, such as the handler of
// package github.com/flinkgo/flink/metrics/prometheus:
//
//	srv.HandleMetrics(prometheus.Handler(srv, logger))
//
// Without it, GET /metrics answers 404: the root package links no metrics
// client. Call it before Serve; it is safe for concurrent use.
func (s *RESTServer) HandleMetrics(h http.Handler) { s.metrics.Store(&h) }

// serveMetrics answers GET /metrics with the handler of HandleMetrics.
func (s *RESTServer) serveMetrics(w http.ResponseWriter, r *http.Request) {
	h := s.metrics.Load()
	if h == nil || *h == nil {
		writeError(w, http.StatusNotFound, "metrics are not exported: serve them with RESTServer.HandleMetrics or NodeConfig.MetricsHandler "+
			"(package github.com/flinkgo/flink/metrics/prometheus)")
		return
	}
	(*h).ServeHTTP(w, r)
}
