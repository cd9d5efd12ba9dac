package flink

import (
	"fmt"
	"iter"
	"maps"

	"github.com/flinkgo/flink/state"
)

// Broadcast state: one input of a two-input operator (the broadcast side,
// often rules or configuration) goes to every subtask, which keeps what it
// learns in a map that is the same in every subtask; the other input reads
// it. Flink's BroadcastState and (Keyed)BroadcastProcessFunction.

// BroadcastState is the map every subtask of a broadcast operator keeps:
// writable while a broadcast record is processed, read-only otherwise, so
// that all subtasks hold the same map. It is part of checkpoints.
type BroadcastState[BK comparable, BV any] struct {
	m        map[BK]BV
	readOnly bool
}

// Get returns the value for k and whether it is present.
func (s *BroadcastState[BK, BV]) Get(k BK) (BV, bool) {
	v, ok := s.m[k]
	return v, ok
}

// All iterates the entries, in no particular order.
func (s *BroadcastState[BK, BV]) All() iter.Seq2[BK, BV] { return maps.All(s.m) }

// Len returns the number of entries.
func (s *BroadcastState[BK, BV]) Len() int { return len(s.m) }

// ErrBroadcastStateReadOnly is returned when the non-broadcast side of a
// broadcast operator writes its broadcast state: only the broadcast side
// may, so that every subtask keeps the same state.
var ErrBroadcastStateReadOnly = fmt.Errorf("flink: broadcast state is read-only outside ProcessBroadcastElement")

// Put sets k to v; only while a broadcast record is processed.
func (s *BroadcastState[BK, BV]) Put(k BK, v BV) error {
	if s.readOnly {
		return ErrBroadcastStateReadOnly
	}
	s.m[k] = v
	return nil
}

// Remove deletes k; only while a broadcast record is processed.
func (s *BroadcastState[BK, BV]) Remove(k BK) error {
	if s.readOnly {
		return ErrBroadcastStateReadOnly
	}
	delete(s.m, k)
	return nil
}

// KeyedBroadcastProcessFunction processes a keyed stream connected with a
// broadcast stream: Flink's KeyedBroadcastProcessFunction.
// ProcessElement handles a keyed record with its key's state and timers
// and reads the broadcast state; ProcessBroadcastElement handles a
// broadcast record in every subtask and may write the broadcast state (it
// must do so the same way in every subtask); OnTimer handles timers.
//
// Each subtask has its own instance, which may keep per-subtask fields and
// implement RichFunction; see KeyedProcessFunction.
type KeyedBroadcastProcessFunction[K comparable, A, B, OUT any, BK comparable, BV any] interface {
	ProcessElement(ctx *KeyedContext[K], bs *BroadcastState[BK, BV], v A, out Collector[OUT]) error
	ProcessBroadcastElement(rc *RuntimeContext, bs *BroadcastState[BK, BV], v B, out Collector[OUT]) error
	OnTimer(ctx *KeyedContext[K], bs *BroadcastState[BK, BV], timestamp int64, out Collector[OUT]) error
}

// KeyedBroadcastProcess connects a keyed stream with stream b, whose
// records reach every subtask, and applies f: Flink's
// keyedStream.connect(broadcastStream).process(f).
func KeyedBroadcastProcess[A any, K comparable, B, OUT any, BK comparable, BV any](a *KeyedStream[A, K], b *DataStream[B], f KeyedBroadcastProcessFunction[K, A, B, OUT, BK, BV]) *DataStream[OUT] {
	if a.s.env != b.env {
		a.s.env.setErr(fmt.Errorf("flink: KeyedBroadcastProcess of streams from different environments"))
	}
	left := KeyBy(tagged(unkeyed(a), func(v A) Either[A, B] { return Either[A, B]{A: v} }), func(e Either[A, B]) K { return a.key(e.A) })
	right := tagged(b, func(v B) Either[A, B] { return Either[A, B]{IsB: true, B: v} }).withPartitioner(partBroadcast)
	in := &DataStream[Either[A, B]]{env: a.s.env, ins: append(append([]input(nil), left.s.ins...), right.ins...)}
	return addOperator(in, "KeyedBroadcastProcess", func(oc *opContext, out consumer[OUT]) (consumer[Either[A, B]], error) {
		core, err := newTimedOp[K, OUT](oc, out)
		if err != nil {
			return nil, err
		}
		bs := &BroadcastState[BK, BV]{m: make(map[BK]BV), readOnly: true}
		if err := broadcastStateBackend(oc, bs); err != nil {
			return nil, oc.fail(err)
		}
		g := perSubtask(f)
		if err := openFunction(oc, g); err != nil {
			return nil, err
		}
		core.onTimer = func(ctx *KeyedContext[K], ts int64, out Collector[OUT]) error { return g.OnTimer(ctx, bs, ts, out) }
		return &keyedBroadcastOp[A, K, B, OUT, BK, BV]{timedOp: core, key: a.key, f: g, bs: bs}, nil
	})
}

// broadcastEntry is one entry of a broadcast state in checkpoints.
type broadcastEntry[BK comparable, BV any] struct {
	K BK
	V BV
}

// broadcastStateBackend keeps bs in operator state with union
// redistribution: after a restore, at any parallelism, every subtask gets
// the entries every subtask wrote, which are the same.
func broadcastStateBackend[BK comparable, BV any](oc *opContext, bs *BroadcastState[BK, BV]) error {
	var list state.ListState[broadcastEntry[BK, BV]]
	b, err := operatorBackend(oc, func(int64) error {
		entries := make([]broadcastEntry[BK, BV], 0, len(bs.m))
		for k, v := range bs.m {
			entries = append(entries, broadcastEntry[BK, BV]{k, v})
		}
		return list.Update(entries)
	})
	if err != nil {
		return err
	}
	if list, err = state.GetUnionListState(b, state.ListStateDescriptor[broadcastEntry[BK, BV]]{Name: "broadcast-state"}); err != nil {
		return err
	}
	entries, err := list.Get()
	if err != nil {
		return err
	}
	for _, e := range entries {
		bs.m[e.K] = e.V
	}
	return nil
}

type keyedBroadcastOp[A any, K comparable, B, OUT any, BK comparable, BV any] struct {
	*timedOp[K, OUT]
	key func(A) K
	f   KeyedBroadcastProcessFunction[K, A, B, OUT, BK, BV]
	bs  *BroadcastState[BK, BV]
}

func (o *keyedBroadcastOp[A, K, B, OUT, BK, BV]) push(b []Either[A, B], ts []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	for i, e := range b {
		t := tsAt(ts, i)
		if e.IsB {
			o.col.cur, o.oc.side.cur = t, t
			o.bs.readOnly = false
			err = o.f.ProcessBroadcastElement(o.oc.rc, o.bs, e.B, &o.col)
			o.bs.readOnly = true
		} else {
			if err := o.setRecord(o.key(e.A), t); err != nil {
				return err
			}
			err = o.f.ProcessElement(o.ctx, o.bs, e.A, &o.col)
		}
		if err := o.afterCall(err); err != nil {
			return err
		}
	}
	return o.flush()
}
