package queries

import (
	"sync"

	"github.com/flinkgo/flink/state"
)

// perBackend caches the state handles a keyed function registers on each subtask's keyed
// backend; looking them up here once per record costs far less than registering them again.
// A function held by pointer gets its own copy per subtask and could instead look its
// handles up once in Open (flink.RichFunction); a plain function (flink.OnElement) is
// shared by every subtask, and every restart builds new backends, so it needs this cache.
type perBackend[K comparable, H any] struct {
	m    sync.Map // state.KeyedStateStore[K] -> *H
	init func(b state.KeyedStateStore[K]) (*H, error)
}

func (p *perBackend[K, H]) get(b state.KeyedStateStore[K]) (*H, error) {
	if h, ok := p.m.Load(b); ok {
		return h.(*H), nil
	}
	h, err := p.init(b)
	if err != nil {
		return nil, err
	}
	p.m.Store(b, h)
	return h, nil
}
