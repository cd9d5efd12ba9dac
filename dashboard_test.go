package flink

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clickCount is a user's running count of clicks.
type clickCount struct {
	User  string
	Count int64
}

// clicksOperators are the operators of the "clicks" job, by vertex:
// a source chained with a map, a keyed reduce chained with a map, and a
// sink of parallelism 1.
var clicksOperators = [][]string{{"Source: clicks", "parse"}, {"count per user", "format"}, {"slow sink"}}

// dashboardTestRegistry holds "clicks": an unbounded Generate source of
// clicks by 50 users, counted per user, into a sink that sleeps a
// millisecond every 50 records, so that the operators before it are
// back-pressured. (A sleep per record would make the sink's rate, and so
// the time a savepoint's barrier needs to pass the queued records, depend
// on the timer's granularity under load: minutes on a saturated machine.)
// It runs until cancelled.
func dashboardTestRegistry() *Registry {
	reg := NewRegistry()
	reg.MustRegister("clicks", func(env *Env, args []string) error {
		clicks := Generate(env, -1, func(i int64) (int64, error) { return i, nil }).Name("clicks")
		parsed := Map(clicks, func(i int64) (clickCount, error) {
			return clickCount{User: fmt.Sprintf("user-%d", i%50), Count: 1}, nil
		}).Name("parse")
		counts := Reduce(KeyBy(parsed, func(c clickCount) string { return c.User }),
			func(a, b clickCount) (clickCount, error) { return clickCount{a.User, a.Count + b.Count}, nil }).Name("count per user")
		lines := Map(counts, func(c clickCount) (string, error) { return fmt.Sprintf("%s %d", c.User, c.Count), nil }).Name("format")
		var n int
		SinkTo(lines, "slow sink", SinkFunc(func(string) error {
			if n++; n%50 == 0 {
				time.Sleep(time.Millisecond)
			}
			return nil
		})).SetParallelism(1)
		return nil
	})
	return reg
}

// runningClicks starts a cluster with the REST API, submits "clicks" with
// parallelism 2 and waits until every subtask runs.
func runningClicks(t *testing.T) (*restFixture, JobID) {
	t.Helper()
	f := newRESTFixture(t, dashboardTestRegistry())
	id := f.submit(t, `{"name": "clicks", "parallelism": 2}`)
	require.Eventually(t, func() bool {
		d := f.get(t, "/jobs/"+string(id))
		return d["state"] == "RUNNING" && d["status-counts"].(map[string]any)["RUNNING"] == float64(5)
	}, 30*time.Second, 10*time.Millisecond, "every subtask of clicks runs")
	return f, id
}

func TestDashboardAssets(t *testing.T) {
	f := newRESTFixture(t, nil)
	fetch := func(path string) (int, http.Header, string) {
		t.Helper()
		resp, err := f.client.Get(f.url + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header, string(b)
	}

	status, h, page := fetch("/")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, h.Get("Content-Type"), "text/html")
	assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'self'")
	assert.Contains(t, page, `src="web/app.js"`)
	assert.Contains(t, page, `href="web/style.css"`)

	assets := map[string]string{"/web/app.js": "javascript", "/web/style.css": "text/css"}
	for path, ctype := range assets {
		status, h, body := fetch(path)
		require.Equal(t, http.StatusOK, status, path)
		assert.Contains(t, h.Get("Content-Type"), ctype, path)
		assets[path] = body
	}
	// Nothing is loaded from outside: no absolute URL but the SVG namespace.
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for path, body := range map[string]string{"/": page, "/web/app.js": assets["/web/app.js"], "/web/style.css": assets["/web/style.css"]} {
		for _, u := range external.FindAllString(body, -1) {
			assert.Equal(t, "http://www.w3.org", u, "%s refers to another site", path)
		}
		assert.NotContains(t, body, "@import", path)
	}

	for _, path := range []string{"/web/", "/web/nope.js", "/web/../rest.go", "/web/index.html"} {
		status, _, _ := fetch(path)
		assert.Equal(t, http.StatusNotFound, status, path)
	}
	// The page does not shadow the API's JSON answers.
	status, _, body := f.do(t, http.MethodGet, "/nope", "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, []any{"Not found: /nope"}, body["errors"])
	assert.EqualValues(t, 2, f.get(t, "/overview")["taskmanagers"])
}

func TestDashboardPlanAndBackpressure(t *testing.T) {
	f, id := runningClicks(t)
	job := "/jobs/" + string(id)

	plan := f.get(t, job+"/plan")["plan"].(map[string]any)
	assert.Equal(t, string(id), plan["jid"])
	assert.Equal(t, "clicks", plan["name"])
	assert.Equal(t, "STREAMING", plan["type"])
	nodes := plan["nodes"].([]any)
	vertices := f.get(t, job)["vertices"].([]any)
	require.Len(t, nodes, 3)
	require.Len(t, vertices, 3)
	wantInputs := [][]map[string]any{
		nil,
		{{"num": 0.0, "id": "0", "ship_strategy": "HASH", "exchange": "pipelined_bounded"}},
		{{"num": 0.0, "id": "1", "ship_strategy": "REBALANCE", "exchange": "pipelined_bounded"}},
	}
	for i, x := range nodes {
		n, v := x.(map[string]any), vertices[i].(map[string]any)
		assert.Equal(t, v["id"], n["id"])
		assert.Equal(t, v["name"], n["description"])
		assert.Equal(t, strings.Join(clicksOperators[i], " -> "), n["description"])
		assert.Equal(t, v["parallelism"], n["parallelism"])
		var inputs []map[string]any
		for _, in := range asSlice(n["inputs"]) {
			inputs = append(inputs, in.(map[string]any))
		}
		assert.Equal(t, wantInputs[i], inputs, "inputs of node %d", i)
	}

	// The first request starts a subtask's measurement; a later one, a
	// window later, has its ratios.
	parallelism := []int{2, 2, 1}
	path := func(v int) string { return fmt.Sprintf("%s/vertices/%d/backpressure", job, v) }
	require.Eventually(t, func() bool {
		done := true
		for v, p := range parallelism {
			bp := f.get(t, path(v))
			done = done && bp["status"] == "ok" && len(bp["subtasks"].([]any)) == p
		}
		return done
	}, 30*time.Second, 100*time.Millisecond, "every vertex's backpressure is measured")
	for v := range parallelism {
		bp := f.get(t, path(v))
		assert.Contains(t, []string{"ok", "low", "high"}, bp["backpressureLevel"])
		assert.Positive(t, bp["end-timestamp"])
		for _, x := range bp["subtasks"].([]any) {
			s := x.(map[string]any)
			assert.Equal(t, sortedKeys("subtask", "attempt-number", "backpressureLevel", "ratio", "idleRatio", "busyRatio"), keys(s))
			for _, k := range []string{"ratio", "idleRatio", "busyRatio"} {
				assert.GreaterOrEqual(t, s[k], 0.0, k)
				assert.LessOrEqual(t, s[k], 1.0, k)
			}
		}
	}

	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{job + "/vertices/x/backpressure", 400, `invalid vertex id "x"`},
		{job + "/vertices/3/backpressure", 404, "has no vertex 3"},
		{"/jobs/" + string(NewJobID()) + "/vertices/0/backpressure", 404, "not found"},
		{"/jobs/" + string(NewJobID()) + "/plan", 404, "not found"},
		{"/jobs/zz/plan", 400, "invalid job id"},
	} {
		status, _, body := f.do(t, http.MethodGet, tc.path, "")
		assert.Equal(t, tc.status, status, tc.path)
		assert.Contains(t, fmt.Sprint(body["errors"]), tc.want, tc.path)
	}
}

func asSlice(x any) []any {
	s, _ := x.([]any)
	return s
}

func TestDashboardPressureSampler(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPressureSampler(func() time.Time { return now })
	a := ExecutionAttemptID{Job: "j", Vertex: 1, Subtask: 0}

	_, _, measured := p.sample(a, 0, 0)
	assert.False(t, measured, "one sample measures nothing")
	now = now.Add(time.Second)
	_, _, measured = p.sample(a, time.Second, 0)
	assert.False(t, measured, "a second is shorter than the window")

	now = now.Add(time.Second) // two seconds since the first sample
	ratio, idle, measured := p.sample(a, 500*time.Millisecond, 1500*time.Millisecond)
	require.True(t, measured)
	assert.InDelta(t, 0.25, ratio, 1e-9)
	assert.InDelta(t, 0.75, idle, 1e-9)

	now = now.Add(time.Second) // within the window: the last measurement
	ratio, _, _ = p.sample(a, 10*time.Second, 0)
	assert.InDelta(t, 0.25, ratio, 1e-9)

	now = now.Add(3 * time.Second) // 4 s since the last measurement; counters are clamped
	ratio, idle, _ = p.sample(a, 20*time.Second, time.Second)
	assert.Equal(t, 1.0, ratio)
	assert.Equal(t, 0.0, idle)

	b := a
	b.Attempt = 1
	p.sample(b, 0, 0)
	now = now.Add(2 * time.Minute)
	p.sample(b, 0, 0)
	p.mu.Lock()
	_, kept := p.mu.seen[a]
	p.mu.Unlock()
	assert.False(t, kept, "an attempt not asked for in a minute is forgotten")

	for ratio, level := range map[float64]string{0: "ok", 0.1: "ok", 0.11: "low", 0.5: "low", 0.51: "high", 1: "high"} {
		assert.Equal(t, level, pressureLevel(ratio), "ratio %v", ratio)
	}
}

// findBrowser returns the path of a Chromium or Chrome binary. Without
// one the test is skipped, except on CI, where it fails: CI must not go
// green by skipping.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	msg := "no browser on PATH (chromium, chromium-browser, google-chrome): run .ci/install-chromium.sh"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; on CI the browser test must run")
	}
	t.Skip(msg)
	return ""
}

// artifactDir is where the test saves files for review: $FLINKGO_ARTIFACTS,
// or a temporary directory.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("FLINKGO_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// startBrowser starts the headless browser at path with opts and returns
// its context; the browser is closed, and waited for, when the test ends.
func startBrowser(t *testing.T, path string, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts = append(append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path)), opts...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	// Start the browser on a context without deadline: the first action's
	// context owns the browser, and each step has its own deadline.
	if err := chromedp.Do(ctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Cleanup(func() {
		// Close the browser gracefully and wait for it, so that none of
		// chromedp's goroutines outlive the test.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		chromedp.Cancel(cctx)
		cancelBrowser()
		cancelAlloc()
	})
	return ctx
}

// TestDashboardBrowser drives the dashboard in a headless Chromium while
// "clicks" runs: the overview counts the cluster, the job list shows the
// job, the job page draws its graph with every operator, records and
// backpressure, and its Cancel button cancels it.
func TestDashboardBrowser(t *testing.T) {
	browser := findBrowser(t)
	dir := artifactDir(t)
	f, id := runningClicks(t)

	ctx := startBrowser(t, browser, chromedp.WindowSize(1400, 1000))

	// step runs actions with a deadline and names the step that failed.
	step := func(name string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		require.NoError(t, chromedp.Do(sctx, actions...), name)
	}
	eval := func(name, js string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Evaluate[string](js))
		require.NoError(t, err, name)
		return s
	}
	poll := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(3*time.Minute))
	}
	screenshot := func(name string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, png, 0o644))
		t.Logf("screenshot: %s", path)
	}
	text := func(sel string) string { return fmt.Sprintf(`(document.querySelector(%q)||{}).textContent`, sel) }

	// The overview counts the task managers, slots and the running job.
	step("overview", time.Minute,
		chromedp.Navigate(f.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#ov-taskmanagers")),
		poll(text("#ov-jobs-running")+` === "1"`))
	assert.Equal(t, "2", eval("task managers", text("#ov-taskmanagers")))
	assert.Equal(t, "4", eval("slots", text("#ov-slots-total")))
	assert.Equal(t, "2", eval("free slots", text("#ov-slots-available")))
	screenshot("dashboard-overview.png")

	// The job list shows the job, running.
	row := fmt.Sprintf(`tr[data-job-id="%s"]`, id)
	step("job list", time.Minute,
		chromedp.Click(chromedp.CSS(`header nav a[href="#/jobs"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+" a")),
		poll(text(row)+`.includes("RUNNING")`))
	rowText := eval("job row", text(row))
	assert.Contains(t, rowText, "clicks")
	assert.Contains(t, rowText, string(id))

	// The job page draws a box per vertex with its operators' names, and
	// the edges between them; records and backpressure appear as the job
	// runs.
	step("job page", time.Minute,
		chromedp.Click(chromedp.CSS(row+" a")),
		chromedp.WaitVisible(chromedp.CSS("#job-graph svg")),
		poll(`document.querySelectorAll("#job-graph g.vertex").length === 3`),
		poll(`/Out [1-9]/.test(`+text(`#job-graph g.vertex[data-vertex-id="0"]`)+`)`),
		poll(`[...document.querySelectorAll("#job-graph g.vertex")].every(g => !g.classList.contains("unknown"))`))
	assert.Equal(t, "clicks", eval("job name", text("#job-name")))
	assert.Equal(t, "RUNNING", eval("job state", text("#job-state")))
	for v, ops := range clicksOperators {
		box := eval("vertex box", fmt.Sprintf(`[...document.querySelectorAll('#job-graph g.vertex[data-vertex-id="%d"] text')].map(t => t.textContent).join("\n")`, v))
		for _, op := range ops {
			assert.Contains(t, strings.Split(box, "\n"), op, "vertex %d shows operator %q", v, op)
		}
		assert.Regexp(t, `Backpressure \d+% \((ok|low|high)\)`, box)
	}
	// The in-process exchange passes Go values: no bytes.
	assert.Equal(t, "0 B", eval("bytes in", text(`#job-vertices tr[data-vertex-id="1"] td.vertex-bytes-in`)))
	assert.Equal(t, "HASH,REBALANCE", eval("edges", `[...document.querySelectorAll("#job-graph text.ship")].map(t => t.textContent).join()`))
	assert.Equal(t, "2", eval("edge paths", `String(document.querySelectorAll("#job-graph path.edge").length)`))
	assert.Equal(t, "No checkpoints.", eval("checkpoints", text("#job-checkpoints")))
	assert.Equal(t, "No exceptions.", eval("exceptions", text("#job-exceptions")))
	screenshot("dashboard-job.png")

	// Trigger savepoint waits for the savepoint and shows where it is; the
	// checkpoints panel then lists it.
	step("savepoint", 3*time.Minute,
		chromedp.Click(chromedp.CSS("#trigger-savepoint")),
		poll(`/^Savepoint (completed|failed)/.test(`+text("#job-message")+`)`))
	assert.Regexp(t, `Savepoint completed: mem://_savepoints/savepoint-[0-9a-f]{6}-[0-9a-f]{12}`, eval("savepoint message", text("#job-message")))
	step("savepoint listed", time.Minute, poll(`/SAVEPOINT/.test(`+text("#job-checkpoints")+`)`))

	// Cancel asks for confirmation, then cancels the job.
	step("cancel", time.Minute,
		chromedp.Click(chromedp.CSS("#cancel-job")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-cancel")),
		chromedp.Click(chromedp.CSS("#confirm-cancel")),
		poll(text("#job-state")+` === "CANCELED"`))
	assert.Equal(t, "Cancellation requested.", eval("cancel message", text("#job-message")))
	assert.Equal(t, "true", eval("cancel disabled", `String(document.querySelector("#cancel-job").disabled)`))
	assert.Equal(t, "CANCELED", f.get(t, "/jobs/"+string(id))["state"])
	assert.Contains(t, eval("exceptions", text("#job-exceptions")), "canceled")
	screenshot("dashboard-job-canceled.png")

	// The task managers page lists both with their slots, heap and network
	// buffers.
	step("task managers", time.Minute,
		chromedp.Click(chromedp.CSS(`header nav a[href="#/taskmanagers"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-tm-id="taskmanager-1"]`)))
	assert.Contains(t, eval("task manager", text(`tr[data-tm-id="taskmanager-0"]`)), "taskmanager-0")
	assert.Regexp(t, `^[\d.]+ (KiB|MiB|GiB) / [\d.]+ (KiB|MiB|GiB)$`, eval("heap", text(`tr[data-tm-id="taskmanager-0"] td.tm-heap`)))
	assert.Regexp(t, `^\d+ / 256 \(8\.0 MiB\)$`, eval("network buffers", text(`tr[data-tm-id="taskmanager-0"] td.tm-buffers`)))
	screenshot("dashboard-taskmanagers.png")
}
