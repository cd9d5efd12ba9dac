package ref_test

import (
	"fmt"

	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/ref"
)

func ExampleQ11() {
	bid := func(bidder, ts int64) gen.Event {
		return gen.Event{Kind: gen.BidEvent, Bid: gen.Bid{Bidder: bidder, DateTime: ts}}
	}
	events := []gen.Event{bid(1, 0), bid(1, 4000), bid(2, 5000), bid(1, 30000)}
	for _, s := range ref.Q11(events) {
		fmt.Printf("bidder %d: %d bids in [%d, %d)\n", s.Bidder, s.BidCount, s.Start, s.End)
	}
	// Output:
	// bidder 1: 2 bids in [0, 14000)
	// bidder 1: 1 bids in [30000, 40000)
	// bidder 2: 1 bids in [5000, 15000)
}
