package gen_test

import (
	"fmt"

	"github.com/flinkgo/flink/examples/nexmark/gen"
)

func Example() {
	g, err := gen.New(gen.DefaultConfig())
	if err != nil {
		panic(err)
	}
	var ev gen.Event
	for i := range int64(6) {
		if err := g.Next(i, &ev); err != nil {
			panic(err)
		}
		switch ev.Kind {
		case gen.PersonEvent:
			fmt.Println(i, "person", ev.Person.ID)
		case gen.AuctionEvent:
			fmt.Println(i, "auction", ev.Auction.ID, "by", ev.Auction.Seller)
		case gen.BidEvent:
			fmt.Println(i, "bid on", ev.Bid.Auction)
		}
	}
	// Output:
	// 0 person 1000
	// 1 auction 1000 by 1000
	// 2 auction 1001 by 1000
	// 3 auction 1002 by 1000
	// 4 bid on 1003
	// 5 bid on 1001
}
