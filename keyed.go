package flink

import (
	"fmt"

	"github.com/flinkgo/flink/state"
)

// KeyedContext is what a keyed process function sees: its subtask's
// RuntimeContext, the key and timestamp of the record being processed (or
// of the timer firing), timers, and the subtask's keyed state, which is
// always scoped to that key.
type KeyedContext[K comparable] struct {
	*RuntimeContext
	backend *state.HeapKeyedBackend[K]
	key     K
	ts      int64
	domain  TimeDomain
	timers  *keyedTimers[K, struct{}]
}

// CurrentKey returns the key of the record being processed.
func (c *KeyedContext[K]) CurrentKey() K { return c.key }

// Timestamp returns the event-time timestamp of the record being processed
// (the timer's time in OnTimer of an event-time timer), and false when it
// has none.
func (c *KeyedContext[K]) Timestamp() (int64, bool) { return c.ts, c.ts != noTimestamp }

// TimeDomain returns the domain of the timer firing, in OnTimer.
func (c *KeyedContext[K]) TimeDomain() TimeDomain { return c.domain }

// TimerService returns the timers of the current key.
func (c *KeyedContext[K]) TimerService() TimerService { return keyedTimerService[K]{c.timers} }

// State returns the subtask's keyed state, scoped to the current key, as
// Flink's KeyedStateStore. Register and use states through the state
// package's getters; every state reads and writes the current key's value:
//
//	count, err := state.GetValueState(ctx.State(), state.ValueStateDescriptor[int]{Name: "count"})
//	n, _, err := count.Value()
//	err = count.Update(n + 1)
//
// The store belongs to the subtask's goroutine; do not use it, or its
// states, from others.
func (c *KeyedContext[K]) State() state.KeyedStateStore[K] { return c.backend }

type keyedTimerService[K comparable] struct{ kt *keyedTimers[K, struct{}] }

func (s keyedTimerService[K]) CurrentProcessingTime() int64 { return s.kt.t.timers.now() }
func (s keyedTimerService[K]) CurrentWatermark() int64      { return s.kt.wm }
func (s keyedTimerService[K]) RegisterEventTimeTimer(t int64) {
	s.kt.register(EventTime, t, struct{}{})
}
func (s keyedTimerService[K]) RegisterProcessingTimeTimer(t int64) {
	s.kt.register(ProcessingTime, t, struct{}{})
}
func (s keyedTimerService[K]) DeleteEventTimeTimer(t int64) { s.kt.remove(EventTime, t, struct{}{}) }
func (s keyedTimerService[K]) DeleteProcessingTimeTimer(t int64) {
	s.kt.remove(ProcessingTime, t, struct{}{})
}

// KeyedProcessFunction handles the records of a keyed stream: Flink's
// KeyedProcessFunction. ProcessElement is called for each record, with the
// record's key current: its keyed state (ctx.State()) and timers
// (ctx.TimerService()) are the key's. It emits zero or more records to out.
//
// A function that registers timers also implements KeyedTimerFunction, to
// receive them; a timer firing for a function without OnTimer fails the
// job. OnElement turns a plain function into a KeyedProcessFunction.
//
// Each subtask has its own instance (see RichFunction): a function held by
// pointer may keep per-subtask fields, and may implement RichFunction to
// open and close them. Keep per-key data in keyed state, which
// checkpoints hold: state.GetValueState(ctx.State(), d) returns the
// registered state, so Open may look states up once.
type KeyedProcessFunction[K comparable, T, U any] interface {
	ProcessElement(ctx *KeyedContext[K], v T, out Collector[U]) error
}

// KeyedTimerFunction is the optional part of a KeyedProcessFunction that
// handles timers, as Flink's KeyedProcessFunction.onTimer: OnTimer is
// called when a timer registered through ctx.TimerService() fires, with
// the timer's key current (ctx.CurrentKey) and its time. Records emitted
// in OnTimer of an event-time timer carry the timer's time as timestamp.
type KeyedTimerFunction[K comparable, U any] interface {
	OnTimer(ctx *KeyedContext[K], timestamp int64, out Collector[U]) error
}

// OnElement returns a KeyedProcessFunction, without timers, that calls f
// for each record.
func OnElement[K comparable, T, U any](f func(ctx *KeyedContext[K], v T, out Collector[U]) error) KeyedProcessFunction[K, T, U] {
	return elementFunc[K, T, U](f)
}

type elementFunc[K comparable, T, U any] func(ctx *KeyedContext[K], v T, out Collector[U]) error

func (f elementFunc[K, T, U]) ProcessElement(ctx *KeyedContext[K], v T, out Collector[U]) error {
	return f(ctx, v, out)
}

// KeyedProcess applies f to every record of a keyed stream, as Flink's
// KeyedStream.process. Each subtask keeps keyed state and timers for the
// key groups it owns, and has its own instance of f (see RichFunction).
func KeyedProcess[T any, K comparable, U any](ks *KeyedStream[T, K], f KeyedProcessFunction[K, T, U]) *DataStream[U] {
	return keyedProcess(ks, "KeyedProcess", func() (KeyedProcessFunction[K, T, U], any) {
		g := perSubtask(f)
		return g, g
	})
}

// keyedProcess adds a keyed process operator; instance returns a
// subtask's function and the user function behind it, which is opened.
func keyedProcess[T any, K comparable, U any](ks *KeyedStream[T, K], opType string, instance func() (KeyedProcessFunction[K, T, U], any)) *DataStream[U] {
	return addOperator(ks.s, opType, func(oc *opContext, out consumer[U]) (consumer[T], error) {
		core, err := newTimedOp[K, U](oc, out)
		if err != nil {
			return nil, err
		}
		f, user := instance()
		if err := openFunction(oc, user); err != nil {
			return nil, err
		}
		core.onTimer = func(ctx *KeyedContext[K], _ int64, _ Collector[U]) error {
			return fmt.Errorf("flink: a timer fired for key %v of a keyed process function %T without OnTimer; implement KeyedTimerFunction to handle timers", ctx.CurrentKey(), user)
		}
		if tf, ok := f.(KeyedTimerFunction[K, U]); ok {
			core.onTimer = tf.OnTimer
		}
		return &keyedProcessOp[T, K, U]{timedOp: core, key: ks.key, f: f}, nil
	})
}

// timedOp is what keyed operators with timers share: the context, the
// collector, and firing timers on watermarks and processing time.
type timedOp[K comparable, U any] struct {
	oc  *opContext
	out consumer[U]
	ctx *KeyedContext[K]
	col batcher[U]
	// onTimer calls the user's OnTimer.
	onTimer func(ctx *KeyedContext[K], ts int64, out Collector[U]) error
}

func (o *timedOp[K, U]) flush() error {
	o.oc.metrics.RecordsOut.Add(o.col.n)
	o.col.n = 0
	if err := o.col.flush(); err != nil {
		return err
	}
	return o.oc.side.flush()
}

// setRecord makes key k and timestamp ts current for a record.
func (o *timedOp[K, U]) setRecord(k K, ts int64) error {
	if err := o.ctx.backend.SetCurrentKey(k); err != nil {
		return o.oc.fail(err)
	}
	o.ctx.key, o.ctx.ts = k, ts
	o.col.cur, o.oc.side.cur = ts, ts
	return nil
}

// afterCall checks what a user call left behind.
func (o *timedOp[K, U]) afterCall(err error) error {
	if err == nil {
		err = o.ctx.timers.takeErr()
	}
	if err != nil {
		return o.oc.fail(err)
	}
	return o.col.err
}

// fire calls OnTimer for timer k, whose key is current.
func (o *timedOp[K, U]) fire(k timerKey[K, struct{}]) error {
	o.ctx.key = k.key
	o.ctx.domain = k.id.Domain
	o.ctx.ts = noTimestamp
	if k.id.Domain == EventTime {
		o.ctx.ts = k.id.TS
	}
	o.col.cur, o.oc.side.cur = o.ctx.ts, o.ctx.ts
	return o.afterCall(o.onTimer(o.ctx, k.id.TS, &o.col))
}

func (o *timedOp[K, U]) watermark(wm int64) (err error) {
	defer o.oc.recoverInto(&err)
	if err := o.ctx.timers.advance(wm, o.fire); err != nil {
		return err
	}
	o.ctx.domain = EventTime
	if err := o.flush(); err != nil {
		return err
	}
	return o.out.watermark(wm)
}

func (o *timedOp[K, U]) onProcessingTime(now int64) (err error) {
	defer o.oc.recoverInto(&err)
	if err := o.ctx.timers.fireProcessing(now, o.fire); err != nil {
		return err
	}
	o.ctx.domain = EventTime
	return o.flush()
}

func (o *timedOp[K, U]) endInput() error { return o.out.endInput() }

// newTimedOp sets up the keyed state, timers and context of a keyed
// operator with timers; start starts its processing-time timers.
func newTimedOp[K comparable, U any](oc *opContext, out consumer[U]) (*timedOp[K, U], error) {
	b, err := keyedBackend[K](oc)
	if err != nil {
		return nil, oc.fail(err)
	}
	kt, err := newKeyedTimers[K, struct{}](oc, b)
	if err != nil {
		return nil, oc.fail(err)
	}
	o := &timedOp[K, U]{oc: oc, out: out, ctx: &KeyedContext[K]{RuntimeContext: oc.rc, backend: b, timers: kt}}
	o.col.out = out
	kt.start(o.onProcessingTime)
	return o, nil
}

type keyedProcessOp[T any, K comparable, U any] struct {
	*timedOp[K, U]
	key func(T) K
	f   KeyedProcessFunction[K, T, U]
}

func (o *keyedProcessOp[T, K, U]) push(b []T, ts []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	for i, v := range b {
		if err := o.setRecord(o.key(v), tsAt(ts, i)); err != nil {
			return err
		}
		if err := o.afterCall(o.f.ProcessElement(o.ctx, v, &o.col)); err != nil {
			return err
		}
	}
	return o.flush()
}
