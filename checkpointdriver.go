package flink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flinkgo/flink/checkpoint"
)

// The JobManager side of checkpoints: a driver around the deterministic
// checkpoint.Coordinator. It triggers periodic checkpoints while every
// subtask runs, sends the trigger to source subtasks, feeds
// acknowledgements and declines to the coordinator, completes checkpoints
// (metadata written atomically, older checkpoints dropped) and tells the
// subtasks, aborts those that time out, triggers savepoints, triggers the
// final checkpoint once every source is exhausted, and finds the state a
// restarted job resumes from.
//
// The driver's lock guards the coordinator's state and is never held
// across I/O. A fully acknowledged checkpoint is completed as in Flink's
// CheckpointCoordinator: under the lock the completer takes it out of the
// pending set (Coordinator.BeginComplete); without the lock it writes its
// metadata, commits it (to Raft in HA mode) and adds it to the store
// (Coordinator.Finalize), within the checkpoint timeout and the driver's
// lifetime; under the lock again it publishes the outcome
// (Coordinator.EndComplete) and tells the subtasks. Meanwhile triggers,
// acknowledgements, declines, statistics and cancellation go on.
//
// Goroutines: run, started by the JobManager and stopped by close, owns
// the sender (which delivers triggers in id order) and the completer
// (which completes checkpoints one at a time, in the order they were fully
// acknowledged, so that the store and the subtasks hear of them in order).
// Calls to subtasks and deletions of abandoned checkpoint data run in the
// background under the JobManager's calls group, which its run waits for.

// checkpointDriver runs the checkpoints of one job.
type checkpointDriver struct {
	jm *JobManager
	// coord is the job's checkpoint coordinator. Its methods are called
	// with mu held, except those safe to call concurrently (Stats,
	// Finalize, ReadLatest, Discard), which are called without it.
	coord *checkpoint.Coordinator
	// completeTimeout bounds finalizing one checkpoint: the checkpoint
	// timeout.
	completeTimeout time.Duration

	// ctx is the driver's lifetime: close cancels it, which ends the I/O
	// of a completion and the trigger calls in flight.
	ctx    context.Context
	cancel context.CancelCauseFunc

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	// storage keeps the job's checkpoints and savepoints.
	storage checkpoint.Storage
	// sends carries triggers to the sender goroutine, which delivers them
	// one after the other, so that every source emits barriers in id order.
	sends chan func()
	// complete wakes the completer: a checkpoint is fully acknowledged.
	complete chan struct{}

	mu struct {
		sync.Mutex
		// sourcesEnded holds the source subtasks of the current attempt that
		// read all their input.
		sourcesEnded map[ExecutionAttemptID]bool
		finalID      int64 // the final checkpoint triggered in this attempt
		savepoints   map[int64]chan savepointOutcome
		lastFailure  error
		// toComplete are the fully acknowledged checkpoints the completer
		// has yet to take, in the order they were fully acknowledged.
		toComplete []int64
		// settled, while the completer finalizes a checkpoint, is closed
		// once the outcome is published; nil otherwise.
		settled chan struct{}
		// attempt counts the job's restarts (onRestart): a checkpoint that
		// completes after the attempt it was taken in ended is not
		// announced to the subtasks of the next one.
		attempt int
		// closed is set by close: nothing is announced any more.
		closed bool
		// orphans are locations to delete that were discarded after close,
		// when the JobManager no longer waits for its calls: the caller
		// deletes them itself once it released the lock (discardOrphans).
		orphans []checkpoint.Location
	}
}

type savepointOutcome struct {
	path string
	err  error
}

// newCheckpointDriver opens the job's checkpoint store. It fails if the
// store cannot be recovered.
func newCheckpointDriver(ctx context.Context, jm *JobManager, storage checkpoint.Storage) (*checkpointDriver, error) {
	cfg := jm.graph.Config.Checkpointing.coordinatorConfig()
	cfg.Logger = jm.log
	if r := jm.initialRestore; r != nil {
		cfg.FirstCheckpointID = r.CheckpointID + 1
	}
	cfg.FirstCheckpointID = max(cfg.FirstCheckpointID, jm.firstCheckpointID)
	cfg.BeforeCommit = jm.commit
	coord, err := checkpoint.NewCoordinator(ctx, cfg, jobInfo(jm.id, jm.graph), storage, jm.cfg.now())
	if err != nil {
		return nil, fmt.Errorf("flink: checkpoints of job %q: %w", jm.graph.Name, err)
	}
	d := &checkpointDriver{jm: jm, coord: coord, completeTimeout: cfg.Timeout, storage: storage,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		sends: make(chan func(), 1024), complete: make(chan struct{}, 1)}
	if d.completeTimeout <= 0 {
		d.completeTimeout = checkpoint.DefaultCoordinatorConfig().Timeout
	}
	d.ctx, d.cancel = context.WithCancelCause(context.Background())
	d.mu.sourcesEnded = make(map[ExecutionAttemptID]bool)
	d.mu.savepoints = make(map[int64]chan savepointOutcome)
	return d, nil
}

// jobInfo describes g for the coordinator.
func jobInfo(id JobID, g *JobGraph) checkpoint.JobInfo {
	info := checkpoint.JobInfo{ID: string(id), Name: g.Name}
	for _, v := range g.Vertices {
		vi := checkpoint.VertexInfo{Name: v.Name, Parallelism: v.Parallelism, MaxParallelism: v.MaxParallelism, Source: v.IsSource()}
		for _, o := range v.Operators {
			vi.Operators = append(vi.Operators, checkpoint.OperatorInfo{ID: o.ID, UID: o.UID})
		}
		info.Vertices = append(info.Vertices, vi)
	}
	return info
}

func (d *checkpointDriver) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run triggers periodic and final checkpoints and expires pending ones
// until close; it runs the sender and the completer, and waits for them.
func (d *checkpointDriver) run() {
	defer close(d.done)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for send := range d.sends {
			send()
		}
	}()
	completed := make(chan struct{})
	go func() {
		defer close(completed)
		d.completeLoop()
	}()
	defer func() {
		<-completed // ends on stop
		close(d.sends)
		<-sent
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := d.jm.cfg.now()
		running := d.jm.allRunning()
		d.mu.Lock()
		coord := d.coord
		final := running && d.finalWantedLocked()
		if running && (final || coord.ShouldTrigger(now)) {
			d.triggerLocked(now, false, "", final, false)
		}
		aborts, err := coord.CheckTimeouts(now)
		d.handleAbortsLocked(aborts)
		next, ok := coord.NextDeadline(now)
		if final && d.mu.finalID == 0 {
			// Refused for now (another checkpoint pending): retry soon.
			next, ok = now.Add(10*time.Millisecond), true
		}
		d.mu.Unlock()
		if err != nil {
			d.jm.failJob(err)
		}
		wait := time.Hour
		if ok {
			wait = max(next.Sub(d.jm.cfg.now()), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-d.wake:
		case <-d.stop:
			return
		}
	}
}

// close stops the driver and aborts what is pending. A checkpoint being
// completed is cut short (its I/O's context ends); should it complete all
// the same, it is not announced.
func (d *checkpointDriver) close() {
	// Stop the coordinator first: no trigger succeeds after this, so none
	// is queued once the sender has stopped.
	d.mu.Lock()
	d.mu.toComplete = nil
	aborts := d.coord.Shutdown(d.jm.cfg.now())
	d.handleAbortsLocked(aborts)
	d.mu.closed = true
	for id, ch := range d.mu.savepoints {
		err := fmt.Errorf("flink: savepoint %d: %w", id, ErrJobCanceled)
		if ending := d.endingLocked(); ending != nil {
			err = fmt.Errorf("flink: savepoint %d: %w", id, ending)
		}
		ch <- savepointOutcome{err: err}
		delete(d.mu.savepoints, id)
	}
	d.mu.Unlock()
	d.cancel(fmt.Errorf("%w: the checkpoints of job %q stopped", checkpoint.ErrCoordinatorStopped, d.jm.graph.Name))
	close(d.stop)
	<-d.done
	d.discardOrphans() // of a completion that ended after close
}

// finalWantedLocked reports whether every source subtask of the current
// attempt is exhausted and the final checkpoint is still to be triggered.
func (d *checkpointDriver) finalWantedLocked() bool {
	if d.mu.finalID != 0 || !d.jm.graph.Config.Checkpointing.Enabled() {
		return false
	}
	return len(d.mu.sourcesEnded) == d.sourceSubtasks()
}

// sourceSubtasks returns how many source subtasks the job has.
func (d *checkpointDriver) sourceSubtasks() int {
	n := 0
	for _, v := range d.jm.graph.Vertices {
		if v.IsSource() {
			n += v.Parallelism
		}
	}
	return n
}

// ending returns an error wrapping ErrJobEnding once every source subtask
// of the current attempt read all its input, else nil. A source subtask
// that ended while others read on still takes part in savepoints: it
// waits for the final checkpoint before it ends its output.
func (d *checkpointDriver) ending() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.endingLocked()
}

func (d *checkpointDriver) endingLocked() error {
	n := d.sourceSubtasks()
	if len(d.mu.sourcesEnded) == n || d.mu.finalID != 0 {
		return fmt.Errorf("%w: job %q: its %d source subtasks read all their input; it ends FINISHED without a savepoint", ErrJobEnding, d.jm.graph.Name, n)
	}
	return nil
}

// savepointFailureLocked is the error a savepoint waiter gets for aborted
// savepoint id: it wraps ErrJobEnding when the job's sources ended
// meanwhile, whatever subtask declined first.
func (d *checkpointDriver) savepointFailureLocked(id int64, reason error) error {
	if ending := d.endingLocked(); ending != nil && !errors.Is(reason, ErrJobEnding) {
		return fmt.Errorf("flink: savepoint %d failed: %w (%w)", id, ending, reason)
	}
	return fmt.Errorf("flink: savepoint %d failed: %w", id, reason)
}

// sourceEnded records a source subtask that read all its input.
func (d *checkpointDriver) sourceEnded(id ExecutionAttemptID) {
	d.mu.Lock()
	d.mu.sourcesEnded[id] = true
	d.mu.Unlock()
	d.signal()
}

// triggerLocked triggers a checkpoint or savepoint and sends its barrier to
// the source subtasks.
func (d *checkpointDriver) triggerLocked(now time.Time, savepoint bool, target string, final, stop bool) (int64, error) {
	tr, err := d.coord.Trigger(now, savepoint, target)
	if err != nil {
		if !savepoint {
			d.jm.log.Debug("checkpoint not triggered", "reason", err)
		}
		return 0, err
	}
	if final {
		d.mu.finalID = tr.ID
	}
	b := CheckpointBarrier{ID: tr.ID, Timestamp: tr.Timestamp, Location: tr.Location, Savepoint: savepoint,
		AtLeastOnce: tr.Mode == checkpoint.AtLeastOnce, Final: final, Stop: stop}
	d.jm.log.Debug("checkpoint triggered", "checkpoint", tr.ID, "savepoint", savepoint, "final", final)
	targets := d.jm.taskTargets(tr.Sources)
	send := func() {
		var wg sync.WaitGroup
		for _, tt := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(d.ctx, defaultCallTimeout)
				defer cancel()
				tm, err := d.jm.rpc.taskManager(tt.addr)
				if err == nil {
					err = tm.TriggerCheckpoint(ctx, tt.id, b)
				}
				if err != nil {
					d.decline(tt.id, b.ID, fmt.Errorf("%w: triggering: %w", checkpoint.ErrTaskNotReady, err))
				}
			}()
		}
		wg.Wait()
	}
	select {
	case d.sends <- send:
	default:
		// Declined at once, under the lock: a trigger that is never sent
		// aborts the checkpoint, without counting as a failure.
		err := fmt.Errorf("%w: too many triggers queued", checkpoint.ErrTaskNotReady)
		if len(tr.Sources) > 0 {
			if a, _ := d.coord.Decline(now, tr.ID, tr.Sources[0], err); a != nil {
				d.handleAbortsLocked([]checkpoint.Abort{*a})
			}
		}
		return 0, fmt.Errorf("flink: checkpoint %d not triggered: %w", tr.ID, err)
	}
	return tr.ID, nil
}

// acknowledge records a subtask's acknowledgement; when it was the last,
// the completer completes the checkpoint.
func (d *checkpointDriver) acknowledge(id ExecutionAttemptID, ckpt int64, ack checkpoint.TaskAck) error {
	now := d.jm.cfg.now()
	defer d.discardOrphans() // a late acknowledgement after close
	d.mu.Lock()
	defer d.mu.Unlock()
	res, err := d.coord.Acknowledge(now, ckpt, checkpoint.TaskID{Vertex: id.Vertex, Subtask: id.Subtask}, ack)
	if err != nil {
		return err
	}
	d.discard(res.Discard)
	if res.Outcome == checkpoint.AckComplete && !d.mu.closed {
		d.mu.toComplete = append(d.mu.toComplete, ckpt)
		select {
		case d.complete <- struct{}{}:
		default:
		}
	}
	d.signal()
	return nil
}

// completeLoop completes fully acknowledged checkpoints, one at a time,
// until stop.
func (d *checkpointDriver) completeLoop() {
	for {
		select {
		case <-d.complete:
		case <-d.stop:
			return
		}
		for d.completeNext() {
		}
	}
}

// completeNext completes the next fully acknowledged checkpoint, if any,
// and reports whether there was one. Under the lock it takes the
// checkpoint out of the pending set; without the lock it writes and commits
// its metadata, within the checkpoint timeout and the driver's lifetime;
// under the lock again it publishes the outcome. A checkpoint aborted while
// it waited (expired, subsumed, the job restarting) is skipped.
func (d *checkpointDriver) completeNext() bool {
	d.mu.Lock()
	if len(d.mu.toComplete) == 0 {
		d.mu.Unlock()
		return false
	}
	id := d.mu.toComplete[0]
	d.mu.toComplete = d.mu.toComplete[1:]
	f, err := d.coord.BeginComplete(id)
	if err != nil {
		d.mu.Unlock()
		d.jm.log.Debug("fully acknowledged checkpoint not completed", "checkpoint", id, "reason", err)
		return true
	}
	attempt := d.mu.attempt
	settled := make(chan struct{})
	d.mu.settled = settled
	d.mu.Unlock()

	what := "checkpoint"
	if f.IsSavepoint {
		what = "savepoint"
	}
	ctx, cancel := context.WithTimeoutCause(d.ctx, d.completeTimeout,
		fmt.Errorf("%w: writing and committing the metadata of %s %d of job %q took longer than the checkpoint timeout %v",
			checkpoint.ErrExpired, what, id, d.jm.graph.Name, d.completeTimeout))
	d.coord.Finalize(ctx, f) // its error is kept in f for EndComplete
	cancel()

	d.mu.Lock()
	defer d.signal()
	defer close(settled)
	res, err := d.coord.EndComplete(d.jm.cfg.now(), f)
	d.mu.settled = nil
	stale := d.mu.closed || d.mu.attempt != attempt
	for _, a := range res.Subsumed {
		d.discard(a.Discard)
	}
	if res.Failed != nil {
		d.handleAbortsLocked([]checkpoint.Abort{*res.Failed})
	}
	if c := res.Completed; c != nil {
		d.mu.lastFailure = nil
		switch {
		case d.mu.closed:
			// The job's checkpoints stopped meanwhile: its subtasks are
			// gone or going, and whoever waited for it was told already.
			// It stays in the store: its pointer may be committed.
			d.jm.log.Info("checkpoint completed after the job's checkpoints stopped; not announced", "checkpoint", c.ID, "savepoint", c.IsSavepoint)
		case stale:
			// The job restarted meanwhile, from this checkpoint (the restart
			// waits for it): the subtasks of the new attempt took part in
			// no checkpoint yet.
			d.jm.log.Info("checkpoint completed after its attempt ended; not announced to the next", "checkpoint", c.ID, "savepoint", c.IsSavepoint)
		default:
			d.jm.log.Info("checkpoint completed", "checkpoint", c.ID, "savepoint", c.IsSavepoint, "location", c.Location)
			for _, t := range c.Notify {
				d.jm.callTask(t, func(ctx context.Context, tm TaskManagerGateway, id ExecutionAttemptID) error {
					return tm.NotifyCheckpointComplete(ctx, id, c.ID)
				})
			}
		}
		if ch, ok := d.mu.savepoints[c.ID]; ok {
			ch <- savepointOutcome{path: c.Location.Savepoint}
			delete(d.mu.savepoints, c.ID)
		}
	}
	d.mu.Unlock()
	d.discardOrphans()
	if err != nil && errors.Is(err, checkpoint.ErrTooManyFailures) {
		if stale {
			d.jm.log.Warn("checkpoint failure of an ended attempt not counted against the next", "checkpoint", id, "err", err)
		} else {
			d.jm.failJob(err)
		}
	}
	return true
}

// decline aborts checkpoint ckpt, which subtask id could not take.
func (d *checkpointDriver) decline(id ExecutionAttemptID, ckpt int64, reason error) {
	d.mu.Lock()
	a, err := d.coord.Decline(d.jm.cfg.now(), ckpt, checkpoint.TaskID{Vertex: id.Vertex, Subtask: id.Subtask}, reason)
	if a != nil {
		d.handleAbortsLocked([]checkpoint.Abort{*a})
	}
	d.mu.Unlock()
	if err != nil && errors.Is(err, checkpoint.ErrTooManyFailures) {
		d.jm.failJob(err)
	}
	d.signal()
}

// handleAbortsLocked tells subtasks and savepoint waiters about aborted
// checkpoints and deletes what they left.
func (d *checkpointDriver) handleAbortsLocked(aborts []checkpoint.Abort) {
	for _, a := range aborts {
		d.jm.log.Warn("checkpoint aborted", "checkpoint", a.ID, "savepoint", a.IsSavepoint, "reason", a.Reason)
		d.mu.lastFailure = a.Reason
		for _, t := range a.Notify {
			d.jm.callTask(t, func(ctx context.Context, tm TaskManagerGateway, id ExecutionAttemptID) error {
				return tm.NotifyCheckpointAborted(ctx, id, a.ID)
			})
		}
		if ch, ok := d.mu.savepoints[a.ID]; ok {
			ch <- savepointOutcome{err: d.savepointFailureLocked(a.ID, a.Reason)}
			delete(d.mu.savepoints, a.ID)
		}
		d.discard(a.Discard)
	}
}

// discard deletes abandoned checkpoint data in the background, under the
// JobManager's calls group; after close, it leaves them to
// discardOrphans. Called with mu held.
func (d *checkpointDriver) discard(locs []checkpoint.Location) {
	if len(locs) == 0 || d.jm.deposed.Load() {
		// A deposed leader deletes nothing: its successor may already
		// use the same checkpoint ids.
		return
	}
	if d.mu.closed {
		d.mu.orphans = append(d.mu.orphans, locs...)
		return
	}
	coord := d.coord
	d.jm.calls.Add(1)
	go func() {
		defer d.jm.calls.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := coord.Discard(ctx, locs); err != nil {
			d.jm.log.Warn("discarding checkpoint data failed", "err", err)
		}
	}()
}

// discardOrphans deletes, in the caller's goroutine, what was discarded
// after close: a late acknowledgement's state, a savepoint directory not
// used. Called without mu held.
func (d *checkpointDriver) discardOrphans() {
	d.mu.Lock()
	locs := d.mu.orphans
	d.mu.orphans = nil
	d.mu.Unlock()
	if len(locs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.coord.Discard(ctx, locs); err != nil {
		d.jm.log.Warn("discarding checkpoint data failed", "err", err)
	}
}

// onRestart aborts what is pending when the job fails over and forgets the
// attempt's bookkeeping.
func (d *checkpointDriver) onRestart(reason error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.attempt++
	d.mu.toComplete = nil
	for _, a := range d.coord.AbortAll(d.jm.cfg.now(), reason) {
		d.discard(a.Discard)
		if ch, ok := d.mu.savepoints[a.ID]; ok {
			ch <- savepointOutcome{err: fmt.Errorf("flink: savepoint %d failed: %w", a.ID, a.Reason)}
			delete(d.mu.savepoints, a.ID)
		}
	}
	clear(d.mu.sourcesEnded)
	d.mu.finalID = 0
}

// latest returns the state the job resumes from after a failure: its
// latest completed checkpoint, or nil if it has none. A checkpoint being
// completed when the job failed may be the latest: latest waits for its
// outcome (bounded by the checkpoint timeout), unless the job is cancelled
// meanwhile. It reads the metadata without the lock.
func (d *checkpointDriver) latest(ctx context.Context) (*TaskRestore, error) {
	d.mu.Lock()
	settled := d.mu.settled
	d.mu.Unlock()
	if settled != nil {
		select {
		case <-settled:
		case <-d.jm.cancelCh: // the job ends without restoring
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	m, ok, err := d.coord.ReadLatest(ctx)
	if err != nil || !ok {
		return nil, err
	}
	d.mu.Lock()
	d.coord.RestoredFrom(d.jm.cfg.now(), m)
	d.mu.Unlock()
	d.jm.log.Info("restoring from checkpoint", "checkpoint", m.CheckpointID)
	return restoreFromMetadata(d.jm.graph, m, false)
}

// initSavepoint makes the fresh directory of a savepoint in target (empty:
// the storage's default savepoint directory), without holding the lock
// across the storage's I/O. A target outside the storage's savepoint roots
// fails with checkpoint.ErrInvalidName.
func (d *checkpointDriver) initSavepoint(ctx context.Context, target string) (checkpoint.Location, error) {
	loc, err := d.storage.InitSavepointLocation(ctx, target, string(d.jm.id))
	if err != nil {
		return checkpoint.Location{}, fmt.Errorf("flink: savepoint of job %q: %w", d.jm.graph.Name, err)
	}
	return loc, nil
}

// triggerSavepoint takes a savepoint at loc, made by initSavepoint, and
// waits for it. With stop, sources emit nothing after it. If the savepoint
// fails, or is not taken, loc is deleted.
//
// It fails with ErrJobNotRunning while a subtask is not running, and with
// ErrJobEnding when the job's sources have read all their input, before or
// while the savepoint is taken: a bounded job then ends by itself.
func (d *checkpointDriver) triggerSavepoint(ctx context.Context, loc checkpoint.Location, stop bool) (string, error) {
	if err := d.jm.savepointBlocker(); err != nil {
		d.dropSavepoint(loc)
		return "", err
	}
	ch := make(chan savepointOutcome, 1)
	d.mu.Lock()
	err := d.endingLocked()
	var id int64
	if err == nil {
		id, err = d.triggerLocked(d.jm.cfg.now(), true, loc.Savepoint, false, stop)
	}
	if err == nil {
		d.mu.savepoints[id] = ch
	} else {
		d.discard([]checkpoint.Location{loc})
	}
	d.mu.Unlock()
	d.discardOrphans()
	if err != nil {
		if errors.Is(err, ErrJobEnding) {
			return "", err
		}
		return "", fmt.Errorf("flink: savepoint of job %q: %w", d.jm.graph.Name, err)
	}
	d.signal()
	select {
	case o := <-ch:
		return o.path, o.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// dropSavepoint deletes the directory of a savepoint that was not taken.
func (d *checkpointDriver) dropSavepoint(loc checkpoint.Location) {
	d.mu.Lock()
	d.discard([]checkpoint.Location{loc})
	d.mu.Unlock()
	d.discardOrphans()
}

// stats returns the checkpoint statistics, without the lock.
func (d *checkpointDriver) stats() checkpoint.Stats {
	return d.coord.Stats()
}

// restoreFromMetadata matches a checkpoint's or savepoint's operator states
// to the operators of g by operator id. State for an operator the job lacks
// is an error unless allowNonRestored; keyed state written with another max
// parallelism is always an error.
func restoreFromMetadata(g *JobGraph, m *checkpoint.Metadata, allowNonRestored bool) (*TaskRestore, error) {
	ops := make(map[string]*JobVertex)
	for _, v := range g.Vertices {
		for _, o := range v.Operators {
			ops[o.ID] = v
		}
	}
	r := &TaskRestore{CheckpointID: m.CheckpointID, Operators: make(map[string]checkpoint.OperatorState)}
	var missing []string
	for _, op := range m.Operators {
		v, ok := ops[op.OperatorID]
		if !ok {
			name := op.OperatorID
			if op.UID != "" {
				name = fmt.Sprintf("%s (uid %q)", op.OperatorID, op.UID)
			}
			missing = append(missing, name)
			continue
		}
		keyed := false
		for _, st := range op.Subtasks {
			keyed = keyed || len(st.Keyed) > 0
		}
		if keyed && op.MaxParallelism != v.MaxParallelism {
			return nil, fmt.Errorf("%w: operator %s of %q has keyed state for max parallelism %d, the job's is %d; max parallelism cannot change",
				ErrRestoreMismatch, op.OperatorID, v.Name, op.MaxParallelism, v.MaxParallelism)
		}
		r.Operators[op.OperatorID] = op
	}
	if len(missing) > 0 && !allowNonRestored {
		what := "checkpoint"
		if m.IsSavepoint {
			what = "savepoint"
		}
		return nil, fmt.Errorf("%w: the %s (of job %q) holds state for operators the job %q does not have: %s; set AllowNonRestoredState to skip it",
			ErrRestoreMismatch, what, m.JobName, g.Name, strings.Join(missing, ", "))
	}
	return r, nil
}
