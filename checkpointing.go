package flink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/state"
)

// The task side of checkpoints. A source subtask takes a checkpoint when
// its JobManager's trigger, queued in its mailbox, reaches the head of the
// queue; any other subtask when the checkpoint's barrier arrived on all its
// input channels. Either way the chain's owner, between records, freezes
// the state of each stateful operator of its chain (a few microseconds:
// copy on write) and sends the barrier on to its outputs. A goroutine of
// the task's then writes the frozen state to checkpoint storage and
// acknowledges the checkpoint to the JobManager with the handles of what
// it wrote.

// TaskRestore is the state a subtask starts from: per operator id, the
// operator's state in a completed checkpoint or savepoint, for all the
// subtasks that wrote it. Each subtask picks its key groups and its share of
// operator state, so the state restores at any parallelism.
type TaskRestore struct {
	CheckpointID int64
	Operators    map[string]checkpoint.OperatorState
}

// forVertex returns the part of r that vertex v's subtasks restore: the
// state of its operators only. A nil r stays nil.
func (r *TaskRestore) forVertex(v *JobVertex) *TaskRestore {
	if r == nil {
		return nil
	}
	out := &TaskRestore{CheckpointID: r.CheckpointID, Operators: make(map[string]checkpoint.OperatorState)}
	for _, o := range v.Operators {
		if st, ok := r.Operators[o.ID]; ok {
			out.Operators[o.ID] = st
		}
	}
	return out
}

// operatorSnapshot is one operator's state frozen for a checkpoint.
type operatorSnapshot struct {
	keyed    *state.KeyedSnapshot
	operator *state.OperatorSnapshot
}

// stateEntry is a stateful operator of a task's chain.
type stateEntry struct {
	opID string
	// snapshot freezes the operator's state; called by the chain's owner.
	snapshot func(b CheckpointBarrier) (operatorSnapshot, error)
}

// checkpointListener is told about completed and aborted checkpoints,
// by the chain's owner: transactional sinks commit there.
type checkpointListener interface {
	notifyCheckpointComplete(id int64) error
	notifyCheckpointAborted(id int64)
}

// CheckpointedFunction is implemented by user sources and sinks that keep
// operator state, as Flink's CheckpointedFunction: state that is not keyed,
// such as a source's read positions, held in list states that are
// redistributed over the subtasks when a job is restored at another
// parallelism.
type CheckpointedFunction interface {
	// InitializeState is called once before the function runs, with the
	// subtask's operator state: restored from a checkpoint or savepoint when
	// ctx.IsRestored(). Register list states here and read them back.
	InitializeState(ctx *StateInitContext) error
	// SnapshotState is called when a checkpoint is taken, with no record
	// moving: copy in-memory positions into the registered states.
	SnapshotState(checkpointID int64) error
}

// StateInitContext is what CheckpointedFunction.InitializeState sees.
type StateInitContext struct {
	rc       *RuntimeContext
	backend  *state.OperatorBackend
	restored bool
}

// OperatorState returns the subtask's operator state backend: register
// list states with state.GetOperatorListState or state.GetUnionListState.
func (c *StateInitContext) OperatorState() *state.OperatorBackend { return c.backend }

// IsRestored reports whether the state was restored from a checkpoint or
// savepoint.
func (c *StateInitContext) IsRestored() bool { return c.restored }

// RuntimeContext describes the subtask.
func (c *StateInitContext) RuntimeContext() *RuntimeContext { return c.rc }

// streamName names the state stream one attempt of one subtask writes for
// an operator.
func (t *task) streamName(opID, kind string) string {
	return fmt.Sprintf("%s-%d-%d-%s", opID, t.id.Subtask, t.id.Attempt, kind)
}

// registerState adds a stateful operator of the chain; called during build.
func (t *task) registerState(opID string, snapshot func(CheckpointBarrier) (operatorSnapshot, error)) {
	t.states = append(t.states, stateEntry{opID: opID, snapshot: snapshot})
}

// addListener registers a checkpoint listener; called during build.
func (t *task) addListener(l checkpointListener) { t.listeners = append(t.listeners, l) }

// addBarrierWriter registers an output that barriers are sent into.
func (t *task) addBarrierWriter(f func(CheckpointBarrier) error) {
	t.barrierWriters = append(t.barrierWriters, f)
}

// performCheckpoint takes checkpoint b from the task goroutine, outside
// the chain: once a barrier was aligned.
func (t *task) performCheckpoint(b CheckpointBarrier, alignment time.Duration) error {
	t.chain.Lock()
	defer t.chain.Unlock()
	return t.performCheckpointLocked(b, alignment)
}

// performCheckpointLocked takes checkpoint b as the chain's owner: it
// freezes the chain's state and forwards the barrier, then writes the state
// and acknowledges on a goroutine of the task's, so that no storage or RPC
// I/O holds the chain.
func (t *task) performCheckpointLocked(b CheckpointBarrier, alignment time.Duration) error {
	if err := t.ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", errTaskStopping, err)
	}
	if t.ckpt.inputEnded {
		// The source emitted the end of its input: a barrier after it
		// would reach no one, and a savepoint can no longer be taken.
		t.goAsyncLocked(func() { t.decline(b.ID, t.endingError()) })
		return nil
	}
	snaps := make([]operatorSnapshot, len(t.states))
	var snapErr error
	for i, s := range t.states {
		snap, err := s.snapshot(b)
		if err != nil {
			snapErr = fmt.Errorf("snapshot of operator %s: %w", s.opID, err)
			break
		}
		snaps[i] = snap
	}
	// The barrier goes on even when this subtask declines, so that
	// downstream subtasks do not wait for it.
	err := t.flushLocked()
	for _, w := range t.barrierWriters {
		if err != nil {
			break
		}
		err = w(b)
	}
	if err == nil && t.flushEach {
		err = t.flushLocked()
	}
	if b.Final {
		t.ckpt.finalID = b.ID
	}
	if b.Stop && t.source.Load() != nil {
		t.ckpt.halt(b.ID)
	}
	if err != nil {
		return err
	}
	switch {
	case snapErr != nil:
		t.goAsyncLocked(func() { t.decline(b.ID, snapErr) })
	case t.ckpt.closing:
		t.decline(b.ID, t.endingError())
	default:
		t.goAsyncLocked(func() { t.writeSnapshot(b, snaps, alignment) })
	}
	if b.Final {
		t.ckpt.finalOnce.Do(func() { close(t.ckpt.finalTaken) })
	}
	return nil
}

// goAsyncLocked runs f on a goroutine that run waits for before the task
// ends; the chain token is held. Once run stopped waiting, f runs at once.
func (t *task) goAsyncLocked(f func()) {
	if t.ckpt.closing {
		f()
		return
	}
	t.async.Add(1)
	go func() {
		defer t.async.Done()
		f()
	}()
}

// writeSnapshot writes the frozen state and acknowledges the checkpoint.
func (t *task) writeSnapshot(b CheckpointBarrier, snaps []operatorSnapshot, alignment time.Duration) {
	ack := checkpoint.TaskAck{States: make(map[string]checkpoint.SubtaskState, len(snaps)), Alignment: alignment}
	for i, s := range snaps {
		st, n, err := t.writeOperator(b.Location, t.states[i].opID, s)
		if err != nil {
			t.decline(b.ID, fmt.Errorf("writing state of operator %s: %w", t.states[i].opID, err))
			return
		}
		// An operator may keep keyed and operator state: one entry each.
		prev := ack.States[t.states[i].opID]
		prev.Keyed = append(prev.Keyed, st.Keyed...)
		prev.Operator = append(prev.Operator, st.Operator...)
		ack.States[t.states[i].opID] = prev
		ack.Bytes += n
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), defaultCallTimeout)
	defer cancel()
	if err := t.jm.AcknowledgeCheckpoint(ctx, t.id, b.ID, ack); err != nil {
		t.log.Debug("acknowledging checkpoint failed", "checkpoint", b.ID, "err", err)
	}
}

// writeOperator writes one operator's frozen state and returns its handles
// and size.
func (t *task) writeOperator(loc checkpoint.Location, opID string, s operatorSnapshot) (checkpoint.SubtaskState, int64, error) {
	var st checkpoint.SubtaskState
	var bytes int64
	if t.storage == nil {
		return st, 0, errors.New("flink: no checkpoint storage configured on this task manager")
	}
	if s.keyed != nil {
		var h state.KeyedStateHandle
		sh, err := t.writeStream(loc, t.streamName(opID, "keyed"), func(w io.Writer) (err error) {
			h, err = s.keyed.Write(t.ctx, w)
			return err
		})
		if err != nil {
			return st, 0, err
		}
		st.Keyed = append(st.Keyed, checkpoint.KeyedStateHandle{Stream: sh, KeyGroups: h.KeyGroupRange, Offsets: h.Offsets})
		bytes += sh.Size
	}
	if s.operator != nil {
		var h state.OperatorStateHandle
		sh, err := t.writeStream(loc, t.streamName(opID, "op"), func(w io.Writer) (err error) {
			h, err = s.operator.Write(t.ctx, w)
			return err
		})
		if err != nil {
			return st, 0, err
		}
		oh := checkpoint.OperatorStateHandle{Stream: sh, States: make(map[string]checkpoint.OperatorStateInfo, len(h.States))}
		for _, m := range h.States {
			oh.States[m.Name] = checkpoint.OperatorStateInfo{Offsets: m.Offsets, Mode: checkpoint.DistributionMode(m.Mode)}
		}
		st.Operator = append(st.Operator, oh)
		bytes += sh.Size
	}
	return st, bytes, nil
}

// writeStream writes one state stream named name into loc with write.
func (t *task) writeStream(loc checkpoint.Location, name string, write func(io.Writer) error) (checkpoint.StreamHandle, error) {
	w, err := t.storage.CreateStream(t.ctx, loc, name)
	if err != nil {
		return checkpoint.StreamHandle{}, err
	}
	defer w.Abort()
	if err := write(w); err != nil {
		return checkpoint.StreamHandle{}, err
	}
	return w.Close()
}

// decline tells the JobManager the subtask cannot take checkpoint id. A
// subtask being stopped declines as not ready, which does not count as a
// checkpoint failure.
func (t *task) decline(id int64, reason error) {
	if t.ctx.Err() != nil && !errors.Is(reason, checkpoint.ErrTaskNotReady) {
		reason = fmt.Errorf("%w: the subtask is stopping: %w", checkpoint.ErrTaskNotReady, reason)
	}
	t.log.Warn("declining checkpoint", "checkpoint", id, "reason", reason)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), defaultCallTimeout)
	defer cancel()
	if err := t.jm.DeclineCheckpoint(ctx, t.id, id, reason); err != nil {
		t.log.Debug("declining checkpoint failed", "checkpoint", id, "err", err)
	}
}

// endingError is why a subtask whose run is ending declines a checkpoint:
// ErrJobEnding when its input ended (the job is finishing), else it is
// being stopped. Both wrap checkpoint.ErrTaskNotReady, which the
// coordinator does not count as a checkpoint failure.
func (t *task) endingError() error {
	if t.ctx.Err() == nil {
		return fmt.Errorf("%w: %w: %s has read all its input and is finishing", ErrJobEnding, checkpoint.ErrTaskNotReady, t.id)
	}
	return fmt.Errorf("%w: %s is ending", checkpoint.ErrTaskNotReady, t.id)
}

// triggerCheckpoint queues checkpoint b at a source subtask, once it was
// built: the chain's owner takes it between records. It does not wait for
// it; a subtask that cannot take it, or ends first, declines.
func (t *task) triggerCheckpoint(ctx context.Context, b CheckpointBarrier) error {
	select {
	case <-t.built:
	case <-t.ctx.Done():
		return fmt.Errorf("%w: %s is stopping", checkpoint.ErrTaskNotReady, t.id)
	case <-ctx.Done():
		return fmt.Errorf("%w: %s is still starting", checkpoint.ErrTaskNotReady, t.id)
	}
	if t.source.Load() == nil {
		return fmt.Errorf("flink: checkpoint %d triggered on %s, which is not a running source subtask", b.ID, t.id)
	}
	// A trigger the task ends before taking is declined, so that the
	// checkpoint fails now rather than at its timeout.
	t.post(fmt.Sprintf("checkpoint %d", b.ID), func() error { return t.performCheckpointLocked(b, 0) },
		func() { t.decline(b.ID, t.endingError()) })
	return nil
}

// chainBuilt reports whether the chain was built, so that its checkpoint
// listeners are all registered. A notification can reach a new attempt of a
// subtask while it is still building: the JobManager addresses the current
// attempt of each subtask a checkpoint names. Such an attempt took part in
// no checkpoint yet (a restored one commits what it restored while it
// builds), so its listeners have nothing to hear.
func (t *task) chainBuilt() bool {
	select {
	case <-t.built:
		return true
	default:
		return false
	}
}

// notifyCheckpointComplete queues the news that checkpoint id completed for
// the chain: its transactional sinks commit there. A commit that fails
// fails the subtask, and the job recovers and commits again from the
// checkpoint.
func (t *task) notifyCheckpointComplete(id int64) {
	built := t.chainBuilt()
	t.post(fmt.Sprintf("completion of checkpoint %d", id), func() error {
		if built {
			for _, l := range t.listeners {
				if err := l.notifyCheckpointComplete(id); err != nil {
					return err
				}
			}
		}
		t.ckpt.mu.Lock()
		t.ckpt.completed = max(t.ckpt.completed, id)
		// Aborts are kept to fail the wait for the final checkpoint, which
		// is newer than any completed one: older ones can go.
		t.ckpt.aborted = slices.DeleteFunc(t.ckpt.aborted, func(a int64) bool { return a <= id })
		t.ckpt.mu.Unlock()
		return nil
	}, nil)
}

// notifyCheckpointAborted queues the news that checkpoint id was aborted
// for the chain. A source halted by it resumes at once.
func (t *task) notifyCheckpointAborted(id int64) {
	t.ckpt.mu.Lock()
	if t.ckpt.haltedBy == id {
		t.ckpt.haltedBy = 0
		t.ckpt.halted.Store(false)
	}
	t.ckpt.mu.Unlock()
	t.ckpt.signal()
	built := t.chainBuilt()
	t.post(fmt.Sprintf("abort of checkpoint %d", id), func() error {
		if built {
			for _, l := range t.listeners {
				l.notifyCheckpointAborted(id)
			}
		}
		t.ckpt.mu.Lock()
		t.ckpt.aborted = append(t.ckpt.aborted, id)
		t.ckpt.mu.Unlock()
		return nil
	}, nil)
}

// halt stops a source from emitting after the barrier of stop-with-savepoint
// id, until the savepoint is aborted (or the task is cancelled).
func (c *taskCheckpoints) halt(id int64) {
	c.mu.Lock()
	c.haltedBy = id
	c.halted.Store(true)
	c.mu.Unlock()
}

// awaitResume waits while a stop-with-savepoint halts the source.
func (t *task) awaitResume() error {
	for t.ckpt.halted.Load() {
		t.ckpt.mu.Lock()
		halted, wake := t.ckpt.haltedBy != 0, t.ckpt.wake
		t.ckpt.mu.Unlock()
		if !halted {
			return nil
		}
		select {
		case <-wake:
		case <-t.ctx.Done():
			return fmt.Errorf("%w: %w", errTaskStopping, t.ctx.Err())
		}
	}
	return nil
}

// awaitFinalCheckpoint holds a subtask that has ended its input, running
// its mails, until the final checkpoint it took part in completed, so that
// the state of its transactional sinks is committed before it finishes. It
// fails if that checkpoint was aborted: the job must then recover.
func (t *task) awaitFinalCheckpoint() error {
	t.chain.Lock()
	final := t.ckpt.finalID
	t.chain.Unlock()
	if final == 0 {
		return nil
	}
	var aborted bool
	err := t.awaitMail(func() bool {
		t.ckpt.mu.Lock()
		defer t.ckpt.mu.Unlock()
		aborted = slices.Contains(t.ckpt.aborted, final)
		return t.ckpt.completed >= final || aborted
	})
	if err == nil && aborted {
		return fmt.Errorf("flink: the final checkpoint %d was aborted; the job recovers from its last completed checkpoint", final)
	}
	return err
}

// taskCheckpoints is a task's checkpoint bookkeeping.
type taskCheckpoints struct {
	// finalID, closing and inputEnded are guarded by the chain token.
	finalID    int64
	closing    bool // run is ending: no more snapshots are written
	inputEnded bool // the source emitted the end of its input

	finalTaken chan struct{} // closed once the final checkpoint was taken
	finalOnce  sync.Once

	halted atomic.Bool // a stop-with-savepoint holds the source

	mu        sync.Mutex
	haltedBy  int64         // the stop-with-savepoint holding the source
	completed int64         // the newest checkpoint known complete
	aborted   []int64       // checkpoints known aborted, newer than completed
	wake      chan struct{} // closed when the halt ends
}

func newTaskCheckpoints() *taskCheckpoints {
	return &taskCheckpoints{finalTaken: make(chan struct{}), wake: make(chan struct{})}
}

// signal wakes goroutines waiting for a notification.
func (c *taskCheckpoints) signal() {
	c.mu.Lock()
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
}

// keyedBackend creates a keyed operator's state backend for its subtask's
// key groups, restores it when the operator has state to start from, and
// registers it for checkpoints.
func keyedBackend[K comparable](oc *opContext) (*state.HeapKeyedBackend[K], error) {
	v := oc.task.graph.Vertices[oc.task.id.Vertex]
	b, err := state.NewHeapKeyedBackend[K](state.SubtaskKeyedBackendOptions(v.MaxParallelism, oc.rc.parallelism, oc.rc.subtask))
	if err != nil {
		return nil, fmt.Errorf("keyed state: %w", err)
	}
	if oc.restore != nil {
		inputs, closeAll, err := oc.keyedInputs(b.KeyGroupRange())
		if err != nil {
			return nil, err
		}
		err = b.Restore(inputs...)
		closeAll()
		if err != nil {
			return nil, fmt.Errorf("restoring keyed state of checkpoint %d: %w", oc.task.restore.CheckpointID, err)
		}
	}
	oc.task.registerState(oc.opID, func(CheckpointBarrier) (operatorSnapshot, error) {
		for _, f := range oc.beforeKeyedSnapshot {
			if err := f(); err != nil {
				return operatorSnapshot{}, err
			}
		}
		s, err := b.Snapshot()
		return operatorSnapshot{keyed: s}, err
	})
	return b, nil
}

// operatorBackend creates an operator's operator-state backend, restores it
// when the operator has state to start from, and registers it for
// checkpoints; before, if set, runs by the chain's owner ahead of each
// snapshot, to write positions into the states.
func operatorBackend(oc *opContext, before func(id int64) error) (*state.OperatorBackend, error) {
	b := state.NewOperatorBackend()
	if oc.restore != nil {
		inputs, closeAll, err := oc.operatorInputs()
		if err != nil {
			return nil, err
		}
		err = b.Restore(inputs...)
		closeAll()
		if err != nil {
			return nil, fmt.Errorf("restoring operator state of checkpoint %d: %w", oc.task.restore.CheckpointID, err)
		}
	}
	oc.task.registerState(oc.opID, func(cb CheckpointBarrier) (operatorSnapshot, error) {
		if before != nil {
			if err := before(cb.ID); err != nil {
				return operatorSnapshot{}, err
			}
		}
		s, err := b.Snapshot()
		return operatorSnapshot{operator: s}, err
	})
	return b, nil
}

// keyedInputs opens the restored keyed streams that hold key groups of r.
func (oc *opContext) keyedInputs(r state.KeyGroupRange) ([]state.KeyedStateInput, func(), error) {
	var handles []state.KeyedStateHandle
	var streams []checkpoint.StreamHandle
	for _, st := range oc.restore.Subtasks {
		for _, h := range st.Keyed {
			handles = append(handles, state.KeyedStateHandle{KeyGroupRange: h.KeyGroups, Offsets: h.Offsets, Size: h.Stream.Size})
			streams = append(streams, h.Stream)
		}
	}
	var inputs []state.KeyedStateInput
	var readers []checkpoint.StreamReader
	closeAll := func() {
		for _, r := range readers {
			r.Close()
		}
	}
	for _, i := range state.KeyedStreamsForRange(handles, r) {
		rd, err := oc.openStream(streams[i])
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		readers = append(readers, rd)
		inputs = append(inputs, state.KeyedStateInput{Handle: handles[i], Reader: rd})
	}
	return inputs, closeAll, nil
}

// operatorInputs opens this subtask's share of the restored operator state.
func (oc *opContext) operatorInputs() ([]state.OperatorStateInput, func(), error) {
	var handles []state.OperatorStateHandle
	var streams []checkpoint.StreamHandle
	for _, st := range oc.restore.Subtasks {
		for _, h := range st.Operator {
			sh := state.OperatorStateHandle{Size: h.Stream.Size}
			for _, name := range slices.Sorted(maps.Keys(h.States)) {
				info := h.States[name]
				sh.States = append(sh.States, state.OperatorStateMeta{Name: name, Mode: state.DistributionMode(info.Mode), Offsets: info.Offsets})
			}
			handles = append(handles, sh)
			streams = append(streams, h.Stream)
		}
	}
	assigned, err := state.RedistributeOperatorState(handles, oc.rc.parallelism)
	if err != nil {
		return nil, nil, err
	}
	var inputs []state.OperatorStateInput
	var readers []checkpoint.StreamReader
	closeAll := func() {
		for _, r := range readers {
			r.Close()
		}
	}
	for _, a := range assigned[oc.rc.subtask] {
		rd, err := oc.openStream(streams[a.Stream])
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		readers = append(readers, rd)
		inputs = append(inputs, state.OperatorStateInput{Handle: a.Handle, Reader: rd})
	}
	return inputs, closeAll, nil
}

func (oc *opContext) openStream(h checkpoint.StreamHandle) (checkpoint.StreamReader, error) {
	t := oc.task
	if t.storage == nil {
		return nil, errors.New("flink: no checkpoint storage configured on this task manager")
	}
	r, err := t.storage.OpenStream(t.ctx, h)
	if err != nil {
		return nil, fmt.Errorf("restoring from checkpoint %d: %w", t.restore.CheckpointID, err)
	}
	return r, nil
}
