package flink

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// controlPlaneSlotsPerTM is how many slots each TaskManager of the
// control-plane benchmark offers.
const controlPlaneSlotsPerTM = 16

// controlPlaneJob describes the job of the control-plane benchmark: a
// source and a keyed reduce with a sink, both of parallelism p, joined by
// one all-to-all (hash) edge.
func controlPlaneJob(p int) (*JobGraph, error) {
	env := NewEnv(WithName("control-plane"), WithParallelism(p), WithMaxParallelism(max(128, p)))
	s := Generate(env, 0, benchGen)
	r := Reduce(KeyBy(s, func(v int64) int64 { return v }), func(a, b int64) (int64, error) { return a + b, nil })
	SinkTo(r, "sink", SinkFunc(func(int64) error { return nil }))
	return env.JobGraph()
}

// controlPlaneTMs returns the locations and slot offers of TaskManagers
// with n slots in all, controlPlaneSlotsPerTM each. With network set,
// every TaskManager is its own process (its own shuffle and data
// address); else they share one process's exchange.
func controlPlaneTMs(n int, network bool) ([]TaskManagerLocation, [][]SlotOffer) {
	var locs []TaskManagerLocation
	var offers [][]SlotOffer
	for tm := 0; n > 0; tm++ {
		id := ResourceID(fmt.Sprintf("tm-%d", tm))
		loc := TaskManagerLocation{ID: id, Address: fmt.Sprintf("10.0.%d.%d:6122", tm/250, tm%250), ShuffleID: "one-process"}
		if network {
			loc.DataAddress = fmt.Sprintf("10.0.%d.%d:6121", tm/250, tm%250)
			loc.ShuffleID = string(id)
		}
		k := min(n, controlPlaneSlotsPerTM)
		os := make([]SlotOffer, k)
		for i := range os {
			os[i] = SlotOffer{Allocation: AllocationID(fmt.Sprintf("%s-a%d", id, i)), Slot: SlotID{TaskManager: id, Index: i}}
		}
		locs, offers = append(locs, loc), append(offers, os)
		n -= k
	}
	return locs, offers
}

// controlPlaneResult is what one pass of the control plane produced.
type controlPlaneResult struct {
	jm          *JobManager
	deployments []deployment
	wireBytes   int64 // the descriptors' RPC requests, encoded
}

// runControlPlane builds the JobGraph of the benchmark job at parallelism
// p, its ExecutionGraph (in newJobManager), pools the TaskManagers' slots,
// assigns them and produces every subtask's deployment descriptor. With
// encode set it also encodes each descriptor's RPC request as a remote
// TaskManager would receive it.
func runControlPlane(p int, locs []TaskManagerLocation, offers [][]SlotOffer, encode bool) (controlPlaneResult, error) {
	g, err := controlPlaneJob(p)
	if err != nil {
		return controlPlaneResult{}, err
	}
	jm := newJobManager("cp-job", "jm:6123", g, "rm:6123", nil, jobManagerConfig{now: time.Now}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for i, loc := range locs {
		if _, err := jm.OfferSlots(ctx, loc, offers[i]); err != nil {
			return controlPlaneResult{}, err
		}
	}
	jm.mu.Lock()
	ds := jm.deploymentsLocked()
	failure := jm.mu.failure
	jm.mu.Unlock()
	if failure != nil {
		return controlPlaneResult{}, failure
	}
	r := controlPlaneResult{jm: jm, deployments: ds}
	if encode {
		for _, d := range ds {
			b, err := msgpack.Marshal(submitTaskReq{TM: d.ev.Location, TDD: d.tdd})
			if err != nil {
				return controlPlaneResult{}, err
			}
			r.wireBytes += int64(len(b))
		}
	}
	return r, nil
}

// heapPeak samples the bytes of live and not yet collected heap objects
// every millisecond until stopped, and returns the most it saw.
type heapPeak struct {
	done chan struct{}
	wg   sync.WaitGroup
	max  uint64
}

func heapObjectBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{done: make(chan struct{}), max: heapObjectBytes()}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-tick.C:
				h.max = max(h.max, heapObjectBytes())
			}
		}
	}()
	return h
}

func (h *heapPeak) stop() uint64 {
	close(h.done)
	h.wg.Wait()
	return max(h.max, heapObjectBytes())
}

// BenchmarkControlPlane measures the control plane of a job of two
// vertices of parallelism p joined by one all-to-all keyBy edge, at p =
// 100, 1,000 and 10,000: the JobGraph, the ExecutionGraph, pooling and
// assigning slots (TaskManagers of 16 slots each) and every subtask's
// deployment descriptor. "local": every TaskManager in one process, records
// handed over as Go values; "network": every TaskManager its own process,
// and each descriptor also encoded as the RPC request that deploys it.
// Target at 10,000: < 5 s and < 1 GiB.
//
// Metrics: s/op; MiB-alloc/op, everything allocated; MiB-peak-heap, the
// most heap held at once above what was held before (sampled every
// millisecond); MiB-live, what the JobManager still holds after a GC;
// MiB-wire/op, the encoded descriptors.
//
//	go test -run '^$' -bench ControlPlane -benchtime 1x .
func BenchmarkControlPlane(b *testing.B) {
	for _, mode := range []string{"local", "network"} {
		for _, p := range []int{100, 1_000, 10_000} {
			b.Run(fmt.Sprintf("%s/p=%d", mode, p), func(b *testing.B) {
				network := mode == "network"
				locs, offers := controlPlaneTMs(p, network)
				b.ReportAllocs()
				var elapsed time.Duration
				var allocated, peak, live uint64
				var wire int64
				var ms runtime.MemStats
				for range b.N {
					b.StopTimer()
					runtime.GC()
					runtime.ReadMemStats(&ms)
					before, total := heapObjectBytes(), ms.TotalAlloc
					h := startHeapPeak()
					b.StartTimer()
					start := time.Now()
					r, err := runControlPlane(p, locs, offers, network)
					elapsed += time.Since(start)
					b.StopTimer()
					if err != nil {
						b.Fatal(err)
					}
					peak = max(peak, h.stop()-before)
					runtime.ReadMemStats(&ms)
					allocated += ms.TotalAlloc - total
					runtime.GC()
					live = max(live, heapObjectBytes()-min(before, heapObjectBytes()))
					if len(r.deployments) != 2*p {
						b.Fatalf("%d descriptors, want %d", len(r.deployments), 2*p)
					}
					wire += r.wireBytes
					runtime.KeepAlive(r)
					b.StartTimer()
				}
				const mib = 1 << 20
				n := float64(b.N)
				b.ReportMetric(elapsed.Seconds()/n, "s/op")
				b.ReportMetric(float64(allocated)/n/mib, "MiB-alloc/op")
				b.ReportMetric(float64(peak)/mib, "MiB-peak-heap")
				b.ReportMetric(float64(live)/mib, "MiB-live")
				if network {
					b.ReportMetric(float64(wire)/n/mib, "MiB-wire/op")
				}
			})
		}
	}
}
