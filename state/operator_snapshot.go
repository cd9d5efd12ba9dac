package state

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// OperatorStateHandle describes a written operator snapshot stream, or the
// part of one assigned to a subtask by RedistributeOperatorState.
type OperatorStateHandle struct {
	// States lists each state in the stream with the offsets of its
	// elements, in the order they were written.
	States []OperatorStateMeta
	// Size is the size of the whole stream in bytes.
	Size int64
}

// OperatorStateMeta is one operator list state in a stream.
type OperatorStateMeta struct {
	// Name is the state's name.
	Name string
	// Mode is how the state is redistributed.
	Mode DistributionMode
	// Offsets are the byte offsets of the state's elements in the stream.
	Offsets []int64
}

// operatorHeader is the header frame of an operator stream.
type operatorHeader struct {
	States []stateMeta `msgpack:"states"`
}

// OperatorSnapshot is an operator backend's state frozen at one instant; like
// KeyedSnapshot it is immutable and may be written from any goroutine.
type OperatorSnapshot struct {
	header []byte
	metas  []stateMeta
	states []frozenOp
}

// Snapshot freezes the backend's lists. It shares each list with the
// snapshot (lists are only appended to in place), so it costs O(states).
// Restored states that were not registered again are carried over.
func (b *OperatorBackend) Snapshot() (*OperatorSnapshot, error) {
	var h operatorHeader
	var states []frozenOp
	for _, s := range b.order {
		h.States = append(h.States, s.meta())
		states = append(states, s.freeze())
	}
	for _, name := range slices.Sorted(maps.Keys(b.pending)) {
		p := b.pending[name]
		h.States = append(h.States, p.meta)
		states = append(states, frozenRawOp(p.elems))
	}
	header, err := msgpack.Marshal(&h)
	if err != nil {
		return nil, fmt.Errorf("state: encoding snapshot header: %w", err)
	}
	return &OperatorSnapshot{header: header, metas: h.States, states: states}, nil
}

// Write writes the snapshot to w and returns its handle; see
// KeyedSnapshot.Write.
func (s *OperatorSnapshot) Write(ctx context.Context, w io.Writer) (OperatorStateHandle, error) {
	fail := func(err error) (OperatorStateHandle, error) {
		return OperatorStateHandle{}, fmt.Errorf("state: writing operator snapshot: %w", err)
	}
	cw := &countingWriter{w: w}
	if _, err := cw.Write(streamPrefix(streamOperator)); err != nil {
		return fail(err)
	}
	if err := cw.writeFrame(s.header); err != nil {
		return fail(err)
	}
	e := newEncBuf()
	h := OperatorStateHandle{States: make([]OperatorStateMeta, len(s.states))}
	for si, st := range s.states {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		m := OperatorStateMeta{Name: s.metas[si].Name, Mode: modeOf(s.metas[si].Kind), Offsets: make([]int64, st.len())}
		for i := range m.Offsets {
			e.buf.Reset()
			if err := st.encode(i, e); err != nil {
				return fail(fmt.Errorf("state %q element %d: %w", m.Name, i, err))
			}
			m.Offsets[i] = cw.n
			if err := cw.writeFrame(e.buf.Bytes()); err != nil {
				return fail(err)
			}
		}
		h.States[si] = m
	}
	h.Size = cw.n
	return h, nil
}

func modeOf(k stateKind) DistributionMode {
	if k == kindOperatorUnion {
		return UnionDistribution
	}
	return SplitDistribution
}

// OperatorStateInput is one operator snapshot stream (or the part of it
// assigned to this subtask) to restore from: its handle and a reader over
// the bytes Write wrote.
type OperatorStateInput struct {
	Handle OperatorStateHandle
	Reader io.ReaderAt
}

// Restore loads operator snapshot streams into a backend before its states
// are registered: pass the assignments RedistributeOperatorState computed
// for this subtask. Elements of a state are concatenated in input order.
// Errors are as for HeapKeyedBackend.Restore; on error nothing changes.
func (b *OperatorBackend) Restore(inputs ...OperatorStateInput) error {
	if len(b.states) > 0 {
		return fmt.Errorf("%w: %d operator states already registered; restore before registering states", ErrRestore, len(b.states))
	}
	staged := make(map[string]*pendingOp, len(b.pending))
	for name, p := range b.pending {
		staged[name] = &pendingOp{meta: p.meta, elems: slices.Clone(p.elems)}
	}
	for i, in := range inputs {
		if err := restoreOperatorInput(in, staged); err != nil {
			return fmt.Errorf("restoring operator input %d: %w", i, err)
		}
	}
	b.pending = staged
	return nil
}

func restoreOperatorInput(in OperatorStateInput, staged map[string]*pendingOp) error {
	if len(in.Handle.States) == 0 {
		return nil
	}
	if in.Reader == nil {
		return fmt.Errorf("%w: operator input has no reader", ErrRestore)
	}
	sr := streamReader{r: in.Reader, size: in.Handle.Size}
	if err := sr.checkPrefix(streamOperator); err != nil {
		return err
	}
	payload, err := sr.frame(prefixSize)
	if err != nil {
		return fmt.Errorf("reading header: %w", err)
	}
	var hdr operatorHeader
	if err := msgpack.Unmarshal(payload, &hdr); err != nil {
		return corruptf("decoding header: %v", err)
	}
	byName := make(map[string]stateMeta, len(hdr.States))
	for i, m := range hdr.States {
		if (m.Kind != kindOperatorList && m.Kind != kindOperatorUnion) || m.Name == "" {
			return corruptf("header state %d: %q of kind %v", i, m.Name, m.Kind)
		}
		if _, dup := byName[m.Name]; dup {
			return corruptf("state %q listed twice in the header", m.Name)
		}
		byName[m.Name] = m
	}
	for _, hs := range in.Handle.States {
		m, ok := byName[hs.Name]
		if !ok {
			return corruptf("handle names state %q, which the stream does not have", hs.Name)
		}
		if hs.Mode != modeOf(m.Kind) {
			return corruptf("handle says state %q is %v, the stream says %v", hs.Name, hs.Mode, m.Kind)
		}
		p, ok := staged[m.Name]
		if !ok {
			p = &pendingOp{meta: m}
			staged[m.Name] = p
		} else if !p.meta.sameShape(m) {
			return fmt.Errorf("%w: operator state %q is %v in one stream and %v in another", ErrIncompatibleState, m.Name, p.meta, m)
		}
		for _, off := range hs.Offsets {
			elem, err := sr.frame(off)
			if err != nil {
				return fmt.Errorf("state %q: %w", m.Name, err)
			}
			p.elems = append(p.elems, elem)
		}
	}
	return nil
}
