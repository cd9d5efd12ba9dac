// Package state holds keyed and operator state for flinkgo operators: key
// groups, the state primitives (value, list, map, reducing, aggregating) and
// the backends that keep them and snapshot them for checkpoints.
//
// Keys are mapped to key groups exactly as Apache Flink maps them: a stable
// 32-bit hash of the key is scrambled with murmur3's finalizer and taken
// modulo the job's max parallelism. Each parallel subtask owns a contiguous
// range of key groups, so state can move between parallelisms by moving
// whole key groups.
//
// # Keyed state
//
// A HeapKeyedBackend belongs to one subtask and owns its key-group range.
// The operator sets the current key for each record, and every state
// obtained from the backend is then scoped to that key:
//
//	b, _ := state.NewHeapKeyedBackend[string](state.SubtaskKeyedBackendOptions(128, 4, 1))
//	count, _ := state.GetValueState(b, state.ValueStateDescriptor[int64]{Name: "count"})
//	for _, rec := range records {
//		if err := b.SetCurrentKey(rec.User); err != nil { ... } // not this subtask's key
//		n, _, _ := count.Value()
//		_ = count.Update(n + 1)
//	}
//
// States are registered by name on first use (GetValueState, GetListState,
// GetMapState, GetReducingState, GetAggregatingState) and optionally expire
// with a processing-time TTL (TTLConfig). The getters take a
// KeyedStateStore, the interface a keyed function sees (flink's
// KeyedContext.State returns one); every backend implements it.
//
// # Checkpoints and rescaling
//
// Snapshot freezes the state in a few microseconds (copy on write) and
// returns a KeyedSnapshot whose Write streams it, on any goroutine, while
// the backend keeps serving records. The KeyedStateHandle it returns holds
// the offset of every key group in the stream, so Restore on a backend of
// another parallelism reads only the key groups that backend owns. Streams
// are msgpack with a magic, a version and a CRC-32C per key group; damage is
// reported as ErrCorruptSnapshot, never a panic.
//
// # Operator state
//
// An OperatorBackend holds named lists that are not keyed, for sources and
// sinks: split lists, redistributed evenly on rescale, and union lists, which
// every subtask receives whole. RedistributeOperatorState computes who gets
// what from the old subtasks' handles.
//
// # Concurrency
//
// Backends and their states are used from the task's goroutine only; the
// snapshots they return are immutable and may be written from anywhere.
package state
