package network

import "time"

// MillisPerSecond turns two samples of a cumulative nanosecond counter (such as
// WriterMetrics.BackPressuredNanos or GateMetrics.IdleNanos) taken elapsed apart into Flink's
// "milliseconds per second" rate, between 0 and 1000 for a single waiting goroutine.
func MillisPerSecond(before, after int64, elapsed time.Duration) float64 {
	if elapsed <= 0 || after < before {
		return 0
	}
	return float64(after-before) / float64(time.Millisecond) / elapsed.Seconds()
}
