package flink

import (
	"github.com/flinkgo/flink/state"
)

// KeyedContext is what a keyed process function sees: its subtask's
// RuntimeContext, the key of the record being processed, and the subtask's
// keyed state, which is always scoped to that key.
type KeyedContext[K comparable] struct {
	*RuntimeContext
	backend *state.HeapKeyedBackend[K]
	key     K
}

// CurrentKey returns the key of the record being processed.
func (c *KeyedContext[K]) CurrentKey() K { return c.key }

// State returns the subtask's keyed state backend. Register and use state
// through the state package; every state reads and writes the current key's
// value:
//
//	count, err := state.GetValueState(ctx.State(), state.ValueStateDescriptor[int]{Name: "count"})
//	n, _, err := count.Value()
//	err = count.Update(n + 1)
//
// The backend belongs to the subtask's goroutine; do not use it from
// others.
func (c *KeyedContext[K]) State() *state.HeapKeyedBackend[K] { return c.backend }

// KeyedProcessFunc handles one record of a keyed stream with access to the
// record's keyed state; it emits zero or more records to out.
type KeyedProcessFunc[K comparable, T, U any] func(ctx *KeyedContext[K], v T, out Collector[U]) error

// KeyedProcess applies f to every record of a keyed stream. Each subtask
// keeps keyed state for the key groups it owns, as Flink's
// KeyedProcessFunction.
func KeyedProcess[T any, K comparable, U any](ks *KeyedStream[T, K], f KeyedProcessFunc[K, T, U]) *DataStream[U] {
	return addOperator(ks.s, "KeyedProcess", func(oc *opContext, out consumer[U]) (consumer[T], error) {
		b, err := keyedBackend[K](oc)
		if err != nil {
			return nil, oc.fail(err)
		}
		return &keyedProcessOp[T, K, U]{oc: oc, key: ks.key, f: f, out: out, ctx: &KeyedContext[K]{RuntimeContext: oc.rc, backend: b}}, nil
	})
}

type keyedProcessOp[T any, K comparable, U any] struct {
	oc  *opContext
	key func(T) K
	f   KeyedProcessFunc[K, T, U]
	out consumer[U]
	ctx *KeyedContext[K]
	col batcher[U]
}

func (o *keyedProcessOp[T, K, U]) push(b []T) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	o.col.out = o.out
	for _, v := range b {
		k := o.key(v)
		if err := o.ctx.backend.SetCurrentKey(k); err != nil {
			return o.oc.fail(err)
		}
		o.ctx.key = k
		if err := o.f(o.ctx, v, &o.col); err != nil {
			return o.oc.fail(err)
		}
		if o.col.err != nil {
			return o.col.err
		}
	}
	o.oc.metrics.RecordsOut.Add(o.col.n)
	o.col.n = 0
	return o.col.flush()
}

func (o *keyedProcessOp[T, K, U]) endInput() error { return o.out.endInput() }
