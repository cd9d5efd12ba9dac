package checkpoint

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// While a checkpoint is finalized, outside the owner's lock, the
// coordinator goes on: it triggers within MaxConcurrent (the checkpoint
// being completed counts), acknowledges, declines and expires others, and
// neither expires nor aborts the one being completed; EndComplete then
// publishes its outcome.
func TestCoordinatorFinalizeOutsideTheOwner(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	entered := make(chan struct{})
	release := make(chan struct{})
	s.BeforeWriteMetadata(func(ctx context.Context, loc Location) error {
		close(entered)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	c := newTestCoordinator(t, CoordinatorConfig{Interval: time.Second, Timeout: time.Minute, MaxConcurrent: 2}, s)
	first, err := c.Trigger(t0, false, "")
	require.NoError(t, err)
	ackAll(t, c, s, t0, first)
	f, err := c.BeginComplete(first.ID)
	require.NoError(t, err)
	require.Equal(t, first.ID, f.ID)
	require.Empty(t, c.Pending(), "taken out of the pending set")
	_, err = c.BeginComplete(first.ID)
	require.ErrorIs(t, err, ErrUnknownCheckpoint, "begun once")

	finalized := make(chan error, 1)
	go func() { finalized <- c.Finalize(ctx, f) }()
	<-entered

	// The owner goes on while the metadata write hangs.
	second, err := c.Trigger(at(time.Second), false, "")
	require.NoError(t, err, "one pending and one being completed: two allowed")
	_, err = c.Trigger(at(2*time.Second), false, "")
	require.ErrorIs(t, err, ErrTooManyConcurrent, "the checkpoint being completed counts")
	res, err := c.Acknowledge(at(2*time.Second), second.ID, allTasks[0], taskAck(t, s, second.Location, second.ID, allTasks[0]))
	require.NoError(t, err)
	require.Equal(t, AckRecorded, res.Outcome)
	aborts, err := c.CheckTimeouts(at(2 * time.Minute))
	require.ErrorIs(t, err, ErrTooManyFailures)
	require.Len(t, aborts, 1)
	require.Equal(t, second.ID, aborts[0].ID, "only the pending one expires")
	require.Empty(t, c.AbortAll(at(2*time.Minute), nil), "the one being completed is not pending")
	_, err = c.EndComplete(at(2*time.Minute), f)
	require.ErrorIs(t, err, ErrUnknownCheckpoint, "Finalize has not returned")

	close(release)
	require.NoError(t, <-finalized)
	cr, err := c.EndComplete(at(3*time.Minute), f)
	require.NoError(t, err)
	require.NotNil(t, cr.Completed)
	require.Equal(t, first.ID, cr.Completed.ID)
	require.Equal(t, allTasks, cr.Completed.Notify)
	latest, ok := c.Store().Latest()
	require.True(t, ok)
	require.Equal(t, first.ID, latest.ID)
	st := c.Stats()
	require.EqualValues(t, 1, st.Counts.Completed)
	require.EqualValues(t, 0, st.Counts.InProgress)
	_, err = c.EndComplete(at(3*time.Minute), f)
	require.ErrorIs(t, err, ErrUnknownCheckpoint, "published once")
	_, err = c.Trigger(at(4*time.Minute), false, "")
	require.NoError(t, err, "nothing in flight any more")
}

// A Finalize whose context ends while the metadata write hangs fails with
// the context's cause; EndComplete aborts the checkpoint and counts the
// failure, and after Shutdown the failure no longer counts.
func TestCoordinatorFinalizeDeadline(t *testing.T) {
	s := NewMemStorage()
	s.BeforeWriteMetadata(func(ctx context.Context, loc Location) error {
		<-ctx.Done()
		return ctx.Err()
	})
	c := newTestCoordinator(t, CoordinatorConfig{}, s)
	why := errors.New("finalizing took longer than 10ms")
	run := func(now time.Time) (CompleteResult, error) {
		tr, err := c.Trigger(now, false, "")
		require.NoError(t, err)
		ackAll(t, c, s, now, tr)
		f, err := c.BeginComplete(tr.ID)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeoutCause(context.Background(), 10*time.Millisecond, why)
		defer cancel()
		err = c.Finalize(ctx, f)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, why)
		return c.EndComplete(now, f)
	}
	res, err := run(t0)
	require.ErrorIs(t, err, ErrTooManyFailures)
	require.ErrorIs(t, err, why)
	require.NotNil(t, res.Failed)
	require.ErrorIs(t, res.Failed.Reason, ErrFinalize)
	require.Contains(t, res.Failed.Reason.Error(), "finalizing took longer than 10ms")
	require.Equal(t, []Location{CheckpointLocation(coordJob, 1)}, res.Failed.Discard)

	// Begun before Shutdown, ended after it: aborted, not counted.
	tr, err := c.Trigger(at(time.Second), false, "")
	require.NoError(t, err)
	ackAll(t, c, s, at(time.Second), tr)
	f, err := c.BeginComplete(tr.ID)
	require.NoError(t, err)
	require.Empty(t, c.Shutdown(at(2*time.Second)), "nothing pending")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.Finalize(ctx, f), context.Canceled)
	res, err = c.EndComplete(at(3*time.Second), f)
	require.NoError(t, err, "no failure counted after Shutdown")
	require.NotNil(t, res.Failed)
	ids, err := s.ListCheckpoints(context.Background(), coordJob)
	require.NoError(t, err)
	require.Empty(t, ids, "no metadata written")
}

// Finalize runs concurrently with the owner's calls without a data race
// (run with -race).
func TestCoordinatorFinalizeConcurrently(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{Interval: time.Second, MaxConcurrent: 3, MaxRetained: 2}, s)
	var mu sync.Mutex // the owner's lock, not held across Finalize
	now := t0
	for range 5 {
		mu.Lock()
		now = now.Add(time.Second)
		tr, err := c.Trigger(now, false, "")
		require.NoError(t, err)
		ackAll(t, c, s, now, tr)
		f, err := c.BeginComplete(tr.ID)
		require.NoError(t, err)
		mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- c.Finalize(ctx, f) }()
		mu.Lock()
		_ = c.Stats()
		_, _ = c.NextDeadline(now)
		_, _ = c.CheckTimeouts(now)
		other, err := c.Trigger(now, false, "")
		require.NoError(t, err)
		mu.Unlock()
		require.NoError(t, <-done)
		mu.Lock()
		res, err := c.EndComplete(now, f)
		require.NoError(t, err)
		require.NotNil(t, res.Completed)
		require.Empty(t, res.Subsumed, "the newer one is not subsumed")
		c.AbortAll(now, nil)
		_ = other
		mu.Unlock()
	}
	require.Len(t, c.Store().Checkpoints(), 2)
	m, ok, err := c.ReadLatest(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	c.RestoredFrom(now, m)
	require.Equal(t, m.CheckpointID+2, c.NextCheckpointID(), "the aborted one's id is not reused")
}
