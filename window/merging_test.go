package window

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// mergeCall records one MergeFunc call.
type mergeCall struct {
	Result, StateResult TimeWindow
	Merged, MergedState []TimeWindow
}

func (m mergeCall) String() string {
	return fmt.Sprintf("%v<-%v state %v<-%v", m.Result, m.Merged, m.StateResult, m.MergedState)
}

func newSessionSet(t *testing.T) *MergingWindowSet {
	t.Helper()
	a, err := Session(EventTime, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewMergingWindowSet(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMergingWindowSetSequences(t *testing.T) {
	type step struct {
		add    TimeWindow
		result TimeWindow
		merges []mergeCall
		after  []WindowMapping // the snapshot after the step
	}
	w := func(s, e int64) TimeWindow { return TimeWindow{s, e} }
	m := func(win, st TimeWindow) WindowMapping { return WindowMapping{win, st} }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"separate sessions", []step{
			{add: w(0, 10), result: w(0, 10), after: []WindowMapping{m(w(0, 10), w(0, 10))}},
			{add: w(20, 30), result: w(20, 30), after: []WindowMapping{m(w(0, 10), w(0, 10)), m(w(20, 30), w(20, 30))}},
		}},
		{"extend a session", []step{
			{add: w(0, 10), result: w(0, 10)},
			{add: w(5, 15), result: w(0, 15),
				merges: []mergeCall{{Result: w(0, 15), Merged: []TimeWindow{w(0, 10)}, StateResult: w(0, 10)}},
				after:  []WindowMapping{m(w(0, 15), w(0, 10))}},
			{add: w(15, 25), result: w(0, 25), // touching merges
				merges: []mergeCall{{Result: w(0, 25), Merged: []TimeWindow{w(0, 15)}, StateResult: w(0, 10)}},
				after:  []WindowMapping{m(w(0, 25), w(0, 10))}},
		}},
		{"contained in a session: no merge", []step{
			{add: w(0, 10), result: w(0, 10)},
			{add: w(5, 15), result: w(0, 15),
				merges: []mergeCall{{Result: w(0, 15), Merged: []TimeWindow{w(0, 10)}, StateResult: w(0, 10)}}},
			{add: w(2, 12), result: w(0, 15), after: []WindowMapping{m(w(0, 15), w(0, 10))}},
		}},
		{"same window twice", []step{
			{add: w(0, 10), result: w(0, 10)},
			{add: w(0, 10), result: w(0, 10), after: []WindowMapping{m(w(0, 10), w(0, 10))}},
		}},
		{"bridge two sessions", []step{
			{add: w(0, 10), result: w(0, 10)},
			{add: w(30, 40), result: w(30, 40)},
			{add: w(12, 28), result: w(12, 28)},
			{add: w(9, 31), result: w(0, 40),
				merges: []mergeCall{{
					Result: w(0, 40), Merged: []TimeWindow{w(0, 10), w(12, 28), w(30, 40)},
					StateResult: w(0, 10), MergedState: []TimeWindow{w(12, 28), w(30, 40)},
				}},
				after: []WindowMapping{m(w(0, 40), w(0, 10))}},
		}},
		{"out of order", []step{
			{add: w(50, 60), result: w(50, 60)},
			{add: w(45, 55), result: w(45, 60),
				merges: []mergeCall{{Result: w(45, 60), Merged: []TimeWindow{w(50, 60)}, StateResult: w(50, 60)}}},
			{add: w(0, 10), result: w(0, 10), after: []WindowMapping{m(w(0, 10), w(0, 10)), m(w(45, 60), w(50, 60))}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSessionSet(t)
			for i, st := range tc.steps {
				var calls []mergeCall
				got, err := s.AddWindow(st.add, func(r TimeWindow, merged []TimeWindow, sr TimeWindow, ms []TimeWindow) error {
					calls = append(calls, mergeCall{r, sr, slices.Clone(merged), slices.Clone(ms)})
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if got != st.result {
					t.Fatalf("step %d: AddWindow(%v) = %v, want %v", i, st.add, got, st.result)
				}
				if fmt.Sprint(calls) != fmt.Sprint(st.merges) {
					t.Fatalf("step %d: merges %v, want %v", i, calls, st.merges)
				}
				if st.after != nil && !slices.Equal(s.Snapshot(), st.after) {
					t.Fatalf("step %d: snapshot %v, want %v", i, s.Snapshot(), st.after)
				}
				// The result window is always in flight and has a state window.
				if _, ok := s.StateWindow(got); !ok {
					t.Fatalf("step %d: result %v not in flight", i, got)
				}
			}
		})
	}
}

func TestMergingWindowSetRetireAndRestore(t *testing.T) {
	s := newSessionSet(t)
	noMerge := func(TimeWindow, []TimeWindow, TimeWindow, []TimeWindow) error { return nil }
	for _, w := range []TimeWindow{{0, 10}, {5, 15}, {100, 110}} {
		if _, err := s.AddWindow(w, noMerge); err != nil {
			t.Fatal(err)
		}
	}
	snap := s.Snapshot()
	want := []WindowMapping{{TimeWindow{0, 15}, TimeWindow{0, 10}}, {TimeWindow{100, 110}, TimeWindow{100, 110}}}
	if !slices.Equal(snap, want) {
		t.Fatalf("snapshot %v, want %v", snap, want)
	}
	r, err := NewMergingWindowSet(s.assigner, snap)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := r.StateWindow(TimeWindow{0, 15}); !ok || st != (TimeWindow{0, 10}) {
		t.Fatalf("restored state window %v, %v", st, ok)
	}
	// The restored set merges like the original.
	got, err := r.AddWindow(TimeWindow{14, 24}, noMerge)
	if err != nil || got != (TimeWindow{0, 24}) {
		t.Fatalf("restored AddWindow = %v, %v", got, err)
	}
	if err := r.RetireWindow(TimeWindow{0, 24}); err != nil {
		t.Fatal(err)
	}
	if err := r.RetireWindow(TimeWindow{0, 24}); !errors.Is(err, ErrUnknownWindow) {
		t.Fatalf("retiring twice: %v", err)
	}
	if r.Len() != 1 || s.Len() != 2 {
		t.Fatalf("lens %d %d: the snapshot must not share state", r.Len(), s.Len())
	}
	// The snapshot is the caller's.
	snap[0].Window.Start = 99
	if _, ok := s.StateWindow(TimeWindow{0, 15}); !ok {
		t.Fatal("modifying a snapshot changed the set")
	}
}

func TestMergingWindowSetCorruptSnapshot(t *testing.T) {
	a, _ := Session(EventTime, 10*time.Millisecond)
	for name, snap := range map[string][]WindowMapping{
		"duplicate": {{TimeWindow{0, 10}, TimeWindow{0, 10}}, {TimeWindow{0, 10}, TimeWindow{0, 5}}},
		"intersect": {{TimeWindow{0, 10}, TimeWindow{0, 10}}, {TimeWindow{10, 20}, TimeWindow{10, 20}}},
		"empty":     {{TimeWindow{10, 10}, TimeWindow{10, 10}}},
	} {
		if _, err := NewMergingWindowSet(a, snap); !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("%s: %v, want ErrCorruptSnapshot", name, err)
		}
	}
}

func TestMergingWindowSetMergeError(t *testing.T) {
	s := newSessionSet(t)
	boom := errors.New("boom")
	if _, err := s.AddWindow(TimeWindow{0, 10}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.AddWindow(TimeWindow{5, 15}, func(TimeWindow, []TimeWindow, TimeWindow, []TimeWindow) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("AddWindow = %v, want the merge function's error", err)
	}
}

// Random sequences: the in-flight windows never intersect, cover exactly the added windows, and
// every state window ever returned is accounted for (in flight or merged away exactly once).
func TestMergingWindowSetRandom(t *testing.T) {
	r := uint64(1)
	next := func(n int64) int64 { r = r*6364136223846793005 + 1442695040888963407; return int64(r>>33) % n }
	for round := range 200 {
		s := newSessionSet(t)
		live := map[TimeWindow]bool{} // state windows holding contents
		var added []TimeWindow
		for range 30 {
			ts := next(400)
			w := TimeWindow{ts, ts + 10}
			added = append(added, w)
			res, err := s.AddWindow(w, func(_ TimeWindow, _ []TimeWindow, sr TimeWindow, ms []TimeWindow) error {
				if !live[sr] {
					return fmt.Errorf("state result %v holds nothing", sr)
				}
				for _, m := range ms {
					if !live[m] {
						return fmt.Errorf("merged state %v holds nothing", m)
					}
					delete(live, m)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			st, _ := s.StateWindow(res)
			live[st] = true
			if res.Start > w.Start || res.End < w.End {
				t.Fatalf("round %d: %v not inside its result %v", round, w, res)
			}
		}
		snap := s.Snapshot()
		if len(snap) != len(live) {
			t.Fatalf("round %d: %d windows in flight, %d live state windows", round, len(snap), len(live))
		}
		for i, m := range snap {
			if !live[m.StateWindow] {
				t.Fatalf("round %d: state window %v not live", round, m.StateWindow)
			}
			if i > 0 && snap[i-1].Window.Intersects(m.Window) {
				t.Fatalf("round %d: in-flight windows %v and %v intersect", round, snap[i-1].Window, m.Window)
			}
		}
		// Each in-flight window is exactly the cover of the added windows inside it.
		for _, m := range snap {
			var cover *TimeWindow
			for _, w := range added {
				if w.Start >= m.Window.Start && w.End <= m.Window.End {
					if cover == nil {
						c := w
						cover = &c
					} else {
						*cover = cover.Cover(w)
					}
				}
			}
			if cover == nil || *cover != m.Window {
				t.Fatalf("round %d: window %v is not the cover of its elements (%v)", round, m.Window, cover)
			}
		}
	}
}
