package state

// KeyedStateStore is a subtask's keyed state as a keyed function sees it,
// scoped to the key of the record being processed: Flink's
// KeyedStateStore. Pass it to GetValueState, GetListState, GetMapState,
// GetReducingState and GetAggregatingState to register or look up a state
// by its descriptor.
//
// The package's state backends implement it (HeapKeyedBackend today); it
// has unexported methods, so that a state registered through it is always
// one the backend snapshots. A store belongs to its subtask's goroutine: do
// not use it, or the states it returned, from other goroutines.
type KeyedStateStore[K comparable] interface {
	// CurrentKey returns the key the states are scoped to; false before
	// any key was set.
	CurrentKey() (K, bool)
	// heap returns the backend holding the states.
	heap() *HeapKeyedBackend[K]
}

// heap implements KeyedStateStore.
func (b *HeapKeyedBackend[K]) heap() *HeapKeyedBackend[K] { return b }

var _ KeyedStateStore[string] = (*HeapKeyedBackend[string])(nil)
