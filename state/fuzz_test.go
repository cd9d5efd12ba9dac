package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// scanFrames returns the offsets of the frames after the header, walking the
// length prefixes; it stops at the first frame that does not fit.
func scanFrames(data []byte, max int) []int64 {
	var offs []int64
	off := int64(prefixSize)
	first := true
	for len(offs) < max && off+frameHeaderSize <= int64(len(data)) {
		n := binary.BigEndian.Uint64(data[off:])
		if n > uint64(int64(len(data))-off-frameHeaderSize) {
			break
		}
		if !first {
			offs = append(offs, off)
		}
		first = false
		off += frameHeaderSize + int64(n)
	}
	return offs
}

// FuzzKeyedRestore feeds arbitrary streams to the keyed restore and to the
// decoding of every kind of state: it must return errors, never panic or
// hang. Offsets come from walking the stream's frames, padded with
// arbitrary ones.
func FuzzKeyedRestore(f *testing.F) {
	data, _ := smallKeyedSnapshot(f)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		offs := scanFrames(data, 4)
		for len(offs) < 4 {
			offs = append(offs, int64(len(data)-len(offs)*13))
		}
		h := KeyedStateHandle{KeyGroupRange: KeyGroupRange{0, 3}, Offsets: offs}
		err := restoreAndRegister(data, h, int64(len(data)))
		if err != nil && !isFormatErr(err) && !errors.Is(err, ErrIncompatibleState) && !errors.Is(err, ErrRestore) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		// A restore of half the key groups reads less, and must behave too.
		b, _ := NewHeapKeyedBackend[string](KeyedBackendOptions{MaxParallelism: 4, KeyGroupRange: KeyGroupRange{2, 3}})
		if b.Restore(KeyedStateInput{Handle: KeyedStateHandle{KeyGroupRange: h.KeyGroupRange, Offsets: offs, Size: int64(len(data))}, Reader: bytes.NewReader(data)}) == nil {
			_, _ = GetMapState(b, MapStateDescriptor[string, int]{Name: "m"})
			_, _ = GetListState(b, ListStateDescriptor[string]{Name: "l"})
		}
	})
}

// FuzzOperatorRestore does the same for operator streams: the frames after
// the header are given to the split state "s" and the union state "u".
func FuzzOperatorRestore(f *testing.F) {
	data, _ := smallOperatorSnapshot(f)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		offs := scanFrames(data, 16)
		h := OperatorStateHandle{Size: int64(len(data)), States: []OperatorStateMeta{
			{Name: "s", Mode: SplitDistribution, Offsets: offs[:len(offs)/2]},
			{Name: "u", Mode: UnionDistribution, Offsets: offs[len(offs)/2:]},
		}}
		err := restoreOperator(data, h)
		if err != nil && !isFormatErr(err) && !errors.Is(err, ErrIncompatibleState) && !errors.Is(err, ErrRestore) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpus under
// testdata/fuzz when FLINKGO_WRITE_FUZZ_SEEDS=1: valid streams and a few
// damaged ones.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("FLINKGO_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set FLINKGO_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz")
	}
	keyed, _ := smallKeyedSnapshot(t)
	op, _ := smallOperatorSnapshot(t)

	// A TTL'd snapshot and one with an unregistered state carried over.
	clock := newFakeClock()
	b := newBackend[string](t, KeyedBackendOptions{MaxParallelism: 4, KeyGroupRange: KeyGroupRange{0, 3}, Clock: clock})
	ttl := TTLConfig{TTL: 1 << 40}
	v, err := GetValueState(b, ValueStateDescriptor[int64]{Name: "v", TTL: ttl})
	must(t, err)
	m, err := GetMapState(b, MapStateDescriptor[string, int]{Name: "m", TTL: ttl})
	must(t, err)
	for _, k := range keys(5) {
		must(t, b.SetCurrentKey(k))
		must(t, v.Update(42))
		must(t, m.Put(k, 1))
	}
	ttlIn := snap(t, b)
	ttlData := make([]byte, ttlIn.Handle.Size)
	_, _ = ttlIn.Reader.ReadAt(ttlData, 0)

	damaged := func(d []byte, f func([]byte)) []byte {
		d = bytes.Clone(d)
		f(d)
		return d
	}
	seeds := map[string][][]byte{
		"FuzzKeyedRestore": {
			keyed, ttlData,
			keyed[:len(keyed)/2],
			damaged(keyed, func(d []byte) { d[len(d)-3] ^= 1 }),
			damaged(keyed, func(d []byte) { binary.BigEndian.PutUint16(d[4:], 9) }),
			damaged(keyed, func(d []byte) { binary.BigEndian.PutUint64(d[8:], 1<<60) }),
			{},
		},
		"FuzzOperatorRestore": {
			op, op[:len(op)-5],
			damaged(op, func(d []byte) { d[20] ^= 0x80 }),
			{},
		},
	}
	for name, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		must(t, os.MkdirAll(dir, 0o755))
		for i, d := range list {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", d)
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644))
		}
	}
}
