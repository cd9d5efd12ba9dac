package flink

import (
	"fmt"
	"time"

	"github.com/flinkgo/flink/state"
	"github.com/flinkgo/flink/window"
)

// Two-input operators. A connected pair of streams runs as one operator
// that reads both: each input's records are wrapped in a two-sided value
// (chained to the operator that produces them, no copy across a channel)
// and the two are unioned, so both share the operator's input gate, its
// watermark valve (the operator's watermark is the minimum of both
// inputs') and its checkpoint barrier alignment. Flink builds its window
// joins the same way.

// Either holds a record of the first (IsB false) or the second input of a
// connected pair of streams.
type Either[A, B any] struct {
	IsB bool
	A   A
	B   B
}

// ConnectedStreams are two streams processed together by one operator,
// which may share state between them: Flink's ConnectedStreams.
type ConnectedStreams[A, B any] struct {
	a *DataStream[A]
	b *DataStream[B]
}

// Connect connects two streams, possibly of different types.
func Connect[A, B any](a *DataStream[A], b *DataStream[B]) *ConnectedStreams[A, B] {
	if a.env != b.env {
		a.env.setErr(fmt.Errorf("flink: Connect of streams from different environments"))
	}
	return &ConnectedStreams[A, B]{a: a, b: b}
}

// tagged wraps a stream's records as one side of Either, chained to the
// operator that produced them.
func tagged[T, A, B any](s *DataStream[T], wrap func(T) Either[A, B]) *DataStream[Either[A, B]] {
	m := Map(s, func(v T) (Either[A, B], error) { return wrap(v), nil })
	if s.t != nil {
		m.t.parallelism = s.t.parallelism
		m.t.maxPar = s.t.maxPar
		m.t.slotGroup = s.t.slotGroup
	}
	m.t.name = "Tag"
	return m
}

func (c *ConnectedStreams[A, B]) union() *DataStream[Either[A, B]] {
	return Union(
		tagged(c.a, func(v A) Either[A, B] { return Either[A, B]{A: v} }),
		tagged(c.b, func(v B) Either[A, B] { return Either[A, B]{IsB: true, B: v} }),
	)
}

// CoMap applies fa to the first input's records and fb to the second's.
func CoMap[A, B, OUT any](c *ConnectedStreams[A, B], fa func(A) (OUT, error), fb func(B) (OUT, error)) *DataStream[OUT] {
	return Map(c.union(), func(e Either[A, B]) (OUT, error) {
		if e.IsB {
			return fb(e.B)
		}
		return fa(e.A)
	}).Name("CoMap")
}

// CoProcessFunction handles the records of two connected streams: Flink's
// CoProcessFunction.
type CoProcessFunction[A, B, OUT any] interface {
	ProcessElement1(rc *RuntimeContext, v A, out Collector[OUT]) error
	ProcessElement2(rc *RuntimeContext, v B, out Collector[OUT]) error
}

// CoProcess applies f to both inputs of c. Each subtask has its own
// instance of f, which may keep per-subtask fields and implement
// RichFunction.
func CoProcess[A, B, OUT any](c *ConnectedStreams[A, B], f CoProcessFunction[A, B, OUT]) *DataStream[OUT] {
	return addOperator(c.union(), "CoProcess", func(oc *opContext, out consumer[OUT]) (consumer[Either[A, B]], error) {
		g := perSubtask(f)
		if err := openFunction(oc, g); err != nil {
			return nil, err
		}
		return &processOp[Either[A, B], OUT]{oc: oc, out: out, f: func(rc *RuntimeContext, e Either[A, B], out Collector[OUT]) error {
			if e.IsB {
				return g.ProcessElement2(rc, e.B, out)
			}
			return g.ProcessElement1(rc, e.A, out)
		}}, nil
	}).Name("CoProcess")
}

// KeyedConnectedStreams are two keyed streams with the same key type,
// connected: records with equal keys meet in one subtask and share its
// keyed state.
type KeyedConnectedStreams[A, B any, K comparable] struct {
	a *KeyedStream[A, K]
	b *KeyedStream[B, K]
}

// ConnectKeyed connects two streams keyed by the same key type.
func ConnectKeyed[A, B any, K comparable](a *KeyedStream[A, K], b *KeyedStream[B, K]) *KeyedConnectedStreams[A, B, K] {
	if a.s.env != b.s.env {
		a.s.env.setErr(fmt.Errorf("flink: ConnectKeyed of streams from different environments"))
	}
	return &KeyedConnectedStreams[A, B, K]{a: a, b: b}
}

// unkeyed returns the stream ks partitions, without its partitioner.
func unkeyed[T any, K comparable](ks *KeyedStream[T, K]) *DataStream[T] {
	return ks.s.withPartitioner(partDefault)
}

func (c *KeyedConnectedStreams[A, B, K]) keyed() *KeyedStream[Either[A, B], K] {
	u := Union(
		tagged(unkeyed(c.a), func(v A) Either[A, B] { return Either[A, B]{A: v} }),
		tagged(unkeyed(c.b), func(v B) Either[A, B] { return Either[A, B]{IsB: true, B: v} }),
	)
	ka, kb := c.a.key, c.b.key
	return KeyBy(u, func(e Either[A, B]) K {
		if e.IsB {
			return kb(e.B)
		}
		return ka(e.A)
	})
}

// KeyedCoProcessFunction handles the records of two connected keyed
// streams with keyed state and timers: Flink's KeyedCoProcessFunction. A
// function that registers timers also implements KeyedTimerFunction, to
// receive them.
//
// Each subtask has its own instance, which may keep per-subtask fields and
// implement RichFunction; see KeyedProcessFunction.
type KeyedCoProcessFunction[K comparable, A, B, OUT any] interface {
	ProcessElement1(ctx *KeyedContext[K], v A, out Collector[OUT]) error
	ProcessElement2(ctx *KeyedContext[K], v B, out Collector[OUT]) error
}

// KeyedCoProcess applies f to both inputs of c.
func KeyedCoProcess[A, B any, K comparable, OUT any](c *KeyedConnectedStreams[A, B, K], f KeyedCoProcessFunction[K, A, B, OUT]) *DataStream[OUT] {
	return keyedProcess(c.keyed(), "KeyedCoProcess", func() (KeyedProcessFunction[K, Either[A, B], OUT], any) {
		g := perSubtask(f)
		if tf, ok := g.(KeyedTimerFunction[K, OUT]); ok {
			return coTimerAdapter[K, A, B, OUT]{coAdapter[K, A, B, OUT]{g}, tf}, g
		}
		return coAdapter[K, A, B, OUT]{g}, g
	}).Name("KeyedCoProcess")
}

type coAdapter[K comparable, A, B, OUT any] struct {
	f KeyedCoProcessFunction[K, A, B, OUT]
}

func (a coAdapter[K, A, B, OUT]) ProcessElement(ctx *KeyedContext[K], e Either[A, B], out Collector[OUT]) error {
	if e.IsB {
		return a.f.ProcessElement2(ctx, e.B, out)
	}
	return a.f.ProcessElement1(ctx, e.A, out)
}

// coTimerAdapter is a coAdapter whose function handles timers.
type coTimerAdapter[K comparable, A, B, OUT any] struct {
	coAdapter[K, A, B, OUT]
	KeyedTimerFunction[K, OUT]
}

// WindowJoin joins the records of a and b with equal keys that fall into
// the same window of assigner w, calling join for every pair when the
// window fires: Flink's join().where().equalTo().window().apply().
func WindowJoin[A, B any, K comparable, OUT any](a *KeyedStream[A, K], b *KeyedStream[B, K], w window.Assigner, join func(a A, b B, out Collector[OUT]) error) *DataStream[OUT] {
	c := ConnectKeyed(a, b)
	return WindowProcess(Window(c.keyed(), w), func(_ *WindowContext[K], es []Either[A, B], out Collector[OUT]) error {
		var as []A
		var bs []B
		for _, e := range es {
			if e.IsB {
				bs = append(bs, e.B)
			} else {
				as = append(as, e.A)
			}
		}
		for _, x := range as {
			for _, y := range bs {
				if err := join(x, y, out); err != nil {
					return err
				}
			}
		}
		return nil
	}).Name("WindowJoin")
}

// IntervalJoin joins each record a of the first stream with the records b
// of the second with the same key and a timestamp in [ts(a)+lower,
// ts(a)+upper]: Flink's intervalJoin().between(lower, upper). Both streams
// need event-time timestamps. Records are kept in keyed state until the
// watermark passes the last time they can join; a joined record carries the
// timestamp of the record of the pair that arrived last.
func IntervalJoin[A, B any, K comparable, OUT any](a *KeyedStream[A, K], b *KeyedStream[B, K], lower, upper time.Duration, join func(a A, b B, out Collector[OUT]) error) *DataStream[OUT] {
	lo, hi := lower.Milliseconds(), upper.Milliseconds()
	if lo > hi {
		a.s.env.setErr(fmt.Errorf("%w: IntervalJoin: lower bound %v above upper bound %v", ErrInvalidConfig, lower, upper))
	}
	return KeyedCoProcess(ConnectKeyed(a, b), KeyedCoProcessFunction[K, A, B, OUT](&intervalJoin[K, A, B, OUT]{lo: lo, hi: hi, join: join})).Name("IntervalJoin")
}

// stampedValue is a buffered record of an interval join.
type stampedValue[T any] struct {
	TS int64
	V  T
}

// intervalJoin is shared by every subtask: it keeps nothing in fields and
// finds its keyed state through the context.
type intervalJoin[K comparable, A, B, OUT any] struct {
	lo, hi int64
	join   func(A, B, Collector[OUT]) error
}

func (j *intervalJoin[K, A, B, OUT]) states(ctx *KeyedContext[K]) (state.ListState[stampedValue[A]], state.ListState[stampedValue[B]], error) {
	as, err := state.GetListState(ctx.State(), state.ListStateDescriptor[stampedValue[A]]{Name: "interval-join-left"})
	if err != nil {
		return nil, nil, err
	}
	bs, err := state.GetListState(ctx.State(), state.ListStateDescriptor[stampedValue[B]]{Name: "interval-join-right"})
	return as, bs, err
}

func (j *intervalJoin[K, A, B, OUT]) ProcessElement1(ctx *KeyedContext[K], v A, out Collector[OUT]) error {
	sa, sb, err := j.states(ctx)
	if err != nil {
		return err
	}
	ts, ok := ctx.Timestamp()
	if !ok {
		return fmt.Errorf("%w: IntervalJoin left input", ErrNoTimestamp)
	}
	if ts+j.hi <= ctx.TimerService().CurrentWatermark() {
		return nil // late: nothing it could join is kept any more
	}
	bs, err := sb.Get()
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.TS >= ts+j.lo && b.TS <= ts+j.hi {
			if err := j.join(v, b.V, out); err != nil {
				return err
			}
		}
	}
	if err := sa.Add(stampedValue[A]{TS: ts, V: v}); err != nil {
		return err
	}
	// Keep it until no record of the other side can join it.
	ctx.TimerService().RegisterEventTimeTimer(ts + max(j.hi, 0))
	return nil
}

func (j *intervalJoin[K, A, B, OUT]) ProcessElement2(ctx *KeyedContext[K], v B, out Collector[OUT]) error {
	sa, sb, err := j.states(ctx)
	if err != nil {
		return err
	}
	ts, ok := ctx.Timestamp()
	if !ok {
		return fmt.Errorf("%w: IntervalJoin right input", ErrNoTimestamp)
	}
	if ts-j.lo <= ctx.TimerService().CurrentWatermark() {
		return nil
	}
	as, err := sa.Get()
	if err != nil {
		return err
	}
	for _, a := range as {
		if ts >= a.TS+j.lo && ts <= a.TS+j.hi {
			if err := j.join(a.V, v, out); err != nil {
				return err
			}
		}
	}
	if err := sb.Add(stampedValue[B]{TS: ts, V: v}); err != nil {
		return err
	}
	ctx.TimerService().RegisterEventTimeTimer(ts - min(j.lo, 0))
	return nil
}

// OnTimer drops the buffered records no later record can join.
func (j *intervalJoin[K, A, B, OUT]) OnTimer(ctx *KeyedContext[K], ts int64, _ Collector[OUT]) error {
	sa, sb, err := j.states(ctx)
	if err != nil {
		return err
	}
	wm := ctx.TimerService().CurrentWatermark()
	as, err := sa.Get()
	if err != nil {
		return err
	}
	keepA := as[:0:0]
	for _, a := range as {
		if a.TS+max(j.hi, 0) > wm {
			keepA = append(keepA, a)
		}
	}
	if err := sa.Update(keepA); err != nil {
		return err
	}
	bs, err := sb.Get()
	if err != nil {
		return err
	}
	keepB := bs[:0:0]
	for _, b := range bs {
		if b.TS-min(j.lo, 0) > wm {
			keepB = append(keepB, b)
		}
	}
	return sb.Update(keepB)
}
