package state

import (
	"fmt"
	"reflect"
)

// ValueStateDescriptor names a ValueState and sets its options.
type ValueStateDescriptor[V any] struct {
	// Name identifies the state within its backend and in snapshots.
	Name string
	// TTL is an optional processing-time time to live.
	TTL TTLConfig
}

// Validate checks that d can be registered.
func (d ValueStateDescriptor[V]) Validate() error { return validateCommon(d.Name, d.TTL) }

// ListStateDescriptor names a ListState and sets its options. Operator list
// state uses it too (without TTL).
type ListStateDescriptor[V any] struct {
	// Name identifies the state within its backend and in snapshots.
	Name string
	// TTL is an optional processing-time time to live, per list element.
	TTL TTLConfig
}

// Validate checks that d can be registered.
func (d ListStateDescriptor[V]) Validate() error { return validateCommon(d.Name, d.TTL) }

// MapStateDescriptor names a MapState and sets its options.
type MapStateDescriptor[UK comparable, UV any] struct {
	// Name identifies the state within its backend and in snapshots.
	Name string
	// TTL is an optional processing-time time to live, per map entry.
	TTL TTLConfig
}

// Validate checks that d can be registered.
func (d MapStateDescriptor[UK, UV]) Validate() error { return validateCommon(d.Name, d.TTL) }

// ReduceFunc combines two values into one. It must be associative; it is
// called on the task goroutine and must not modify its arguments in place
// (acc may be shared with a snapshot being written): return a new value.
type ReduceFunc[V any] func(acc, value V) (V, error)

// ReducingStateDescriptor names a ReducingState and sets its reduce function
// and options.
type ReducingStateDescriptor[V any] struct {
	// Name identifies the state within its backend and in snapshots.
	Name string
	// Reduce folds each added value into the stored one. Required.
	Reduce ReduceFunc[V]
	// TTL is an optional processing-time time to live.
	TTL TTLConfig
}

// Validate checks that d can be registered.
func (d ReducingStateDescriptor[V]) Validate() error {
	if err := validateCommon(d.Name, d.TTL); err != nil {
		return err
	}
	if d.Reduce == nil {
		return fmt.Errorf("%w: reducing state %q has no Reduce function", ErrInvalidDescriptor, d.Name)
	}
	return nil
}

// AggregateFunction folds inputs of type IN into an accumulator ACC and
// derives a result OUT from it, as Flink's AggregateFunction. Its methods are
// called on the task goroutine, one at a time. The accumulator is stored in
// state and snapshotted, so it must survive a msgpack round trip.
type AggregateFunction[IN, ACC, OUT any] interface {
	// CreateAccumulator returns a new, empty accumulator.
	CreateAccumulator() ACC
	// Add folds value into acc and returns the updated accumulator. It must
	// not modify acc in place (acc may be shared with a snapshot being
	// written): use a value type for ACC, or return a modified copy.
	Add(value IN, acc ACC) (ACC, error)
	// GetResult derives the result from acc without modifying it.
	GetResult(acc ACC) (OUT, error)
	// Merge combines two accumulators (used when merging windows), without
	// modifying either.
	Merge(a, b ACC) (ACC, error)
}

// AggregatingStateDescriptor names an AggregatingState and sets its
// aggregate function and options.
type AggregatingStateDescriptor[IN, ACC, OUT any] struct {
	// Name identifies the state within its backend and in snapshots.
	Name string
	// Aggregate maintains the accumulator. Required.
	Aggregate AggregateFunction[IN, ACC, OUT]
	// TTL is an optional processing-time time to live.
	TTL TTLConfig
}

// Validate checks that d can be registered.
func (d AggregatingStateDescriptor[IN, ACC, OUT]) Validate() error {
	if err := validateCommon(d.Name, d.TTL); err != nil {
		return err
	}
	if d.Aggregate == nil {
		return fmt.Errorf("%w: aggregating state %q has no Aggregate function", ErrInvalidDescriptor, d.Name)
	}
	return nil
}

func validateCommon(name string, ttl TTLConfig) error {
	if name == "" {
		return fmt.Errorf("%w: empty state name", ErrInvalidDescriptor)
	}
	if err := ttl.validate(); err != nil {
		return fmt.Errorf("%w: state %q: %v", ErrInvalidDescriptor, name, err)
	}
	return nil
}

// stateKind is what a state is; it is written into snapshots.
type stateKind uint8

const (
	kindValue stateKind = iota + 1
	kindList
	kindMap
	kindReducing
	kindAggregating
	kindOperatorList  // operator list state, split redistribution
	kindOperatorUnion // operator list state, union redistribution
)

func (k stateKind) String() string {
	switch k {
	case kindValue:
		return "ValueState"
	case kindList:
		return "ListState"
	case kindMap:
		return "MapState"
	case kindReducing:
		return "ReducingState"
	case kindAggregating:
		return "AggregatingState"
	case kindOperatorList:
		return "OperatorListState"
	case kindOperatorUnion:
		return "UnionListState"
	}
	return fmt.Sprintf("stateKind(%d)", uint8(k))
}

// stateMeta describes a registered state; it is written into the snapshot
// header and compared on registration and restore.
type stateMeta struct {
	Name  string    `msgpack:"n"`
	Kind  stateKind `msgpack:"k"`
	Types []string  `msgpack:"t"` // the stored types, e.g. [V] or [UK, UV] or [ACC]
	TTL   bool      `msgpack:"ttl"`
}

func (m stateMeta) String() string {
	s := fmt.Sprintf("%s%v", m.Kind, m.Types)
	if m.TTL {
		s += " with TTL"
	}
	return s
}

// sameShape reports whether data stored as m can be read as o. TTL may
// differ: timestamps are added or dropped on restore.
func (m stateMeta) sameShape(o stateMeta) bool {
	if m.Name != o.Name || m.Kind != o.Kind || len(m.Types) != len(o.Types) {
		return false
	}
	for i := range m.Types {
		if m.Types[i] != o.Types[i] {
			return false
		}
	}
	return true
}

func typeName[T any]() string { return reflect.TypeFor[T]().String() }
