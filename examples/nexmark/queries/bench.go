package queries

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
)

// Builders maps each query's name ("q0", ...) to a function adding it to a job and counting its
// output records in *n.
var Builders = map[string]func(events *flink.DataStream[gen.Event], n *atomic.Int64){
	"q0":  func(s *flink.DataStream[gen.Event], n *atomic.Int64) { discard(Q0(s), n) },
	"q1":  func(s *flink.DataStream[gen.Event], n *atomic.Int64) { discard(Q1(s), n) },
	"q2":  func(s *flink.DataStream[gen.Event], n *atomic.Int64) { discard(Q2(s), n) },
	"q3":  func(s *flink.DataStream[gen.Event], n *atomic.Int64) { discard(Q3(s), n) },
	"q4":  func(s *flink.DataStream[gen.Event], n *atomic.Int64) { discard(Q4(s), n) },
	"q5":  func(s *flink.DataStream[gen.Event], n *atomic.Int64) { discard(Q5(s), n) },
	"q7":  func(s *flink.DataStream[gen.Event], n *atomic.Int64) { discard(Q7(s), n) },
	"q8":  func(s *flink.DataStream[gen.Event], n *atomic.Int64) { discard(Q8(s), n) },
	"q11": func(s *flink.DataStream[gen.Event], n *atomic.Int64) { discard(Q11(s), n) },
}

// Names returns the query names in benchmark order.
func Names() []string {
	names := make([]string, 0, len(Builders))
	for n := range Builders {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		var a, b int
		fmt.Sscanf(names[i], "q%d", &a)
		fmt.Sscanf(names[j], "q%d", &b)
		return a < b
	})
	return names
}

// discard counts s's records and drops them.
func discard[T any](s *flink.DataStream[T], n *atomic.Int64) {
	flink.SinkTo(s, "discard", flink.SinkFunc(func(T) error {
		n.Add(1)
		return nil
	}))
}

// RunResult is one benchmark run: the events read, the records output, and the wall and CPU
// (user + system, of the whole process) time the job took.
type RunResult struct {
	Events, Output int64
	Wall, CPU      time.Duration
}

// EventsPerCPUSecond is the throughput per core: events divided by the process's CPU time.
func (r RunResult) EventsPerCPUSecond() float64 { return float64(r.Events) / r.CPU.Seconds() }

// Run runs query name on events 0 to events-1 of cfg with the given parallelism and a
// checkpoint every checkpointInterval, on the embedded local cluster, and measures it.
func Run(ctx context.Context, name string, cfg gen.Config, events int64, parallelism int, checkpointInterval time.Duration) (RunResult, error) {
	build, ok := Builders[name]
	if !ok {
		return RunResult{}, fmt.Errorf("nexmark: unknown query %q, want one of %v", name, Names())
	}
	env := flink.NewEnv(flink.WithName("nexmark-"+name), flink.WithParallelism(parallelism),
		flink.WithCheckpointing(checkpointInterval))
	var out atomic.Int64
	build(Source(env, cfg, events), &out)
	cpu0, err := cpuTime()
	if err != nil {
		return RunResult{}, err
	}
	start := time.Now()
	res, err := env.Execute(ctx)
	wall := time.Since(start)
	if err != nil {
		return RunResult{}, err
	}
	if res.Status != flink.JobFinished {
		return RunResult{}, fmt.Errorf("nexmark: %s ended %v, want %v", name, res.Status, flink.JobFinished)
	}
	cpu1, err := cpuTime()
	if err != nil {
		return RunResult{}, err
	}
	return RunResult{Events: events, Output: out.Load(), Wall: wall, CPU: cpu1 - cpu0}, nil
}

// cpuTime returns the user plus system CPU time the process has used.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("nexmark: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
