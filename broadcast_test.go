package flink

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/checkpoint"
)

type rule struct {
	Cat, Threshold int64
}

type alert struct {
	Subtask int
	Event   tev
}

// thresholds emits events above their category's threshold; the
// thresholds arrive on the broadcast side.
type thresholds struct{ writeFromKeyedSide bool }

func (f thresholds) ProcessElement(ctx *KeyedContext[int64], bs *BroadcastState[int64, int64], e tev, out Collector[alert]) error {
	if f.writeFromKeyedSide {
		return bs.Put(e.Key, 0)
	}
	if th, ok := bs.Get(e.Key % 2); ok && e.V > th {
		out.Collect(alert{Subtask: ctx.SubtaskIndex(), Event: e})
	}
	return nil
}

func (thresholds) ProcessBroadcastElement(_ *RuntimeContext, bs *BroadcastState[int64, int64], r rule, _ Collector[alert]) error {
	return bs.Put(r.Cat, r.Threshold)
}

func (thresholds) OnTimer(*KeyedContext[int64], *BroadcastState[int64, int64], int64, Collector[alert]) error {
	return nil
}

// TestBroadcastStateRestoresEverywhere runs a job whose thresholds come in
// on a broadcast input, stops it with a savepoint, and restarts it at a
// higher parallelism: every subtask, the new one included, has the
// thresholds from the savepoint.
func TestBroadcastStateRestoresEverywhere(t *testing.T) {
	dir := t.TempDir()
	storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: filepath.Join(dir, "checkpoints")})
	require.NoError(t, err)
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager, cfg.CheckpointStorage = 3, storage
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var mu sync.Mutex
	var alerts []alert
	start := func(p int, savepoint string) JobID {
		env := NewEnv(WithParallelism(p), WithCheckpointing(30*time.Millisecond), WithSavepoint(savepoint, true))
		// The restored job gets no rules: only the savepoint has them.
		rules := FromSlice(env, []rule{{Cat: 0, Threshold: 5}, {Cat: 1, Threshold: 7}}).UID("rules")
		if savepoint != "" {
			rules = FromSlice(env, []rule{}).UID("no rules")
		}
		events := Generate(env, -1, func(i int64) (tev, error) {
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
			return tev{Key: i % 30, V: i % 10}, nil
		}).UID("events")
		out := KeyedBroadcastProcess(KeyBy(events, func(e tev) int64 { return e.Key }), rules,
			KeyedBroadcastProcessFunction[int64, tev, rule, alert, int64, int64](thresholds{})).UID("alerts")
		SinkTo(out, "alerts", SinkFunc(func(a alert) error {
			mu.Lock()
			alerts = append(alerts, a)
			mu.Unlock()
			return nil
		}))
		g, err := env.JobGraph()
		require.NoError(t, err)
		id, err := c.Dispatcher().submitGraph(ctx, g)
		require.NoError(t, err)
		return id
	}
	id := start(2, "")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(alerts) > 100 }, time.Minute, time.Millisecond)
	sp := savepointWhenRunning(t, c.Dispatcher(), id, "", true)
	res, err := c.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	require.Equal(t, JobFinished, res.Status)

	mu.Lock()
	alerts = nil
	mu.Unlock()
	id = start(3, sp)
	subtasks := func() map[int]bool {
		mu.Lock()
		defer mu.Unlock()
		seen := map[int]bool{}
		for _, a := range alerts {
			seen[a.Subtask] = true
		}
		return seen
	}
	require.Eventually(t, func() bool { return len(subtasks()) == 3 }, time.Minute, time.Millisecond,
		"every subtask of the restored job alerts, with thresholds restored from the savepoint")
	require.NoError(t, c.Dispatcher().CancelJob(ctx, id))
	mu.Lock()
	defer mu.Unlock()
	for _, a := range alerts {
		th := map[int64]int64{0: 5, 1: 7}[a.Event.Key%2]
		assert.Greater(t, a.Event.V, th, "alert %+v", a)
	}
}

func TestBroadcastStateReadOnlyOnKeyedSide(t *testing.T) {
	env := NewEnv(WithParallelism(2))
	rules := FromSlice(env, []rule{{Cat: 0, Threshold: 5}})
	events := FromSlice(env, []tev{{Key: 1, V: 3}})
	Collect(KeyedBroadcastProcess(KeyBy(events, func(e tev) int64 { return e.Key }), rules,
		KeyedBroadcastProcessFunction[int64, tev, rule, alert, int64, int64](thresholds{writeFromKeyedSide: true})))
	_, err := env.Execute(context.Background())
	assert.ErrorIs(t, err, ErrBroadcastStateReadOnly)
}
