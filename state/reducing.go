package state

import "fmt"

// ReducingState folds the values added for the current key into one with a
// ReduceFunc, as Flink's ReducingState. Every method returns an error
// wrapping ErrNoCurrentKey when the backend has no current key.
type ReducingState[V any] interface {
	// Get returns the reduced value and true, or false if nothing was added
	// (or it expired).
	Get() (V, bool, error)
	// Add folds v into the reduced value; an error from the reduce function
	// is returned and leaves the state unchanged.
	Add(v V) error
	// Clear removes the current key's value.
	Clear() error
}

type reducingState[K comparable, V any] struct {
	single[K, V]
	reduce ReduceFunc[V]
}

func (s *reducingState[K, V]) Get() (V, bool, error) { return s.load() }
func (s *reducingState[K, V]) Clear() error          { return s.clear() }

func (s *reducingState[K, V]) Add(v V) error {
	acc, ok, err := s.load()
	if err != nil {
		return err
	}
	if ok {
		if v, err = s.reduce(acc, v); err != nil {
			return fmt.Errorf("state: reducing state %q: %w", s.m.Name, err)
		}
	}
	return s.store(v)
}

// GetReducingState returns the reducing state named d.Name, registering it
// on first use; see GetValueState. The reduce function of the first
// registration is kept.
func GetReducingState[K comparable, V any](s KeyedStateStore[K], d ReducingStateDescriptor[V]) (ReducingState[V], error) {
	b := s.heap()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	m := stateMeta{Name: d.Name, Kind: kindReducing, Types: []string{typeName[V]()}, TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func() *reducingState[K, V] {
		return &reducingState[K, V]{single: newSingle[K, V](b, m, d.TTL), reduce: d.Reduce}
	})
}

// AggregatingState folds the inputs added for the current key into an
// accumulator with an AggregateFunction, as Flink's AggregatingState. Every
// method returns an error wrapping ErrNoCurrentKey when the backend has no
// current key.
type AggregatingState[IN, OUT any] interface {
	// Get returns the result for the accumulated inputs and true, or false
	// if nothing was added (or it expired).
	Get() (OUT, bool, error)
	// Add folds v into the accumulator; an error from the aggregate
	// function is returned and leaves the state unchanged.
	Add(v IN) error
	// Clear removes the current key's accumulator.
	Clear() error
}

type aggregatingState[K comparable, IN, ACC, OUT any] struct {
	single[K, ACC]
	agg AggregateFunction[IN, ACC, OUT]
}

func (s *aggregatingState[K, IN, ACC, OUT]) Get() (OUT, bool, error) {
	var zero OUT
	acc, ok, err := s.load()
	if err != nil || !ok {
		return zero, false, err
	}
	out, err := s.agg.GetResult(acc)
	if err != nil {
		return zero, false, fmt.Errorf("state: aggregating state %q: %w", s.m.Name, err)
	}
	return out, true, nil
}

func (s *aggregatingState[K, IN, ACC, OUT]) Add(v IN) error {
	acc, ok, err := s.load()
	if err != nil {
		return err
	}
	if !ok {
		acc = s.agg.CreateAccumulator()
	}
	if acc, err = s.agg.Add(v, acc); err != nil {
		return fmt.Errorf("state: aggregating state %q: %w", s.m.Name, err)
	}
	return s.store(acc)
}

func (s *aggregatingState[K, IN, ACC, OUT]) Clear() error { return s.clear() }

// GetAggregatingState returns the aggregating state named d.Name,
// registering it on first use; see GetValueState. The accumulator is what is
// stored and snapshotted. The aggregate function of the first registration
// is kept.
func GetAggregatingState[K comparable, IN, ACC, OUT any](s KeyedStateStore[K], d AggregatingStateDescriptor[IN, ACC, OUT]) (AggregatingState[IN, OUT], error) {
	b := s.heap()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	m := stateMeta{Name: d.Name, Kind: kindAggregating, Types: []string{typeName[ACC]()}, TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func() *aggregatingState[K, IN, ACC, OUT] {
		return &aggregatingState[K, IN, ACC, OUT]{single: newSingle[K, ACC](b, m, d.TTL), agg: d.Aggregate}
	})
}
