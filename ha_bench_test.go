package flink

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/flinkgo/flink/rest"
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
	return haFailoverRoundsSecured(b, false, disrupt, repair)
}

// haFailoverRoundsSecured is haFailoverRounds with every node's security
// on when secure is set.
func haFailoverRoundsSecured(b *testing.B, secure bool, disrupt, repair func(c *haCluster, i int)) (toLeader, toRunning []time.Duration) {
	c := startHAClusterSecured(b, 3, 2, secure)
	id := c.submit(c.leader(), rest.SubmitRequest{Name: "endless", Parallelism: 2})
	b.ResetTimer()
	for range b.N {
		leader := c.leader()
		waitUntil(b, "the job runs", func() bool {
			jd, ok := c.restJob(leader, id)
			return ok && jd.AllRunning()
		})
		start := time.Now()
		disrupt(c, leader)
		next := c.leader(leader)
		toLeader = append(toLeader, time.Since(start))
		waitUntil(b, "the job runs under the new leader", func() bool {
			jd, ok := c.restJob(next, id)
			return ok && jd.AllRunning()
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
//	go test -run '^$' -bench 'HALeaderKill$' -benchtime 5x .
func BenchmarkHALeaderKill(b *testing.B) {
	benchHALeaderKill(b, false)
}

// BenchmarkHALeaderKillSecured is BenchmarkHALeaderKill with security on:
// mutual TLS on every connection (the TaskManagers and Raft peers
// handshake anew with the new leader), encrypted gossip, REST over TLS.
//
//	go test -run '^$' -bench HALeaderKillSecured -benchtime 5x .
func BenchmarkHALeaderKillSecured(b *testing.B) {
	benchHALeaderKill(b, true)
}

func benchHALeaderKill(b *testing.B, secure bool) {
	toLeader, toRunning := haFailoverRoundsSecured(b, secure,
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

// BenchmarkHAElectionsUnderLoad counts Raft elections on an HA cluster of
// processes (3 JobManager nodes, 2 TaskManager nodes, the unbounded job at
// parallelism 2 running) while stress-ng saturates the CPU, with no node
// disrupted: every election is a spurious one that restarts the job. It
// runs for FLINKGO_HA_LOAD_DURATION (default 10m) and reports, per 10
// minutes, the Raft terms the group went through (every election bumps the
// term; with pre-vote an election no quorum would grant does not) and the
// leader changes it saw (a node leading a newer term). It installs
// stress-ng with apt-get if it is missing, and skips if it cannot.
//
//	go test -run '^$' -bench HAElectionsUnderLoad -benchtime 1x -timeout 30m .
func BenchmarkHAElectionsUnderLoad(b *testing.B) {
	dur := 10 * time.Minute
	if s := os.Getenv("FLINKGO_HA_LOAD_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			b.Fatalf("FLINKGO_HA_LOAD_DURATION=%q: expected a positive duration such as 10m", s)
		}
		dur = d
	}
	stressPath := ensureStressNG(b)
	for range b.N {
		c := startHACluster(b, 3, 2)
		id := c.submit(c.leader(), rest.SubmitRequest{Name: "endless", Parallelism: 2})
		waitUntil(b, "the job runs", func() bool {
			jd, ok := c.restJob(c.leader(), id)
			return ok && jd.AllRunning()
		})
		firstTerm, _ := c.maxTerm()

		stress := exec.Command(stressPath, "--cpu", "4", "--timeout", fmt.Sprint(int((dur+time.Minute)/time.Second)), "--quiet")
		stress.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := stress.Start(); err != nil {
			b.Fatalf("starting stress-ng: %v", err)
		}
		stopStress := func() {
			_ = syscall.Kill(-stress.Process.Pid, syscall.SIGKILL) // the workers too
			_ = stress.Wait()
		}
		b.Cleanup(stopStress)

		start := time.Now()
		leaderTerms := map[uint64]string{}
		lastTerm := firstTerm
		for time.Since(start) < dur {
			for i := range c.ids {
				info, err := c.ask(i)
				if err != nil {
					continue
				}
				lastTerm = max(lastTerm, info.RaftTerm)
				if info.Leads && info.Term > firstTerm && leaderTerms[info.Term] == "" {
					leaderTerms[info.Term] = info.NodeID
					b.Logf("%v: %s leads term %d", time.Since(start).Round(time.Second), info.NodeID, info.Term)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		stopStress()
		if t, ok := c.maxTerm(); ok {
			lastTerm = max(lastTerm, t)
		}
		per10 := float64(10*time.Minute) / float64(time.Since(start))
		b.Logf("%v under stress-ng --cpu 4: terms %d -> %d, %d leader changes", time.Since(start).Round(time.Second), firstTerm, lastTerm, len(leaderTerms))
		b.ReportMetric(float64(lastTerm-firstTerm)*per10, "elections/10min")
		b.ReportMetric(float64(len(leaderTerms))*per10, "leader-changes/10min")
	}
}

// maxTerm returns the highest Raft term the JobManager nodes that answer
// report; false if none answers.
func (c *haCluster) maxTerm() (uint64, bool) {
	var term uint64
	ok := false
	for i := range c.ids {
		if info, err := c.ask(i); err == nil {
			term, ok = max(term, info.RaftTerm), true
		}
	}
	return term, ok
}

// ensureStressNG returns the path of stress-ng, installing Debian's package
// with apt-get if it is missing; it skips b if it cannot.
func ensureStressNG(b *testing.B) string {
	b.Helper()
	if p, err := exec.LookPath("stress-ng"); err == nil {
		return p
	}
	b.Log("stress-ng is missing: apt-get install -y stress-ng")
	out, err := exec.Command("apt-get", "install", "-y", "stress-ng").CombinedOutput()
	if err != nil {
		b.Skipf("stress-ng is missing and apt-get install -y stress-ng failed: %v\n%s", err, out)
	}
	p, err := exec.LookPath("stress-ng")
	if err != nil {
		b.Skipf("apt-get installed stress-ng, but it is not on PATH: %v", err)
	}
	return p
}
