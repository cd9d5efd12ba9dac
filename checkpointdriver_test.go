package flink

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/checkpoint"
)

// hungSumsRegistry holds "hung-sums": an unbounded keyed job that
// checkpoints every 20 ms, with two checkpoints in flight at most, the
// checkpoint timeout its argument, and failures tolerated.
func hungSumsRegistry() *Registry {
	reg := NewRegistry()
	reg.MustRegister("hung-sums", func(env *Env, args []string) error {
		timeout, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		env.Configure(WithCheckpointConfig(CheckpointConfig{Interval: 20 * time.Millisecond, Timeout: timeout,
			MaxConcurrent: 2, TolerableFailures: 1000}))
		keyedSums(env)
		return nil
	})
	return reg
}

// hangFirstMetadataWrite makes the first metadata write to s hang until
// its context ends (or the test does), as on a hung disk; the location it
// hangs on is sent on the returned channel, and its outcome on the second.
// Call it after starting the cluster, so that the hang ends before the
// cluster closes.
func hangFirstMetadataWrite(t *testing.T, s *checkpoint.MemStorage) (<-chan checkpoint.Location, <-chan error) {
	entered, ended := make(chan checkpoint.Location, 1), make(chan error, 1)
	testDone := make(chan struct{})
	t.Cleanup(func() { close(testDone) })
	var first atomic.Bool
	s.BeforeWriteMetadata(func(ctx context.Context, loc checkpoint.Location) error {
		if !first.CompareAndSwap(false, true) {
			return nil
		}
		entered <- loc
		select {
		case <-ctx.Done():
			ended <- context.Cause(ctx)
			return ctx.Err()
		case <-testDone:
			return errors.New("test ended")
		}
	})
	return entered, ended
}

// awaitLocation waits for the hung write to start.
func awaitLocation(t *testing.T, entered <-chan checkpoint.Location) checkpoint.Location {
	t.Helper()
	select {
	case loc := <-entered:
		return loc
	case <-time.After(30 * time.Second):
		t.Fatal("no checkpoint metadata written within 30s")
		return checkpoint.Location{}
	}
}

// While a checkpoint's metadata write hangs, the JobManager's checkpoint
// driver goes on: the REST checkpoint statistics answer, the next
// checkpoint is triggered and acknowledged, and cancelling the job ends it
// at once, cutting the write short; the hung checkpoint is not completed.
func TestHungMetadataWriteBlocksNothing(t *testing.T) {
	storage := checkpoint.NewMemStorage()
	f := newRESTFixtureWith(t, hungSumsRegistry(), func(cfg *ClusterConfig) { cfg.CheckpointStorage = storage })
	entered, ended := hangFirstMetadataWrite(t, storage)
	d := f.cluster.Dispatcher()
	id, err := d.SubmitJob(context.Background(), JobSubmission{Name: "hung-sums", Args: []string{"1m"}, Parallelism: 2})
	require.NoError(t, err)
	loc := awaitLocation(t, entered)
	hung := loc.CheckpointID

	// The statistics answer while the write hangs, and show it in progress.
	f.client.Timeout = 5 * time.Second
	st := f.get(t, "/jobs/"+string(id)+"/checkpoints")
	require.NotNil(t, st["counts"])
	stats, _, err := d.CheckpointStats(id)
	require.NoError(t, err)
	c, ok := stats.Checkpoint(hung)
	require.True(t, ok, "checkpoint %d in %+v", hung, stats.History)
	assert.Equal(t, checkpoint.StatusInProgress, c.Status)
	assert.Equal(t, c.NumTasks, c.NumAcknowledged)

	// The next checkpoint is triggered and acknowledged by every subtask.
	require.Eventually(t, func() bool {
		stats, _, err := d.CheckpointStats(id)
		require.NoError(t, err)
		c, ok := stats.Checkpoint(hung + 1)
		return ok && c.NumAcknowledged == c.NumTasks
	}, 20*time.Second, 5*time.Millisecond, "checkpoint %d acknowledged while %d is written", hung+1, hung)

	// Cancelling ends the job at once and the write's context.
	start := time.Now()
	status, _, body := f.do(t, http.MethodPatch, "/jobs/"+string(id)+"?mode=cancel", "")
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	r := f.await(t, id)
	require.Equal(t, JobCanceled, r.Status)
	assert.Less(t, time.Since(start), 10*time.Second)
	select {
	case cause := <-ended:
		require.ErrorIs(t, cause, checkpoint.ErrCoordinatorStopped)
	case <-time.After(10 * time.Second):
		t.Fatal("the hung write's context did not end with the job")
	}
	ids, err := storage.ListCheckpoints(context.Background(), string(id))
	require.NoError(t, err)
	assert.NotContains(t, ids, hung, "the hung checkpoint did not complete")
}

// A checkpoint whose metadata write hangs fails when the checkpoint timeout
// passes, with an error that says so; the checkpoints after it complete.
func TestHungMetadataWriteTimesOut(t *testing.T) {
	storage := checkpoint.NewMemStorage()
	f := newRESTFixtureWith(t, hungSumsRegistry(), func(cfg *ClusterConfig) { cfg.CheckpointStorage = storage })
	entered, ended := hangFirstMetadataWrite(t, storage)
	d := f.cluster.Dispatcher()
	id, err := d.SubmitJob(context.Background(), JobSubmission{Name: "hung-sums", Args: []string{"3s"}, Parallelism: 2})
	require.NoError(t, err)
	hung := awaitLocation(t, entered).CheckpointID
	select {
	case cause := <-ended:
		require.ErrorIs(t, cause, checkpoint.ErrExpired)
	case <-time.After(20 * time.Second):
		t.Fatal("the hung write did not time out")
	}
	var failed checkpoint.CheckpointStats
	require.Eventually(t, func() bool {
		stats, _, err := d.CheckpointStats(id)
		require.NoError(t, err)
		failed, _ = stats.Checkpoint(hung)
		return failed.Status == checkpoint.StatusFailed && stats.LatestCompleted != nil && stats.LatestCompleted.ID > hung
	}, 20*time.Second, 5*time.Millisecond, "checkpoint %d failed and a later one completed", hung)
	assert.Contains(t, failed.FailureReason, "could not finalize")
	assert.Contains(t, failed.FailureReason, "took longer than the checkpoint timeout 3s")
	require.NoError(t, d.CancelJob(context.Background(), id))
	require.Equal(t, JobCanceled, f.await(t, id).Status)
}
