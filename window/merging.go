package window

import (
	"errors"
	"fmt"
	"slices"
)

// ErrCorruptSnapshot is returned when restoring a MergingWindowSet from mappings that no
// MergingWindowSet could have produced.
var ErrCorruptSnapshot = errors.New("window: corrupt merging window set snapshot")

// ErrUnknownWindow is returned when retiring a window the MergingWindowSet does not track.
var ErrUnknownWindow = errors.New("window: window not in flight")

// WindowMapping pairs an in-flight window with the state window its contents are stored under.
type WindowMapping struct {
	// Window is the in-flight (possibly merged) window.
	Window TimeWindow
	// StateWindow is the window whose namespace holds the contents and trigger state: the
	// window itself until it first merges, then the state window of one of the merged windows.
	StateWindow TimeWindow
}

// MergeFunc is called by MergingWindowSet.AddWindow when windows merge. result is the new
// merged window, merged the in-flight windows it replaces (never the added window, which had no
// state yet), stateResult the state window that now holds result's contents, and
// mergedStateWindows the other state windows whose contents (window contents and trigger state)
// the caller must merge into stateResult and then clear. The caller typically also calls the
// trigger's OnMerge for result and Clear for each merged window, and deletes the merged windows'
// cleanup timers. The slices are only valid during the call.
type MergeFunc func(result TimeWindow, merged []TimeWindow, stateResult TimeWindow, mergedStateWindows []TimeWindow) error

// MergingWindowSet tracks the in-flight windows of one key under a merging assigner, Flink's
// MergingWindowSet. When windows merge, the merged window keeps the state window of one of
// them, so that merging moves only the other windows' contents; StateWindow says where a
// window's contents live.
//
// A MergingWindowSet is not safe for concurrent use; an operator keeps one per key (or restores
// one from keyed state for each element) and snapshots it with Snapshot.
type MergingWindowSet struct {
	assigner MergingAssigner
	mapping  map[TimeWindow]TimeWindow // in-flight window -> state window
	scratch  []TimeWindow
}

// NewMergingWindowSet returns a set for assigner restored from snapshot (nil for an empty set).
// It fails with ErrCorruptSnapshot if the snapshot lists a window twice, or lists windows that
// intersect (in-flight windows never do: they would have merged).
func NewMergingWindowSet(assigner MergingAssigner, snapshot []WindowMapping) (*MergingWindowSet, error) {
	s := &MergingWindowSet{assigner: assigner, mapping: make(map[TimeWindow]TimeWindow, len(snapshot))}
	for _, m := range snapshot {
		if m.Window.End <= m.Window.Start {
			return nil, fmt.Errorf("%w: window %v is empty", ErrCorruptSnapshot, m.Window)
		}
		if _, dup := s.mapping[m.Window]; dup {
			return nil, fmt.Errorf("%w: window %v listed twice", ErrCorruptSnapshot, m.Window)
		}
		s.mapping[m.Window] = m.StateWindow
	}
	ws := s.windows()
	for i := 1; i < len(ws); i++ {
		if ws[i-1].Intersects(ws[i]) {
			return nil, fmt.Errorf("%w: in-flight windows %v and %v intersect", ErrCorruptSnapshot, ws[i-1], ws[i])
		}
	}
	return s, nil
}

// windows returns the in-flight windows sorted, in the scratch buffer.
func (s *MergingWindowSet) windows() []TimeWindow {
	s.scratch = s.scratch[:0]
	for w := range s.mapping {
		s.scratch = append(s.scratch, w)
	}
	slices.SortFunc(s.scratch, Compare)
	return s.scratch
}

// Len returns the number of in-flight windows.
func (s *MergingWindowSet) Len() int { return len(s.mapping) }

// StateWindow returns the state window holding w's contents, and whether w is in flight.
func (s *MergingWindowSet) StateWindow(w TimeWindow) (TimeWindow, bool) {
	st, ok := s.mapping[w]
	return st, ok
}

// RetireWindow removes w after it was purged or cleaned up. It fails with ErrUnknownWindow if
// w is not in flight.
func (s *MergingWindowSet) RetireWindow(w TimeWindow) error {
	if _, ok := s.mapping[w]; !ok {
		return fmt.Errorf("%w: cannot retire %v", ErrUnknownWindow, w)
	}
	delete(s.mapping, w)
	return nil
}

// AddWindow adds a new window (as assigned to an element), merges it with the in-flight windows
// it intersects, and returns the window it ended up in: w itself, a merged window containing it,
// or an in-flight window that already contained it. merge is called once per merge, in order of
// window start, after the set has been updated; if it fails, AddWindow returns its error at
// once and the set keeps the new mapping, so the caller should fail (and later restore) rather
// than go on.
//
// Adding a window that is already in flight changes nothing and returns it.
func (s *MergingWindowSet) AddWindow(w TimeWindow, merge MergeFunc) (TimeWindow, error) {
	if _, ok := s.mapping[w]; ok {
		return w, nil
	}
	type group struct {
		result TimeWindow
		merged []TimeWindow
	}
	var groups []group
	all := append(s.windows(), w)
	s.assigner.MergeWindows(all, func(result TimeWindow, merged []TimeWindow) {
		groups = append(groups, group{result, slices.Clone(merged)})
	})

	resultWindow, mergedNew := w, false
	var mergedState []TimeWindow
	for _, g := range groups {
		merged := g.merged
		if i := slices.Index(merged, w); i >= 0 {
			merged = slices.Delete(merged, i, i+1)
			mergedNew = true
			resultWindow = g.result
		}
		if len(merged) == 0 { // cannot happen with distinct windows in a group of two or more
			continue
		}
		// The merged window keeps the state window of the earliest window it replaces.
		stateResult := s.mapping[merged[0]]
		mergedState = mergedState[:0]
		for _, m := range merged {
			if st, ok := s.mapping[m]; ok {
				delete(s.mapping, m)
				if st != stateResult {
					mergedState = append(mergedState, st)
				}
			}
		}
		s.mapping[g.result] = stateResult
		// An in-flight window that merely swallowed the new window did not change: nothing to
		// merge.
		if len(merged) == 1 && merged[0] == g.result {
			continue
		}
		if err := merge(g.result, merged, stateResult, mergedState); err != nil {
			return resultWindow, err
		}
	}
	if !mergedNew {
		s.mapping[w] = w // a new, self-contained window is its own state window
	}
	return resultWindow, nil
}

// Snapshot returns the in-flight windows and their state windows, sorted by window. It is a new
// slice the caller owns; NewMergingWindowSet restores it.
func (s *MergingWindowSet) Snapshot() []WindowMapping {
	ws := s.windows()
	out := make([]WindowMapping, len(ws))
	for i, w := range ws {
		out[i] = WindowMapping{Window: w, StateWindow: s.mapping[w]}
	}
	return out
}
