package flink

import (
	"fmt"
	"time"

	"github.com/flinkgo/flink/state"
	"github.com/flinkgo/flink/window"
)

// WindowedStream is a keyed stream cut into windows by an assigner: Flink's
// WindowedStream. Configure it with Trigger, AllowedLateness and
// SideOutputLateData, then apply WindowReduce, WindowAggregate or
// WindowProcess.
type WindowedStream[T any, K comparable] struct {
	ks       *KeyedStream[T, K]
	assigner window.Assigner
	trigger  window.Trigger
	lateness int64
	lateTag  string
}

// Window cuts a keyed stream into the windows a assigns records to:
// window.Tumbling, window.Sliding or window.Session, in event or processing
// time. Event-time windows need records with timestamps.
func Window[T any, K comparable](ks *KeyedStream[T, K], a window.Assigner) *WindowedStream[T, K] {
	if a == nil {
		ks.s.env.setErr(fmt.Errorf("%w: Window without an assigner", ErrInvalidConfig))
	}
	return &WindowedStream[T, K]{ks: ks, assigner: a}
}

// Trigger replaces the assigner's default trigger (event time: fire at the
// end of the window; processing time: likewise on the wall clock).
func (w *WindowedStream[T, K]) Trigger(t window.Trigger) *WindowedStream[T, K] {
	w.trigger = t
	return w
}

// AllowedLateness keeps event-time windows for d after their end: records
// arriving that late still update the window and fire it again. Later
// records are dropped, or go to the late-data side output. Default 0.
func (w *WindowedStream[T, K]) AllowedLateness(d time.Duration) *WindowedStream[T, K] {
	l, err := window.LatenessMillis(d)
	if err != nil {
		w.ks.s.env.setErr(fmt.Errorf("flink: AllowedLateness: %w", err))
	}
	w.lateness = l
	return w
}

// SideOutputLateData sends records that arrive after their windows were
// cleaned up to the side output tag, instead of dropping them; read it with
// GetSideOutput on the window's result stream.
func (w *WindowedStream[T, K]) SideOutputLateData(tag OutputTag[T]) *WindowedStream[T, K] {
	w.lateTag = tag.id
	return w
}

// WindowContext describes the window being emitted to a process window
// function.
type WindowContext[K comparable] struct {
	*RuntimeContext
	key K
	win window.TimeWindow
	wm  int64
}

// Key returns the window's key.
func (c *WindowContext[K]) Key() K { return c.key }

// Window returns the window.
func (c *WindowContext[K]) Window() window.TimeWindow { return c.win }

// CurrentWatermark returns the operator's event-time watermark.
func (c *WindowContext[K]) CurrentWatermark() int64 { return c.wm }

// ProcessWindowFunction computes a window's result from all its records:
// Flink's ProcessWindowFunction. Records emitted carry the window's
// MaxTimestamp as timestamp.
type ProcessWindowFunction[T any, K comparable, OUT any] func(ctx *WindowContext[K], elements []T, out Collector[OUT]) error

// WindowReduce reduces each window's records with f as they arrive and
// emits the result when the window fires: Flink's reduce on a windowed
// stream.
func WindowReduce[T any, K comparable](w *WindowedStream[T, K], f func(acc, v T) (T, error)) *DataStream[T] {
	return addWindowOperator(w, "WindowReduce", windowFuncs[T, K, T, T]{
		add: func(acc T, has bool, v T) (T, error) {
			if !has {
				return v, nil
			}
			return f(acc, v)
		},
		merge: f,
		emit: func(_ *WindowContext[K], acc T, out Collector[T]) error {
			out.Collect(acc)
			return nil
		},
	})
}

// WindowAggregate aggregates each window's records incrementally with agg
// and emits its result when the window fires: Flink's aggregate on a
// windowed stream.
func WindowAggregate[T any, K comparable, ACC, OUT any](w *WindowedStream[T, K], agg AggregateFunction[T, ACC, OUT]) *DataStream[OUT] {
	return WindowAggregateWith(w, agg, func(_ *WindowContext[K], v OUT, out Collector[OUT]) error {
		out.Collect(v)
		return nil
	})
}

// WindowAggregateWith aggregates each window's records incrementally with
// agg and, when the window fires, passes the aggregate to f with the
// window's key and bounds: Flink's aggregate(AggregateFunction,
// ProcessWindowFunction).
func WindowAggregateWith[T any, K comparable, ACC, V, OUT any](w *WindowedStream[T, K], agg AggregateFunction[T, ACC, V], f func(ctx *WindowContext[K], v V, out Collector[OUT]) error) *DataStream[OUT] {
	return addWindowOperator(w, "WindowAggregate", windowFuncs[T, K, ACC, OUT]{
		add: func(acc ACC, has bool, v T) (ACC, error) {
			if !has {
				acc = agg.CreateAccumulator()
			}
			return agg.Add(v, acc)
		},
		merge: agg.Merge,
		emit: func(ctx *WindowContext[K], acc ACC, out Collector[OUT]) error {
			v, err := agg.Result(acc)
			if err != nil {
				return err
			}
			return f(ctx, v, out)
		},
	})
}

// WindowProcess keeps each window's records and passes them all to f when
// the window fires.
func WindowProcess[T any, K comparable, OUT any](w *WindowedStream[T, K], f ProcessWindowFunction[T, K, OUT]) *DataStream[OUT] {
	return addWindowOperator(w, "WindowProcess", windowFuncs[T, K, []T, OUT]{
		add: func(acc []T, _ bool, v T) ([]T, error) { return append(acc, v), nil },
		merge: func(a, b []T) ([]T, error) {
			out := make([]T, 0, len(a)+len(b))
			return append(append(out, a...), b...), nil
		},
		emit: func(ctx *WindowContext[K], acc []T, out Collector[OUT]) error { return f(ctx, acc, out) },
	})
}

// windowFuncs is what a window operator does with records: fold them into
// an accumulator, merge accumulators of merging windows, emit a result.
type windowFuncs[T any, K comparable, ACC, OUT any] struct {
	add   func(acc ACC, has bool, v T) (ACC, error)
	merge func(a, b ACC) (ACC, error)
	emit  func(ctx *WindowContext[K], acc ACC, out Collector[OUT]) error
}

func addWindowOperator[T any, K comparable, ACC, OUT any](w *WindowedStream[T, K], opType string, fns windowFuncs[T, K, ACC, OUT]) *DataStream[OUT] {
	env := w.ks.s.env
	a := w.assigner
	trig := w.trigger
	if trig == nil && a != nil {
		trig = a.DefaultTrigger()
	}
	if a != nil && a.IsMerging() && trig != nil && !trig.CanMerge() {
		env.setErr(fmt.Errorf("%w: trigger %v cannot merge windows, which %v needs", ErrInvalidConfig, trig, a))
	}
	lateTag := w.lateTag
	out := addOperator(w.ks.s, opType, func(oc *opContext, out consumer[OUT]) (consumer[T], error) {
		b, err := keyedBackend[K](oc)
		if err != nil {
			return nil, oc.fail(err)
		}
		contents, err := state.GetMapState(b, state.MapStateDescriptor[window.TimeWindow, ACC]{Name: "window-contents"})
		if err != nil {
			return nil, oc.fail(err)
		}
		trigState, err := state.GetMapState(b, state.MapStateDescriptor[triggerStateKey, int64]{Name: "window-trigger"})
		if err != nil {
			return nil, oc.fail(err)
		}
		kt, err := newKeyedTimers[K, window.TimeWindow](oc, b)
		if err != nil {
			return nil, oc.fail(err)
		}
		o := &windowOp[T, K, ACC, OUT]{
			oc: oc, key: w.ks.key, fns: fns, out: out, backend: b, assigner: a, trigger: trig,
			lateness: w.lateness, eventTime: a.IsEventTime(), contents: contents, trigState: trigState, timers: kt,
			lateTag: lateTag,
		}
		o.col.out = out
		o.ctx = &WindowContext[K]{RuntimeContext: oc.rc}
		if m, ok := a.(window.MergingAssigner); ok {
			o.merging = m
			if o.sets, err = state.GetValueState(b, state.ValueStateDescriptor[[]window.WindowMapping]{Name: "window-merging"}); err != nil {
				return nil, oc.fail(err)
			}
		}
		kt.start(o.onProcessingTime)
		return o, nil
	})
	return out
}

// triggerStateKey names one value of a trigger's per-window state.
type triggerStateKey struct {
	Win  window.TimeWindow
	Name string
}

// windowOp is Flink's WindowOperator: per key, each window's accumulator in
// keyed map state, timers per key and window, and for merging assigners
// the key's MergingWindowSet.
type windowOp[T any, K comparable, ACC, OUT any] struct {
	oc        *opContext
	key       func(T) K
	fns       windowFuncs[T, K, ACC, OUT]
	out       consumer[OUT]
	col       batcher[OUT]
	backend   *state.HeapKeyedBackend[K]
	assigner  window.Assigner
	merging   window.MergingAssigner
	trigger   window.Trigger
	lateness  int64
	eventTime bool
	lateTag   string

	contents  state.MapState[window.TimeWindow, ACC]
	trigState state.MapState[triggerStateKey, int64]
	sets      state.ValueState[[]window.WindowMapping]
	timers    *keyedTimers[K, window.TimeWindow]
	ctx       *WindowContext[K]

	curKey K
	curWin window.TimeWindow // the window trigger calls act on
	merged []window.TimeWindow
	wins   []window.TimeWindow
	err    error
}

func (o *windowOp[T, K, ACC, OUT]) push(b []T, ts []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	for i, v := range b {
		t := tsAt(ts, i)
		if !o.eventTime {
			t = o.oc.task.timers.now()
		} else if t == noTimestamp {
			return o.oc.fail(fmt.Errorf("%w: window %v got record %v", ErrNoTimestamp, o.assigner, v))
		}
		if err := o.element(v, t); err != nil {
			return o.oc.fail(err)
		}
		if o.col.err != nil {
			return o.col.err
		}
	}
	return o.flush()
}

func (o *windowOp[T, K, ACC, OUT]) flush() error {
	o.oc.metrics.RecordsOut.Add(o.col.n)
	o.col.n = 0
	if err := o.col.flush(); err != nil {
		return err
	}
	return o.oc.side.flush()
}

// element adds record v with timestamp t to its windows.
func (o *windowOp[T, K, ACC, OUT]) element(v T, t int64) error {
	k := o.key(v)
	if err := o.backend.SetCurrentKey(k); err != nil {
		return err
	}
	o.curKey = k
	wins, err := o.assigner.AssignWindows(o.wins[:0], t)
	if err != nil {
		return err
	}
	o.wins = wins
	var set *window.MergingWindowSet
	if o.merging != nil {
		if set, err = o.loadSet(); err != nil {
			return err
		}
	}
	wm := o.timers.wm
	skipped := true
	for _, w := range wins {
		stateWin := w
		if set != nil {
			if w, err = set.AddWindow(w, o.mergeWindows); err != nil {
				return err
			}
			if o.err != nil {
				return o.err
			}
			var ok bool
			if stateWin, ok = set.StateWindow(w); !ok {
				return fmt.Errorf("flink: window %v has no state window", w)
			}
		}
		if window.IsWindowLate(w, wm, o.lateness, o.eventTime) {
			if set != nil {
				if err := set.RetireWindow(w); err != nil {
					return err
				}
			}
			continue
		}
		skipped = false
		acc, has, err := o.contents.Get(stateWin)
		if err != nil {
			return err
		}
		if acc, err = o.fns.add(acc, has, v); err != nil {
			return err
		}
		if err := o.contents.Put(stateWin, acc); err != nil {
			return err
		}
		o.curWin = w
		res, err := o.trigger.OnElement(t, w, o)
		if err != nil {
			return err
		}
		if err := o.act(w, stateWin, res); err != nil {
			return err
		}
		o.timers.register(o.timeDomain(), window.CleanupTime(w, o.lateness, o.eventTime), w)
		if o.err != nil {
			return o.err
		}
	}
	if set != nil {
		if err := o.sets.Update(set.Snapshot()); err != nil {
			return err
		}
	}
	if skipped && window.IsElementLate(t, wm, o.lateness, o.eventTime) && o.lateTag != "" {
		o.oc.side.cur = t
		sideOutput(o.oc.side, o.lateTag, v)
	}
	return nil
}

func (o *windowOp[T, K, ACC, OUT]) timeDomain() TimeDomain {
	if o.eventTime {
		return EventTime
	}
	return ProcessingTime
}

func (o *windowOp[T, K, ACC, OUT]) loadSet() (*window.MergingWindowSet, error) {
	snap, _, err := o.sets.Value()
	if err != nil {
		return nil, err
	}
	return window.NewMergingWindowSet(o.merging, snap)
}

// mergeWindows merges the state of merged windows into stateResult's, as
// MergingWindowSet.AddWindow asks.
func (o *windowOp[T, K, ACC, OUT]) mergeWindows(result window.TimeWindow, merged []window.TimeWindow, stateResult window.TimeWindow, mergedState []window.TimeWindow) error {
	acc, has, err := o.contents.Get(stateResult)
	if err != nil {
		return err
	}
	for _, sw := range mergedState {
		m, ok, err := o.contents.Get(sw)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch {
		case !has:
			acc, has = m, true
		default:
			if acc, err = o.fns.merge(acc, m); err != nil {
				return err
			}
		}
		if err := o.contents.Remove(sw); err != nil {
			return err
		}
	}
	if has {
		if err := o.contents.Put(stateResult, acc); err != nil {
			return err
		}
	}
	o.curWin, o.merged = result, merged
	if err := o.trigger.OnMerge(result, o); err != nil {
		return err
	}
	o.merged = nil
	for _, m := range merged {
		o.curWin = m
		if err := o.trigger.Clear(m, o); err != nil {
			return err
		}
		o.timers.remove(o.timeDomain(), window.CleanupTime(m, o.lateness, o.eventTime), m)
	}
	o.curWin = result
	return nil
}

// act carries out a trigger's result for window w, whose contents are in
// stateWin.
func (o *windowOp[T, K, ACC, OUT]) act(w, stateWin window.TimeWindow, res window.TriggerResult) error {
	if res.IsFire() {
		acc, ok, err := o.contents.Get(stateWin)
		if err != nil {
			return err
		}
		if ok {
			o.ctx.key, o.ctx.win, o.ctx.wm = o.curKey, w, o.timers.wm
			o.col.cur = w.MaxTimestamp()
			o.oc.side.cur = o.col.cur
			if err := o.fns.emit(o.ctx, acc, &o.col); err != nil {
				return err
			}
		}
	}
	if res.IsPurge() {
		return o.contents.Remove(stateWin)
	}
	return nil
}

// fire handles timer k of window k.id.NS, whose key is current.
func (o *windowOp[T, K, ACC, OUT]) fire(k timerKey[K, window.TimeWindow]) error {
	w := k.id.NS
	o.curKey, o.curWin = k.key, w
	stateWin := w
	var set *window.MergingWindowSet
	if o.merging != nil {
		var err error
		if set, err = o.loadSet(); err != nil {
			return err
		}
		var ok bool
		if stateWin, ok = set.StateWindow(w); !ok {
			return nil // merged into another window since
		}
	}
	var res window.TriggerResult
	var err error
	if k.id.Domain == EventTime {
		res, err = o.trigger.OnEventTime(k.id.TS, w, o)
	} else {
		res, err = o.trigger.OnProcessingTime(k.id.TS, w, o)
	}
	if err != nil {
		return err
	}
	if err := o.act(w, stateWin, res); err != nil {
		return err
	}
	if k.id.TS == window.CleanupTime(w, o.lateness, o.eventTime) && k.id.Domain == o.timeDomain() {
		if err := o.contents.Remove(stateWin); err != nil {
			return err
		}
		if err := o.trigger.Clear(w, o); err != nil {
			return err
		}
		if set != nil {
			if err := set.RetireWindow(w); err != nil {
				return err
			}
			if err := o.sets.Update(set.Snapshot()); err != nil {
				return err
			}
		}
	}
	if o.err != nil {
		return o.err
	}
	return o.col.err
}

func (o *windowOp[T, K, ACC, OUT]) watermark(wm int64) (err error) {
	defer o.oc.recoverInto(&err)
	if err := o.timers.advance(wm, o.fire); err != nil {
		return o.oc.fail(err)
	}
	if err := o.flush(); err != nil {
		return err
	}
	return o.out.watermark(wm)
}

func (o *windowOp[T, K, ACC, OUT]) onProcessingTime(now int64) (err error) {
	defer o.oc.recoverInto(&err)
	if err := o.timers.fireProcessing(now, o.fire); err != nil {
		return o.oc.fail(err)
	}
	return o.flush()
}

func (o *windowOp[T, K, ACC, OUT]) endInput() error { return o.out.endInput() }

// The window operator is its triggers' window.TriggerContext, for the key
// and window in curKey and curWin.

func (o *windowOp[T, K, ACC, OUT]) CurrentWatermark() int64      { return o.timers.wm }
func (o *windowOp[T, K, ACC, OUT]) CurrentProcessingTime() int64 { return o.oc.task.timers.now() }
func (o *windowOp[T, K, ACC, OUT]) RegisterEventTimeTimer(t int64) {
	o.timers.register(EventTime, t, o.curWin)
	o.keepErr(o.timers.takeErr())
}
func (o *windowOp[T, K, ACC, OUT]) DeleteEventTimeTimer(t int64) {
	o.timers.remove(EventTime, t, o.curWin)
	o.keepErr(o.timers.takeErr())
}
func (o *windowOp[T, K, ACC, OUT]) RegisterProcessingTimeTimer(t int64) {
	o.timers.register(ProcessingTime, t, o.curWin)
	o.keepErr(o.timers.takeErr())
}
func (o *windowOp[T, K, ACC, OUT]) DeleteProcessingTimeTimer(t int64) {
	o.timers.remove(ProcessingTime, t, o.curWin)
	o.keepErr(o.timers.takeErr())
}

func (o *windowOp[T, K, ACC, OUT]) TriggerState(name string) (int64, bool) {
	v, ok, err := o.trigState.Get(triggerStateKey{o.curWin, name})
	o.keepErr(err)
	return v, ok
}

func (o *windowOp[T, K, ACC, OUT]) SetTriggerState(name string, v int64) {
	o.keepErr(o.trigState.Put(triggerStateKey{o.curWin, name}, v))
}

func (o *windowOp[T, K, ACC, OUT]) ClearTriggerState(name string) {
	o.keepErr(o.trigState.Remove(triggerStateKey{o.curWin, name}))
}

// MergeTriggerState implements window.OnMergeContext.
func (o *windowOp[T, K, ACC, OUT]) MergeTriggerState(name string, reduce func(a, b int64) int64) {
	acc, has := o.TriggerState(name)
	for _, m := range o.merged {
		v, ok, err := o.trigState.Get(triggerStateKey{m, name})
		o.keepErr(err)
		if !ok {
			continue
		}
		if has {
			acc = reduce(acc, v)
		} else {
			acc, has = v, true
		}
	}
	if has {
		o.SetTriggerState(name, acc)
	}
}

func (o *windowOp[T, K, ACC, OUT]) keepErr(err error) {
	if err != nil && o.err == nil {
		o.err = err
	}
}
