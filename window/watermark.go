package window

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Watermarks are int64 milliseconds with Flink's meaning: a watermark t says that no more
// elements with a timestamp at or below t will come.

// MinWatermark is the watermark before any element, Flink's Long.MIN_VALUE.
const MinWatermark int64 = math.MinInt64

// EndOfTime is the watermark a finished bounded input emits: every timer fires.
const EndOfTime int64 = math.MaxInt64

// DefaultWatermarkInterval is how often OnPeriodicEmit is called by default, Flink's
// pipeline.auto-watermark-interval.
const DefaultWatermarkInterval = 200 * time.Millisecond

// ErrInvalidStrategy is wrapped by the errors Strategy.Validate returns.
var ErrInvalidStrategy = errors.New("window: invalid watermark strategy")

// Output receives what a Generator emits: Flink's WatermarkOutput. The runtime implements it,
// typically by feeding one input of a Combiner.
type Output interface {
	// EmitWatermark emits a watermark. It also marks the output active again if it was idle.
	EmitWatermark(wm int64)
	// MarkIdle says the output will not emit events or watermarks for a while, so that
	// downstream watermarks need not wait for it.
	MarkIdle()
	// MarkActive says the output is active again.
	MarkActive()
}

// Generator produces watermarks from the timestamps of one input (a source split or subtask):
// Flink's WatermarkGenerator. OnEvent is called for every event, OnPeriodicEmit every watermark
// interval; both on the input's goroutine, never concurrently. A generator may emit from either
// (periodic generators emit from OnPeriodicEmit, punctuated ones from OnEvent). The watermarks
// it emits must not decrease: a Combiner reports a decrease as an error.
type Generator interface {
	// OnEvent is called with each event's timestamp.
	OnEvent(ts int64, out Output)
	// OnPeriodicEmit is called periodically, at the strategy's interval.
	OnPeriodicEmit(out Output)
}

// BoundedOutOfOrdernessGenerator emits, periodically, the highest timestamp seen minus the
// maximum out-of-orderness minus 1: Flink's BoundedOutOfOrdernessWatermarks. An event at most
// the bound behind the highest timestamp seen so far is therefore never late.
type BoundedOutOfOrdernessGenerator struct {
	maxTs int64
	bound int64
}

// NewBoundedOutOfOrdernessGenerator returns a generator with the given bound in milliseconds
// (not negative). Before any event it emits MinWatermark.
func NewBoundedOutOfOrdernessGenerator(boundMillis int64) (*BoundedOutOfOrdernessGenerator, error) {
	if boundMillis < 0 {
		return nil, fmt.Errorf("%w: max out-of-orderness must not be negative, got %d ms", ErrInvalidStrategy, boundMillis)
	}
	// Start so that the first watermark is MinWatermark.
	return &BoundedOutOfOrdernessGenerator{maxTs: MinWatermark + boundMillis + 1, bound: boundMillis}, nil
}

// OnEvent implements Generator: remember the highest timestamp.
func (g *BoundedOutOfOrdernessGenerator) OnEvent(ts int64, _ Output) {
	g.maxTs = max(g.maxTs, ts)
}

// OnPeriodicEmit implements Generator: emit the highest timestamp - bound - 1.
func (g *BoundedOutOfOrdernessGenerator) OnPeriodicEmit(out Output) {
	out.EmitWatermark(g.Current())
}

// Current returns the watermark the generator would emit now.
func (g *BoundedOutOfOrdernessGenerator) Current() int64 {
	return g.maxTs - g.bound - 1
}

// IdleGenerator wraps a Generator and marks its output idle when no event arrived for the idle
// timeout: Flink's WatermarksWithIdleness and its IdlenessTimer. Idleness is checked at each
// periodic emit: the first emit that sees no new events starts the clock, and the first emit
// more than the timeout later marks the output idle (and emits no watermark) until an event
// arrives.
type IdleGenerator struct {
	g       Generator
	timeout time.Duration
	now     func() time.Time

	events, seen  uint64
	inactiveSince time.Time // zero: not started
}

// OnEvent implements Generator.
func (ig *IdleGenerator) OnEvent(ts int64, out Output) {
	ig.g.OnEvent(ts, out)
	ig.events++
}

// OnPeriodicEmit implements Generator.
func (ig *IdleGenerator) OnPeriodicEmit(out Output) {
	if ig.checkIdle() {
		out.MarkIdle()
		return
	}
	ig.g.OnPeriodicEmit(out)
}

func (ig *IdleGenerator) checkIdle() bool {
	if ig.events != ig.seen {
		ig.seen = ig.events
		ig.inactiveSince = time.Time{}
		return false
	}
	now := ig.now()
	if ig.inactiveSince.IsZero() {
		ig.inactiveSince = now
		return false
	}
	return now.Sub(ig.inactiveSince) > ig.timeout
}

// Strategy says how each input of a source generates watermarks: Flink's WatermarkStrategy
// (without the timestamp assigner, which is typed and belongs to the DataStream API). It is a
// plain value; NewGenerator creates one independent Generator per input.
type Strategy struct {
	// MaxOutOfOrderness is the bound of the built-in BoundedOutOfOrdernessGenerator, a
	// non-negative whole number of milliseconds; used when Custom is nil. Zero is Flink's
	// monotonous-timestamps strategy.
	MaxOutOfOrderness time.Duration
	// Custom, if set, creates the generator of each input instead.
	Custom func() Generator
	// IdleTimeout, if positive, marks an input idle after that long without events.
	IdleTimeout time.Duration
	// Now is the clock for idleness; nil means time.Now.
	Now func() time.Time
}

// BoundedOutOfOrderness returns the strategy for events at most d out of order: watermark =
// highest timestamp - d - 1.
func BoundedOutOfOrderness(d time.Duration) Strategy {
	return Strategy{MaxOutOfOrderness: d}
}

// Monotonous returns the strategy for ascending timestamps: BoundedOutOfOrderness(0), so the
// watermark is the highest timestamp - 1.
func Monotonous() Strategy {
	return Strategy{}
}

// Custom returns a strategy whose inputs each use a generator made by newGenerator.
func Custom(newGenerator func() Generator) Strategy {
	return Strategy{Custom: newGenerator}
}

// WithIdleness returns s with an idle timeout: Flink's withIdleness.
func (s Strategy) WithIdleness(timeout time.Duration) Strategy {
	s.IdleTimeout = timeout
	return s
}

// Validate reports an invalid strategy, wrapping ErrInvalidStrategy.
func (s Strategy) Validate() error {
	if s.Custom == nil {
		if s.MaxOutOfOrderness < 0 {
			return fmt.Errorf("%w: max out-of-orderness must not be negative, got %v", ErrInvalidStrategy, s.MaxOutOfOrderness)
		}
		if s.MaxOutOfOrderness%time.Millisecond != 0 {
			return fmt.Errorf("%w: max out-of-orderness %v is not a whole number of milliseconds",
				ErrInvalidStrategy, s.MaxOutOfOrderness)
		}
	}
	if s.IdleTimeout < 0 {
		return fmt.Errorf("%w: idle timeout must not be negative, got %v", ErrInvalidStrategy, s.IdleTimeout)
	}
	return nil
}

// NewGenerator validates s and returns a new generator for one input.
func (s Strategy) NewGenerator() (Generator, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var g Generator
	if s.Custom != nil {
		if g = s.Custom(); g == nil {
			return nil, fmt.Errorf("%w: the custom generator factory returned nil", ErrInvalidStrategy)
		}
	} else {
		b, err := NewBoundedOutOfOrdernessGenerator(int64(s.MaxOutOfOrderness / time.Millisecond))
		if err != nil {
			return nil, err
		}
		g = b
	}
	if s.IdleTimeout > 0 {
		now := s.Now
		if now == nil {
			now = time.Now
		}
		g = &IdleGenerator{g: g, timeout: s.IdleTimeout, now: now}
	}
	return g, nil
}
