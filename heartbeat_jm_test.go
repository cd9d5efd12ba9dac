package flink

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runUntilCancelled starts an unbounded job of parallelism 2 on c, waits
// until every subtask runs, cancels it and returns its result.
func runUntilCancelled(t *testing.T, c *LocalCluster) *JobResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := NewEnv(WithParallelism(2))
	src := Generate(env, -1, func(i int64) (int64, error) {
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
		return i, nil
	})
	SinkTo(src, "discard", SinkFunc(func(int64) error { return nil }))
	g, err := env.JobGraph()
	require.NoError(t, err)
	id, err := c.Dispatcher().submitGraph(ctx, g)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		d, err := c.Dispatcher().JobDetails(ctx, id)
		if err != nil || d.Status != JobRunning {
			return false
		}
		for _, v := range d.Vertices {
			for _, s := range v.Subtasks {
				if s.State != Running {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, time.Millisecond, "every subtask runs")
	require.NoError(t, c.Dispatcher().CancelJob(ctx, id))
	res, err := c.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err, "the job ends though its subtasks' final state reports were lost")
	return res
}

// A cancelled subtask whose final state report is lost still ends: the
// JobManager finds its end in the TaskManager's deployment report. Before
// the JobManager asked for those, the job waited in CANCELLING for ever
// (as a chaos run's job waited in FAILING after a TaskManager kill).
func TestLostFinalStateReportArrivesByDeploymentReport(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager = 1, 2
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	c.tms[0].dropReport = func(s TaskExecutionState) bool { return s.State.IsTerminal() }
	require.Equal(t, JobCanceled, runUntilCancelled(t, c).Status)
}

// A subtask that the TaskManager neither runs nor remembers (its end
// forgotten, its report lost) ends when two deployment reports in a row
// leave it out.
func TestSubtaskMissingFromDeploymentReportsEnds(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager = 1, 2
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
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
	require.Equal(t, JobCanceled, runUntilCancelled(t, c).Status)
}

// A TaskManager that the ResourceManager declared lost but that was only
// paused keeps its slots allocated; when it registers again it offers them
// to their JobManager anew, and the job, restarting, gets them back. Before,
// the slots stayed allocated to nobody's use, and the job waited for slots
// (a chaos run's job stalled in RESTARTING with every slot allocated).
func TestTaskManagerBackFromLostOffersItsSlotsAgain(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager = 1, 2
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := NewEnv(WithParallelism(2), WithRestartStrategy(FixedDelayRestart(3, 10*time.Millisecond)))
	src := Generate(env, -1, func(i int64) (int64, error) {
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
		return i, nil
	})
	SinkTo(src, "discard", SinkFunc(func(int64) error { return nil }))
	g, err := env.JobGraph()
	require.NoError(t, err)
	id, err := c.Dispatcher().submitGraph(ctx, g)
	require.NoError(t, err)
	running := func(attempt int) func() bool {
		return func() bool {
			d, err := c.Dispatcher().JobDetails(ctx, id)
			if err != nil || d.Status != JobRunning {
				return false
			}
			for _, v := range d.Vertices {
				for _, s := range v.Subtasks {
					if s.State != Running || s.Attempt < attempt {
						return false
					}
				}
			}
			return true
		}
	}
	require.Eventually(t, running(0), 30*time.Second, time.Millisecond, "every subtask runs")
	c.rm.TaskManagerLost(c.tms[0].id, errors.New("test: missed its heartbeats"))
	require.Eventually(t, running(1), 30*time.Second, time.Millisecond, "the job runs again, in the slots the TaskManager offered again")
	require.NoError(t, c.Dispatcher().CancelJob(ctx, id))
	res, err := c.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	require.Equal(t, JobCanceled, res.Status)
}
