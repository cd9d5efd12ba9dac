package checkpoint

import (
	"slices"
	"sync"
	"time"
)

// CheckpointStatus is the state of one checkpoint in the statistics, as
// Flink's CheckpointStatsStatus.
type CheckpointStatus uint8

const (
	// StatusInProgress: triggered, not yet completed or failed.
	StatusInProgress CheckpointStatus = iota
	// StatusCompleted: the metadata was written and committed.
	StatusCompleted
	// StatusFailed: declined, expired, subsumed, aborted or failed to
	// complete.
	StatusFailed
)

// String returns the status as Flink's REST API spells it.
func (s CheckpointStatus) String() string {
	switch s {
	case StatusInProgress:
		return "IN_PROGRESS"
	case StatusCompleted:
		return "COMPLETED"
	case StatusFailed:
		return "FAILED"
	}
	return "UNKNOWN"
}

// MarshalText implements encoding.TextMarshaler, so JSON shows the name.
func (s CheckpointStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// CheckpointStats describes one checkpoint or savepoint, as an entry of
// Flink's /jobs/:id/checkpoints history.
type CheckpointStats struct {
	// ID is the checkpoint's id.
	ID int64 `json:"id"`
	// IsSavepoint marks a savepoint.
	IsSavepoint bool `json:"is_savepoint"`
	// Status is where the checkpoint is in its life.
	Status CheckpointStatus `json:"status"`
	// TriggerTime is when it was triggered.
	TriggerTime time.Time `json:"trigger_timestamp"`
	// LatestAckTime is when the last acknowledgement arrived; zero if none
	// has.
	LatestAckTime time.Time `json:"latest_ack_timestamp"`
	// EndTime is when it completed or failed; zero while in progress.
	EndTime time.Time `json:"end_timestamp"`
	// Duration is EndTime - TriggerTime, or LatestAckTime - TriggerTime
	// while in progress (Flink's end_to_end_duration).
	Duration time.Duration `json:"end_to_end_duration"`
	// StateSize is the sum of the bytes the acknowledging tasks reported.
	StateSize int64 `json:"state_size"`
	// MaxAlignment is the longest barrier alignment among the
	// acknowledgements.
	MaxAlignment time.Duration `json:"alignment_buffered"`
	// NumAcknowledged is how many tasks acknowledged, of NumTasks.
	NumAcknowledged int `json:"num_acknowledged_subtasks"`
	// NumTasks is how many tasks must acknowledge.
	NumTasks int `json:"num_subtasks"`
	// ExternalPath locates the checkpoint's directory (Location.String()).
	ExternalPath string `json:"external_path,omitempty"`
	// FailureReason says why a failed checkpoint failed.
	FailureReason string `json:"failure_message,omitempty"`
}

// StatsCounts are the running totals of a coordinator's checkpoints.
type StatsCounts struct {
	// Triggered counts checkpoints and savepoints triggered.
	Triggered uint64 `json:"total"`
	// InProgress is how many are pending now.
	InProgress int `json:"in_progress"`
	// Completed counts completed ones.
	Completed uint64 `json:"completed"`
	// Failed counts failed ones.
	Failed uint64 `json:"failed"`
	// Restored counts restores through LatestForRestore.
	Restored uint64 `json:"restored"`
}

// MinMaxAvg summarizes a quantity over the completed checkpoints in the
// history.
type MinMaxAvg struct {
	// Min is the smallest value.
	Min int64 `json:"min"`
	// Max is the largest value.
	Max int64 `json:"max"`
	// Avg is the mean, rounded down.
	Avg int64 `json:"avg"`
}

// StatsSummary summarizes the completed checkpoints in the history.
type StatsSummary struct {
	// StateSize is in bytes.
	StateSize MinMaxAvg `json:"state_size"`
	// Duration is in milliseconds.
	Duration MinMaxAvg `json:"end_to_end_duration"`
	// Alignment is the maximum alignment per checkpoint, in milliseconds.
	Alignment MinMaxAvg `json:"alignment_buffered"`
}

// RestoredStats describes the checkpoint the job was last restored from.
type RestoredStats struct {
	// ID is the restored checkpoint's id.
	ID int64 `json:"id"`
	// RestoreTime is when it was handed out for the restore.
	RestoreTime time.Time `json:"restore_timestamp"`
	// ExternalPath locates it.
	ExternalPath string `json:"external_path"`
}

// Stats is a snapshot of a coordinator's checkpoint statistics, shaped after
// Flink's /jobs/:id/checkpoints response. It is a copy: the caller owns it.
type Stats struct {
	// Counts are the running totals.
	Counts StatsCounts `json:"counts"`
	// Summary covers the completed checkpoints in History.
	Summary StatsSummary `json:"summary"`
	// LatestCompleted is the newest completed checkpoint (not savepoint).
	LatestCompleted *CheckpointStats `json:"latest_completed,omitempty"`
	// LatestSavepoint is the newest completed savepoint.
	LatestSavepoint *CheckpointStats `json:"latest_savepoint,omitempty"`
	// LatestFailed is the newest failed checkpoint or savepoint.
	LatestFailed *CheckpointStats `json:"latest_failed,omitempty"`
	// LatestRestored is the checkpoint last handed out for a restore.
	LatestRestored *RestoredStats `json:"latest_restored,omitempty"`
	// History holds the most recent checkpoints, newest first, at most
	// CoordinatorConfig.StatsHistory of them, in-progress ones included.
	History []CheckpointStats `json:"history"`
}

// Checkpoint returns the history entry of checkpoint id, if it is still in
// the history.
func (s *Stats) Checkpoint(id int64) (CheckpointStats, bool) {
	for _, c := range s.History {
		if c.ID == id {
			return c, true
		}
	}
	return CheckpointStats{}, false
}

// statsTracker records checkpoint statistics, as Flink's
// CheckpointStatsTracker. The coordinator's goroutine updates it; Snapshot
// may be called from any goroutine.
type statsTracker struct {
	mu       sync.Mutex
	capacity int
	counts   StatsCounts
	history  []CheckpointStats // oldest first, at most capacity
	// latest entries are kept apart from the history, which may roll them
	// out.
	completed, savepoint, failed *CheckpointStats
	restored                     *RestoredStats
}

func newStatsTracker(capacity int) *statsTracker {
	return &statsTracker{capacity: capacity}
}

// find returns the history entry of id, or nil. Called with mu held.
func (t *statsTracker) find(id int64) *CheckpointStats {
	for i := len(t.history) - 1; i >= 0; i-- {
		if t.history[i].ID == id {
			return &t.history[i]
		}
	}
	return nil
}

func (t *statsTracker) triggered(id int64, savepoint bool, at time.Time, tasks int, loc Location) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts.Triggered++
	t.counts.InProgress++
	if len(t.history) == t.capacity {
		// Drop the oldest entry that is not in progress, else the oldest.
		i := slices.IndexFunc(t.history, func(c CheckpointStats) bool { return c.Status != StatusInProgress })
		t.history = slices.Delete(t.history, max(i, 0), max(i, 0)+1)
	}
	t.history = append(t.history, CheckpointStats{
		ID: id, IsSavepoint: savepoint, Status: StatusInProgress, TriggerTime: at,
		NumTasks: tasks, ExternalPath: loc.String(),
	})
}

func (t *statsTracker) acknowledged(id int64, at time.Time, bytes int64, alignment time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.find(id)
	if c == nil {
		return
	}
	c.NumAcknowledged++
	c.LatestAckTime = at
	c.Duration = at.Sub(c.TriggerTime)
	c.StateSize += bytes
	c.MaxAlignment = max(c.MaxAlignment, alignment)
}

func (t *statsTracker) ended(id int64, at time.Time, reason error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts.InProgress--
	c := t.find(id)
	if c == nil {
		return
	}
	c.EndTime = at
	c.Duration = at.Sub(c.TriggerTime)
	cp := *c
	if reason != nil {
		c.Status, cp.Status = StatusFailed, StatusFailed
		c.FailureReason = reason.Error()
		cp.FailureReason = c.FailureReason
		t.counts.Failed++
		t.failed = &cp
		return
	}
	c.Status, cp.Status = StatusCompleted, StatusCompleted
	t.counts.Completed++
	if cp.IsSavepoint {
		t.savepoint = &cp
	} else {
		t.completed = &cp
	}
}

func (t *statsTracker) restoredFrom(id int64, at time.Time, loc Location) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts.Restored++
	t.restored = &RestoredStats{ID: id, RestoreTime: at, ExternalPath: loc.String()}
}

// snapshot returns a copy of the statistics.
func (t *statsTracker) snapshot() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{Counts: t.counts, History: make([]CheckpointStats, 0, len(t.history))}
	for i := len(t.history) - 1; i >= 0; i-- {
		s.History = append(s.History, t.history[i])
	}
	clone := func(c *CheckpointStats) *CheckpointStats {
		if c == nil {
			return nil
		}
		cp := *c
		return &cp
	}
	s.LatestCompleted, s.LatestSavepoint, s.LatestFailed = clone(t.completed), clone(t.savepoint), clone(t.failed)
	if t.restored != nil {
		r := *t.restored
		s.LatestRestored = &r
	}
	var size, dur, align []int64
	for _, c := range t.history {
		if c.Status == StatusCompleted {
			size = append(size, c.StateSize)
			dur = append(dur, c.Duration.Milliseconds())
			align = append(align, c.MaxAlignment.Milliseconds())
		}
	}
	s.Summary = StatsSummary{StateSize: summarize(size), Duration: summarize(dur), Alignment: summarize(align)}
	return s
}

func summarize(v []int64) MinMaxAvg {
	if len(v) == 0 {
		return MinMaxAvg{}
	}
	var sum int64
	for _, x := range v {
		sum += x
	}
	return MinMaxAvg{Min: slices.Min(v), Max: slices.Max(v), Avg: sum / int64(len(v))}
}
