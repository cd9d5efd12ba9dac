package queries

import (
	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/ref"
)

// Q0 is the pass-through query: every bid, unchanged (ref.Q0).
func Q0(events *flink.DataStream[gen.Event]) *flink.DataStream[gen.Bid] {
	return flink.FlatMap(events, func(ev gen.Event, out flink.Collector[gen.Bid]) error {
		if ev.Kind == gen.BidEvent {
			out.Collect(ev.Bid)
		}
		return nil
	}).Name("q0")
}

// Q1 converts every bid's price from dollars to euros (ref.Q1).
func Q1(events *flink.DataStream[gen.Event]) *flink.DataStream[gen.Bid] {
	return flink.FlatMap(events, func(ev gen.Event, out flink.Collector[gen.Bid]) error {
		if ev.Kind == gen.BidEvent {
			b := ev.Bid
			b.Price = ref.Q1Price(b.Price)
			out.Collect(b)
		}
		return nil
	}).Name("q1")
}

// Q2 selects (auction, price) of the bids on auctions whose id is a multiple of
// ref.Q2Modulus (ref.Q2).
func Q2(events *flink.DataStream[gen.Event]) *flink.DataStream[ref.Q2Result] {
	return flink.FlatMap(events, func(ev gen.Event, out flink.Collector[ref.Q2Result]) error {
		if ev.Kind == gen.BidEvent && ev.Bid.Auction%ref.Q2Modulus == 0 {
			out.Collect(ref.Q2Result{Auction: ev.Bid.Auction, Price: ev.Bid.Price})
		}
		return nil
	}).Name("q2")
}
