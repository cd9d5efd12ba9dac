package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCoordinatorStats(t *testing.T) {
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{MaxConcurrent: 2, TolerableFailures: 5}, s)

	// 1 completes after 5s; 2 is declined; 3 stays in progress; savepoint 4
	// completes.
	tr1, err := c.Trigger(at(time.Second), false, "")
	require.NoError(t, err)
	ackAll(t, c, s, at(4*time.Second), tr1)
	_, err = c.Complete(testCtx(t), at(6*time.Second), tr1.ID)
	require.NoError(t, err)

	tr2, err := c.Trigger(at(10*time.Second), false, "")
	require.NoError(t, err)
	_, err = c.Acknowledge(at(11*time.Second), tr2.ID, TaskID{1, 1}, taskAck(t, s, tr2.Location, tr2.ID, TaskID{1, 1}))
	require.NoError(t, err)
	_, err = c.Decline(at(12*time.Second), tr2.ID, TaskID{0, 0}, errors.New("disk full"))
	require.NoError(t, err)

	tr3, err := c.Trigger(at(20*time.Second), false, "")
	require.NoError(t, err)
	_, err = c.Acknowledge(at(23*time.Second), tr3.ID, TaskID{0, 0}, taskAck(t, s, tr3.Location, tr3.ID, TaskID{0, 0}))
	require.NoError(t, err)

	sp, err := c.Trigger(at(30*time.Second), true, "sp")
	require.NoError(t, err)
	ackAll(t, c, s, at(31*time.Second), sp)
	_, err = c.Complete(testCtx(t), at(32*time.Second), sp.ID)
	require.NoError(t, err)

	st := c.Stats()
	require.Equal(t, StatsCounts{Triggered: 4, InProgress: 1, Completed: 2, Failed: 1}, st.Counts)
	require.Equal(t, []int64{4, 3, 2, 1}, historyIDs(st), "newest first")

	c1, ok := st.Checkpoint(1)
	require.True(t, ok)
	require.Equal(t, CheckpointStats{
		ID: 1, Status: StatusCompleted, TriggerTime: at(time.Second), LatestAckTime: at(4 * time.Second),
		EndTime: at(6 * time.Second), Duration: 5 * time.Second, StateSize: 2 + 2 + 40 + 40,
		MaxAlignment: 2 * time.Millisecond, NumAcknowledged: 4, NumTasks: 4,
		ExternalPath: CheckpointLocation(coordJob, 1).String(),
	}, c1)
	require.Equal(t, c1, *st.LatestCompleted)

	c2, _ := st.Checkpoint(2)
	require.Equal(t, StatusFailed, c2.Status)
	require.Contains(t, c2.FailureReason, "disk full")
	require.Equal(t, int64(40), c2.StateSize)
	require.Equal(t, 1, c2.NumAcknowledged)
	require.Equal(t, 2*time.Second, c2.Duration)
	require.Equal(t, c2, *st.LatestFailed)

	c3, _ := st.Checkpoint(3)
	require.Equal(t, StatusInProgress, c3.Status)
	require.True(t, c3.EndTime.IsZero())
	require.Equal(t, 3*time.Second, c3.Duration, "in progress: up to the latest ack")

	require.Equal(t, int64(4), st.LatestSavepoint.ID)
	require.True(t, st.LatestSavepoint.IsSavepoint)
	require.Equal(t, MinMaxAvg{Min: 84, Max: 84, Avg: 84}, st.Summary.StateSize)
	require.Equal(t, MinMaxAvg{Min: 2000, Max: 5000, Avg: 3500}, st.Summary.Duration)

	// The snapshot is a copy.
	st.History[0].ID = 99
	st.LatestCompleted.ID = 99
	require.Equal(t, int64(4), c.Stats().History[0].ID)
	require.Equal(t, int64(1), c.Stats().LatestCompleted.ID)

	data, err := json.Marshal(c.Stats())
	require.NoError(t, err)
	require.Contains(t, string(data), `"status":"COMPLETED"`)
	require.Contains(t, string(data), `"status":"IN_PROGRESS"`)
	require.Contains(t, string(data), `"failure_message":"checkpoint: declined by task v0/s0: disk full"`)
}

func TestCoordinatorStatsHistoryKeepsInProgress(t *testing.T) {
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{MaxConcurrent: 10, StatsHistory: 3}, s)
	first, err := c.Trigger(t0, false, "") // stays in progress
	require.NoError(t, err)
	for i := range 4 {
		now := at(time.Duration(i+1) * time.Second)
		tr, err := c.Trigger(now, true, fmt.Sprintf("sp-%d", i))
		require.NoError(t, err)
		ackAll(t, c, s, now, tr)
		_, err = c.Complete(testCtx(t), now, tr.ID)
		require.NoError(t, err)
	}
	st := c.Stats()
	require.Equal(t, []int64{5, 4, first.ID}, historyIDs(st), "completed entries roll out before in-progress ones")
	require.Equal(t, uint64(4), st.Counts.Completed)
	require.Equal(t, 1, st.Counts.InProgress)

	aborts := c.AbortAll(at(time.Minute), nil)
	require.Len(t, aborts, 1)
	st = c.Stats()
	require.Zero(t, st.Counts.InProgress)
	c1, _ := st.Checkpoint(first.ID)
	require.Equal(t, StatusFailed, c1.Status)
	require.Equal(t, "IN_PROGRESS", StatusInProgress.String())
}

func historyIDs(st Stats) []int64 {
	var ids []int64
	for _, c := range st.History {
		ids = append(ids, c.ID)
	}
	return ids
}
