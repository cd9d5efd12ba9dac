package state

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkValueState measures the hot path: set the key, read the value,
// write it back. Keys are preloaded, so no map grows during the run.
func BenchmarkValueState(b *testing.B) {
	const nkeys = 100_000
	b.Run("int64-key/get+update", func(b *testing.B) {
		be := newBackend[int64](b, DefaultKeyedBackendOptions())
		s, err := GetValueState(be, ValueStateDescriptor[int64]{Name: "v"})
		must(b, err)
		for k := range int64(nkeys) {
			must(b, be.SetCurrentKey(k))
			must(b, s.Update(k))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			_ = be.SetCurrentKey(int64(i % nkeys))
			v, _, _ := s.Value()
			_ = s.Update(v + 1)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("int64-key/same-key-get+update", func(b *testing.B) {
		be := newBackend[int64](b, DefaultKeyedBackendOptions())
		s, err := GetValueState(be, ValueStateDescriptor[int64]{Name: "v"})
		must(b, err)
		must(b, be.SetCurrentKey(7))
		must(b, s.Update(0))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			v, _, _ := s.Value()
			_ = s.Update(v + 1)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("string-key/get+update", func(b *testing.B) {
		be := newBackend[string](b, DefaultKeyedBackendOptions())
		s, err := GetValueState(be, ValueStateDescriptor[int64]{Name: "v"})
		must(b, err)
		ks := keys(nkeys)
		for _, k := range ks {
			must(b, be.SetCurrentKey(k))
			must(b, s.Update(1))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			_ = be.SetCurrentKey(ks[i%nkeys])
			v, _, _ := s.Value()
			_ = s.Update(v + 1)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("int64-key/ttl-get+update", func(b *testing.B) {
		opts := DefaultKeyedBackendOptions()
		be := newBackend[int64](b, opts)
		s, err := GetValueState(be, ValueStateDescriptor[int64]{Name: "v", TTL: TTLConfig{TTL: time.Hour, UpdateType: OnReadAndWrite}})
		must(b, err)
		for k := range int64(nkeys) {
			must(b, be.SetCurrentKey(k))
			must(b, s.Update(k))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			_ = be.SetCurrentKey(int64(i % nkeys))
			v, _, _ := s.Value()
			_ = s.Update(v + 1)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

// BenchmarkSnapshot measures a checkpoint of ~100 MB of value state (1M keys
// with 100-byte values): the synchronous pause of Snapshot (pause-µs,
// averaged over 100 calls), the asynchronous Write to io.Discard
// (write-MB/s), the copy-on-write cost paid by the first write to each key
// group afterwards (total, median and worst single write), and a restore of
// the stream with decoding (restore-MB/s). FLINKGO_BENCH_1GB=1 adds a ~1 GB run (10M keys,
// about 3 GB of heap) without the restore.
func BenchmarkSnapshot(b *testing.B) {
	b.Run("100MB", func(b *testing.B) { benchSnapshot(b, 1_000_000, true) })
	if os.Getenv("FLINKGO_BENCH_1GB") == "1" {
		b.Run("1GB", func(b *testing.B) { benchSnapshot(b, 10_000_000, false) })
	}
}

func benchSnapshot(b *testing.B, nkeys int, restore bool) {
	be := newBackend[int64](b, DefaultKeyedBackendOptions())
	s, err := GetValueState(be, ValueStateDescriptor[[]byte]{Name: "v"})
	must(b, err)
	for k := range int64(nkeys) {
		must(b, be.SetCurrentKey(k))
		v := make([]byte, 100)
		v[0] = byte(k)
		must(b, s.Update(v))
	}
	runtime.GC()
	groupKeys := make([]int64, DefaultMaxParallelism)
	for kg := range groupKeys {
		groupKeys[kg] = keyInGroup(be, kg)
	}
	const pauseRuns = 100
	var pause, write, cow time.Duration
	var cows []time.Duration
	var size int64
	var last []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// The pause is tiny; average it over many snapshots. Each one
		// freezes the state again, which is what a checkpoint does.
		var sn *KeyedSnapshot
		t0 := time.Now()
		for range pauseRuns {
			var err error
			sn, err = be.Snapshot()
			must(b, err)
		}
		pause += time.Since(t0) / pauseRuns

		// The copy-on-write cost: the first write to each key group after
		// the snapshot copies that key group's map. Measured on its own
		// (the Write below runs after it) to keep the figures apart.
		for kg := range DefaultMaxParallelism {
			t2 := time.Now()
			must(b, be.SetCurrentKey(groupKeys[kg]))
			must(b, s.Update(make([]byte, 100)))
			d := time.Since(t2)
			cow += d
			cows = append(cows, d)
		}

		var buf bytes.Buffer
		var w io.Writer = io.Discard
		if restore && i == 0 {
			buf.Grow(nkeys * 120)
			w = &buf
		}
		t1 := time.Now()
		h, err := sn.Write(context.Background(), w)
		write += time.Since(t1)
		must(b, err)
		size = h.Size
		if buf.Len() > 0 {
			last = buf.Bytes()
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(pause.Microseconds())/n, "pause-µs")
	b.ReportMetric(float64(size)/1e6, "stream-MB")
	b.ReportMetric(float64(size)/1e6/(write.Seconds()/n), "write-MB/s")
	b.ReportMetric(float64(cow.Milliseconds())/n, "cow-all-kgs-ms")
	slices.Sort(cows)
	b.ReportMetric(float64(cows[len(cows)/2].Microseconds()), "cow-p50-µs")
	b.ReportMetric(float64(cows[len(cows)-1].Microseconds()), "cow-max-µs")
	if restore && last != nil {
		b.StopTimer()
		in := KeyedStateInput{Reader: bytes.NewReader(last)}
		// Rebuild the handle by writing a snapshot again (offsets only).
		sn, err := be.Snapshot()
		must(b, err)
		in.Handle, err = sn.Write(context.Background(), io.Discard)
		must(b, err)
		if in.Handle.Size != int64(len(last)) {
			b.Fatalf("stream sizes differ: %d vs %d", in.Handle.Size, len(last))
		}
		t0 := time.Now()
		b2 := newBackend[int64](b, DefaultKeyedBackendOptions())
		must(b, b2.Restore(in))
		_, err = GetValueState(b2, ValueStateDescriptor[[]byte]{Name: "v"})
		must(b, err)
		b.ReportMetric(float64(len(last))/1e6/time.Since(t0).Seconds(), "restore-MB/s")
	}
}

// keyInGroup returns a key of key group kg.
func keyInGroup(b *HeapKeyedBackend[int64], kg int) int64 {
	for k := int64(0); ; k++ {
		if b.KeyGroupOf(k) == kg {
			return k
		}
	}
}
