package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/state"
)

const coordJob = "job-c"

// t0 is the fake clock's origin; at(d) is t0 + d.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// testJobInfo is a source vertex (2 subtasks, operator "src" with raw
// positions) feeding a keyed vertex (2 subtasks, max parallelism 8, chained
// operators "counter" with keyed state and "stateless").
func testJobInfo() JobInfo {
	return JobInfo{ID: coordJob, Name: "wordcount", Vertices: []VertexInfo{
		{Name: "source", Parallelism: 2, Source: true, Operators: []OperatorInfo{{ID: "src", UID: "source"}}},
		{Name: "count", Parallelism: 2, MaxParallelism: 8, Operators: []OperatorInfo{{ID: "counter", UID: "counter"}, {ID: "stateless"}}},
	}}
}

var (
	allTasks    = []TaskID{{0, 0}, {0, 1}, {1, 0}, {1, 1}}
	sourceTasks = []TaskID{{0, 0}, {0, 1}}
)

func newTestCoordinator(t *testing.T, cfg CoordinatorConfig, s Storage) *Coordinator {
	t.Helper()
	c, err := NewCoordinator(testCtx(t), cfg, testJobInfo(), s, t0)
	require.NoError(t, err)
	return c
}

// taskAck writes task's state for the checkpoint at loc into s and returns
// the acknowledgement: a raw position for sources, a keyed stream of 40 bytes
// for the key groups of a counter subtask.
func taskAck(t *testing.T, s Storage, loc Location, id int64, task TaskID) TaskAck {
	t.Helper()
	if task.Vertex == 0 {
		return TaskAck{States: map[string]SubtaskState{"src": {Raw: map[string][]byte{"offset": {byte(id), byte(task.Subtask)}}}}, Bytes: 2}
	}
	h := writeStream(t, testCtx(t), s, loc, fmt.Sprintf("counter-%d", task.Subtask), pattern(40, byte(id)))
	kg := state.KeyGroupRange{Start: 4 * task.Subtask, End: 4*task.Subtask + 3}
	return TaskAck{
		States: map[string]SubtaskState{"counter": {Keyed: []KeyedStateHandle{{Stream: h, KeyGroups: kg, Offsets: []int64{0, 10, 20, 30}}}}},
		Bytes:  h.Size, Alignment: time.Duration(task.Subtask+1) * time.Millisecond,
	}
}

// ackAll acknowledges checkpoint tr from every task at now and checks the
// outcomes.
func ackAll(t *testing.T, c *Coordinator, s Storage, now time.Time, tr TriggerResult) {
	t.Helper()
	for i, task := range allTasks {
		res, err := c.Acknowledge(now, tr.ID, task, taskAck(t, s, tr.Location, tr.ID, task))
		require.NoError(t, err)
		want := AckRecorded
		if i == len(allTasks)-1 {
			want = AckComplete
		}
		require.Equal(t, want, res.Outcome, "ack of %s", task)
	}
}

// runCheckpoint triggers, acknowledges and completes a checkpoint at now.
func runCheckpoint(t *testing.T, c *Coordinator, s Storage, now time.Time) CompleteResult {
	t.Helper()
	tr, err := c.Trigger(now, false, "")
	require.NoError(t, err)
	ackAll(t, c, s, now, tr)
	res, err := c.Complete(testCtx(t), now, tr.ID)
	require.NoError(t, err)
	require.NotNil(t, res.Completed)
	return res
}

func TestCoordinatorConfigValidate(t *testing.T) {
	d := DefaultCoordinatorConfig()
	require.Equal(t, 10*time.Minute, d.Timeout)
	require.Equal(t, 1, d.MaxConcurrent)
	require.Equal(t, 1, d.MaxRetained)
	require.Zero(t, d.TolerableFailures)
	require.Zero(t, d.MinPauseBetweenCheckpoints)
	require.Equal(t, ExactlyOnce, d.Mode)
	require.NoError(t, d.Validate())
	require.NoError(t, CoordinatorConfig{}.Validate())

	bad := []CoordinatorConfig{
		{Interval: -1}, {Timeout: -1}, {MinPauseBetweenCheckpoints: -1}, {MaxConcurrent: -1},
		{TolerableFailures: -1}, {MaxRetained: -1}, {StatsHistory: -1}, {FirstCheckpointID: -1}, {Mode: 7},
	}
	for _, cfg := range bad {
		require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig, "%+v", cfg)
		_, err := NewCoordinator(testCtx(t), cfg, testJobInfo(), NewMemStorage(), t0)
		require.ErrorIs(t, err, ErrInvalidConfig, "%+v", cfg)
	}

	jobs := map[string]func(j *JobInfo){
		"bad job id":        func(j *JobInfo) { j.ID = "a/b" },
		"no vertices":       func(j *JobInfo) { j.Vertices = nil },
		"no source":         func(j *JobInfo) { j.Vertices[0].Source = false },
		"zero parallelism":  func(j *JobInfo) { j.Vertices[0].Parallelism = 0 },
		"max < parallelism": func(j *JobInfo) { j.Vertices[1].MaxParallelism = 1 },
		"empty operator id": func(j *JobInfo) { j.Vertices[1].Operators[1].ID = "" },
		"duplicate op id":   func(j *JobInfo) { j.Vertices[1].Operators[1].ID = "src" },
	}
	for name, mutate := range jobs {
		j := testJobInfo()
		mutate(&j)
		require.Error(t, j.Validate(), name)
		_, err := NewCoordinator(testCtx(t), CoordinatorConfig{}, j, NewMemStorage(), t0)
		require.Error(t, err, name)
	}
	j := testJobInfo()
	require.NoError(t, j.Validate())
}

// TestCoordinatorScheduling drives the periodic trigger rules with a fake
// clock: interval, max concurrent, min pause.
func TestCoordinatorScheduling(t *testing.T) {
	type step struct {
		at      time.Duration
		do      string // "should", "trigger", "complete"
		want    bool   // for "should"
		wantErr error  // for "trigger"
	}
	tests := []struct {
		name  string
		cfg   CoordinatorConfig
		steps []step
	}{
		{"interval", CoordinatorConfig{Interval: 10 * time.Second}, []step{
			{at: 9 * time.Second, do: "should", want: false},
			{at: 10 * time.Second, do: "should", want: true},
			{at: 10 * time.Second, do: "trigger"},
			{at: 20 * time.Second, do: "should", want: false}, // one pending, max concurrent 1
			{at: 20 * time.Second, do: "trigger", wantErr: ErrTooManyConcurrent},
			{at: 21 * time.Second, do: "complete"},
			{at: 21 * time.Second, do: "should", want: true}, // overdue since 20s
			{at: 21 * time.Second, do: "trigger"},
			{at: 30 * time.Second, do: "complete"},
			{at: 30 * time.Second, do: "should", want: false}, // next at 31s
			{at: 31 * time.Second, do: "should", want: true},
		}},
		{"max concurrent 2", CoordinatorConfig{Interval: 10 * time.Second, MaxConcurrent: 2}, []step{
			{at: 10 * time.Second, do: "trigger"},
			{at: 20 * time.Second, do: "should", want: true},
			{at: 20 * time.Second, do: "trigger"},
			{at: 30 * time.Second, do: "should", want: false},
			{at: 30 * time.Second, do: "trigger", wantErr: ErrTooManyConcurrent},
		}},
		{"min pause", CoordinatorConfig{Interval: 10 * time.Second, MinPauseBetweenCheckpoints: 15 * time.Second, MaxConcurrent: 3}, []step{
			{at: 10 * time.Second, do: "trigger"},
			{at: 20 * time.Second, do: "should", want: false}, // min pause forces one at a time
			{at: 20 * time.Second, do: "trigger", wantErr: ErrTooManyConcurrent},
			{at: 22 * time.Second, do: "complete"},
			{at: 30 * time.Second, do: "should", want: false}, // pause until 37s
			{at: 30 * time.Second, do: "trigger", wantErr: ErrMinPause},
			{at: 37 * time.Second, do: "should", want: true},
			{at: 37 * time.Second, do: "trigger"},
		}},
		{"periodic off", CoordinatorConfig{}, []step{
			{at: time.Hour, do: "should", want: false},
			{at: time.Hour, do: "trigger"}, // manual checkpoints still work
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStorage()
			c := newTestCoordinator(t, tc.cfg, s)
			var last TriggerResult
			for i, st := range tc.steps {
				now := at(st.at)
				switch st.do {
				case "should":
					require.Equal(t, st.want, c.ShouldTrigger(now), "step %d at %v", i, st.at)
				case "trigger":
					tr, err := c.Trigger(now, false, "")
					if st.wantErr != nil {
						require.ErrorIs(t, err, st.wantErr, "step %d", i)
						continue
					}
					require.NoError(t, err, "step %d", i)
					require.Equal(t, sourceTasks, tr.Sources)
					require.Equal(t, CheckpointLocation(coordJob, tr.ID), tr.Location)
					last = tr
				case "complete":
					ackAll(t, c, s, now, last)
					_, err := c.Complete(testCtx(t), now, last.ID)
					require.NoError(t, err, "step %d", i)
				}
			}
		})
	}
}

func TestCoordinatorNextDeadline(t *testing.T) {
	c := newTestCoordinator(t, CoordinatorConfig{Interval: 10 * time.Second, Timeout: time.Minute, MaxConcurrent: 2}, NewMemStorage())
	next, ok := c.NextDeadline(t0)
	require.True(t, ok)
	require.Equal(t, at(10*time.Second), next)
	_, err := c.Trigger(at(10*time.Second), false, "")
	require.NoError(t, err)
	next, _ = c.NextDeadline(at(10 * time.Second))
	require.Equal(t, at(20*time.Second), next, "next periodic trigger")
	_, err = c.Trigger(at(20*time.Second), false, "")
	require.NoError(t, err)
	next, _ = c.NextDeadline(at(20 * time.Second))
	require.Equal(t, at(70*time.Second), next, "at max concurrent: the first timeout")

	idle := newTestCoordinator(t, CoordinatorConfig{}, NewMemStorage())
	_, ok = idle.NextDeadline(t0)
	require.False(t, ok)
}

func TestCoordinatorCompleteWritesMetadata(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{Mode: AtLeastOnce}, s)
	tr, err := c.Trigger(at(time.Second), false, "")
	require.NoError(t, err)
	require.Equal(t, int64(1), tr.ID)
	require.Equal(t, AtLeastOnce, tr.Mode)
	ackAll(t, c, s, at(2*time.Second), tr)

	res, err := c.Complete(ctx, at(3*time.Second), tr.ID)
	require.NoError(t, err)
	require.Nil(t, res.Failed)
	done := res.Completed
	require.Equal(t, allTasks, done.Notify)
	require.Equal(t, CheckpointLocation(coordJob, 1), done.Location)
	require.Empty(t, c.Pending())

	m, err := s.ReadMetadata(ctx, done.Location)
	require.NoError(t, err)
	require.Equal(t, coordJob, m.JobID)
	require.Equal(t, "wordcount", m.JobName)
	require.Equal(t, at(time.Second), m.Timestamp)
	require.Len(t, m.Operators, 2, "stateless operators are left out")
	src, cnt := m.Operators[0], m.Operators[1]
	require.Equal(t, "src", src.OperatorID)
	require.Equal(t, "source", src.UID)
	require.Equal(t, 2, src.Parallelism)
	require.Equal(t, state.DefaultMaxParallelism, src.MaxParallelism)
	require.Equal(t, []byte{1, 1}, src.Subtasks[1].Raw["offset"])
	require.Equal(t, "counter", cnt.OperatorID)
	require.Equal(t, 8, cnt.MaxParallelism)
	require.Len(t, cnt.Subtasks, 2)
	require.Equal(t, state.KeyGroupRange{Start: 4, End: 7}, cnt.Subtasks[1].Keyed[0].KeyGroups)
	require.Equal(t, pattern(40, 1), readStream(t, ctx, s, cnt.Subtasks[1].Keyed[0].Stream))

	latest, ok := c.Store().Latest()
	require.True(t, ok)
	require.Equal(t, int64(1), latest.ID)
	require.Same(t, done.Metadata, latest.Metadata)

	_, err = c.Complete(ctx, at(4*time.Second), tr.ID)
	require.ErrorIs(t, err, ErrUnknownCheckpoint, "completing twice")
}

func TestCoordinatorAcknowledgements(t *testing.T) {
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{TolerableFailures: 5}, s)
	tr, err := c.Trigger(t0, false, "")
	require.NoError(t, err)
	ack := taskAck(t, s, tr.Location, tr.ID, TaskID{1, 0})

	// Errors: the ack is refused and changes nothing.
	for _, task := range []TaskID{{2, 0}, {0, 2}, {-1, 0}, {1, -1}} {
		_, err := c.Acknowledge(t0, tr.ID, task, ack)
		require.ErrorIs(t, err, ErrUnknownTask, "%s", task)
		_, err = c.Decline(t0, tr.ID, task, nil)
		require.ErrorIs(t, err, ErrUnknownTask, "%s", task)
	}
	_, err = c.Acknowledge(t0, tr.ID, TaskID{0, 0}, ack)
	require.ErrorIs(t, err, ErrInvalidAck, "state of an operator of another vertex")
	bad := TaskAck{States: map[string]SubtaskState{"counter": {Keyed: []KeyedStateHandle{{
		Stream: StreamHandle{Path: "mem://x", Size: 1}, KeyGroups: state.KeyGroupRange{Start: 0, End: 9}, Offsets: make([]int64, 10),
	}}}}}
	_, err = c.Acknowledge(t0, tr.ID, TaskID{1, 0}, bad)
	require.ErrorIs(t, err, ErrInvalidAck, "key groups beyond the max parallelism")
	_, err = c.Acknowledge(t0, tr.ID, TaskID{1, 0}, TaskAck{Bytes: -1})
	require.ErrorIs(t, err, ErrInvalidAck)

	res, err := c.Acknowledge(t0, tr.ID, TaskID{1, 0}, ack)
	require.NoError(t, err)
	require.Equal(t, AckRecorded, res.Outcome)
	res, err = c.Acknowledge(t0, tr.ID, TaskID{1, 0}, ack)
	require.NoError(t, err)
	require.Equal(t, AckDuplicate, res.Outcome)
	require.Empty(t, res.Discard)

	_, err = c.Complete(testCtx(t), t0, tr.ID)
	require.ErrorIs(t, err, ErrNotAcknowledged)
	require.Equal(t, []int64{tr.ID}, c.Pending(), "a refused Complete changes nothing")

	res, err = c.Acknowledge(t0, 99, TaskID{1, 0}, ack)
	require.NoError(t, err)
	require.Equal(t, AckUnknown, res.Outcome, "never triggered")
	require.Empty(t, res.Discard)

	a, err := c.Decline(t0, tr.ID, TaskID{0, 1}, errors.New("source not ready"))
	require.NoError(t, err)
	require.ErrorIs(t, a.Reason, ErrDeclined)
	require.ErrorContains(t, a.Reason, "source not ready")
	require.ErrorContains(t, a.Reason, "v0/s1")
	a, err = c.Decline(t0, tr.ID, TaskID{0, 1}, nil)
	require.NoError(t, err)
	require.Nil(t, a, "declining an aborted checkpoint is ignored")

	res, err = c.Acknowledge(t0, tr.ID, TaskID{1, 1}, taskAck(t, s, tr.Location, tr.ID, TaskID{1, 1}))
	require.NoError(t, err)
	require.Equal(t, AckLate, res.Outcome)
	require.Equal(t, []Location{tr.Location}, res.Discard)
	require.NoError(t, c.Discard(testCtx(t), res.Discard))
	require.Empty(t, s.Paths(), "the late ack's state is discarded")
	require.Equal(t, "late", AckLate.String())
}

func TestCoordinatorAbortNotifiesAndDiscards(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{Timeout: time.Minute, TolerableFailures: 10}, s)
	runCheckpoint(t, c, s, t0)
	kept := s.Paths()

	tr, err := c.Trigger(at(time.Second), false, "")
	require.NoError(t, err)
	for _, task := range allTasks[1:] {
		_, err := c.Acknowledge(at(2*time.Second), tr.ID, task, taskAck(t, s, tr.Location, tr.ID, task))
		require.NoError(t, err)
	}
	aborts, err := c.CheckTimeouts(at(60 * time.Second))
	require.NoError(t, err)
	require.Empty(t, aborts, "not yet expired")
	aborts, err = c.CheckTimeouts(at(61 * time.Second))
	require.NoError(t, err)
	require.Len(t, aborts, 1)
	a := aborts[0]
	require.Equal(t, tr.ID, a.ID)
	require.ErrorIs(t, a.Reason, ErrExpired)
	require.ErrorContains(t, a.Reason, "3 of 4 tasks acknowledged")
	require.Equal(t, allTasks, a.Notify)
	require.Equal(t, []Location{tr.Location}, a.Discard)
	require.NotEqual(t, kept, s.Paths())
	require.NoError(t, c.Discard(ctx, a.Discard))
	require.Equal(t, kept, s.Paths(), "only the aborted checkpoint's state is deleted")

	s.FailDeletes(ErrInjected)
	require.ErrorIs(t, c.Discard(ctx, a.Discard), ErrInjected)
	s.ClearFaults()
}

// TestCoordinatorTolerableFailures checks the failure manager: consecutive
// failures beyond TolerableFailures fail the job over; a completion resets
// the count; savepoints, subsumed and AbortAll'ed checkpoints do not count.
func TestCoordinatorTolerableFailures(t *testing.T) {
	type step struct {
		do       string // "decline", "expire", "finalize" (fails), "complete", "savepoint-fail", "abort-all"
		failover bool
	}
	tests := []struct {
		name      string
		tolerable int
		steps     []step
	}{
		{"default 0", 0, []step{{"decline", true}, {"expire", true}, {"finalize", true}}},
		{"tolerate 2", 2, []step{{"decline", false}, {"expire", false}, {"decline", true}, {"decline", false}}},
		{"completion resets", 1, []step{{"decline", false}, {"complete", false}, {"expire", false}, {"decline", true}}},
		{"savepoints and abort-all do not count", 0, []step{{"savepoint-fail", false}, {"abort-all", false}, {"decline", true}}},
		{"finalize failure counts", 1, []step{{"finalize", false}, {"decline", true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStorage()
			c := newTestCoordinator(t, CoordinatorConfig{TolerableFailures: tc.tolerable, Timeout: time.Minute}, s)
			now := t0
			for i, st := range tc.steps {
				now = now.Add(time.Hour)
				var err error
				switch st.do {
				case "decline":
					tr, terr := c.Trigger(now, false, "")
					require.NoError(t, terr)
					_, err = c.Decline(now, tr.ID, TaskID{1, 1}, nil)
				case "expire":
					_, terr := c.Trigger(now, false, "")
					require.NoError(t, terr)
					var aborts []Abort
					aborts, err = c.CheckTimeouts(now.Add(time.Minute))
					require.Len(t, aborts, 1)
				case "finalize":
					tr, terr := c.Trigger(now, false, "")
					require.NoError(t, terr)
					ackAll(t, c, s, now, tr)
					s.FailNthWrite(1, nil)
					var res CompleteResult
					res, err = c.Complete(testCtx(t), now, tr.ID)
					require.NotNil(t, res.Failed)
					require.ErrorIs(t, res.Failed.Reason, ErrFinalize)
					require.ErrorIs(t, res.Failed.Reason, ErrInjected)
				case "complete":
					runCheckpoint(t, c, s, now)
				case "savepoint-fail":
					tr, terr := c.Trigger(now, true, "sp")
					require.NoError(t, terr)
					a, derr := c.Decline(now, tr.ID, TaskID{0, 0}, nil)
					require.True(t, a.IsSavepoint)
					err = derr
				case "abort-all":
					_, terr := c.Trigger(now, false, "")
					require.NoError(t, terr)
					aborts := c.AbortAll(now, errors.New("task failed"))
					require.Len(t, aborts, 1)
					require.ErrorIs(t, aborts[0].Reason, ErrAborted)
				}
				if st.failover {
					require.ErrorIs(t, err, ErrTooManyFailures, "step %d %s", i, st.do)
				} else {
					require.NoError(t, err, "step %d %s", i, st.do)
				}
			}
		})
	}
}

func TestCoordinatorSavepointWhileCheckpointPending(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{}, s)
	chk, err := c.Trigger(t0, false, "")
	require.NoError(t, err)

	_, err = c.Trigger(t0, true, "")
	require.ErrorIs(t, err, ErrInvalidName, "a savepoint needs a target")
	sp, err := c.Trigger(at(time.Second), true, "before-upgrade")
	require.NoError(t, err, "savepoints are not bound by max concurrent")
	require.True(t, sp.IsSavepoint)
	require.Equal(t, chk.ID+1, sp.ID)
	require.Equal(t, SavepointLocation("before-upgrade"), sp.Location)
	_, err = c.Trigger(at(time.Second), true, "before-upgrade")
	require.ErrorIs(t, err, ErrTooManyConcurrent, "a second savepoint to the same target")
	_, err = c.Trigger(at(time.Second), false, "")
	require.ErrorIs(t, err, ErrTooManyConcurrent, "pending savepoints count for checkpoints")

	ackAll(t, c, s, at(2*time.Second), sp)
	res, err := c.Complete(ctx, at(2*time.Second), sp.ID)
	require.NoError(t, err)
	require.True(t, res.Completed.IsSavepoint)
	require.Empty(t, res.Subsumed, "a savepoint does not subsume checkpoints")
	require.Equal(t, []int64{chk.ID}, c.Pending())
	m, err := s.ReadMetadata(ctx, sp.Location)
	require.NoError(t, err)
	require.True(t, m.IsSavepoint)
	_, ok := c.Store().Latest()
	require.False(t, ok, "savepoints are not added to the store")

	ackAll(t, c, s, at(3*time.Second), chk)
	res, err = c.Complete(ctx, at(3*time.Second), chk.ID)
	require.NoError(t, err)
	latest, ok := c.Store().Latest()
	require.True(t, ok)
	require.Equal(t, chk.ID, latest.ID)
}

func TestCoordinatorSubsumesOlderCheckpoints(t *testing.T) {
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{MaxConcurrent: 3}, s)
	first, err := c.Trigger(t0, false, "")
	require.NoError(t, err)
	sp, err := c.Trigger(t0, true, "sp")
	require.NoError(t, err)
	res := runCheckpoint(t, c, s, at(time.Second))
	require.Len(t, res.Subsumed, 1)
	require.Equal(t, first.ID, res.Subsumed[0].ID)
	require.ErrorIs(t, res.Subsumed[0].Reason, ErrSubsumed)
	require.Equal(t, []int64{sp.ID}, c.Pending(), "savepoints are not subsumed")
}

func TestCoordinatorBeforeCommit(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	fenced := errors.New("not the leader")
	var calls []int64
	var commitErr error
	cfg := CoordinatorConfig{TolerableFailures: 1, BeforeCommit: func(ctx context.Context, m *Metadata) error {
		calls = append(calls, m.CheckpointID)
		ids, err := s.ListCheckpoints(ctx, coordJob)
		require.NoError(t, err)
		require.Contains(t, ids, m.CheckpointID, "metadata is written before the commit")
		return commitErr
	}}
	c := newTestCoordinator(t, cfg, s)
	runCheckpoint(t, c, s, t0)

	commitErr = fenced
	tr, err := c.Trigger(at(time.Second), false, "")
	require.NoError(t, err)
	ackAll(t, c, s, at(time.Second), tr)
	res, err := c.Complete(ctx, at(2*time.Second), tr.ID)
	require.NoError(t, err, "one failure tolerated")
	require.Nil(t, res.Completed)
	require.ErrorIs(t, res.Failed.Reason, fenced)
	require.ErrorIs(t, res.Failed.Reason, ErrFinalize)
	require.Equal(t, []Location{tr.Location}, res.Failed.Discard)
	ids, err := s.ListCheckpoints(ctx, coordJob)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, ids, "the uncommitted metadata is deleted")
	latest, _ := c.Store().Latest()
	require.Equal(t, int64(1), latest.ID, "the store still holds the last committed checkpoint")
	require.Equal(t, []int64{1, 2}, calls)

	// Savepoints are not committed.
	sp, err := c.Trigger(at(3*time.Second), true, "sp")
	require.NoError(t, err)
	ackAll(t, c, s, at(3*time.Second), sp)
	res, err = c.Complete(ctx, at(3*time.Second), sp.ID)
	require.NoError(t, err)
	require.NotNil(t, res.Completed)
	require.Equal(t, []int64{1, 2}, calls)

	for i, want := range []error{nil, ErrTooManyFailures} {
		now := at(time.Duration(4+i) * time.Second)
		tr, err = c.Trigger(now, false, "")
		require.NoError(t, err)
		ackAll(t, c, s, now, tr)
		res, err = c.Complete(ctx, now, tr.ID)
		require.ErrorIs(t, res.Failed.Reason, fenced)
		if want == nil {
			require.NoError(t, err, "the completed savepoint reset the count")
		} else {
			require.ErrorIs(t, err, want, "second consecutive failure")
		}
	}
	require.Equal(t, []int64{1, 2, 4, 5}, calls)
}

func TestCoordinatorFinalizeOverExistingMetadata(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{TolerableFailures: 1}, s)
	tr, err := c.Trigger(t0, false, "")
	require.NoError(t, err)
	ackAll(t, c, s, t0, tr)
	// Another writer (a deposed leader with a reused id) completed chk-1.
	other := testMetadata(coordJob, 1, StreamHandle{}, StreamHandle{})
	require.NoError(t, s.WriteMetadata(ctx, tr.Location, other))

	res, err := c.Complete(ctx, t0, tr.ID)
	require.NoError(t, err)
	require.ErrorIs(t, res.Failed.Reason, ErrExists)
	require.Empty(t, res.Failed.Discard, "somebody else's checkpoint is not discarded")
	m, err := s.ReadMetadata(ctx, tr.Location)
	require.NoError(t, err)
	require.Equal(t, "wordcount", m.JobName)
	require.Len(t, m.Operators, 1)
}

func TestCoordinatorRetention(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{MaxRetained: 2}, s)
	for i := range 4 {
		runCheckpoint(t, c, s, at(time.Duration(i)*time.Second))
	}
	ids, err := s.ListCheckpoints(ctx, coordJob)
	require.NoError(t, err)
	require.Equal(t, []int64{3, 4}, ids)
	for _, p := range s.Paths() {
		require.Regexp(t, `^mem://job-c/chk-[34]/`, p, "the state of older checkpoints is deleted")
	}
	require.Equal(t, uint64(2), c.Store().Stats().Deleted)
}

func TestCoordinatorRestore(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()

	fresh := newTestCoordinator(t, CoordinatorConfig{}, s)
	m, ok, err := fresh.LatestForRestore(ctx, t0)
	require.NoError(t, err)
	require.False(t, ok, "nothing to restore")
	require.Nil(t, m)
	for i := range 3 {
		runCheckpoint(t, fresh, s, at(time.Duration(i)*time.Second))
	}
	_, err = fresh.Trigger(at(10*time.Second), false, "") // id 4, never completed
	require.NoError(t, err)

	c := newTestCoordinator(t, CoordinatorConfig{}, s)
	require.Equal(t, int64(4), c.NextCheckpointID())
	m, ok, err = c.LatestForRestore(ctx, at(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(3), m.CheckpointID)
	require.Equal(t, []byte{3, 0}, m.Operators[0].Subtasks[0].Raw["offset"])
	tr, err := c.Trigger(at(time.Minute), false, "")
	require.NoError(t, err)
	require.Equal(t, int64(4), tr.ID, "ids continue after the restored checkpoint")
	st := c.Stats()
	require.Equal(t, uint64(1), st.Counts.Restored)
	require.Equal(t, int64(3), st.LatestRestored.ID)

	hi := newTestCoordinator(t, CoordinatorConfig{FirstCheckpointID: 10}, s)
	require.Equal(t, int64(10), hi.NextCheckpointID(), "an HA counter ahead of the store wins")
}

// TestCoordinatorRestoreUnreadable: a job told to restore never silently
// starts empty.
func TestCoordinatorRestoreUnreadable(t *testing.T) {
	ctx := testCtx(t)
	isMetadata := func(p string) bool { return p == "mem://job-c/chk-1/_metadata" }

	t.Run("corrupt at open", func(t *testing.T) {
		s := NewMemStorage()
		runCheckpoint(t, newTestCoordinator(t, CoordinatorConfig{}, s), s, t0)
		s.CorruptReads(isMetadata)
		_, err := NewCoordinator(ctx, CoordinatorConfig{}, testJobInfo(), s, t0)
		require.ErrorIs(t, err, ErrCorrupt)
	})
	t.Run("corrupt after open", func(t *testing.T) {
		s := NewMemStorage()
		c := newTestCoordinator(t, CoordinatorConfig{}, s)
		runCheckpoint(t, c, s, t0)
		s.CorruptReads(isMetadata)
		_, ok, err := c.LatestForRestore(ctx, t0)
		require.ErrorIs(t, err, ErrRestore)
		require.ErrorIs(t, err, ErrCorrupt)
		require.False(t, ok)
	})
	t.Run("deleted behind the store's back", func(t *testing.T) {
		s := NewMemStorage()
		c := newTestCoordinator(t, CoordinatorConfig{}, s)
		runCheckpoint(t, c, s, t0)
		require.NoError(t, s.Delete(ctx, CheckpointLocation(coordJob, 1)))
		_, _, err := c.LatestForRestore(ctx, t0)
		require.ErrorIs(t, err, ErrRestore)
		require.ErrorIs(t, err, ErrNotFound)
	})
	t.Run("completed elsewhere after open", func(t *testing.T) {
		s := NewMemStorage()
		c := newTestCoordinator(t, CoordinatorConfig{}, s)
		require.NoError(t, s.WriteMetadata(ctx, CheckpointLocation(coordJob, 1), testMetadata(coordJob, 1, StreamHandle{}, StreamHandle{})))
		_, _, err := c.LatestForRestore(ctx, t0)
		require.ErrorIs(t, err, ErrRestore)
	})
}

func TestCoordinatorShutdown(t *testing.T) {
	s := NewMemStorage()
	c := newTestCoordinator(t, CoordinatorConfig{Interval: time.Second, MaxConcurrent: 2}, s)
	_, err := c.Trigger(at(time.Second), false, "")
	require.NoError(t, err)
	_, err = c.Trigger(at(2*time.Second), true, "sp")
	require.NoError(t, err)
	aborts := c.Shutdown(at(3 * time.Second))
	require.Len(t, aborts, 2)
	for _, a := range aborts {
		require.ErrorIs(t, a.Reason, ErrAborted)
		require.ErrorIs(t, a.Reason, ErrCoordinatorStopped)
	}
	require.False(t, c.ShouldTrigger(at(time.Hour)))
	_, err = c.Trigger(at(time.Hour), false, "")
	require.ErrorIs(t, err, ErrCoordinatorStopped)
	_, err = c.Trigger(at(time.Hour), true, "sp2")
	require.ErrorIs(t, err, ErrCoordinatorStopped)
	_, ok := c.NextDeadline(at(time.Hour))
	require.False(t, ok)
}

func TestCoordinatorBeforeCommitOutcomeUnknown(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	var commitErr error
	cfg := CoordinatorConfig{TolerableFailures: 5, BeforeCommit: func(ctx context.Context, m *Metadata) error { return commitErr }}
	c := newTestCoordinator(t, cfg, s)
	runCheckpoint(t, c, s, t0)

	commitErr = fmt.Errorf("%w: leadership lost", ErrCommitOutcomeUnknown)
	tr, err := c.Trigger(at(time.Second), false, "")
	require.NoError(t, err)
	ackAll(t, c, s, at(time.Second), tr)
	res, err := c.Complete(ctx, at(2*time.Second), tr.ID)
	require.NoError(t, err)
	require.Nil(t, res.Completed, "not announced: the commit may not have happened")
	require.ErrorIs(t, res.Failed.Reason, ErrCommitOutcomeUnknown)
	require.Empty(t, res.Failed.Discard, "a later leader may restore from it: nothing is discarded")
	ids, err := s.ListCheckpoints(ctx, coordJob)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2}, ids, "the metadata stays")
}

// The error that fails the job over after too many checkpoint failures
// wraps the last failure's cause, with the task that declined, and names
// the first when it differs: "exceeded tolerable checkpoint failures"
// alone does not say that the disk is full.
func TestCoordinatorTooManyFailuresNamesTheCause(t *testing.T) {
	c := newTestCoordinator(t, CoordinatorConfig{TolerableFailures: 1}, NewMemStorage())
	full := fmt.Errorf("write /ckpt/chk-1/x: %w", syscall.ENOSPC)
	tr, err := c.Trigger(t0, false, "")
	require.NoError(t, err)
	_, err = c.Decline(t0, tr.ID, TaskID{0, 1}, full)
	require.NoError(t, err, "one failure is tolerated")
	tr, err = c.Trigger(at(time.Minute), false, "")
	require.NoError(t, err)
	_, err = c.Decline(at(time.Minute), tr.ID, TaskID{0, 0}, errors.New("permission denied"))
	require.ErrorIs(t, err, ErrTooManyFailures)
	require.ErrorIs(t, err, ErrDeclined)
	require.Contains(t, err.Error(), "checkpoint 2: checkpoint: declined by task v0/s0: permission denied")
	require.Contains(t, err.Error(), "the first, checkpoint 1: checkpoint: declined by task v0/s1: write /ckpt/chk-1/x: no space left on device")

	// A new series names only its own cause.
	tr, err = c.Trigger(at(2*time.Minute), false, "")
	require.NoError(t, err)
	_, err = c.Decline(at(2*time.Minute), tr.ID, TaskID{0, 1}, full)
	require.NoError(t, err)
	tr, err = c.Trigger(at(3*time.Minute), false, "")
	require.NoError(t, err)
	_, err = c.Decline(at(3*time.Minute), tr.ID, TaskID{0, 1}, full)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.NotContains(t, err.Error(), "permission denied")
	require.NotContains(t, err.Error(), "the first")
}
