package network

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchRecord is a 100-byte record: an 8-byte key and payload.
type benchRecord [100]byte

type benchCodec struct{}

func (benchCodec) Encode(dst []byte, v *benchRecord) ([]byte, error) {
	return append(dst, v[:]...), nil
}

func (benchCodec) Decode(src []byte, v *benchRecord) error {
	if len(src) != len(v) {
		return fmt.Errorf("%w: benchRecord of %d bytes", ErrCorruptRecord, len(src))
	}
	copy(v[:], src)
	return nil
}

// produceBench emits n 100-byte records hashed by key to par subpartitions.
func produceBench(ctx context.Context, part *ResultPartition, p, n, par int, cfg RecordWriterConfig) error {
	w := NewRecordWriter[benchRecord](part, benchCodec{}, cfg)
	var r benchRecord
	for i := range n {
		key := keyOf(int64(p), int64(i))
		binary.BigEndian.PutUint64(r[:], key)
		if err := w.Emit(ctx, int(key%uint64(par)), r); err != nil {
			w.Close()
			return err
		}
	}
	w.Close()
	return part.Finish()
}

// consumeBench counts the records of a gate.
func consumeBench(ctx context.Context, gate *InputGate) (int, error) {
	rd := NewRecordReader[benchRecord](gate, benchCodec{}, 0)
	defer rd.Close()
	n := 0
	var r benchRecord
	for {
		res, err := rd.Next(ctx, &r)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if !res.IsEvent {
			n++
		}
	}
}

// BenchmarkShuffleLocal2x2 is a 2->2 hash shuffle of 100-byte records through local channels in
// one process: serialization, buffers, pools and gates, no sockets.
func BenchmarkShuffleLocal2x2(b *testing.B) {
	b.ReportAllocs()
	env := newEnv(b, testConfig(false))
	ctx := context.Background()
	const par = 2
	perProducer := max(1, b.N/par)
	cpu0 := cpuNanos()
	b.ResetTimer()
	start := time.Now()
	parts := make([]*ResultPartition, par)
	for p := range par {
		parts[p], _ = env.NewResultPartition(pid(p, 0), par)
	}
	errc := make(chan error, 2*par)
	counts := make(chan int, par)
	for p := range par {
		go func() { errc <- produceBench(ctx, parts[p], p, perProducer, par, DefaultRecordWriterConfig()) }()
	}
	for c := range par {
		specs := []InputChannelSpec{{Partition: pid(0, 0), Subpartition: c}, {Partition: pid(1, 0), Subpartition: c}}
		gate, err := env.NewInputGate(specs)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			defer gate.Close()
			n, err := consumeBench(ctx, gate)
			counts <- n
			errc <- err
		}()
	}
	for range 2 * par {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	total := <-counts + <-counts
	elapsed := time.Since(start)
	b.StopTimer()
	if total != perProducer*par {
		b.Fatalf("received %d records, want %d", total, perProducer*par)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(total)/(float64(cpuNanos()-cpu0)/1e9), "records/cpu-s")
}

// BenchmarkShuffleTCP2x2Processes is the same shuffle between two TaskManager processes on
// loopback: half of the records cross TCP. CPU time is user+sys of both processes.
func BenchmarkShuffleTCP2x2Processes(b *testing.B) {
	benchShuffleTCP(b, "")
}

// BenchmarkShuffleTCPTLS compares the cross-process shuffle in plaintext and with mutual TLS on
// the data connections, alternating the two (run it with -count):
//
//	go test -run '^$' -bench ShuffleTCPTLS -benchtime 4000000x -count 5 ./network/
func BenchmarkShuffleTCPTLS(b *testing.B) {
	dir := devSecret(b)
	b.Run("tls=off", func(b *testing.B) { benchShuffleTCP(b, "") })
	b.Run("tls=on", func(b *testing.B) { benchShuffleTCP(b, dir) })
}

func benchShuffleTCP(b *testing.B, tlsDir string) {
	b.ReportAllocs()
	perProducer := max(1, b.N/2)
	res := runCrossProcess(b, shuffleJob{perProducer: perProducer, record: "bench100", timeout: DefaultBufferTimeout, tlsDir: tlsDir})
	if res.records != 2*perProducer {
		b.Fatalf("received %d records, want %d", res.records, 2*perProducer)
	}
	b.ReportMetric(float64(res.records)/res.elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(res.records)/(float64(res.cpuNanos)/1e9), "records/cpu-s")
}

// maxRates caches the measured maximum rate per buffer timeout for BenchmarkLatency.
var maxRates sync.Map

// BenchmarkLatency measures record latency from Emit to RecordReader.Next over loopback TCP (two
// environments in one process, one channel) at about half of the maximum rate, for buffer
// timeouts 0, 1 ms and 100 ms.
func BenchmarkLatency(b *testing.B) {
	for _, timeout := range []time.Duration{0, time.Millisecond, 100 * time.Millisecond} {
		b.Run("timeout="+timeout.String(), func(b *testing.B) {
			b.ReportAllocs()
			rate, ok := maxRates.Load(timeout)
			if !ok {
				n, elapsed := latencyRun(b, timeout, 0, 300*time.Millisecond, nil)
				rate = float64(n) / elapsed.Seconds()
				maxRates.Store(timeout, rate)
			}
			target := rate.(float64) / 2
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			latencyRun(b, timeout, target, time.Duration(float64(b.N)/target*float64(time.Second)), &lat)
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) == 0 {
				return
			}
			pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(rate.(float64), "max-records/s")
			b.ReportMetric(target, "records/s")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}

// latencyRun streams timestamped records from one environment to another for d. With rate 0 it
// emits as fast as it can; otherwise it paces emission to rate records/s. It returns the number
// of records received and the elapsed time, and appends latencies to lat if non-nil.
func latencyRun(b *testing.B, timeout time.Duration, rate float64, d time.Duration, lat *[]time.Duration) (int, time.Duration) {
	b.Helper()
	src := newEnv(b, testConfig(true))
	dst := newEnv(b, testConfig(true))
	ctx := context.Background()
	part, err := src.NewResultPartition(pid(0, 0), 1)
	if err != nil {
		b.Fatal(err)
	}
	gate, err := dst.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: src.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	defer gate.Close()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		w := NewRecordWriter[int64](part, Int64Codec{}, RecordWriterConfig{BufferTimeout: timeout})
		for i := 0; ; i++ {
			now := time.Now()
			if now.Sub(start) >= d {
				break
			}
			if rate > 0 {
				due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
				if wait := due.Sub(now); wait > 200*time.Microsecond {
					time.Sleep(wait)
				}
			}
			if err := w.Emit(ctx, 0, time.Now().UnixNano()); err != nil {
				errc <- err
				return
			}
		}
		w.Close()
		errc <- part.Finish()
	}()
	rd := NewRecordReader[int64](gate, Int64Codec{}, 0)
	defer rd.Close()
	n := 0
	for {
		var ts int64
		res, err := rd.Next(ctx, &ts)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if res.IsEvent {
			continue
		}
		if lat != nil {
			*lat = append(*lat, time.Duration(time.Now().UnixNano()-ts))
		}
		n++
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return n, time.Since(start)
}
