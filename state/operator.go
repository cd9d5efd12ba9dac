package state

import (
	"fmt"
	"maps"
	"slices"
)

// DistributionMode says how an operator list state is redistributed when a
// job is restored at another parallelism.
type DistributionMode uint8

const (
	// SplitDistribution splits the elements of all old subtasks evenly over
	// the new subtasks (Flink's getListState): each element goes to exactly
	// one subtask. At unchanged parallelism each subtask keeps its own.
	SplitDistribution DistributionMode = iota
	// UnionDistribution gives every new subtask all elements of all old
	// subtasks (Flink's getUnionListState). A subtask that writes back all it
	// received multiplies the elements at the next restore; keep only the
	// elements the subtask is responsible for.
	UnionDistribution
)

// String returns "split" or "union".
func (m DistributionMode) String() string {
	switch m {
	case SplitDistribution:
		return "split"
	case UnionDistribution:
		return "union"
	}
	return fmt.Sprintf("DistributionMode(%d)", uint8(m))
}

func (m DistributionMode) kind() stateKind {
	if m == UnionDistribution {
		return kindOperatorUnion
	}
	return kindOperatorList
}

// OperatorBackend keeps operator state: named lists that are not scoped to a
// key, for sources (offsets, splits) and sinks (pending transactions), as
// Flink's OperatorStateBackend.
//
// Concurrency: a backend belongs to the task goroutine, like
// HeapKeyedBackend; OperatorSnapshot.Write may run on any goroutine.
type OperatorBackend struct {
	states  map[string]operatorState
	order   []operatorState
	pending map[string]*pendingOp
}

// operatorState is the untyped side of a registered operator list state.
type operatorState interface {
	meta() stateMeta
	freeze() frozenOp
	restore(elems [][]byte) error
}

// frozenOp is an operator list as of a snapshot; read-only.
type frozenOp interface {
	len() int
	// encode appends element i, msgpack-encoded, to dst.
	encode(i int, e *encBuf) error
}

// pendingOp is a restored operator state not registered yet: its elements,
// still encoded.
type pendingOp struct {
	meta  stateMeta
	elems [][]byte
}

// NewOperatorBackend returns an empty operator state backend.
func NewOperatorBackend() *OperatorBackend {
	return &OperatorBackend{states: make(map[string]operatorState), pending: make(map[string]*pendingOp)}
}

// StateNames returns the names of the registered states and of restored
// states not registered yet, sorted.
func (b *OperatorBackend) StateNames() []string {
	names := slices.Collect(maps.Keys(b.states))
	for n := range b.pending {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// GetOperatorListState returns the operator list state named d.Name, with
// split redistribution, registering it on first use (and loading the
// elements restored for this subtask). d.TTL must be zero. A name registered
// with another mode or type is an error wrapping ErrIncompatibleState.
func GetOperatorListState[V any](b *OperatorBackend, d ListStateDescriptor[V]) (ListState[V], error) {
	return getOperatorList(b, d, SplitDistribution)
}

// GetUnionListState returns the operator list state named d.Name, with
// union redistribution; see GetOperatorListState.
func GetUnionListState[V any](b *OperatorBackend, d ListStateDescriptor[V]) (ListState[V], error) {
	return getOperatorList(b, d, UnionDistribution)
}

func getOperatorList[V any](b *OperatorBackend, d ListStateDescriptor[V], mode DistributionMode) (ListState[V], error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if d.TTL.Enabled() {
		return nil, fmt.Errorf("%w: operator state %q cannot have a TTL", ErrInvalidDescriptor, d.Name)
	}
	m := stateMeta{Name: d.Name, Kind: mode.kind(), Types: []string{typeName[V]()}}
	if s, ok := b.states[d.Name]; ok {
		typed, ok := s.(*opListState[V])
		if !ok || !s.meta().sameShape(m) {
			return nil, fmt.Errorf("%w: operator state %q is registered as %v, requested as %v", ErrIncompatibleState, d.Name, s.meta(), m)
		}
		return typed, nil
	}
	s := &opListState[V]{m: m, c: newCodec[V]()}
	if p, ok := b.pending[d.Name]; ok {
		if !p.meta.sameShape(m) {
			return nil, fmt.Errorf("%w: operator state %q is %v in the restored snapshot, requested as %v", ErrIncompatibleState, d.Name, p.meta, m)
		}
		if err := s.restore(p.elems); err != nil {
			return nil, fmt.Errorf("restoring operator state %q: %w", d.Name, err)
		}
		delete(b.pending, d.Name)
	}
	b.states[d.Name] = s
	b.order = append(b.order, s)
	return s, nil
}

// opListState is an operator list. The slice is only ever appended to in
// place; a snapshot shares it and reads up to its own length.
type opListState[V any] struct {
	elems []V
	m     stateMeta
	c     codec[V]
}

func (s *opListState[V]) meta() stateMeta { return s.m }

func (s *opListState[V]) Get() ([]V, error) {
	if len(s.elems) == 0 {
		return nil, nil
	}
	return slices.Clone(s.elems), nil
}

func (s *opListState[V]) Add(v V) error {
	s.elems = append(s.elems, v)
	return nil
}

func (s *opListState[V]) AddAll(vs []V) error {
	s.elems = append(s.elems, vs...)
	return nil
}

func (s *opListState[V]) Update(vs []V) error {
	s.elems = nil
	if len(vs) > 0 {
		s.elems = slices.Clone(vs)
	}
	return nil
}

func (s *opListState[V]) Clear() error {
	s.elems = nil
	return nil
}

func (s *opListState[V]) freeze() frozenOp {
	return &frozenOpList[V]{elems: s.elems[:len(s.elems):len(s.elems)], c: s.c}
}

func (s *opListState[V]) restore(elems [][]byte) error {
	out := make([]V, 0, len(elems))
	for i, raw := range elems {
		r := newBlobReader(raw)
		v, err := decodeWith(r, s.c, "list element")
		if err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, v)
	}
	s.elems = out
	return nil
}

type frozenOpList[V any] struct {
	elems []V
	c     codec[V]
}

func (f *frozenOpList[V]) len() int { return len(f.elems) }

func (f *frozenOpList[V]) encode(i int, e *encBuf) error { return f.c.enc(e.enc, f.elems[i]) }

// frozenRawOp is a restored, unregistered operator state, written back as
// it was read.
type frozenRawOp [][]byte

func (f frozenRawOp) len() int { return len(f) }

func (f frozenRawOp) encode(i int, e *encBuf) error {
	_, err := e.buf.Write(f[i])
	return err
}
