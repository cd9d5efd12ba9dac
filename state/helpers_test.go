package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a Clock the test moves by hand.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ms.Store(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *fakeClock) Set(t time.Time)         { c.ms.Store(t.UnixMilli()) }
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func eq[T any](t testing.TB, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

func isErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one wrapping %v", err, target)
	}
}

func newBackend[K comparable](t testing.TB, opts KeyedBackendOptions) *HeapKeyedBackend[K] {
	t.Helper()
	b, err := NewHeapKeyedBackend[K](opts)
	must(t, err)
	return b
}

// value returns the current key's value state content (value, set).
func value[V any](t testing.TB, s ValueState[V]) (V, bool) {
	t.Helper()
	v, ok, err := s.Value()
	must(t, err)
	return v, ok
}

// snap takes and writes a snapshot of b.
func snap[K comparable](t testing.TB, b *HeapKeyedBackend[K]) KeyedStateInput {
	t.Helper()
	s, err := b.Snapshot()
	must(t, err)
	return writeSnap(t, s)
}

func writeSnap(t testing.TB, s *KeyedSnapshot) KeyedStateInput {
	t.Helper()
	var buf bytes.Buffer
	h, err := s.Write(context.Background(), &buf)
	must(t, err)
	eq(t, h.Size, int64(buf.Len()))
	return KeyedStateInput{Handle: h, Reader: bytes.NewReader(buf.Bytes())}
}

// dumpValues returns every live entry of a value state, keyed by key.
func dumpValues[K comparable, V any](s ValueState[V]) map[K]V {
	vs := s.(*valueState[K, V])
	out := make(map[K]V)
	for k, e := range entries(vs.t) {
		out[k] = e.v
	}
	return out
}

func dumpLists[K comparable, V any](s ListState[V]) map[K][]V {
	ls := s.(*listState[K, V])
	out := make(map[K][]V)
	for k, es := range entries(ls.t) {
		for _, e := range es {
			out[k] = append(out[k], e.v)
		}
	}
	return out
}

func dumpMaps[K, UK comparable, UV any](s MapState[UK, UV]) map[K]map[UK]UV {
	ms := s.(*mapState[K, UK, UV])
	out := make(map[K]map[UK]UV)
	for k, e := range entries(ms.t) {
		m := make(map[UK]UV, len(e.m))
		for uk, v := range e.m {
			m[uk] = v.v
		}
		out[k] = m
	}
	return out
}

func mergeMaps[K comparable, V any](ms ...map[K]V) map[K]V {
	out := make(map[K]V)
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// entries iterates every entry of a table, checking that each sits in the
// key group and shard its key belongs to.
func entries[K comparable, S any](t table[K, S]) iter.Seq2[K, S] {
	return func(yield func(K, S) bool) {
		for idx, d := range t.kgs {
			shards := d.shards
			for j, sh := range shards {
				for k, s := range sh.m {
					kg, sub := t.b.locate(k)
					if kg != t.b.kgRange.Start+idx || int(sub&uint32(len(shards)-1)) != j {
						panic(fmt.Sprintf("key %v in key group %d shard %d, belongs in %d shard %d", k, idx, j, kg, sub&uint32(len(shards)-1)))
					}
					if !yield(k, s) {
						return
					}
				}
			}
		}
	}
}
