package queries

import (
	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/ref"
	"github.com/flinkgo/flink/state"
)

// q7Spread is the number of keys q7's first stage spreads bids over (by price), so that each
// window's maximum is pre-aggregated in parallel.
const q7Spread = 128

// q7Bid is what q7 keeps of a bid.
type q7Bid struct {
	Auction, Bidder, Price, DateTime int64
	Extra                            string
}

// q7Partial is what is known of one window [Start, Start+size): whether it holds bids (Has),
// their highest price and the bids with it, and the bids at exactly its end, which the SQL also
// joins to it (Boundary).
type q7Partial struct {
	Start    int64
	Has      bool
	Max      int64
	AtMax    []q7Bid
	Boundary []q7Bid
}

// add folds a bid of the window into p.
func (p *q7Partial) add(b q7Bid) {
	switch {
	case !p.Has || b.Price > p.Max:
		// A new slice: a checkpoint may hold the old one (it reads only up to its length, so
		// appending below is safe).
		p.Has, p.Max, p.AtMax = true, b.Price, []q7Bid{b}
	case b.Price == p.Max:
		p.AtMax = append(p.AtMax, b)
	}
}

// merge folds another partial of the same window into p.
func (p *q7Partial) merge(o q7Partial) {
	if o.Has {
		switch {
		case !p.Has || o.Max > p.Max:
			p.Has, p.Max, p.AtMax = true, o.Max, append([]q7Bid(nil), o.AtMax...)
		case o.Max == p.Max:
			p.AtMax = append(p.AtMax, o.AtMax...)
		}
	}
	p.Boundary = append(p.Boundary, o.Boundary...)
}

// Q7 is highest bid (ref.Q7): per 10 s tumbling window, the bids whose price is the window's
// highest. The SQL joins each window's maximum with the bids at [start, end], a closed bound,
// so a bid at exactly a window's end is also output for that window if its price equals the
// window's maximum (without counting toward it); a window is therefore final only when the
// watermark reaches its end, not end-1.
//
// The first stage, keyed by price modulo q7Spread, keeps per key and window the highest price,
// the bids with it and the boundary bids, and emits that partial when the watermark reaches the
// window's end; the second, keyed by window, merges the partials and emits the result.
func Q7(events *flink.DataStream[gen.Event]) *flink.DataStream[ref.Q7Result] {
	bids := flink.FlatMap(events, func(ev gen.Event, out flink.Collector[q7Bid]) error {
		if ev.Kind == gen.BidEvent {
			b := &ev.Bid
			out.Collect(q7Bid{Auction: b.Auction, Bidder: b.Bidder, Price: b.Price, DateTime: b.DateTime, Extra: b.Extra})
		}
		return nil
	}).Name("q7-bids")
	partials := flink.KeyedProcess(flink.KeyBy(bids, func(b q7Bid) int64 { return b.Price % q7Spread }),
		flink.KeyedProcessFunction[int64, q7Bid, q7Partial](newQ7Partials())).Name("q7-partial-max")
	return flink.KeyedProcess(flink.KeyBy(partials, func(p q7Partial) int64 { return p.Start }),
		flink.KeyedProcessFunction[int64, q7Partial, ref.Q7Result](newQ7Merge())).Name("q7-max")
}

// q7Partials is q7's first stage: per key, a map from window start to the window's partial.
type q7Partials struct {
	h perBackend[int64, state.MapState[int64, q7Partial]]
}

func newQ7Partials() *q7Partials {
	return &q7Partials{h: perBackend[int64, state.MapState[int64, q7Partial]]{init: func(b state.KeyedStateStore[int64]) (*state.MapState[int64, q7Partial], error) {
		s, err := state.GetMapState(b, state.MapStateDescriptor[int64, q7Partial]{Name: "windows"})
		return &s, err
	}}}
}

// partial returns the window's partial, registering its timer when it is new.
func partial(ctx *flink.KeyedContext[int64], st state.MapState[int64, q7Partial], start int64) (q7Partial, error) {
	p, ok, err := st.Get(start)
	if err != nil || ok {
		return p, err
	}
	ctx.TimerService().RegisterEventTimeTimer(start + ref.Q7WindowSize)
	return q7Partial{Start: start}, nil
}

func (f *q7Partials) ProcessElement(ctx *flink.KeyedContext[int64], b q7Bid, _ flink.Collector[q7Partial]) error {
	stp, err := f.h.get(ctx.State())
	if err != nil {
		return err
	}
	st := *stp
	start := windowStart(b.DateTime, ref.Q7WindowSize)
	p, err := partial(ctx, st, start)
	if err != nil {
		return err
	}
	p.add(b)
	if err := st.Put(start, p); err != nil {
		return err
	}
	if start != b.DateTime {
		return nil
	}
	// The bid lies exactly at the end of the previous window, which the SQL also joins it to.
	prev, err := partial(ctx, st, start-ref.Q7WindowSize)
	if err != nil {
		return err
	}
	prev.Boundary = append(prev.Boundary, b)
	return st.Put(prev.Start, prev)
}

func (f *q7Partials) OnTimer(ctx *flink.KeyedContext[int64], ts int64, out flink.Collector[q7Partial]) error {
	stp, err := f.h.get(ctx.State())
	if err != nil {
		return err
	}
	st := *stp
	start := ts - ref.Q7WindowSize
	p, ok, err := st.Get(start)
	if err != nil || !ok {
		return err
	}
	if p.Has {
		// Boundary bids below this key's maximum are below the window's.
		var keep []q7Bid
		for _, b := range p.Boundary {
			if b.Price >= p.Max {
				keep = append(keep, b)
			}
		}
		p.Boundary = keep
	}
	out.Collect(p)
	return st.Remove(start)
}

// q7Merge is q7's second stage: per window start, the merged partials.
type q7Merge struct {
	h perBackend[int64, state.ValueState[q7Partial]]
}

func newQ7Merge() *q7Merge {
	return &q7Merge{h: perBackend[int64, state.ValueState[q7Partial]]{init: func(b state.KeyedStateStore[int64]) (*state.ValueState[q7Partial], error) {
		s, err := state.GetValueState(b, state.ValueStateDescriptor[q7Partial]{Name: "window"})
		return &s, err
	}}}
}

func (f *q7Merge) ProcessElement(ctx *flink.KeyedContext[int64], p q7Partial, _ flink.Collector[ref.Q7Result]) error {
	stp, err := f.h.get(ctx.State())
	if err != nil {
		return err
	}
	m, ok, err := (*stp).Value()
	if err != nil {
		return err
	}
	if !ok {
		m = q7Partial{Start: p.Start}
		ctx.TimerService().RegisterEventTimeTimer(p.Start + ref.Q7WindowSize)
	}
	m.merge(p)
	return (*stp).Update(m)
}

func (f *q7Merge) OnTimer(ctx *flink.KeyedContext[int64], ts int64, out flink.Collector[ref.Q7Result]) error {
	stp, err := f.h.get(ctx.State())
	if err != nil {
		return err
	}
	m, ok, err := (*stp).Value()
	if err != nil || !ok {
		return err
	}
	emit := func(b q7Bid) {
		out.Collect(ref.Q7Result{Auction: b.Auction, Bidder: b.Bidder, Price: b.Price, DateTime: b.DateTime,
			Extra: b.Extra, WindowEnd: ts})
	}
	if m.Has {
		for _, b := range m.AtMax {
			emit(b)
		}
		for _, b := range m.Boundary {
			if b.Price == m.Max {
				emit(b)
			}
		}
	}
	return (*stp).Clear()
}

// windowStart returns the start of the epoch-aligned window of size size holding ts.
func windowStart(ts, size int64) int64 {
	m := ts % size
	if m < 0 {
		m += size
	}
	return ts - m
}
