package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// smallKeyedSnapshot returns a snapshot of every kind of state over four
// key groups, as bytes and handle.
func smallKeyedSnapshot(t testing.TB) ([]byte, KeyedStateHandle) {
	t.Helper()
	b := newBackend[string](t, KeyedBackendOptions{MaxParallelism: 4, KeyGroupRange: KeyGroupRange{0, 3}})
	s := registerAll(t, b)
	s.fill(t, b, keys(6), 1)
	sn, err := b.Snapshot()
	must(t, err)
	var buf bytes.Buffer
	h, err := sn.Write(t.Context(), &buf)
	must(t, err)
	return buf.Bytes(), h
}

// restoreAndRegister restores data into a backend like smallKeyedSnapshot's
// and registers every state, returning the first error.
func restoreAndRegister(data []byte, h KeyedStateHandle, size int64) error {
	b, err := NewHeapKeyedBackend[string](KeyedBackendOptions{MaxParallelism: 4, KeyGroupRange: KeyGroupRange{0, 3}})
	if err != nil {
		return err
	}
	h.Size = size
	if err := b.Restore(KeyedStateInput{Handle: h, Reader: bytes.NewReader(data)}); err != nil {
		return err
	}
	for _, get := range []func() error{
		func() error { return get2(GetValueState(b, ValueStateDescriptor[int64]{Name: "v"})) },
		func() error { return get2(GetListState(b, ListStateDescriptor[string]{Name: "l"})) },
		func() error { return get2(GetMapState(b, MapStateDescriptor[string, int]{Name: "m"})) },
		func() error { return get2(GetReducingState(b, ReducingStateDescriptor[int]{Name: "r", Reduce: sum})) },
		func() error {
			return get2(GetAggregatingState(b, AggregatingStateDescriptor[int, avgAcc, float64]{Name: "a", Aggregate: avg{}}))
		},
	} {
		if err := get(); err != nil {
			return err
		}
	}
	return nil
}

func isFormatErr(err error) bool {
	return errors.Is(err, ErrCorruptSnapshot) || errors.Is(err, ErrSnapshotVersion)
}

func TestCorruptKeyedSnapshot(t *testing.T) {
	data, h := smallKeyedSnapshot(t)
	must(t, restoreAndRegister(data, h, int64(len(data))))

	t.Run("every byte flipped", func(t *testing.T) {
		for i := range data {
			bad := bytes.Clone(data)
			bad[i] ^= 0xff
			if err := restoreAndRegister(bad, h, int64(len(bad))); !isFormatErr(err) {
				t.Fatalf("byte %d flipped: error %v, want a corrupt-snapshot error", i, err)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := range len(data) {
			// The handle's size is the real one; the stream is short.
			if err := restoreAndRegister(data[:n], h, int64(len(data))); !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("truncated to %d bytes: error %v", n, err)
			}
			// The handle claims the short size.
			if err := restoreAndRegister(data[:n], h, int64(n)); !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("truncated to %d bytes, size %d: error %v", n, n, err)
			}
		}
	})
	t.Run("wrong version", func(t *testing.T) {
		bad := bytes.Clone(data)
		binary.BigEndian.PutUint16(bad[4:], formatVersion+1)
		err := restoreAndRegister(bad, h, int64(len(bad)))
		isErr(t, err, ErrSnapshotVersion)
	})
	t.Run("operator stream as keyed", func(t *testing.T) {
		op, _ := smallOperatorSnapshot(t)
		isErr(t, restoreAndRegister(op, h, int64(len(op))), ErrCorruptSnapshot)
	})
	t.Run("wild offsets", func(t *testing.T) {
		for _, off := range []int64{-1, 0, 7, int64(len(data)), 1 << 62} {
			h2 := h
			h2.Offsets = append([]int64(nil), h.Offsets...)
			h2.Offsets[1] = off
			isErr(t, restoreAndRegister(data, h2, int64(len(data))), ErrCorruptSnapshot)
		}
	})
}

func TestCorruptOperatorSnapshot(t *testing.T) {
	data, h := smallOperatorSnapshot(t)
	must(t, restoreOperator(data, h))
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0xff
		if err := restoreOperator(bad, h); !isFormatErr(err) {
			t.Fatalf("byte %d flipped: error %v", i, err)
		}
	}
	for n := range len(data) {
		h2 := h
		h2.Size = int64(n)
		if err := restoreOperator(data[:n], h2); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("truncated to %d bytes: error %v", n, err)
		}
	}
	h2 := h
	h2.States = append([]OperatorStateMeta(nil), h.States...)
	h2.States[0].Mode = UnionDistribution
	isErr(t, restoreOperator(data, h2), ErrCorruptSnapshot)
	h2.States[0] = OperatorStateMeta{Name: "nope"}
	isErr(t, restoreOperator(data, h2), ErrCorruptSnapshot)
}

// smallOperatorSnapshot returns a snapshot with a split state "s" of ints
// and a union state "u" of strings.
func smallOperatorSnapshot(t testing.TB) ([]byte, OperatorStateHandle) {
	t.Helper()
	b := NewOperatorBackend()
	s, err := GetOperatorListState(b, ListStateDescriptor[int]{Name: "s"})
	must(t, err)
	u, err := GetUnionListState(b, ListStateDescriptor[string]{Name: "u"})
	must(t, err)
	must(t, s.AddAll([]int{1, 2, 3}))
	must(t, u.AddAll([]string{"x", "y"}))
	sn, err := b.Snapshot()
	must(t, err)
	var buf bytes.Buffer
	h, err := sn.Write(t.Context(), &buf)
	must(t, err)
	return buf.Bytes(), h
}

func restoreOperator(data []byte, h OperatorStateHandle) error {
	b := NewOperatorBackend()
	if err := b.Restore(OperatorStateInput{Handle: h, Reader: bytes.NewReader(data)}); err != nil {
		return err
	}
	if _, err := GetOperatorListState(b, ListStateDescriptor[int]{Name: "s"}); err != nil {
		return err
	}
	_, err := GetUnionListState(b, ListStateDescriptor[string]{Name: "u"})
	return err
}
