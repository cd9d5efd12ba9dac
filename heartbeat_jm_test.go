package flink

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newOneTaskManagerCluster starts a local cluster of one TaskManager
// with two slots.
func newOneTaskManagerCluster(t *testing.T) *LocalCluster {
	t.Helper()
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager = 1, 2
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// startUnbounded starts an unbounded job of parallelism 2 on c and waits
// until every subtask runs.
func startUnbounded(t *testing.T, c *LocalCluster, opts ...Option) JobID {
	t.Helper()
	env := NewEnv(append([]Option{WithParallelism(2)}, opts...)...)
	src := Generate(env, -1, func(i int64) (int64, error) {
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // a steady pace, not a wait
		}
		return i, nil
	})
	SinkTo(src, "discard", SinkFunc(func(int64) error { return nil }))
	g, err := env.JobGraph()
	require.NoError(t, err)
	id, err := c.Dispatcher().submitGraph(context.Background(), g)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := allRunning(c.Dispatcher(), id, 0); return ok },
		30*time.Second, time.Millisecond, "every subtask runs")
	return id
}

// cancelAndAwait cancels the job and returns its result.
func cancelAndAwait(t *testing.T, c *LocalCluster, id JobID) *JobResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.Dispatcher().CancelJob(ctx, id))
	res, err := c.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err, "the job ends")
	return res
}

// A cancelled subtask whose final state report is lost still ends: the
// JobManager finds its end in the TaskManager's deployment report. Before
// the JobManager asked for those, the job waited in CANCELLING for ever
// (as a chaos run's job waited in FAILING after a TaskManager kill).
func TestLostFinalStateReportArrivesByDeploymentReport(t *testing.T) {
	c := newOneTaskManagerCluster(t)
	c.tms[0].dropReport = func(s TaskExecutionState) bool { return s.State.IsTerminal() }
	id := startUnbounded(t, c)
	require.Equal(t, JobCanceled, cancelAndAwait(t, c, id).Status)
}

// A subtask that the TaskManager neither runs nor remembers (its end
// forgotten, its report lost) ends when two deployment reports in a row
// leave it out.
func TestSubtaskMissingFromDeploymentReportsEnds(t *testing.T) {
	c := newOneTaskManagerCluster(t)
	tm := c.tms[0]
	tm.dropReport = func(s TaskExecutionState) bool {
		if !s.State.IsTerminal() {
			return false
		}
		tm.mu.Lock()
		delete(tm.mu.ended, s.ID)
		tm.mu.Unlock()
		return true
	}
	id := startUnbounded(t, c)
	require.Equal(t, JobCanceled, cancelAndAwait(t, c, id).Status)
}

// A TaskManager that the ResourceManager declared lost but that was only
// paused keeps its slots allocated; when it registers again it offers them
// to their JobManager anew, and the job, restarting, gets them back. Before,
// the slots stayed allocated to nobody's use, and the job waited for slots
// (a chaos run's job stalled in RESTARTING with every slot allocated).
func TestTaskManagerBackFromLostOffersItsSlotsAgain(t *testing.T) {
	c := newOneTaskManagerCluster(t)
	id := startUnbounded(t, c, WithRestartStrategy(FixedDelayRestart(3, 10*time.Millisecond)))
	c.rm.TaskManagerLost(c.tms[0].id, errors.New("test: missed its heartbeats"))
	require.Eventually(t, func() bool { _, ok := allRunning(c.Dispatcher(), id, 1); return ok },
		30*time.Second, time.Millisecond, "the job runs again, in the slots the TaskManager offered again")
	require.Equal(t, JobCanceled, cancelAndAwait(t, c, id).Status)
}

// A deployment report holds every running subtask of the job, and the
// ends of those of the asked attempt or later only: a job in a restart
// loop does not get the ends of all its earlier attempts every heartbeat.
func TestDeploymentReportHoldsEndsSinceAttempt(t *testing.T) {
	c := newOneTaskManagerCluster(t)
	tm := c.tms[0]
	job := JobID("job")
	tm.mu.Lock()
	for attempt := range 3 {
		tm.rememberEndedLocked(TaskExecutionState{ID: ExecutionAttemptID{Job: job, Attempt: attempt}, State: Canceled}, time.Now())
	}
	tm.rememberEndedLocked(TaskExecutionState{ID: ExecutionAttemptID{Job: "other", Attempt: 2}, State: Canceled}, time.Now())
	tm.mu.Unlock()
	states, err := tm.DeploymentReport(context.Background(), job, 1)
	require.NoError(t, err)
	var attempts []int
	for _, s := range states {
		require.Equal(t, job, s.ID.Job)
		attempts = append(attempts, s.ID.Attempt)
	}
	require.ElementsMatch(t, []int{1, 2}, attempts)
}
