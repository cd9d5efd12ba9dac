package flink

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/rest"
)

// stubbornSource emits until Collect fails, and its Cancel blocks until
// released: user code that ignores cancellation.
type stubbornSource struct {
	emitted *atomic.Int64
	release <-chan struct{}
}

func (s stubbornSource) Run(_ context.Context, out *SourceContext[int]) error {
	for i := 0; ; i++ {
		if err := out.Collect(i); err != nil {
			return err
		}
		s.emitted.Add(1)
	}
}

func (s stubbornSource) Cancel() { <-s.release }

// A subtask stuck in user code that ignores cancellation must not block its
// TaskManager: checkpoint triggers and notifications to a back-pressured
// source, cancellation, deployment reports and another job all proceed, and
// the cancellation watchdog reports the stuck subtasks with their stacks.
// Before the mailbox, the trigger waited for the source's emit lock, held
// while it was back pressured, and CancelTask ran the source's Cancel on
// the RPC's goroutine: both calls hung.
func TestStuckUserCodeDoesNotBlockTaskManager(t *testing.T) {
	clk := newFakeClock()
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager = 4
	cfg.TaskCancellationInterval = time.Minute
	cfg.clock = clk
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer c.Close()
	defer unblock()

	var emitted atomic.Int64
	entered := make(chan struct{})
	var enterOnce sync.Once
	env := NewEnv(WithParallelism(1), WithoutChaining(), WithBufferTimeout(0))
	src := FromSource(env, "stubborn", func() Source[int] { return stubbornSource{&emitted, release} })
	stuck := Map(src, func(v int) (int, error) {
		enterOnce.Do(func() { close(entered) })
		<-release // ignores cancellation
		return v, nil
	})
	SinkTo(stuck, "discard", SinkFunc(func(int) error { return nil }))
	g, err := env.JobGraph()
	require.NoError(t, err)
	jobCtx, cancelJob := context.WithCancel(context.Background())
	defer cancelJob()
	done := make(chan error, 1)
	go func() { _, err := c.RunGraph(jobCtx, g); done <- err }()
	<-entered
	// The source fills the buffers between it and the stuck map, then
	// blocks on backpressure inside its chain.
	before := emitted.Load()
	require.Eventually(t, func() bool {
		n := emitted.Load()
		stalled := n == before
		before = n
		return stalled
	}, 30*time.Second, 50*time.Millisecond)

	tm := c.tms[0]
	tasks := func() []*task {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		return slices.Collect(func(yield func(*task) bool) {
			for _, tk := range tm.mu.tasks {
				if !yield(tk) {
					return
				}
			}
		})
	}
	var source *task
	for _, tk := range tasks() {
		if tk.source.Load() != nil {
			source = tk
		}
	}
	require.NotNil(t, source)
	rpc := func(what string, call func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- call(ctx) }()
		select {
		case err := <-errc:
			require.NoError(t, err, what)
		case <-ctx.Done():
			t.Fatalf("%s blocked on a subtask stuck in user code", what)
		}
	}
	rpc("TriggerCheckpoint", func(ctx context.Context) error {
		return tm.TriggerCheckpoint(ctx, source.id, CheckpointBarrier{ID: 1, Timestamp: time.Now()})
	})
	rpc("NotifyCheckpointComplete", func(ctx context.Context) error { return tm.NotifyCheckpointComplete(ctx, source.id, 1) })
	rpc("NotifyCheckpointAborted", func(ctx context.Context) error { return tm.NotifyCheckpointAborted(ctx, source.id, 1) })

	cancelJob()
	for _, tk := range tasks() {
		rpc("CancelTask", func(ctx context.Context) error { return tm.CancelTask(ctx, tk.id) })
	}
	rpc("DeploymentReport", func(ctx context.Context) error {
		_, err := tm.DeploymentReport(ctx, source.id.Job, 0)
		return err
	})
	// Another job runs in the free slots meanwhile.
	rpc("another job", func(ctx context.Context) error {
		env := NewEnv(WithParallelism(1))
		var sum atomic.Int64
		SinkTo(FromSlice(env, []int{1, 2, 3}), "sum", SinkFunc(func(v int) error { sum.Add(int64(v)); return nil }))
		g, err := env.JobGraph()
		if err != nil {
			return err
		}
		if _, err := c.RunGraph(ctx, g); err != nil {
			return err
		}
		assert.Equal(t, int64(6), sum.Load())
		return nil
	})

	// The watchdog reports both subtasks once they were stopped an
	// interval ago, with the stacks of their user code.
	require.Eventually(t, func() bool {
		for _, tk := range tasks() {
			if tk.stopAt.Load() == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, time.Millisecond)
	clk.Advance(time.Minute)
	require.Eventually(t, func() bool { return len(tm.StuckTasks()) == 2 }, 30*time.Second, time.Millisecond)
	var stacks []string
	for _, s := range tm.StuckTasks() {
		stacks = append(stacks, s.Stack)
	}
	all := strings.Join(stacks, "\n")
	assert.Contains(t, all, "stubbornSource.Cancel")
	assert.Contains(t, all, "TestStuckUserCodeDoesNotBlockTaskManager.func")

	// REST shows them with the TaskManager, from its next heartbeat.
	ts := httptest.NewServer(NewRESTServer(c).Handler())
	defer ts.Close()
	client, err := rest.NewClient(ts.URL)
	require.NoError(t, err)
	defer client.CloseIdleConnections()
	require.Eventually(t, func() bool {
		info, err := client.TaskManager(context.Background(), string(tm.id))
		return err == nil && len(info.StuckTasks) == 2 && info.StuckTasks[0].Stack != ""
	}, 30*time.Second, 10*time.Millisecond)

	unblock()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrJobCanceled)
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not end once its user code returned")
	}
}

// careless emits until its context ends and ignores what Collect returns.
type careless struct{}

func (careless) Run(ctx context.Context, out *SourceContext[int]) error {
	for i := 0; ctx.Err() == nil; i++ {
		_ = out.Collect(i)
	}
	return nil
}

func (careless) Cancel() {}

// failingCommits is a transactional sink whose commits fail.
type failingCommits struct{}

func (failingCommits) Open(*RuntimeContext) error     { return nil }
func (failingCommits) BeginTransaction() (int, error) { return 0, nil }
func (failingCommits) Write(int, int) error           { return nil }
func (failingCommits) PreCommit(int) error            { return nil }
func (failingCommits) Commit(int) error               { return errors.New("commit exploded") }
func (failingCommits) Abort(int) error                { return nil }
func (failingCommits) Close() error                   { return nil }

// A job whose sink, chained to a source that ignores Collect's errors,
// fails to commit fails with the commit's error.
func TestFailedCommitFailsJobWhateverSourceReturns(t *testing.T) {
	env := NewEnv(WithParallelism(1), WithCheckpointing(20*time.Millisecond), WithRestartStrategy(NoRestart()))
	SinkToTransactional(FromSource(env, "careless", func() Source[int] { return careless{} }), "failing",
		func() TwoPhaseCommitSink[int, int] { return failingCommits{} })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := env.Execute(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "commit exploded")
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}

// A mail that fails inside emit, as when a source's Collect runs the mails
// queued meanwhile, fails the task whatever the source does with the error
// Collect returns: the failure is recorded and the task's context ends.
// Before, only the error was returned, and a source that ignored it ran on.
func TestFailedMailInsideEmitFailsTask(t *testing.T) {
	g := &JobGraph{Vertices: []*JobVertex{{Name: "source", Parallelism: 1}}}
	tk := newTask(context.Background(), ExecutionAttemptID{}, g, nil, nil, discardLogger)
	defer tk.cancel()
	tk.post("a commit", func() error { return errors.New("commit exploded") }, nil)
	err := tk.emit(func() error { return nil })
	require.ErrorContains(t, err, "commit exploded")
	require.ErrorContains(t, tk.asyncFailure(), "a commit: commit exploded")
	require.Error(t, tk.ctx.Err(), "the task's context ends")
	require.ErrorIs(t, tk.emit(func() error { return nil }), errTaskStopping, "nothing more is emitted")
}
