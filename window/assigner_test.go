package window

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const sec = time.Second

func TestAssignerValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func() (Assigner, error)
		want string
	}{
		{"tumbling zero size", func() (Assigner, error) { return Tumbling(EventTime, 0, 0) }, "size must be positive"},
		{"tumbling negative size", func() (Assigner, error) { return Tumbling(ProcessingTime, -sec, 0) }, "size must be positive"},
		{"tumbling offset = size", func() (Assigner, error) { return Tumbling(EventTime, sec, sec) }, "|offset| < size"},
		{"tumbling offset = -size", func() (Assigner, error) { return Tumbling(EventTime, sec, -sec) }, "|offset| < size"},
		{"tumbling sub-ms size", func() (Assigner, error) { return Tumbling(EventTime, 1500*time.Microsecond, 0) }, "whole number of milliseconds"},
		{"tumbling sub-ms offset", func() (Assigner, error) { return Tumbling(EventTime, sec, time.Microsecond) }, "whole number of milliseconds"},
		{"sliding zero size", func() (Assigner, error) { return Sliding(EventTime, 0, sec, 0) }, "must be positive"},
		{"sliding zero slide", func() (Assigner, error) { return Sliding(EventTime, sec, 0, 0) }, "must be positive"},
		{"sliding negative slide", func() (Assigner, error) { return Sliding(EventTime, sec, -sec, 0) }, "must be positive"},
		{"sliding offset = slide", func() (Assigner, error) { return Sliding(EventTime, 10*sec, 2*sec, 2*sec) }, "|offset| < slide"},
		{"sliding offset < -slide", func() (Assigner, error) { return Sliding(EventTime, 10*sec, 2*sec, -3*sec) }, "|offset| < slide"},
		{"sliding too many windows", func() (Assigner, error) { return Sliding(EventTime, time.Hour, time.Millisecond, 0) }, "more than"},
		{"session zero gap", func() (Assigner, error) { return Session(EventTime, 0) }, "gap must be positive"},
		{"session negative gap", func() (Assigner, error) { return Session(ProcessingTime, -sec) }, "gap must be positive"},
		{"session sub-ms gap", func() (Assigner, error) { return Session(EventTime, time.Nanosecond) }, "whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tc.make()
			if !errors.Is(err, ErrInvalidAssigner) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, %v; want ErrInvalidAssigner mentioning %q", a, err, tc.want)
			}
		})
	}
}

func mustAssign(t *testing.T, a Assigner, ts int64) []TimeWindow {
	t.Helper()
	ws, err := a.AssignWindows(nil, ts)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestTumbling(t *testing.T) {
	for _, tc := range []struct {
		size, offset time.Duration
		ts           int64
		want         TimeWindow
	}{
		{10 * sec, 0, 0, TimeWindow{0, 10000}},
		{10 * sec, 0, 9999, TimeWindow{0, 10000}},
		{10 * sec, 0, 10000, TimeWindow{10000, 20000}},
		{10 * sec, 0, -1, TimeWindow{-10000, 0}},
		{10 * sec, 0, -10000, TimeWindow{-10000, 0}},
		{10 * sec, 0, -10001, TimeWindow{-20000, -10000}},
		{time.Hour, 15 * time.Minute, 0, TimeWindow{-45 * 60000, 15 * 60000}},
		{time.Hour, 15 * time.Minute, 15 * 60000, TimeWindow{15 * 60000, 75 * 60000}},
		{time.Hour, -15 * time.Minute, 50 * 60000, TimeWindow{45 * 60000, 105 * 60000}},
		{time.Millisecond, 0, 12345, TimeWindow{12345, 12346}},
	} {
		a, err := Tumbling(EventTime, tc.size, tc.offset)
		if err != nil {
			t.Fatal(err)
		}
		got := mustAssign(t, a, tc.ts)
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("Tumbling(%v, %v).AssignWindows(%d) = %v, want [%v]", tc.size, tc.offset, tc.ts, got, tc.want)
		}
	}
}

func TestSlidingWindowCount(t *testing.T) {
	for _, tc := range []struct {
		size, slide, offset time.Duration
	}{
		{10 * sec, 2 * sec, 0},
		{10 * sec, 5 * sec, sec},
		{10 * sec, 10 * sec, 0},
		{6 * sec, sec, -500 * time.Millisecond},
		{3 * time.Millisecond, time.Millisecond, 0},
	} {
		a, err := Sliding(EventTime, tc.size, tc.slide, tc.offset)
		if err != nil {
			t.Fatal(err)
		}
		want := int(tc.size / tc.slide)
		for _, ts := range []int64{-20001, -10000, -1, 0, 1, 499, 500, 1999, 2000, 9999, 10000, 1704067205123} {
			ws := mustAssign(t, a, ts)
			if len(ws) != want {
				t.Fatalf("%v: ts %d in %d windows %v, want size/slide = %d", a, ts, len(ws), ws, want)
			}
			checkSliding(t, a, ts, ws)
		}
	}
}

func checkSliding(t *testing.T, a *SlidingWindows, ts int64, ws []TimeWindow) {
	t.Helper()
	for i, w := range ws {
		if w.Start > ts || ts >= w.End || w.End-w.Start != a.Size() {
			t.Fatalf("%v: ts %d assigned to %v", a, ts, w)
		}
		if i > 0 && ws[i-1].Start-w.Start != a.Slide() {
			t.Fatalf("%v: windows %v not a slide apart, latest first", a, ws)
		}
		if (w.Start-a.offset)%a.Slide() != 0 {
			t.Fatalf("%v: window %v not aligned to offset %d", a, w, a.offset)
		}
	}
}

func TestSlidingExact(t *testing.T) {
	a, err := Sliding(EventTime, 10*sec, 2*sec, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := mustAssign(t, a, 3000)
	want := []TimeWindow{{2000, 12000}, {0, 10000}, {-2000, 8000}, {-4000, 6000}, {-6000, 4000}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Size not a multiple of the slide: 2 or 3 windows depending on the phase.
	a, err = Sliding(EventTime, 5*sec, 2*sec, 0)
	if err != nil {
		t.Fatal(err)
	}
	for ts, n := range map[int64]int{0: 3, 999: 3, 1000: 2, 1999: 2, 2000: 3, -1: 2} {
		ws := mustAssign(t, a, ts)
		if len(ws) != n {
			t.Errorf("size 5s slide 2s: ts %d in %v, want %d windows", ts, ws, n)
		}
		checkSliding(t, a, ts, ws)
	}
	// Slide larger than size: elements between windows are in none.
	a, err = Sliding(EventTime, sec, 5*sec, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ws := mustAssign(t, a, 500); len(ws) != 1 || ws[0] != (TimeWindow{0, 1000}) {
		t.Errorf("hopping: ts 500 in %v", ws)
	}
	if ws := mustAssign(t, a, 1500); len(ws) != 0 {
		t.Errorf("hopping: ts 1500 in %v, want none", ws)
	}
}

func TestAssignAppendsToBuffer(t *testing.T) {
	a, err := Sliding(EventTime, 10*sec, 2*sec, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]TimeWindow, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = a.AssignWindows(buf[:0], 123456)
	})
	if allocs != 0 || len(buf) != 5 {
		t.Fatalf("%v allocations, %d windows", allocs, len(buf))
	}
	pre := []TimeWindow{{1, 2}}
	out, err := a.AssignWindows(pre, 0)
	if err != nil || len(out) != 6 || out[0] != (TimeWindow{1, 2}) {
		t.Fatalf("AssignWindows does not append: %v, %v", out, err)
	}
}

func TestSession(t *testing.T) {
	a, err := Session(EventTime, 10*sec)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range []int64{-5, 0, 7} {
		if ws := mustAssign(t, a, ts); len(ws) != 1 || ws[0] != (TimeWindow{ts, ts + 10000}) {
			t.Errorf("session: ts %d in %v", ts, ws)
		}
	}
	if !a.IsMerging() || !a.IsEventTime() || a.Gap() != 10000 {
		t.Errorf("session: merging %v, event time %v, gap %d", a.IsMerging(), a.IsEventTime(), a.Gap())
	}
	var _ MergingAssigner = a
}

func TestAssignerProperties(t *testing.T) {
	tum, _ := Tumbling(ProcessingTime, sec, 0)
	sl, _ := Sliding(EventTime, 2*sec, sec, 0)
	ses, _ := Session(ProcessingTime, sec)
	for _, tc := range []struct {
		a         Assigner
		eventTime bool
		merging   bool
		trigger   Trigger
		str       string
	}{
		{tum, false, false, ProcessingTimeTrigger{}, "Tumbling(1s, offset 0s, processing time)"},
		{sl, true, false, EventTimeTrigger{}, "Sliding(2s, slide 1s, offset 0s, event time)"},
		{ses, false, true, ProcessingTimeTrigger{}, "Session(gap 1s, processing time)"},
	} {
		if tc.a.IsEventTime() != tc.eventTime || tc.a.IsMerging() != tc.merging ||
			tc.a.DefaultTrigger() != tc.trigger || tc.a.String() != tc.str {
			t.Errorf("%v: event time %v merging %v trigger %v", tc.a, tc.a.IsEventTime(), tc.a.IsMerging(), tc.a.DefaultTrigger())
		}
	}
}

func TestTimestampRange(t *testing.T) {
	tum, _ := Tumbling(EventTime, sec, 0)
	sl, _ := Sliding(EventTime, 2*sec, sec, 0)
	ses, _ := Session(EventTime, sec)
	for _, a := range []Assigner{tum, sl, ses} {
		for _, ts := range []int64{MinTimestamp - 1, MaxTimestamp + 1, -1 << 63, 1<<63 - 1} {
			if _, err := a.AssignWindows(nil, ts); !errors.Is(err, ErrTimestampOutOfRange) {
				t.Errorf("%v: ts %d: %v, want ErrTimestampOutOfRange", a, ts, err)
			}
		}
		for _, ts := range []int64{MinTimestamp, MaxTimestamp} {
			ws, err := a.AssignWindows(nil, ts)
			if err != nil || len(ws) == 0 {
				t.Errorf("%v: ts %d: %v, %v", a, ts, ws, err)
			}
			for _, w := range ws {
				if w.Start > ts || ts >= w.End {
					t.Errorf("%v: ts %d in %v", a, ts, w)
				}
			}
		}
	}
}
