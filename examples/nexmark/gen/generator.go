package gen

import (
	"fmt"
	"time"
)

// Generator produces the Nexmark event stream for one Config. It is immutable and safe for
// concurrent use: any number of goroutines may call Next with any event numbers.
type Generator struct {
	cfg      Config
	t        *tables
	persons  int64 // PersonProportion
	auctions int64 // AuctionProportion
	total    int64 // sum of the proportions
	rate     int64 // EventsPerSecond
	maxDelay int64 // ms an event may be moved back; 0 when no event is delayed
	// horizonEvents is how many events pass until NumInFlightAuctions more auctions exist; an
	// auction lasts on average as long as they take.
	horizonEvents int64
}

// New returns a generator for cfg, or an error wrapping ErrInvalidConfig.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		cfg:      cfg,
		t:        sharedTables(),
		persons:  int64(cfg.PersonProportion),
		auctions: int64(cfg.AuctionProportion),
		total:    int64(cfg.PersonProportion + cfg.AuctionProportion + cfg.BidProportion),
		rate:     cfg.EventsPerSecond,
	}
	if cfg.DelayProbability > 0 {
		g.maxDelay = int64(cfg.MaxOutOfOrderness / time.Millisecond)
	}
	g.horizonEvents = int64(cfg.NumInFlightAuctions) * g.total / g.auctions
	return g, nil
}

// Config returns the generator's configuration.
func (g *Generator) Config() Config { return g.cfg }

// Kind returns the kind of event i (i must not be negative).
func (g *Generator) Kind(i int64) EventKind {
	switch rem := i % g.total; {
	case rem < g.persons:
		return PersonEvent
	case rem < g.persons+g.auctions:
		return AuctionEvent
	default:
		return BidEvent
	}
}

// nominal is the undelayed timestamp of event i: BaseTime + i*1000/rate without overflow.
func (g *Generator) nominal(i int64) int64 {
	return g.cfg.BaseTime + i/g.rate*1000 + i%g.rate*1000/g.rate
}

// delay draws the first values of event i's stream: how far its timestamp is moved back.
func (g *Generator) delay(r *rng) int64 {
	delayed := r.float64() < g.cfg.DelayProbability
	d := int64(0)
	if g.maxDelay > 0 {
		d = 1 + r.intn(g.maxDelay)
	}
	if !delayed {
		return 0
	}
	return d
}

// EventTimestamp returns the timestamp of event i (its record's DateTime) in milliseconds since
// the Unix epoch, without generating the rest of the event. i must be in [0, MaxEventNumber].
func (g *Generator) EventTimestamp(i int64) int64 {
	r := newRNG(g.cfg.Seed, i)
	return g.nominal(i) - g.delay(&r)
}

// Watermark returns the watermark a source may emit once every event it will still emit is
// numbered next or higher: no such event has a timestamp at or below it (Flink's watermark
// contract). It is the nominal timestamp of next minus the largest delay, minus 1.
func (g *Generator) Watermark(next int64) int64 {
	return g.nominal(next) - g.maxDelay - 1
}

// Next fills *ev with event i, overwriting all of it. It does not allocate; the strings it sets
// share immutable tables. It fails with ErrEventNumber if i is outside [0, MaxEventNumber].
func (g *Generator) Next(i int64, ev *Event) error {
	if i < 0 || i > MaxEventNumber {
		return fmt.Errorf("%w: %d is not in [0, %d]", ErrEventNumber, i, MaxEventNumber)
	}
	r := newRNG(g.cfg.Seed, i)
	ts := g.nominal(i) - g.delay(&r)
	switch g.Kind(i) {
	case PersonEvent:
		*ev = Event{Kind: PersonEvent}
		g.person(i, ts, &r, &ev.Person)
	case AuctionEvent:
		*ev = Event{Kind: AuctionEvent}
		g.auction(i, ts, &r, &ev.Auction)
	default:
		*ev = Event{Kind: BidEvent}
		g.bid(i, ts, &r, &ev.Bid)
	}
	return nil
}

// AppendEvents appends events from to to-1 to dst.
func (g *Generator) AppendEvents(dst []Event, from, to int64) ([]Event, error) {
	if from < 0 || to-1 > MaxEventNumber {
		return dst, fmt.Errorf("%w: [%d, %d) is not within [0, %d]", ErrEventNumber, from, to, MaxEventNumber)
	}
	for i := from; i < to; i++ {
		dst = append(dst, Event{})
		if err := g.Next(i, &dst[len(dst)-1]); err != nil {
			return dst[:len(dst)-1], err
		}
	}
	return dst, nil
}

func (g *Generator) person(i, ts int64, r *rng, p *Person) {
	t := g.t
	p.ID = g.lastBase0PersonID(i) + FirstPersonID
	p.Name = t.names[r.intn(int64(len(t.names)))]
	p.EmailAddress = t.emails[r.intn(numEmails)]
	p.CreditCard = t.creditCard(r.intn(numCards))
	p.City = usCities[r.intn(int64(len(usCities)))]
	p.State = usStates[r.intn(int64(len(usStates)))]
	p.DateTime = ts
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State)
	p.Extra = t.nextExtra(r, size, g.cfg.AvgPersonByteSize)
}

func (g *Generator) auction(i, ts int64, r *rng, a *Auction) {
	t := g.t
	a.ID = g.lastBase0AuctionID(i) + FirstAuctionID
	if r.intn(int64(g.cfg.HotSellersRatio)) > 0 {
		a.Seller = g.lastBase0PersonID(i) / hotRatio * hotRatio // first of the latest batch
	} else {
		a.Seller = g.nextBase0PersonID(i, r)
	}
	a.Seller += FirstPersonID
	a.Category = FirstCategoryID + r.intn(NumCategories)
	a.InitialBid = r.price()
	a.DateTime = ts
	horizon := g.nominal(i+g.horizonEvents) - g.nominal(i)
	a.Expires = ts + 1 + r.intn(max(2*horizon, 1))
	a.ItemName = t.nextText(r, 20)
	a.Description = t.nextText(r, 100)
	a.Reserve = a.InitialBid + r.price()
	size := 8 + len(a.ItemName) + len(a.Description) + 8 + 8 + 8 + 8 + 8
	a.Extra = t.nextExtra(r, size, g.cfg.AvgAuctionByteSize)
}

func (g *Generator) bid(i, ts int64, r *rng, b *Bid) {
	t := g.t
	if r.intn(int64(g.cfg.HotAuctionRatio)) > 0 {
		b.Auction = g.lastBase0AuctionID(i) / hotRatio * hotRatio // first of the latest batch
	} else {
		b.Auction = g.nextBase0AuctionID(i, r)
	}
	b.Auction += FirstAuctionID
	if r.intn(int64(g.cfg.HotBiddersRatio)) > 0 {
		// The second of the latest batch, so that hot bidders and hot sellers differ.
		b.Bidder = g.lastBase0PersonID(i)/hotRatio*hotRatio + 1
	} else {
		b.Bidder = g.nextBase0PersonID(i, r)
	}
	b.Bidder += FirstPersonID
	b.Price = r.price()
	if r.intn(2) > 0 { // Nexmark's HOT_CHANNELS_RATIO
		k := r.intn(int64(len(hotChannel)))
		b.Channel, b.URL = hotChannel[k], t.hotURLs[k]
	} else {
		k := r.intn(numChannels)
		b.Channel, b.URL = t.channels[k], t.channelURLs[k]
	}
	b.DateTime = ts
	b.Extra = t.nextExtra(r, 8+8+8+8, g.cfg.AvgBidByteSize)
}

// lastBase0PersonID is the id, counted from 0, of the latest person created at or before event
// i (i's own id if i is a person). Event 0 is a person, so it is never negative.
func (g *Generator) lastBase0PersonID(i int64) int64 {
	epoch, off := i/g.total, i%g.total
	if off >= g.persons {
		off = g.persons - 1
	}
	return epoch*g.persons + off
}

// lastBase0AuctionID is the id, counted from 0, of the latest auction created at or before
// event i (i's own id if i is an auction); -1 before the first auction.
func (g *Generator) lastBase0AuctionID(i int64) int64 {
	epoch, off := i/g.total, i%g.total
	switch {
	case off < g.persons: // a person: the last auction of the previous run
		epoch--
		off = g.auctions - 1
	case off >= g.persons+g.auctions: // a bid: the last auction of this run
		off = g.auctions - 1
	default:
		off -= g.persons
	}
	return epoch*g.auctions + off
}

// nextBase0PersonID picks a random person among the latest NumActivePeople, or up to idLead
// not created yet (so that some auctions and bids seem to precede their person).
func (g *Generator) nextBase0PersonID(i int64, r *rng) int64 {
	numPeople := g.lastBase0PersonID(i) + 1
	active := min(numPeople, int64(g.cfg.NumActivePeople))
	return numPeople - active + r.intn(active+idLead)
}

// nextBase0AuctionID picks a random auction among the latest NumInFlightAuctions, or up to
// idLead not created yet.
func (g *Generator) nextBase0AuctionID(i int64, r *rng) int64 {
	maxID := g.lastBase0AuctionID(i)
	minID := max(maxID-int64(g.cfg.NumInFlightAuctions), 0)
	return minID + r.intn(maxID-minID+1+idLead)
}
