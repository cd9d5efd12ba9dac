package window

import (
	"slices"
	"testing"
)

func TestTimeWindow(t *testing.T) {
	w := TimeWindow{Start: 10, End: 20}
	if w.MaxTimestamp() != 19 {
		t.Fatalf("MaxTimestamp = %d", w.MaxTimestamp())
	}
	if w.String() != "[10, 20)" {
		t.Fatalf("String = %q", w.String())
	}
	for _, tc := range []struct {
		o    TimeWindow
		want bool
	}{
		{TimeWindow{0, 5}, false},
		{TimeWindow{0, 9}, false},
		{TimeWindow{0, 10}, true}, // touching: Flink's intersects is inclusive
		{TimeWindow{20, 30}, true},
		{TimeWindow{21, 30}, false},
		{TimeWindow{12, 15}, true},
		{TimeWindow{0, 100}, true},
	} {
		if got := w.Intersects(tc.o); got != tc.want {
			t.Errorf("%v.Intersects(%v) = %v, want %v", w, tc.o, got, tc.want)
		}
		if got := tc.o.Intersects(w); got != tc.want {
			t.Errorf("%v.Intersects(%v) = %v, want %v (symmetry)", tc.o, w, got, tc.want)
		}
	}
	if got := w.Cover(TimeWindow{-5, 12}); got != (TimeWindow{-5, 20}) {
		t.Errorf("Cover = %v", got)
	}
	if got := w.Cover(TimeWindow{30, 40}); got != (TimeWindow{10, 40}) {
		t.Errorf("Cover of disjoint windows = %v", got)
	}
}

func TestWindowStart(t *testing.T) {
	for _, tc := range []struct{ ts, offset, size, want int64 }{
		{0, 0, 10, 0},
		{9, 0, 10, 0},
		{10, 0, 10, 10},
		{-1, 0, 10, -10},
		{-10, 0, 10, -10},
		{-11, 0, 10, -20},
		{3, 5, 10, -5},
		{5, 5, 10, 5},
		{14, 5, 10, 5},
		{15, 5, 10, 15},
		{3, -5, 10, -5},
		{-6, -5, 10, -15},
		{-5, -5, 10, -5},
		{1704067205123, 0, 10_000, 1704067200000},
		{MinTimestamp, 0, 7, MinTimestamp - (MinTimestamp%7 + 7)},
	} {
		got := WindowStart(tc.ts, tc.offset, tc.size)
		if got != tc.want {
			t.Errorf("WindowStart(%d, %d, %d) = %d, want %d", tc.ts, tc.offset, tc.size, got, tc.want)
		}
		if got > tc.ts || tc.ts >= got+tc.size {
			t.Errorf("WindowStart(%d, %d, %d) = %d does not hold ts", tc.ts, tc.offset, tc.size, got)
		}
	}
}

func TestMergeWindows(t *testing.T) {
	type group struct {
		Result TimeWindow
		Merged []TimeWindow
	}
	for _, tc := range []struct {
		name string
		in   []TimeWindow
		want []group
	}{
		{"none", nil, nil},
		{"one", []TimeWindow{{0, 10}}, nil},
		{"disjoint", []TimeWindow{{20, 30}, {0, 10}}, nil},
		{"overlap", []TimeWindow{{5, 15}, {0, 10}}, []group{{TimeWindow{0, 15}, []TimeWindow{{0, 10}, {5, 15}}}}},
		{"touch", []TimeWindow{{10, 20}, {0, 10}}, []group{{TimeWindow{0, 20}, []TimeWindow{{0, 10}, {10, 20}}}}},
		{"chain through the cover", []TimeWindow{{0, 100}, {50, 60}, {90, 120}, {200, 210}, {205, 215}, {300, 310}},
			[]group{
				{TimeWindow{0, 120}, []TimeWindow{{0, 100}, {50, 60}, {90, 120}}},
				{TimeWindow{200, 215}, []TimeWindow{{200, 210}, {205, 215}}},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []group
			MergeWindows(slices.Clone(tc.in), func(r TimeWindow, m []TimeWindow) {
				got = append(got, group{r, slices.Clone(m)})
			})
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Result != tc.want[i].Result || !slices.Equal(got[i].Merged, tc.want[i].Merged) {
					t.Fatalf("group %d: got %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
