package ref

import (
	"cmp"
	"slices"

	"github.com/flinkgo/flink/examples/nexmark/gen"
)

// Q5Result is one output row of q5, with its window. Flink's sink keeps only auction and num.
type Q5Result struct {
	// WindowStart and WindowEnd delimit the window [WindowStart, WindowEnd).
	WindowStart, WindowEnd int64
	// Auction is one of the auctions with the most bids in the window.
	Auction int64
	// Num is its number of bids in the window.
	Num int64
}

// Q5 is hot items: in every sliding window of 10 s advancing by 2 s, the auctions with the most
// bids, sorted by CompareQ5.
//
//	SELECT AuctionBids.auction, AuctionBids.num
//	FROM (SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
//	      FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
//	      GROUP BY auction, window_start, window_end) AS AuctionBids
//	JOIN (SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
//	      FROM (<the same per-auction counts>) AS CountBids
//	      GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids
//	ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
//	   AND AuctionBids.num >= MaxBids.maxn
//
// A bid at t belongs to the five windows [s, s+10s) with s a multiple of 2 s and s <= t < s+10s.
// Every window that holds bids yields each auction whose count equals the window's maximum, so
// ties yield several rows.
func Q5(events []gen.Event) []Q5Result {
	type key struct{ start, auction int64 }
	counts := map[key]int64{}
	for _, b := range bids(events) {
		for s := windowStart(b.DateTime, Q5WindowSlide); s > b.DateTime-Q5WindowSize; s -= Q5WindowSlide {
			counts[key{s, b.Auction}]++
		}
	}
	maxn := map[int64]int64{}
	for k, n := range counts {
		maxn[k.start] = max(maxn[k.start], n)
	}
	var out []Q5Result
	for k, n := range counts {
		if n >= maxn[k.start] {
			out = append(out, Q5Result{WindowStart: k.start, WindowEnd: k.start + Q5WindowSize, Auction: k.auction, Num: n})
		}
	}
	slices.SortFunc(out, CompareQ5)
	return out
}

// CompareQ5 orders q5 results by window start, then auction, then count.
func CompareQ5(a, b Q5Result) int {
	return cmp.Or(cmp.Compare(a.WindowStart, b.WindowStart), cmp.Compare(a.WindowEnd, b.WindowEnd),
		cmp.Compare(a.Auction, b.Auction), cmp.Compare(a.Num, b.Num))
}

// Q7Result is one output row of q7: a bid and the end of the window whose maximum it matched.
// Flink's sink keeps auction, bidder, price, dateTime and extra.
type Q7Result struct {
	// Auction, Bidder, Price and DateTime are the bid's.
	Auction, Bidder, Price, DateTime int64
	// Extra is the bid's.
	Extra string
	// WindowEnd is the end of the 10 s window whose highest price the bid matched.
	WindowEnd int64
}

// Q7 is highest bid: for every 10 s tumbling window, the bids whose price is the window's
// highest, sorted by CompareQ7.
//
//	SELECT B.auction, B.bidder, B.price, B.dateTime, B.extra
//	FROM bid B
//	JOIN (SELECT MAX(price) AS maxprice, window_end as dateTime
//	      FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//	      GROUP BY window_start, window_end) B1
//	ON B.price = B1.maxprice
//	WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime
//
// For each window [s, e) that holds bids, with highest price m, every bid with price m and
// s <= dateTime <= e is output. Note the closed upper bound, taken literally from the SQL: a bid
// at exactly e belongs to the next window but is also output for [s, e) if its price equals
// that window's maximum — so a bid can be output twice, once per window. (With generated data
// this edge almost never occurs; a streaming job that only joins a window's own bids differs
// from the SQL exactly there.)
func Q7(events []gen.Event) []Q7Result {
	all := bids(events)
	maxPrice := map[int64]int64{} // by window start
	for _, b := range all {
		s := windowStart(b.DateTime, Q7WindowSize)
		if cur, ok := maxPrice[s]; !ok || b.Price > cur {
			maxPrice[s] = b.Price
		}
	}
	var out []Q7Result
	for _, b := range all {
		// The windows [s, s+size) with s <= t <= s+size: the bid's own and, if it lies exactly
		// on a boundary, the one ending there.
		own := windowStart(b.DateTime, Q7WindowSize)
		starts := []int64{own}
		if own == b.DateTime {
			starts = append(starts, own-Q7WindowSize)
		}
		for _, s := range starts {
			if m, ok := maxPrice[s]; ok && b.Price == m {
				out = append(out, Q7Result{Auction: b.Auction, Bidder: b.Bidder, Price: b.Price,
					DateTime: b.DateTime, Extra: b.Extra, WindowEnd: s + Q7WindowSize})
			}
		}
	}
	slices.SortFunc(out, CompareQ7)
	return out
}

// CompareQ7 orders q7 results by window end, then date, auction, bidder, price and extra.
func CompareQ7(a, b Q7Result) int {
	return cmp.Or(cmp.Compare(a.WindowEnd, b.WindowEnd), cmp.Compare(a.DateTime, b.DateTime),
		cmp.Compare(a.Auction, b.Auction), cmp.Compare(a.Bidder, b.Bidder),
		cmp.Compare(a.Price, b.Price), cmp.Compare(a.Extra, b.Extra))
}

// Q8Result is one output row of q8.
type Q8Result struct {
	// ID is the person's id.
	ID int64
	// Name is the person's name.
	Name string
	// Start is the start of the 10 s window in which they registered and opened an auction.
	Start int64
}

// Q8 is monitor new users: the people who opened an auction in the same 10 s tumbling window in
// which they registered, sorted by CompareQ8.
//
//	SELECT P.id, P.name, P.starttime
//	FROM (SELECT id, name, window_start AS starttime, window_end AS endtime
//	      FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//	      GROUP BY id, name, window_start, window_end) P
//	JOIN (SELECT seller, window_start AS starttime, window_end AS endtime
//	      FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//	      GROUP BY seller, window_start, window_end) A
//	ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime
//
// Both sides are deduplicated by their GROUP BY, so a person yields one row per window however
// many auctions they opened in it. An auction opened in another window (even a millisecond
// before the person's timestamp, which generated data allows) does not match.
func Q8(events []gen.Event) []Q8Result {
	type sellerWindow struct{ seller, start int64 }
	sellers := map[sellerWindow]bool{}
	for i := range events {
		if ev := &events[i]; ev.Kind == gen.AuctionEvent {
			sellers[sellerWindow{ev.Auction.Seller, windowStart(ev.Auction.DateTime, Q8WindowSize)}] = true
		}
	}
	seen := map[Q8Result]bool{}
	var out []Q8Result
	for i := range events {
		ev := &events[i]
		if ev.Kind != gen.PersonEvent {
			continue
		}
		r := Q8Result{ID: ev.Person.ID, Name: ev.Person.Name, Start: windowStart(ev.Person.DateTime, Q8WindowSize)}
		if sellers[sellerWindow{r.ID, r.Start}] && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	slices.SortFunc(out, CompareQ8)
	return out
}

// CompareQ8 orders q8 results by window start, then id, then name.
func CompareQ8(a, b Q8Result) int {
	return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Name, b.Name))
}

// Q11Result is one output row of q11.
type Q11Result struct {
	// Bidder is the person bidding.
	Bidder int64
	// BidCount is the number of bids in the session.
	BidCount int64
	// Start is the first bid's timestamp; End is the last bid's timestamp plus the gap.
	Start, End int64
}

// Q11 is user sessions: each bidder's bids grouped into event-time sessions with a 10 s gap,
// and the number of bids per session, sorted by CompareQ11.
//
//	SELECT B.bidder, count(*) as bid_count,
//	       SESSION_START(B.dateTime, INTERVAL '10' SECOND) as starttime,
//	       SESSION_END(B.dateTime, INTERVAL '10' SECOND) as endtime
//	FROM bid B
//	GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND)
//
// Every bid at t opens a window [t, t+10s); a bidder's windows that overlap or touch merge
// (Flink's TimeWindow.intersects is inclusive), so two consecutive bids belong to the same
// session when they are at most 10 s apart, and a session is [first bid, last bid + 10 s).
func Q11(events []gen.Event) []Q11Result {
	byBidder := map[int64][]int64{}
	for _, b := range bids(events) {
		byBidder[b.Bidder] = append(byBidder[b.Bidder], b.DateTime)
	}
	var out []Q11Result
	for bidder, ts := range byBidder {
		slices.Sort(ts)
		cur := Q11Result{Bidder: bidder, BidCount: 1, Start: ts[0], End: ts[0] + Q11SessionGap}
		for _, t := range ts[1:] {
			if t <= cur.End { // [t, t+gap) touches or overlaps the session
				cur.BidCount++
				cur.End = max(cur.End, t+Q11SessionGap)
				continue
			}
			out = append(out, cur)
			cur = Q11Result{Bidder: bidder, BidCount: 1, Start: t, End: t + Q11SessionGap}
		}
		out = append(out, cur)
	}
	slices.SortFunc(out, CompareQ11)
	return out
}

// CompareQ11 orders q11 results by bidder, then session start, end and count.
func CompareQ11(a, b Q11Result) int {
	return cmp.Or(cmp.Compare(a.Bidder, b.Bidder), cmp.Compare(a.Start, b.Start),
		cmp.Compare(a.End, b.End), cmp.Compare(a.BidCount, b.BidCount))
}
