package rest_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/rest"
	"github.com/flinkgo/flink/security"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// session starts a local cluster with a job "forever" (runs until
// cancelled, with keyed state so that it takes savepoints) and serves its
// REST API; it returns a client of it and the cluster.
func session(t *testing.T) (*rest.Client, *flink.LocalCluster) {
	t.Helper()
	reg := flink.NewRegistry()
	reg.MustRegister("forever", func(env *flink.Env, args []string) error {
		env.Configure(flink.WithCheckpointing(time.Hour))
		nums := flink.Generate(env, -1, func(i int64) (int64, error) {
			time.Sleep(time.Millisecond)
			return i % 4, nil
		})
		sums := flink.Reduce(flink.KeyBy(nums, func(v int64) int64 { return v }),
			func(a, b int64) (int64, error) { return a + b, nil }).UID("sums")
		flink.SinkTo(sums, "discard", flink.SinkFunc(func(int64) error { return nil }))
		return nil
	})
	cfg := flink.DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.Registry = 1, 2, reg
	c, err := flink.NewLocalCluster(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(flink.NewRESTServer(c).Handler())
	cl, err := rest.NewClient(srv.URL + "/")
	require.NoError(t, err)
	t.Cleanup(func() {
		cl.CloseIdleConnections()
		srv.Close()
		c.Close()
	})
	require.Equal(t, srv.URL, cl.Addr(), "the trailing slash is dropped")
	return cl, c
}

// awaitRunning polls the job until every subtask runs.
func awaitRunning(t *testing.T, cl *rest.Client, id rest.JobID) rest.JobDetails {
	t.Helper()
	var d rest.JobDetails
	require.Eventually(t, func() bool {
		var err error
		d, err = cl.Job(testCtx(t), id)
		require.NoError(t, err)
		return d.AllRunning()
	}, 30*time.Second, 5*time.Millisecond, "job %s never ran: %+v", id, d)
	return d
}

func TestClientJobLifecycle(t *testing.T) {
	cl, _ := session(t)
	ctx := testCtx(t)

	id, err := cl.Submit(ctx, rest.SubmitRequest{Name: "forever", Parallelism: 2})
	require.NoError(t, err)
	d := awaitRunning(t, cl, id)
	assert.Equal(t, id, d.JID)
	assert.Equal(t, rest.JobRunning, d.State)

	jobs, err := cl.Jobs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []rest.JobIDWithStatus{{ID: id, Status: rest.JobRunning}}, jobs.Jobs)
	ov, err := cl.JobsOverview(ctx)
	require.NoError(t, err)
	require.Len(t, ov.Jobs, 1)
	assert.Equal(t, "forever", ov.Jobs[0].Name)
	o, err := cl.Overview(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, o.JobsRunning)
	assert.Positive(t, o.TaskManagers)
	conf, err := cl.Config(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, conf.FlinkVersion)

	plan, err := cl.JobPlan(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, id, plan.Plan.JID)
	require.NotEmpty(t, plan.Plan.Nodes)
	wm, err := cl.Watermarks(ctx, id, plan.Plan.Nodes[0].ID)
	require.NoError(t, err)
	assert.NotEmpty(t, wm)
	bp, err := cl.BackPressure(ctx, id, plan.Plan.Nodes[0].ID)
	require.NoError(t, err)
	assert.NotEmpty(t, bp.Level)

	tms, err := cl.TaskManagers(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, tms.TaskManagers)
	tm, err := cl.TaskManager(ctx, tms.TaskManagers[0].ID)
	require.NoError(t, err)
	assert.Equal(t, tms.TaskManagers[0].ID, tm.ID)

	// A savepoint, then stop with one.
	req, err := cl.TriggerSavepoint(ctx, id, "", false)
	require.NoError(t, err)
	var st rest.SavepointStatus
	require.Eventually(t, func() bool {
		st, err = cl.SavepointStatus(ctx, id, req)
		require.NoError(t, err)
		return st.Status.ID == "COMPLETED"
	}, 30*time.Second, 5*time.Millisecond)
	require.NotNil(t, st.Operation)
	require.Nil(t, st.Operation.FailureCause)
	assert.NotEmpty(t, st.Operation.Location)
	cps, err := cl.Checkpoints(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, cps.Latest.Savepoint)
	cp, err := cl.Checkpoint(ctx, id, cps.Latest.Savepoint.ID)
	require.NoError(t, err)
	assert.True(t, cp.IsSavepoint)

	req, err = cl.StopWithSavepoint(ctx, id, "")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		d, err = cl.Job(ctx, id)
		require.NoError(t, err)
		return d.State.IsTerminal()
	}, 30*time.Second, 5*time.Millisecond)
	assert.Equal(t, rest.JobFinished, d.State)
	st, err = cl.SavepointStatus(ctx, id, req)
	require.NoError(t, err)
	require.NotNil(t, st.Operation)
	assert.NotEmpty(t, st.Operation.Location)
}

func TestClientCancel(t *testing.T) {
	cl, _ := session(t)
	ctx := testCtx(t)
	id, err := cl.Submit(ctx, rest.SubmitRequest{Name: "forever"})
	require.NoError(t, err)
	awaitRunning(t, cl, id)
	require.NoError(t, cl.Cancel(ctx, id))
	var d rest.JobDetails
	require.Eventually(t, func() bool {
		d, err = cl.Job(ctx, id)
		require.NoError(t, err)
		return d.State.IsTerminal()
	}, 30*time.Second, 5*time.Millisecond)
	assert.Equal(t, rest.JobCanceled, d.State)
	ex, err := cl.JobExceptions(ctx, id)
	require.NoError(t, err)
	assert.NotEmpty(t, ex.RootException)
}

// The server's error answers are *APIError with its status and messages;
// ids are escaped into the path.
func TestClientAPIErrors(t *testing.T) {
	cl, _ := session(t)
	ctx := testCtx(t)
	unknown := rest.JobID(strings.Repeat("ab", 16))
	_, err := cl.Job(ctx, unknown)
	var ae *rest.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusNotFound, ae.StatusCode)
	assert.Equal(t, []string{"job " + string(unknown) + " not found"}, ae.Messages)
	assert.Equal(t, "job "+string(unknown)+" not found (HTTP 404)", err.Error())
	assert.Equal(t, http.MethodGet, ae.Method)
	assert.Equal(t, "/jobs/"+string(unknown), ae.Path)

	_, err = cl.Job(ctx, "a/../../overview")
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusBadRequest, ae.StatusCode, "the id stays one path segment: %v", err)

	_, err = cl.Submit(ctx, rest.SubmitRequest{Name: "nope"})
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusBadRequest, ae.StatusCode)
	assert.Contains(t, err.Error(), `unknown job: "nope"`)

	require.ErrorAs(t, cl.Cancel(ctx, unknown), &ae)
	assert.Equal(t, http.StatusNotFound, ae.StatusCode)
	_, err = cl.TriggerSavepoint(ctx, unknown, "", false)
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusNotFound, ae.StatusCode)
}

// An answer that is not JSON is an APIError with the answer's text.
func TestClientNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	cl, err := rest.NewClient(srv.URL)
	require.NoError(t, err)
	defer cl.CloseIdleConnections()
	_, err = cl.Overview(testCtx(t))
	var ae *rest.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, []string{"GET /overview: bad gateway"}, ae.Messages)
}

func TestClientUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cl, err := rest.NewClient("http://" + addr)
	require.NoError(t, err)
	_, err = cl.Overview(testCtx(t))
	require.ErrorIs(t, err, rest.ErrUnreachable)
	assert.Contains(t, err.Error(), "rest: cannot reach the cluster at http://"+addr)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = cl.Overview(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, errors.Is(err, rest.ErrUnreachable), "a cancelled request is not an unreachable server")
}

func TestNewClientOptions(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:8081", "ftp://host", "http://", "http://host?x=1", "://x"} {
		_, err := rest.NewClient(bad)
		assert.Error(t, err, "%q", bad)
	}
	_, err := rest.NewClient("http://host", rest.WithHTTPClient(http.DefaultClient), rest.WithSecurity(security.ClientConfig{}))
	assert.Error(t, err)
	_, err = rest.NewClient("http://host", rest.WithHTTPClient(nil))
	assert.Error(t, err)
	_, err = rest.NewClient("https://host", rest.WithSecurity(security.ClientConfig{CAFile: "/does/not/exist.pem"}))
	assert.ErrorIs(t, err, security.ErrInvalidConfig)
	cl, err := rest.NewClient("https://host:8081/", rest.WithHTTPClient(&http.Client{}))
	require.NoError(t, err)
	assert.Equal(t, "https://host:8081", cl.Addr())
}
