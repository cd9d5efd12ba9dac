package gen

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flinkgo/flink/network"
	"github.com/vmihailenco/msgpack/v5"
)

func newGen(t testing.TB, mod func(*Config)) *Generator {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func events(t testing.TB, g *Generator, n int64) []Event {
	t.Helper()
	evs, err := g.AppendEvents(nil, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestProportions(t *testing.T) {
	g := newGen(t, nil)
	evs := events(t, g, 50_000)
	var counts [3]int
	for i, ev := range evs {
		counts[ev.Kind]++
		if want := g.Kind(int64(i)); ev.Kind != want {
			t.Fatalf("event %d: kind %v, Kind says %v", i, ev.Kind, want)
		}
		switch off := i % 50; {
		case off == 0 && ev.Kind != PersonEvent,
			off >= 1 && off <= 3 && ev.Kind != AuctionEvent,
			off >= 4 && ev.Kind != BidEvent:
			t.Fatalf("event %d (offset %d in its run of 50) is a %v", i, off, ev.Kind)
		}
	}
	if counts != [3]int{1000, 3000, 46000} {
		t.Fatalf("counts person/auction/bid = %v, want [1000 3000 46000]", counts)
	}
}

func TestCustomProportions(t *testing.T) {
	g := newGen(t, func(c *Config) { c.PersonProportion, c.AuctionProportion, c.BidProportion = 2, 2, 6 })
	var counts [3]int
	for _, ev := range events(t, g, 1000) {
		counts[ev.Kind]++
	}
	if counts != [3]int{200, 200, 600} {
		t.Fatalf("counts = %v, want [200 200 600]", counts)
	}
}

func TestIDRanges(t *testing.T) {
	g := newGen(t, nil)
	cfg := g.Config()
	nextPerson, nextAuction := FirstPersonID, FirstAuctionID
	for i, ev := range events(t, g, 100_000) {
		switch ev.Kind {
		case PersonEvent:
			p := ev.Person
			if p.ID != nextPerson {
				t.Fatalf("event %d: person id %d, want %d", i, p.ID, nextPerson)
			}
			nextPerson++
			if !contains(usStates, p.State) || !contains(usCities, p.City) {
				t.Fatalf("event %d: state %q city %q not from the lists", i, p.State, p.City)
			}
			if len(p.CreditCard) != 19 || strings.Count(p.CreditCard, " ") != 3 {
				t.Fatalf("event %d: credit card %q", i, p.CreditCard)
			}
			if !strings.Contains(p.EmailAddress, "@") || !strings.Contains(p.Name, " ") {
				t.Fatalf("event %d: email %q name %q", i, p.EmailAddress, p.Name)
			}
		case AuctionEvent:
			a := ev.Auction
			if a.ID != nextAuction {
				t.Fatalf("event %d: auction id %d, want %d", i, a.ID, nextAuction)
			}
			nextAuction++
			if a.Category < FirstCategoryID || a.Category >= FirstCategoryID+NumCategories {
				t.Fatalf("event %d: category %d", i, a.Category)
			}
			// Sellers: any of the latest NumActivePeople, up to idLead ahead of the newest.
			if a.Seller < max(FirstPersonID, nextPerson-int64(cfg.NumActivePeople)) || a.Seller >= nextPerson+idLead {
				t.Fatalf("event %d: seller %d outside the active people before %d", i, a.Seller, nextPerson)
			}
			if a.Reserve <= a.InitialBid || a.InitialBid < 100 || a.InitialBid > 100_000_000 {
				t.Fatalf("event %d: initial bid %d reserve %d", i, a.InitialBid, a.Reserve)
			}
			if a.Expires <= a.DateTime {
				t.Fatalf("event %d: expires %d not after %d", i, a.Expires, a.DateTime)
			}
		case BidEvent:
			b := ev.Bid
			if b.Auction < max(FirstAuctionID, nextAuction-1-int64(cfg.NumInFlightAuctions)) || b.Auction >= nextAuction+idLead {
				t.Fatalf("event %d: auction %d outside the in-flight auctions before %d", i, b.Auction, nextAuction)
			}
			if b.Bidder < max(FirstPersonID, nextPerson-int64(cfg.NumActivePeople)) || b.Bidder >= nextPerson+idLead {
				t.Fatalf("event %d: bidder %d outside the active people before %d", i, b.Bidder, nextPerson)
			}
			if b.Price < 100 || b.Price > 100_000_000 {
				t.Fatalf("event %d: price %d", i, b.Price)
			}
			if b.Channel == "" || !strings.HasPrefix(b.URL, "https://www.nexmark.com/") {
				t.Fatalf("event %d: channel %q url %q", i, b.Channel, b.URL)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestAverageSizes(t *testing.T) {
	g := newGen(t, nil)
	var sum, n [3]float64
	for _, ev := range events(t, g, 100_000) {
		var size int
		switch ev.Kind {
		case PersonEvent:
			p := ev.Person
			size = 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State) + len(p.Extra)
		case AuctionEvent:
			a := ev.Auction
			size = 8 + len(a.ItemName) + len(a.Description) + 40 + len(a.Extra)
		case BidEvent:
			size = 32 + len(ev.Bid.Extra)
		}
		sum[ev.Kind] += float64(size)
		n[ev.Kind]++
	}
	for k, want := range []float64{200, 500, 100} {
		if avg := sum[k] / n[k]; math.Abs(avg-want) > want*0.02 {
			t.Errorf("%v: average size %.1f, want about %v", EventKind(k), avg, want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := events(t, newGen(t, nil), 5000)
	b := events(t, newGen(t, nil), 5000)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("event %d differs between two generators: %+v vs %+v", i, a[i], b[i])
		}
	}
	c := events(t, newGen(t, func(c *Config) { c.Seed = 7 }), 5000)
	same := 0
	for i := range a {
		if a[i].Kind == BidEvent && a[i] == c[i] {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("seed 7 reproduced %d bids of seed 0", same)
	}
}

// Any split of the numbers, generated concurrently from one Generator, yields the same events.
func TestSplitIndependence(t *testing.T) {
	g := newGen(t, nil)
	const n = 20_000
	want := events(t, g, n)
	for _, p := range []int64{1, 3, 4, 7} {
		strided := make([]Event, n)
		ranged := make([]Event, n)
		var wg sync.WaitGroup
		for k := range p {
			wg.Go(func() { // subtask k of p takes k, k+p, ...
				for i := k; i < n; i += p {
					if err := g.Next(i, &strided[i]); err != nil {
						t.Error(err)
					}
				}
			})
			wg.Go(func() { // subtask k of p takes a contiguous range
				from, to := n*k/p, n*(k+1)/p
				for i := from; i < to; i++ {
					if err := g.Next(i, &ranged[i]); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		for i := range want {
			if strided[i] != want[i] || ranged[i] != want[i] {
				t.Fatalf("p=%d: event %d differs from the sequential run", p, i)
			}
		}
	}
}

// Next overwrites every field, so a reused Event carries nothing over.
func TestNextOverwrites(t *testing.T) {
	g := newGen(t, nil)
	var reused, fresh Event
	for i := range int64(200) {
		if err := g.Next(i, &reused); err != nil {
			t.Fatal(err)
		}
		fresh = Event{}
		if err := g.Next(i, &fresh); err != nil {
			t.Fatal(err)
		}
		if reused != fresh {
			t.Fatalf("event %d: reused %+v, fresh %+v", i, reused, fresh)
		}
	}
}

func TestHotAuctionSkew(t *testing.T) {
	g := newGen(t, nil)
	var bids, hot, hotBidder float64
	perAuction := map[int64]int{}
	for _, ev := range events(t, g, 200_000) {
		if ev.Kind != BidEvent {
			continue
		}
		bids++
		perAuction[ev.Bid.Auction]++
		if (ev.Bid.Auction-FirstAuctionID)%hotRatio == 0 {
			hot++
		}
		if (ev.Bid.Bidder-FirstPersonID)%hotRatio == 1 {
			hotBidder++
		}
	}
	// Hot with probability 1 - 1/2; a random auction is also a multiple of 100 about 1% of
	// the time.
	if f := hot / bids; f < 0.49 || f > 0.52 {
		t.Errorf("fraction of bids on hot auctions = %.3f, want about 0.505", f)
	}
	if f := hotBidder / bids; f < 0.74 || f > 0.77 {
		t.Errorf("fraction of bids by hot bidders = %.3f, want about 0.7525", f)
	}
	// The top auction (a hot one) gets far more bids than an average auction.
	top := 0
	for _, c := range perAuction {
		top = max(top, c)
	}
	if avg := bids / float64(len(perAuction)); float64(top) < 20*avg {
		t.Errorf("top auction has %d bids, average %.1f: no skew", top, avg)
	}
}

func TestTimestamps(t *testing.T) {
	g := newGen(t, func(c *Config) { c.DelayProbability = 0 })
	base := g.Config().BaseTime
	for _, i := range []int64{0, 1, 9_999, 10_000, 10_000_000, 123_456_789, MaxEventNumber} {
		want := base + i/10_000 // 10 M events/s: 10,000 per ms
		if got := g.EventTimestamp(i); got != want {
			t.Errorf("EventTimestamp(%d) = %d, want %d", i, got, want)
		}
	}
	g = newGen(t, func(c *Config) { c.EventsPerSecond = 3 })
	for i, want := range []int64{0, 333, 666, 1000, 1333} {
		if got := g.EventTimestamp(int64(i)) - base; got != want {
			t.Errorf("3 events/s: event %d at +%d ms, want +%d", i, got, want)
		}
	}
}

func TestOutOfOrdernessBound(t *testing.T) {
	for _, tc := range []struct {
		name  string
		maxOO time.Duration
		rate  int64
	}{
		{"default", 4 * time.Second, 10_000_000},
		{"slow rate", 4 * time.Second, 1000},
		{"100ms", 100 * time.Millisecond, 100_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGen(t, func(c *Config) { c.MaxOutOfOrderness, c.EventsPerSecond = tc.maxOO, tc.rate })
			bound := int64(tc.maxOO / time.Millisecond)
			maxTs := int64(math.MinInt64)
			var delayed, n, worst int64
			const count = 300_000
			for i := range int64(count) {
				var ev Event
				if err := g.Next(i, &ev); err != nil {
					t.Fatal(err)
				}
				ts := ev.Timestamp()
				if ts != g.EventTimestamp(i) {
					t.Fatalf("event %d: Timestamp %d, EventTimestamp %d", i, ts, g.EventTimestamp(i))
				}
				if ts <= g.Watermark(i) {
					t.Fatalf("event %d at %d is at or below Watermark(%d) = %d", i, ts, i, g.Watermark(i))
				}
				if i > 0 && ts <= g.Watermark(i-1)-1 {
					t.Fatalf("Watermark not monotone")
				}
				if i > 0 {
					worst = max(worst, maxTs-ts)
				}
				maxTs = max(maxTs, ts)
				if ts < g.nominal(i) {
					delayed++
				}
				n++
			}
			if worst > bound {
				t.Fatalf("an event is %d ms behind the maximum so far, bound %d", worst, bound)
			}
			if worst < bound/2 {
				t.Errorf("worst out-of-orderness %d ms, expected close to %d", worst, bound)
			}
			if f := float64(delayed) / float64(n); f < 0.09 || f > 0.11 {
				t.Errorf("fraction delayed %.3f, want about 0.1", f)
			}
		})
	}
}

func TestInOrderWithoutDelay(t *testing.T) {
	g := newGen(t, func(c *Config) { c.MaxOutOfOrderness = 0 })
	prev := int64(math.MinInt64)
	for i := range int64(100_000) {
		ts := g.EventTimestamp(i)
		if ts < prev {
			t.Fatalf("event %d at %d before event %d at %d", i, ts, i-1, prev)
		}
		prev = ts
	}
}

func TestMsgpackRoundTrip(t *testing.T) {
	g := newGen(t, nil)
	for _, ev := range events(t, g, 200) {
		b, err := msgpack.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		var got Event
		got.Bid.Price = 42 // stale data must be cleared
		if err := msgpack.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got != ev {
			t.Fatalf("round trip of %v: got %+v, want %+v", ev.Kind, got, ev)
		}
	}
	// Records on their own, and inside other types, also round-trip.
	type wrapper struct {
		B  Bid
		As []Auction
	}
	evs := events(t, g, 4)
	in := wrapper{B: Bid{Auction: 1, Bidder: 2, Price: 3, Channel: "c", URL: "u", DateTime: 4, Extra: "x"}, As: []Auction{evs[1].Auction}}
	b, err := msgpack.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out wrapper
	if err := msgpack.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.B != in.B || len(out.As) != 1 || out.As[0] != in.As[0] {
		t.Fatalf("wrapper round trip: got %+v, want %+v", out, in)
	}
}

// Events cross TaskManagers through the network stack's msgpack codec.
func TestNetworkCodecRoundTrip(t *testing.T) {
	g := newGen(t, nil)
	codec := network.NewMsgpackCodec[Event]()
	var buf []byte
	for _, ev := range events(t, g, 100) {
		var err error
		if buf, err = codec.Encode(buf[:0], &ev); err != nil {
			t.Fatal(err)
		}
		var got Event
		if err := codec.Decode(buf, &got); err != nil {
			t.Fatal(err)
		}
		if got != ev {
			t.Fatalf("got %+v, want %+v", got, ev)
		}
	}
}

func TestMsgpackRejectsGarbage(t *testing.T) {
	for name, v := range map[string]any{
		"unknown kind":    []any{7, []any{}},
		"short event":     []any{2},
		"short bid":       []any{2, []any{1, 2, 3}},
		"wrong type":      []any{2, []any{"a", 2, 3, "c", "u", 4, "x"}},
		"not an array":    "bid",
		"person as array": []any{0, []any{1, "n"}},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		if err := msgpack.Unmarshal(b, &ev); err == nil {
			t.Errorf("%s: decoded %+v without error", name, ev)
		}
	}
	bad := Event{Kind: 9}
	if _, err := msgpack.Marshal(&bad); err == nil {
		t.Error("encoding an unknown kind succeeded")
	}
}

func TestNextRejectsBadNumbers(t *testing.T) {
	g := newGen(t, nil)
	var ev Event
	for _, i := range []int64{-1, MaxEventNumber + 1, math.MinInt64} {
		if err := g.Next(i, &ev); !errors.Is(err, ErrEventNumber) {
			t.Errorf("Next(%d) = %v, want ErrEventNumber", i, err)
		}
	}
	if _, err := g.AppendEvents(nil, -3, 2); !errors.Is(err, ErrEventNumber) {
		t.Errorf("AppendEvents(-3, 2) = %v, want ErrEventNumber", err)
	}
}

func TestNextDoesNotAllocate(t *testing.T) {
	g := newGen(t, nil)
	var ev Event
	i := int64(0)
	allocs := testing.AllocsPerRun(10_000, func() {
		_ = g.Next(i, &ev)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Next allocates %.2f times per event", allocs)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"zero rate", func(c *Config) { c.EventsPerSecond = 0 }, "EventsPerSecond"},
		{"negative delay", func(c *Config) { c.MaxOutOfOrderness = -time.Second }, "MaxOutOfOrderness"},
		{"sub-ms delay", func(c *Config) { c.MaxOutOfOrderness = 1500 * time.Microsecond }, "whole milliseconds"},
		{"probability", func(c *Config) { c.DelayProbability = 1.5 }, "DelayProbability"},
		{"NaN probability", func(c *Config) { c.DelayProbability = math.NaN() }, "DelayProbability"},
		{"proportion", func(c *Config) { c.AuctionProportion = 0 }, "proportions"},
		{"size", func(c *Config) { c.AvgBidByteSize = 1 << 20 }, "AvgBidByteSize"},
		{"hot ratio", func(c *Config) { c.HotAuctionRatio = 0 }, "hot ratios"},
		{"in flight", func(c *Config) { c.NumInFlightAuctions = -1 }, "NumInFlightAuctions"},
		{"active people", func(c *Config) { c.NumActivePeople = 0 }, "NumActivePeople"},
		{"zero config", func(c *Config) { *c = Config{} }, "EventsPerSecond"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
			if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestSmallAverageSizes(t *testing.T) {
	// Sizes below the fixed fields give empty Extra fields, not errors.
	g := newGen(t, func(c *Config) { c.AvgPersonByteSize, c.AvgAuctionByteSize, c.AvgBidByteSize = 0, 0, 0 })
	for _, ev := range events(t, g, 100) {
		if ev.Person.Extra != "" || ev.Auction.Extra != "" || ev.Bid.Extra != "" {
			t.Fatalf("non-empty extra in %+v", ev)
		}
	}
}
