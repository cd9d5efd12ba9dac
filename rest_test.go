package flink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/rest"
)

// restTestRegistry holds the jobs the REST tests run:
//
//	count [n]  sums Generate(n) (default 10); a non-number is a bad argument
//	forever    emits a record every few milliseconds until cancelled
//	fail       fails in its map function
func restTestRegistry() *Registry {
	reg := NewRegistry()
	reg.MustRegister("count", func(env *Env, args []string) error {
		n := int64(10)
		if len(args) > 0 {
			v, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("count: argument %q is not a number", args[0])
			}
			n = v
		}
		nums := Generate(env, n, func(i int64) (int64, error) { return i, nil })
		doubled := Map(nums, func(v int64) (int64, error) { return 2 * v, nil }).Name("double")
		SinkTo(doubled, "discard", SinkFunc(func(int64) error { return nil }))
		return nil
	})
	reg.MustRegister("forever", func(env *Env, args []string) error {
		src := FromSource(env, "ticks", func() Source[int] { return &restTickSource{stop: make(chan struct{})} })
		SinkTo(src, "discard", SinkFunc(func(int) error { return nil }))
		return nil
	})
	reg.MustRegister("checkpointed", func(env *Env, args []string) error {
		env.Configure(WithCheckpointing(20 * time.Millisecond))
		nums := Generate(env, -1, func(i int64) (int64, error) {
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
			return i % 10, nil
		}).UID("numbers")
		sums := Reduce(KeyBy(nums, func(v int64) int64 { return v }), func(a, b int64) (int64, error) { return a + b, nil }).UID("sums")
		SinkTo(sums, "discard", SinkFunc(func(int64) error { return nil }))
		return nil
	})
	reg.MustRegister("eventtime", func(env *Env, args []string) error {
		env.Configure(WithAutoWatermarkInterval(10 * time.Millisecond))
		src := FromSource(env, "ticks", func() Source[int] { return &restTickSource{stop: make(chan struct{})} })
		stamped := AssignTimestampsAndWatermarks(src, ForMonotonousTimestamps[int]().
			WithTimestampAssigner(func(int, int64) int64 { return time.Now().UnixMilli() }))
		SinkTo(stamped.Rebalance(), "discard", SinkFunc(func(int) error { return nil }))
		return nil
	})
	reg.MustRegister("fail", func(env *Env, args []string) error {
		nums := FromSlice(env, []int{1, 2, 3})
		bad := Map(nums, func(v int) (int, error) { return 0, errors.New("boom in map") }).Name("explode")
		SinkTo(bad, "discard", SinkFunc(func(int) error { return nil }))
		return nil
	})
	return reg
}

// restTickSource emits a counter every 5 ms until cancelled.
type restTickSource struct {
	stop chan struct{}
	once sync.Once
}

func (s *restTickSource) Run(ctx context.Context, out *SourceContext[int]) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-s.stop:
			return nil
		case <-t.C:
		}
		if err := out.Collect(i); err != nil {
			return nil
		}
	}
}

func (s *restTickSource) Cancel() { s.once.Do(func() { close(s.stop) }) }

type restFixture struct {
	cluster *LocalCluster
	url     string
	client  *http.Client
}

// newRESTFixture starts a cluster of 2 TaskManagers with 2 slots each and
// its REST API on an httptest server; both are closed when the test ends.
func newRESTFixture(t *testing.T, reg *Registry) *restFixture {
	t.Helper()
	return newRESTFixtureWith(t, reg, nil)
}

// newRESTFixtureWith is newRESTFixture with the cluster's configuration
// changed by tune.
func newRESTFixtureWith(t *testing.T, reg *Registry, tune func(*ClusterConfig)) *restFixture {
	t.Helper()
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.Registry = 2, 2, reg
	if tune != nil {
		tune(&cfg)
	}
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	srv := NewRESTServer(c)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &restFixture{cluster: c, url: ts.URL, client: ts.Client()}
}

// do sends a request and returns the status, the response headers and the
// decoded JSON body.
func (f *restFixture) do(t *testing.T, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	require.NoError(t, err)
	resp, err := f.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"), "%s %s", method, path)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), "%s %s: body %q", method, path, raw)
	return resp.StatusCode, resp.Header, m
}

func (f *restFixture) get(t *testing.T, path string) map[string]any {
	t.Helper()
	status, _, m := f.do(t, http.MethodGet, path, "")
	require.Equal(t, http.StatusOK, status, "GET %s: %v", path, m)
	return m
}

func (f *restFixture) submit(t *testing.T, body string) JobID {
	t.Helper()
	status, h, m := f.do(t, http.MethodPost, "/jobs", body)
	require.Equal(t, http.StatusAccepted, status, "POST /jobs %s: %v", body, m)
	require.Len(t, m, 1)
	id, _ := m["jobid"].(string)
	require.Len(t, id, 32)
	assert.Equal(t, "/jobs/"+id, h.Get("Location"))
	return JobID(id)
}

func (f *restFixture) await(t *testing.T, id JobID) *JobResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := f.cluster.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	return r
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func sortedKeys(ks ...string) []string { slices.Sort(ks); return ks }

func TestRESTOverviewConfigTaskManagers(t *testing.T) {
	f := newRESTFixture(t, restTestRegistry())
	for _, path := range []string{"/overview", "/v1/overview"} {
		o := f.get(t, path)
		assert.Equal(t, sortedKeys("taskmanagers", "slots-total", "slots-available", "jobs-running", "jobs-finished",
			"jobs-cancelled", "jobs-failed", "flink-version", "flink-commit"), keys(o))
		assert.EqualValues(t, 2, o["taskmanagers"])
		assert.EqualValues(t, 4, o["slots-total"])
		assert.EqualValues(t, 4, o["slots-available"])
		for _, k := range []string{"jobs-running", "jobs-finished", "jobs-cancelled", "jobs-failed"} {
			assert.EqualValues(t, 0, o[k], k)
		}
		assert.NotEmpty(t, o["flink-version"])
	}

	c := f.get(t, "/config")
	assert.Equal(t, sortedKeys("refresh-interval", "timezone-name", "timezone-offset", "flink-version", "flink-revision"), keys(c))

	// Memory and network buffers arrive with the first heartbeat, sent
	// right after registration.
	var tms []any
	require.Eventually(t, func() bool {
		tms = f.get(t, "/taskmanagers")["taskmanagers"].([]any)
		for _, x := range tms {
			if x.(map[string]any)["metrics"].(map[string]any)["heapUsed"].(float64) == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "every TaskManager's heartbeat shows its memory")
	require.Len(t, tms, 2)
	for i, x := range tms {
		tm := x.(map[string]any)
		assert.Equal(t, sortedKeys("id", "path", "timeSinceLastHeartbeat", "slotsNumber", "freeSlots", "metrics"), keys(tm))
		assert.Equal(t, fmt.Sprintf("taskmanager-%d", i), tm["id"])
		assert.NotEmpty(t, tm["path"])
		assert.EqualValues(t, 2, tm["slotsNumber"])
		assert.EqualValues(t, 2, tm["freeSlots"])
		assert.InDelta(t, float64(time.Now().UnixMilli()), tm["timeSinceLastHeartbeat"], float64(time.Minute.Milliseconds()))
		m := tm["metrics"].(map[string]any)
		assert.Equal(t, sortedKeys("heapUsed", "heapCommitted", "heapMax", "nonHeapUsed", "nonHeapCommitted", "nonHeapMax",
			"memorySegmentsAvailable", "memorySegmentsTotal", "nettyShuffleMemorySegmentsAvailable",
			"nettyShuffleMemorySegmentsUsed", "nettyShuffleMemorySegmentsTotal", "nettyShuffleMemoryAvailable",
			"nettyShuffleMemoryUsed", "nettyShuffleMemoryTotal", "garbageCollectors", "goroutines"), keys(m))
		assert.Positive(t, m["heapUsed"])
		assert.GreaterOrEqual(t, m["heapCommitted"], m["heapUsed"])
		assert.Positive(t, m["nonHeapUsed"])
		assert.Positive(t, m["goroutines"])
		// No job runs: every one of network.LocalConfig's 256 buffers of
		// 32 KiB is available.
		assert.EqualValues(t, 256, m["nettyShuffleMemorySegmentsTotal"])
		assert.EqualValues(t, 256, m["nettyShuffleMemorySegmentsAvailable"])
		assert.EqualValues(t, 0, m["nettyShuffleMemorySegmentsUsed"])
		assert.EqualValues(t, 256*32<<10, m["nettyShuffleMemoryTotal"])
		assert.Equal(t, m["nettyShuffleMemorySegmentsTotal"], m["memorySegmentsTotal"])
		gcs := m["garbageCollectors"].([]any)
		require.Len(t, gcs, 1)
		assert.Equal(t, "go", gcs[0].(map[string]any)["name"])

		assert.Equal(t, tm["id"], f.get(t, "/taskmanagers/"+tm["id"].(string))["id"])
	}
	status, _, body := f.do(t, http.MethodGet, "/taskmanagers/nobody", "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, []any{`task manager "nobody" not found`}, body["errors"])

	jobs := f.get(t, "/jobs")
	assert.Equal(t, map[string]any{"jobs": []any{}}, jobs)
	assert.Equal(t, map[string]any{"jobs": []any{}}, f.get(t, "/jobs/overview"))
}

func TestRESTSubmitFinishedJob(t *testing.T) {
	f := newRESTFixture(t, restTestRegistry())
	id := f.submit(t, `{"name": "count", "args": ["100"], "parallelism": 2}`)
	r := f.await(t, id)
	require.Equal(t, JobFinished, r.Status)

	d := f.get(t, "/jobs/"+string(id))
	assert.Equal(t, sortedKeys("jid", "name", "state", "start-time", "end-time", "duration", "now", "maxParallelism",
		"restarts", "vertices", "status-counts"), keys(d))
	assert.Equal(t, string(id), d["jid"])
	assert.Equal(t, "count", d["name"])
	assert.Equal(t, "FINISHED", d["state"])
	start, end := d["start-time"].(float64), d["end-time"].(float64)
	assert.Positive(t, start)
	assert.GreaterOrEqual(t, end, start)
	assert.Equal(t, end-start, d["duration"])
	assert.EqualValues(t, 128, d["maxParallelism"])
	vs := d["vertices"].([]any)
	require.NotEmpty(t, vs)
	var total int64
	for i, x := range vs {
		v := x.(map[string]any)
		assert.Equal(t, sortedKeys("id", "name", "parallelism", "maxParallelism", "status", "tasks", "metrics", "operators"), keys(v))
		assert.Equal(t, strconv.Itoa(i), v["id"])
		assert.Equal(t, "FINISHED", v["status"])
		p := v["parallelism"].(float64)
		assert.Equal(t, p, v["tasks"].(map[string]any)["FINISHED"])
		total += int64(p)
		m := v["metrics"].(map[string]any)
		assert.Equal(t, true, m["read-records-complete"])
		assert.Equal(t, true, m["write-records-complete"])
	}
	assert.EqualValues(t, total, d["status-counts"].(map[string]any)["FINISHED"])
	// The operators' counts: 100 records through "double" into the sink.
	var double map[string]any
	for _, x := range vs {
		for _, o := range x.(map[string]any)["operators"].([]any) {
			if op := o.(map[string]any); op["name"] == "double" {
				double = op
			}
		}
	}
	require.NotNil(t, double, "operator double in %v", vs)
	assert.EqualValues(t, 100, double["records-in"])
	assert.EqualValues(t, 100, double["records-out"])

	assert.Equal(t, map[string]any{"jobs": []any{map[string]any{"id": string(id), "status": "FINISHED"}}}, f.get(t, "/jobs"))
	ov := f.get(t, "/jobs/overview")["jobs"].([]any)
	require.Len(t, ov, 1)
	o := ov[0].(map[string]any)
	assert.Equal(t, sortedKeys("jid", "name", "state", "start-time", "end-time", "duration", "last-modification", "tasks"), keys(o))
	assert.Equal(t, "FINISHED", o["state"])
	assert.Equal(t, end, o["last-modification"])
	tasks := o["tasks"].(map[string]any)
	assert.EqualValues(t, total, tasks["total"])
	assert.EqualValues(t, total, tasks["finished"])
	assert.EqualValues(t, 0, tasks["running"])

	assert.EqualValues(t, 1, f.get(t, "/overview")["jobs-finished"])
	assert.Equal(t, map[string]any{"all-exceptions": []any{}, "truncated": false}, f.get(t, "/jobs/"+string(id)+"/exceptions"))
}

// TestRESTVertexBytes runs a keyed shuffle over the network exchange and
// over the in-process one: over the network, the bytes the sources wrote
// are the bytes the reducers read; in one process records are Go values and
// no bytes are counted.
func TestRESTVertexBytes(t *testing.T) {
	const n = 20_000
	reg := NewRegistry()
	reg.MustRegister("shuffle", func(env *Env, args []string) error {
		nums := Generate(env, n, func(i int64) (int64, error) { return i, nil })
		sums := Reduce(KeyBy(nums, func(v int64) int64 { return v % 10 }), func(a, b int64) (int64, error) { return a + b, nil })
		SinkTo(sums, "discard", SinkFunc(func(int64) error { return nil }))
		return nil
	})
	for _, network := range []bool{true, false} {
		t.Run(fmt.Sprintf("network=%v", network), func(t *testing.T) {
			// One slot per TaskManager spreads the job over both, so that
			// with isolated TaskManagers every edge crosses the network.
			f := newRESTFixtureWith(t, reg, func(c *ClusterConfig) { c.IsolatedTaskManagers, c.SlotsPerTaskManager = network, 1 })
			id := f.submit(t, `{"name": "shuffle", "parallelism": 2}`)
			res := f.await(t, id)
			require.NoError(t, res.Err)

			vs := f.get(t, "/jobs/"+string(id))["vertices"].([]any)
			require.Len(t, vs, 2)
			var ms []map[string]any
			for _, v := range vs {
				m := v.(map[string]any)["metrics"].(map[string]any)
				assert.Equal(t, sortedKeys("read-bytes", "read-bytes-complete", "write-bytes", "write-bytes-complete",
					"read-records", "read-records-complete", "write-records", "write-records-complete",
					"accumulated-backpressured-time", "accumulated-idle-time"), keys(m))
				for _, k := range []string{"read-bytes-complete", "write-bytes-complete", "read-records-complete", "write-records-complete"} {
					assert.Equal(t, true, m[k], k)
				}
				ms = append(ms, m)
			}
			src, sums := ms[0], ms[1]
			assert.EqualValues(t, n, src["write-records"])
			assert.EqualValues(t, n, sums["read-records"])
			assert.EqualValues(t, 0, src["read-bytes"], "a source reads no exchange")
			assert.EqualValues(t, 0, sums["write-bytes"], "a sink writes no exchange")
			if network {
				assert.GreaterOrEqual(t, src["write-bytes"], float64(8*n), "at least 8 bytes per int64 record")
				assert.Equal(t, src["write-bytes"], sums["read-bytes"], "every byte written is read")
			} else {
				assert.EqualValues(t, 0, src["write-bytes"])
				assert.EqualValues(t, 0, sums["read-bytes"])
			}

			// The job's result holds the same figures.
			require.Len(t, res.Vertices, 2)
			assert.EqualValues(t, src["write-bytes"], res.Vertices[0].BytesOut)
			assert.EqualValues(t, sums["read-bytes"], res.Vertices[1].BytesIn)
			assert.EqualValues(t, n, res.Vertices[1].RecordsIn)
		})
	}
}

func TestRESTCancelRunningJob(t *testing.T) {
	f := newRESTFixture(t, restTestRegistry())
	id := f.submit(t, `{"name": "forever", "parallelism": 1}`)
	path := "/jobs/" + string(id)
	require.Eventually(t, func() bool {
		d := f.get(t, path)
		v := d["vertices"].([]any)[0].(map[string]any)
		return d["state"] == "RUNNING" && v["status"] == "RUNNING"
	}, 30*time.Second, 10*time.Millisecond)
	d := f.get(t, path)
	assert.EqualValues(t, -1, d["end-time"])
	assert.Equal(t, false, d["vertices"].([]any)[0].(map[string]any)["metrics"].(map[string]any)["read-records-complete"])
	// TaskManagers report counters while the job runs (every second).
	require.Eventually(t, func() bool {
		v := f.get(t, path)["vertices"].([]any)[0].(map[string]any)
		ops, _ := v["operators"].([]any)
		return len(ops) > 0 && ops[0].(map[string]any)["records-out"].(float64) > 0
	}, 30*time.Second, 10*time.Millisecond, "a running job shows its progress")
	o := f.get(t, "/overview")
	assert.EqualValues(t, 1, o["jobs-running"])
	assert.EqualValues(t, 3, o["slots-available"])

	status, _, body := f.do(t, http.MethodPatch, path+"?mode=cancel", "")
	assert.Equal(t, http.StatusAccepted, status)
	assert.Empty(t, body)
	r := f.await(t, id)
	assert.Equal(t, JobCanceled, r.Status)
	assert.Equal(t, "CANCELED", f.get(t, path)["state"])
	ex := f.get(t, path+"/exceptions")
	assert.Contains(t, ex["root-exception"], "canceled")
	assert.Positive(t, ex["timestamp"])
	assert.EqualValues(t, 1, f.get(t, "/overview")["jobs-cancelled"])

	// Cancelling an ended job, with Flink's default mode, is a no-op.
	status, _, _ = f.do(t, http.MethodPatch, path, "")
	assert.Equal(t, http.StatusAccepted, status)
}

func TestRESTFailedJob(t *testing.T) {
	f := newRESTFixture(t, restTestRegistry())
	id := f.submit(t, `{"name": "fail", "parallelism": 1}`)
	require.Equal(t, JobFailed, f.await(t, id).Status)
	d := f.get(t, "/jobs/"+string(id))
	assert.Equal(t, "FAILED", d["state"])
	ex := f.get(t, "/jobs/"+string(id)+"/exceptions")
	assert.Contains(t, ex["root-exception"], "boom in map")
	assert.Contains(t, ex["root-exception"], "explode")
	assert.Len(t, ex["all-exceptions"], 1)
	assert.EqualValues(t, 1, f.get(t, "/overview")["jobs-failed"])
}

func TestRESTSubmitErrors(t *testing.T) {
	f := newRESTFixture(t, restTestRegistry())
	for _, tc := range []struct {
		name, body string
		status     int
		want       []string
	}{
		{"empty body", "", 400, []string{"empty request body"}},
		{"malformed", `{"name": `, 400, []string{"invalid request body"}},
		{"not an object", `[1]`, 400, []string{"invalid request body"}},
		{"unknown field", `{"name": "count", "bogus": 1}`, 400, []string{"invalid request body", `"bogus"`}},
		{"wrong type", `{"name": "count", "parallelism": "2"}`, 400, []string{"invalid request body", "parallelism"}},
		{"two objects", `{"name": "count"} {"name": "count"}`, 400, []string{"data after the JSON object"}},
		{"missing name", `{"args": ["1"]}`, 400, []string{"missing job name", `"count"`, `"forever"`}},
		{"negative parallelism", `{"name": "count", "parallelism": -1}`, 400, []string{"invalid parallelism -1"}},
		{"unknown job", `{"name": "nope", "parallelism": 1}`, 400, []string{`unknown job`, `"nope"`, "count eventtime fail forever"}},
		{"bad arguments", `{"name": "count", "args": ["ten"], "parallelism": 1}`, 400, []string{`argument "ten" is not a number`}},
		{"too many slots", `{"name": "count", "parallelism": 5}`, 503, []string{"needs 5 slots", "4 in total (4 free)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := f.do(t, http.MethodPost, "/jobs", tc.body)
			assert.Equal(t, tc.status, status)
			errs := body["errors"].([]any)
			require.Len(t, errs, 1)
			for _, w := range tc.want {
				assert.Contains(t, errs[0], w)
			}
		})
	}
	assert.Empty(t, f.get(t, "/jobs")["jobs"], "no bad submission may start a job")
}

func TestRESTRequestErrors(t *testing.T) {
	f := newRESTFixture(t, restTestRegistry())
	unknown := string(NewJobID())
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/jobs/" + unknown, 404, "job " + unknown + " not found"},
		{"GET", "/jobs/" + unknown + "/exceptions", 404, "not found"},
		{"PATCH", "/jobs/" + unknown + "?mode=cancel", 404, "not found"},
		{"GET", "/jobs/not-a-job-id", 400, `invalid job id "not-a-job-id"`},
		{"PATCH", "/jobs/xyz", 400, "invalid job id"},
		{"PATCH", "/jobs/" + unknown + "?mode=stop", 400, `unsupported mode "stop"`},
		{"PUT", "/jobs", 405, "method PUT is not allowed on /jobs"},
		{"DELETE", "/overview", 405, "not allowed"},
		{"POST", "/v1/taskmanagers", 405, "not allowed"},
		{"GET", "/nope", 404, "Not found: /nope"},
		{"GET", "/v2/overview", 404, "Not found"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, h, body := f.do(t, tc.method, tc.path, "")
			assert.Equal(t, tc.status, status)
			errs := body["errors"].([]any)
			require.Len(t, errs, 1)
			assert.Contains(t, errs[0], tc.want)
			if status == 405 {
				assert.NotEmpty(t, h.Get("Allow"))
			}
		})
	}
	_, h, _ := f.do(t, "PUT", "/jobs", "")
	assert.Contains(t, h.Get("Allow"), "POST")
	assert.Contains(t, h.Get("Allow"), "GET")
}

func TestRESTNoRegistry(t *testing.T) {
	f := newRESTFixture(t, nil)
	status, _, body := f.do(t, http.MethodPost, "/jobs", `{"name": "count"}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body["errors"].([]any)[0], "no job registry")
}

func TestRESTServeAndClose(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager = 1
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	s := NewRESTServer(c)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + l.Addr().String() + "/overview")
	require.NoError(t, err)
	var o rest.Overview
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&o))
	resp.Body.Close()
	assert.Equal(t, rest.Overview{TaskManagers: 1, SlotsTotal: 1, SlotsAvailable: 1, FlinkVersion: o.FlinkVersion, FlinkCommit: o.FlinkCommit}, o)

	require.NoError(t, s.Close())
	require.NoError(t, <-served)
	require.NoError(t, s.Close(), "Close is idempotent")
	_, err = client.Get("http://" + l.Addr().String() + "/overview")
	require.Error(t, err, "the listener is closed")
}

func TestRESTShutdown(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager = 1
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	s := NewRESTServer(c)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	require.NoError(t, <-served)
}

func TestRESTVertexStatus(t *testing.T) {
	for _, tc := range []struct {
		in   []ExecutionState
		want ExecutionState
	}{
		{nil, Created},
		{[]ExecutionState{Created, Created}, Created},
		{[]ExecutionState{Scheduled, Created}, Scheduled},
		{[]ExecutionState{Deploying, Scheduled}, Deploying},
		{[]ExecutionState{Running, Deploying}, Running},
		{[]ExecutionState{Running, Finished}, Running},
		{[]ExecutionState{Finished, Finished}, Finished},
		{[]ExecutionState{Canceled, Finished}, Canceled},
		{[]ExecutionState{Canceling, Running}, Canceling},
		{[]ExecutionState{Failed, Canceling}, Failed},
	} {
		assert.Equal(t, tc.want, vertexStatus(tc.in), "%v", tc.in)
	}
}

func TestRESTCheckpointsAndSavepoints(t *testing.T) {
	f := newRESTFixture(t, restTestRegistry())
	id := f.submit(t, `{"name": "checkpointed", "parallelism": 2}`)
	base := "/jobs/" + string(id)

	var cps map[string]any
	require.Eventually(t, func() bool {
		status, _, m := f.do(t, http.MethodGet, base+"/checkpoints", "")
		cps = m
		return status == http.StatusOK && m["counts"].(map[string]any)["completed"].(float64) >= 2
	}, 30*time.Second, 10*time.Millisecond)
	assert.ElementsMatch(t, []string{"counts", "summary", "latest", "history"}, keys(cps))
	latest := cps["latest"].(map[string]any)["completed"].(map[string]any)
	assert.Equal(t, "COMPLETED", latest["status"])
	assert.Equal(t, "CHECKPOINT", latest["checkpoint_type"])
	assert.Greater(t, latest["state_size"].(float64), 0.0)
	cid := int64(latest["id"].(float64))
	detail := f.get(t, fmt.Sprintf("%s/checkpoints/details/%d", base, cid))
	assert.Equal(t, float64(cid), detail["id"])

	status, _, m := f.do(t, http.MethodGet, base+"/checkpoints/details/abc", "")
	assert.Equal(t, http.StatusBadRequest, status, "%v", m)
	status, _, m = f.do(t, http.MethodGet, base+"/checkpoints/details/999999", "")
	assert.Equal(t, http.StatusNotFound, status, "%v", m)
	status, _, m = f.do(t, http.MethodGet, "/jobs/"+strings.Repeat("0", 32)+"/checkpoints", "")
	assert.Equal(t, http.StatusNotFound, status, "%v", m)
	status, _, m = f.do(t, http.MethodPost, base+"/savepoints", `{"bogus": 1}`)
	assert.Equal(t, http.StatusBadRequest, status, "%v", m)
	status, _, m = f.do(t, http.MethodGet, base+"/savepoints/nope", "")
	assert.Equal(t, http.StatusNotFound, status, "%v", m)

	// A savepoint, then stop with a savepoint; the job restarts from it.
	poll := func(trigger string) string {
		var op map[string]any
		require.Eventually(t, func() bool {
			m := f.get(t, base+"/savepoints/"+trigger)
			op, _ = m["operation"].(map[string]any)
			return m["status"].(map[string]any)["id"] == "COMPLETED"
		}, 30*time.Second, 10*time.Millisecond)
		require.Nil(t, op["failure-cause"], "%v", op)
		return op["location"].(string)
	}
	// Each savepoint gets a fresh directory inside its target, named as
	// Flink names it; the location is that directory.
	fresh := regexp.MustCompile(`^mem://_savepoints/(manual-sp|stop-sp)/savepoint-` + string(id)[:6] + `-[0-9a-f]{12}$`)
	status, _, m = f.do(t, http.MethodPost, base+"/savepoints", `{"target-directory": "manual-sp", "cancel-job": false}`)
	require.Equal(t, http.StatusAccepted, status, "%v", m)
	manual := poll(m["request-id"].(string))
	assert.Regexp(t, fresh, manual)
	assert.Contains(t, manual, "/manual-sp/")

	status, _, m = f.do(t, http.MethodPost, base+"/stop", `{"targetDirectory": "stop-sp"}`)
	require.Equal(t, http.StatusAccepted, status, "%v", m)
	stopped := poll(m["request-id"].(string))
	assert.Regexp(t, fresh, stopped)
	assert.Contains(t, stopped, "/stop-sp/")
	assert.Equal(t, JobFinished, f.await(t, id).Status)
	status, _, m = f.do(t, http.MethodPost, base+"/savepoints", `{}`)
	assert.Equal(t, http.StatusConflict, status, "a finished job takes no savepoint: %v", m)

	id2 := f.submit(t, fmt.Sprintf(`{"name": "checkpointed", "parallelism": 3, "savepointPath": %q}`, stopped))
	require.Eventually(t, func() bool {
		m := f.get(t, "/jobs/"+string(id2)+"/checkpoints")
		return m["counts"].(map[string]any)["completed"].(float64) >= 1
	}, 30*time.Second, 10*time.Millisecond)
	status, _, m = f.do(t, http.MethodPatch, "/jobs/"+string(id2)+"?mode=cancel", "")
	require.Equal(t, http.StatusAccepted, status, "%v", m)
	f.await(t, id2)

	status, _, m = f.do(t, http.MethodPost, "/jobs", `{"name": "checkpointed", "savepointPath": "missing"}`)
	assert.Equal(t, http.StatusBadRequest, status, "%v", m)
	assert.Equal(t, []any{`no savepoint at "missing"`}, m["errors"])
	status, _, m = f.do(t, http.MethodPost, "/jobs", `{"name": "checkpointed", "savepointPath": "stop-sp"}`)
	assert.Equal(t, http.StatusBadRequest, status, "a target holds savepoints, it is none: %v", m)
}

// The watermarks in Prometheus: metrics/prometheus.TestPrometheusWatermarks.
func TestRESTWatermarks(t *testing.T) {
	f := newRESTFixture(t, restTestRegistry())
	id := f.submit(t, `{"name": "eventtime", "parallelism": 1}`)
	defer f.cluster.Dispatcher().CancelJob(context.Background(), id)
	var got []rest.Metric
	require.Eventually(t, func() bool {
		resp, err := f.client.Get(f.url + "/jobs/" + string(id) + "/vertices/1/watermarks")
		require.NoError(t, err)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		got = nil
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
		for _, m := range got {
			if m.ID == "0.currentInputWatermark" {
				v, err := strconv.ParseInt(m.Value, 10, 64)
				require.NoError(t, err)
				return v > time.Now().Add(-time.Minute).UnixMilli()
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "the sink's input watermark never advanced: %v", got)

	status, _, m := f.do(t, http.MethodGet, "/jobs/"+string(id)+"/vertices/7/watermarks", "")
	assert.Equal(t, http.StatusNotFound, status, "%v", m)
}

// A client that stalls in the middle of a request body is disconnected
// once the read timeout passes (30 s by default; 300 ms here); before, the
// REST server bounded only the headers.
func TestRESTClosesStalledRequestBody(t *testing.T) {
	c, err := NewLocalCluster(DefaultClusterConfig())
	require.NoError(t, err)
	defer c.Close()
	srv := NewRESTServer(c)
	srv.srv.ReadTimeout = 300 * time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() {
		require.NoError(t, srv.Shutdown(context.Background()))
		require.NoError(t, <-done)
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":"))
	require.NoError(t, err)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(conn) // whatever the server answers, it then closes
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server still holds the stalled connection after 20 s")
}
