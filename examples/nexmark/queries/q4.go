package queries

import (
	"fmt"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/ref"
	"github.com/flinkgo/flink/state"
)

// q4Auction is what q4 keeps of an auction, with the highest price of the bids that joined it.
type q4Auction struct {
	ID, DateTime, Expires, Category int64
	Max                             int64
	HasMax                          bool
}

// q4Bid is what q4 keeps of a bid.
type q4Bid struct {
	Auction, Price, DateTime int64
}

// q4Final is an auction's winning price, once the watermark passed its expiry.
type q4Final struct {
	Category, Price int64
}

// q4PendingGranularity rounds the cleanup timers of bids waiting for their auction up to a
// multiple of this many milliseconds, so that a key registers few of them.
const q4PendingGranularity = 64

// Q4 is the average winning price per category (ref.Q4). Bids join their auction by auction
// id when their timestamp lies in [auction.DateTime, auction.Expires]. An auction's winning
// price is final once the watermark reaches its expiry: every bid that could still join it has
// arrived. Bids that arrive before their auction wait in keyed state until the watermark shows
// that no auction they could join can still come. The second stage keeps each category's sum and
// count of winning prices and emits the category's average whenever an auction closes: an
// upsert stream keyed by Category, whose last record per category is the result (Flink's
// retracting aggregation emits the same changelog at a finer grain).
//
// The generator never repeats an auction id; a repeated id fails the job rather than being
// joined as the SQL would.
func Q4(events *flink.DataStream[gen.Event]) *flink.DataStream[ref.Q4Result] {
	auctions := flink.FlatMap(events, func(ev gen.Event, out flink.Collector[q4Auction]) error {
		if ev.Kind == gen.AuctionEvent {
			a := &ev.Auction
			out.Collect(q4Auction{ID: a.ID, DateTime: a.DateTime, Expires: a.Expires, Category: a.Category})
		}
		return nil
	}).Name("q4-auctions")
	bids := flink.FlatMap(events, func(ev gen.Event, out flink.Collector[q4Bid]) error {
		if ev.Kind == gen.BidEvent {
			out.Collect(q4Bid{Auction: ev.Bid.Auction, Price: ev.Bid.Price, DateTime: ev.Bid.DateTime})
		}
		return nil
	}).Name("q4-bids")
	c := flink.ConnectKeyed(
		flink.KeyBy(auctions, func(a q4Auction) int64 { return a.ID }),
		flink.KeyBy(bids, func(b q4Bid) int64 { return b.Auction }))
	finals := flink.KeyedCoProcess(c, flink.KeyedCoProcessFunction[int64, q4Auction, q4Bid, q4Final](newQ4Join())).Name("q4-winning-bids")
	return flink.KeyedProcess(flink.KeyBy(finals, func(f q4Final) int64 { return f.Category }),
		newQ4Average()).Name("q4-average")
}

type q4JoinState struct {
	auction state.ValueState[q4Auction]
	pending state.ListState[q4Bid]
}

// q4Join keeps, per auction id, the open auction with its highest joined price, and the bids
// that arrived before it.
type q4Join struct {
	h perBackend[int64, q4JoinState]
}

func newQ4Join() *q4Join {
	return &q4Join{h: perBackend[int64, q4JoinState]{init: func(b state.KeyedStateStore[int64]) (*q4JoinState, error) {
		a, err := state.GetValueState(b, state.ValueStateDescriptor[q4Auction]{Name: "auction"})
		if err != nil {
			return nil, err
		}
		p, err := state.GetListState(b, state.ListStateDescriptor[q4Bid]{Name: "pending-bids"})
		if err != nil {
			return nil, err
		}
		return &q4JoinState{auction: a, pending: p}, nil
	}}}
}

func (a *q4Auction) join(b q4Bid) {
	if b.DateTime >= a.DateTime && b.DateTime <= a.Expires && (!a.HasMax || b.Price > a.Max) {
		a.Max, a.HasMax = b.Price, true
	}
}

func (j *q4Join) ProcessElement1(ctx *flink.KeyedContext[int64], a q4Auction, _ flink.Collector[q4Final]) error {
	st, err := j.h.get(ctx.State())
	if err != nil {
		return err
	}
	if _, ok, err := st.auction.Value(); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("nexmark: q4: auction %d arrived twice", a.ID)
	}
	pending, err := st.pending.Get()
	if err != nil {
		return err
	}
	for _, b := range pending {
		a.join(b)
	}
	if len(pending) > 0 {
		if err := st.pending.Clear(); err != nil {
			return err
		}
	}
	ctx.TimerService().RegisterEventTimeTimer(a.Expires)
	return st.auction.Update(a)
}

func (j *q4Join) ProcessElement2(ctx *flink.KeyedContext[int64], b q4Bid, _ flink.Collector[q4Final]) error {
	st, err := j.h.get(ctx.State())
	if err != nil {
		return err
	}
	a, ok, err := st.auction.Value()
	if err != nil {
		return err
	}
	if ok {
		old, had := a.Max, a.HasMax
		if a.join(b); a.Max == old && a.HasMax == had {
			return nil
		}
		return st.auction.Update(a)
	}
	// No open auction: it has not arrived yet, or it closed (then the bid, later than the
	// watermark and so than the auction's expiry, cannot join it). Keep the bid until the
	// watermark passes it: then no auction it could join can still arrive, since that
	// auction's timestamp would be at most the bid's.
	ctx.TimerService().RegisterEventTimeTimer((b.DateTime/q4PendingGranularity + 1) * q4PendingGranularity)
	return st.pending.Add(b)
}

func (j *q4Join) OnTimer(ctx *flink.KeyedContext[int64], ts int64, out flink.Collector[q4Final]) error {
	st, err := j.h.get(ctx.State())
	if err != nil {
		return err
	}
	a, ok, err := st.auction.Value()
	if err != nil {
		return err
	}
	if ok && a.Expires <= ts {
		if a.HasMax {
			out.Collect(q4Final{Category: a.Category, Price: a.Max})
		}
		if err := st.auction.Clear(); err != nil {
			return err
		}
	}
	pending, err := st.pending.Get()
	if err != nil || len(pending) == 0 {
		return err
	}
	keep := pending[:0]
	for _, b := range pending {
		if b.DateTime > ts {
			keep = append(keep, b)
		}
	}
	if len(keep) == len(pending) {
		return nil
	}
	return st.pending.Update(keep)
}

// q4Sum is a category's sum and number of winning prices.
type q4Sum struct {
	Sum, N int64
}

// newQ4Average returns the second stage of q4: per category, the running average.
func newQ4Average() flink.KeyedProcessFunction[int64, q4Final, ref.Q4Result] {
	h := &perBackend[int64, state.ValueState[q4Sum]]{init: func(b state.KeyedStateStore[int64]) (*state.ValueState[q4Sum], error) {
		s, err := state.GetValueState(b, state.ValueStateDescriptor[q4Sum]{Name: "sum"})
		return &s, err
	}}
	return flink.OnElement(func(ctx *flink.KeyedContext[int64], f q4Final, out flink.Collector[ref.Q4Result]) error {
		st, err := h.get(ctx.State())
		if err != nil {
			return err
		}
		s, _, err := (*st).Value()
		if err != nil {
			return err
		}
		s.Sum += f.Price
		s.N++
		out.Collect(ref.Q4Result{Category: f.Category, Avg: s.Sum / s.N})
		return (*st).Update(s)
	})
}
