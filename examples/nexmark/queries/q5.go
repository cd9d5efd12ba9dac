package queries

import (
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/ref"
	"github.com/flinkgo/flink/state"
	"github.com/flinkgo/flink/window"
)

// q5Count is the number of bids on one auction in one window.
type q5Count struct {
	Start, End, Auction, Num int64
}

// count counts records: an AggregateFunction.
type count[T any] struct{}

func (count[T]) CreateAccumulator() int64          { return 0 }
func (count[T]) Add(_ T, acc int64) (int64, error) { return acc + 1, nil }
func (count[T]) Result(acc int64) (int64, error)   { return acc, nil }
func (count[T]) Merge(a, b int64) (int64, error)   { return a + b, nil }

var _ flink.AggregateFunction[int64, int64, int64] = count[int64]{}

// Q5 is hot items (ref.Q5): per sliding window of 10 s every 2 s, the auctions with the most
// bids. The runtime's window operator counts the bids per auction and window; a second stage,
// keyed by window, keeps each window's highest count and the auctions that reach it, and emits
// them when the watermark passes the window, after every count of it arrived.
func Q5(events *flink.DataStream[gen.Event]) *flink.DataStream[ref.Q5Result] {
	bids := flink.FlatMap(events, func(ev gen.Event, out flink.Collector[int64]) error {
		if ev.Kind == gen.BidEvent {
			out.Collect(ev.Bid.Auction)
		}
		return nil
	}).Name("q5-bids")
	slide, err := window.Sliding(window.EventTime, time.Duration(ref.Q5WindowSize)*time.Millisecond,
		time.Duration(ref.Q5WindowSlide)*time.Millisecond, 0)
	if err != nil {
		panic(err) // constant arguments
	}
	counts := flink.WindowAggregateWith(flink.Window(flink.KeyBy(bids, func(a int64) int64 { return a }), slide), count[int64]{},
		func(ctx *flink.WindowContext[int64], n int64, out flink.Collector[q5Count]) error {
			w := ctx.Window()
			out.Collect(q5Count{Start: w.Start, End: w.End, Auction: ctx.Key(), Num: n})
			return nil
		}).Name("q5-counts")
	return flink.KeyedProcess(flink.KeyBy(counts, func(c q5Count) int64 { return c.Start }),
		flink.KeyedProcessFunction[int64, q5Count, ref.Q5Result](newQ5Max())).Name("q5-max")
}

// q5Max is a window's highest count so far and the auctions with it.
type q5Max struct {
	End, Num int64
	Auctions []int64
}

// q5MaxFunc keeps, per window start, the window's q5Max.
type q5MaxFunc struct {
	h perBackend[int64, state.ValueState[q5Max]]
}

func newQ5Max() *q5MaxFunc {
	return &q5MaxFunc{h: perBackend[int64, state.ValueState[q5Max]]{init: func(b state.KeyedStateStore[int64]) (*state.ValueState[q5Max], error) {
		s, err := state.GetValueState(b, state.ValueStateDescriptor[q5Max]{Name: "max"})
		return &s, err
	}}}
}

func (f *q5MaxFunc) ProcessElement(ctx *flink.KeyedContext[int64], c q5Count, _ flink.Collector[ref.Q5Result]) error {
	st, err := f.h.get(ctx.State())
	if err != nil {
		return err
	}
	m, ok, err := (*st).Value()
	if err != nil {
		return err
	}
	switch {
	case !ok:
		ctx.TimerService().RegisterEventTimeTimer(c.End - 1)
		m = q5Max{End: c.End, Num: c.Num, Auctions: []int64{c.Auction}}
	case c.Num > m.Num:
		// A new slice: a checkpoint may hold the old one.
		m.Num, m.Auctions = c.Num, []int64{c.Auction}
	case c.Num == m.Num:
		m.Auctions = append(m.Auctions, c.Auction) // a snapshot reads only up to its length
	default:
		return nil
	}
	return (*st).Update(m)
}

func (f *q5MaxFunc) OnTimer(ctx *flink.KeyedContext[int64], _ int64, out flink.Collector[ref.Q5Result]) error {
	st, err := f.h.get(ctx.State())
	if err != nil {
		return err
	}
	m, ok, err := (*st).Value()
	if err != nil || !ok {
		return err
	}
	for _, a := range m.Auctions {
		out.Collect(ref.Q5Result{WindowStart: ctx.CurrentKey(), WindowEnd: m.End, Auction: a, Num: m.Num})
	}
	return (*st).Clear()
}
