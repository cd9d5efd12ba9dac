package queries_test

import (
	"context"
	"testing"
	"time"

	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/queries"
)

// BenchmarkQuery runs each query on b.N million events (at least one million) at parallelism
// 2 with a checkpoint every 10 s, and reports events per CPU-second of the whole process.
func BenchmarkQuery(b *testing.B) {
	for _, name := range queries.Names() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			events := int64(1_000_000)
			var total queries.RunResult
			for b.Loop() {
				r, err := queries.Run(context.Background(), name, gen.DefaultConfig(), events, 2, 10*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				total.Events += r.Events
				total.CPU += r.CPU
			}
			b.ReportMetric(total.EventsPerCPUSecond(), "events/cpu-s")
		})
	}
}
