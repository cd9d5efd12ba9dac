package flink

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/flinkgo/flink/window"
)

// The functions both the engine and the plain loop call, through function
// values, as user code is called.
var (
	benchMap1   = func(v int64) (int64, error) { return v * 3, nil }
	benchFilter = func(v int64) (bool, error) { return v%2 == 0, nil }
	benchMap2   = func(v int64) (int64, error) { return v + 1, nil }
	benchGen    = func(i int64) (int64, error) { return i, nil }
)

// BenchmarkChainVsPlainLoop runs Generate -> Map -> Filter -> Map -> sink as
// one chained task, and the same calls as a plain Go loop, in one run:
// records/s of each and their ratio (target >= 0.5).
//
//	go test -run '^$' -bench ChainVsPlainLoop -benchtime 20000000x .
func BenchmarkChainVsPlainLoop(b *testing.B) {
	n := int64(b.N)
	var sink int64
	sinkFn := func(v int64) error { sink += v; return nil }

	start := time.Now()
	env := NewEnv(WithParallelism(1))
	s := Map(Filter(Map(Generate(env, n, benchGen), benchMap1), benchFilter), benchMap2)
	SinkTo(s, "sink", SinkFunc(sinkFn))
	if _, err := env.Execute(context.Background()); err != nil {
		b.Fatal(err)
	}
	engine := time.Since(start)

	start = time.Now()
	for i := int64(0); i < n; i++ {
		v, _ := benchGen(i)
		v, _ = benchMap1(v)
		if ok, _ := benchFilter(v); !ok {
			continue
		}
		v, _ = benchMap2(v)
		sinkFn(v)
	}
	plain := time.Since(start)

	b.ReportMetric(float64(n)/engine.Seconds(), "records/s")
	b.ReportMetric(float64(n)/plain.Seconds(), "plain-records/s")
	b.ReportMetric(plain.Seconds()/engine.Seconds(), "ratio")
}

// BenchmarkKeyByReduce runs Generate -> KeyBy -> Reduce -> sink at
// parallelism 2: a hash exchange between subtasks in one process.
// Target >= 5 M records/s on 2 cores.
//
//	go test -run '^$' -bench KeyByReduce -benchtime 20000000x .
func BenchmarkKeyByReduce(b *testing.B) {
	b.ReportAllocs()
	env := NewEnv(WithParallelism(2))
	src := Generate(env, int64(b.N), benchGen)
	sums := Reduce(KeyBy(src, func(v int64) int64 { return v % 1024 }), func(a, b int64) (int64, error) { return a + b, nil })
	SinkTo(sums, "sink", SinkFunc(func(int64) error { return nil }))
	start := time.Now()
	if _, err := env.Execute(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// record100 is a 100-byte record: a key and a payload.
type record100 struct {
	Key     int64
	Payload [92]byte
}

// EncodeMsgpack and DecodeMsgpack let the record encode itself, the fast
// path msgpack's custom encoder interfaces offer: no reflection, no
// allocation.
func (r *record100) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeInt(r.Key); err != nil {
		return err
	}
	return enc.EncodeBytes(r.Payload[:])
}

// DecodeMsgpack decodes what EncodeMsgpack wrote.
func (r *record100) DecodeMsgpack(dec *msgpack.Decoder) error {
	var err error
	if r.Key, err = dec.DecodeInt64(); err != nil {
		return err
	}
	n, err := dec.DecodeBytesLen()
	if err != nil {
		return err
	}
	if n != len(r.Payload) {
		return fmt.Errorf("record100: payload of %d bytes, want %d", n, len(r.Payload))
	}
	return dec.ReadFull(r.Payload[:])
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkShuffle100B runs a 2 -> 2 hash shuffle of 100-byte records:
// "typed" between subtasks of one TaskManager (Go values handed over), and
// "network" between two TaskManagers whose exchanges are serialized and
// cross loopback TCP, as between processes. It reports records/s and
// records per CPU-second of the whole process.
//
//	go test -run '^$' -bench Shuffle100B -benchtime 5000000x .
func BenchmarkShuffle100B(b *testing.B) {
	for _, mode := range []string{"typed", "network"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			cfg := DefaultClusterConfig()
			cfg.TaskManagers, cfg.SlotsPerTaskManager = 1, 2
			if mode == "network" {
				cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.IsolatedTaskManagers = 2, 1, true
			}
			c, err := NewLocalCluster(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			env := NewEnv(WithParallelism(2))
			src := Generate(env, int64(b.N), func(i int64) (record100, error) { return record100{Key: i}, nil })
			keyed := KeyBy(src, func(r record100) int64 { return r.Key % 4096 }).Stream()
			SinkTo(Filter(keyed, func(record100) (bool, error) { return true, nil }), "sink", SinkFunc(func(record100) error { return nil }))
			g, err := env.JobGraph()
			if err != nil {
				b.Fatal(err)
			}
			start, cpu0 := time.Now(), cpuTime()
			if _, err := c.RunGraph(context.Background(), g); err != nil {
				b.Fatal(err)
			}
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
		})
	}
}

// BenchmarkEventTimeWindow counts records per key (1024 keys) in tumbling
// one-second event-time windows, 10 records per millisecond of event time
// (about 10 per key and window), with periodic watermarks: Generate → timestamps → KeyBy → window aggregate → discard,
// parallelism 2. It reports records/s and records per CPU-second.
//
//	go test -run '^$' -bench EventTimeWindow -benchtime 5000000x .
func BenchmarkEventTimeWindow(b *testing.B) {
	b.ReportAllocs()
	env := NewEnv(WithParallelism(2))
	src := Generate(env, int64(b.N), benchGen)
	stamped := AssignTimestampsAndWatermarks(src, ForBoundedOutOfOrderness[int64](100*time.Millisecond).
		WithTimestampAssigner(func(v int64, _ int64) int64 { return v / 10 }))
	tumbling, err := window.Tumbling(window.EventTime, time.Second, 0)
	if err != nil {
		b.Fatal(err)
	}
	counts := WindowAggregate(Window(KeyBy(stamped, func(v int64) int64 { return v % 1024 }), tumbling), benchCount{})
	SinkTo(counts, "sink", SinkFunc(func(int64) error { return nil }))
	cpu, start := cpuTime(), time.Now()
	if _, err := env.Execute(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu).Seconds(), "records/cpu-s")
}

// benchCount counts records.
type benchCount struct{}

func (benchCount) CreateAccumulator() int64              { return 0 }
func (benchCount) Add(_ int64, acc int64) (int64, error) { return acc + 1, nil }
func (benchCount) Result(acc int64) (int64, error)       { return acc, nil }
func (benchCount) Merge(a, b int64) (int64, error)       { return a + b, nil }
