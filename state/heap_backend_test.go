package state

import (
	"testing"
	"time"
)

func TestKeyedBackendOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts KeyedBackendOptions
		ok   bool
	}{
		{"default", DefaultKeyedBackendOptions(), true},
		{"subtask", SubtaskKeyedBackendOptions(128, 3, 2), true},
		{"zero", KeyedBackendOptions{}, false},
		{"max parallelism too big", KeyedBackendOptions{MaxParallelism: UpperBoundMaxParallelism + 1, KeyGroupRange: KeyGroupRange{0, 0}}, false},
		{"empty range", KeyedBackendOptions{MaxParallelism: 8, KeyGroupRange: KeyGroupRange{3, 2}}, false},
		{"range past max", KeyedBackendOptions{MaxParallelism: 8, KeyGroupRange: KeyGroupRange{0, 8}}, false},
		{"negative start", KeyedBackendOptions{MaxParallelism: 8, KeyGroupRange: KeyGroupRange{-1, 3}}, false},
		{"nil clock ok", KeyedBackendOptions{MaxParallelism: 8, KeyGroupRange: KeyGroupRange{0, 7}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.ok {
				must(t, err)
				_, err = NewHeapKeyedBackend[int](tc.opts)
				must(t, err)
				return
			}
			isErr(t, err, ErrInvalidOptions)
			_, err = NewHeapKeyedBackend[int](tc.opts)
			isErr(t, err, ErrInvalidOptions)
		})
	}
}

func TestNewBackendUnhashableKey(t *testing.T) {
	_, err := NewHeapKeyedBackend[*int](DefaultKeyedBackendOptions())
	isErr(t, err, ErrUnhashableKey)
}

func TestSetCurrentKeyOutOfRange(t *testing.T) {
	opts := SubtaskKeyedBackendOptions(128, 4, 1)
	b := newBackend[int](t, opts)
	s, err := GetValueState(b, ValueStateDescriptor[int]{Name: "v"})
	must(t, err)
	var inside, outside int = -1, -1
	for k := 0; inside < 0 || outside < 0; k++ {
		if opts.KeyGroupRange.Contains(b.KeyGroupOf(k)) {
			inside = k
		} else {
			outside = k
		}
	}
	must(t, b.SetCurrentKey(inside))
	kg, ok := b.CurrentKeyGroup()
	eq(t, ok, true)
	eq(t, kg, b.KeyGroupOf(inside))
	must(t, s.Update(1))

	isErr(t, b.SetCurrentKey(outside), ErrKeyGroupOutOfRange)
	// The failed call leaves no current key, so nothing is written to the
	// previous key by mistake.
	isErr(t, s.Update(2), ErrNoCurrentKey)
	_, ok = b.CurrentKey()
	eq(t, ok, false)
	_, ok = b.CurrentKeyGroup()
	eq(t, ok, false)
	eq(t, dumpValues[int](s), map[int]int{inside: 1})
}

func TestRegistration(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	v1, err := GetValueState(b, ValueStateDescriptor[int]{Name: "a"})
	must(t, err)
	v2, err := GetValueState(b, ValueStateDescriptor[int]{Name: "a"})
	must(t, err)
	if v1 != v2 {
		t.Fatal("second registration returned another state")
	}
	_, err = GetValueState(b, ValueStateDescriptor[string]{Name: "a"})
	isErr(t, err, ErrIncompatibleState)
	_, err = GetListState(b, ListStateDescriptor[int]{Name: "a"})
	isErr(t, err, ErrIncompatibleState)
	_, err = GetMapState(b, MapStateDescriptor[string, int]{Name: "a"})
	isErr(t, err, ErrIncompatibleState)
	_, err = GetReducingState(b, ReducingStateDescriptor[int]{Name: "a", Reduce: func(a, b int) (int, error) { return a + b, nil }})
	isErr(t, err, ErrIncompatibleState)
	_, err = GetAggregatingState(b, AggregatingStateDescriptor[int, avgAcc, float64]{Name: "a", Aggregate: avg{}})
	isErr(t, err, ErrIncompatibleState)
	_, err = GetValueState(b, ValueStateDescriptor[int]{Name: "a", TTL: TTLConfig{TTL: time.Second}})
	isErr(t, err, ErrIncompatibleState)

	m1, err := GetMapState(b, MapStateDescriptor[string, int]{Name: "m"})
	must(t, err)
	m2, err := GetMapState(b, MapStateDescriptor[string, int]{Name: "m"})
	must(t, err)
	if m1 != m2 {
		t.Fatal("second registration returned another map state")
	}
	_, err = GetMapState(b, MapStateDescriptor[int, int]{Name: "m"})
	isErr(t, err, ErrIncompatibleState)
	eq(t, b.StateNames(), []string{"a", "m"})
}

func TestInvalidDescriptors(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	for name, err := range map[string]error{
		"empty name":      get2(GetValueState(b, ValueStateDescriptor[int]{})),
		"negative ttl":    get2(GetListState(b, ListStateDescriptor[int]{Name: "x", TTL: TTLConfig{TTL: -time.Second}})),
		"sub-ms ttl":      get2(GetMapState(b, MapStateDescriptor[int, int]{Name: "x", TTL: TTLConfig{TTL: time.Microsecond}})),
		"bad update type": get2(GetValueState(b, ValueStateDescriptor[int]{Name: "x", TTL: TTLConfig{TTL: time.Second, UpdateType: 7}})),
		"no reduce":       get2(GetReducingState(b, ReducingStateDescriptor[int]{Name: "x"})),
		"no aggregate":    get2(GetAggregatingState(b, AggregatingStateDescriptor[int, int, int]{Name: "x"})),
	} {
		t.Run(name, func(t *testing.T) { isErr(t, err, ErrInvalidDescriptor) })
	}
	eq(t, len(b.StateNames()), 0)
}

func get2[T any](_ T, err error) error { return err }
