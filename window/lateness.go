package window

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidLateness is returned by LatenessMillis for a negative or fractional lateness.
var ErrInvalidLateness = errors.New("window: invalid allowed lateness")

// LatenessMillis validates an allowed lateness (non-negative, whole milliseconds) and returns it
// in milliseconds.
func LatenessMillis(d time.Duration) (int64, error) {
	if d < 0 {
		return 0, fmt.Errorf("%w: must not be negative, got %v", ErrInvalidLateness, d)
	}
	if d%time.Millisecond != 0 {
		return 0, fmt.Errorf("%w: %v is not a whole number of milliseconds", ErrInvalidLateness, d)
	}
	return int64(d / time.Millisecond), nil
}

// CleanupTime returns when window w's contents and state are dropped, Flink's
// WindowOperator.cleanupTime: for event time, w.MaxTimestamp() + allowedLateness (saturating at
// math.MaxInt64), when the watermark reaches it; for processing time, w.MaxTimestamp().
// allowedLateness is in milliseconds and must not be negative.
func CleanupTime(w TimeWindow, allowedLateness int64, eventTime bool) int64 {
	if !eventTime {
		return w.MaxTimestamp()
	}
	t := w.MaxTimestamp() + allowedLateness
	if t < w.MaxTimestamp() { // overflow
		return math.MaxInt64
	}
	return t
}

// IsWindowLate reports whether an event-time window is already past its cleanup time at
// watermark, so that an element assigned to it is dropped (or sent to the late-data side
// output) instead of being added: Flink's WindowOperator.isWindowLate. Processing-time windows
// are never late.
func IsWindowLate(w TimeWindow, watermark, allowedLateness int64, eventTime bool) bool {
	return eventTime && CleanupTime(w, allowedLateness, true) <= watermark
}

// IsElementLate reports whether an element at ts is late at watermark given the allowed
// lateness, Flink's WindowOperator.isElementLate (ts + allowedLateness <= watermark, without
// overflow). Only event time has late elements.
func IsElementLate(ts, watermark, allowedLateness int64, eventTime bool) bool {
	if !eventTime {
		return false
	}
	t := ts + allowedLateness
	if t < ts { // overflow: never late
		return false
	}
	return t <= watermark
}
