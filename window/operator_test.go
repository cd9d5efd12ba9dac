package window

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

// miniOperator is a single-key event-time window operator summing int64 values, assembled from
// this package's pieces the way the runtime's WindowOperator will be (see the package doc). It
// checks that the pieces fit: assigner, MergingWindowSet, trigger, timers and lateness.
type miniOperator struct {
	t        *testing.T
	assigner Assigner
	trigger  Trigger
	lateness int64
	set      *MergingWindowSet
	ctx      *testContext
	contents map[TimeWindow][]int64 // by state window
	fired    []firing
	late     int
}

type firing struct {
	Window TimeWindow
	Sum, N int64
}

func newMiniOperator(t *testing.T, a Assigner, tr Trigger, lateness int64) *miniOperator {
	op := &miniOperator{t: t, assigner: a, trigger: tr, lateness: lateness, ctx: newTestContext(),
		contents: map[TimeWindow][]int64{}}
	if m, ok := a.(MergingAssigner); ok {
		set, err := NewMergingWindowSet(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		op.set = set
	}
	return op
}

func (op *miniOperator) act(w, state TimeWindow, r TriggerResult) {
	if r.IsFire() {
		f := firing{Window: w}
		for _, v := range op.contents[state] {
			f.Sum += v
			f.N++
		}
		op.fired = append(op.fired, f)
	}
	if r.IsPurge() {
		delete(op.contents, state)
	}
}

func (op *miniOperator) element(ts, v int64) {
	t := op.t
	ws, err := op.assigner.AssignWindows(nil, ts)
	if err != nil {
		t.Fatal(err)
	}
	skipped := true
	for _, w := range ws {
		state := w
		if op.set != nil {
			w, err = op.set.AddWindow(w, func(result TimeWindow, merged []TimeWindow, stateResult TimeWindow, mergedState []TimeWindow) error {
				op.ctx.at(result).merged = merged
				if err := op.trigger.OnMerge(result, op.ctx); err != nil {
					return err
				}
				for _, m := range merged {
					if err := op.trigger.Clear(m, op.ctx.at(m)); err != nil {
						return err
					}
					op.ctx.DeleteEventTimeTimer(CleanupTime(m, op.lateness, true))
					delete(op.ctx.state, m)
				}
				for _, s := range mergedState {
					op.contents[stateResult] = append(op.contents[stateResult], op.contents[s]...)
					delete(op.contents, s)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if IsWindowLate(w, op.ctx.watermark, op.lateness, true) {
				if err := op.set.RetireWindow(w); err != nil {
					t.Fatal(err)
				}
				continue
			}
			state, _ = op.set.StateWindow(w)
		} else if IsWindowLate(w, op.ctx.watermark, op.lateness, true) {
			continue
		}
		skipped = false
		op.contents[state] = append(op.contents[state], v)
		r, err := op.trigger.OnElement(ts, w, op.ctx.at(w))
		if err != nil {
			t.Fatal(err)
		}
		op.act(w, state, r)
		op.ctx.RegisterEventTimeTimer(CleanupTime(w, op.lateness, true))
	}
	if skipped && IsElementLate(ts, op.ctx.watermark, op.lateness, true) {
		op.late++
	}
}

// watermark advances event time and fires due timers in time order.
func (op *miniOperator) watermark(wm int64) {
	op.ctx.watermark = wm
	for {
		type timer struct {
			w  TimeWindow
			ts int64
		}
		var due []timer
		for w, ts := range op.ctx.eventTimers {
			for t := range ts {
				if t <= wm {
					due = append(due, timer{w, t})
				}
			}
		}
		if len(due) == 0 {
			return
		}
		slices.SortFunc(due, func(a, b timer) int { return cmp.Or(cmp.Compare(a.ts, b.ts), Compare(a.w, b.w)) })
		tm := due[0]
		delete(op.ctx.eventTimers[tm.w], tm.ts)
		state := tm.w
		if op.set != nil {
			var ok bool
			if state, ok = op.set.StateWindow(tm.w); !ok {
				continue // merged away
			}
		}
		r, err := op.trigger.OnEventTime(tm.ts, tm.w, op.ctx.at(tm.w))
		if err != nil {
			op.t.Fatal(err)
		}
		op.act(tm.w, state, r)
		if tm.ts == CleanupTime(tm.w, op.lateness, true) {
			delete(op.contents, state)
			if err := op.trigger.Clear(tm.w, op.ctx); err != nil {
				op.t.Fatal(err)
			}
			delete(op.ctx.state, tm.w)
			if op.set != nil {
				if err := op.set.RetireWindow(tm.w); err != nil {
					op.t.Fatal(err)
				}
			}
		}
	}
}

// Sessions of random, boundedly disordered elements fire exactly the brute-force sessions, once
// each, and leave no state behind.
func TestMiniOperatorSessions(t *testing.T) {
	a, err := Session(EventTime, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	r := uint64(3)
	next := func(n int64) int64 { r = r*6364136223846793005 + 1442695040888963407; return int64(r>>33) % n }
	for round := range 50 {
		op := newMiniOperator(t, a, EventTimeTrigger{}, 0)
		gen, err := BoundedOutOfOrderness(5 * time.Millisecond).NewGenerator()
		if err != nil {
			t.Fatal(err)
		}
		out := &wmSink{op: op}
		type el struct{ ts, v int64 }
		var els []el
		base := int64(0)
		for range 60 {
			base += next(8)
			ts := base - next(6) // at most 5 ms out of order
			els = append(els, el{ts, next(100)})
			gen.OnEvent(ts, out)
			op.element(ts, els[len(els)-1].v)
			gen.OnPeriodicEmit(out)
		}
		op.watermark(EndOfTime)
		if op.late != 0 {
			t.Fatalf("round %d: %d late elements", round, op.late)
		}
		// Brute force: sort, split where the gap exceeds 10 ms.
		slices.SortFunc(els, func(x, y el) int { return cmp.Compare(x.ts, y.ts) })
		var want []firing
		for i, e := range els {
			if i == 0 || e.ts > els[i-1].ts+10 && e.ts > want[len(want)-1].Window.End {
				want = append(want, firing{Window: TimeWindow{e.ts, e.ts + 10}})
			}
			f := &want[len(want)-1]
			f.Window.End = max(f.Window.End, e.ts+10)
			f.Sum += e.v
			f.N++
		}
		got := slices.Clone(op.fired)
		slices.SortFunc(got, func(x, y firing) int { return Compare(x.Window, y.Window) })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d:\n got %v\nwant %v", round, got, want)
		}
		if op.set.Len() != 0 || len(op.contents) != 0 || len(op.ctx.state) != 0 {
			t.Fatalf("round %d: state left: %d windows, %d contents", round, op.set.Len(), len(op.contents))
		}
		for w, ts := range op.ctx.eventTimers {
			if len(ts) != 0 {
				t.Fatalf("round %d: timers left for %v: %v", round, w, slices.Collect(maps.Keys(ts)))
			}
		}
	}
}

// wmSink feeds a generator's watermarks to the operator.
type wmSink struct{ op *miniOperator }

func (s *wmSink) EmitWatermark(wm int64) {
	if wm > s.op.ctx.watermark {
		s.op.watermark(wm)
	}
}
func (s *wmSink) MarkIdle()   {}
func (s *wmSink) MarkActive() {}

// Tumbling windows with allowed lateness: late elements within the lateness refire their
// window; later ones are dropped.
func TestMiniOperatorLateness(t *testing.T) {
	a, err := Tumbling(EventTime, 10*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	op := newMiniOperator(t, a, EventTimeTrigger{}, 5)
	op.element(1, 1)
	op.element(5, 2)
	op.element(12, 4)
	op.watermark(9)   // [0, 10) fires
	op.element(3, 8)  // late, within lateness: fires again with everything
	op.watermark(14)  // [0, 10) cleaned up (9 + 5)
	op.element(4, 16) // too late: dropped
	op.watermark(EndOfTime)
	want := []firing{
		{TimeWindow{0, 10}, 3, 2},
		{TimeWindow{0, 10}, 11, 3},
		{TimeWindow{10, 20}, 4, 1},
	}
	if fmt.Sprint(op.fired) != fmt.Sprint(want) || op.late != 1 {
		t.Fatalf("fired %v, late %d; want %v, 1", op.fired, op.late, want)
	}
}

// A purging count trigger on sliding windows fires every two elements per window.
func TestMiniOperatorSlidingCount(t *testing.T) {
	a, err := Sliding(EventTime, 4*time.Millisecond, 2*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	count, _ := Count(2)
	tr, _ := Purging(count)
	op := newMiniOperator(t, a, tr, 0)
	for ts := int64(0); ts < 6; ts++ {
		op.element(ts, ts)
	}
	slices.SortStableFunc(op.fired, func(x, y firing) int { return Compare(x.Window, y.Window) })
	want := []firing{
		{TimeWindow{-2, 2}, 1, 2}, // 0+1
		{TimeWindow{0, 4}, 1, 2},  // 0+1
		{TimeWindow{0, 4}, 5, 2},  // 2+3
		{TimeWindow{2, 6}, 5, 2},  // 2+3
		{TimeWindow{2, 6}, 9, 2},  // 4+5
		{TimeWindow{4, 8}, 9, 2},  // 4+5
	}
	if fmt.Sprint(op.fired) != fmt.Sprint(want) {
		t.Fatalf("fired %v\nwant %v", op.fired, want)
	}
}
