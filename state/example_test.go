package state_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/flinkgo/flink/state"
)

// Count words per key, checkpoint, and restore the count at parallelism 2.
func Example() {
	b, err := state.NewHeapKeyedBackend[string](state.DefaultKeyedBackendOptions())
	if err != nil {
		panic(err)
	}
	desc := state.ValueStateDescriptor[int64]{Name: "count"}
	count, err := state.GetValueState(b, desc)
	if err != nil {
		panic(err)
	}
	for _, word := range []string{"to", "be", "or", "not", "to", "be"} {
		if err := b.SetCurrentKey(word); err != nil {
			panic(err)
		}
		n, _, _ := count.Value()
		if err := count.Update(n + 1); err != nil {
			panic(err)
		}
	}

	// Checkpoint: a quick synchronous freeze, then the write.
	snap, err := b.Snapshot()
	if err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	handle, err := snap.Write(context.Background(), &buf)
	if err != nil {
		panic(err)
	}

	// Restore at parallelism 2: each subtask reads only its key groups.
	for sub := range 2 {
		nb, err := state.NewHeapKeyedBackend[string](state.SubtaskKeyedBackendOptions(state.DefaultMaxParallelism, 2, sub))
		if err != nil {
			panic(err)
		}
		if err := nb.Restore(state.KeyedStateInput{Handle: handle, Reader: bytes.NewReader(buf.Bytes())}); err != nil {
			panic(err)
		}
		c, err := state.GetValueState(nb, desc)
		if err != nil {
			panic(err)
		}
		var lines []string
		for _, word := range []string{"be", "not", "or", "to"} {
			if nb.SetCurrentKey(word) != nil {
				continue // another subtask's key
			}
			n, _, _ := c.Value()
			lines = append(lines, fmt.Sprintf("%s=%d", word, n))
		}
		slices.Sort(lines)
		fmt.Printf("subtask %d (key groups %v): %v\n", sub, nb.KeyGroupRange(), lines)
	}
	// Output:
	// subtask 0 (key groups [0, 63]): [be=2]
	// subtask 1 (key groups [64, 127]): [not=1 or=1 to=2]
}

// Source offsets as operator list state, restored at a lower parallelism.
func ExampleRedistributeOperatorState() {
	var streams [][]byte
	var handles []state.OperatorStateHandle
	for sub := range 3 {
		b := state.NewOperatorBackend()
		offsets, err := state.GetOperatorListState(b, state.ListStateDescriptor[int64]{Name: "offsets"})
		if err != nil {
			panic(err)
		}
		_ = offsets.Add(int64(100 * sub))
		snap, _ := b.Snapshot()
		var buf bytes.Buffer
		h, err := snap.Write(context.Background(), &buf)
		if err != nil {
			panic(err)
		}
		streams, handles = append(streams, buf.Bytes()), append(handles, h)
	}

	assignments, err := state.RedistributeOperatorState(handles, 2)
	if err != nil {
		panic(err)
	}
	for sub, mine := range assignments {
		b := state.NewOperatorBackend()
		var inputs []state.OperatorStateInput
		for _, a := range mine {
			inputs = append(inputs, state.OperatorStateInput{Handle: a.Handle, Reader: bytes.NewReader(streams[a.Stream])})
		}
		if err := b.Restore(inputs...); err != nil {
			panic(err)
		}
		offsets, _ := state.GetOperatorListState(b, state.ListStateDescriptor[int64]{Name: "offsets"})
		got, _ := offsets.Get()
		fmt.Printf("subtask %d: %v\n", sub, got)
	}
	// Output:
	// subtask 0: [0 100]
	// subtask 1: [200]
}

// A keyed function sees its state as a KeyedStateStore, whatever backend
// holds it.
func ExampleKeyedStateStore() {
	b, _ := state.NewHeapKeyedBackend[string](state.SubtaskKeyedBackendOptions(128, 1, 0))
	var store state.KeyedStateStore[string] = b
	seen, _ := state.GetListState(store, state.ListStateDescriptor[int]{Name: "seen"})
	for i, user := range []string{"ann", "bob", "ann"} {
		_ = b.SetCurrentKey(user)
		_ = seen.Add(i)
	}
	_ = b.SetCurrentKey("ann")
	key, _ := store.CurrentKey()
	vs, _ := seen.Get()
	fmt.Println(key, vs)
	// Output: ann [0 2]
}
