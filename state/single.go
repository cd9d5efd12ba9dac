package state

import (
	"github.com/vmihailenco/msgpack/v5"
)

// valueEntry is a stored value and the time its TTL was last refreshed
// (Unix milliseconds; 0 without TTL).
type valueEntry[T any] struct {
	v  T
	ts int64
}

// single is the storage shared by the states that keep one value per key:
// value, reducing and aggregating state.
type single[K comparable, T any] struct {
	t   table[K, valueEntry[T]]
	ttl ttlPolicy
	cfg TTLConfig
	m   stateMeta
	c   codec[T]
}

func newSingle[K comparable, T any](b *HeapKeyedBackend[K], m stateMeta, cfg TTLConfig) single[K, T] {
	return single[K, T]{t: newTable[K, valueEntry[T]](b), ttl: newTTLPolicy(cfg), cfg: cfg, m: m, c: newCodec[T]()}
}

func (s *single[K, T]) meta() stateMeta      { return s.m }
func (s *single[K, T]) keys() []K            { return s.t.keys() }
func (s *single[K, T]) ttlConfig() TTLConfig { return s.cfg }

// load returns the current key's live value, refreshing or dropping it as
// the TTL says.
func (s *single[K, T]) load() (T, bool, error) {
	var zero T
	b := s.t.b
	if b.cur < 0 {
		return zero, false, b.errNoKey(s.m.Name)
	}
	e, ok := s.t.get()
	if !ok {
		return zero, false, nil
	}
	if s.ttl.enabled() {
		now := b.nowMs()
		if s.ttl.expired(e.ts, now) {
			s.t.remove()
			return zero, false, nil
		}
		if s.ttl.onRead && e.ts != now {
			e.ts = now
			s.t.put(e)
		}
	}
	return e.v, true, nil
}

func (s *single[K, T]) store(v T) error {
	b := s.t.b
	if b.cur < 0 {
		return b.errNoKey(s.m.Name)
	}
	var ts int64
	if s.ttl.enabled() {
		ts = b.nowMs()
	}
	s.t.put(valueEntry[T]{v: v, ts: ts})
	return nil
}

func (s *single[K, T]) clear() error {
	if s.t.b.cur < 0 {
		return s.t.b.errNoKey(s.m.Name)
	}
	s.t.remove()
	return nil
}

func (s *single[K, T]) purgeExpired(now int64) int {
	return s.t.purge(func(e valueEntry[T]) (valueEntry[T], bool, bool) {
		return e, false, s.ttl.expired(e.ts, now)
	})
}

func (s *single[K, T]) freeze() frozenState {
	return &frozenSingle[K, T]{maps: s.t.freeze(), kc: s.t.b.keyCodec, vc: s.c, ttl: s.ttl}
}

func (s *single[K, T]) restoreKG(idx int, blob []byte, snapTTL bool, now int64) error {
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
		ts, err := r.int64()
		if err != nil {
			return err
		}
		v, err := decodeWith(r, s.c, "value")
		if err != nil {
			return err
		}
		ts = restoredTS(ts, snapTTL, s.ttl, now)
		if !s.ttl.expired(ts, now) {
			s.t.insert(idx, sub, k, valueEntry[T]{v: v, ts: ts})
		}
	}
	return r.done()
}

type frozenSingle[K comparable, T any] struct {
	maps frozenTable[K, valueEntry[T]]
	kc   codec[K]
	vc   codec[T]
	ttl  ttlPolicy
}

func (f *frozenSingle[K, T]) writeKG(idx int, enc *msgpack.Encoder, now int64) error {
	n := f.maps.len(idx)
	if f.ttl.enabled() {
		n = 0
		for _, e := range f.maps.all(idx) {
			if !f.ttl.expired(e.ts, now) {
				n++
			}
		}
	}
	if err := enc.EncodeInt(int64(n)); err != nil {
		return err
	}
	for k, e := range f.maps.all(idx) {
		if f.ttl.expired(e.ts, now) {
			continue
		}
		if err := f.kc.enc(enc, k); err != nil {
			return err
		}
		if err := enc.EncodeInt(e.ts); err != nil {
			return err
		}
		if err := f.vc.enc(enc, e.v); err != nil {
			return err
		}
	}
	return nil
}
