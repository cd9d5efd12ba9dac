package gen

import (
	"errors"
	"fmt"
	"time"
)

// Constants of the Nexmark model, as in the Flink benchmark's GeneratorConfig.
const (
	// FirstPersonID is the id of the first person; ids start high so that even small streams
	// join.
	FirstPersonID int64 = 1000
	// FirstAuctionID is the id of the first auction.
	FirstAuctionID int64 = 1000
	// FirstCategoryID is the lowest auction category; categories are FirstCategoryID to
	// FirstCategoryID+NumCategories-1.
	FirstCategoryID int64 = 10
	// NumCategories is the number of auction categories.
	NumCategories = 5

	// hotRatio: hot sellers, bidders and auctions are the first (bidders: second) of each batch
	// of this many people or auctions.
	hotRatio = 100
	// idLead is how many not-yet-created people or auctions a random choice may reach ahead.
	idLead = 10
)

// MaxEventNumber is the largest event number Next accepts: about 3.5 years of events at 10 M
// events/s, and small enough that no timestamp or id overflows.
const MaxEventNumber int64 = 1 << 50

// maxAvgByteSize bounds the average sizes, so that Extra padding fits the pre-built tables.
const maxAvgByteSize = 64 << 10

// ErrInvalidConfig is wrapped by the errors Config.Validate returns.
var ErrInvalidConfig = errors.New("nexmark: invalid generator config")

// ErrEventNumber is returned for an event number outside [0, MaxEventNumber].
var ErrEventNumber = errors.New("nexmark: event number out of range")

// Config parameterizes the generator. DefaultConfig gives the Flink benchmark's defaults; a zero
// Config is invalid.
type Config struct {
	// Seed selects the pseudo-random stream. Two generators with the same Config produce the
	// same events.
	Seed uint64

	// BaseTime is the nominal timestamp of event 0, in milliseconds since the Unix epoch.
	BaseTime int64
	// EventsPerSecond is the overall event rate in event time: event i nominally happens
	// i/EventsPerSecond seconds after BaseTime (the benchmark's "first-event.rate").
	EventsPerSecond int64
	// MaxOutOfOrderness bounds how far back a delayed event's timestamp is moved, in whole
	// milliseconds; 0 produces timestamps in event-number order.
	MaxOutOfOrderness time.Duration
	// DelayProbability is the fraction of events that are delayed, in [0, 1] (Nexmark's
	// probDelayedEvent).
	DelayProbability float64

	// PersonProportion, AuctionProportion and BidProportion are the shares of each kind in every
	// run of PersonProportion+AuctionProportion+BidProportion events.
	PersonProportion  int
	AuctionProportion int
	BidProportion     int

	// AvgPersonByteSize, AvgAuctionByteSize and AvgBidByteSize are the idealized average event
	// sizes the Extra fields pad to (each at most 64 KiB).
	AvgPersonByteSize  int
	AvgAuctionByteSize int
	AvgBidByteSize     int

	// HotAuctionRatio: a bid goes to a hot auction with probability 1 - 1/HotAuctionRatio.
	HotAuctionRatio int
	// HotSellersRatio: an auction is by a hot seller with probability 1 - 1/HotSellersRatio.
	HotSellersRatio int
	// HotBiddersRatio: a bid is by a hot bidder with probability 1 - 1/HotBiddersRatio.
	HotBiddersRatio int

	// NumInFlightAuctions is how many of the latest auctions a non-hot bid may go to; it also
	// sets the average auction length.
	NumInFlightAuctions int
	// NumActivePeople is how many of the latest people may be chosen as non-hot sellers and
	// bidders.
	NumActivePeople int
}

// DefaultConfig returns the Flink Nexmark benchmark's defaults: 10 M events/s (the benchmark
// suites' rate), the 1:3:46 proportion, 200/500/100-byte people/auctions/bids, hot ratios 2 (auctions),
// 4 (sellers) and 4 (bidders), 100 auctions in flight, 1000 active people, and 10% of events
// delayed by up to 4 s, the out-of-orderness the benchmark's watermark allows. BaseTime is a
// fixed instant (2024-01-01T00:00:00Z) so that runs are reproducible.
func DefaultConfig() Config {
	return Config{
		BaseTime:            1704067200000,
		EventsPerSecond:     10_000_000,
		MaxOutOfOrderness:   4 * time.Second,
		DelayProbability:    0.1,
		PersonProportion:    1,
		AuctionProportion:   3,
		BidProportion:       46,
		AvgPersonByteSize:   200,
		AvgAuctionByteSize:  500,
		AvgBidByteSize:      100,
		HotAuctionRatio:     2,
		HotSellersRatio:     4,
		HotBiddersRatio:     4,
		NumInFlightAuctions: 100,
		NumActivePeople:     1000,
	}
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig. It has no side effects.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	const timeLimit = 1 << 60
	switch {
	case c.BaseTime < -timeLimit || c.BaseTime > timeLimit:
		return bad("BaseTime %d is outside ±2^60 ms", c.BaseTime)
	case c.EventsPerSecond <= 0 || c.EventsPerSecond > 1<<40:
		return bad("EventsPerSecond must be in [1, 2^40], got %d", c.EventsPerSecond)
	case c.MaxOutOfOrderness < 0:
		return bad("MaxOutOfOrderness must not be negative, got %v", c.MaxOutOfOrderness)
	case c.MaxOutOfOrderness%time.Millisecond != 0:
		return bad("MaxOutOfOrderness must be whole milliseconds, got %v", c.MaxOutOfOrderness)
	case c.MaxOutOfOrderness > 24*time.Hour:
		return bad("MaxOutOfOrderness must be at most 24h, got %v", c.MaxOutOfOrderness)
	case !(c.DelayProbability >= 0 && c.DelayProbability <= 1):
		return bad("DelayProbability must be in [0, 1], got %v", c.DelayProbability)
	case c.PersonProportion <= 0 || c.AuctionProportion <= 0 || c.BidProportion <= 0:
		return bad("proportions must be positive, got person %d, auction %d, bid %d",
			c.PersonProportion, c.AuctionProportion, c.BidProportion)
	case c.PersonProportion+c.AuctionProportion+c.BidProportion > 1<<20:
		return bad("proportions must sum to at most 2^20, got %d",
			c.PersonProportion+c.AuctionProportion+c.BidProportion)
	case c.AvgPersonByteSize < 0 || c.AvgPersonByteSize > maxAvgByteSize:
		return bad("AvgPersonByteSize must be in [0, %d], got %d", maxAvgByteSize, c.AvgPersonByteSize)
	case c.AvgAuctionByteSize < 0 || c.AvgAuctionByteSize > maxAvgByteSize:
		return bad("AvgAuctionByteSize must be in [0, %d], got %d", maxAvgByteSize, c.AvgAuctionByteSize)
	case c.AvgBidByteSize < 0 || c.AvgBidByteSize > maxAvgByteSize:
		return bad("AvgBidByteSize must be in [0, %d], got %d", maxAvgByteSize, c.AvgBidByteSize)
	case c.HotAuctionRatio <= 0 || c.HotSellersRatio <= 0 || c.HotBiddersRatio <= 0:
		return bad("hot ratios must be positive, got auction %d, sellers %d, bidders %d",
			c.HotAuctionRatio, c.HotSellersRatio, c.HotBiddersRatio)
	case c.NumInFlightAuctions <= 0:
		return bad("NumInFlightAuctions must be positive, got %d", c.NumInFlightAuctions)
	case c.NumActivePeople <= 0:
		return bad("NumActivePeople must be positive, got %d", c.NumActivePeople)
	}
	return nil
}
