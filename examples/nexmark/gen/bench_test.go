package gen

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/flinkgo/flink/network"
)

func BenchmarkNext(b *testing.B) {
	g := newGen(b, nil)
	var ev Event
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		if err := g.Next(i, &ev); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkNextParallel generates from one shared Generator on every P.
func BenchmarkNextParallel(b *testing.B) {
	g := newGen(b, nil)
	const block = 4096
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ev Event
		i, end := int64(0), int64(0)
		for pb.Next() {
			if i == end { // take the next block of event numbers
				end = next.Add(block)
				i = end - block
			}
			if err := g.Next(i, &ev); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/float64(runtime.GOMAXPROCS(0)), "events/s/core")
}

// BenchmarkCodecEncode encodes events with the network stack's msgpack codec, as records
// crossing TaskManagers are.
func BenchmarkCodecEncode(b *testing.B) {
	g := newGen(b, nil)
	evs := events(b, g, 1000)
	codec := network.NewMsgpackCodec[Event]()
	b.ReportAllocs()
	i := 0
	var bytes int64
	var buf []byte
	for b.Loop() {
		var err error
		buf, err = codec.Encode(buf[:0], &evs[i%len(evs)])
		if err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(buf))
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/event")
}
