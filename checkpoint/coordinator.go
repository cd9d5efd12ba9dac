package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// Errors of the Coordinator. Misuse errors (a refused trigger, an unknown
// task, an incomplete checkpoint) leave the coordinator unchanged.
var (
	// ErrTooManyConcurrent: a checkpoint was triggered while
	// MaxConcurrent checkpoints (or, with a minimum pause, any checkpoint)
	// are pending, or a savepoint to a target that has one pending.
	ErrTooManyConcurrent = errors.New("checkpoint: too many concurrent checkpoints")
	// ErrMinPause: a checkpoint was triggered before
	// MinPauseBetweenCheckpoints elapsed since the last completion.
	ErrMinPause = errors.New("checkpoint: minimum pause between checkpoints not elapsed")
	// ErrCoordinatorStopped: the coordinator was shut down.
	ErrCoordinatorStopped = errors.New("checkpoint: coordinator stopped")
	// ErrUnknownTask: an acknowledgement or decline came from a task that
	// is not part of the job.
	ErrUnknownTask = errors.New("checkpoint: unknown task")
	// ErrInvalidAck: an acknowledgement holds state of operators the task
	// does not run, or invalid handles.
	ErrInvalidAck = errors.New("checkpoint: invalid acknowledgement")
	// ErrUnknownCheckpoint: Complete was called for a checkpoint that is not
	// pending.
	ErrUnknownCheckpoint = errors.New("checkpoint: unknown checkpoint")
	// ErrNotAcknowledged: Complete was called before every task
	// acknowledged.
	ErrNotAcknowledged = errors.New("checkpoint: not acknowledged by every task")
	// ErrTooManyFailures: more consecutive checkpoints failed than
	// TolerableFailures allows; the job must fail over (Flink's
	// CheckpointFailureManager).
	ErrTooManyFailures = errors.New("checkpoint: exceeded tolerable checkpoint failures")
	// ErrRestore: the latest completed checkpoint cannot be handed out for
	// a restore.
	ErrRestore = errors.New("checkpoint: cannot restore latest checkpoint")
	// ErrCommitOutcomeUnknown is wrapped by a BeforeCommit error when the
	// commit may still take effect (in HA mode: the pointer reached the
	// Raft log, but leadership was lost before it committed). The
	// checkpoint is aborted for this coordinator, but its metadata and
	// state stay in storage, since a later leader may restore from it.
	ErrCommitOutcomeUnknown = errors.New("checkpoint: commit outcome unknown")
)

// Reasons of aborted checkpoints, wrapped by Abort.Reason.
var (
	// ErrDeclined: a task declined the checkpoint.
	ErrDeclined = errors.New("checkpoint: declined")
	// ErrExpired: the checkpoint did not complete within Timeout.
	ErrExpired = errors.New("checkpoint: expired before completing")
	// ErrSubsumed: a newer checkpoint completed first.
	ErrSubsumed = errors.New("checkpoint: subsumed by a newer checkpoint")
	// ErrFinalize: writing or committing the metadata failed.
	ErrFinalize = errors.New("checkpoint: could not finalize")
	// ErrTaskNotReady: a subtask declined a checkpoint because it is not
	// running yet or is being stopped (Flink's TASK_NOT_READY and
	// TASK_CLOSING). Such declines abort the checkpoint but do not count
	// towards TolerableFailures: the job is starting or failing over anyway.
	ErrTaskNotReady = errors.New("checkpoint: task not ready")
	// ErrAborted: AbortAll or Shutdown aborted the checkpoint.
	ErrAborted = errors.New("checkpoint: aborted")
)

// CheckpointingMode says whether operators with several inputs align
// barriers, as Flink's CheckpointingMode.
type CheckpointingMode uint8

const (
	// ExactlyOnce aligns barriers: state reflects each record exactly once.
	ExactlyOnce CheckpointingMode = iota
	// AtLeastOnce does not align: records after a barrier may be in the
	// state and replayed after a restore.
	AtLeastOnce
)

// String returns Flink's name of the mode.
func (m CheckpointingMode) String() string {
	switch m {
	case ExactlyOnce:
		return "EXACTLY_ONCE"
	case AtLeastOnce:
		return "AT_LEAST_ONCE"
	}
	return fmt.Sprintf("CheckpointingMode(%d)", uint8(m))
}

// CoordinatorConfig configures a Coordinator. Zero values mean the defaults.
type CoordinatorConfig struct {
	// Interval between periodic checkpoints (execution.checkpointing.interval);
	// 0 disables them, leaving manual checkpoints and savepoints.
	Interval time.Duration
	// Timeout after which a pending checkpoint expires
	// (execution.checkpointing.timeout). Default 10 minutes.
	Timeout time.Duration
	// MinPauseBetweenCheckpoints is the least time between a checkpoint's
	// completion and the next trigger (execution.checkpointing.min-pause).
	// When positive, at most one checkpoint is pending at a time, as in
	// Flink. Default 0.
	MinPauseBetweenCheckpoints time.Duration
	// MaxConcurrent bounds the pending checkpoints
	// (execution.checkpointing.max-concurrent-checkpoints). Pending
	// savepoints count towards it, but a savepoint can always be triggered.
	// Default 1.
	MaxConcurrent int
	// TolerableFailures is how many consecutive checkpoint failures are
	// tolerated before the job must fail over
	// (execution.checkpointing.tolerable-failed-checkpoints). Default 0:
	// the first failure fails the job over. Savepoint failures, subsumed and
	// AbortAll'ed checkpoints do not count.
	TolerableFailures int
	// MaxRetained is how many completed checkpoints are kept
	// (state.checkpoints.num-retained). Default 1.
	MaxRetained int
	// Mode is the checkpointing mode, passed on with the trigger.
	Mode CheckpointingMode
	// FirstCheckpointID is the least id the next checkpoint gets; ids
	// continue after the latest completed checkpoint anyway. HA setups pass
	// the counter they keep (Flink's CheckpointIDCounter), so ids of
	// checkpoints aborted before a crash are not reused. Default 1.
	FirstCheckpointID int64
	// StatsHistory is how many checkpoints Stats keeps in its history
	// (web.checkpoints.history). Default 10.
	StatsHistory int
	// BeforeCommit, if set, is called when a checkpoint's metadata has been
	// written and before it is added to the store and announced: in HA mode
	// it commits the pointer to Raft. If it fails the checkpoint fails and
	// its metadata is deleted, so that a deposed leader completes nothing;
	// unless the error wraps ErrCommitOutcomeUnknown, in which case the
	// checkpoint is aborted but its data kept. It is not called for savepoints. It may block, bounded by the context
	// passed to Complete; it must not keep m.
	BeforeCommit func(ctx context.Context, m *Metadata) error
	// Logger receives failures of best-effort deletions. Default: discard.
	Logger *slog.Logger
}

// DefaultCoordinatorConfig returns Flink's defaults, with periodic
// checkpoints off.
func DefaultCoordinatorConfig() CoordinatorConfig {
	return CoordinatorConfig{Timeout: 10 * time.Minute, MaxConcurrent: 1, MaxRetained: 1, FirstCheckpointID: 1, StatsHistory: 10}
}

// Validate checks the configuration; zero values mean the defaults.
func (c CoordinatorConfig) Validate() error {
	switch {
	case c.Interval < 0 || c.Timeout < 0 || c.MinPauseBetweenCheckpoints < 0:
		return fmt.Errorf("%w: interval %v, timeout %v and min pause %v must not be negative",
			ErrInvalidConfig, c.Interval, c.Timeout, c.MinPauseBetweenCheckpoints)
	case c.MaxConcurrent < 0 || c.TolerableFailures < 0 || c.MaxRetained < 0 || c.StatsHistory < 0 || c.FirstCheckpointID < 0:
		return fmt.Errorf("%w: max concurrent %d, tolerable failures %d, max retained %d, stats history %d and first checkpoint id %d must not be negative",
			ErrInvalidConfig, c.MaxConcurrent, c.TolerableFailures, c.MaxRetained, c.StatsHistory, c.FirstCheckpointID)
	case c.Mode > AtLeastOnce:
		return fmt.Errorf("%w: %s, expected EXACTLY_ONCE or AT_LEAST_ONCE", ErrInvalidConfig, c.Mode)
	}
	return nil
}

func (c CoordinatorConfig) withDefaults() CoordinatorConfig {
	d := DefaultCoordinatorConfig()
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = d.MaxConcurrent
	}
	if c.MaxRetained == 0 {
		c.MaxRetained = d.MaxRetained
	}
	if c.FirstCheckpointID == 0 {
		c.FirstCheckpointID = d.FirstCheckpointID
	}
	if c.StatsHistory == 0 {
		c.StatsHistory = d.StatsHistory
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// TriggerResult tells the caller where to send a checkpoint's barrier.
type TriggerResult struct {
	// ID is the new checkpoint's id.
	ID int64
	// Timestamp is the trigger time.
	Timestamp time.Time
	// IsSavepoint marks a savepoint.
	IsSavepoint bool
	// Location is where the tasks write their state.
	Location Location
	// Mode is the checkpointing mode.
	Mode CheckpointingMode
	// Sources are the tasks to send the trigger to.
	Sources []TaskID
}

// AckOutcome says what an acknowledgement did.
type AckOutcome uint8

const (
	// AckRecorded: recorded; other tasks have yet to acknowledge.
	AckRecorded AckOutcome = iota
	// AckComplete: recorded, and every task has acknowledged: call
	// Complete.
	AckComplete
	// AckDuplicate: the task had already acknowledged; ignored.
	AckDuplicate
	// AckLate: the checkpoint was aborted; ignored, and its state is to be
	// discarded (AckResult.Discard).
	AckLate
	// AckUnknown: the checkpoint is not pending (completed, or never
	// triggered); ignored.
	AckUnknown
)

// String returns the outcome's name.
func (o AckOutcome) String() string {
	switch o {
	case AckRecorded:
		return "recorded"
	case AckComplete:
		return "complete"
	case AckDuplicate:
		return "duplicate"
	case AckLate:
		return "late"
	case AckUnknown:
		return "unknown"
	}
	return fmt.Sprintf("AckOutcome(%d)", uint8(o))
}

// AckResult is the outcome of an acknowledgement.
type AckResult struct {
	// Outcome says what happened.
	Outcome AckOutcome
	// Discard lists locations whose state nobody needs (the aborted
	// checkpoint a late acknowledgement was for); delete them with
	// Coordinator.Discard.
	Discard []Location
}

// Abort describes an aborted checkpoint and what the caller must do about
// it.
type Abort struct {
	// ID is the checkpoint's id.
	ID int64
	// IsSavepoint marks a savepoint.
	IsSavepoint bool
	// Reason wraps ErrDeclined, ErrExpired, ErrSubsumed, ErrFinalize or
	// ErrAborted.
	Reason error
	// Notify are the tasks to send notifyCheckpointAborted to.
	Notify []TaskID
	// Discard lists the locations holding the checkpoint's state, to delete
	// with Coordinator.Discard. It is empty when the location may hold
	// somebody else's completed checkpoint.
	Discard []Location
}

// Completion describes a completed checkpoint.
type Completion struct {
	// ID is the checkpoint's id.
	ID int64
	// IsSavepoint marks a savepoint.
	IsSavepoint bool
	// Location is where its metadata was written.
	Location Location
	// Metadata is what was written. It is shared with the store: do not
	// modify it.
	Metadata *Metadata
	// Notify are the tasks to send notifyCheckpointComplete to.
	Notify []TaskID
}

// CompleteResult is the outcome of Complete.
type CompleteResult struct {
	// Completed is set if the checkpoint completed.
	Completed *Completion
	// Failed is set if it failed to finalize and was aborted.
	Failed *Abort
	// Subsumed are the older pending checkpoints the completed one
	// subsumed; they were aborted.
	Subsumed []Abort
}

// recentIDs is how many aborted checkpoints the coordinator remembers, to
// tell late acknowledgements from unknown ones (Flink keeps 16).
const recentIDs = 16

// abortedCheckpoint is a recently aborted checkpoint: where late
// acknowledgements' state is to be discarded.
type abortedCheckpoint struct {
	id      int64
	discard []Location
}

// Coordinator is the deterministic core of checkpoint coordination for one
// job, as Flink's CheckpointCoordinator with its PendingCheckpoint,
// CheckpointFailureManager and CheckpointStatsTracker: it decides when to
// trigger, collects acknowledgements, finalizes completed checkpoints into
// Storage and the Store, and aborts declined and expired ones. It starts no
// goroutines and never sleeps: the current time is passed to every method,
// and NextDeadline tells the driver when to call again.
//
// A Coordinator is owned by one goroutine: its methods must not be called
// concurrently, except Stats, which may be called from any goroutine, and
// Finalize, ReadLatest and Discard, which touch only storage and the store
// and may run while the owner goes on with the others (so the owner need
// not hold its lock across I/O). Complete, Finalize, Discard, ReadLatest,
// LatestForRestore and NewCoordinator block on storage; the others do no
// I/O.
type Coordinator struct {
	cfg     CoordinatorConfig
	job     JobInfo
	storage Storage
	store   *Store
	stats   *statsTracker

	tasks, sources []TaskID
	nextID         int64
	pending        map[int64]*pendingCheckpoint
	completing     map[int64]*pendingCheckpoint // between BeginComplete and EndComplete
	aborted        []abortedCheckpoint          // recent, oldest first
	failures       int                          // consecutive
	firstFailure   failedCheckpoint             // the first of the consecutive failures
	lastTrigger    time.Time
	lastCompletion time.Time // zero if none since start
	stopped        bool
}

// NewCoordinator validates cfg and job and opens job's checkpoint store on
// storage, so that checkpoint ids continue after the latest completed
// checkpoint. It fails if the store cannot be recovered, in particular if
// the latest completed checkpoint's metadata cannot be read. The first
// periodic checkpoint is due Interval after now. job is copied.
func NewCoordinator(ctx context.Context, cfg CoordinatorConfig, job JobInfo, storage Storage, now time.Time) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := job.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	job.Vertices = slices.Clone(job.Vertices)
	for i := range job.Vertices {
		job.Vertices[i].Operators = slices.Clone(job.Vertices[i].Operators)
	}
	store, err := OpenStore(ctx, storage, job.ID, StoreConfig{MaxRetained: cfg.MaxRetained, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg: cfg, job: job, storage: storage, store: store, stats: newStatsTracker(cfg.StatsHistory),
		nextID: cfg.FirstCheckpointID, pending: make(map[int64]*pendingCheckpoint), lastTrigger: now,
		completing: make(map[int64]*pendingCheckpoint),
	}
	c.tasks, c.sources = job.tasks()
	if latest, ok := store.Latest(); ok {
		c.nextID = max(c.nextID, latest.ID+1)
	}
	return c, nil
}

// Store returns the coordinator's completed checkpoint store.
func (c *Coordinator) Store() *Store { return c.store }

// NextCheckpointID returns the id the next trigger will use.
func (c *Coordinator) NextCheckpointID() int64 { return c.nextID }

// Pending returns the ids of the pending checkpoints, ascending. A
// checkpoint being completed (between BeginComplete and EndComplete) is
// not pending.
func (c *Coordinator) Pending() []int64 { return slices.Sorted(maps.Keys(c.pending)) }

// inFlight returns the ids of the pending checkpoints and of those being
// completed, ascending: they count towards MaxConcurrent.
func (c *Coordinator) inFlight() []int64 {
	return slices.Sorted(func(yield func(int64) bool) {
		for id := range c.pending {
			if !yield(id) {
				return
			}
		}
		for id := range c.completing {
			if !yield(id) {
				return
			}
		}
	})
}

// Stats returns a snapshot of the checkpoint statistics. It is safe to call
// from any goroutine.
func (c *Coordinator) Stats() Stats {
	return c.stats.snapshot()
}

// canTrigger checks max concurrent and min pause for a checkpoint (not a
// savepoint).
func (c *Coordinator) canTrigger(now time.Time) error {
	if c.stopped {
		return ErrCoordinatorStopped
	}
	pause := c.cfg.MinPauseBetweenCheckpoints
	limit := c.cfg.MaxConcurrent
	if pause > 0 {
		limit = 1
	}
	if ids := c.inFlight(); len(ids) >= limit {
		return fmt.Errorf("%w: %d pending %v, at most %d allowed", ErrTooManyConcurrent, len(ids), ids, limit)
	}
	if pause > 0 && !c.lastCompletion.IsZero() && now.Before(c.lastCompletion.Add(pause)) {
		return fmt.Errorf("%w: last completion at %v, next checkpoint allowed at %v, now %v",
			ErrMinPause, c.lastCompletion, c.lastCompletion.Add(pause), now)
	}
	return nil
}

// nextPeriodic returns when the next periodic checkpoint is due, ignoring
// the concurrency limit; false if periodic checkpoints are off.
func (c *Coordinator) nextPeriodic() (time.Time, bool) {
	if c.cfg.Interval == 0 || c.stopped {
		return time.Time{}, false
	}
	due := c.lastTrigger.Add(c.cfg.Interval)
	if p := c.cfg.MinPauseBetweenCheckpoints; p > 0 && !c.lastCompletion.IsZero() && c.lastCompletion.Add(p).After(due) {
		due = c.lastCompletion.Add(p)
	}
	return due, true
}

// ShouldTrigger reports whether a periodic checkpoint is due at now: the
// interval has passed since the last trigger, the minimum pause since the
// last completion, and fewer than MaxConcurrent checkpoints are pending.
func (c *Coordinator) ShouldTrigger(now time.Time) bool {
	due, ok := c.nextPeriodic()
	return ok && !now.Before(due) && c.canTrigger(now) == nil
}

// NextDeadline returns when the coordinator next needs attention if nothing
// else happens: the earliest of the next periodic trigger (if the
// concurrency limit allows one) and the earliest pending deadline. False
// means only an event (an acknowledgement, a trigger) can change anything.
func (c *Coordinator) NextDeadline(now time.Time) (time.Time, bool) {
	var next time.Time
	found := false
	if due, ok := c.nextPeriodic(); ok && c.canTrigger(due) == nil {
		next, found = due, true
	}
	for _, p := range c.pending {
		if !found || p.deadline.Before(next) {
			next, found = p.deadline, true
		}
	}
	return next, found
}

// Trigger starts a checkpoint, or a savepoint at target if isSavepoint, and
// returns its id and the source tasks to send the trigger to. A checkpoint
// is refused with ErrTooManyConcurrent or ErrMinPause; a savepoint is not
// bound by them (as Flink's forced checkpoints), but needs a target and is
// refused if one to the same target is pending. The target is the
// savepoint's own directory, from Storage.InitSavepointLocation: Trigger
// does no I/O, and an aborted savepoint's Discard deletes that directory.
// Periodic checkpoints are due Interval after the last checkpoint trigger.
func (c *Coordinator) Trigger(now time.Time, isSavepoint bool, target string) (TriggerResult, error) {
	if c.stopped {
		return TriggerResult{}, ErrCoordinatorStopped
	}
	var loc Location
	if isSavepoint {
		if target == "" {
			return TriggerResult{}, fmt.Errorf("%w: savepoint without a target", ErrInvalidName)
		}
		for _, p := range c.pending {
			if p.savepoint && p.loc.Savepoint == target {
				return TriggerResult{}, fmt.Errorf("%w: savepoint %d to %q is pending", ErrTooManyConcurrent, p.id, target)
			}
		}
		for _, p := range c.completing {
			if p.savepoint && p.loc.Savepoint == target {
				return TriggerResult{}, fmt.Errorf("%w: savepoint %d to %q is being completed", ErrTooManyConcurrent, p.id, target)
			}
		}
		loc = SavepointLocation(target)
	} else {
		if err := c.canTrigger(now); err != nil {
			return TriggerResult{}, err
		}
		loc = CheckpointLocation(c.job.ID, c.nextID)
		c.lastTrigger = now
	}
	id := c.nextID
	c.nextID++
	c.pending[id] = newPending(id, isSavepoint, loc, now, now.Add(c.cfg.Timeout), c.tasks)
	c.stats.triggered(id, isSavepoint, now, len(c.tasks), loc)
	return TriggerResult{
		ID: id, Timestamp: now, IsSavepoint: isSavepoint, Location: loc, Mode: c.cfg.Mode,
		Sources: slices.Clone(c.sources),
	}, nil
}

// Acknowledge records that task wrote its state for checkpoint id. An
// acknowledgement from a task outside the job, or with state of operators
// the task does not run, is an error and changes nothing. Duplicate, late
// (aborted checkpoint) and unknown acknowledgements are ignored, as the
// outcome says; a late one's state is to be discarded. When the outcome is
// AckComplete, call Complete.
func (c *Coordinator) Acknowledge(now time.Time, id int64, task TaskID, ack TaskAck) (AckResult, error) {
	if !c.job.hasTask(task) {
		return AckResult{}, fmt.Errorf("%w: %s acknowledged checkpoint %d of job %q", ErrUnknownTask, task, id, c.job.ID)
	}
	if err := c.job.validateAck(task, ack); err != nil {
		return AckResult{}, err
	}
	p, ok := c.pending[id]
	switch {
	case !ok:
		for _, a := range c.aborted {
			if a.id == id {
				return AckResult{Outcome: AckLate, Discard: slices.Clone(a.discard)}, nil
			}
		}
		return AckResult{Outcome: AckUnknown}, nil
	case !p.waiting[task]:
		return AckResult{Outcome: AckDuplicate}, nil
	}
	delete(p.waiting, task)
	p.acks[task] = ack
	c.stats.acknowledged(id, now, ack.Bytes, ack.Alignment)
	if p.fullyAcknowledged() {
		return AckResult{Outcome: AckComplete}, nil
	}
	return AckResult{Outcome: AckRecorded}, nil
}

// Decline aborts checkpoint id because task could not take it, and counts a
// failure unless reason wraps ErrTaskNotReady or ErrSubsumed (a newer
// checkpoint's barrier overtook it). It returns nil if the checkpoint is not pending (ignored). The
// error wraps ErrTooManyFailures when the job must fail over, ErrUnknownTask
// for a task outside the job.
func (c *Coordinator) Decline(now time.Time, id int64, task TaskID, reason error) (*Abort, error) {
	if !c.job.hasTask(task) {
		return nil, fmt.Errorf("%w: %s declined checkpoint %d of job %q", ErrUnknownTask, task, id, c.job.ID)
	}
	p, ok := c.pending[id]
	if !ok {
		return nil, nil
	}
	why := fmt.Errorf("%w by task %s", ErrDeclined, task)
	if reason != nil {
		why = fmt.Errorf("%w by task %s: %w", ErrDeclined, task, reason)
	}
	a := c.abort(now, p, why, true)
	if errors.Is(reason, ErrTaskNotReady) || errors.Is(reason, ErrSubsumed) {
		return &a, nil
	}
	return &a, c.countFailure(p, why)
}

// CheckTimeouts aborts the pending checkpoints whose Timeout has passed at
// now, counting each as a failure. The error wraps ErrTooManyFailures when
// the job must fail over.
func (c *Coordinator) CheckTimeouts(now time.Time) ([]Abort, error) {
	var aborts []Abort
	var errs []error
	for _, id := range c.Pending() {
		p := c.pending[id]
		if now.Before(p.deadline) {
			continue
		}
		why := fmt.Errorf("%w: timeout %v, triggered at %v, %d of %d tasks acknowledged",
			ErrExpired, c.cfg.Timeout, p.trigger, len(p.acks), len(c.tasks))
		aborts = append(aborts, c.abort(now, p, why, true))
		if err := c.countFailure(p, why); err != nil {
			errs = append(errs, err)
		}
	}
	return aborts, errors.Join(errs...)
}

// AbortAll aborts every pending checkpoint without counting failures, as
// when the job fails over or stops; reason says why. A checkpoint being
// completed is not pending: its Finalize goes on, and EndComplete records
// its outcome.
func (c *Coordinator) AbortAll(now time.Time, reason error) []Abort {
	why := ErrAborted
	if reason != nil {
		why = fmt.Errorf("%w: %w", ErrAborted, reason)
	}
	var aborts []Abort
	for _, id := range c.Pending() {
		aborts = append(aborts, c.abort(now, c.pending[id], why, true))
	}
	return aborts
}

// Shutdown aborts every pending checkpoint, as AbortAll, and refuses later
// triggers with ErrCoordinatorStopped. A checkpoint being completed is left
// to EndComplete; its failure then no longer counts.
func (c *Coordinator) Shutdown(now time.Time) []Abort {
	c.stopped = true
	return c.AbortAll(now, ErrCoordinatorStopped)
}

// abort removes p from the pending checkpoints and records its failure.
// discard says whether its location holds only its own state.
func (c *Coordinator) abort(now time.Time, p *pendingCheckpoint, reason error, discard bool) Abort {
	delete(c.pending, p.id)
	c.stats.ended(p.id, now, reason)
	a := Abort{ID: p.id, IsSavepoint: p.savepoint, Reason: reason, Notify: slices.Clone(c.tasks)}
	if discard {
		a.Discard = []Location{p.loc}
	}
	c.aborted = append(c.aborted, abortedCheckpoint{id: p.id, discard: a.Discard})
	if len(c.aborted) > recentIDs {
		c.aborted = slices.Delete(c.aborted, 0, len(c.aborted)-recentIDs)
	}
	return a
}

// countFailure counts the failure of p for reason (unless p is a
// savepoint) and returns ErrTooManyFailures when the count exceeds
// TolerableFailures, then resets the count for the job's next attempt. The
// error wraps the last failure's reason, so that the cause (a full disk,
// with its path) reaches whoever reports why the job failed over, and
// names the first failure of the series when it differs.
func (c *Coordinator) countFailure(p *pendingCheckpoint, reason error) error {
	if p.savepoint {
		return nil
	}
	c.failures++
	if c.failures == 1 {
		c.firstFailure = failedCheckpoint{id: p.id, reason: reason}
	}
	if c.failures <= c.cfg.TolerableFailures {
		return nil
	}
	n, first := c.failures, c.firstFailure
	c.failures, c.firstFailure = 0, failedCheckpoint{}
	if n > 1 && first.reason != nil && first.reason.Error() != reason.Error() {
		return fmt.Errorf("%w: %d consecutive failures, %d tolerated; the job must fail over; the first, checkpoint %d: %v; the last, checkpoint %d: %w",
			ErrTooManyFailures, n, c.cfg.TolerableFailures, first.id, first.reason, p.id, reason)
	}
	return fmt.Errorf("%w: %d consecutive failures, %d tolerated; the job must fail over; checkpoint %d: %w",
		ErrTooManyFailures, n, c.cfg.TolerableFailures, p.id, reason)
}

// failedCheckpoint is a checkpoint that failed, and why.
type failedCheckpoint struct {
	id     int64
	reason error
}

// Discard deletes the given locations from storage (Abort.Discard,
// AckResult.Discard), trying all of them and returning the failures joined.
func (c *Coordinator) Discard(ctx context.Context, locs []Location) error {
	var errs []error
	for _, loc := range locs {
		if err := c.storage.Delete(ctx, loc); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint: discard %s: %w", loc, err))
		}
	}
	return errors.Join(errs...)
}

// LatestForRestore returns the metadata of the latest completed checkpoint
// to restore the job from, read again from storage, or false if the job has
// none. A job told to restore never silently starts empty: if the store
// holds a checkpoint that cannot be read, or storage lists completed
// checkpoints the store does not hold, it is an error wrapping ErrRestore.
// Checkpoint ids continue after the returned one. It is ReadLatest followed
// by RestoredFrom.
func (c *Coordinator) LatestForRestore(ctx context.Context, now time.Time) (*Metadata, bool, error) {
	m, ok, err := c.ReadLatest(ctx)
	if ok {
		c.RestoredFrom(now, m)
	}
	return m, ok, err
}

// ReadLatest is LatestForRestore without its bookkeeping: it reads the
// latest completed checkpoint's metadata and changes nothing, so it may
// run concurrently with the coordinator's other methods. Pass what it
// returns to RestoredFrom when the job restores it.
func (c *Coordinator) ReadLatest(ctx context.Context) (*Metadata, bool, error) {
	latest, ok := c.store.Latest()
	if !ok {
		ids, err := c.storage.ListCheckpoints(ctx, c.job.ID)
		if err != nil {
			return nil, false, fmt.Errorf("%w: list checkpoints of job %q: %w", ErrRestore, c.job.ID, err)
		}
		if len(ids) > 0 {
			return nil, false, fmt.Errorf("%w: storage lists completed checkpoints %v of job %q, the store holds none",
				ErrRestore, ids, c.job.ID)
		}
		return nil, false, nil
	}
	loc := CheckpointLocation(c.job.ID, latest.ID)
	m, err := c.storage.ReadMetadata(ctx, loc)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrRestore, loc, err)
	}
	return m, true, nil
}

// RestoredFrom records that the job restores checkpoint m, returned by
// ReadLatest, at now: checkpoint ids continue after it, and the statistics
// show the restore. It does no I/O.
func (c *Coordinator) RestoredFrom(now time.Time, m *Metadata) {
	c.nextID = max(c.nextID, m.CheckpointID+1)
	c.stats.restoredFrom(m.CheckpointID, now, CheckpointLocation(c.job.ID, m.CheckpointID))
}
