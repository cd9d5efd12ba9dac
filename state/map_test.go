package state

import (
	"maps"
	"testing"
)

func TestMapState(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	s, err := GetMapState(b, MapStateDescriptor[string, int]{Name: "m"})
	must(t, err)
	_, _, err = s.Get("a")
	isErr(t, err, ErrNoCurrentKey)
	isErr(t, s.Put("a", 1), ErrNoCurrentKey)
	isErr(t, s.PutAll(map[string]int{"a": 1}), ErrNoCurrentKey)
	isErr(t, s.Remove("a"), ErrNoCurrentKey)
	_, err = s.Contains("a")
	isErr(t, err, ErrNoCurrentKey)
	_, err = s.All()
	isErr(t, err, ErrNoCurrentKey)
	_, err = s.Len()
	isErr(t, err, ErrNoCurrentKey)
	isErr(t, s.Clear(), ErrNoCurrentKey)

	must(t, b.SetCurrentKey("k1"))
	n, err := s.Len()
	must(t, err)
	eq(t, n, 0)
	must(t, s.Put("a", 1))
	must(t, s.PutAll(map[string]int{"b": 2, "c": 3}))
	must(t, s.PutAll(nil))
	v, ok, err := s.Get("b")
	must(t, err)
	eq(t, v, 2)
	eq(t, ok, true)
	_, ok, _ = s.Get("zz")
	eq(t, ok, false)
	ok, err = s.Contains("c")
	must(t, err)
	eq(t, ok, true)
	must(t, s.Remove("c"))
	must(t, s.Remove("never there"))
	ok, _ = s.Contains("c")
	eq(t, ok, false)
	all, err := s.All()
	must(t, err)
	eq(t, maps.Collect(all), map[string]int{"a": 1, "b": 2})
	count := 0
	for range all {
		count++
		break
	}
	eq(t, count, 1)
	n, _ = s.Len()
	eq(t, n, 2)

	must(t, b.SetCurrentKey("k2"))
	must(t, s.Put("a", 100))
	eq(t, dumpMaps[string](s), map[string]map[string]int{"k1": {"a": 1, "b": 2}, "k2": {"a": 100}})

	// Removing the last entry removes the key.
	must(t, s.Remove("a"))
	eq(t, dumpMaps[string](s), map[string]map[string]int{"k1": {"a": 1, "b": 2}})
	must(t, b.SetCurrentKey("k1"))
	must(t, s.Clear())
	eq(t, dumpMaps[string](s), map[string]map[string]int{})
}

// A map-state value shared with a snapshot is copied before it is modified.
func TestMapStateCopyOnWrite(t *testing.T) {
	b := newBackend[int](t, DefaultKeyedBackendOptions())
	s, err := GetMapState(b, MapStateDescriptor[string, string]{Name: "m"})
	must(t, err)
	must(t, b.SetCurrentKey(1))
	must(t, s.Put("x", "before"))
	sn, err := b.Snapshot()
	must(t, err)
	must(t, s.Put("x", "after"))
	must(t, s.Put("y", "new"))
	b2 := newBackend[int](t, DefaultKeyedBackendOptions())
	must(t, b2.Restore(writeSnap(t, sn)))
	s2, err := GetMapState(b2, MapStateDescriptor[string, string]{Name: "m"})
	must(t, err)
	eq(t, dumpMaps[int](s2), map[int]map[string]string{1: {"x": "before"}})
	eq(t, dumpMaps[int](s), map[int]map[string]string{1: {"x": "after", "y": "new"}})
}
