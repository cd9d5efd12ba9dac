package state

import (
	"fmt"
	"maps"
	"slices"
)

// OperatorStateAssignment is the part of one old subtask's operator stream
// that a new subtask restores.
type OperatorStateAssignment struct {
	// Stream is the index of the old subtask's handle in the slice given to
	// RedistributeOperatorState.
	Stream int
	// Handle is the old handle cut down to the assigned elements.
	Handle OperatorStateHandle
}

// RedistributeOperatorState computes which elements each of newParallelism
// subtasks restores from the handles of the old subtasks (old[i] is old
// subtask i's). It is deterministic and does no I/O:
//
//   - A split state keeps each old subtask's elements with the same subtask
//     if the parallelism is unchanged. Otherwise all elements, in old-subtask
//     then element order, are cut into newParallelism contiguous runs whose
//     lengths differ by at most one (the first ones get the extra element),
//     as Flink's RoundRobinOperatorStateRepartitioner.
//   - A union state gives every new subtask every element.
//
// The result has one slice per new subtask, ordered by Stream; a handle's
// states are in name order. A state that has different modes in different
// handles is an error wrapping ErrIncompatibleState.
func RedistributeOperatorState(old []OperatorStateHandle, newParallelism int) ([][]OperatorStateAssignment, error) {
	if newParallelism < 1 {
		return nil, fmt.Errorf("%w: new parallelism %d < 1", ErrRestore, newParallelism)
	}
	type elem struct {
		stream int
		off    int64
	}
	modes := make(map[string]DistributionMode)
	elems := make(map[string][]elem)
	for si, h := range old {
		for _, s := range h.States {
			if m, ok := modes[s.Name]; ok && m != s.Mode {
				return nil, fmt.Errorf("%w: operator state %q is %v in one handle and %v in another", ErrIncompatibleState, s.Name, m, s.Mode)
			}
			modes[s.Name] = s.Mode
			for _, off := range s.Offsets {
				elems[s.Name] = append(elems[s.Name], elem{si, off})
			}
		}
	}
	// assigned[new subtask][old stream][state name] = offsets
	assigned := make([]map[int]map[string][]int64, newParallelism)
	for i := range assigned {
		assigned[i] = make(map[int]map[string][]int64)
	}
	give := func(sub int, name string, e elem) {
		byState := assigned[sub][e.stream]
		if byState == nil {
			byState = make(map[string][]int64)
			assigned[sub][e.stream] = byState
		}
		byState[name] = append(byState[name], e.off)
	}
	for _, name := range slices.Sorted(maps.Keys(modes)) {
		es := elems[name]
		switch {
		case modes[name] == UnionDistribution:
			for sub := range newParallelism {
				for _, e := range es {
					give(sub, name, e)
				}
			}
		case len(old) == newParallelism:
			for _, e := range es {
				give(e.stream, name, e)
			}
		default:
			base, extra := len(es)/newParallelism, len(es)%newParallelism
			next := 0
			for sub := range newParallelism {
				n := base
				if sub < extra {
					n++
				}
				for _, e := range es[next : next+n] {
					give(sub, name, e)
				}
				next += n
			}
		}
	}
	out := make([][]OperatorStateAssignment, newParallelism)
	for sub, byStream := range assigned {
		for _, stream := range slices.Sorted(maps.Keys(byStream)) {
			h := OperatorStateHandle{Size: old[stream].Size}
			for _, name := range slices.Sorted(maps.Keys(byStream[stream])) {
				h.States = append(h.States, OperatorStateMeta{Name: name, Mode: modes[name], Offsets: byStream[stream][name]})
			}
			out[sub] = append(out[sub], OperatorStateAssignment{Stream: stream, Handle: h})
		}
	}
	return out, nil
}

// KeyedStreamsForRange returns the indexes of the handles that hold key
// groups of r: the streams a keyed backend owning r restores from.
func KeyedStreamsForRange(handles []KeyedStateHandle, r KeyGroupRange) []int {
	var out []int
	for i, h := range handles {
		if h.Intersects(r) {
			out = append(out, i)
		}
	}
	return out
}
