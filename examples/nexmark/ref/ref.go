package ref

import (
	"cmp"
	"slices"

	"github.com/flinkgo/flink/examples/nexmark/gen"
)

// Window sizes of the windowed queries, in milliseconds.
const (
	// Q5WindowSize and Q5WindowSlide are q5's HOP window: 10 s every 2 s.
	Q5WindowSize  int64 = 10_000
	Q5WindowSlide int64 = 2_000
	// Q7WindowSize is q7's TUMBLE window.
	Q7WindowSize int64 = 10_000
	// Q8WindowSize is q8's TUMBLE window.
	Q8WindowSize int64 = 10_000
	// Q11SessionGap is q11's SESSION gap.
	Q11SessionGap int64 = 10_000
)

// Q2Modulus is q2's selector: bids on auctions whose id is a multiple of it.
const Q2Modulus = 123

// windowStart returns the start of the epoch-aligned window of size size holding ts
// (floor(ts/size)*size, also for negative ts).
func windowStart(ts, size int64) int64 {
	m := ts % size
	if m < 0 {
		m += size
	}
	return ts - m
}

func bids(events []gen.Event) []gen.Bid {
	var out []gen.Bid
	for i := range events {
		if events[i].Kind == gen.BidEvent {
			out = append(out, events[i].Bid)
		}
	}
	return out
}

// Q0 is the pass-through query: every bid, unchanged, in input order.
//
//	SELECT auction, bidder, price, dateTime, extra FROM bid
//
// The SQL sink drops channel and url; the reference keeps whole bids, so compare whole bids or
// only those five fields consistently.
func Q0(events []gen.Event) []gen.Bid {
	return bids(events)
}

// Q1 is currency conversion: every bid, in input order, with its price converted from dollars
// to euros as Price*908/1000 (integer division, truncating).
//
//	SELECT auction, bidder, 0.908 * price as price, dateTime, extra FROM bid
//
// The SQL yields DECIMAL(23, 3), exactly Price*908 thousandths; this reference, like the
// streaming job it checks, keeps an int64 and truncates the fraction.
func Q1(events []gen.Event) []gen.Bid {
	out := bids(events)
	for i := range out {
		out[i].Price = Q1Price(out[i].Price)
	}
	return out
}

// Q1Price converts a price in dollar cents to euro cents as q1 does.
func Q1Price(dollars int64) int64 { return dollars * 908 / 1000 }

// Q2Result is one output row of q2.
type Q2Result struct {
	// Auction is the auction bid on.
	Auction int64
	// Price is the bid's price.
	Price int64
}

// Q2 is selection: (auction, price) of every bid on an auction whose id is a multiple of 123,
// sorted by CompareQ2.
//
//	SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
func Q2(events []gen.Event) []Q2Result {
	var out []Q2Result
	for _, b := range bids(events) {
		if b.Auction%Q2Modulus == 0 {
			out = append(out, Q2Result{Auction: b.Auction, Price: b.Price})
		}
	}
	slices.SortFunc(out, CompareQ2)
	return out
}

// CompareQ2 orders q2 results by auction, then price.
func CompareQ2(a, b Q2Result) int {
	return cmp.Or(cmp.Compare(a.Auction, b.Auction), cmp.Compare(a.Price, b.Price))
}

// Q3Result is one output row of q3.
type Q3Result struct {
	// Name, City and State are the seller's.
	Name, City, State string
	// ID is the auction's id.
	ID int64
}

// Q3 is local item suggestion: who sells in category 10 and lives in OR, ID or CA, and which
// auctions. The result is sorted by CompareQ3.
//
//	SELECT P.name, P.city, P.state, A.id
//	FROM auction AS A INNER JOIN person AS P on A.seller = P.id
//	WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')
//
// It is an unwindowed (incremental) inner join: Flink keeps both sides in keyed state forever
// and emits a row whenever an auction and a matching person have both arrived, in either order,
// so the final output is one row per matching (auction, person) pair regardless of timestamps or
// arrival order. An auction whose seller never appears yields nothing.
func Q3(events []gen.Event) []Q3Result {
	people := map[int64][]gen.Person{} // by id; the generator never repeats an id, the SQL allows it
	for i := range events {
		if ev := &events[i]; ev.Kind == gen.PersonEvent {
			switch ev.Person.State {
			case "OR", "ID", "CA":
				people[ev.Person.ID] = append(people[ev.Person.ID], ev.Person)
			}
		}
	}
	var out []Q3Result
	for i := range events {
		ev := &events[i]
		if ev.Kind != gen.AuctionEvent || ev.Auction.Category != 10 {
			continue
		}
		for _, p := range people[ev.Auction.Seller] {
			out = append(out, Q3Result{Name: p.Name, City: p.City, State: p.State, ID: ev.Auction.ID})
		}
	}
	slices.SortFunc(out, CompareQ3)
	return out
}

// CompareQ3 orders q3 results by auction id, then name, city and state.
func CompareQ3(a, b Q3Result) int {
	return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.City, b.City), cmp.Compare(a.State, b.State))
}

// Q4Result is one output row of q4.
type Q4Result struct {
	// Category is the auction category.
	Category int64
	// Avg is the average winning price in the category, truncated to an integer as SQL AVG
	// over BIGINT does.
	Avg int64
}

// Q4 is the average price per category of the auctions' winning bids, sorted by category.
//
//	SELECT Q.category, AVG(Q.final)
//	FROM (
//	    SELECT MAX(B.price) AS final, A.category
//	    FROM auction A, bid B
//	    WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
//	    GROUP BY A.id, A.category
//	) Q
//	GROUP BY Q.category
//
// An auction's winning price is the highest price among the bids on it whose timestamp lies in
// [auction.DateTime, auction.Expires], both ends included; auctions without such a bid do not
// count. The per-category average is the sum of the winning prices divided by their number in
// integer arithmetic (Flink's AVG(BIGINT) returns BIGINT). The join and both aggregations are
// unwindowed, so Flink's final (retract-updated) result is this computation over all events.
// Flink's SQL does not require the price to reach the reserve; Q4Reserve does, as the original
// Nexmark definition.
func Q4(events []gen.Event) []Q4Result {
	return q4(events, false)
}

// Q4Reserve is Q4 with the original Nexmark (and Apache Beam) winning-bid rule: only bids whose
// price is at least the auction's reserve can win.
func Q4Reserve(events []gen.Event) []Q4Result {
	return q4(events, true)
}

func q4(events []gen.Event, reserve bool) []Q4Result {
	type key struct{ id, category int64 }
	auctions := map[int64][]gen.Auction{}
	for i := range events {
		if ev := &events[i]; ev.Kind == gen.AuctionEvent {
			auctions[ev.Auction.ID] = append(auctions[ev.Auction.ID], ev.Auction)
		}
	}
	final := map[key]int64{} // MAX(price) per (auction id, category)
	for _, b := range bids(events) {
		for _, a := range auctions[b.Auction] {
			if b.DateTime < a.DateTime || b.DateTime > a.Expires || (reserve && b.Price < a.Reserve) {
				continue
			}
			k := key{a.ID, a.Category}
			if cur, ok := final[k]; !ok || b.Price > cur {
				final[k] = b.Price
			}
		}
	}
	type acc struct{ sum, n int64 }
	perCategory := map[int64]acc{}
	for k, price := range final {
		a := perCategory[k.category]
		perCategory[k.category] = acc{a.sum + price, a.n + 1}
	}
	out := make([]Q4Result, 0, len(perCategory))
	for c, a := range perCategory {
		out = append(out, Q4Result{Category: c, Avg: a.sum / a.n})
	}
	slices.SortFunc(out, CompareQ4)
	return out
}

// CompareQ4 orders q4 results by category, then average.
func CompareQ4(a, b Q4Result) int {
	return cmp.Or(cmp.Compare(a.Category, b.Category), cmp.Compare(a.Avg, b.Avg))
}
