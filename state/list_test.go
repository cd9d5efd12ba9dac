package state

import (
	"testing"
)

func TestListState(t *testing.T) {
	b := newBackend[int64](t, DefaultKeyedBackendOptions())
	s, err := GetListState(b, ListStateDescriptor[string]{Name: "l"})
	must(t, err)
	_, err = s.Get()
	isErr(t, err, ErrNoCurrentKey)
	isErr(t, s.Add("x"), ErrNoCurrentKey)
	isErr(t, s.AddAll([]string{"x"}), ErrNoCurrentKey)
	isErr(t, s.Update([]string{"x"}), ErrNoCurrentKey)
	isErr(t, s.Clear(), ErrNoCurrentKey)

	must(t, b.SetCurrentKey(1))
	got, err := s.Get()
	must(t, err)
	eq(t, got, []string(nil))
	must(t, s.Add("a"))
	must(t, s.AddAll([]string{"b", "c"}))
	must(t, s.AddAll(nil))
	got, _ = s.Get()
	eq(t, got, []string{"a", "b", "c"})

	got[0] = "mutated" // Get returns a copy
	got, _ = s.Get()
	eq(t, got, []string{"a", "b", "c"})

	in := []string{"u", "v"}
	must(t, s.Update(in))
	in[0] = "mutated" // Update does not retain its argument
	got, _ = s.Get()
	eq(t, got, []string{"u", "v"})

	must(t, b.SetCurrentKey(2))
	must(t, s.Add("other"))
	must(t, b.SetCurrentKey(1))
	must(t, s.Update(nil))
	got, _ = s.Get()
	eq(t, got, []string(nil))
	eq(t, dumpLists[int64](s), map[int64][]string{2: {"other"}})
	must(t, b.SetCurrentKey(2))
	must(t, s.Clear())
	eq(t, dumpLists[int64](s), map[int64][]string{})
}

// An append after a snapshot may write into the backing array the snapshot
// shares; the snapshot must still see only its own elements.
func TestListStateAppendAfterSnapshot(t *testing.T) {
	b := newBackend[int](t, DefaultKeyedBackendOptions())
	s, err := GetListState(b, ListStateDescriptor[int]{Name: "l"})
	must(t, err)
	must(t, b.SetCurrentKey(7))
	for i := range 5 {
		must(t, s.Add(i))
	}
	sn, err := b.Snapshot()
	must(t, err)
	must(t, s.Add(99))
	must(t, s.Update([]int{42}))
	must(t, s.Add(43))
	b2 := newBackend[int](t, DefaultKeyedBackendOptions())
	must(t, b2.Restore(writeSnap(t, sn)))
	s2, err := GetListState(b2, ListStateDescriptor[int]{Name: "l"})
	must(t, err)
	eq(t, dumpLists[int](s2), map[int][]int{7: {0, 1, 2, 3, 4}})
	eq(t, dumpLists[int](s), map[int][]int{7: {42, 43}})
}
