package queries

import (
	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/ref"
	"github.com/flinkgo/flink/state"
)

// q11Bid is a bid as q11 needs it.
type q11Bid struct {
	Bidder, DateTime int64
}

// q11Session is an open session [Start, End) of Count bids.
type q11Session struct {
	Start, End, Count int64
}

// q11Sessions is a bidder's open sessions: First when HasFirst, and Rest (almost always
// empty). Keeping the common single session in place avoids an allocation per bid.
type q11Sessions struct {
	HasFirst bool
	First    q11Session
	Rest     []q11Session
}

// Q11 is user sessions (ref.Q11): each bidder's bids in event-time sessions with a 10 s gap,
// counted. Every bid opens [t, t+gap); sessions that overlap or touch merge. A session is
// emitted when the watermark reaches its end — not end-1 as Flink's window operator fires —
// because a bid at exactly the end still touches it and so belongs to it (the reference, like
// the SQL's batch result, merges touching windows).
func Q11(events *flink.DataStream[gen.Event]) *flink.DataStream[ref.Q11Result] {
	bids := flink.FlatMap(events, func(ev gen.Event, out flink.Collector[q11Bid]) error {
		if ev.Kind == gen.BidEvent {
			out.Collect(q11Bid{Bidder: ev.Bid.Bidder, DateTime: ev.Bid.DateTime})
		}
		return nil
	}).Name("q11-bids")
	return flink.KeyedProcess(flink.KeyBy(bids, func(b q11Bid) int64 { return b.Bidder }),
		flink.KeyedProcessFunction[int64, q11Bid, ref.Q11Result](newQ11Sessions())).Name("q11-sessions")
}

type q11Func struct {
	h perBackend[int64, state.ValueState[q11Sessions]]
}

func newQ11Sessions() *q11Func {
	return &q11Func{h: perBackend[int64, state.ValueState[q11Sessions]]{init: func(b state.KeyedStateStore[int64]) (*state.ValueState[q11Sessions], error) {
		s, err := state.GetValueState(b, state.ValueStateDescriptor[q11Sessions]{Name: "sessions"})
		return &s, err
	}}}
}

func touches(s q11Session, start, end int64) bool { return s.Start <= end && s.End >= start }

func (f *q11Func) ProcessElement(ctx *flink.KeyedContext[int64], b q11Bid, _ flink.Collector[ref.Q11Result]) error {
	stp, err := f.h.get(ctx.State())
	if err != nil {
		return err
	}
	ss, _, err := (*stp).Value()
	if err != nil {
		return err
	}
	n := q11Session{Start: b.DateTime, End: b.DateTime + ref.Q11SessionGap, Count: 1}
	if ss.HasFirst && len(ss.Rest) == 0 && touches(ss.First, n.Start, n.End) {
		// The common case: the bid extends the bidder's only session.
		s := &ss.First
		if n.End > s.End {
			s.End = n.End
			ctx.TimerService().RegisterEventTimeTimer(s.End)
		}
		s.Start = min(s.Start, n.Start)
		s.Count++
		return (*stp).Update(ss)
	}
	// Merge every session the new window touches into it; keep the others.
	var keep []q11Session
	all := ss.Rest
	if ss.HasFirst {
		all = append([]q11Session{ss.First}, ss.Rest...)
	}
	for _, s := range all {
		if touches(s, n.Start, n.End) {
			n.Start, n.End, n.Count = min(n.Start, s.Start), max(n.End, s.End), n.Count+s.Count
		} else {
			keep = append(keep, s)
		}
	}
	ctx.TimerService().RegisterEventTimeTimer(n.End)
	ss = q11Sessions{HasFirst: true, First: n, Rest: keep}
	return (*stp).Update(ss)
}

// OnTimer emits and drops the sessions that ended at or before ts: no bid touching them can
// still arrive.
func (f *q11Func) OnTimer(ctx *flink.KeyedContext[int64], ts int64, out flink.Collector[ref.Q11Result]) error {
	stp, err := f.h.get(ctx.State())
	if err != nil {
		return err
	}
	ss, ok, err := (*stp).Value()
	if err != nil || !ok {
		return err
	}
	bidder := ctx.CurrentKey()
	var left []q11Session
	all := ss.Rest
	if ss.HasFirst {
		all = append([]q11Session{ss.First}, ss.Rest...)
	}
	for _, s := range all {
		if s.End <= ts {
			out.Collect(ref.Q11Result{Bidder: bidder, BidCount: s.Count, Start: s.Start, End: s.End})
		} else {
			left = append(left, s)
		}
	}
	if len(left) == len(all) {
		return nil
	}
	if len(left) == 0 {
		return (*stp).Clear()
	}
	return (*stp).Update(q11Sessions{HasFirst: true, First: left[0], Rest: left[1:]})
}
