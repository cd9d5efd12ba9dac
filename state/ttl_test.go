package state

import (
	"maps"
	"testing"
	"time"
)

func ttlBackend(t *testing.T) (*HeapKeyedBackend[string], *fakeClock) {
	clock := newFakeClock()
	opts := DefaultKeyedBackendOptions()
	opts.Clock = clock
	return newBackend[string](t, opts), clock
}

func TestValueTTL(t *testing.T) {
	for _, tc := range []struct {
		update TTLUpdateType
		// alive after: write at 0, read at 6s, check at 12s with TTL 10s
		aliveAt12 bool
	}{
		{OnCreateAndWrite, false},
		{OnReadAndWrite, true},
	} {
		t.Run(tc.update.String(), func(t *testing.T) {
			b, clock := ttlBackend(t)
			s, err := GetValueState(b, ValueStateDescriptor[int]{Name: "v", TTL: TTLConfig{TTL: 10 * time.Second, UpdateType: tc.update}})
			must(t, err)
			must(t, b.SetCurrentKey("k"))
			must(t, s.Update(1))
			clock.Advance(6 * time.Second)
			_, ok := value(t, s)
			eq(t, ok, true)
			clock.Advance(6 * time.Second)
			_, ok = value(t, s)
			eq(t, ok, tc.aliveAt12)
			if !tc.aliveAt12 {
				// The expired read removed the entry.
				eq(t, len(dumpValues[string](s)), 0)
			}
			// A write refreshes the TTL either way.
			must(t, s.Update(2))
			clock.Advance(9 * time.Second)
			v, ok := value(t, s)
			eq(t, ok, true)
			eq(t, v, 2)
			clock.Advance(10 * time.Second)
			_, ok = value(t, s)
			eq(t, ok, false)
		})
	}
}

func TestExpiryBoundary(t *testing.T) {
	b, clock := ttlBackend(t)
	s, err := GetValueState(b, ValueStateDescriptor[int]{Name: "v", TTL: TTLConfig{TTL: time.Second}})
	must(t, err)
	must(t, b.SetCurrentKey("k"))
	must(t, s.Update(1))
	clock.Advance(999 * time.Millisecond)
	_, ok := value(t, s)
	eq(t, ok, true)
	clock.Advance(time.Millisecond) // expired at exactly last write + TTL, as Flink
	_, ok = value(t, s)
	eq(t, ok, false)
}

func TestListTTLPerElement(t *testing.T) {
	b, clock := ttlBackend(t)
	s, err := GetListState(b, ListStateDescriptor[string]{Name: "l", TTL: TTLConfig{TTL: 10 * time.Second}})
	must(t, err)
	must(t, b.SetCurrentKey("k"))
	must(t, s.Add("old"))
	clock.Advance(5 * time.Second)
	must(t, s.AddAll([]string{"new1", "new2"}))
	clock.Advance(5 * time.Second)
	got, err := s.Get()
	must(t, err)
	eq(t, got, []string{"new1", "new2"})
	clock.Advance(5 * time.Second)
	got, _ = s.Get()
	eq(t, got, []string(nil))
	eq(t, len(dumpLists[string](s)), 0)
}

func TestListTTLOnRead(t *testing.T) {
	b, clock := ttlBackend(t)
	s, err := GetListState(b, ListStateDescriptor[int]{Name: "l", TTL: TTLConfig{TTL: 10 * time.Second, UpdateType: OnReadAndWrite}})
	must(t, err)
	must(t, b.SetCurrentKey("k"))
	must(t, s.Add(1))
	for range 5 {
		clock.Advance(9 * time.Second)
		got, _ := s.Get()
		eq(t, got, []int{1})
	}
}

func TestMapTTLPerEntry(t *testing.T) {
	for _, update := range []TTLUpdateType{OnCreateAndWrite, OnReadAndWrite} {
		t.Run(update.String(), func(t *testing.T) {
			b, clock := ttlBackend(t)
			s, err := GetMapState(b, MapStateDescriptor[string, int]{Name: "m", TTL: TTLConfig{TTL: 10 * time.Second, UpdateType: update}})
			must(t, err)
			must(t, b.SetCurrentKey("k"))
			must(t, s.Put("a", 1))
			clock.Advance(5 * time.Second)
			must(t, s.Put("b", 2))
			clock.Advance(5 * time.Second) // a expired, b 5s old
			n, _ := s.Len()
			eq(t, n, 1)
			ok, _ := s.Contains("a")
			eq(t, ok, false)
			all, _ := s.All()
			eq(t, maps.Collect(all), map[string]int{"b": 2})
			clock.Advance(6 * time.Second) // b is 11s old since written; read at 10s refreshes it with OnReadAndWrite
			_, ok, _ = s.Get("b")
			eq(t, ok, update == OnReadAndWrite)
		})
	}
}

func TestReducingAndAggregatingTTL(t *testing.T) {
	b, clock := ttlBackend(t)
	ttl := TTLConfig{TTL: time.Minute}
	r, err := GetReducingState(b, ReducingStateDescriptor[int]{Name: "r", TTL: ttl, Reduce: func(a, v int) (int, error) { return a + v, nil }})
	must(t, err)
	a, err := GetAggregatingState(b, AggregatingStateDescriptor[int, avgAcc, float64]{Name: "a", TTL: ttl, Aggregate: avg{}})
	must(t, err)
	must(t, b.SetCurrentKey("k"))
	must(t, r.Add(5))
	must(t, a.Add(5))
	clock.Advance(2 * time.Minute)
	// Adding to an expired value starts afresh.
	must(t, r.Add(1))
	must(t, a.Add(1))
	got, _, _ := r.Get()
	eq(t, got, 1)
	avgGot, _, _ := a.Get()
	eq(t, avgGot, 1.0)
}

func TestTTLSnapshotAndRestore(t *testing.T) {
	b, clock := ttlBackend(t)
	ttl := TTLConfig{TTL: 10 * time.Second}
	v, err := GetValueState(b, ValueStateDescriptor[int]{Name: "v", TTL: ttl})
	must(t, err)
	l, err := GetListState(b, ListStateDescriptor[int]{Name: "l", TTL: ttl})
	must(t, err)
	m, err := GetMapState(b, MapStateDescriptor[int, int]{Name: "m", TTL: ttl})
	must(t, err)
	write := func(k string, x int) {
		must(t, b.SetCurrentKey(k))
		must(t, v.Update(x))
		must(t, l.Add(x))
		must(t, m.Put(x, x))
	}
	write("old", 1)
	clock.Advance(6 * time.Second)
	write("young", 2)
	write("old", 3) // old now has a live value, a live list element 3 and map entry 3, and expired element/entry 1
	clock.Advance(5 * time.Second)

	// The snapshot leaves out what expired by the time of Snapshot.
	in := snap(t, b)
	b2 := newBackend[string](t, KeyedBackendOptions{MaxParallelism: DefaultMaxParallelism, KeyGroupRange: b.KeyGroupRange(), Clock: clock})
	must(t, b2.Restore(in))
	v2, err := GetValueState(b2, ValueStateDescriptor[int]{Name: "v", TTL: ttl})
	must(t, err)
	l2, err := GetListState(b2, ListStateDescriptor[int]{Name: "l", TTL: ttl})
	must(t, err)
	m2, err := GetMapState(b2, MapStateDescriptor[int, int]{Name: "m", TTL: ttl})
	must(t, err)
	eq(t, dumpValues[string](v2), map[string]int{"young": 2, "old": 3})
	eq(t, dumpLists[string](l2), map[string][]int{"young": {2}, "old": {3}})
	eq(t, dumpMaps[string](m2), map[string]map[int]int{"young": {2: 2}, "old": {3: 3}})

	// Timestamps survive the snapshot: everything expires 10s after writing.
	clock.Advance(5 * time.Second)
	b3 := newBackend[string](t, KeyedBackendOptions{MaxParallelism: DefaultMaxParallelism, KeyGroupRange: b.KeyGroupRange(), Clock: clock})
	must(t, b3.Restore(in))
	v3, err := GetValueState(b3, ValueStateDescriptor[int]{Name: "v", TTL: ttl})
	must(t, err)
	eq(t, len(dumpValues[string](v3)), 0) // dropped on restore
	must(t, b2.SetCurrentKey("old"))
	_, ok := value(t, v2)
	eq(t, ok, false)

	// PurgeExpired frees what is never read again.
	eq(t, b2.PurgeExpired(), 1+2+2) // v: young; l: old, young; m: old, young ("old" was read above)
	eq(t, len(dumpLists[string](l2)), 0)
	eq(t, len(dumpMaps[string](m2)), 0)
}

func TestPurgeExpiredPartial(t *testing.T) {
	b, clock := ttlBackend(t)
	ttl := TTLConfig{TTL: 10 * time.Second}
	l, err := GetListState(b, ListStateDescriptor[int]{Name: "l", TTL: ttl})
	must(t, err)
	m, err := GetMapState(b, MapStateDescriptor[int, int]{Name: "m", TTL: ttl})
	must(t, err)
	must(t, b.SetCurrentKey("k"))
	must(t, l.Add(1))
	must(t, m.Put(1, 1))
	sn, err := b.Snapshot() // the purge must not touch what the snapshot holds
	must(t, err)
	clock.Advance(6 * time.Second)
	must(t, l.Add(2))
	must(t, m.Put(2, 2))
	clock.Advance(5 * time.Second)
	eq(t, b.PurgeExpired(), 0) // removes no keys: both keep a live element
	eq(t, dumpLists[string](l), map[string][]int{"k": {2}})
	eq(t, dumpMaps[string](m), map[string]map[int]int{"k": {2: 2}})

	clock.Set(time.UnixMilli(sn.now)) // restore as of the snapshot: its content is intact
	b2 := newBackend[string](t, KeyedBackendOptions{MaxParallelism: DefaultMaxParallelism, KeyGroupRange: b.KeyGroupRange(), Clock: clock})
	must(t, b2.Restore(writeSnap(t, sn)))
	l2, err := GetListState(b2, ListStateDescriptor[int]{Name: "l", TTL: ttl})
	must(t, err)
	eq(t, dumpLists[string](l2), map[string][]int{"k": {1}})
}

// Data written without TTL and restored into a TTL state starts its TTL at
// the restore; data written with TTL restored without it never expires.
func TestRestoreChangesTTL(t *testing.T) {
	b, clock := ttlBackend(t)
	s, err := GetValueState(b, ValueStateDescriptor[int]{Name: "v"})
	must(t, err)
	must(t, b.SetCurrentKey("k"))
	must(t, s.Update(1))
	in := snap(t, b)

	clock.Advance(time.Hour)
	b2, _ := ttlBackend(t)
	b2.clock = clock
	must(t, b2.Restore(in))
	s2, err := GetValueState(b2, ValueStateDescriptor[int]{Name: "v", TTL: TTLConfig{TTL: time.Minute}})
	must(t, err)
	must(t, b2.SetCurrentKey("k"))
	_, ok := value(t, s2)
	eq(t, ok, true)
	clock.Advance(time.Minute)
	_, ok = value(t, s2)
	eq(t, ok, false)
}
