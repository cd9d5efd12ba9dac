package flink

import (
	"context"
	"fmt"
	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/state"
	"math"
	"runtime/debug"
	"sync/atomic"
)

// batchSize is the number of records an operator batches before it pushes
// them down its chain or into an exchange buffer.
const batchSize = 512

// consumer receives batches of records inside a subtask: the input side of a
// chained operator, a sink, or a record writer into an exchange. push must
// neither keep nor modify batch or ts after it returns; the caller reuses
// them.
type consumer[T any] interface {
	// push processes a batch of records. ts holds their event-time
	// timestamps (noTimestamp for a record without one), or is nil when no
	// record of the batch has a timestamp.
	push(batch []T, ts []int64) error
	// watermark says that no record with a timestamp at or below wm
	// follows: operators fire the event-time timers it passes, then pass it
	// on. Watermarks never decrease.
	watermark(wm int64) error
	// endInput is called once after the last record: operators flush what
	// they hold and pass it on.
	endInput() error
}

// noTimestamp marks a record without an event-time timestamp.
const noTimestamp = math.MinInt64

// RuntimeContext tells a user function where it runs. One exists per
// operator and subtask; it is safe to read from the function's goroutine.
type RuntimeContext struct {
	ctx         context.Context
	jobName     string
	taskName    string
	opName      string
	subtask     int
	parallelism int
	attempt     int
	jobID       JobID
	opID        string
	side        *sideOutputs
}

// Context is cancelled when the subtask is cancelled.
func (rc *RuntimeContext) Context() context.Context { return rc.ctx }

// JobName returns the job's name.
func (rc *RuntimeContext) JobName() string { return rc.jobName }

// TaskName returns the name of the chained task the operator runs in.
func (rc *RuntimeContext) TaskName() string { return rc.taskName }

// OperatorName returns the operator's name.
func (rc *RuntimeContext) OperatorName() string { return rc.opName }

// SubtaskIndex returns the subtask's index in [0, Parallelism()).
func (rc *RuntimeContext) SubtaskIndex() int { return rc.subtask }

// Parallelism returns the operator's number of parallel subtasks.
func (rc *RuntimeContext) Parallelism() int { return rc.parallelism }

// Attempt returns the attempt number: 0 at first, +1 per restart.
func (rc *RuntimeContext) Attempt() int { return rc.attempt }

// JobID returns the id of the running job.
func (rc *RuntimeContext) JobID() JobID { return rc.jobID }

// OperatorID returns the operator's id, stable across restarts of the job.
func (rc *RuntimeContext) OperatorID() string { return rc.opID }

// opContext is what the runtime gives an operator when it builds it: its
// runtime context and its record counters.
type opContext struct {
	rc      *RuntimeContext
	metrics *OperatorMetrics
	task    *task
	opID    string
	// restore is the operator's state to start from; nil to start empty.
	restore *checkpoint.OperatorState
	// side holds the operator's side outputs.
	side *sideOutputs
	// beforeKeyedSnapshot run by the chain's owner before the operator's
	// keyed state is frozen for a checkpoint: they write what the operator
	// keeps outside keyed state into it.
	beforeKeyedSnapshot []func() error
}

// fail wraps an error from user code with the operator that raised it.
func (oc *opContext) fail(err error) error {
	return &operatorError{op: oc.rc.opName, err: err}
}

// recoverInto turns a panic in user code into the operator's error.
func (oc *opContext) recoverInto(err *error) {
	if r := recover(); r != nil {
		*err = &operatorError{op: oc.rc.opName, err: fmt.Errorf("%w: %v\n%s", ErrUserPanic, r, debug.Stack())}
	}
}

// OperatorMetrics counts one operator's records in one subtask. The counters
// are updated once per batch and may be read concurrently.
type OperatorMetrics struct {
	RecordsIn  atomic.Int64
	RecordsOut atomic.Int64
}

// fanout pushes every batch to several consumers.
type fanout[T any] []consumer[T]

func (f fanout[T]) push(b []T, ts []int64) error {
	for _, c := range f {
		if err := c.push(b, ts); err != nil {
			return err
		}
	}
	return nil
}

func (f fanout[T]) watermark(wm int64) error {
	for _, c := range f {
		if err := c.watermark(wm); err != nil {
			return err
		}
	}
	return nil
}

func (f fanout[T]) endInput() error {
	for _, c := range f {
		if err := c.endInput(); err != nil {
			return err
		}
	}
	return nil
}

// tsBuf collects the timestamps of a batch being built: none until a record
// with a timestamp arrives, then one per record.
type tsBuf struct {
	ts      []int64
	stamped bool // some record of the batch has a timestamp
}

// add records timestamp t of the record appended after n others.
func (b *tsBuf) add(n int, t int64) {
	if !b.stamped {
		if t == noTimestamp {
			return
		}
		b.stamped = true
		b.ts = b.ts[:0]
		for range n {
			b.ts = append(b.ts, noTimestamp)
		}
	}
	b.ts = append(b.ts, t)
}

// addAll records the timestamps ts (nil: none) of k records appended after
// n others.
func (b *tsBuf) addAll(n, k int, ts []int64) {
	switch {
	case ts != nil:
		if !b.stamped {
			b.stamped = true
			b.ts = b.ts[:0]
			for range n {
				b.ts = append(b.ts, noTimestamp)
			}
		}
		b.ts = append(b.ts, ts...)
	case b.stamped:
		for range k {
			b.ts = append(b.ts, noTimestamp)
		}
	}
}

// get returns the batch's timestamps, nil when none has one.
func (b *tsBuf) get() []int64 {
	if b.stamped {
		return b.ts
	}
	return nil
}

func (b *tsBuf) reset() {
	b.ts = b.ts[:0]
	b.stamped = false
}

// tsAt returns the timestamp of record i of a batch with timestamps ts.
func tsAt(ts []int64, i int) int64 {
	if ts == nil {
		return noTimestamp
	}
	return ts[i]
}

// batcher collects emitted records and pushes them downstream in batches:
// the Collector handed to FlatMap and Process functions. Collected records
// get the timestamp in cur: the input record's, as in Flink.
type batcher[T any] struct {
	out consumer[T]
	buf []T
	ts  tsBuf
	cur int64 // timestamp of the records collected now, or noTimestamp
	err error // first push error; later records are dropped and the task fails with it
	n   int64 // records emitted
}

func (b *batcher[T]) Collect(v T) {
	if b.err != nil {
		return
	}
	b.ts.add(len(b.buf), b.cur)
	b.buf = append(b.buf, v)
	b.n++
	if len(b.buf) >= batchSize {
		b.flush()
	}
}

func (b *batcher[T]) flush() error {
	if len(b.buf) > 0 && b.err == nil {
		b.err = b.out.push(b.buf, b.ts.get())
	}
	b.buf = b.buf[:0]
	b.ts.reset()
	return b.err
}

type mapOp[T, U any] struct {
	oc  *opContext
	f   func(T) (U, error)
	out consumer[U]
	buf []U
}

func (o *mapOp[T, U]) push(b []T, ts []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	if cap(o.buf) < len(b) {
		o.buf = make([]U, len(b))
	}
	buf := o.buf[:len(b)]
	for i, v := range b {
		u, err := o.f(v)
		if err != nil {
			return o.oc.fail(err)
		}
		buf[i] = u
	}
	o.oc.metrics.RecordsOut.Add(int64(len(buf)))
	return o.out.push(buf, ts)
}

func (o *mapOp[T, U]) watermark(wm int64) error { return o.out.watermark(wm) }
func (o *mapOp[T, U]) endInput() error          { return o.out.endInput() }

type filterOp[T any] struct {
	oc  *opContext
	f   func(T) (bool, error)
	out consumer[T]
	buf []T
	ts  tsBuf
}

func (o *filterOp[T]) push(b []T, ts []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	buf := o.buf[:0]
	o.ts.reset()
	for i, v := range b {
		ok, err := o.f(v)
		if err != nil {
			return o.oc.fail(err)
		}
		if ok {
			if ts != nil {
				o.ts.add(len(buf), ts[i])
			}
			buf = append(buf, v)
		}
	}
	o.buf = buf
	if len(buf) == 0 {
		return nil
	}
	o.oc.metrics.RecordsOut.Add(int64(len(buf)))
	return o.out.push(buf, o.ts.get())
}

func (o *filterOp[T]) watermark(wm int64) error { return o.out.watermark(wm) }
func (o *filterOp[T]) endInput() error          { return o.out.endInput() }

type processOp[T, U any] struct {
	oc  *opContext
	f   ProcessFunc[T, U]
	out consumer[U]
	col batcher[U]
}

func (o *processOp[T, U]) push(b []T, ts []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	o.col.out = o.out
	for i, v := range b {
		o.col.cur = tsAt(ts, i)
		o.oc.side.cur = o.col.cur
		if err := o.f(o.oc.rc, v, &o.col); err != nil {
			return o.oc.fail(err)
		}
		if o.col.err != nil {
			return o.col.err
		}
	}
	o.oc.metrics.RecordsOut.Add(o.col.n)
	o.col.n = 0
	if err := o.col.flush(); err != nil {
		return err
	}
	return o.oc.side.flush()
}

func (o *processOp[T, U]) watermark(wm int64) error { return o.out.watermark(wm) }
func (o *processOp[T, U]) endInput() error          { return o.out.endInput() }

type reduceOp[T any, K comparable] struct {
	oc      *opContext
	key     func(T) K
	f       func(T, T) (T, error)
	out     consumer[T]
	backend *state.HeapKeyedBackend[K]
	acc     state.ValueState[T]
	buf     []T
}

func (o *reduceOp[T, K]) push(b []T, ts []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	buf := o.buf[:0]
	for _, v := range b {
		if err := o.backend.SetCurrentKey(o.key(v)); err != nil {
			return o.oc.fail(err)
		}
		cur, ok, err := o.acc.Value()
		if err != nil {
			return o.oc.fail(err)
		}
		if ok {
			if v, err = o.f(cur, v); err != nil {
				return o.oc.fail(err)
			}
		}
		if err := o.acc.Update(v); err != nil {
			return o.oc.fail(err)
		}
		buf = append(buf, v)
	}
	o.buf = buf
	o.oc.metrics.RecordsOut.Add(int64(len(buf)))
	return o.out.push(buf, ts)
}

func (o *reduceOp[T, K]) watermark(wm int64) error { return o.out.watermark(wm) }
func (o *reduceOp[T, K]) endInput() error          { return o.out.endInput() }

type aggregateOp[T any, K comparable, ACC, OUT any] struct {
	oc      *opContext
	key     func(T) K
	agg     AggregateFunction[T, ACC, OUT]
	out     consumer[OUT]
	backend *state.HeapKeyedBackend[K]
	acc     state.ValueState[ACC]
	buf     []OUT
}

func (o *aggregateOp[T, K, ACC, OUT]) push(b []T, ts []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	buf := o.buf[:0]
	for _, v := range b {
		if err := o.backend.SetCurrentKey(o.key(v)); err != nil {
			return o.oc.fail(err)
		}
		acc, ok, err := o.acc.Value()
		if err != nil {
			return o.oc.fail(err)
		}
		if !ok {
			acc = o.agg.CreateAccumulator()
		}
		if acc, err = o.agg.Add(v, acc); err != nil {
			return o.oc.fail(err)
		}
		if err := o.acc.Update(acc); err != nil {
			return o.oc.fail(err)
		}
		r, err := o.agg.Result(acc)
		if err != nil {
			return o.oc.fail(err)
		}
		buf = append(buf, r)
	}
	o.buf = buf
	o.oc.metrics.RecordsOut.Add(int64(len(buf)))
	return o.out.push(buf, ts)
}

func (o *aggregateOp[T, K, ACC, OUT]) watermark(wm int64) error { return o.out.watermark(wm) }
func (o *aggregateOp[T, K, ACC, OUT]) endInput() error          { return o.out.endInput() }
