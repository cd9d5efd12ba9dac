package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/rest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testRegistry: "count [n]" sums Generate(n); "forever" runs until
// cancelled; "fail" fails in a map function.
func testRegistry() *flink.Registry {
	reg := flink.NewRegistry()
	reg.MustRegister("count", func(env *flink.Env, args []string) error {
		n := int64(10)
		if len(args) > 0 {
			v, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("argument %q is not a number", args[0])
			}
			if v < 0 {
				return fmt.Errorf("argument %d must be >= 0", v)
			}
			n = v
		}
		nums := flink.Generate(env, n, func(i int64) (int64, error) { return i, nil })
		flink.SinkTo(nums, "discard", flink.SinkFunc(func(int64) error { return nil }))
		return nil
	})
	reg.MustRegister("forever", func(env *flink.Env, args []string) error {
		src := flink.FromSource(env, "ticks", func() flink.Source[int] { return &tickSource{stop: make(chan struct{})} })
		flink.SinkTo(src, "discard", flink.SinkFunc(func(int) error { return nil }))
		return nil
	})
	// "checkpointed" counts numbers per key, checkpointed every 20 ms;
	// "checkpointed-nosums" has its source but not its keyed sums.
	reg.MustRegister("checkpointed", func(env *flink.Env, args []string) error {
		env.Configure(checkpointEvery20ms())
		sums := flink.Reduce(flink.KeyBy(slowNumbers(env), func(v int64) int64 { return v }),
			func(a, b int64) (int64, error) { return a + b, nil }).UID("sums")
		flink.SinkTo(sums, "discard", flink.SinkFunc(func(int64) error { return nil }))
		return nil
	})
	reg.MustRegister("checkpointed-nosums", func(env *flink.Env, args []string) error {
		env.Configure(checkpointEvery20ms())
		flink.SinkTo(slowNumbers(env), "discard", flink.SinkFunc(func(int64) error { return nil }))
		return nil
	})
	// "stuck [timeout]" holds its checkpoint lock until cancelled, so that
	// its savepoints expire after the timeout (default 300ms).
	reg.MustRegister("stuck", func(env *flink.Env, args []string) error {
		timeout := 300 * time.Millisecond
		if len(args) > 0 {
			d, err := time.ParseDuration(args[0])
			if err != nil {
				return err
			}
			timeout = d
		}
		env.Configure(flink.WithCheckpointConfig(flink.CheckpointConfig{Interval: time.Hour,
			Timeout: timeout, TolerableFailures: 1000}))
		src := flink.FromSource(env, "stuck", func() flink.Source[int] { return &stuckSource{stop: make(chan struct{})} })
		flink.SinkTo(src, "discard", flink.SinkFunc(func(int) error { return nil }))
		return nil
	})
	reg.MustRegister("fail", func(env *flink.Env, args []string) error {
		bad := flink.Map(flink.FromSlice(env, []int{1}), func(int) (int, error) { return 0, errors.New("boom") })
		flink.SinkTo(bad, "discard", flink.SinkFunc(func(int) error { return nil }))
		return nil
	})
	return reg
}

// checkpointEvery20ms checkpoints every 20 ms with Flink's other defaults
// (no tolerated checkpoint failures): savepoints triggered among them must
// not fail the job.
func checkpointEvery20ms() flink.Option {
	return flink.WithCheckpointing(20 * time.Millisecond)
}

// slowNumbers generates 0..9 without end, sleeping a little every 100
// records.
func slowNumbers(env *flink.Env) *flink.DataStream[int64] {
	return flink.Generate(env, -1, func(i int64) (int64, error) {
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
		return i % 10, nil
	}).UID("numbers")
}

// stuckSource holds the checkpoint lock until cancelled.
type stuckSource struct {
	stop chan struct{}
	once sync.Once
}

func (s *stuckSource) Run(ctx context.Context, out *flink.SourceContext[int]) error {
	return out.WithCheckpointLock(func(flink.SourceCollector[int]) error {
		select {
		case <-ctx.Done():
		case <-s.stop:
		}
		return nil
	})
}

func (s *stuckSource) Cancel() { s.once.Do(func() { close(s.stop) }) }

type tickSource struct {
	stop chan struct{}
	once sync.Once
}

func (s *tickSource) Run(ctx context.Context, out *flink.SourceContext[int]) error {
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
		if out.Collect(i) != nil {
			return nil
		}
	}
}

func (s *tickSource) Cancel() { s.once.Do(func() { close(s.stop) }) }

// startCluster serves a 2x2-slot cluster's REST API on loopback.
func startCluster(t *testing.T) (*flink.LocalCluster, string) {
	t.Helper()
	cfg := flink.DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.Registry = 2, 2, testRegistry()
	c, err := flink.NewLocalCluster(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	ts := httptest.NewServer(flink.NewRESTServer(c).Handler())
	t.Cleanup(ts.Close)
	return c, ts.URL
}

type result struct {
	code           int
	stdout, stderr string
}

// cmd runs the CLI in process against addr.
func cmd(ctx context.Context, addr string, args ...string) result {
	var out, errOut bytes.Buffer
	c := newCLI(&out, &errOut, func(string) string { return "" })
	c.poll, c.progressEvery = 10*time.Millisecond, 50*time.Millisecond
	code := c.main(ctx, append([]string{"--addr", addr}, args...))
	return result{code, out.String(), errOut.String()}
}

var jobIDRE = regexp.MustCompile(`[0-9a-f]{32}`)

func TestRunAttached(t *testing.T) {
	_, addr := startCluster(t)
	r := cmd(context.Background(), addr, "run", "count", "1000", "-p", "2")
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Contains(t, r.stderr, "Job has been submitted with JobID")
	assert.Contains(t, r.stderr, "FINISHED")
	assert.Regexp(t, `State:\s+FINISHED`, r.stdout)
	assert.Regexp(t, `Source: Generate.*\s2\s+FINISHED\s+1000\s+1000\n\s+Generate\s+0\s+1000\n\s+discard\s+1000\s+0\n`, r.stdout)
}

// TestRunAgainWithOtherArguments runs one job twice with different
// arguments: each run counts its own records.
func TestRunAgainWithOtherArguments(t *testing.T) {
	_, addr := startCluster(t)
	for _, n := range []int{1000, 10, 1000} {
		r := cmd(context.Background(), addr, "run", "count", fmt.Sprint(n), "-p", "2")
		require.Equal(t, 0, r.code, "%+v", r)
		assert.Regexp(t, fmt.Sprintf(`\n\s+Generate\s+0\s+%d\n\s+discard\s+%d\s+0\n`, n, n), r.stdout)
	}
}

func TestRunAttachedJSON(t *testing.T) {
	_, addr := startCluster(t)
	r := cmd(context.Background(), addr, "--output", "json", "run", "-p", "1", "count", "5")
	require.Equal(t, 0, r.code, "%+v", r)
	var d rest.JobDetails
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
	assert.Equal(t, rest.JobFinished, d.State)
	assert.Equal(t, "count", d.Name)
	require.NotEmpty(t, d.Vertices)
	require.NotEmpty(t, d.Vertices[0].Operators)
	assert.EqualValues(t, 5, d.Vertices[0].Operators[0].RecordsOut)
}

func TestRunDetachedInfoList(t *testing.T) {
	c, addr := startCluster(t)
	r := cmd(context.Background(), addr, "run", "--detached", "count", "-p", "1")
	require.Equal(t, 0, r.code, "%+v", r)
	id := jobIDRE.FindString(r.stdout)
	require.NotEmpty(t, id, r.stdout)
	assert.Equal(t, "Job has been submitted with JobID "+id+"\n", r.stdout)
	res, err := c.Dispatcher().JobResult(context.Background(), flink.JobID(id))
	require.NoError(t, err)
	require.Equal(t, flink.JobFinished, res.Status)

	r = cmd(context.Background(), addr, "info", id)
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Regexp(t, `Job:\s+`+id, r.stdout)
	assert.Regexp(t, `Name:\s+count`, r.stdout)
	assert.Regexp(t, `Ended:\s+\d{4}-`, r.stdout)

	r = cmd(context.Background(), addr, "info", id, "--output", "json")
	require.Equal(t, 0, r.code, "%+v", r)
	var d rest.JobDetails
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d))
	assert.Equal(t, rest.JobID(id), d.JID)

	r = cmd(context.Background(), addr, "list")
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Regexp(t, `JOB ID\s+NAME\s+STATE\s+START\s+DURATION`, r.stdout)
	assert.Regexp(t, id+`\s+count\s+FINISHED`, r.stdout)

	r = cmd(context.Background(), addr, "--output=json", "list")
	require.Equal(t, 0, r.code, "%+v", r)
	var o rest.JobsOverview
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &o))
	require.Len(t, o.Jobs, 1)
	assert.Equal(t, rest.JobID(id), o.Jobs[0].JID)

	r = cmd(context.Background(), addr, "run", "-d", "--output", "json", "count")
	require.Equal(t, 0, r.code, "%+v", r)
	var sub rest.SubmitResponse
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sub))
	assert.Len(t, sub.JobID, 32)
}

func TestListEmpty(t *testing.T) {
	_, addr := startCluster(t)
	r := cmd(context.Background(), addr, "list")
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Equal(t, "No jobs.\n", r.stdout)
}

func TestCancel(t *testing.T) {
	c, addr := startCluster(t)
	r := cmd(context.Background(), addr, "run", "forever", "-p", "1", "-d")
	require.Equal(t, 0, r.code, "%+v", r)
	id := jobIDRE.FindString(r.stdout)

	r = cmd(context.Background(), addr, "cancel", id)
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Equal(t, "Cancelled job "+id+".\n", r.stdout)
	res, err := c.Dispatcher().JobResult(context.Background(), flink.JobID(id))
	require.NoError(t, err)
	assert.Equal(t, flink.JobCanceled, res.Status)

	r = cmd(context.Background(), addr, "info", id)
	require.Equal(t, 0, r.code, "info succeeds for a cancelled job: %+v", r)
	assert.Regexp(t, `State:\s+CANCELED`, r.stdout)

	r = cmd(context.Background(), addr, "--output", "json", "cancel", id)
	require.Equal(t, 0, r.code, "%+v", r)
	assert.JSONEq(t, `{"jobid": "`+id+`"}`, r.stdout)
}

// An attached run of a job cancelled by someone else exits 1.
func TestRunAttachedCancelled(t *testing.T) {
	c, addr := startCluster(t)
	done := make(chan result, 1)
	go func() { done <- cmd(context.Background(), addr, "run", "forever", "-p", "1") }()
	var id flink.JobID
	require.Eventually(t, func() bool {
		jobs, _ := c.Dispatcher().ListJobs(context.Background())
		if len(jobs) == 1 {
			id = jobs[0].ID
		}
		return id != ""
	}, 10*time.Second, 5*time.Millisecond)
	r := cmd(context.Background(), addr, "cancel", string(id))
	require.Equal(t, 0, r.code, "%+v", r)
	r = <-done
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Contains(t, r.stderr, "job "+string(id)+" CANCELED")
	assert.Regexp(t, `State:\s+CANCELED`, r.stdout)
}

// Interrupting an attached run leaves the job running and exits 1.
func TestRunAttachedInterrupted(t *testing.T) {
	c, addr := startCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		cl := newCLI(&bytes.Buffer{}, &stderr, func(string) string { return "" })
		cl.poll = 5 * time.Millisecond
		done <- cl.main(ctx, []string{"--addr", addr, "run", "forever", "-p", "1"})
	}()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "RUNNING") }, 10*time.Second, 5*time.Millisecond)
	cancel()
	assert.Equal(t, 1, <-done)
	assert.Contains(t, stderr.String(), "keeps running")
	jobs, err := c.Dispatcher().ListJobs(context.Background())
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, flink.JobRunning, jobs[0].Status)
}

func TestRunFailedJob(t *testing.T) {
	_, addr := startCluster(t)
	r := cmd(context.Background(), addr, "run", "fail", "-p", "1")
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Contains(t, r.stderr, "FAILED")
	assert.Contains(t, r.stderr, "boom")
	assert.Regexp(t, `Cause:.*boom`, r.stdout)
}

func TestServerRefusals(t *testing.T) {
	_, addr := startCluster(t)
	unknown := string(flink.NewJobID())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "nope"}, `flink: unknown job: "nope" (registered: [checkpointed checkpointed-nosums count fail forever stuck]) (HTTP 400)`},
		{[]string{"run", "count", "ten", "-p", "1"}, `argument "ten" is not a number`},
		{[]string{"run", "count", "-p", "99"}, "needs 99 slots, but the cluster has 4 in total (4 free)"},
		{[]string{"info", unknown}, "job " + unknown + " not found (HTTP 404)"},
		{[]string{"cancel", unknown}, "not found (HTTP 404)"},
		{[]string{"info", "xyz"}, "invalid job id"},
		{[]string{"savepoint", unknown}, "job " + unknown + " not found (HTTP 404)"},
		{[]string{"savepoint", unknown, "dir"}, "job " + unknown + " not found (HTTP 404)"},
		{[]string{"stop", unknown}, "job " + unknown + " not found (HTTP 404)"},
		{[]string{"stop", "--savepointPath", "dir", unknown}, "job " + unknown + " not found (HTTP 404)"},
		{[]string{"savepoint", "xyz"}, `invalid job id "xyz": want 32 hex digits (HTTP 400)`},
		{[]string{"stop", "xyz"}, `invalid job id "xyz": want 32 hex digits (HTTP 400)`},
	} {
		r := cmd(context.Background(), addr, tc.args...)
		assert.Equal(t, 1, r.code, "%v: %+v", tc.args, r)
		assert.Contains(t, r.stderr, tc.want, "%v", tc.args)
		assert.Empty(t, r.stdout, "%v", tc.args)
		assert.NotContains(t, r.stderr, "flink: flink:", "one prefix")
	}
}

func TestUsageErrors(t *testing.T) {
	_, addr := startCluster(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"run"}, "run: missing job name"},
		{[]string{"run", "count", "-p", "abc"}, `invalid value "abc"`},
		{[]string{"run", "count", "-p", "-3"}, "parallelism -3"},
		{[]string{"run", "count", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"info"}, "info: missing job id"},
		{[]string{"cancel", "a", "b"}, "want one job id"},
		{[]string{"list", "extra"}, "unexpected arguments"},
		{[]string{"--output", "yaml", "list"}, `unknown output format "yaml"`},
		{[]string{"list", "--addr", "ftp://host:1"}, "scheme must be http or https"},
		{[]string{"run", "count", "--allowNonRestoredState"}, "--allowNonRestoredState needs --fromSavepoint"},
		{[]string{"run", "count", "--fromSavepoint"}, "flag needs an argument: -fromSavepoint"},
		{[]string{"run", "count", "--fromSavepoint="}, "--fromSavepoint needs a savepoint path"},
		{[]string{"savepoint"}, "savepoint: missing job id"},
		{[]string{"savepoint", "a", "b", "c"}, "want a job id and at most one target directory"},
		{[]string{"savepoint", "a", ""}, "empty target directory"},
		{[]string{"savepoint", "a", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"stop"}, "stop: missing job id"},
		{[]string{"stop", "a", "b"}, "stop: want one job id"},
		{[]string{"stop", "a", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"stop", "a", "--savepointPath"}, "flag needs an argument: -savepointPath"},
		{[]string{"stop", "a", "--output", "yaml"}, `unknown output format "yaml"`},
	} {
		r := cmd(context.Background(), addr, tc.args...)
		assert.Equal(t, 2, r.code, "%v: %+v", tc.args, r)
		assert.Contains(t, r.stderr, tc.want, "%v", tc.args)
		assert.Contains(t, r.stderr, "Usage: flink", "%v", tc.args)
	}
	for _, help := range [][]string{{"help"}, {"-h"}, {"run", "--help"}} {
		r := cmd(context.Background(), addr, help...)
		assert.Equal(t, 0, r.code, "%v", help)
		assert.Contains(t, r.stdout, "Usage: flink")
	}
}

// Words after "--" are job arguments even when they look like options.
func TestRunArgumentsAfterDoubleDash(t *testing.T) {
	_, addr := startCluster(t)
	r := cmd(context.Background(), addr, "run", "-p", "1", "count", "--", "-5")
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Contains(t, r.stderr, "argument -5 must be >= 0", "the job, not the CLI, saw -5")
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	for _, args := range [][]string{{"list"}, {"run", "count"}, {"info", string(flink.NewJobID())}, {"cancel", string(flink.NewJobID())},
		{"savepoint", string(flink.NewJobID())}, {"stop", string(flink.NewJobID())}} {
		r := cmd(context.Background(), addr, args...)
		assert.Equal(t, 3, r.code, "%v: %+v", args, r)
		assert.Contains(t, r.stderr, "cannot reach the cluster at http://"+addr, "%v", args)
	}
}

func TestAddressFromEnvironment(t *testing.T) {
	_, addr := startCluster(t)
	var out, errOut bytes.Buffer
	env := map[string]string{"FLINK_REST_ADDR": strings.TrimPrefix(addr, "http://")}
	code := newCLI(&out, &errOut, func(k string) string { return env[k] }).main(context.Background(), []string{"list"})
	assert.Equal(t, 0, code, errOut.String())
	assert.Equal(t, "No jobs.\n", out.String())

	// --addr wins over the environment.
	env["FLINK_REST_ADDR"] = "http://127.0.0.1:1"
	out.Reset()
	code = newCLI(&out, &errOut, func(k string) string { return env[k] }).main(context.Background(), []string{"list", "--addr", addr})
	assert.Equal(t, 0, code, errOut.String())
}

func TestNormalizeAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8081":         "http://127.0.0.1:8081",
		"http://localhost:8081/": "http://localhost:8081",
		"https://flink.example":  "https://flink.example",
	} {
		got, err := normalizeAddr(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	_, err := normalizeAddr("http://")
	assert.Error(t, err)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
