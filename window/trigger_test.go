package window

import (
	"errors"
	"maps"
	"slices"
	"testing"
)

// testContext is an in-memory TriggerContext for one key: timers per window and trigger state
// per window, as the window operator will keep them.
type testContext struct {
	watermark, now int64
	window         TimeWindow
	merged         []TimeWindow // for OnMerge: the windows whose state merges into window
	eventTimers    map[TimeWindow]map[int64]bool
	procTimers     map[TimeWindow]map[int64]bool
	state          map[TimeWindow]map[string]int64
}

func newTestContext() *testContext {
	return &testContext{
		watermark:   MinWatermark,
		eventTimers: map[TimeWindow]map[int64]bool{},
		procTimers:  map[TimeWindow]map[int64]bool{},
		state:       map[TimeWindow]map[string]int64{},
	}
}

func (c *testContext) at(w TimeWindow) *testContext { c.window = w; return c }

func (c *testContext) CurrentWatermark() int64      { return c.watermark }
func (c *testContext) CurrentProcessingTime() int64 { return c.now }

func set(m map[TimeWindow]map[int64]bool, w TimeWindow, t int64, on bool) {
	if m[w] == nil {
		m[w] = map[int64]bool{}
	}
	if on {
		m[w][t] = true
	} else {
		delete(m[w], t)
	}
}

func (c *testContext) RegisterEventTimeTimer(t int64)      { set(c.eventTimers, c.window, t, true) }
func (c *testContext) DeleteEventTimeTimer(t int64)        { set(c.eventTimers, c.window, t, false) }
func (c *testContext) RegisterProcessingTimeTimer(t int64) { set(c.procTimers, c.window, t, true) }
func (c *testContext) DeleteProcessingTimeTimer(t int64)   { set(c.procTimers, c.window, t, false) }

func (c *testContext) TriggerState(name string) (int64, bool) {
	v, ok := c.state[c.window][name]
	return v, ok
}

func (c *testContext) SetTriggerState(name string, v int64) {
	if c.state[c.window] == nil {
		c.state[c.window] = map[string]int64{}
	}
	c.state[c.window][name] = v
}

func (c *testContext) ClearTriggerState(name string) { delete(c.state[c.window], name) }

func (c *testContext) MergeTriggerState(name string, reduce func(a, b int64) int64) {
	acc, ok := c.TriggerState(name)
	for _, m := range c.merged {
		if v, has := c.state[m][name]; has {
			if ok {
				acc = reduce(acc, v)
			} else {
				acc, ok = v, true
			}
		}
	}
	if ok {
		c.SetTriggerState(name, acc)
	}
}

func (c *testContext) timers(m map[TimeWindow]map[int64]bool, w TimeWindow) []int64 {
	return slices.Sorted(maps.Keys(m[w]))
}

// must fails the test on a trigger error: must(t)(trigger.OnElement(...)).
func must(t *testing.T) func(TriggerResult, error) TriggerResult {
	return func(r TriggerResult, err error) TriggerResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func TestTriggerResult(t *testing.T) {
	for _, tc := range []struct {
		r           TriggerResult
		fire, purge bool
		name        string
	}{
		{Continue, false, false, "CONTINUE"},
		{Fire, true, false, "FIRE"},
		{Purge, false, true, "PURGE"},
		{FirePurge, true, true, "FIRE_AND_PURGE"},
	} {
		if tc.r.IsFire() != tc.fire || tc.r.IsPurge() != tc.purge || tc.r.String() != tc.name {
			t.Errorf("%v: fire %v purge %v", tc.r, tc.r.IsFire(), tc.r.IsPurge())
		}
	}
}

func TestEventTimeTrigger(t *testing.T) {
	var tr EventTimeTrigger
	w := TimeWindow{0, 10}
	ctx := newTestContext().at(w)
	if r := must(t)(tr.OnElement(3, w, ctx)); r != Continue {
		t.Fatalf("OnElement = %v", r)
	}
	if got := ctx.timers(ctx.eventTimers, w); !slices.Equal(got, []int64{9}) {
		t.Fatalf("timers %v, want [9]", got)
	}
	if r := must(t)(tr.OnEventTime(8, w, ctx)); r != Continue {
		t.Fatalf("OnEventTime(8) = %v", r)
	}
	if r := must(t)(tr.OnEventTime(9, w, ctx)); r != Fire {
		t.Fatalf("OnEventTime(9) = %v", r)
	}
	if r := must(t)(tr.OnProcessingTime(9, w, ctx)); r != Continue {
		t.Fatalf("OnProcessingTime = %v", r)
	}
	// A late element (watermark past the window, within allowed lateness) fires at once.
	ctx.watermark = 9
	if r := must(t)(tr.OnElement(5, w, ctx)); r != Fire {
		t.Fatalf("late OnElement = %v", r)
	}
	if err := tr.Clear(w, ctx); err != nil {
		t.Fatal(err)
	}
	if got := ctx.timers(ctx.eventTimers, w); len(got) != 0 {
		t.Fatalf("timers after Clear: %v", got)
	}
	// OnMerge registers the merged window's timer unless the watermark passed it.
	merged := TimeWindow{0, 20}
	ctx.at(merged)
	if err := tr.OnMerge(merged, ctx); err != nil || !tr.CanMerge() {
		t.Fatal(err)
	}
	if got := ctx.timers(ctx.eventTimers, merged); !slices.Equal(got, []int64{19}) {
		t.Fatalf("merged timers %v", got)
	}
	ctx.watermark = 30
	late := TimeWindow{0, 25}
	ctx.at(late)
	if err := tr.OnMerge(late, ctx); err != nil {
		t.Fatal(err)
	}
	if got := ctx.timers(ctx.eventTimers, late); len(got) != 0 {
		t.Fatalf("timer registered behind the watermark: %v", got)
	}
}

func TestProcessingTimeTrigger(t *testing.T) {
	var tr ProcessingTimeTrigger
	w := TimeWindow{100, 200}
	ctx := newTestContext().at(w)
	if r := must(t)(tr.OnElement(0, w, ctx)); r != Continue {
		t.Fatalf("OnElement = %v", r)
	}
	if got := ctx.timers(ctx.procTimers, w); !slices.Equal(got, []int64{199}) {
		t.Fatalf("timers %v", got)
	}
	if r := must(t)(tr.OnEventTime(199, w, ctx)); r != Continue {
		t.Fatalf("OnEventTime = %v", r)
	}
	if r := must(t)(tr.OnProcessingTime(199, w, ctx)); r != Fire {
		t.Fatalf("OnProcessingTime = %v", r)
	}
	if err := tr.Clear(w, ctx); err != nil {
		t.Fatal(err)
	}
	if got := ctx.timers(ctx.procTimers, w); len(got) != 0 {
		t.Fatalf("timers after Clear %v", got)
	}
	ctx.now = 150
	merged := TimeWindow{100, 300}
	if err := tr.OnMerge(merged, ctx.at(merged)); err != nil {
		t.Fatal(err)
	}
	if got := ctx.timers(ctx.procTimers, merged); !slices.Equal(got, []int64{299}) {
		t.Fatalf("merged timers %v", got)
	}
	ctx.now = 1000
	if err := tr.OnMerge(w, ctx.at(w)); err != nil {
		t.Fatal(err)
	}
	if got := ctx.timers(ctx.procTimers, w); len(got) != 0 {
		t.Fatalf("timer registered in the past: %v", got)
	}
}

func TestCountTrigger(t *testing.T) {
	if _, err := Count(0); !errors.Is(err, ErrInvalidTrigger) {
		t.Fatalf("Count(0) = %v", err)
	}
	tr, err := Count(3)
	if err != nil {
		t.Fatal(err)
	}
	w := TimeWindow{0, 10}
	ctx := newTestContext().at(w)
	var got []TriggerResult
	for range 7 {
		got = append(got, must(t)(tr.OnElement(0, w, ctx)))
	}
	want := []TriggerResult{Continue, Continue, Fire, Continue, Continue, Fire, Continue}
	if !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if r := must(t)(tr.OnEventTime(9, w, ctx)); r != Continue {
		t.Fatalf("OnEventTime = %v", r)
	}
	if r := must(t)(tr.OnProcessingTime(9, w, ctx)); r != Continue {
		t.Fatalf("OnProcessingTime = %v", r)
	}
	if v, _ := ctx.TriggerState(CountTriggerState); v != 1 {
		t.Fatalf("count %d, want 1", v)
	}
	// Merging sums the counts: 1 + 1 = 2, so the next element fires.
	other := TimeWindow{10, 20}
	must(t)(tr.OnElement(0, other, ctx.at(other)))
	merged := TimeWindow{0, 20}
	ctx.merged = []TimeWindow{w, other}
	if err := tr.OnMerge(merged, ctx.at(merged)); err != nil {
		t.Fatal(err)
	}
	if v, _ := ctx.TriggerState(CountTriggerState); v != 2 {
		t.Fatalf("merged count %d, want 2", v)
	}
	if r := must(t)(tr.OnElement(0, merged, ctx)); r != Fire {
		t.Fatalf("after merge: %v, want FIRE", r)
	}
	must(t)(tr.OnElement(0, merged, ctx))
	if err := tr.Clear(merged, ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := ctx.TriggerState(CountTriggerState); ok {
		t.Fatal("Clear left the count")
	}
	if tr.String() != "CountTrigger(3)" {
		t.Fatal(tr.String())
	}
}

func TestPurgingTrigger(t *testing.T) {
	if _, err := Purging(nil); !errors.Is(err, ErrInvalidTrigger) {
		t.Fatalf("Purging(nil) = %v", err)
	}
	count, _ := Count(2)
	tr, err := Purging(count)
	if err != nil {
		t.Fatal(err)
	}
	w := TimeWindow{0, 10}
	ctx := newTestContext().at(w)
	if r := must(t)(tr.OnElement(0, w, ctx)); r != Continue {
		t.Fatalf("first = %v", r)
	}
	if r := must(t)(tr.OnElement(0, w, ctx)); r != FirePurge {
		t.Fatalf("second = %v, want FIRE_AND_PURGE", r)
	}
	et, _ := Purging(EventTimeTrigger{})
	if r := must(t)(et.OnEventTime(9, w, ctx)); r != FirePurge {
		t.Fatalf("event time = %v", r)
	}
	if r := must(t)(et.OnEventTime(8, w, ctx)); r != Continue {
		t.Fatalf("other timer = %v", r)
	}
	pt, _ := Purging(ProcessingTimeTrigger{})
	if r := must(t)(pt.OnProcessingTime(9, w, ctx)); r != FirePurge {
		t.Fatalf("processing time = %v", r)
	}
	if !tr.CanMerge() || tr.String() != "PurgingTrigger(CountTrigger(2))" {
		t.Fatalf("CanMerge %v, String %q", tr.CanMerge(), tr.String())
	}
	if err := et.OnMerge(TimeWindow{0, 20}, ctx.at(TimeWindow{0, 20})); err != nil {
		t.Fatal(err)
	}
	if err := et.Clear(TimeWindow{0, 20}, ctx); err != nil {
		t.Fatal(err)
	}
	// A nested trigger that cannot merge makes OnMerge fail; errors pass through unchanged.
	never, _ := Purging(failingTrigger{})
	if err := never.OnMerge(w, ctx); !errors.Is(err, ErrTriggerCannotMerge) {
		t.Fatalf("OnMerge = %v", err)
	}
	if r, err := never.OnElement(0, w, ctx); !errors.Is(err, errFailing) || r != Fire {
		t.Fatalf("OnElement = %v, %v: the nested error and result must pass through", r, err)
	}
}

var errFailing = errors.New("failing trigger")

// failingTrigger cannot merge and fails every call.
type failingTrigger struct{}

func (failingTrigger) OnElement(int64, TimeWindow, TriggerContext) (TriggerResult, error) {
	return Fire, errFailing
}
func (failingTrigger) OnEventTime(int64, TimeWindow, TriggerContext) (TriggerResult, error) {
	return Continue, errFailing
}
func (failingTrigger) OnProcessingTime(int64, TimeWindow, TriggerContext) (TriggerResult, error) {
	return Continue, errFailing
}
func (failingTrigger) CanMerge() bool                           { return false }
func (failingTrigger) OnMerge(TimeWindow, OnMergeContext) error { return ErrTriggerCannotMerge }
func (failingTrigger) Clear(TimeWindow, TriggerContext) error   { return errFailing }
