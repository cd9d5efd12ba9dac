// Command nexmark runs a Nexmark query on the embedded local cluster and reports its throughput
// per core: the events read divided by the process's user+system CPU time.
//
//	go run ./examples/nexmark -query q5 -events 10000000 -parallelism 2
//
// Results are counted and dropped. Checkpoints are taken every -checkpoint (10 s by default).
// -query all runs every query in turn.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/queries"
)

func main() {
	query := flag.String("query", "q0", "query to run (q0, q1, q2, q3, q4, q5, q7, q8, q11) or all")
	events := flag.Int64("events", 10_000_000, "number of events to generate")
	parallelism := flag.Int("parallelism", 2, "parallelism of every operator")
	checkpoint := flag.Duration("checkpoint", 10*time.Second, "checkpoint interval")
	rate := flag.Int64("rate", gen.DefaultConfig().EventsPerSecond, "event-time rate of the generator, events/s")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	names := []string{*query}
	if *query == "all" {
		names = queries.Names()
	}
	cfg := gen.DefaultConfig()
	cfg.EventsPerSecond = *rate
	fmt.Printf("%-5s %12s %12s %10s %10s %14s\n", "query", "events", "output", "wall", "cpu", "events/cpu-s")
	for _, name := range names {
		r, err := queries.Run(ctx, name, cfg, *events, *parallelism, *checkpoint)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nexmark: %s: %v\n", name, err)
			os.Exit(1)
		}
		fmt.Printf("%-5s %12d %12d %10s %10s %14.0f\n", name, r.Events, r.Output,
			r.Wall.Round(time.Millisecond), r.CPU.Round(time.Millisecond), r.EventsPerCPUSecond())
	}
}
