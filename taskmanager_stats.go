package flink

import (
	"math"
	"runtime/metrics"
	"time"

	"github.com/flinkgo/flink/network"
)

// TaskManagerStats are a TaskManager's memory and network buffer figures.
// A TaskManager samples them for every heartbeat to its ResourceManager,
// so they are at most a heartbeat interval old where the ResourceManager
// shows them (TaskManagerInfo, ClusterMetrics, GET /taskmanagers).
type TaskManagerStats struct {
	// Memory is the Go runtime's memory of the TaskManager's process. Go
	// has one heap per process: TaskManagers sharing a process (a
	// LocalCluster) report the same figures.
	Memory MemoryStats
	// Network is the TaskManager's own network buffer pool.
	Network NetworkBufferStats
	// Goroutines is the number of goroutines of the process, as Flink's
	// Status.JVM.Threads.Count.
	Goroutines int
	// StuckTasks are the cancelled subtasks whose user code has not
	// returned after the cancellation interval (TaskManager.StuckTasks).
	StuckTasks []StuckTask
}

// MemoryStats are a process's memory as the Go runtime accounts for it,
// mapped to the JVM figures Flink reports (Status.JVM.Memory.*). All sizes
// are bytes.
type MemoryStats struct {
	// HeapUsed is the memory of live and not yet swept heap objects
	// (/memory/classes/heap/objects:bytes), as the JVM's heap used.
	HeapUsed int64
	// HeapCommitted is the heap memory the runtime holds from the OS:
	// objects plus free and unused heap not returned to the OS.
	HeapCommitted int64
	// HeapMax is the soft memory limit (GOMEMLIMIT, debug.SetMemoryLimit);
	// -1 without one, as the JVM reports an undefined maximum.
	HeapMax int64
	// NonHeapUsed is the rest of the memory the runtime holds from the OS:
	// goroutine stacks, runtime metadata, profiling buckets and other
	// runtime memory, as the JVM's non-heap memory.
	NonHeapUsed int64
	// GCCount counts completed garbage collection cycles and GCTime is the
	// CPU time spent collecting (/cpu/classes/gc/total:cpu-seconds): Go's
	// collector runs concurrently with the program, so its cost is CPU
	// time rather than pauses.
	GCCount uint64
	GCTime  time.Duration
}

// NetworkBufferStats are a TaskManager's network buffer pool, as Flink's
// Status.Shuffle.Netty.* figures. Used buffers are held by result
// partitions and input gates; available ones by nobody.
type NetworkBufferStats struct {
	// SegmentSize is the size of every buffer in bytes.
	SegmentSize int
	// TotalSegments is the pool's fixed number of buffers,
	// AvailableSegments those free and UsedSegments the others.
	TotalSegments, AvailableSegments, UsedSegments int
}

// TotalMemory is the bytes of all segments.
func (n NetworkBufferStats) TotalMemory() int64 { return int64(n.TotalSegments) * int64(n.SegmentSize) }

// AvailableMemory is the bytes of the available segments.
func (n NetworkBufferStats) AvailableMemory() int64 {
	return int64(n.AvailableSegments) * int64(n.SegmentSize)
}

// UsedMemory is the bytes of the used segments.
func (n NetworkBufferStats) UsedMemory() int64 { return int64(n.UsedSegments) * int64(n.SegmentSize) }

// runtimeSampleNames are the runtime/metrics a sample reads.
var runtimeSampleNames = [...]string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/total:bytes",
	"/gc/gomemlimit:bytes",
	"/gc/cycles/total:gc-cycles",
	"/cpu/classes/gc/total:cpu-seconds",
	"/sched/goroutines:goroutines",
}

// readRuntimeStats samples the process's memory and goroutines with
// runtime/metrics, which does not stop the world (unlike
// runtime.ReadMemStats).
func readRuntimeStats() (MemoryStats, int) {
	var samples [len(runtimeSampleNames)]metrics.Sample
	for i, n := range runtimeSampleNames {
		samples[i].Name = n
	}
	metrics.Read(samples[:])
	u := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0 // not supported by this runtime
		}
		return samples[i].Value.Uint64()
	}
	objects, unused, free, released, total := u(0), u(1), u(2), u(3), u(4)
	m := MemoryStats{
		HeapUsed:      int64(objects),
		HeapCommitted: int64(objects + unused + free),
		HeapMax:       -1,
		GCCount:       u(6),
	}
	if held := total - released; total >= released && held >= objects+unused+free {
		m.NonHeapUsed = int64(held - objects - unused - free)
	}
	if limit := u(5); limit > 0 && limit < math.MaxInt64 {
		m.HeapMax = int64(limit)
	}
	if samples[7].Value.Kind() == metrics.KindFloat64 {
		m.GCTime = time.Duration(samples[7].Value.Float64() * float64(time.Second))
	}
	return m, int(u(8))
}

// networkBufferStats describes a buffer pool.
func networkBufferStats(p *network.NetworkBufferPool) NetworkBufferStats {
	m := p.Metrics()
	return NetworkBufferStats{SegmentSize: p.BufferSize(), TotalSegments: m.Total,
		AvailableSegments: m.Available, UsedSegments: m.Total - m.Available}
}

// stats samples the TaskManager's figures; cheap enough for every
// heartbeat.
func (tm *TaskManager) stats() TaskManagerStats {
	mem, g := readRuntimeStats()
	return TaskManagerStats{Memory: mem, Network: networkBufferStats(tm.net.env.Buffers), Goroutines: g, StuckTasks: tm.StuckTasks()}
}
