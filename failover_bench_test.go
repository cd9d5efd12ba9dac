package flink

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"
)

// allRunning reports whether every subtask of the job runs, in an attempt
// after minAttempt, and returns a TaskManager running one of them.
func allRunning(d *Dispatcher, id JobID, minAttempt int) (ResourceID, bool) {
	jd, err := d.JobDetails(context.Background(), id)
	if err != nil || jd.Status != JobRunning {
		return "", false
	}
	var tm ResourceID
	for _, v := range jd.Vertices {
		for _, st := range v.Subtasks {
			if st.State != Running || st.Attempt < minAttempt {
				return "", false
			}
			tm = st.TaskManager
		}
	}
	return tm, tm != ""
}

func waitUntil(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkClusterFailover measures, over b.N rounds with separate OS
// processes: the time for a 4-node cluster (1 JobManager, 3 TaskManagers)
// to form and run a job, and the time from kill -9 of a TaskManager running
// part of the job until every subtask runs again elsewhere. It reports
// medians (target for the failover: <= 3 s with default settings).
//
//	go test -run '^$' -bench ClusterFailover -benchtime 5x .
func BenchmarkClusterFailover(b *testing.B) {
	var form, failover []time.Duration
	for range b.N {
		f, fo := failoverRound(b)
		form, failover = append(form, f), append(failover, fo)
	}
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(median(form), "form-and-run-ms")
	b.ReportMetric(median(failover), "kill-to-running-ms")
	b.ReportMetric(float64(slices.Max(failover))/float64(time.Millisecond), "max-kill-to-running-ms")
}

func failoverRound(b *testing.B) (form, failover time.Duration) {
	start := time.Now()
	cfg := DefaultNodeConfig(RoleJobManager)
	cfg.BindAddr, cfg.Registry = "127.0.0.1:0", testRegistry()
	if os.Getenv("FLINKGO_BENCH_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	jm, err := NewNode(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := jm.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer jm.Close()
	children := startChildren(b, jm.Addr(), 3)
	d := jm.Dispatcher()
	id, err := d.SubmitJob(context.Background(), JobSubmission{Name: "endless", Parallelism: 2})
	if err != nil {
		b.Fatal(err)
	}
	var victim ResourceID
	waitUntil(b, "the job to run", func() bool { var ok bool; victim, ok = allRunning(d, id, 0); return ok })
	form = time.Since(start)

	killed := time.Now()
	children[victim].Process.Kill()
	waitUntil(b, "the job to run again", func() bool { _, ok := allRunning(d, id, 1); return ok })
	failover = time.Since(killed)
	d.CancelJob(context.Background(), id)
	d.JobResult(context.Background(), id)
	return form, failover
}
