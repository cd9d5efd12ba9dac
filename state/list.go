package state

import (
	"github.com/vmihailenco/msgpack/v5"
)

// ListState is a list of values scoped to the current key, as Flink's
// ListState; operator list state implements it too. Every method of keyed
// list state returns an error wrapping ErrNoCurrentKey when the backend has
// no current key.
type ListState[V any] interface {
	// Get returns a copy of the list, or nil if it is empty. With TTL,
	// expired elements are left out.
	Get() ([]V, error)
	// Add appends v.
	Add(v V) error
	// AddAll appends vs (the slice is not retained).
	AddAll(vs []V) error
	// Update replaces the list with vs (the slice is not retained); an empty
	// vs clears it.
	Update(vs []V) error
	// Clear empties the list.
	Clear() error
}

// listElem is a list element and the time its TTL was last refreshed.
type listElem[V any] struct {
	v  V
	ts int64
}

// Stored lists are never modified in place except by appending: a snapshot
// may share a list's backing array, but it reads only up to its own length,
// which appends never touch.
type listState[K comparable, V any] struct {
	t   table[K, []listElem[V]]
	ttl ttlPolicy
	cfg TTLConfig
	m   stateMeta
	c   codec[V]
}

// GetListState returns the keyed list state named d.Name, registering it on
// first use; see GetValueState.
func GetListState[K comparable, V any](s KeyedStateStore[K], d ListStateDescriptor[V]) (ListState[V], error) {
	b := s.heap()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	m := stateMeta{Name: d.Name, Kind: kindList, Types: []string{typeName[V]()}, TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func() *listState[K, V] {
		return &listState[K, V]{t: newTable[K, []listElem[V]](b), ttl: newTTLPolicy(d.TTL), cfg: d.TTL, m: m, c: newCodec[V]()}
	})
}

func (s *listState[K, V]) meta() stateMeta      { return s.m }
func (s *listState[K, V]) keys() []K            { return s.t.keys() }
func (s *listState[K, V]) ttlConfig() TTLConfig { return s.cfg }

func (s *listState[K, V]) Get() ([]V, error) {
	b := s.t.b
	if b.cur < 0 {
		return nil, b.errNoKey(s.m.Name)
	}
	elems, _ := s.t.get()
	if len(elems) == 0 {
		return nil, nil
	}
	if !s.ttl.enabled() {
		out := make([]V, len(elems))
		for i, e := range elems {
			out[i] = e.v
		}
		return out, nil
	}
	now := b.nowMs()
	out := make([]V, 0, len(elems))
	var live []listElem[V]
	for _, e := range elems {
		if s.ttl.expired(e.ts, now) {
			continue
		}
		out = append(out, e.v)
		if s.ttl.onRead {
			e.ts = now
		}
		live = append(live, e)
	}
	switch {
	case len(live) == 0:
		s.t.remove()
		return nil, nil
	case len(live) < len(elems) || s.ttl.onRead:
		s.t.put(live) // a new slice: never rewrite a stored one in place
	}
	return out, nil
}

func (s *listState[K, V]) ts() int64 {
	if s.ttl.enabled() {
		return s.t.b.nowMs()
	}
	return 0
}

func (s *listState[K, V]) Add(v V) error {
	if s.t.b.cur < 0 {
		return s.t.b.errNoKey(s.m.Name)
	}
	elems, _ := s.t.get()
	s.t.put(append(elems, listElem[V]{v: v, ts: s.ts()}))
	return nil
}

func (s *listState[K, V]) AddAll(vs []V) error {
	if s.t.b.cur < 0 {
		return s.t.b.errNoKey(s.m.Name)
	}
	if len(vs) == 0 {
		return nil
	}
	elems, _ := s.t.get()
	ts := s.ts()
	for _, v := range vs {
		elems = append(elems, listElem[V]{v: v, ts: ts})
	}
	s.t.put(elems)
	return nil
}

func (s *listState[K, V]) Update(vs []V) error {
	if s.t.b.cur < 0 {
		return s.t.b.errNoKey(s.m.Name)
	}
	if len(vs) == 0 {
		s.t.remove()
		return nil
	}
	ts := s.ts()
	elems := make([]listElem[V], len(vs))
	for i, v := range vs {
		elems[i] = listElem[V]{v: v, ts: ts}
	}
	s.t.put(elems)
	return nil
}

func (s *listState[K, V]) Clear() error {
	if s.t.b.cur < 0 {
		return s.t.b.errNoKey(s.m.Name)
	}
	s.t.remove()
	return nil
}

func (s *listState[K, V]) purgeExpired(now int64) int {
	return s.t.purge(func(elems []listElem[V]) ([]listElem[V], bool, bool) {
		var live []listElem[V]
		for i, e := range elems {
			if s.ttl.expired(e.ts, now) {
				if live == nil {
					live = append(make([]listElem[V], 0, len(elems)-1), elems[:i]...)
				}
				continue
			}
			if live != nil {
				live = append(live, e)
			}
		}
		if live == nil {
			return elems, false, false
		}
		return live, true, len(live) == 0
	})
}

func (s *listState[K, V]) freeze() frozenState {
	return &frozenList[K, V]{maps: s.t.freeze(), kc: s.t.b.keyCodec, vc: s.c, ttl: s.ttl}
}

func (s *listState[K, V]) restoreKG(idx int, blob []byte, snapTTL bool, now int64) error {
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
		var elems []listElem[V]
		for range ne {
			ts, err := r.int64()
			if err != nil {
				return err
			}
			v, err := decodeWith(r, s.c, "list element")
			if err != nil {
				return err
			}
			ts = restoredTS(ts, snapTTL, s.ttl, now)
			if !s.ttl.expired(ts, now) {
				elems = append(elems, listElem[V]{v: v, ts: ts})
			}
		}
		if len(elems) > 0 {
			s.t.insert(idx, sub, k, elems)
		}
	}
	return r.done()
}

type frozenList[K comparable, V any] struct {
	maps frozenTable[K, []listElem[V]]
	kc   codec[K]
	vc   codec[V]
	ttl  ttlPolicy
}

func (f *frozenList[K, V]) live(elems []listElem[V], now int64) int {
	if !f.ttl.enabled() {
		return len(elems)
	}
	n := 0
	for _, e := range elems {
		if !f.ttl.expired(e.ts, now) {
			n++
		}
	}
	return n
}

func (f *frozenList[K, V]) writeKG(idx int, enc *msgpack.Encoder, now int64) error {
	n := 0
	for _, elems := range f.maps.all(idx) {
		if f.live(elems, now) > 0 {
			n++
		}
	}
	if err := enc.EncodeInt(int64(n)); err != nil {
		return err
	}
	for k, elems := range f.maps.all(idx) {
		ne := f.live(elems, now)
		if ne == 0 {
			continue
		}
		if err := f.kc.enc(enc, k); err != nil {
			return err
		}
		if err := enc.EncodeInt(int64(ne)); err != nil {
			return err
		}
		for _, e := range elems {
			if f.ttl.expired(e.ts, now) {
				continue
			}
			if err := enc.EncodeInt(e.ts); err != nil {
				return err
			}
			if err := f.vc.enc(enc, e.v); err != nil {
				return err
			}
		}
	}
	return nil
}
