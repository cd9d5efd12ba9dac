package state

import (
	"bytes"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// KeyedStateInput is one keyed snapshot stream to restore from: its handle
// and a reader over the bytes Write wrote (offset 0 is Write's first byte).
// The reader may be shared with other inputs only if it is safe for
// concurrent ReadAt calls; Restore itself reads sequentially.
type KeyedStateInput struct {
	Handle KeyedStateHandle
	Reader io.ReaderAt
}

// pendingKeyed is a restored state that has not been registered yet: its
// entries per key group (indexed like the backend's range), still encoded.
// Registration decodes them with the requested types.
type pendingKeyed struct {
	meta  stateMeta
	blobs [][]byte
}

// Restore loads keyed snapshot streams into a backend before it is used.
// Pass the streams of every old subtask whose key groups overlap this
// backend's range (streams that do not overlap are skipped unread); from each
// it reads only the key groups this backend owns, so the same snapshots
// restore at any parallelism with the same max parallelism.
//
// States are decoded when they are registered (GetValueState and the
// others), with the types asked for there; a state registered as another
// kind or type than in the snapshot is an error wrapping
// ErrIncompatibleState. Restore fails with ErrRestore if states are already
// registered, if a key group comes from two streams, or if the max
// parallelism or key type differs; with ErrCorruptSnapshot or
// ErrSnapshotVersion for a bad stream. It either restores every input or,
// on error, changes nothing.
func (b *HeapKeyedBackend[K]) Restore(inputs ...KeyedStateInput) error {
	if len(b.states) > 0 {
		return fmt.Errorf("%w: %d states already registered; restore before registering states", ErrRestore, len(b.states))
	}
	staged := make(map[string]*pendingKeyed, len(b.pending))
	for name, p := range b.pending {
		staged[name] = &pendingKeyed{meta: p.meta, blobs: slicesClone(p.blobs)}
	}
	seen := make([]bool, b.kgRange.Len())
	for _, p := range b.pending {
		for i, blob := range p.blobs {
			seen[i] = seen[i] || blob != nil
		}
	}
	for i, in := range inputs {
		if err := b.restoreInput(in, staged, seen); err != nil {
			return fmt.Errorf("restoring keyed input %d: %w", i, err)
		}
	}
	b.pending = staged
	return nil
}

func slicesClone(s [][]byte) [][]byte { return append([][]byte(nil), s...) }

func (b *HeapKeyedBackend[K]) restoreInput(in KeyedStateInput, staged map[string]*pendingKeyed, seen []bool) error {
	h := in.Handle
	if len(h.Offsets) != h.KeyGroupRange.Len() {
		return corruptf("handle has %d offsets for key groups %s", len(h.Offsets), h.KeyGroupRange)
	}
	own := h.KeyGroupRange.Intersect(b.kgRange)
	if own.Len() == 0 {
		return nil
	}
	if in.Reader == nil {
		return fmt.Errorf("%w: input for key groups %s has no reader", ErrRestore, h.KeyGroupRange)
	}
	sr := streamReader{r: in.Reader, size: h.Size}
	if err := sr.checkPrefix(streamKeyed); err != nil {
		return err
	}
	payload, err := sr.frame(prefixSize)
	if err != nil {
		return fmt.Errorf("reading header: %w", err)
	}
	var hdr keyedHeader
	if err := msgpack.Unmarshal(payload, &hdr); err != nil {
		return corruptf("decoding header: %v", err)
	}
	if hdr.MaxParallelism != b.maxPar {
		return fmt.Errorf("%w: snapshot has max parallelism %d, backend %d", ErrRestore, hdr.MaxParallelism, b.maxPar)
	}
	if hdr.KeyType != b.keyType {
		return fmt.Errorf("%w: snapshot keys are %s, backend keys are %s", ErrIncompatibleState, hdr.KeyType, b.keyType)
	}
	written := KeyGroupRange{Start: hdr.Start, End: hdr.End}
	if written.Intersect(h.KeyGroupRange) != h.KeyGroupRange {
		return corruptf("handle key groups %s outside the stream's %s", h.KeyGroupRange, written)
	}
	// Stage the header's states; a state already staged from another stream
	// must have the same shape. (staged is discarded if Restore fails.)
	pend := make([]*pendingKeyed, len(hdr.States))
	names := make(map[string]bool, len(hdr.States))
	for i, m := range hdr.States {
		if m.Kind < kindValue || m.Kind > kindAggregating || m.Name == "" || names[m.Name] {
			return corruptf("header state %d: %q of kind %v (empty, unknown or repeated)", i, m.Name, m.Kind)
		}
		names[m.Name] = true
		if p, ok := staged[m.Name]; ok {
			if !p.meta.sameShape(m) || p.meta.TTL != m.TTL {
				return fmt.Errorf("%w: state %q is %v in one snapshot stream and %v in another", ErrIncompatibleState, m.Name, p.meta, m)
			}
			pend[i] = p
			continue
		}
		p := &pendingKeyed{meta: m, blobs: make([][]byte, b.kgRange.Len())}
		staged[m.Name] = p
		pend[i] = p
	}
	for kg := own.Start; kg <= own.End; kg++ {
		idx := kg - b.kgRange.Start
		if seen[idx] {
			return fmt.Errorf("%w: key group %d restored from two streams", ErrRestore, kg)
		}
		payload, err := sr.frame(h.Offsets[kg-h.KeyGroupRange.Start])
		if err != nil {
			return fmt.Errorf("key group %d: %w", kg, err)
		}
		if err := parseKeyGroup(payload, kg, pend, idx); err != nil {
			return fmt.Errorf("key group %d: %w", kg, err)
		}
	}
	for kg := own.Start; kg <= own.End; kg++ {
		seen[kg-b.kgRange.Start] = true
	}
	return nil
}

// parseKeyGroup splits a key-group frame into its states' blobs, which alias
// payload.
func parseKeyGroup(payload []byte, kg int, pend []*pendingKeyed, idx int) error {
	r := bytes.NewReader(payload)
	d := msgpack.NewDecoder(r)
	got, err := d.DecodeInt()
	if err != nil {
		return corruptf("reading key group number: %v", err)
	}
	if got != kg {
		return corruptf("frame holds key group %d, want %d (offsets do not match the stream)", got, kg)
	}
	n, err := decodeLen(d, r.Len())
	if err != nil {
		return err
	}
	blobs := make([][]byte, len(pend))
	for range n {
		si, err := d.DecodeInt()
		if err != nil {
			return corruptf("reading state index: %v", err)
		}
		if si < 0 || si >= len(pend) || blobs[si] != nil {
			return corruptf("state index %d invalid or repeated (header has %d states)", si, len(pend))
		}
		bl, err := d.DecodeBytesLen()
		if err != nil {
			return corruptf("reading state %d entries: %v", si, err)
		}
		if bl < 1 || bl > r.Len() {
			return corruptf("state %d entries of %d bytes with %d left", si, bl, r.Len())
		}
		pos := len(payload) - r.Len()
		blobs[si] = payload[pos : pos+bl : pos+bl]
		if _, err := r.Seek(int64(bl), io.SeekCurrent); err != nil {
			return corruptf("skipping state %d entries: %v", si, err)
		}
	}
	if r.Len() != 0 {
		return corruptf("%d trailing bytes in key group frame", r.Len())
	}
	for si, blob := range blobs {
		if blob != nil {
			pend[si].blobs[idx] = blob
		}
	}
	return nil
}
