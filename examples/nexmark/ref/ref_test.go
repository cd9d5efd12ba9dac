package ref

import (
	"slices"
	"testing"

	"github.com/flinkgo/flink/examples/nexmark/gen"
)

func bid(auction, bidder, price, ts int64) gen.Event {
	return gen.Event{Kind: gen.BidEvent, Bid: gen.Bid{Auction: auction, Bidder: bidder, Price: price, DateTime: ts, Extra: "x"}}
}

func person(id int64, name, city, state string, ts int64) gen.Event {
	return gen.Event{Kind: gen.PersonEvent, Person: gen.Person{ID: id, Name: name, City: city, State: state, DateTime: ts}}
}

func auction(id, seller, category, ts, expires, reserve int64) gen.Event {
	return gen.Event{Kind: gen.AuctionEvent, Auction: gen.Auction{ID: id, Seller: seller, Category: category,
		DateTime: ts, Expires: expires, Reserve: reserve, InitialBid: 1}}
}

func check[T comparable](t *testing.T, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestWindowStart(t *testing.T) {
	for _, tc := range []struct{ ts, size, want int64 }{
		{0, 10, 0}, {9, 10, 0}, {10, 10, 10}, {-1, 10, -10}, {-10, 10, -10}, {-11, 10, -20},
		{1704067205123, 10_000, 1704067200000},
	} {
		if got := windowStart(tc.ts, tc.size); got != tc.want {
			t.Errorf("windowStart(%d, %d) = %d, want %d", tc.ts, tc.size, got, tc.want)
		}
	}
}

func TestQ0Q1(t *testing.T) {
	in := []gen.Event{person(1, "a", "b", "OR", 0), bid(1, 2, 1000, 5), auction(1, 1, 10, 0, 1, 0), bid(3, 4, 12345, 6), bid(5, 6, 1, 7)}
	check(t, Q0(in), []gen.Bid{in[1].Bid, in[3].Bid, in[4].Bid})
	q1 := Q1(in)
	var prices []int64
	for _, b := range q1 {
		prices = append(prices, b.Price)
	}
	check(t, prices, []int64{908, 11209, 0})
	if q1[1].Auction != 3 || q1[1].Bidder != 4 || q1[1].DateTime != 6 {
		t.Fatalf("q1 changed more than the price: %+v", q1[1])
	}
	if in[1].Bid.Price != 1000 {
		t.Fatal("q1 modified its input")
	}
}

func TestQ2(t *testing.T) {
	in := []gen.Event{bid(246, 1, 7, 0), bid(124, 1, 8, 0), bid(123, 1, 9, 0), bid(0, 1, 1, 0), bid(123, 2, 3, 0)}
	check(t, Q2(in), []Q2Result{{0, 1}, {123, 3}, {123, 9}, {246, 7}})
}

func TestQ3(t *testing.T) {
	in := []gen.Event{
		auction(100, 1, 10, 0, 1, 0), // arrives before its seller: still joins
		person(1, "Peter Smith", "Boise", "ID", 5),
		person(2, "Kate Jones", "Seattle", "WA", 6), // wrong state
		person(3, "Paul White", "Portland", "OR", 7),
		person(4, "Luke Noris", "Phoenix", "CA", 7),
		auction(101, 2, 10, 8, 9, 0),  // seller in WA
		auction(102, 3, 11, 8, 9, 0),  // wrong category
		auction(103, 3, 10, 8, 9, 0),  // match
		auction(104, 9, 10, 8, 9, 0),  // unknown seller
		auction(105, 1, 10, -5, 0, 0), // another one by person 1, timestamps do not matter
	}
	check(t, Q3(in), []Q3Result{
		{"Peter Smith", "Boise", "ID", 100},
		{"Paul White", "Portland", "OR", 103},
		{"Peter Smith", "Boise", "ID", 105},
	})
}

func TestQ4(t *testing.T) {
	in := []gen.Event{
		auction(1, 0, 10, 1000, 2000, 6),
		bid(1, 0, 100, 999),  // before the auction
		bid(1, 0, 5, 1000),   // at the start: counts
		bid(1, 0, 7, 2000),   // at expiry: counts
		bid(1, 0, 100, 2001), // after expiry
		auction(2, 0, 10, 0, 100, 6),
		bid(2, 0, 4, 50),
		auction(3, 0, 11, 0, 100, 0), // no bids: no row for category 11
		bid(4, 0, 1000, 50),          // unknown auction
		auction(5, 0, 12, 0, 100, 0),
		bid(5, 0, 3, 10),
		bid(5, 0, 9, 20),
	}
	// Category 10: winners 7 and 4, AVG(BIGINT) truncates 5.5 to 5.
	check(t, Q4(in), []Q4Result{{10, 5}, {12, 9}})
	// With reserves: auction 2's only bid (4) is below its reserve of 6.
	check(t, Q4Reserve(in), []Q4Result{{10, 7}, {12, 9}})
}

func TestQ5(t *testing.T) {
	in := []gen.Event{bid(1, 0, 0, 0), bid(1, 0, 0, 1000), bid(2, 0, 0, 2500), bid(2, 0, 0, 3000), bid(2, 0, 0, 4000)}
	check(t, Q5(in), []Q5Result{
		{-8000, 2000, 1, 2},
		{-6000, 4000, 1, 2}, {-6000, 4000, 2, 2}, // a tie yields both
		{-4000, 6000, 2, 3},
		{-2000, 8000, 2, 3},
		{0, 10000, 2, 3},
		{2000, 12000, 2, 3},
		{4000, 14000, 2, 1},
	})
}

func TestQ5WindowsPerBid(t *testing.T) {
	// Every bid lands in size/slide = 5 windows, also for negative and boundary timestamps.
	for _, ts := range []int64{-10001, -10000, -1, 0, 1, 1999, 2000, 123456} {
		rows := Q5([]gen.Event{bid(7, 0, 0, ts)})
		if len(rows) != 5 {
			t.Fatalf("bid at %d: %d windows, want 5: %+v", ts, len(rows), rows)
		}
		for _, r := range rows {
			if r.WindowStart > ts || ts >= r.WindowEnd || r.WindowStart%Q5WindowSlide != 0 || r.Num != 1 {
				t.Fatalf("bid at %d: bad window %+v", ts, r)
			}
		}
	}
}

func TestQ7(t *testing.T) {
	in := []gen.Event{
		bid(1, 1, 5, 100),
		bid(2, 2, 9, 200),
		bid(3, 3, 9, 9999),
		bid(4, 4, 9, 10000), // on the boundary: the max of [0, 10000) and of [10000, 20000)
		bid(5, 5, 2, 15000),
		bid(6, 6, 7, -5), // window [-10000, 0)
	}
	check(t, Q7(in), []Q7Result{
		{6, 6, 7, -5, "x", 0},
		{2, 2, 9, 200, "x", 10000},
		{3, 3, 9, 9999, "x", 10000},
		{4, 4, 9, 10000, "x", 10000}, // the SQL's closed upper bound
		{4, 4, 9, 10000, "x", 20000},
	})
	// A boundary bid below the previous window's max is only output for its own window.
	in[3] = bid(4, 4, 8, 10000)
	check(t, Q7(in), []Q7Result{
		{6, 6, 7, -5, "x", 0},
		{2, 2, 9, 200, "x", 10000},
		{3, 3, 9, 9999, "x", 10000},
		{4, 4, 8, 10000, "x", 20000},
	})
}

func TestQ8(t *testing.T) {
	in := []gen.Event{
		auction(10, 5, 10, 11000, 0, 0), // before its seller registers, same window: matches
		person(1, "p1", "", "", 1000),
		auction(11, 1, 10, 5000, 0, 0),
		person(2, "p2", "", "", 9999),
		auction(12, 2, 10, 10000, 0, 0), // next window: no match
		person(3, "p3", "", "", 15000),
		auction(13, 3, 10, 16000, 0, 0),
		auction(14, 3, 10, 19999, 0, 0), // a second auction does not duplicate the row
		auction(15, 4, 10, 1000, 0, 0),  // seller never registers
		person(5, "p5", "", "", 12000),
	}
	check(t, Q8(in), []Q8Result{{1, "p1", 0}, {3, "p3", 10000}, {5, "p5", 10000}})
}

func TestQ11(t *testing.T) {
	in := []gen.Event{
		bid(0, 1, 0, 10000), // out of order: sessions are by timestamp, not arrival
		bid(0, 1, 0, 0),     // [0, 10000) touches [10000, 20000): one session
		bid(0, 1, 0, 20001), // more than 10 s after the last: a new session
		bid(0, 2, 0, 5),
		bid(0, 1, 0, 25000),
		bid(0, 1, 0, 24000),
	}
	check(t, Q11(in), []Q11Result{
		{Bidder: 1, BidCount: 2, Start: 0, End: 20000},
		{Bidder: 1, BidCount: 3, Start: 20001, End: 35000},
		{Bidder: 2, BidCount: 1, Start: 5, End: 10005},
	})
}

func TestEmptyInput(t *testing.T) {
	if len(Q0(nil))+len(Q1(nil))+len(Q2(nil))+len(Q3(nil))+len(Q4(nil))+len(Q5(nil))+len(Q7(nil))+len(Q8(nil))+len(Q11(nil)) != 0 {
		t.Fatal("queries over no events produced rows")
	}
}

// On generated data every query finds results, and the results are consistent with each other.
func TestGeneratedStream(t *testing.T) {
	cfg := gen.DefaultConfig()
	cfg.EventsPerSecond = 5_000 // 200k events span 40 s: several windows of each kind
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	events, err := g.AppendEvents(nil, 0, 200_000)
	if err != nil {
		t.Fatal(err)
	}
	numBids := len(Q0(events))
	if numBids != 200_000*46/50 {
		t.Fatalf("q0: %d bids", numBids)
	}
	for name, n := range map[string]int{"q2": len(Q2(events)), "q3": len(Q3(events)), "q4": len(Q4(events)),
		"q5": len(Q5(events)), "q7": len(Q7(events)), "q8": len(Q8(events))} {
		if n == 0 {
			t.Errorf("%s found nothing in generated data", name)
		}
	}
	var sessionBids int64
	for _, s := range Q11(events) {
		sessionBids += s.BidCount
	}
	if sessionBids != int64(numBids) {
		t.Errorf("q11 sessions hold %d bids, want all %d", sessionBids, numBids)
	}
	// Every q5 window that holds bids yields at least one row; windows are 10 s, the stream 40 s.
	windows := map[int64]bool{}
	for _, r := range Q5(events) {
		windows[r.WindowStart] = true
	}
	if len(windows) < 20 {
		t.Errorf("q5: only %d windows", len(windows))
	}
	if q4 := Q4(events); len(q4) != gen.NumCategories {
		t.Errorf("q4: %d categories, want %d: %+v", len(q4), gen.NumCategories, q4)
	}
}
