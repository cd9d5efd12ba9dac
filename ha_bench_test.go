package flink

import (
	"slices"
	"syscall"
	"testing"
	"time"
)

// medianMillis returns the median of ds in milliseconds.
func medianMillis(ds []time.Duration) float64 {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / float64(time.Millisecond)
}

// haFailoverRounds runs an unbounded job on an HA cluster of processes (3
// JobManager nodes, 2 TaskManager nodes) and, b.N times, disrupts the
// leader with disrupt, measures until a new leader leads and until the job
// runs again under it, and repairs the old leader with repair.
func haFailoverRounds(b *testing.B, disrupt, repair func(c *haCluster, i int)) (toLeader, toRunning []time.Duration) {
	c := startHACluster(b, 3, 2)
	id := c.submit(c.leader(), RESTSubmitRequest{Name: "endless", Parallelism: 2})
	b.ResetTimer()
	for range b.N {
		leader := c.leader()
		waitUntil(b, "the job runs", func() bool {
			jd, ok := c.restJob(leader, id)
			return ok && restAllRunning(jd)
		})
		start := time.Now()
		disrupt(c, leader)
		next := c.leader(leader)
		toLeader = append(toLeader, time.Since(start))
		waitUntil(b, "the job runs under the new leader", func() bool {
			jd, ok := c.restJob(next, id)
			return ok && restAllRunning(jd)
		})
		toRunning = append(toRunning, time.Since(start))
		repair(c, leader)
	}
	b.StopTimer()
	return toLeader, toRunning
}

// BenchmarkHALeaderKill measures, with separate OS processes, the time
// from kill -9 of the leading JobManager node until a standby leads, and
// until every subtask of the running job runs again under it (target:
// <= 5 s with default settings). The killed node is restarted between
// rounds. It reports medians.
//
//	go test -run '^$' -bench HALeaderKill -benchtime 5x .
func BenchmarkHALeaderKill(b *testing.B) {
	toLeader, toRunning := haFailoverRounds(b,
		func(c *haCluster, i int) {
			if err := c.proc(i).Process.Kill(); err != nil {
				b.Fatal(err)
			}
		},
		func(c *haCluster, i int) { c.restart(i) })
	b.ReportMetric(medianMillis(toLeader), "kill-to-leader-ms")
	b.ReportMetric(medianMillis(toRunning), "kill-to-running-ms")
	b.ReportMetric(float64(slices.Max(toRunning))/float64(time.Millisecond), "max-kill-to-running-ms")
}

// BenchmarkHALeaderPartition measures the time from cutting the leading
// JobManager node off (its process is frozen with SIGSTOP, so it neither
// sends nor answers, as behind a partition) until another node leads, and
// until the job runs again under it. The old leader is woken between
// rounds and steps down. It reports medians.
//
//	go test -run '^$' -bench HALeaderPartition -benchtime 5x .
func BenchmarkHALeaderPartition(b *testing.B) {
	toLeader, toRunning := haFailoverRounds(b,
		func(c *haCluster, i int) {
			if err := c.proc(i).Process.Signal(syscall.SIGSTOP); err != nil {
				b.Fatal(err)
			}
		},
		func(c *haCluster, i int) {
			if err := c.proc(i).Process.Signal(syscall.SIGCONT); err != nil {
				b.Fatal(err)
			}
			waitUntil(b, "the old leader follows", func() bool {
				info, err := c.ask(i)
				return err == nil && !info.Leads && info.LeaderID != ""
			})
		})
	b.ReportMetric(medianMillis(toLeader), "cut-to-leader-ms")
	b.ReportMetric(medianMillis(toRunning), "cut-to-running-ms")
}
