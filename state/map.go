package state

import (
	"iter"
	"maps"

	"github.com/vmihailenco/msgpack/v5"
)

// MapState is a map scoped to the current key, as Flink's MapState. Every
// method returns an error wrapping ErrNoCurrentKey when the backend has no
// current key. With TTL, each map entry expires on its own.
type MapState[UK comparable, UV any] interface {
	// Get returns the value under uk and true, or false if absent or
	// expired.
	Get(uk UK) (UV, bool, error)
	// Put sets the value under uk.
	Put(uk UK, uv UV) error
	// PutAll sets every entry of m (m is not retained).
	PutAll(m map[UK]UV) error
	// Remove deletes uk.
	Remove(uk UK) error
	// Contains reports whether uk is present and not expired.
	Contains(uk UK) (bool, error)
	// All returns an iterator over the live entries, in no particular order.
	// The map may be modified while iterating, with Go's map-iteration
	// semantics; the iterator must be used while the same key is current.
	All() (iter.Seq2[UK, UV], error)
	// Len returns the number of live entries.
	Len() (int, error)
	// Clear removes every entry.
	Clear() error
}

type mapVal[UV any] struct {
	v  UV
	ts int64
}

// mapEntry is one key's map. It is shared with a snapshot when gen <=
// snapGen, and then copied before it is modified.
type mapEntry[UK comparable, UV any] struct {
	m   map[UK]mapVal[UV]
	gen uint64
}

type mapState[K comparable, UK comparable, UV any] struct {
	t   table[K, mapEntry[UK, UV]]
	ttl ttlPolicy
	cfg TTLConfig
	m   stateMeta
	ukc codec[UK]
	uvc codec[UV]
}

// GetMapState returns the map state named d.Name, registering it on first
// use; see GetValueState.
func GetMapState[K comparable, UK comparable, UV any](s KeyedStateStore[K], d MapStateDescriptor[UK, UV]) (MapState[UK, UV], error) {
	b := s.heap()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	m := stateMeta{Name: d.Name, Kind: kindMap, Types: []string{typeName[UK](), typeName[UV]()}, TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func() *mapState[K, UK, UV] {
		return &mapState[K, UK, UV]{t: newTable[K, mapEntry[UK, UV]](b), ttl: newTTLPolicy(d.TTL), cfg: d.TTL, m: m,
			ukc: newCodec[UK](), uvc: newCodec[UV]()}
	})
}

func (s *mapState[K, UK, UV]) meta() stateMeta      { return s.m }
func (s *mapState[K, UK, UV]) keys() []K            { return s.t.keys() }
func (s *mapState[K, UK, UV]) ttlConfig() TTLConfig { return s.cfg }

func (s *mapState[K, UK, UV]) check() error {
	if s.t.b.cur < 0 {
		return s.t.b.errNoKey(s.m.Name)
	}
	return nil
}

// writable returns the current key's map, creating it or copying it first
// if a snapshot shares it.
func (s *mapState[K, UK, UV]) writable() map[UK]mapVal[UV] {
	b := s.t.b
	e, ok := s.t.get()
	switch {
	case !ok || e.m == nil:
		e = mapEntry[UK, UV]{m: make(map[UK]mapVal[UV]), gen: b.gen}
	case e.gen <= b.snapGen:
		e = mapEntry[UK, UV]{m: maps.Clone(e.m), gen: b.gen}
	default:
		return e.m
	}
	s.t.put(e)
	return e.m
}

func (s *mapState[K, UK, UV]) now() int64 {
	if s.ttl.enabled() {
		return s.t.b.nowMs()
	}
	return 0
}

// lookup returns the live value under uk, dropping or refreshing it as the
// TTL says.
func (s *mapState[K, UK, UV]) lookup(uk UK) (UV, bool) {
	var zero UV
	e, _ := s.t.get()
	v, ok := e.m[uk]
	if !ok {
		return zero, false
	}
	if s.ttl.enabled() {
		now := s.t.b.nowMs()
		if s.ttl.expired(v.ts, now) {
			s.delete(uk)
			return zero, false
		}
		if s.ttl.onRead && v.ts != now {
			v.ts = now
			s.writable()[uk] = v
		}
	}
	return v.v, true
}

func (s *mapState[K, UK, UV]) delete(uk UK) {
	m := s.writable()
	delete(m, uk)
	if len(m) == 0 {
		s.t.remove()
	}
}

func (s *mapState[K, UK, UV]) Get(uk UK) (UV, bool, error) {
	if err := s.check(); err != nil {
		var zero UV
		return zero, false, err
	}
	v, ok := s.lookup(uk)
	return v, ok, nil
}

func (s *mapState[K, UK, UV]) Contains(uk UK) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	_, ok := s.lookup(uk)
	return ok, nil
}

func (s *mapState[K, UK, UV]) Put(uk UK, uv UV) error {
	if err := s.check(); err != nil {
		return err
	}
	s.writable()[uk] = mapVal[UV]{v: uv, ts: s.now()}
	return nil
}

func (s *mapState[K, UK, UV]) PutAll(in map[UK]UV) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(in) == 0 {
		return nil
	}
	m, ts := s.writable(), s.now()
	for uk, uv := range in {
		m[uk] = mapVal[UV]{v: uv, ts: ts}
	}
	return nil
}

func (s *mapState[K, UK, UV]) Remove(uk UK) error {
	if err := s.check(); err != nil {
		return err
	}
	if e, _ := s.t.get(); e.m != nil {
		if _, ok := e.m[uk]; ok {
			s.delete(uk)
		}
	}
	return nil
}

func (s *mapState[K, UK, UV]) All() (iter.Seq2[UK, UV], error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	e, _ := s.t.get()
	m := e.m
	b := s.t.b
	key, cur := b.key, b.cur
	return func(yield func(UK, UV) bool) {
		now := s.now()
		for uk, v := range m {
			if s.ttl.expired(v.ts, now) {
				continue
			}
			// Refresh only while the key is still current, never another key's map.
			if s.ttl.onRead && v.ts != now && b.cur == cur && b.key == key {
				v.ts = now
				s.writable()[uk] = v
			}
			if !yield(uk, v.v) {
				return
			}
		}
	}, nil
}

func (s *mapState[K, UK, UV]) Len() (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	e, _ := s.t.get()
	if !s.ttl.enabled() {
		return len(e.m), nil
	}
	return s.live(e.m, s.now()), nil
}

func (s *mapState[K, UK, UV]) live(m map[UK]mapVal[UV], now int64) int {
	n := 0
	for _, v := range m {
		if !s.ttl.expired(v.ts, now) {
			n++
		}
	}
	return n
}

func (s *mapState[K, UK, UV]) Clear() error {
	if err := s.check(); err != nil {
		return err
	}
	s.t.remove()
	return nil
}

func (s *mapState[K, UK, UV]) purgeExpired(now int64) int {
	gen := s.t.b.gen
	return s.t.purge(func(e mapEntry[UK, UV]) (mapEntry[UK, UV], bool, bool) {
		live := s.live(e.m, now)
		if live == len(e.m) {
			return e, false, false
		}
		nm := make(map[UK]mapVal[UV], live)
		for uk, v := range e.m {
			if !s.ttl.expired(v.ts, now) {
				nm[uk] = v
			}
		}
		return mapEntry[UK, UV]{m: nm, gen: gen}, true, live == 0
	})
}

func (s *mapState[K, UK, UV]) freeze() frozenState {
	return &frozenMap[K, UK, UV]{maps: s.t.freeze(), kc: s.t.b.keyCodec, ukc: s.ukc, uvc: s.uvc, ttl: s.ttl}
}

func (s *mapState[K, UK, UV]) restoreKG(idx int, blob []byte, snapTTL bool, now int64) error {
	r := newBlobReader(blob)
	n, err := r.count()
	if err != nil {
		return err
	}
	for range n {
		k, sub, err := s.t.restoreKey(r, idx)
		if err != nil {
			return err
		}
		ne, err := r.count()
		if err != nil {
			return err
		}
		inner := make(map[UK]mapVal[UV], min(ne, 64))
		for range ne {
			uk, err := decodeWith(r, s.ukc, "map key")
			if err != nil {
				return err
			}
			ts, err := r.int64()
			if err != nil {
				return err
			}
			uv, err := decodeWith(r, s.uvc, "map value")
			if err != nil {
				return err
			}
			ts = restoredTS(ts, snapTTL, s.ttl, now)
			if !s.ttl.expired(ts, now) {
				inner[uk] = mapVal[UV]{v: uv, ts: ts}
			}
		}
		if len(inner) > 0 {
			s.t.insert(idx, sub, k, mapEntry[UK, UV]{m: inner, gen: s.t.b.gen})
		}
	}
	return r.done()
}

type frozenMap[K comparable, UK comparable, UV any] struct {
	maps frozenTable[K, mapEntry[UK, UV]]
	kc   codec[K]
	ukc  codec[UK]
	uvc  codec[UV]
	ttl  ttlPolicy
}

func (f *frozenMap[K, UK, UV]) live(m map[UK]mapVal[UV], now int64) int {
	if !f.ttl.enabled() {
		return len(m)
	}
	n := 0
	for _, v := range m {
		if !f.ttl.expired(v.ts, now) {
			n++
		}
	}
	return n
}

func (f *frozenMap[K, UK, UV]) writeKG(idx int, enc *msgpack.Encoder, now int64) error {
	n := 0
	for _, e := range f.maps.all(idx) {
		if f.live(e.m, now) > 0 {
			n++
		}
	}
	if err := enc.EncodeInt(int64(n)); err != nil {
		return err
	}
	for k, e := range f.maps.all(idx) {
		ne := f.live(e.m, now)
		if ne == 0 {
			continue
		}
		if err := f.kc.enc(enc, k); err != nil {
			return err
		}
		if err := enc.EncodeInt(int64(ne)); err != nil {
			return err
		}
		for uk, v := range e.m {
			if f.ttl.expired(v.ts, now) {
				continue
			}
			if err := f.ukc.enc(enc, uk); err != nil {
				return err
			}
			if err := enc.EncodeInt(v.ts); err != nil {
				return err
			}
			if err := f.uvc.enc(enc, v.v); err != nil {
				return err
			}
		}
	}
	return nil
}
