package state

import (
	"errors"
	"testing"
)

func TestValueStateScopedToKey(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	s, err := GetValueState(b, ValueStateDescriptor[int64]{Name: "count"})
	must(t, err)

	_, _, err = s.Value()
	isErr(t, err, ErrNoCurrentKey)
	isErr(t, s.Update(1), ErrNoCurrentKey)
	isErr(t, s.Clear(), ErrNoCurrentKey)

	must(t, b.SetCurrentKey("a"))
	if _, ok := value(t, s); ok {
		t.Fatal("fresh key has a value")
	}
	must(t, s.Update(1))
	must(t, b.SetCurrentKey("b"))
	if _, ok := value(t, s); ok {
		t.Fatal("key b sees key a's value")
	}
	must(t, s.Update(2))
	must(t, b.SetCurrentKey("a"))
	v, ok := value(t, s)
	eq(t, v, int64(1))
	eq(t, ok, true)
	must(t, s.Update(10))
	must(t, s.Clear())
	if _, ok := value(t, s); ok {
		t.Fatal("value survives Clear")
	}
	must(t, b.SetCurrentKey("b"))
	v, _ = value(t, s)
	eq(t, v, int64(2))
	eq(t, dumpValues[string](s), map[string]int64{"b": 2})
}

func TestValueStateStructValues(t *testing.T) {
	type point struct {
		X, Y int
		Tag  string
	}
	b := newBackend[int](t, DefaultKeyedBackendOptions())
	s, err := GetValueState(b, ValueStateDescriptor[point]{Name: "p"})
	must(t, err)
	for k := range 50 {
		must(t, b.SetCurrentKey(k))
		must(t, s.Update(point{k, -k, "t"}))
	}
	in := snap(t, b)
	b2 := newBackend[int](t, DefaultKeyedBackendOptions())
	must(t, b2.Restore(in))
	s2, err := GetValueState(b2, ValueStateDescriptor[point]{Name: "p"})
	must(t, err)
	eq(t, dumpValues[int](s2), dumpValues[int](s))
}

func TestReducingState(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	boom := errors.New("boom")
	s, err := GetReducingState(b, ReducingStateDescriptor[int]{Name: "sum", Reduce: func(a, v int) (int, error) {
		if v < 0 {
			return 0, boom
		}
		return a + v, nil
	}})
	must(t, err)
	_, _, err = s.Get()
	isErr(t, err, ErrNoCurrentKey)
	isErr(t, s.Add(1), ErrNoCurrentKey)

	must(t, b.SetCurrentKey("x"))
	if _, ok, _ := s.Get(); ok {
		t.Fatal("empty reducing state has a value")
	}
	for _, v := range []int{1, 2, 3} {
		must(t, s.Add(v))
	}
	isErr(t, s.Add(-1), boom)
	got, ok, err := s.Get()
	must(t, err)
	eq(t, got, 6)
	eq(t, ok, true)
	must(t, b.SetCurrentKey("y"))
	must(t, s.Add(-5)) // the first value is stored without reducing
	got, _, _ = s.Get()
	eq(t, got, -5)
	must(t, s.Clear())
	if _, ok, _ := s.Get(); ok {
		t.Fatal("value survives Clear")
	}
}

// avg is an AggregateFunction computing the mean of ints.
type avg struct{}

type avgAcc struct{ Sum, N int64 }

func (avg) CreateAccumulator() avgAcc { return avgAcc{} }
func (avg) Add(v int, a avgAcc) (avgAcc, error) {
	if v < 0 {
		return a, errors.New("negative")
	}
	return avgAcc{a.Sum + int64(v), a.N + 1}, nil
}
func (avg) GetResult(a avgAcc) (float64, error) {
	if a.N == 0 {
		return 0, errors.New("empty")
	}
	return float64(a.Sum) / float64(a.N), nil
}
func (avg) Merge(a, b avgAcc) (avgAcc, error) { return avgAcc{a.Sum + b.Sum, a.N + b.N}, nil }

func TestAggregatingState(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	s, err := GetAggregatingState(b, AggregatingStateDescriptor[int, avgAcc, float64]{Name: "avg", Aggregate: avg{}})
	must(t, err)
	isErr(t, s.Add(1), ErrNoCurrentKey)
	must(t, b.SetCurrentKey("k"))
	if _, ok, _ := s.Get(); ok {
		t.Fatal("empty aggregating state has a result")
	}
	must(t, s.Add(1))
	must(t, s.Add(2))
	if err := s.Add(-1); err == nil {
		t.Fatal("aggregate error not returned")
	}
	got, ok, err := s.Get()
	must(t, err)
	eq(t, got, 1.5)
	eq(t, ok, true)

	// The accumulator is what is snapshotted.
	b2 := newBackend[string](t, DefaultKeyedBackendOptions())
	must(t, b2.Restore(snap(t, b)))
	s2, err := GetAggregatingState(b2, AggregatingStateDescriptor[int, avgAcc, float64]{Name: "avg", Aggregate: avg{}})
	must(t, err)
	must(t, b2.SetCurrentKey("k"))
	must(t, s2.Add(6))
	got, _, _ = s2.Get()
	eq(t, got, 3.0)
	must(t, s2.Clear())
	if _, ok, _ := s2.Get(); ok {
		t.Fatal("result survives Clear")
	}
}
