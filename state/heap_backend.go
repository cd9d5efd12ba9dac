package state

import (
	"fmt"
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// KeyedBackendOptions configures a HeapKeyedBackend. Start from
// DefaultKeyedBackendOptions or SubtaskKeyedBackendOptions; the zero value is
// not valid (its max parallelism is 0).
type KeyedBackendOptions struct {
	// MaxParallelism is the number of key groups of the job; it must be the
	// same for every subtask and every restore.
	MaxParallelism int
	// KeyGroupRange is the key groups this backend owns; it must lie in
	// [0, MaxParallelism-1] and not be empty.
	KeyGroupRange KeyGroupRange
	// Clock measures processing time for TTL. Nil means SystemClock.
	Clock Clock
}

// DefaultKeyedBackendOptions returns options for a backend that owns every
// key group of DefaultMaxParallelism, as a job with parallelism 1 has.
func DefaultKeyedBackendOptions() KeyedBackendOptions {
	return SubtaskKeyedBackendOptions(DefaultMaxParallelism, 1, 0)
}

// SubtaskKeyedBackendOptions returns options for subtask index of an
// operator with the given parallelism: the key groups Flink assigns to it.
func SubtaskKeyedBackendOptions(maxParallelism, parallelism, index int) KeyedBackendOptions {
	return KeyedBackendOptions{
		MaxParallelism: maxParallelism,
		KeyGroupRange:  KeyGroupRangeForSubtask(maxParallelism, parallelism, index),
		Clock:          SystemClock{},
	}
}

// Validate checks o without changing it.
func (o KeyedBackendOptions) Validate() error {
	if o.MaxParallelism < 1 || o.MaxParallelism > UpperBoundMaxParallelism {
		return fmt.Errorf("%w: max parallelism %d out of range [1, %d]", ErrInvalidOptions, o.MaxParallelism, UpperBoundMaxParallelism)
	}
	r := o.KeyGroupRange
	if r.Len() == 0 || r.Start < 0 || r.End >= o.MaxParallelism {
		return fmt.Errorf("%w: key group range %s must be non-empty and within [0, %d]", ErrInvalidOptions, r, o.MaxParallelism-1)
	}
	return nil
}

// HeapKeyedBackend keeps keyed state in Go maps on the heap, as Flink's
// HeapKeyedStateBackend. State is stored per state, per key group, so that a
// snapshot can be cut by key group and restored at another parallelism.
//
// Concurrency: a backend belongs to one goroutine (the task's). All methods,
// and all methods of the states it returns, must be called from it; the only
// exception is KeyedSnapshot.Write, which may run on any goroutine while the
// backend keeps being used.
//
// Each state keeps, per key group, a directory of shards (Go maps of up to
// about 1024 entries; a key group doubles its shards when one grows past
// that). Snapshot shares every directory with the snapshot (copy on write):
// it costs O(states × key groups) on the task goroutine, a few microseconds,
// independent of the amount of state. The first write to a key group after a
// snapshot copies its directory, and the first write to a shard copies that
// shard, so the copying is spread over the writes that follow, one bounded
// shard at a time. Memory holds at most one extra copy of each shard written
// while a snapshot is alive.
type HeapKeyedBackend[K comparable] struct {
	maxPar   int
	kgRange  KeyGroupRange
	clock    Clock
	hash     func(K) uint32
	keyCodec codec[K]
	keyType  string

	key K
	cur int    // index of the current key's group in kgRange; -1 without a key
	sub uint32 // the current key's hash bits that pick its shard in the key group

	// gen is the current write generation; maps and map-state values
	// created at a generation <= snapGen are shared with a snapshot and are
	// copied before they are written.
	gen     uint64
	snapGen uint64

	splitLen int // shardSplitLen; tests lower it to exercise splits

	states  map[string]keyedState
	order   []keyedState // registration order, for snapshots
	pending map[string]*pendingKeyed
}

// keyedState is the untyped side of a registered keyed state.
type keyedState interface {
	meta() stateMeta
	ttlConfig() TTLConfig
	// freeze captures the state's key-group maps for a snapshot.
	freeze() frozenState
	// restoreKG loads one key group's entries written by a snapshot.
	restoreKG(idx int, blob []byte, snapTTL bool, now int64) error
	// purgeExpired removes expired entries and returns how many.
	purgeExpired(now int64) int
}

// frozenState is a state as of a snapshot; it is read-only and safe to use
// from another goroutine.
type frozenState interface {
	// writeKG appends the count and the entries of key group idx to enc's
	// buffer, leaving out entries expired at now.
	writeKG(idx int, enc *msgpack.Encoder, now int64) error
}

// NewHeapKeyedBackend returns an empty backend. It fails if the options are
// invalid or K has no stable hash.
func NewHeapKeyedBackend[K comparable](opts KeyedBackendOptions) (*HeapKeyedBackend[K], error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	h, err := Hasher[K]()
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	return &HeapKeyedBackend[K]{
		maxPar:   opts.MaxParallelism,
		kgRange:  opts.KeyGroupRange,
		clock:    opts.Clock,
		hash:     h,
		keyCodec: newCodec[K](),
		keyType:  typeName[K](),
		cur:      -1,
		gen:      1,
		splitLen: shardSplitLen,
		states:   make(map[string]keyedState),
		pending:  make(map[string]*pendingKeyed),
	}, nil
}

// MaxParallelism returns the number of key groups of the job.
func (b *HeapKeyedBackend[K]) MaxParallelism() int { return b.maxPar }

// KeyGroupRange returns the key groups this backend owns.
func (b *HeapKeyedBackend[K]) KeyGroupRange() KeyGroupRange { return b.kgRange }

// KeyGroupOf returns the key group of k.
func (b *HeapKeyedBackend[K]) KeyGroupOf(k K) int { return KeyGroupForHash(b.hash(k), b.maxPar) }

// locate returns k's key group and the hash bits that pick its shard within
// the key group: the scrambled hash's quotient by the max parallelism, whose
// remainder is the key group.
func (b *HeapKeyedBackend[K]) locate(k K) (int, uint32) {
	m := murmurScramble(b.hash(k))
	return int(m % uint32(b.maxPar)), m / uint32(b.maxPar)
}

// SetCurrentKey scopes every state of the backend to k until the next call.
// A key whose key group the backend does not own returns an error wrapping
// ErrKeyGroupOutOfRange and leaves the backend without a current key.
func (b *HeapKeyedBackend[K]) SetCurrentKey(k K) error {
	kg, sub := b.locate(k)
	if !b.kgRange.Contains(kg) {
		var zero K
		b.key, b.cur = zero, -1
		return fmt.Errorf("%w: key %v is in key group %d, this backend owns %s", ErrKeyGroupOutOfRange, k, kg, b.kgRange)
	}
	b.key, b.cur, b.sub = k, kg-b.kgRange.Start, sub
	return nil
}

// CurrentKey returns the current key, and false if there is none.
func (b *HeapKeyedBackend[K]) CurrentKey() (K, bool) { return b.key, b.cur >= 0 }

// CurrentKeyGroup returns the current key's group, and false if there is no
// current key.
func (b *HeapKeyedBackend[K]) CurrentKeyGroup() (int, bool) {
	if b.cur < 0 {
		return 0, false
	}
	return b.kgRange.Start + b.cur, true
}

// StateNames returns the names of the registered states and of restored
// states not registered yet, sorted.
func (b *HeapKeyedBackend[K]) StateNames() []string {
	names := slices.Collect(maps.Keys(b.states))
	for n := range b.pending {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// PurgeExpired removes every expired entry of every TTL state and returns
// the number of keys whose state it removed entirely (a list or map that
// keeps a live element or entry is trimmed but not counted). Reads and snapshots already hide expired entries; this
// frees the memory of entries that are never read again. It costs a pass
// over all state, on the task goroutine.
func (b *HeapKeyedBackend[K]) PurgeExpired() int {
	now := b.nowMs()
	n := 0
	for _, s := range b.order {
		if s.ttlConfig().Enabled() {
			n += s.purgeExpired(now)
		}
	}
	return n
}

// Keys returns the keys that have an entry in the registered state named
// name, in no particular order (expired TTL entries included). It fails
// for a state that is not registered. Operators use it after a restore to
// find the keys they keep something for, such as timers.
func (b *HeapKeyedBackend[K]) Keys(name string) ([]K, error) {
	s, ok := b.states[name]
	if !ok {
		return nil, fmt.Errorf("%w: state %q is not registered", ErrUnknownState, name)
	}
	return s.(interface{ keys() []K }).keys(), nil
}

func (b *HeapKeyedBackend[K]) nowMs() int64 { return b.clock.Now().UnixMilli() }

func (b *HeapKeyedBackend[K]) errNoKey(name string) error {
	return fmt.Errorf("%w: state %q accessed outside a keyed context (call SetCurrentKey first)", ErrNoCurrentKey, name)
}

// register returns the state registered under meta.Name, or creates it with
// create, loads any restored data into it, and registers it.
func register[K comparable, S keyedState](b *HeapKeyedBackend[K], m stateMeta, ttl TTLConfig, create func() S) (S, error) {
	var zero S
	if s, ok := b.states[m.Name]; ok {
		typed, ok := s.(S)
		if !ok || !s.meta().sameShape(m) || s.ttlConfig() != ttl {
			return zero, fmt.Errorf("%w: state %q is registered as %v (TTL %+v), requested as %v (TTL %+v)",
				ErrIncompatibleState, m.Name, s.meta(), s.ttlConfig(), m, ttl)
		}
		return typed, nil
	}
	s := create()
	if p, ok := b.pending[m.Name]; ok {
		if !p.meta.sameShape(m) {
			return zero, fmt.Errorf("%w: state %q is %v in the restored snapshot, requested as %v",
				ErrIncompatibleState, m.Name, p.meta, m)
		}
		now := b.nowMs()
		for idx, blob := range p.blobs {
			if blob == nil {
				continue
			}
			if err := s.restoreKG(idx, blob, p.meta.TTL, now); err != nil {
				return zero, fmt.Errorf("restoring state %q, key group %d: %w", m.Name, b.kgRange.Start+idx, err)
			}
		}
		delete(b.pending, m.Name)
	}
	b.states[m.Name] = s
	b.order = append(b.order, s)
	return s, nil
}
