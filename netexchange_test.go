package flink

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flinkgo/flink/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// isolatedCluster starts TaskManagers that exchange records over loopback
// TCP, as TaskManagers in separate processes do.
func isolatedCluster(t *testing.T, tms, slots int, tune func(*ClusterConfig)) *LocalCluster {
	t.Helper()
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.IsolatedTaskManagers = tms, slots, true
	cfg.SlotRequestTimeout = 30 * time.Second
	if tune != nil {
		tune(&cfg)
	}
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func runOn(t *testing.T, c *LocalCluster, env *Env) (*JobResult, error) {
	t.Helper()
	g, err := env.JobGraph()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return c.RunGraph(ctx, g)
}

func TestNetworkExchangeKeyedShuffle(t *testing.T) {
	c := isolatedCluster(t, 2, 2, nil)
	const n = 200_000
	env := NewEnv(WithParallelism(4))
	src := Generate(env, n, func(i int64) (kv, error) { return kv{K: fmt.Sprint(i % 97), V: 1}, nil })
	counts := Reduce(KeyBy(src, func(r kv) string { return r.K }), func(a, b kv) (kv, error) { return kv{a.K, a.V + b.V}, nil })
	broadcast := Process(counts.Rebalance(), func(rc *RuntimeContext, r kv, out Collector[kv]) error {
		out.Collect(r)
		return nil
	})
	got := Collect(broadcast)
	res, err := runOn(t, c, env)
	require.NoError(t, err)
	final := map[string]int{}
	for _, r := range got.Values() {
		final[r.K] = max(final[r.K], r.V)
	}
	require.Len(t, final, 97)
	total := 0
	for _, v := range final {
		total += v
	}
	assert.Equal(t, n, total, "every record counted exactly once")
	op, _ := res.Operator("Reduce")
	assert.EqualValues(t, n, op.RecordsIn)
}

func TestNetworkExchangeBroadcastAndUnion(t *testing.T) {
	c := isolatedCluster(t, 3, 1, nil)
	env := NewEnv(WithParallelism(3), WithBufferTimeout(0))
	a := Generate(env, 30, func(i int64) (int64, error) { return i, nil })
	b := FromSlice(env, []int64{1000, 2000})
	u := Process(Union(a, b.Broadcast()), func(rc *RuntimeContext, v int64, out Collector[int64]) error {
		out.Collect(v)
		return nil
	})
	got := Collect(u)
	_, err := runOn(t, c, env)
	require.NoError(t, err)
	assert.Len(t, got.Values(), 30+2*3, "the broadcast records reach all three subtasks")
}

func TestNetworkExchangeFailureAndCancel(t *testing.T) {
	c := isolatedCluster(t, 2, 2, nil)
	boom := errors.New("boom")
	env := NewEnv(WithParallelism(4))
	src := Generate(env, -1, func(i int64) (int64, error) { return i, nil })
	m := Map(src.Rebalance(), func(v int64) (int64, error) {
		if v == 50_000 {
			return 0, boom
		}
		return v, nil
	}).Name("fails")
	SinkTo(m, "discard", SinkFunc(func(int64) error { return nil }))
	_, err := runOn(t, c, env)
	require.ErrorIs(t, err, boom)

	// An unbounded job over the network stops when cancelled.
	env = NewEnv(WithParallelism(4))
	var seen atomic.Int64
	src = Generate(env, -1, func(i int64) (int64, error) { return i, nil })
	SinkTo(Reduce(KeyBy(src, func(v int64) int64 { return v % 7 }), func(a, b int64) (int64, error) { return a + b, nil }),
		"count", SinkFunc(func(int64) error { seen.Add(1); return nil }))
	g, err := env.JobGraph()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.RunGraph(ctx, g); done <- err }()
	require.Eventually(t, func() bool { return seen.Load() > 10_000 }, time.Minute, time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrJobCanceled)
	case <-time.After(time.Minute):
		t.Fatal("job over the network did not stop after cancel")
	}
}

func TestNetworkBufferShortageFailsDeployment(t *testing.T) {
	c := isolatedCluster(t, 2, 4, func(cfg *ClusterConfig) {
		cfg.Network = network.DefaultConfig()
		cfg.Network.NumBuffers = 8
	})
	env := NewEnv(WithParallelism(8))
	src := Generate(env, 10, func(i int64) (int64, error) { return i, nil })
	Collect(Reduce(KeyBy(src, func(v int64) int64 { return v }), func(a, b int64) (int64, error) { return a + b, nil }))
	_, err := runOn(t, c, env)
	require.ErrorIs(t, err, network.ErrInsufficientBuffers)
	assert.Contains(t, err.Error(), "task manager taskmanager-")
	assert.Contains(t, err.Error(), "buffers")
}
