package rest

// ErrorBody is the body of every error response, as Flink's ErrorResponseBody.
type ErrorBody struct {
	Errors []string `json:"errors"`
}

// Overview is the body of GET /overview, as Flink's ClusterOverview.
type Overview struct {
	TaskManagers   int    `json:"taskmanagers"`
	SlotsTotal     int    `json:"slots-total"`
	SlotsAvailable int    `json:"slots-available"`
	JobsRunning    int    `json:"jobs-running"`
	JobsFinished   int    `json:"jobs-finished"`
	JobsCancelled  int    `json:"jobs-cancelled"`
	JobsFailed     int    `json:"jobs-failed"`
	FlinkVersion   string `json:"flink-version"`
	FlinkCommit    string `json:"flink-commit"`
}

// DashboardConfig is the body of GET /config, as Flink's dashboard configuration.
type DashboardConfig struct {
	RefreshInterval int64  `json:"refresh-interval"`
	TimezoneName    string `json:"timezone-name"`
	TimezoneOffset  int64  `json:"timezone-offset"`
	FlinkVersion    string `json:"flink-version"`
	FlinkRevision   string `json:"flink-revision"`
}

// JobIDs is the body of GET /jobs.
type JobIDs struct {
	Jobs []JobIDWithStatus `json:"jobs"`
}

// JobIDWithStatus is one job of GET /jobs.
type JobIDWithStatus struct {
	ID     JobID     `json:"id"`
	Status JobStatus `json:"status"`
}

// JobsOverview is the body of GET /jobs/overview.
type JobsOverview struct {
	Jobs []JobOverview `json:"jobs"`
}

// JobOverview summarizes one job, as Flink's JobDetails in
// /jobs/overview. Tasks counts subtasks per lower-case execution state and
// "total".
type JobOverview struct {
	JID              JobID            `json:"jid"`
	Name             string           `json:"name"`
	State            JobStatus        `json:"state"`
	StartTime        int64            `json:"start-time"`
	EndTime          int64            `json:"end-time"`
	Duration         int64            `json:"duration"`
	LastModification int64            `json:"last-modification"`
	Tasks            map[string]int64 `json:"tasks"`
}

// JobDetails is the body of GET /jobs/{jobid}, as Flink's JobDetailsInfo.
// StatusCounts counts subtasks per execution state. Restarts is our
// addition: how often the whole job restarted.
type JobDetails struct {
	JID            JobID            `json:"jid"`
	Name           string           `json:"name"`
	State          JobStatus        `json:"state"`
	StartTime      int64            `json:"start-time"`
	EndTime        int64            `json:"end-time"`
	Duration       int64            `json:"duration"`
	Now            int64            `json:"now"`
	MaxParallelism int              `json:"maxParallelism"`
	Restarts       int              `json:"restarts"`
	Vertices       []Vertex         `json:"vertices"`
	StatusCounts   map[string]int64 `json:"status-counts"`
}

// AllRunning reports whether the job runs with every subtask of every
// vertex running: what a client waits for after submitting a job or after
// a failover.
func (d JobDetails) AllRunning() bool {
	if d.State != JobRunning || len(d.Vertices) == 0 {
		return false
	}
	for _, v := range d.Vertices {
		if int(v.Tasks["RUNNING"]) != v.Parallelism {
			return false
		}
	}
	return true
}

// Vertex is one vertex of a job, as Flink's JobVertexDetailsInfo. ID is
// the vertex's index in the JobGraph. Tasks counts its subtasks per
// execution state. Metrics and Operators (our addition: every chained
// operator's counts) are complete once the job ended.
type Vertex struct {
	ID             string           `json:"id"`
	Name           string           `json:"name"`
	Parallelism    int              `json:"parallelism"`
	MaxParallelism int              `json:"maxParallelism"`
	Status         string           `json:"status"`
	Tasks          map[string]int64 `json:"tasks"`
	Metrics        VertexMetrics    `json:"metrics"`
	Operators      []OperatorInfo   `json:"operators,omitempty"`
}

// VertexMetrics are a vertex's input and output summed over its
// subtasks, as Flink's IOMetricsInfo: records read by the chain's head and
// written by its tail; serialized bytes read from and written to the
// network exchange (0 over the in-process exchange, which passes Go
// values, as Flink counts no bytes between chained operators); and the
// milliseconds the subtasks waited for output buffers and for input. The
// *-complete flags are set once the job ended and the counts are final.
type VertexMetrics struct {
	ReadBytes                    int64 `json:"read-bytes"`
	ReadBytesComplete            bool  `json:"read-bytes-complete"`
	WriteBytes                   int64 `json:"write-bytes"`
	WriteBytesComplete           bool  `json:"write-bytes-complete"`
	ReadRecords                  int64 `json:"read-records"`
	ReadRecordsComplete          bool  `json:"read-records-complete"`
	WriteRecords                 int64 `json:"write-records"`
	WriteRecordsComplete         bool  `json:"write-records-complete"`
	AccumulatedBackPressuredTime int64 `json:"accumulated-backpressured-time"`
	AccumulatedIdleTime          int64 `json:"accumulated-idle-time"`
}

// OperatorInfo is one chained operator's record counts summed over its
// subtasks.
type OperatorInfo struct {
	Name       string `json:"name"`
	RecordsIn  int64  `json:"records-in"`
	RecordsOut int64  `json:"records-out"`
}

// JobExceptions is the body of GET /jobs/{jobid}/exceptions. RootException
// is empty unless the job failed or was cancelled.
type JobExceptions struct {
	RootException string   `json:"root-exception,omitempty"`
	Timestamp     int64    `json:"timestamp,omitempty"`
	AllExceptions []string `json:"all-exceptions"`
	Truncated     bool     `json:"truncated"`
}

// SubmitRequest is the body of POST /jobs: run the job registered as
// Name with Args; Parallelism above 0 overrides the job's default.
type SubmitRequest struct {
	Name        string   `json:"name"`
	Args        []string `json:"args,omitempty"`
	Parallelism int      `json:"parallelism,omitempty"`
	// SavepointPath and AllowNonRestoredState start the job from a
	// savepoint, as Flink's JarRunRequestBody.
	SavepointPath         string `json:"savepointPath,omitempty"`
	AllowNonRestoredState bool   `json:"allowNonRestoredState,omitempty"`
}

// SubmitResponse is the body of a 202 answer to POST /jobs.
type SubmitResponse struct {
	JobID JobID `json:"jobid"`
}

// TaskManagers is the body of GET /taskmanagers.
type TaskManagers struct {
	TaskManagers []TaskManager `json:"taskmanagers"`
}

// TaskManager describes one TaskManager, as Flink's TaskManagerInfo
// and, with its metrics, TaskManagerDetailsInfo (here GET /taskmanagers
// shows the metrics too). TimeSinceLastHeartbeat is, as in Flink despite
// its name, when the last heartbeat arrived (ms since the epoch).
type TaskManager struct {
	ID                     string             `json:"id"`
	Path                   string             `json:"path"`
	TimeSinceLastHeartbeat int64              `json:"timeSinceLastHeartbeat"`
	SlotsNumber            int                `json:"slotsNumber"`
	FreeSlots              int                `json:"freeSlots"`
	Metrics                TaskManagerMetrics `json:"metrics"`
	// StuckTasks are the cancelled subtasks whose user code has not
	// returned after the TaskManager's cancellation interval (our
	// addition: Flink kills the TaskManager's process instead).
	StuckTasks []StuckTask `json:"stuckTasks,omitempty"`
}

// StuckTask is a cancelled subtask that still runs user code.
type StuckTask struct {
	// Attempt names the subtask's attempt, as in the logs.
	Attempt string `json:"attempt"`
	// Name is the task's name.
	Name string `json:"name"`
	// Since is when it was asked to stop, in ms since the epoch.
	Since int64 `json:"since"`
	// Stack is the stack of the goroutines running its user code.
	Stack string `json:"stack"`
}

// TaskManagerMetrics are a TaskManager's memory and network buffers as
// of its last heartbeat, as Flink's TaskManagerMetricsInfo, with the Go
// runtime's figures in the JVM's places (see flink.MemoryStats): the heap is
// Go's heap, non-heap the rest the runtime holds (committed = used; max
// -1), and one garbage collector named "go". Sizes are bytes; the
// memorySegments* fields are Flink's older names of the
// nettyShuffleMemorySegments* ones. Goroutines is our addition.
type TaskManagerMetrics struct {
	HeapUsed                            int64              `json:"heapUsed"`
	HeapCommitted                       int64              `json:"heapCommitted"`
	HeapMax                             int64              `json:"heapMax"`
	NonHeapUsed                         int64              `json:"nonHeapUsed"`
	NonHeapCommitted                    int64              `json:"nonHeapCommitted"`
	NonHeapMax                          int64              `json:"nonHeapMax"`
	MemorySegmentsAvailable             int                `json:"memorySegmentsAvailable"`
	MemorySegmentsTotal                 int                `json:"memorySegmentsTotal"`
	NettyShuffleMemorySegmentsAvailable int                `json:"nettyShuffleMemorySegmentsAvailable"`
	NettyShuffleMemorySegmentsUsed      int                `json:"nettyShuffleMemorySegmentsUsed"`
	NettyShuffleMemorySegmentsTotal     int                `json:"nettyShuffleMemorySegmentsTotal"`
	NettyShuffleMemoryAvailable         int64              `json:"nettyShuffleMemoryAvailable"`
	NettyShuffleMemoryUsed              int64              `json:"nettyShuffleMemoryUsed"`
	NettyShuffleMemoryTotal             int64              `json:"nettyShuffleMemoryTotal"`
	GarbageCollectors                   []GarbageCollector `json:"garbageCollectors"`
	Goroutines                          int                `json:"goroutines"`
}

// GarbageCollector is a garbage collector's cycles and the
// milliseconds (of CPU time, for Go's concurrent collector) it took.
type GarbageCollector struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
	Time  int64  `json:"time"`
}
