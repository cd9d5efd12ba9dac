// Package gen generates the Nexmark benchmark's event stream — people registering, auctions
// opening and bids arriving — the way the Flink Nexmark benchmark (github.com/nexmark/nexmark,
// derived from Apache Beam's Nexmark suite) generates it, but deterministically and so that any
// split of the work yields the same events.
//
// # The model
//
// Events are numbered 0, 1, 2, .... Out of every 50 consecutive numbers (the default 1:3:46
// proportion) the first is a Person, the next three are Auctions and the remaining 46 are Bids.
// Event number i alone determines the event: its kind, its ids, its timestamp and every random
// field (a pseudo-random stream is seeded from Config.Seed and i). A parallel source therefore
// splits the number range any way it likes — contiguous ranges, or subtask k of p taking
// k, k+p, k+2p, ... — and the union of what its subtasks emit is exactly the same stream.
//
// Ids follow the Nexmark generator: people and auctions are numbered from 1000 in the order they
// are created (FirstPersonID, FirstAuctionID); a bid goes to a "hot" auction (the first of the
// latest batch of 100 auctions) with probability 1 - 1/HotAuctionRatio and otherwise to a random
// auction among the latest NumInFlightAuctions (plus a lead of 10 not yet created); bidders and
// sellers are chosen the same way among the latest NumActivePeople people with HotBiddersRatio
// and HotSellersRatio. Categories are 10..14. Prices are log-uniform between 1 and 10^6 dollars
// in cents; an auction's reserve is its initial bid plus another such price, and its expiry is
// its timestamp plus a random length averaging the time until NumInFlightAuctions further
// auctions are created (at the default 10 M events/s that is about a millisecond, exactly as in
// the Flink benchmark). Names, cities and states come from Nexmark's short lists (so that q3 finds
// people in OR, ID and CA) and the Extra fields pad each event to its average byte size.
//
// # Time
//
// Event i nominally happens at BaseTime + i*1000/EventsPerSecond milliseconds, so timestamps
// advance at the configured rate however the numbers are split. A fraction DelayProbability of
// events is delayed — its timestamp is moved back by 1 ms to MaxOutOfOrderness — so the stream is
// out of order by at most MaxOutOfOrderness (4 s by default, matching the benchmark's watermark
// "dateTime - INTERVAL '4' SECOND"). A source emitting events in number order may therefore use a
// bounded-out-of-orderness watermark of MaxOutOfOrderness without ever producing a late event, or
// Generator.Watermark, the exact bound.
//
// # Speed
//
// Generator.Next fills a caller-owned Event and does not allocate: strings are slices of
// immutable tables built once per process (names, e-mail addresses, credit cards, channel URLs
// and long random texts from which item names, descriptions and Extra padding are cut). A
// Generator is immutable and safe for concurrent use by any number of goroutines.
//
// # Differences from the Java generator
//
// The Java generator draws from an unseeded java.util.Random, so its output differs from run to
// run; this one is a pure function of (Config, i). The Java BidGenerator adds FirstPersonID to
// the bidder twice; here it is added once, so bidders are valid person ids. Strings are drawn
// from finite tables rather than built character by character, which changes no query's result
// distribution that matters (the queries group by ids, categories, states and time).
package gen
