package flink

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flinkgo/flink/rest"
	"github.com/flinkgo/flink/web"
)

// mountDashboard serves the web dashboard (package web) and the REST
// endpoints it needs beyond the core API, in Flink's shapes:
//
//	GET /                                                the dashboard's page
//	GET /web/{asset}                                     its scripts and styles
//	GET /jobs/{jobid}/plan                               the job's dataflow plan: vertices and their inputs
//	GET /jobs/{jobid}/vertices/{vertexid}/backpressure   a vertex's backpressure per subtask
//	GET /jobs/{jobid}/vertices/{vertexid}/watermarks     a vertex's watermarks per subtask
//
// The page's pattern matches "/" only, so unknown paths still get the
// API's JSON 404.
func (s *RESTServer) mountDashboard(mux *http.ServeMux) {
	ui := web.Handler()
	mux.Handle("GET /{$}", ui) // isDashboardAsset: keep in step
	mux.Handle("GET /web/", ui)
	mux.HandleFunc("GET /jobs/{jobid}/plan", s.getJobPlan)
	sampler := newPressureSampler(time.Now)
	mux.HandleFunc("GET /jobs/{jobid}/vertices/{vertexid}/backpressure", func(w http.ResponseWriter, r *http.Request) {
		s.getBackpressure(w, r, sampler)
	})
	mux.HandleFunc("GET /jobs/{jobid}/vertices/{vertexid}/watermarks", s.getWatermarks)
}

// newRESTPlan describes g as Flink's JSON plan.
func newRESTPlan(id JobID, g *JobGraph) rest.Plan {
	p := rest.Plan{JID: rest.JobID(id), Name: g.Name, Type: "STREAMING", Nodes: make([]rest.PlanNode, 0, len(g.Vertices))}
	for _, v := range g.Vertices {
		n := rest.PlanNode{ID: strconv.Itoa(v.ID), Parallelism: v.Parallelism, Description: v.Name}
		for i, eid := range v.Inputs {
			e := g.Edges[eid]
			n.Inputs = append(n.Inputs, rest.PlanInput{Num: i, ID: strconv.Itoa(e.Source),
				ShipStrategy: e.Partitioner, Exchange: "pipelined_bounded"})
		}
		p.Nodes = append(p.Nodes, n)
	}
	return p
}

func (s *RESTServer) getJobPlan(w http.ResponseWriter, r *http.Request) {
	j, ok := s.lookup(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, rest.JobPlan{Plan: newRESTPlan(j.id, j.graph)})
}

// vertexMetrics answers a request for a vertex of a job: its metrics, or
// an error response (false).
func (s *RESTServer) vertexMetrics(w http.ResponseWriter, r *http.Request) (JobID, int, VertexMetrics, bool) {
	id, ok := parseJobID(w, r)
	if !ok {
		return id, 0, VertexMetrics{}, false
	}
	j, err := s.d.job(id)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("job %s not found", id))
		return id, 0, VertexMetrics{}, false
	}
	raw := r.PathValue("vertexid")
	vertex, err := strconv.Atoi(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid vertex id %q: want a vertex's index", raw))
		return id, 0, VertexMetrics{}, false
	}
	vs, _ := j.jm.vertexMetrics()
	if vertex < 0 || vertex >= len(vs) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("job %s has no vertex %d: it has %d", id, vertex, len(vs)))
		return id, 0, VertexMetrics{}, false
	}
	return id, vertex, vs[vertex], true
}

// getWatermarks answers GET /jobs/{jobid}/vertices/{vertexid}/watermarks as
// Flink: per subtask i, "i.currentInputWatermark" and
// "i.currentOutputWatermark" in Unix milliseconds (Long.MIN_VALUE,
// -9223372036854775808, before the first watermark).
func (s *RESTServer) getWatermarks(w http.ResponseWriter, r *http.Request) {
	_, _, vm, ok := s.vertexMetrics(w, r)
	if !ok {
		return
	}
	out := []rest.Metric{}
	for _, st := range vm.Subtasks {
		out = append(out,
			rest.Metric{ID: fmt.Sprintf("%d.currentInputWatermark", st.Subtask), Value: strconv.FormatInt(st.InputWatermark, 10)},
			rest.Metric{ID: fmt.Sprintf("%d.currentOutputWatermark", st.Subtask), Value: strconv.FormatInt(st.OutputWatermark, 10)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *RESTServer) getBackpressure(w http.ResponseWriter, r *http.Request, sampler *pressureSampler) {
	id, vertex, vm, ok := s.vertexMetrics(w, r)
	if !ok {
		return
	}
	out := rest.BackPressure{Status: "ok", Level: pressureLevel(0), EndTimestamp: millis(sampler.now()),
		Subtasks: []rest.SubtaskBackPressure{}}
	worst := 0.0
	for _, st := range vm.Subtasks {
		if st.State != Running {
			continue
		}
		aid := ExecutionAttemptID{Job: id, Vertex: vertex, Subtask: st.Subtask, Attempt: st.Attempt}
		ratio, idle, measured := sampler.sample(aid, st.BackPressured, st.Idle)
		if !measured {
			out.Status = "deprecated"
			continue
		}
		worst = max(worst, ratio)
		out.Subtasks = append(out.Subtasks, rest.SubtaskBackPressure{Subtask: st.Subtask, Attempt: st.Attempt,
			Level: pressureLevel(ratio), Ratio: ratio, IdleRatio: idle, BusyRatio: max(0, 1-ratio-idle)})
	}
	out.Level = pressureLevel(worst)
	writeJSON(w, http.StatusOK, out)
}

// pressureLevel is Flink's backpressure level for a ratio.
func pressureLevel(ratio float64) string {
	switch {
	case ratio <= 0.1:
		return "ok"
	case ratio <= 0.5:
		return "low"
	}
	return "high"
}

// The window of a backpressure measurement, and how long an attempt's
// samples are kept after it was last asked for.
const (
	pressureWindow = 2 * time.Second
	pressureForget = time.Minute
)

// pressureSampler turns the accumulated back-pressured and idle times that
// TaskManagers report (every second) into shares of wall-clock time, as
// Flink's backPressuredTimeMsPerSecond and idleTimeMsPerSecond: an
// attempt's ratios cover the time between two of its samples at least
// pressureWindow apart. It is safe for concurrent use.
type pressureSampler struct {
	now func() time.Time
	mu  struct {
		sync.Mutex
		seen map[ExecutionAttemptID]*pressureSample
	}
}

type pressureSample struct {
	at       time.Time     // when bp and idle were sampled
	bp, idle time.Duration // accumulated at that time
	// ratio and idleRatio are the last measurement, if measured.
	ratio, idleRatio float64
	measured         bool
}

func newPressureSampler(now func() time.Time) *pressureSampler {
	p := &pressureSampler{now: now}
	p.mu.seen = make(map[ExecutionAttemptID]*pressureSample)
	return p
}

// sample records an attempt's accumulated times and returns its latest
// ratios; measured is false until two samples were far enough apart.
func (p *pressureSampler) sample(id ExecutionAttemptID, bp, idle time.Duration) (ratio, idleRatio float64, measured bool) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.mu.seen {
		if now.Sub(s.at) > pressureForget {
			delete(p.mu.seen, k)
		}
	}
	s := p.mu.seen[id]
	if s == nil {
		p.mu.seen[id] = &pressureSample{at: now, bp: bp, idle: idle}
		return 0, 0, false
	}
	if elapsed := now.Sub(s.at); elapsed >= pressureWindow {
		s.ratio = clamp01(float64(bp-s.bp) / float64(elapsed))
		s.idleRatio = clamp01(float64(idle-s.idle) / float64(elapsed))
		s.at, s.bp, s.idle, s.measured = now, bp, idle, true
	}
	return s.ratio, s.idleRatio, s.measured
}

func clamp01(x float64) float64 { return min(1, max(0, x)) }

// isDashboardAsset reports whether r asks for one of the dashboard's static
// files (the page, its script and style), which hold no cluster data: with
// security on they are served without credentials, and the page asks for a
// token when the API answers 401.
func isDashboardAsset(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/web/"))
}
