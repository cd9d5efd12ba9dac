package flink

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// RestartKind selects a restart strategy.
type RestartKind uint8

// The restart strategies of Flink.
const (
	// RestartDefault is the zero value: no strategy set. The job takes
	// Flink's default for its checkpointing: RestartNone without
	// checkpoints, RestartExponentialDelay (ExponentialDelayRestart) with.
	RestartDefault RestartKind = iota
	// RestartNone fails the job at its first failure.
	RestartNone
	// RestartFixedDelay restarts a fixed number of times after a delay.
	RestartFixedDelay
	// RestartExponentialDelay restarts without limit, with growing delays.
	RestartExponentialDelay
	// RestartFailureRate restarts while failures stay under a rate.
	RestartFailureRate
)

// RestartStrategy decides whether a failed job restarts and after which
// delay, as Flink's restart-strategy options. It is a plain value, so it can
// travel with the job's configuration; the JobManager keeps the counting
// state. Build one with the constructors below; the zero value is
// RestartDefault, Flink's default for the job's checkpointing.
type RestartStrategy struct {
	Kind RestartKind
	// Attempts is the number of restarts a fixed-delay strategy allows.
	Attempts int
	// Delay is the pause before a fixed-delay or failure-rate restart.
	Delay time.Duration
	// InitialBackoff, MaxBackoff, Multiplier, Jitter and ResetThreshold
	// shape the exponential-delay strategy: the first restart waits
	// InitialBackoff, each following one Multiplier times longer up to
	// MaxBackoff, each delay moved by up to ±Jitter of itself; a job that
	// ran ResetThreshold without failing starts again at InitialBackoff.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	Multiplier     float64
	Jitter         float64
	ResetThreshold time.Duration
	// MaxFailures within Interval: a failure-rate strategy gives up when
	// more failures than MaxFailures fall within one Interval.
	MaxFailures int
	Interval    time.Duration
}

// NoRestart fails the job at its first failure: Flink's default without
// checkpointing.
func NoRestart() RestartStrategy { return RestartStrategy{Kind: RestartNone} }

// FixedDelayRestart restarts up to attempts times, waiting delay each time.
func FixedDelayRestart(attempts int, delay time.Duration) RestartStrategy {
	return RestartStrategy{Kind: RestartFixedDelay, Attempts: attempts, Delay: delay}
}

// ExponentialDelayRestart restarts without limit, with Flink's default
// backoff: initial 1 s, max 1 min, multiplier 1.5, jitter 0.1, reset after
// 1 h without failure.
func ExponentialDelayRestart() RestartStrategy {
	return RestartStrategy{
		Kind:           RestartExponentialDelay,
		InitialBackoff: time.Second,
		MaxBackoff:     time.Minute,
		Multiplier:     1.5,
		Jitter:         0.1,
		ResetThreshold: time.Hour,
	}
}

// FailureRateRestart restarts while at most maxFailures failures fall
// within interval, waiting delay before each restart.
func FailureRateRestart(maxFailures int, interval, delay time.Duration) RestartStrategy {
	return RestartStrategy{Kind: RestartFailureRate, MaxFailures: maxFailures, Interval: interval, Delay: delay}
}

// Validate checks the strategy's parameters.
func (s RestartStrategy) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: restart strategy %s: %s", ErrInvalidConfig, s, fmt.Sprintf(format, a...))
	}
	switch s.Kind {
	case RestartDefault, RestartNone:
	case RestartFixedDelay:
		if s.Attempts < 0 || s.Delay < 0 {
			return bad("attempts %d and delay %v must not be negative", s.Attempts, s.Delay)
		}
	case RestartExponentialDelay:
		if s.InitialBackoff <= 0 || s.MaxBackoff < s.InitialBackoff || s.Multiplier < 1 || s.Jitter < 0 || s.Jitter > 1 {
			return bad("want 0 < initial <= max, multiplier >= 1, 0 <= jitter <= 1")
		}
	case RestartFailureRate:
		if s.MaxFailures < 0 || s.Interval <= 0 || s.Delay < 0 {
			return bad("want max failures >= 0, interval > 0, delay >= 0")
		}
	default:
		return bad("unknown kind %d", s.Kind)
	}
	return nil
}

func (s RestartStrategy) String() string {
	switch s.Kind {
	case RestartDefault:
		return "default"
	case RestartNone:
		return "none"
	case RestartFixedDelay:
		return fmt.Sprintf("fixed-delay(attempts=%d, delay=%v)", s.Attempts, s.Delay)
	case RestartExponentialDelay:
		return fmt.Sprintf("exponential-delay(initial=%v, max=%v, multiplier=%g, jitter=%g)", s.InitialBackoff, s.MaxBackoff, s.Multiplier, s.Jitter)
	case RestartFailureRate:
		return fmt.Sprintf("failure-rate(max=%d per %v, delay=%v)", s.MaxFailures, s.Interval, s.Delay)
	}
	return fmt.Sprintf("RestartStrategy(%d)", s.Kind)
}

// restartTracker applies a strategy to one job's failures. It is a plain
// state machine fed the failure times; the caller supplies the clock and,
// for jitter, the random source.
type restartTracker struct {
	s        RestartStrategy
	rnd      func() float64 // uniform in [0, 1)
	restarts int
	failures []time.Time // failure-rate: failures within the interval
	backoff  time.Duration
	last     time.Time
}

func newRestartTracker(s RestartStrategy, rnd func() float64) *restartTracker {
	if rnd == nil {
		rnd = rand.Float64
	}
	return &restartTracker{s: s, rnd: rnd}
}

// onFailure records a failure at now and returns whether the job may
// restart and the delay before it does.
func (r *restartTracker) onFailure(now time.Time) (time.Duration, bool) {
	s := r.s
	switch s.Kind {
	case RestartFixedDelay:
		if r.restarts >= s.Attempts {
			return 0, false
		}
		r.restarts++
		return s.Delay, true
	case RestartExponentialDelay:
		switch {
		case r.backoff == 0 || (!r.last.IsZero() && now.Sub(r.last) >= s.ResetThreshold):
			r.backoff = s.InitialBackoff
		default:
			r.backoff = min(time.Duration(float64(r.backoff)*s.Multiplier), s.MaxBackoff)
		}
		r.last = now
		r.restarts++
		d := r.backoff
		if s.Jitter > 0 {
			d += time.Duration((r.rnd()*2 - 1) * s.Jitter * float64(d))
		}
		return max(d, 0), true
	case RestartFailureRate:
		keep := r.failures[:0]
		for _, f := range r.failures {
			if now.Sub(f) < s.Interval {
				keep = append(keep, f)
			}
		}
		r.failures = append(keep, now)
		if len(r.failures) > s.MaxFailures {
			return 0, false
		}
		r.restarts++
		return s.Delay, true
	}
	return 0, false
}
