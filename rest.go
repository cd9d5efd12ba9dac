package flink

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/rest"
)

// DefaultRESTAddress is where a session cluster serves its REST API unless
// told otherwise: Flink's rest.port 8081, on loopback.
const DefaultRESTAddress = "127.0.0.1:8081"

// maxRESTBody bounds a request body; a job submission is a few hundred bytes.
const maxRESTBody = 1 << 20

// RESTServer serves a LocalCluster's Dispatcher over HTTP with JSON shaped
// like Flink's monitoring REST API, so that clients (the flink CLI, curl,
// scripts written against Flink) can submit, list and cancel jobs:
//
//	GET   /overview                 cluster overview
//	GET   /config                   dashboard configuration and version
//	GET   /jobs                     job ids and statuses
//	POST  /jobs                     run a registered job: {"name", "args", "parallelism"}
//	GET   /jobs/overview            one summary per job
//	GET   /jobs/{jobid}             job details with vertices' records and bytes
//	PATCH /jobs/{jobid}?mode=cancel cancel a job
//	GET   /jobs/{jobid}/exceptions  why a job failed
//	GET   /taskmanagers             registered TaskManagers: slots, memory, network buffers
//	GET   /taskmanagers/{tmid}      one TaskManager
//	GET   /jobs/{jobid}/checkpoints and .../checkpoints/details/{id}
//	POST  /jobs/{jobid}/savepoints, GET /jobs/{jobid}/savepoints/{triggerid}
//	POST  /jobs/{jobid}/stop        stop with a savepoint
//	GET   /jobs/{jobid}/plan, /jobs/{jobid}/vertices/{id}/backpressure
//	GET   /metrics                  metrics, with HandleMetrics (package metrics/prometheus)
//	GET   /                         the web dashboard
//
// Every path is also served under Flink's version prefix /v1. Errors are
// JSON {"errors": ["..."]} with Flink's status codes. Times are
// milliseconds since the Unix epoch and durations milliseconds; -1 marks a
// time that has not happened yet.
//
// Flink submits jobs as JARs; here the binary is the JAR, so POST /jobs
// names a job registered in the cluster's Registry. A job is reported in a
// terminal state only once its result (end time, record counts) is known.
//
// A RESTServer does not own the cluster: close the server, then the
// cluster. It is safe for concurrent use.
type RESTServer struct {
	d        *Dispatcher
	rm       *ResourceManager
	log      *slog.Logger
	handler  http.Handler
	srv      *http.Server
	limits   RESTLimits // see SetLimits
	version  string
	revision string
	metrics  atomic.Pointer[http.Handler] // GET /metrics; see HandleMetrics
}

// NewRESTServer returns a server for the cluster's REST API. Serve it on a
// listener with Serve, or mount Handler in an http.Server of your own.
func NewRESTServer(cluster *LocalCluster) *RESTServer {
	return NewDispatcherRESTServer(cluster.Dispatcher(), cluster.ResourceManager())
}

// NewDispatcherRESTServer returns a REST server for a Dispatcher and the
// ResourceManager of its cluster, such as those of a JobManager Node.
func NewDispatcherRESTServer(d *Dispatcher, rm *ResourceManager) *RESTServer {
	s := &RESTServer{d: d, rm: rm, log: d.log}
	s.version, s.revision = buildVersion()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /overview", s.getOverview)
	mux.HandleFunc("GET /config", s.getConfig)
	mux.HandleFunc("GET /jobs", s.getJobs)
	mux.HandleFunc("POST /jobs", s.postJob)
	mux.HandleFunc("GET /jobs/overview", s.getJobsOverview)
	mux.HandleFunc("GET /jobs/{jobid}", s.getJob)
	mux.HandleFunc("PATCH /jobs/{jobid}", s.patchJob)
	mux.HandleFunc("GET /jobs/{jobid}/exceptions", s.getJobExceptions)
	mux.HandleFunc("GET /taskmanagers", s.getTaskManagers)
	mux.HandleFunc("GET /taskmanagers/{taskmanagerid}", s.getTaskManager)
	s.mountCheckpoints(mux)                        // rest_checkpoints.go: checkpoints, savepoints, stop
	s.mountDashboard(mux)                          // dashboard.go: /, /web/, plan, backpressure
	mux.HandleFunc("GET /metrics", s.serveMetrics) // metrics.go: HandleMetrics
	s.handler = jsonErrors(mux)
	s.SetLimits(DefaultRESTLimits())
	return s
}

// SetLimits replaces the server's limits (DefaultRESTLimits unless set);
// zero fields take their defaults. Call it before Serve.
func (s *RESTServer) SetLimits(l RESTLimits) {
	s.limits = l.withDefaults()
	s.srv = newRESTHTTPServer(s.handler, s.log, s.limits)
}

// newRESTHTTPServer returns an http.Server for h with the REST limits but
// the connection limit, which newLimitListener sets on its listener: a
// client that stalls mid-request is disconnected.
func newRESTHTTPServer(h http.Handler, log *slog.Logger, l RESTLimits) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.HeaderTimeout,
		ReadTimeout:       l.RequestTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Handler returns the REST API as an http.Handler, for tests
// (httptest.NewServer) or to mount next to other handlers.
func (s *RESTServer) Handler() http.Handler { return s.handler }

// Serve accepts connections on l and serves the API until Close or
// Shutdown; it then returns nil. Other errors of l are returned. Serve
// takes ownership of l. Connections beyond the limit (see RESTLimits) are
// closed as soon as they are accepted.
func (s *RESTServer) Serve(l net.Listener) error {
	err := s.srv.Serve(newLimitListener(l, s.limits.MaxConnections, s.log))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits until the requests in
// flight are answered or ctx is done, then closes every connection.
func (s *RESTServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	s.srv.Close()
	return err
}

// Close closes the listeners and every connection at once. It is
// idempotent. Jobs keep running: they belong to the cluster.
func (s *RESTServer) Close() error {
	s.srv.Close()
	return nil
}

func (s *RESTServer) getOverview(w http.ResponseWriter, r *http.Request) {
	tms := s.rm.TaskManagers()
	o := rest.Overview{TaskManagers: len(tms), FlinkVersion: s.version, FlinkCommit: s.revision}
	for _, tm := range tms {
		o.SlotsTotal += tm.SlotsTotal
		o.SlotsAvailable += tm.SlotsFree
	}
	for _, j := range s.d.restSnapshots() {
		switch j.status {
		case JobFinished:
			o.JobsFinished++
		case JobCanceled:
			o.JobsCancelled++
		case JobFailed:
			o.JobsFailed++
		default:
			o.JobsRunning++
		}
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *RESTServer) getConfig(w http.ResponseWriter, r *http.Request) {
	name, offset := time.Now().Zone()
	writeJSON(w, http.StatusOK, rest.DashboardConfig{RefreshInterval: 3000, TimezoneName: name,
		TimezoneOffset: int64(offset) * 1000, FlinkVersion: s.version, FlinkRevision: s.revision})
}

func (s *RESTServer) getJobs(w http.ResponseWriter, r *http.Request) {
	out := rest.JobIDs{Jobs: []rest.JobIDWithStatus{}}
	for _, j := range s.d.restSnapshots() {
		out.Jobs = append(out.Jobs, rest.JobIDWithStatus{ID: rest.JobID(j.id), Status: j.status})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *RESTServer) getJobsOverview(w http.ResponseWriter, r *http.Request) {
	out := rest.JobsOverview{Jobs: []rest.JobOverview{}}
	now := time.Now()
	for _, j := range s.d.restSnapshots() {
		o := rest.JobOverview{JID: rest.JobID(j.id), Name: j.name, State: j.status,
			StartTime: millis(j.start), EndTime: endMillis(j.end), Duration: j.duration(now),
			LastModification: millis(j.lastModified()), Tasks: map[string]int64{"total": 0}}
		for _, st := range stateNames {
			o.Tasks[strings.ToLower(st)] = 0
		}
		for _, states := range j.tasks {
			for _, st := range states {
				o.Tasks[strings.ToLower(st.String())]++
				o.Tasks["total"]++
			}
		}
		out.Jobs = append(out.Jobs, o)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *RESTServer) getJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.lookup(w, r)
	if !ok {
		return
	}
	now := time.Now()
	d := rest.JobDetails{JID: rest.JobID(j.id), Name: j.name, State: j.status, StartTime: millis(j.start),
		EndTime: endMillis(j.end), Duration: j.duration(now), Now: millis(now),
		MaxParallelism: j.graph.Config.MaxParallelism, StatusCounts: zeroStateCounts(), Vertices: []rest.Vertex{}}
	if res := cmp.Or(j.result, j.live); res != nil {
		d.Restarts = res.Restarts
	}
	for _, v := range j.graph.Vertices {
		rv := rest.Vertex{ID: strconv.Itoa(v.ID), Name: v.Name, Parallelism: v.Parallelism,
			MaxParallelism: v.MaxParallelism, Tasks: zeroStateCounts()}
		var states []ExecutionState
		if v.ID < len(j.tasks) {
			states = j.tasks[v.ID]
		}
		for _, st := range states {
			rv.Tasks[st.String()]++
			d.StatusCounts[st.String()]++
		}
		rv.Status = vertexStatus(states).String()
		if res := cmp.Or(j.result, j.live); res != nil {
			done := j.result != nil
			m := &rv.Metrics
			m.ReadBytesComplete, m.WriteBytesComplete, m.ReadRecordsComplete, m.WriteRecordsComplete = done, done, done, done
			for _, vr := range res.Vertices {
				if vr.Vertex == v.ID {
					m.ReadBytes, m.WriteBytes, m.ReadRecords, m.WriteRecords = vr.BytesIn, vr.BytesOut, vr.RecordsIn, vr.RecordsOut
					m.AccumulatedBackPressuredTime, m.AccumulatedIdleTime = vr.BackPressured.Milliseconds(), vr.Idle.Milliseconds()
				}
			}
			for _, o := range res.Operators {
				if o.Vertex == v.ID {
					rv.Operators = append(rv.Operators, rest.OperatorInfo{Name: o.Name, RecordsIn: o.RecordsIn, RecordsOut: o.RecordsOut})
				}
			}
		}
		d.Vertices = append(d.Vertices, rv)
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *RESTServer) getJobExceptions(w http.ResponseWriter, r *http.Request) {
	j, ok := s.lookup(w, r)
	if !ok {
		return
	}
	out := rest.JobExceptions{AllExceptions: []string{}}
	if j.result != nil && j.result.Err != nil {
		out.RootException = j.result.Err.Error()
		out.Timestamp = millis(j.end)
		out.AllExceptions = append(out.AllExceptions, out.RootException)
	}
	writeJSON(w, http.StatusOK, out)
}

// lookup finds the job named by the path, or answers 400 for an id that
// is not a JobID and 404 for an unknown one.
func (s *RESTServer) lookup(w http.ResponseWriter, r *http.Request) (restJob, bool) {
	id, ok := parseJobID(w, r)
	if !ok {
		return restJob{}, false
	}
	j, err := s.d.restSnapshot(id)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("job %s not found", id))
		return restJob{}, false
	}
	return j, true
}

func parseJobID(w http.ResponseWriter, r *http.Request) (JobID, bool) {
	raw := r.PathValue("jobid")
	if _, err := hex.DecodeString(raw); err != nil || len(raw) != 32 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid job id %q: want 32 hex digits", raw))
		return "", false
	}
	return JobID(strings.ToLower(raw)), true
}

func (s *RESTServer) patchJob(w http.ResponseWriter, r *http.Request) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	if mode := r.URL.Query().Get("mode"); mode != "" && mode != "cancel" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unsupported mode %q: want \"cancel\"", mode))
		return
	}
	if err := s.d.CancelJob(r.Context(), id); err != nil {
		if errors.Is(err, ErrUnknownJob) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("job %s not found", id))
			return
		}
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Info("job cancellation requested", "job", id)
	writeJSON(w, http.StatusAccepted, struct{}{})
}

func (s *RESTServer) postJob(w http.ResponseWriter, r *http.Request) {
	req, err := decodeSubmit(http.MaxBytesReader(w, r.Body, maxRESTBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	reg := s.d.registry
	switch {
	case req.Name == "":
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`missing job name: want {"name": one of %s}`, registeredNames(reg)))
		return
	case req.Parallelism < 0:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid parallelism %d: want >= 1, or 0 for the job's default", req.Parallelism))
		return
	case reg == nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown job %q: the cluster has no job registry", req.Name))
		return
	}
	// Build the graph first, to refuse bad arguments and jobs that can never
	// get their slots before anything starts.
	sub := JobSubmission{Name: req.Name, Args: req.Args, Parallelism: req.Parallelism,
		SavepointPath: req.SavepointPath, AllowNonRestoredState: req.AllowNonRestoredState}
	g, err := s.d.buildSubmission(sub)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	total, free, err := s.rm.SlotCounts(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	// A resource provider may start TaskManagers; without one the cluster
	// has all the slots it will ever have.
	if need := g.SlotsNeeded(); need > total && s.rm.provider == nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"job %q needs %d slots, but the cluster has %d in total (%d free): lower its parallelism or add task managers",
			req.Name, need, total, free))
		return
	}
	id, err := s.d.start(r.Context(), g, startOptions{sub: &sub})
	switch {
	case errors.Is(err, ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "the cluster is shutting down")
		return
	case errors.Is(err, ErrStaleLeader):
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case sub.SavepointPath != "" && errors.Is(err, checkpoint.ErrInvalidName):
		// The same words for every path outside the savepoint roots: they
		// tell nothing about what exists there.
		writeError(w, http.StatusBadRequest, "invalid savepoint path: "+invalidNameDetail(err))
		return
	case sub.SavepointPath != "" && errors.Is(err, checkpoint.ErrNotFound):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("no savepoint at %q", sub.SavepointPath))
		return
	case errors.Is(err, ErrUnknownJob), errors.Is(err, ErrInvalidConfig), errors.Is(err, ErrRestoreMismatch),
		errors.Is(err, checkpoint.ErrNotFound), errors.Is(err, ErrNoCheckpointStorage):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Info("job submitted", "job", id, "name", req.Name, "args", req.Args, "parallelism", req.Parallelism)
	w.Header().Set("Location", "/jobs/"+string(id))
	writeJSON(w, http.StatusAccepted, rest.SubmitResponse{JobID: rest.JobID(id)})
}

// decodeSubmit reads exactly one JSON object with only known fields.
func decodeSubmit(body io.Reader) (rest.SubmitRequest, error) {
	var req rest.SubmitRequest
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return req, errors.New(`empty request body: want {"name": "...", "args": [...], "parallelism": n}`)
		}
		return req, fmt.Errorf("invalid request body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, errors.New("invalid request body: data after the JSON object")
	}
	return req, nil
}

func registeredNames(reg *Registry) string {
	if reg == nil {
		return "[] (the cluster has no job registry)"
	}
	return fmt.Sprintf("%q", reg.Names())
}

func (s *RESTServer) getTaskManagers(w http.ResponseWriter, r *http.Request) {
	out := rest.TaskManagers{TaskManagers: []rest.TaskManager{}}
	for _, tm := range s.rm.TaskManagers() {
		out.TaskManagers = append(out.TaskManagers, newRESTTaskManager(tm))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *RESTServer) getTaskManager(w http.ResponseWriter, r *http.Request) {
	id := ResourceID(r.PathValue("taskmanagerid"))
	for _, tm := range s.rm.TaskManagers() {
		if tm.ID == id {
			writeJSON(w, http.StatusOK, newRESTTaskManager(tm))
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("task manager %q not found", id))
}

func newRESTTaskManager(tm TaskManagerInfo) rest.TaskManager {
	mem, buf := tm.Stats.Memory, tm.Stats.Network
	var stuck []rest.StuckTask
	for _, st := range tm.Stats.StuckTasks {
		stuck = append(stuck, rest.StuckTask{Attempt: st.Task.String(), Name: st.Name, Since: millis(st.Since), Stack: st.Stack})
	}
	return rest.TaskManager{ID: string(tm.ID), Path: tm.Address, TimeSinceLastHeartbeat: millis(tm.LastHeartbeat), StuckTasks: stuck,
		SlotsNumber: tm.SlotsTotal, FreeSlots: tm.SlotsFree,
		Metrics: rest.TaskManagerMetrics{
			HeapUsed: mem.HeapUsed, HeapCommitted: mem.HeapCommitted, HeapMax: mem.HeapMax,
			NonHeapUsed: mem.NonHeapUsed, NonHeapCommitted: mem.NonHeapUsed, NonHeapMax: -1,
			MemorySegmentsAvailable: buf.AvailableSegments, MemorySegmentsTotal: buf.TotalSegments,
			NettyShuffleMemorySegmentsAvailable: buf.AvailableSegments, NettyShuffleMemorySegmentsUsed: buf.UsedSegments,
			NettyShuffleMemorySegmentsTotal: buf.TotalSegments, NettyShuffleMemoryAvailable: buf.AvailableMemory(),
			NettyShuffleMemoryUsed: buf.UsedMemory(), NettyShuffleMemoryTotal: buf.TotalMemory(),
			GarbageCollectors: []rest.GarbageCollector{{Name: "go", Count: int64(mem.GCCount), Time: mem.GCTime.Milliseconds()}},
			Goroutines:        tm.Stats.Goroutines,
		}}
}

// restJob is a consistent view of one job for the REST API.
type restJob struct {
	id     JobID
	name   string
	status JobStatus
	start  time.Time
	end    time.Time
	graph  *JobGraph
	result *JobResult
	// live holds the counters reported so far while the job runs.
	live *JobResult
	// tasks[v] holds the execution state of each subtask of vertex v.
	tasks [][]ExecutionState
}

func (j restJob) duration(now time.Time) int64 {
	if j.end.IsZero() {
		return millis(now) - millis(j.start)
	}
	return millis(j.end) - millis(j.start)
}

func (j restJob) lastModified() time.Time {
	if j.end.IsZero() {
		return j.start
	}
	return j.end
}

// restSnapshot describes the job with the given id.
func (d *Dispatcher) restSnapshot(id JobID) (restJob, error) {
	j, err := d.job(id)
	if err != nil {
		return restJob{}, err
	}
	return d.restView(id, j), nil
}

// restSnapshots describes every job, oldest first.
func (d *Dispatcher) restSnapshots() []restJob {
	list, _ := d.ListJobs(context.Background())
	out := make([]restJob, 0, len(list))
	for _, jd := range list {
		if j, err := d.restSnapshot(jd.ID); err == nil {
			out = append(out, j)
		}
	}
	return out
}

// restView reads the job's status before its result, so that a job shows a
// terminal status only with its end time and record counts: between the
// JobManager's last status change and the Dispatcher recording the result,
// the status shown is the step before the end.
func (d *Dispatcher) restView(id JobID, j *dispatchedJob) restJob {
	status := j.jm.Status()
	tasks := j.jm.restTaskStates()
	d.mu.Lock()
	v := restJob{id: id, name: j.jm.graph.Name, status: status, start: j.start, end: j.end,
		graph: j.jm.graph, result: j.result, tasks: tasks}
	d.mu.Unlock()
	switch {
	case v.result != nil:
		v.status = v.result.Status
	case status == JobFinished:
		v.status = JobRunning
	case status == JobCanceled:
		v.status = JobCancelling
	case status == JobFailed:
		v.status = JobFailing
	}
	if v.result == nil {
		v.end = time.Time{}
		v.live = j.jm.result(v.status, nil) // counters reported so far
	}
	return v
}

// restTaskStates returns the execution state of every subtask, per vertex.
func (jm *JobManager) restTaskStates() [][]ExecutionState {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	out := make([][]ExecutionState, len(jm.mu.eg.Subtasks))
	for v, evs := range jm.mu.eg.Subtasks {
		out[v] = make([]ExecutionState, len(evs))
		for i, ev := range evs {
			out[v][i] = ev.State
		}
	}
	return out
}

// vertexStatus aggregates the states of a vertex's subtasks as Flink does:
// a failure or cancellation in progress dominates, then progress.
func vertexStatus(states []ExecutionState) ExecutionState {
	count := make(map[ExecutionState]int, len(stateNames))
	for _, s := range states {
		count[s]++
	}
	n := len(states)
	switch {
	case n == 0:
		return Created
	case count[Failed] > 0:
		return Failed
	case count[Canceling] > 0:
		return Canceling
	case count[Finished] == n:
		return Finished
	case count[Canceled] > 0 && count[Canceled]+count[Finished] == n:
		return Canceled
	case count[Running] > 0:
		return Running
	case count[Deploying] > 0:
		return Deploying
	case count[Scheduled] > 0:
		return Scheduled
	}
	return Created
}

func zeroStateCounts() map[string]int64 {
	m := make(map[string]int64, len(stateNames))
	for _, n := range stateNames {
		m[n] = 0
	}
	return m
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func endMillis(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(rest.ErrorBody{Errors: []string{"encoding the response: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, rest.ErrorBody{Errors: []string{msg}})
}

// jsonErrors serves mux under / and Flink's /v1 prefix, and turns the
// mux's own plain-text 404 and 405 answers into JSON errors.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/"); ok {
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path, u.RawPath = "/"+rest, ""
			r2.URL = &u
			r = r2
		}
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No route: let the mux decide (404, 405 or a redirect) into a
		// buffer, and answer 404 and 405 in JSON.
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			writeError(w, http.StatusNotFound, "Not found: "+r.URL.Path)
		case http.StatusMethodNotAllowed:
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed,
				fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
		default:
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
			w.Write(rec.body.Bytes())
		}
	})
}

// recorder buffers a response of the mux's fallback handlers.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// buildVersion returns this module's version and VCS revision from the
// binary's build information, "devel" and "unknown" when it has none.
func buildVersion() (version, revision string) {
	version, revision = "devel", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, revision
	}
	const module = "github.com/flinkgo/flink"
	mod := &bi.Main
	for _, d := range bi.Deps {
		if d.Path == module {
			mod = d
		}
	}
	if mod.Path == module && mod.Version != "" && mod.Version != "(devel)" {
		version = mod.Version
	}
	if mod == &bi.Main {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	return version, revision
}
