package flink

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/state"
)

// pauseMeter records the longest gap between consecutive records in a
// window of time: the longest processing pause a checkpoint causes.
type pauseMeter struct {
	mu       sync.Mutex
	last     time.Time
	measure  bool
	maxPause time.Duration
}

func (p *pauseMeter) tick() {
	now := time.Now()
	p.mu.Lock()
	if p.measure && !p.last.IsZero() {
		p.maxPause = max(p.maxPause, now.Sub(p.last))
	}
	p.last = now
	p.mu.Unlock()
}

func (p *pauseMeter) start() {
	p.mu.Lock()
	p.measure, p.maxPause, p.last = true, 0, time.Time{}
	p.mu.Unlock()
}

func (p *pauseMeter) stop() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.measure = false
	return p.maxPause
}

// BenchmarkCheckpointLargeState measures a checkpoint of 100 MB and 1 GB
// of keyed heap state written to a directory: its duration and the longest
// pause in record processing while it is taken, against the longest pause
// in a window of the same length without a checkpoint.
//
//	go test -run '^$' -bench CheckpointLargeState -benchtime 3x .
func BenchmarkCheckpointLargeState(b *testing.B) {
	for _, size := range []struct {
		name string
		keys int64
	}{{"100MB", 100_000}, {"1GB", 1_000_000}} {
		b.Run(size.name, func(b *testing.B) { benchCheckpointState(b, size.keys) })
	}
}

func benchCheckpointState(b *testing.B, keys int64) {
	const valueSize = 1000
	dir := b.TempDir()
	storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: filepath.Join(dir, "checkpoints")})
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager, cfg.CheckpointStorage = 1, storage
	c, err := NewLocalCluster(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	var filled atomic.Int64
	meter := &pauseMeter{}
	env := NewEnv(WithParallelism(1))
	src := Generate(env, -1, func(i int64) (int64, error) { return i % keys, nil })
	out := KeyedProcess(KeyBy(src, func(k int64) int64 { return k }), OnElement(func(ctx *KeyedContext[int64], k int64, out Collector[int64]) error {
		meter.tick()
		v, err := state.GetValueState(ctx.State(), state.ValueStateDescriptor[[]byte]{Name: "payload"})
		if err != nil {
			return err
		}
		if _, ok, err := v.Value(); err != nil || ok {
			return err
		}
		filled.Add(1)
		payload := make([]byte, valueSize)
		payload[0] = byte(k)
		return v.Update(payload)
	}))
	SinkTo(out, "discard", SinkFunc(func(int64) error { return nil }))
	g, err := env.JobGraph()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.Dispatcher().submitGraph(ctx, g)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		c.Dispatcher().CancelJob(ctx, id)
		c.Dispatcher().JobResult(ctx, id)
	}()
	for filled.Load() < keys {
		time.Sleep(10 * time.Millisecond)
	}
	var durations, pauses, baseline []time.Duration
	var size int64
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		meter.start()
		var err error
		for {
			_, err = c.Dispatcher().TriggerSavepoint(ctx, id, fmt.Sprintf("sp-%d", i), false)
			if !errors.Is(err, ErrJobNotRunning) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		took := time.Since(start)
		pauses = append(pauses, meter.stop())
		if err != nil {
			b.Fatal(err)
		}
		durations = append(durations, took)
		// The same window without a checkpoint: GC and scheduling pauses.
		meter.start()
		time.Sleep(took)
		baseline = append(baseline, meter.stop())
	}
	b.StopTimer()
	st, _, _ := c.Dispatcher().CheckpointStats(id)
	if st.LatestSavepoint != nil {
		size = st.LatestSavepoint.StateSize
	}
	b.ReportMetric(float64(median(durations).Milliseconds()), "checkpoint-ms")
	b.ReportMetric(float64(median(pauses).Microseconds())/1000, "max-pause-ms")
	b.ReportMetric(float64(median(baseline).Microseconds())/1000, "baseline-max-pause-ms")
	b.ReportMetric(float64(size)/(1<<20), "state-MiB")
	b.ReportMetric(0, "ns/op")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkCheckpointThroughput compares a keyed running sum's throughput
// with a checkpoint every second against none, in one run.
//
//	go test -run '^$' -bench CheckpointThroughput -benchtime 3x .
func BenchmarkCheckpointThroughput(b *testing.B) {
	const records, keys = 40_000_000, 100_000
	run := func(interval time.Duration) (time.Duration, uint64) {
		cfg := DefaultClusterConfig()
		cfg.SlotsPerTaskManager = 2
		storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: filepath.Join(b.TempDir(), "checkpoints")})
		if err != nil {
			b.Fatal(err)
		}
		cfg.CheckpointStorage = storage
		c, err := NewLocalCluster(cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		opts := []Option{WithParallelism(2)}
		if interval > 0 {
			opts = append(opts, WithCheckpointing(interval))
		}
		env := NewEnv(opts...)
		src := Generate(env, records, func(i int64) (keyCount, error) { return keyCount{Key: i % keys, Count: 1}, nil })
		sums := Reduce(KeyBy(src, func(r keyCount) int64 { return r.Key }), func(a, v keyCount) (keyCount, error) {
			return keyCount{Key: a.Key, Count: a.Count + v.Count}, nil
		})
		SinkTo(sums, "discard", SinkFunc(func(keyCount) error { return nil }))
		g, err := env.JobGraph()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := c.RunGraph(context.Background(), g)
		if err != nil {
			b.Fatal(err)
		}
		st, _, _ := c.Dispatcher().CheckpointStats(res.ID)
		return time.Since(start), st.Counts.Completed
	}
	var ratios []float64
	var plainRate, ckptRate float64
	var completed uint64
	for range b.N {
		plain, _ := run(0)
		withCkpt, n := run(time.Second)
		completed = n
		plainRate = records / plain.Seconds()
		ckptRate = records / withCkpt.Seconds()
		ratios = append(ratios, ckptRate/plainRate)
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	b.ReportMetric(plainRate/1e6, "M-rec/s-plain")
	b.ReportMetric(ckptRate/1e6, "M-rec/s-checkpointed")
	b.ReportMetric(float64(completed), "checkpoints")
	b.ReportMetric(0, "ns/op")
}
