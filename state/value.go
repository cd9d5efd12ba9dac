package state

// ValueState is a single value scoped to the current key, as Flink's
// ValueState. Every method returns an error wrapping ErrNoCurrentKey when the
// backend has no current key.
//
// Values are stored as given: a value that holds references (slices, maps,
// pointers) must not be modified after Update, or a snapshot may see the
// change.
type ValueState[V any] interface {
	// Value returns the current key's value and true, or the zero value and
	// false if it is unset or expired.
	Value() (V, bool, error)
	// Update sets the current key's value.
	Update(v V) error
	// Clear removes the current key's value.
	Clear() error
}

type valueState[K comparable, V any] struct {
	single[K, V]
}

func (s *valueState[K, V]) Value() (V, bool, error) { return s.load() }
func (s *valueState[K, V]) Update(v V) error        { return s.store(v) }
func (s *valueState[K, V]) Clear() error            { return s.clear() }

// GetValueState returns the value state named d.Name, registering it on
// first use (and loading its restored data, if any). Later calls return the
// same state; a name registered with another kind, type or TTL is an error
// wrapping ErrIncompatibleState.
func GetValueState[K comparable, V any](s KeyedStateStore[K], d ValueStateDescriptor[V]) (ValueState[V], error) {
	b := s.heap()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	m := stateMeta{Name: d.Name, Kind: kindValue, Types: []string{typeName[V]()}, TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func() *valueState[K, V] {
		return &valueState[K, V]{newSingle[K, V](b, m, d.TTL)}
	})
}
