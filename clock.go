package flink

import "time"

// clock is the processing-time source of a TaskManager's tasks: their
// processing-time timers, periodic watermarks, buffer flushes and the
// measured alignment of checkpoint barriers. It is injected so that tests
// drive time instead of waiting for it; realClock is the wall clock.
type clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once d has passed.
	NewTimer(d time.Duration) clockTimer
}

// clockTimer is a clock's one-shot timer, as time.Timer.
type clockTimer interface {
	C() <-chan time.Time
	// Stop stops the timer; it reports whether it stopped it before it
	// fired. After Stop, C may still hold a value sent before.
	Stop() bool
	// Reset makes a stopped or fired timer fire once d has passed.
	Reset(d time.Duration)
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) clockTimer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Stop() bool            { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }

// millisOf is a processing time in Unix milliseconds.
func millisOf(c clock) int64 { return c.Now().UnixMilli() }
