package flink

import (
	"fmt"

	"github.com/flinkgo/flink/state"
)

// chainingStrategy says whether an operator may be chained to its input.
type chainingStrategy uint8

const (
	chainAlways chainingStrategy = iota // chain to the input when possible
	chainHead                           // start a new chain here
	chainNever                          // neither chain to the input nor let others chain to it
)

// partitionKind is the partitioner on an edge.
type partitionKind uint8

const (
	partDefault   partitionKind = iota // forward at equal parallelism, else rebalance
	partForward                        // subtask i to subtask i
	partRebalance                      // round robin
	partHash                           // by key group
	partBroadcast                      // to every subtask
)

func (p partitionKind) String() string {
	switch p {
	case partForward:
		return "FORWARD"
	case partRebalance:
		return "REBALANCE"
	case partHash:
		return "HASH"
	case partBroadcast:
		return "BROADCAST"
	}
	return "DEFAULT"
}

type opKind uint8

const (
	kindSource opKind = iota
	kindOperator
	kindSink
)

// transformation is one operator of the job as the user described it, before
// chaining: Flink's Transformation / StreamNode.
type transformation struct {
	env         *Env
	id          int
	kind        opKind
	opType      string // "Map", "Filter", ... for names and the fingerprint
	name        string
	uid         string
	parallelism int // 0: the job's default
	maxPar      int // an upper bound the operator imposes (1 for non-parallel sources); 0: none
	inputs      []input
	chaining    chainingStrategy
	slotGroup   string
	outType     streamType // nil for sinks
	// sideTypes are the record types of the side outputs read downstream,
	// by tag.
	sideTypes map[string]streamType
	// build creates the operator of one subtask. out is a consumer[OUT]
	// (nil for sinks); it returns a consumer[IN] for operators and sinks, or
	// a sourceRunner for sources.
	build func(oc *opContext, out any) (any, error)
}

// input is one incoming edge of a transformation, as described: the
// upstream transformation and how records are partitioned.
type input struct {
	from *transformation
	part partitionKind
	// keyGroupOf is a func(T) int mapping a record to its key group, for
	// partHash.
	keyGroupOf any
	// tag names the side output of from to read; "" for its main output.
	tag string
}

// outputType returns the record type of the output named tag ("" for the
// main output).
func (t *transformation) outputType(tag string) streamType {
	if tag == "" {
		return t.outType
	}
	return t.sideTypes[tag]
}

func (e *Env) add(t *transformation) *transformation {
	t.env = e
	t.id = len(e.transformations)
	if t.name == "" {
		t.name = t.opType
	}
	if t.slotGroup == "" {
		t.slotGroup = "default"
	}
	e.transformations = append(e.transformations, t)
	return t
}

// DataStream is a stream of records of type T: the output of a source or an
// operator, or a union of several such outputs. Its methods configure the
// operator that produced it and return the same stream, so they chain.
type DataStream[T any] struct {
	env *Env
	t   *transformation // the producing operator; nil for a union
	ins []input         // how a consumer reads this stream
}

func newStream[T any](t *transformation) *DataStream[T] {
	return &DataStream[T]{env: t.env, t: t, ins: []input{{from: t}}}
}

func (s *DataStream[T]) producer(method string) *transformation {
	if s.t == nil {
		s.env.setErr(fmt.Errorf("flink: %s on a union of streams or a side output: set it on the operator that produces it", method))
		return &transformation{} // absorbs the setting; the job fails to build
	}
	return s.t
}

// Name sets the operator's name, used in results, errors and logs.
func (s *DataStream[T]) Name(name string) *DataStream[T] {
	s.producer("Name").name = name
	return s
}

// UID sets the operator's stable id, by which later versions of a job find
// its state in savepoints.
func (s *DataStream[T]) UID(uid string) *DataStream[T] {
	s.producer("UID").uid = uid
	return s
}

// SetParallelism sets the operator's number of parallel subtasks.
func (s *DataStream[T]) SetParallelism(n int) *DataStream[T] {
	t := s.producer("SetParallelism")
	if n < 1 {
		s.env.setErr(fmt.Errorf("%w: operator %q: parallelism %d, want >= 1", ErrInvalidConfig, t.name, n))
	}
	t.parallelism = n
	return s
}

// DisableChaining keeps the operator out of any chain.
func (s *DataStream[T]) DisableChaining() *DataStream[T] {
	s.producer("DisableChaining").chaining = chainNever
	return s
}

// StartNewChain starts a new chain at this operator: it is not chained to
// its input, but following operators may chain to it.
func (s *DataStream[T]) StartNewChain() *DataStream[T] {
	s.producer("StartNewChain").chaining = chainHead
	return s
}

// SlotSharingGroup puts the operator in a slot sharing group. Subtasks of
// operators in the same group share slots; the default group is "default".
func (s *DataStream[T]) SlotSharingGroup(group string) *DataStream[T] {
	s.producer("SlotSharingGroup").slotGroup = group
	return s
}

func (s *DataStream[T]) withPartitioner(p partitionKind) *DataStream[T] {
	ins := make([]input, len(s.ins))
	for i, in := range s.ins {
		in.part = p
		in.keyGroupOf = nil
		ins[i] = in
	}
	return &DataStream[T]{env: s.env, t: s.t, ins: ins}
}

// Rebalance distributes records round robin over the next operator's
// subtasks.
func (s *DataStream[T]) Rebalance() *DataStream[T] { return s.withPartitioner(partRebalance) }

// Broadcast sends every record to every subtask of the next operator.
func (s *DataStream[T]) Broadcast() *DataStream[T] { return s.withPartitioner(partBroadcast) }

// Forward sends the records of subtask i to subtask i of the next operator,
// which must have the same parallelism.
func (s *DataStream[T]) Forward() *DataStream[T] { return s.withPartitioner(partForward) }

// Union merges streams of the same type into one.
func Union[T any](first *DataStream[T], more ...*DataStream[T]) *DataStream[T] {
	u := &DataStream[T]{env: first.env, ins: append([]input(nil), first.ins...)}
	for _, s := range more {
		if s.env != first.env {
			first.env.setErr(fmt.Errorf("flink: Union of streams from different environments"))
			continue
		}
		u.ins = append(u.ins, s.ins...)
	}
	return u
}

// KeyedStream is a stream partitioned by a key of type K: every record with
// the same key goes to the same subtask, by key group as Flink assigns them.
type KeyedStream[T any, K comparable] struct {
	s   *DataStream[T]
	key func(T) K
}

// KeyBy partitions s by the key that key selects. K must have a stable hash
// (strings, numbers, and arrays or structs of those); others fail the job at
// build time.
func KeyBy[T any, K comparable](s *DataStream[T], key func(T) K) *KeyedStream[T, K] {
	hash, err := state.Hasher[K]()
	if err != nil {
		s.env.setErr(fmt.Errorf("flink: KeyBy: %w", err))
	}
	maxPar := s.env.cfg.MaxParallelism
	keyGroupOf := func(v T) int { return state.KeyGroupForHash(hash(key(v)), maxPar) }
	ks := s.withPartitioner(partHash)
	for i := range ks.ins {
		ks.ins[i].keyGroupOf = keyGroupOf
	}
	return &KeyedStream[T, K]{s: ks, key: key}
}

// Stream returns the keyed stream as a DataStream, for operators that do not
// need the key.
func (k *KeyedStream[T, K]) Stream() *DataStream[T] { return k.s }

// addOperator adds a one-input operator reading in, producing OUT.
func addOperator[IN, OUT any](in *DataStream[IN], opType string, build func(oc *opContext, out consumer[OUT]) (consumer[IN], error)) *DataStream[OUT] {
	t := in.env.add(&transformation{
		kind:    kindOperator,
		opType:  opType,
		inputs:  append([]input(nil), in.ins...),
		outType: typeOf[OUT](),
		build: func(oc *opContext, out any) (any, error) {
			c, err := build(oc, out.(consumer[OUT]))
			if err != nil || len(oc.side.outs) == 0 {
				return c, err
			}
			return withSideOutputs[IN]{c, oc.side}, nil
		},
	})
	return newStream[OUT](t)
}

// withSideOutputs passes watermarks and the end of input to an operator's
// side outputs after its main output.
type withSideOutputs[T any] struct {
	consumer[T]
	side *sideOutputs
}

func (w withSideOutputs[T]) watermark(wm int64) error {
	if err := w.consumer.watermark(wm); err != nil {
		return err
	}
	if err := w.side.flush(); err != nil {
		return err
	}
	return w.side.watermark(wm)
}

func (w withSideOutputs[T]) endInput() error {
	if err := w.consumer.endInput(); err != nil {
		return err
	}
	if err := w.side.flush(); err != nil {
		return err
	}
	return w.side.endInput()
}

// Map applies f to every record.
func Map[T, U any](s *DataStream[T], f func(T) (U, error)) *DataStream[U] {
	return addOperator(s, "Map", func(oc *opContext, out consumer[U]) (consumer[T], error) {
		return &mapOp[T, U]{oc: oc, f: f, out: out}, nil
	})
}

// Filter keeps the records for which keep returns true.
func Filter[T any](s *DataStream[T], keep func(T) (bool, error)) *DataStream[T] {
	return addOperator(s, "Filter", func(oc *opContext, out consumer[T]) (consumer[T], error) {
		return &filterOp[T]{oc: oc, f: keep, out: out}, nil
	})
}

// Collector receives the records an operator emits. Collect never blocks
// the caller for long: records are batched and shipped after the user
// function returns or when a batch fills.
type Collector[T any] interface {
	Collect(v T)
}

// FlatMap calls f for every record; f emits zero or more records to out.
func FlatMap[T, U any](s *DataStream[T], f func(v T, out Collector[U]) error) *DataStream[U] {
	return addOperator(s, "FlatMap", func(oc *opContext, out consumer[U]) (consumer[T], error) {
		return &processOp[T, U]{oc: oc, f: func(_ *RuntimeContext, v T, out Collector[U]) error { return f(v, out) }, out: out}, nil
	})
}

// ProcessFunc handles one record with access to its subtask's runtime
// context; it emits zero or more records to out.
type ProcessFunc[T, U any] func(rc *RuntimeContext, v T, out Collector[U]) error

// Process applies a process function to every record.
func Process[T, U any](s *DataStream[T], f ProcessFunc[T, U]) *DataStream[U] {
	return addOperator(s, "Process", func(oc *opContext, out consumer[U]) (consumer[T], error) {
		return &processOp[T, U]{oc: oc, f: f, out: out}, nil
	})
}

// Reduce combines, per key, each record with the previous result and emits
// the new result: Flink's rolling reduce.
func Reduce[T any, K comparable](ks *KeyedStream[T, K], f func(acc, v T) (T, error)) *DataStream[T] {
	return addOperator(ks.s, "Reduce", func(oc *opContext, out consumer[T]) (consumer[T], error) {
		b, err := keyedBackend[K](oc)
		if err != nil {
			return nil, oc.fail(err)
		}
		acc, err := state.GetValueState(b, state.ValueStateDescriptor[T]{Name: "reduce"})
		if err != nil {
			return nil, oc.fail(err)
		}
		return &reduceOp[T, K]{oc: oc, key: ks.key, f: f, out: out, backend: b, acc: acc}, nil
	})
}

// AggregateFunction aggregates records into an accumulator, as Flink's
// AggregateFunction. Its methods are called from one goroutine per subtask.
type AggregateFunction[IN, ACC, OUT any] interface {
	// CreateAccumulator returns a new, empty accumulator.
	CreateAccumulator() ACC
	// Add folds v into acc and returns the new accumulator.
	Add(v IN, acc ACC) (ACC, error)
	// Result extracts the aggregate from acc.
	Result(acc ACC) (OUT, error)
	// Merge combines two accumulators (used by merging windows).
	Merge(a, b ACC) (ACC, error)
}

// Aggregate folds, per key, each record into the key's accumulator and
// emits the current result: a rolling aggregation.
func Aggregate[T any, K comparable, ACC, OUT any](ks *KeyedStream[T, K], agg AggregateFunction[T, ACC, OUT]) *DataStream[OUT] {
	return addOperator(ks.s, "Aggregate", func(oc *opContext, out consumer[OUT]) (consumer[T], error) {
		b, err := keyedBackend[K](oc)
		if err != nil {
			return nil, oc.fail(err)
		}
		acc, err := state.GetValueState(b, state.ValueStateDescriptor[ACC]{Name: "aggregate"})
		if err != nil {
			return nil, oc.fail(err)
		}
		return &aggregateOp[T, K, ACC, OUT]{oc: oc, key: ks.key, agg: agg, out: out, backend: b, acc: acc}, nil
	})
}
