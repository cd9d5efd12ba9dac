package state

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// KeyedStateHandle describes a written keyed snapshot stream, as Flink's
// KeyGroupsStateHandle: the key groups it holds and where each starts, so a
// restore reads only the key groups it owns.
type KeyedStateHandle struct {
	// KeyGroupRange is the key groups in the stream.
	KeyGroupRange KeyGroupRange
	// Offsets[i] is the byte offset of key group KeyGroupRange.Start+i,
	// counted from the first byte Write wrote.
	Offsets []int64
	// Size is the number of bytes Write wrote.
	Size int64
}

// Intersects reports whether h holds any key group of r.
func (h KeyedStateHandle) Intersects(r KeyGroupRange) bool {
	return h.KeyGroupRange.Intersect(r).Len() > 0
}

// keyedHeader is the header frame of a keyed stream.
type keyedHeader struct {
	MaxParallelism int         `msgpack:"maxp"`
	Start          int         `msgpack:"kgs"`
	End            int         `msgpack:"kge"`
	KeyType        string      `msgpack:"key"`
	States         []stateMeta `msgpack:"states"`
}

// KeyedSnapshot is a keyed backend's state frozen at one instant. It is
// immutable: Write may be called from any goroutine, several times and
// concurrently, while the backend keeps being used. Dropping it frees it;
// there is nothing to release.
type KeyedSnapshot struct {
	header  []byte
	kgRange KeyGroupRange
	states  []frozenState
	now     int64
}

// Snapshot freezes the backend's state for a checkpoint. It runs on the task
// goroutine and costs O(states × key groups), independent of the amount of
// state: each key group's shards are shared with the snapshot and copied by
// the next write to them (see HeapKeyedBackend). Entries whose TTL has expired by now are left out of the
// written stream. Restored states that were not registered again are carried
// over as they were restored.
func (b *HeapKeyedBackend[K]) Snapshot() (*KeyedSnapshot, error) {
	h := keyedHeader{MaxParallelism: b.maxPar, Start: b.kgRange.Start, End: b.kgRange.End, KeyType: b.keyType}
	var states []frozenState
	for _, s := range b.order {
		h.States = append(h.States, s.meta())
		states = append(states, s.freeze())
	}
	for _, name := range slices.Sorted(maps.Keys(b.pending)) {
		p := b.pending[name]
		h.States = append(h.States, p.meta)
		states = append(states, frozenRaw(p.blobs))
	}
	header, err := msgpack.Marshal(&h)
	if err != nil {
		return nil, fmt.Errorf("state: encoding snapshot header: %w", err)
	}
	b.snapGen = b.gen
	b.gen++
	return &KeyedSnapshot{header: header, kgRange: b.kgRange, states: states, now: b.nowMs()}, nil
}

// KeyGroupRange returns the key groups the snapshot holds.
func (s *KeyedSnapshot) KeyGroupRange() KeyGroupRange { return s.kgRange }

// Write writes the snapshot to w and returns its handle. It is the
// asynchronous part of a checkpoint: it may block on w, and it checks ctx
// between key groups. Each key group is encoded into memory before it is
// written, so Write holds at most one key group's encoding at a time. On
// error the bytes already written are garbage.
//
// (The method is not named WriteTo because it returns a handle, not the
// byte count io.WriterTo requires.)
func (s *KeyedSnapshot) Write(ctx context.Context, w io.Writer) (KeyedStateHandle, error) {
	cw := &countingWriter{w: w}
	if _, err := cw.Write(streamPrefix(streamKeyed)); err != nil {
		return KeyedStateHandle{}, fmt.Errorf("state: writing snapshot: %w", err)
	}
	if err := cw.writeFrame(s.header); err != nil {
		return KeyedStateHandle{}, fmt.Errorf("state: writing snapshot: %w", err)
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	offsets := make([]int64, s.kgRange.Len())
	for i := range offsets {
		if err := ctx.Err(); err != nil {
			return KeyedStateHandle{}, fmt.Errorf("state: writing snapshot: %w", err)
		}
		buf.Reset()
		if err := s.encodeKG(i, &buf, enc); err != nil {
			return KeyedStateHandle{}, fmt.Errorf("state: encoding key group %d: %w", s.kgRange.Start+i, err)
		}
		offsets[i] = cw.n
		if err := cw.writeFrame(buf.Bytes()); err != nil {
			return KeyedStateHandle{}, fmt.Errorf("state: writing snapshot: %w", err)
		}
	}
	return KeyedStateHandle{KeyGroupRange: s.kgRange, Offsets: offsets, Size: cw.n}, nil
}

func (s *KeyedSnapshot) encodeKG(i int, buf *bytes.Buffer, enc *msgpack.Encoder) error {
	if err := enc.EncodeInt(int64(s.kgRange.Start + i)); err != nil {
		return err
	}
	if err := enc.EncodeInt(int64(len(s.states))); err != nil {
		return err
	}
	for si, st := range s.states {
		if err := enc.EncodeInt(int64(si)); err != nil {
			return err
		}
		start := beginBin32(buf)
		if err := st.writeKG(i, enc, s.now); err != nil {
			return err
		}
		if err := endBin32(buf, start); err != nil {
			return err
		}
	}
	return nil
}

// frozenRaw is a restored, unregistered state: its key groups' encoded
// entries are written back as they were read. (Entries that expired since
// are not filtered: the backend cannot decode a state it has no type for.)
type frozenRaw [][]byte

func (f frozenRaw) writeKG(idx int, enc *msgpack.Encoder, _ int64) error {
	if f[idx] == nil {
		return enc.EncodeInt(0)
	}
	_, err := enc.Writer().Write(f[idx])
	return err
}
