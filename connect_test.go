package flink

import (
	"cmp"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/state"
	"github.com/flinkgo/flink/window"
)

func TestCoMapAndCoProcess(t *testing.T) {
	env := NewEnv(WithParallelism(2))
	nums := FromSlice(env, []int{1, 2, 3})
	words := FromSlice(env, []string{"a", "bb"})
	c := Connect(nums, words)
	got := Collect(CoMap(c, func(v int) (string, error) { return fmt.Sprint(v), nil }, func(s string) (string, error) { return s + "!", nil }))
	execute(t, env)
	assert.ElementsMatch(t, []string{"1", "2", "3", "a!", "bb!"}, got.Values())
}

// enrich joins orders with the latest price of their item: a keyed
// co-process function with state shared by both inputs.
type enrich struct{}

type order struct {
	Item string
	Qty  int64
}

type price struct {
	Item  string
	Cents int64
}

func (enrich) ProcessElement1(ctx *KeyedContext[string], o order, out Collector[string]) error {
	ps, err := stateValue2[int64](ctx, "price")
	if err != nil {
		return err
	}
	p, ok, err := ps.Value()
	if err != nil || !ok {
		return err
	}
	out.Collect(fmt.Sprintf("%s:%d", o.Item, o.Qty*p))
	return nil
}

func (enrich) ProcessElement2(ctx *KeyedContext[string], p price, _ Collector[string]) error {
	ps, err := stateValue2[int64](ctx, "price")
	if err != nil {
		return err
	}
	return ps.Update(p.Cents)
}

func (enrich) OnTimer(*KeyedContext[string], int64, Collector[string]) error { return nil }

func TestKeyedCoProcessSharesState(t *testing.T) {
	for _, network := range []bool{false, true} {
		t.Run(fmt.Sprintf("network=%v", network), func(t *testing.T) {
			done := make(chan struct{})
			env := NewEnv(WithParallelism(2), WithBufferTimeout(0))
			prices := FromSlice(env, []price{{"apple", 10}, {"pear", 20}})
			// Orders come after the prices arrived: the source waits for them.
			orders := FromSource(env, "orders", func() Source[order] {
				return &gatedSource[order]{records: []order{{"apple", 2}, {"pear", 3}, {"apple", 1}}, gate: done}
			}).SetParallelism(1)
			joined := KeyedCoProcess(ConnectKeyed(KeyBy(orders, func(o order) string { return o.Item }), KeyBy(prices, func(p price) string { return p.Item })),
				KeyedCoProcessFunction[string, order, price, string](enrich{}))
			got := Collect(joined)
			var seen int
			pricesSeen := Map(prices, func(p price) (price, error) { return p, nil })
			SinkTo(pricesSeen, "gate", SinkFunc(func(price) error {
				seen++ // parallelism 1 below
				if seen == 2 {
					close(done)
				}
				return nil
			})).SetParallelism(1)
			runLocalOrNetwork(t, env, network)
			assert.ElementsMatch(t, []string{"apple:20", "pear:60", "apple:10"}, got.Values())
		})
	}
}

// gatedSource emits its records once gate is closed.
type gatedSource[T any] struct {
	records []T
	gate    <-chan struct{}
}

func (s *gatedSource[T]) Run(ctx context.Context, out *SourceContext[T]) error {
	select {
	case <-s.gate:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return fmt.Errorf("gate never opened")
	}
	for _, r := range s.records {
		if err := out.Collect(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *gatedSource[T]) Cancel() {}

type pair struct{ A, B tev }

func cmpPair(x, y pair) int {
	return cmp.Or(cmp.Compare(x.A.V, y.A.V), cmp.Compare(x.B.V, y.B.V))
}

func TestWindowAndIntervalJoin(t *testing.T) {
	var left, right []tev
	for i := range int64(300) {
		left = append(left, tev{Key: i % 5, TS: 10_000 + i*37, V: i})
		right = append(right, tev{Key: i % 3, TS: 10_000 + i*53, V: 1000 + i})
	}
	tumbling, err := window.Tumbling(window.EventTime, time.Second, 0)
	require.NoError(t, err)
	build := func(env *Env) (*KeyedStream[tev, int64], *KeyedStream[tev, int64]) {
		ws := ForMonotonousTimestamps[tev]().WithTimestampAssigner(func(e tev, _ int64) int64 { return e.TS })
		l := AssignTimestampsAndWatermarks(FromSlice(env, left), ws)
		r := AssignTimestampsAndWatermarks(FromSlice(env, right), ws)
		key := func(e tev) int64 { return e.Key }
		return KeyBy(l, key), KeyBy(r, key)
	}
	t.Run("window join", func(t *testing.T) {
		env := NewEnv(WithParallelism(2))
		l, r := build(env)
		got := Collect(WindowJoin(l, r, tumbling, func(a, b tev, out Collector[pair]) error {
			out.Collect(pair{a, b})
			return nil
		}))
		execute(t, env)
		var want []pair
		for _, a := range left {
			for _, b := range right {
				if a.Key == b.Key && a.TS/1000 == b.TS/1000 {
					want = append(want, pair{a, b})
				}
			}
		}
		require.NotEmpty(t, want)
		assert.Equal(t, sorted(want, cmpPair), sorted(got.Values(), cmpPair))
	})
	t.Run("interval join", func(t *testing.T) {
		env := NewEnv(WithParallelism(2))
		l, r := build(env)
		got := Collect(IntervalJoin(l, r, -200*time.Millisecond, 100*time.Millisecond, func(a, b tev, out Collector[pair]) error {
			out.Collect(pair{a, b})
			return nil
		}))
		execute(t, env)
		var want []pair
		for _, a := range left {
			for _, b := range right {
				if a.Key == b.Key && b.TS >= a.TS-200 && b.TS <= a.TS+100 {
					want = append(want, pair{a, b})
				}
			}
		}
		require.NotEmpty(t, want)
		assert.Equal(t, sorted(want, cmpPair), sorted(got.Values(), cmpPair))
	})
}

func stateValue2[T any](ctx *KeyedContext[string], name string) (state.ValueState[T], error) {
	return state.GetValueState(ctx.State(), state.ValueStateDescriptor[T]{Name: name})
}

// runLocalOrNetwork runs env's job to a successful end: on the embedded
// cluster (in-process exchange) or, with network, on two TaskManagers that
// exchange records over loopback TCP.
func runLocalOrNetwork(t *testing.T, env *Env, network bool) {
	t.Helper()
	if !network {
		execute(t, env)
		return
	}
	c := isolatedCluster(t, 2, 2, nil)
	res, err := runOn(t, c, env)
	require.NoError(t, err)
	require.Equal(t, JobFinished, res.Status, "%v", res.Err)
}
