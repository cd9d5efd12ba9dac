package window

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestLateness(t *testing.T) {
	w := TimeWindow{0, 10} // max timestamp 9
	for _, tc := range []struct {
		name      string
		lateness  int64
		eventTime bool
		cleanup   int64
		lateAt    int64 // the first watermark at which the window is late
	}{
		{"event time, no lateness", 0, true, 9, 9},
		{"event time, lateness 5", 5, true, 14, 14},
		{"event time, huge lateness saturates", math.MaxInt64, true, math.MaxInt64, math.MaxInt64},
		{"processing time", 5, false, 9, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CleanupTime(w, tc.lateness, tc.eventTime); got != tc.cleanup {
				t.Fatalf("CleanupTime = %d, want %d", got, tc.cleanup)
			}
			if tc.lateAt < 0 {
				if IsWindowLate(w, math.MaxInt64, tc.lateness, false) {
					t.Fatal("a processing-time window is late")
				}
				return
			}
			if IsWindowLate(w, tc.lateAt-1, tc.lateness, true) {
				t.Fatalf("late at watermark %d", tc.lateAt-1)
			}
			if !IsWindowLate(w, tc.lateAt, tc.lateness, true) {
				t.Fatalf("not late at watermark %d", tc.lateAt)
			}
		})
	}
	for _, tc := range []struct {
		ts, wm, lateness int64
		eventTime, want  bool
	}{
		{5, 4, 0, true, false},
		{5, 5, 0, true, true},
		{5, 9, 5, true, false},
		{5, 10, 5, true, true},
		{5, 10, 5, false, false},
		{math.MaxInt64 - 1, math.MaxInt64, 10, true, false}, // overflow: never late
		{MinWatermark, MinWatermark, 0, true, true},
	} {
		if got := IsElementLate(tc.ts, tc.wm, tc.lateness, tc.eventTime); got != tc.want {
			t.Errorf("IsElementLate(%d, %d, %d, %v) = %v", tc.ts, tc.wm, tc.lateness, tc.eventTime, got)
		}
	}
}

func TestLatenessMillis(t *testing.T) {
	if ms, err := LatenessMillis(3 * time.Second); err != nil || ms != 3000 {
		t.Fatalf("LatenessMillis(3s) = %d, %v", ms, err)
	}
	for _, d := range []time.Duration{-time.Millisecond, time.Microsecond} {
		if _, err := LatenessMillis(d); !errors.Is(err, ErrInvalidLateness) {
			t.Errorf("LatenessMillis(%v) = %v", d, err)
		}
	}
}
