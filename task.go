package flink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flinkgo/flink/checkpoint"
)

// TaskDeploymentDescriptor tells a TaskManager what to run: which job
// (rebuilt from its own registry or found in the process), which subtask and
// attempt, in which slot, and whom to report to.
type TaskDeploymentDescriptor struct {
	ID           ExecutionAttemptID
	Job          JobSpec
	Fingerprint  string
	AllocationID AllocationID
	// JobManager is the address of the JobManager the task reports to.
	JobManager string
	// Exchange says how the job's subtasks exchange records.
	Exchange ExchangeSpec
	// Checkpointing is set when the job takes checkpoints: exhausted
	// sources then wait for a final checkpoint, and every subtask for its
	// completion, before they finish.
	Checkpointing bool
	// Restore is the state to start from; nil to start empty.
	Restore *TaskRestore
}

// ExchangeSpec says how the subtasks of one job attempt exchange records.
type ExchangeSpec struct {
	// Network is false when every subtask runs in one process: records are
	// handed over as Go values. When true, every exchange goes through the
	// network stack: serialized into buffers, over TCP between processes.
	Network bool
	// DataAddrs[v][i] is the data address of the TaskManager running
	// subtask i of vertex v, when Network is set. A descriptor holds only
	// the rows its subtask reads (its own vertex's and its inputs'
	// producers'), shared with the other descriptors; the others are nil.
	DataAddrs [][]string

	wire *exchangeWire // the spec encoded once for every descriptor sharing it
}

// TaskExecutionState is a task's report of a state change to its
// JobManager.
type TaskExecutionState struct {
	ID    ExecutionAttemptID
	State ExecutionState
	// Err is set for FAILED.
	Err error
	// Metrics is set for terminal states: the task's final counters.
	Metrics *TaskMetrics
	// EndOfData, with state RUNNING, reports that a source subtask of a
	// checkpointed job read all its input and waits for the final
	// checkpoint.
	EndOfData bool
}

// TaskMetrics are one subtask's counters.
type TaskMetrics struct {
	// Operators holds each chained operator's record counts, head first.
	Operators []OperatorCounts
	// BackPressured is the time spent waiting for an output buffer.
	BackPressured time.Duration
	// Idle is the time spent waiting for input.
	Idle time.Duration
	// BytesIn and BytesOut are the serialized bytes the subtask read from
	// its input gate and wrote to its result partitions, as Flink's
	// numBytesIn and numBytesOut. Only the network exchange serializes:
	// both are 0 for edges of the in-process exchange, which hands Go
	// values over, as for chained operators.
	BytesIn, BytesOut int64
	// InPoolUsed and InPoolSize are the input gate's receive buffers in use
	// and in all; OutPoolUsed and OutPoolSize the same for the result
	// partitions' buffer pools (their most). Zero without network exchange.
	InPoolUsed, InPoolSize   int
	OutPoolUsed, OutPoolSize int
	// InputWatermark is the event-time watermark of the subtask's inputs
	// (the minimum over its channels) and OutputWatermark the last one it
	// emitted, as Flink's currentInputWatermark and currentOutputWatermark;
	// MinWatermark before the first.
	InputWatermark, OutputWatermark int64
}

// OperatorCounts are one operator's record counts.
type OperatorCounts struct {
	Name       string
	RecordsIn  int64
	RecordsOut int64
}

// task runs one subtask: its chain of operators, reading its input gate (or
// running its source) and writing its outputs. It runs on its own
// goroutine, which owns the chain; everything else reaches the chain
// through the task's mailbox (mailbox.go).
type task struct {
	id      ExecutionAttemptID
	graph   *JobGraph
	shuffle *localShuffle
	log     *slog.Logger
	alloc   AllocationID      // the slot the task runs in
	term    uint64            // the fencing term it was deployed in; 0 without HA
	jm      JobManagerGateway // where the task reports
	// net is the TaskManager's data plane, used when exchange.Network.
	net      *netContext
	exchange ExchangeSpec

	ctx    context.Context
	cancel context.CancelFunc

	// chain is the chain token: whoever runs the chain holds it. Only the
	// task's own goroutines take it (see mailbox.go); others post mails.
	chain   sync.Mutex
	mailbox *mailbox
	clock   clock
	// stopOnce guards stop; stopAt is when it was first asked to stop, in
	// Unix nanoseconds, 0 before: the cancellation watchdog reads it.
	stopOnce sync.Once
	stopAt   atomic.Int64
	// cancelers runs the source's Cancel, which is user code that may
	// block; run waits for it. ended, under endMu, is set when run stops
	// waiting for new ones.
	cancelers sync.WaitGroup
	endMu     sync.Mutex
	ended     bool
	// goroutine is the id of the goroutine running the task, for the
	// stack the cancellation watchdog logs.
	goroutine atomic.Int64
	// sourceGoroutine is the id of a source task's source goroutine, and
	// cancelGoroutine of the one running its Cancel.
	sourceGoroutine, cancelGoroutine atomic.Int64

	flushers []func() error
	closers  []func() error
	// flushEach ships buffers after every emission: buffer timeout 0.
	flushEach bool

	ops                []*OperatorMetrics
	opNames            []string
	backPressuredNanos atomic.Int64
	idleNanos          atomic.Int64
	inputWM, outputWM  atomic.Int64

	source atomic.Pointer[sourceRunner] // set for source tasks; read by stop without the chain token

	// metricsMu guards what metrics reads, so that it may run on another
	// goroutine without waiting for the chain token.
	metricsMu sync.Mutex
	// netMetrics add the network exchange's counters to the task's.
	netMetrics []func(*TaskMetrics)

	// Checkpoints: set up during build, then used by the chain's owner.
	checkpointing  bool
	storage        checkpoint.Storage
	restore        *TaskRestore
	states         []stateEntry
	listeners      []checkpointListener
	barrierWriters []func(CheckpointBarrier) error
	statusWriters  []func(idle bool) error
	// timers is the processing-time service.
	timers    *procTimers
	async     sync.WaitGroup // snapshots being written
	ckpt      *taskCheckpoints
	built     chan struct{} // closed once the chain was built, or run ended
	builtOnce sync.Once

	failMu  sync.Mutex
	failure error // the first failed mail's error; see runMailsLocked

	// stoppedBeforeEnd is set when run returns if the task had been
	// stopped: it ended because it was cancelled.
	stoppedBeforeEnd bool
}

// failWith fails the task: err is recorded as why it ended, whatever the
// code that was running returns, and its context is cancelled.
func (t *task) failWith(err error) {
	t.failMu.Lock()
	if t.failure == nil {
		t.failure = err
	}
	t.failMu.Unlock()
	t.cancel()
}

// asyncFailure returns the error given to failWith, if any.
func (t *task) asyncFailure() error {
	t.failMu.Lock()
	defer t.failMu.Unlock()
	return t.failure
}

func newTask(parent context.Context, id ExecutionAttemptID, g *JobGraph, sh *localShuffle, clk clock, log *slog.Logger) *task {
	ctx, cancel := context.WithCancel(parent)
	v := g.Vertices[id.Vertex]
	if clk == nil {
		clk = realClock{}
	}
	t := &task{
		id: id, graph: g, shuffle: sh, ctx: ctx, cancel: cancel,
		mailbox: newMailbox(), clock: clk,
		flushEach: g.Config.BufferTimeout == 0,
		ckpt:      newTaskCheckpoints(),
		built:     make(chan struct{}),
		log:       log.With("job", id.Job, "task", v.Name, "vertex", id.Vertex, "subtask", id.Subtask, "attempt", id.Attempt),
	}
	t.timers = newProcTimers(t)
	t.inputWM.Store(MinWatermark)
	t.outputWM.Store(MinWatermark)
	return t
}

// emit runs f, which pushes records into the chain, with the chain token
// held, then the mails queued meanwhile. It is called by the chain's owner
// only: the task goroutine, or a source task's source goroutine.
func (t *task) emit(f func() error) error {
	if t.ckpt.halted.Load() {
		if err := t.awaitResume(); err != nil {
			return err
		}
	}
	t.chain.Lock()
	defer t.chain.Unlock()
	if err := t.ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", errTaskStopping, err)
	}
	if err := f(); err != nil {
		return err
	}
	if t.flushEach {
		if err := t.flushLocked(); err != nil {
			return err
		}
	}
	if t.mailbox.pending.Load() > 0 {
		return t.runMailsLocked()
	}
	return nil
}

func (t *task) flushLocked() error {
	for _, f := range t.flushers {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// addFlusher registers a function that ships records held for batching;
// called during build.
func (t *task) addFlusher(f func() error) { t.flushers = append(t.flushers, f) }

// addSourceFlusher registers the flusher of a source's pending records: it
// runs before the writers' flushers, so that what it pushes ships in the
// same flush.
func (t *task) addSourceFlusher(f func() error) {
	t.flushers = append([]func() error{f}, t.flushers...)
}

// addNetMetrics registers a function adding network counters to the task's
// metrics; called from the task's goroutine.
func (t *task) addNetMetrics(f func(*TaskMetrics)) {
	t.metricsMu.Lock()
	defer t.metricsMu.Unlock()
	t.netMetrics = append(t.netMetrics, f)
}

func durationOf(nanos int64) time.Duration { return time.Duration(nanos) }

// addCloser registers a function to call when the task ends.
func (t *task) addCloser(f func() error) { t.closers = append(t.closers, f) }

// build instantiates the vertex's chain from its tail to its head and
// returns the head: a sourceRunner, or a consumer of the head's input type.
func (t *task) build() (any, error) {
	v := t.graph.Vertices[t.id.Vertex]
	built := make(map[*transformation]any, len(v.ops))
	ops := make([]*OperatorMetrics, len(v.ops))
	names := make([]string, len(v.ops))
	defer func() {
		t.metricsMu.Lock()
		t.ops, t.opNames = ops, names
		t.metricsMu.Unlock()
	}()
	for i := len(v.ops) - 1; i >= 0; i-- {
		op := v.ops[i]
		outs := make(map[string][]any) // by side output tag; "" is the main output
		for _, next := range v.ops[i+1:] {
			if in := next.inputs[0]; in.from == op {
				outs[in.tag] = append(outs[in.tag], built[next])
			}
		}
		for _, eid := range v.Outputs {
			if e := t.graph.Edges[eid]; e.from == op {
				w, err := e.recordType().newWriter(t, e)
				if err != nil {
					return nil, err
				}
				outs[e.tag] = append(outs[e.tag], w)
			}
		}
		var out any
		if op.outType != nil {
			out = op.outType.fanout(outs[""])
		}
		side := sideOutputs{outs: make(map[string]any, len(op.sideTypes))}
		for tag, typ := range op.sideTypes {
			side.outs[tag] = typ.fanout(outs[tag])
		}
		m := &OperatorMetrics{}
		ops[i], names[i] = m, op.name
		opID := v.Operators[i].ID
		oc := &opContext{task: t, metrics: m, opID: opID, restore: t.restoreOf(opID), rc: &RuntimeContext{
			ctx: t.ctx, jobName: t.graph.Name, taskName: v.Name, opName: op.name,
			subtask: t.id.Subtask, parallelism: v.Parallelism, attempt: t.id.Attempt, jobID: t.id.Job, opID: opID,
		}}
		oc.side = &side
		oc.rc.side = oc.side
		c, err := op.build(oc, out)
		if err != nil {
			return nil, err
		}
		built[op] = c
		if i == 0 && op.kind == kindSource {
			r := c.(sourceRunner)
			t.source.Store(&r)
			return sourceHead{runner: r, out: out.(interface {
				watermark(int64) error
				endInput() error
			})}, nil
		}
	}
	return built[v.ops[0]], nil
}

// sourceHead is the head of a source task: the source and the chain it
// feeds.
type sourceHead struct {
	runner sourceRunner
	out    interface {
		watermark(int64) error
		endInput() error
	}
}

// run executes the subtask to its end and returns why it ended: nil when
// its input was exhausted.
func (t *task) run() (err error) {
	t.goroutine.Store(goroutineID())
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrUserPanic, r)
		}
		t.stoppedBeforeEnd = t.ctx.Err() != nil
		if err != nil {
			t.cancel() // stops snapshots being written
		}
		t.timers.stop()
		t.chain.Lock()
		t.ckpt.closing = true
		t.chain.Unlock()
		t.mailbox.close()
		t.async.Wait()
		t.endMu.Lock()
		t.ended = true
		t.endMu.Unlock()
		t.cancelers.Wait()
		for i := len(t.closers) - 1; i >= 0; i-- {
			if cerr := t.closers[i](); cerr != nil && err == nil {
				err = fmt.Errorf("closing: %w", cerr)
			}
		}
	}()
	head, err := t.build()
	t.builtOnce.Do(func() { close(t.built) })
	if err != nil {
		return err
	}
	stopFlusher := t.startFlusher()
	defer stopFlusher()

	v := t.graph.Vertices[t.id.Vertex]
	if src, ok := head.(sourceHead); ok {
		if err := t.runSource(src.runner); err != nil {
			return err
		}
		// The input ended: every event-time timer and window fires, before
		// the final checkpoint so that it covers what they emit.
		t.timers.stop()
		if err := t.emit(func() error { return src.out.watermark(MaxWatermark) }); err != nil {
			return err
		}
		if err := t.awaitFinalTrigger(); err != nil {
			return err
		}
		err := t.emit(func() error {
			if err := t.flushLocked(); err != nil {
				return err
			}
			t.ckpt.inputEnded = true
			return src.out.endInput()
		})
		if err != nil {
			return err
		}
		return t.awaitFinalCheckpoint()
	}
	in := t.graph.Edges[v.Inputs[0]].recordType()
	if err := in.runInput(t, head); err != nil {
		return err
	}
	return t.awaitFinalCheckpoint()
}

// runSource runs a source task's source on its own goroutine, which pushes
// records through the chain, while this goroutine runs the mails that
// arrive while the source waits for its own input. It returns when the
// source does: nil once its input is exhausted.
func (t *task) runSource(r sourceRunner) error {
	done := make(chan error, 1)
	go func() {
		t.sourceGoroutine.Store(goroutineID())
		var err error
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: %v", ErrUserPanic, p)
			}
			done <- err
		}()
		err = r.run(t.ctx)
	}()
	for {
		select {
		case err := <-done:
			return err
		case <-t.mailbox.signal:
			if err := t.processMail(); err != nil {
				// The source must end before the task does.
				t.stop()
				<-done
				return err
			}
		}
	}
}

// awaitMail runs mails until cond reports true (checked after each batch of
// mails) or the task is stopped.
func (t *task) awaitMail(cond func() bool) error {
	for !cond() {
		select {
		case <-t.mailbox.signal:
			if err := t.processMail(); err != nil {
				return err
			}
		case <-t.ctx.Done():
			return fmt.Errorf("%w: %w", errTaskStopping, t.ctx.Err())
		}
	}
	return nil
}

// awaitFinalTrigger holds an exhausted source of a checkpointed job until
// it took the final checkpoint, so that everything it emitted is covered by
// a checkpoint before its input ends.
func (t *task) awaitFinalTrigger() error {
	if !t.checkpointing {
		return nil
	}
	ctx, cancel := context.WithTimeout(t.ctx, defaultCallTimeout)
	err := t.jm.UpdateTaskExecutionState(ctx, TaskExecutionState{ID: t.id, State: Running, EndOfData: true})
	cancel()
	if err != nil {
		return fmt.Errorf("reporting the end of input: %w", err)
	}
	return t.awaitMail(func() bool {
		select {
		case <-t.ckpt.finalTaken:
			return true
		default:
			return false
		}
	})
}

// newAligner returns a barrier aligner for an input of n channels that
// checkpoints this task.
func (t *task) newAligner(n int) *aligner {
	a := newAligner(n)
	a.now = t.clock.Now
	a.checkpoint = t.performCheckpoint
	a.decline = t.decline
	return a
}

// restoreOf returns the restored state of operator id, or nil.
func (t *task) restoreOf(id string) *checkpoint.OperatorState {
	if t.restore == nil {
		return nil
	}
	if st, ok := t.restore.Operators[id]; ok {
		return &st
	}
	return nil
}

// stop cancels the task: its context ends and its source is told to stop.
// It does not wait: the source's Cancel, user code that may block, runs on
// a goroutine of the task's, which run waits for. Only the first call
// does anything.
func (t *task) stop() {
	t.stopOnce.Do(func() {
		t.stopAt.Store(t.clock.Now().UnixNano())
		t.cancel()
		t.endMu.Lock()
		defer t.endMu.Unlock()
		if src := t.source.Load(); src != nil && !t.ended {
			t.cancelers.Add(1)
			go func() {
				t.cancelGoroutine.Store(goroutineID())
				defer t.cancelers.Done()
				defer func() {
					if p := recover(); p != nil {
						t.log.Error("the source's Cancel panicked", "panic", p)
					}
				}()
				(*src).cancel()
			}()
		}
	})
}

func (t *task) metrics() *TaskMetrics {
	m := &TaskMetrics{
		BackPressured:   time.Duration(t.backPressuredNanos.Load()),
		Idle:            time.Duration(t.idleNanos.Load()),
		InputWatermark:  t.inputWM.Load(),
		OutputWatermark: t.outputWM.Load(),
	}
	t.metricsMu.Lock()
	defer t.metricsMu.Unlock()
	for _, f := range t.netMetrics {
		f(m)
	}
	for i, om := range t.ops {
		if om == nil {
			continue
		}
		m.Operators = append(m.Operators, OperatorCounts{Name: t.opNames[i], RecordsIn: om.RecordsIn.Load(), RecordsOut: om.RecordsOut.Load()})
	}
	return m
}

// isCancellation reports whether err only says the task was stopped.
func isCancellation(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, errTaskStopping)
}
