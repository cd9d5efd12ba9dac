package window

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Timestamps and window bounds are int64 milliseconds since the Unix epoch.

// MinTimestamp and MaxTimestamp bound the element timestamps the assigners accept (±2^62 ms,
// about ±146 million years): within them no window arithmetic overflows.
const (
	MinTimestamp int64 = -(1 << 62)
	MaxTimestamp int64 = 1 << 62
)

// ErrTimestampOutOfRange is returned by assigners for a timestamp outside
// [MinTimestamp, MaxTimestamp].
var ErrTimestampOutOfRange = errors.New("window: timestamp out of range")

// TimeWindow is the half-open interval [Start, End) of milliseconds, Flink's TimeWindow. It is
// comparable and can be a map key.
type TimeWindow struct {
	// Start is the first millisecond in the window.
	Start int64
	// End is the first millisecond after the window.
	End int64
}

// MaxTimestamp returns End-1, the last timestamp in the window. An event-time window fires when
// the watermark reaches it.
func (w TimeWindow) MaxTimestamp() int64 { return w.End - 1 }

// Intersects reports whether w and o overlap or touch: Flink's definition, under which
// [0, 10) and [10, 20) intersect, so session windows exactly one gap apart merge.
func (w TimeWindow) Intersects(o TimeWindow) bool {
	return w.Start <= o.End && w.End >= o.Start
}

// Cover returns the smallest window containing both w and o.
func (w TimeWindow) Cover(o TimeWindow) TimeWindow {
	return TimeWindow{Start: min(w.Start, o.Start), End: max(w.End, o.End)}
}

// String formats the window as "[start, end)".
func (w TimeWindow) String() string {
	return "[" + strconv.FormatInt(w.Start, 10) + ", " + strconv.FormatInt(w.End, 10) + ")"
}

// Compare orders windows by start, then end.
func Compare(a, b TimeWindow) int {
	return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End))
}

// WindowStart returns the start of the window of length size, shifted by offset, that holds
// ts: the largest start <= ts with start ≡ offset (mod size). It is Flink's
// TimeWindow.getWindowStartWithOffset and handles negative timestamps (floor, not truncation).
// size must be positive, and ts-offset must not overflow.
func WindowStart(ts, offset, size int64) int64 {
	rem := (ts - offset) % size
	if rem < 0 {
		return ts - (rem + size)
	}
	return ts - rem
}

// MergeWindows is Flink's TimeWindow.mergeWindows: it sorts windows by start (in place), groups
// runs of windows that intersect the cover of the run so far, and calls merge for each group of
// two or more windows with the group's cover and members. merged is only valid during the call.
// Groups are reported in order of start.
func MergeWindows(windows []TimeWindow, merge func(result TimeWindow, merged []TimeWindow)) {
	if len(windows) < 2 {
		return
	}
	slices.SortFunc(windows, Compare)
	first := 0
	cover := windows[0]
	flush := func(end int) {
		if end-first > 1 {
			merge(cover, windows[first:end])
		}
	}
	for i := 1; i < len(windows); i++ {
		if cover.Intersects(windows[i]) {
			cover = cover.Cover(windows[i])
			continue
		}
		flush(i)
		first, cover = i, windows[i]
	}
	flush(len(windows))
}

func checkTimestamp(ts int64) error {
	if ts < MinTimestamp || ts > MaxTimestamp {
		return fmt.Errorf("%w: %d is outside [%d, %d]", ErrTimestampOutOfRange, ts, MinTimestamp, MaxTimestamp)
	}
	return nil
}
