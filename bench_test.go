package flink

import (
	"context"
	"testing"
	"time"
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
