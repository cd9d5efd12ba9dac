// Command chaos runs an HA cluster of the ha-cluster binary on loopback
// (three JobManager nodes in a Raft group, three TaskManager nodes), runs an
// exactly-once job on it for a while, and meanwhile disrupts a random node
// every 10-30 s: kill -9 and a restart, or a pause with SIGSTOP for a few
// seconds and SIGCONT (a node cut off and back). It never disrupts a node
// before the cluster recovered from the previous disruption, so a killed
// JobManager node is always back in the Raft group before another is
// touched and the group keeps its quorum. At the end it lets the job
// finish and checks the committed output exactly.
//
//	go run ./examples/ha-cluster/chaos -duration 10m
//
// It prints every disruption with its recovery time (from the disruption
// until the leader reports the job RUNNING with every subtask running),
// the median and maximum, the elections the JobManager nodes logged and
// the leader changes it saw, and whether the output is exact. It exits 1
// if the output is not exact, the job did not recover or finish, or a
// recovery took longer than -max-recovery.
//
// The job ("chaos" in ../main.go) counts the records 0, 1, 2, ... per key
// i % keys into an exactly-once file sink; its source emits at a steady
// rate until the harness writes the end into a stop file, so the expected
// output is known: for every key its running counts, each once.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/rest"
)

// config configures a chaos run.
type config struct {
	Duration    time.Duration // how long disruptions go on
	Seed        uint64        // picks the nodes, disruptions and intervals
	MaxRecovery time.Duration // a longer recovery fails the run (the command only)
	MinInterval time.Duration // between the starts of two disruptions
	MaxInterval time.Duration
	MinPause    time.Duration // how long a paused node stays paused
	MaxPause    time.Duration
	MaxDown     time.Duration // how long a killed node stays down before its restart, at most
	Stall       time.Duration // no recovery within this much is a stall: the run stops disrupting
	EndTimeout  time.Duration // to finish the job once the stop file is written
	Rate        int64         // records per second per source subtask
	Keys        int64
	Parallelism int
	JobManagers int
	TMs         int
	Slots       int
	Bin         string // the ha-cluster binary; empty builds it
	Dir         string // working directory; empty: a new temporary one
	Out         io.Writer
}

// defaultConfig is the run the issue asks for, minus the duration.
func defaultConfig() config {
	return config{
		Duration: 10 * time.Minute, Seed: uint64(time.Now().UnixNano()), MaxRecovery: 5 * time.Second,
		MinInterval: 10 * time.Second, MaxInterval: 30 * time.Second,
		MinPause: 2 * time.Second, MaxPause: 6 * time.Second, MaxDown: 3 * time.Second,
		Stall: 3 * time.Minute, EndTimeout: 5 * time.Minute,
		Rate: 500, Keys: 100, Parallelism: 3, JobManagers: 3, TMs: 3, Slots: 2,
		Out: os.Stdout,
	}
}

func main() {
	cfg := defaultConfig()
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to disrupt the cluster")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed of the disruption schedule (default: the time)")
	flag.DurationVar(&cfg.MaxRecovery, "max-recovery", cfg.MaxRecovery, "fail the run if a recovery takes longer")
	flag.DurationVar(&cfg.MinInterval, "min-interval", cfg.MinInterval, "shortest time between two disruptions")
	flag.DurationVar(&cfg.MaxInterval, "max-interval", cfg.MaxInterval, "longest time between two disruptions")
	flag.DurationVar(&cfg.MinPause, "min-pause", cfg.MinPause, "shortest SIGSTOP pause")
	flag.DurationVar(&cfg.MaxPause, "max-pause", cfg.MaxPause, "longest SIGSTOP pause")
	flag.DurationVar(&cfg.MaxDown, "max-down", cfg.MaxDown, "longest time a killed node stays down before its restart (random from 0)")
	flag.DurationVar(&cfg.Stall, "stall", cfg.Stall, "stop disrupting when the cluster has not recovered within this")
	flag.Int64Var(&cfg.Rate, "rate", cfg.Rate, "records per second per source subtask")
	flag.Int64Var(&cfg.Keys, "keys", cfg.Keys, "number of keys")
	flag.IntVar(&cfg.Parallelism, "parallelism", cfg.Parallelism, "job parallelism")
	flag.IntVar(&cfg.Slots, "slots", cfg.Slots, "slots per TaskManager")
	flag.StringVar(&cfg.Bin, "bin", "", "the ha-cluster binary (default: go build ./examples/ha-cluster)")
	flag.StringVar(&cfg.Dir, "dir", "", "working directory: logs, Raft state, checkpoints, output (default: a new temporary directory, removed if the run passes)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if fails := rep.failures(cfg.MaxRecovery); len(fails) > 0 {
		fmt.Fprintln(cfg.Out, "FAIL:", strings.Join(fails, "; "))
		os.Exit(1)
	}
	fmt.Fprintln(cfg.Out, "PASS")
}

// disruption is one disruption and how the cluster recovered from it.
type disruption struct {
	n         int
	at        time.Time
	what      string // "kill -9 tm-1 (down 1.2s)", "pause jm-0 3.1s"
	node      *node
	leader    bool // the node led the Raft group
	disturbed bool // the job was seen not running after it
	recovered bool
	recovery  time.Duration
	window    []segment // the job's states until the next disruption
}

// report is what a run found.
type report struct {
	cfg           config
	dir           string
	job           flink.JobID
	start         time.Time
	disruptions   []*disruption
	kills, pauses int
	stalled       string // not empty: the cluster did not recover, and why
	crashes       []string
	finalState    flink.JobStatus
	rootCause     string
	exact         exactness
	elections     []election
	leaderChanges int
	leaders       []string
	dualLeaders   int
}

// run runs the cluster and the disruptions, and reports; an error means
// the run could not be done (not that the cluster misbehaved).
func run(ctx context.Context, cfg config) (rep *report, err error) {
	out := cfg.Out
	logf := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "flink-chaos-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rep = &report{cfg: cfg, dir: dir}
	defer func() {
		if err == nil && cfg.Dir == "" && len(rep.failures(cfg.MaxRecovery)) == 0 {
			os.RemoveAll(dir)
		} else {
			logf("kept the working directory (logs in %s)", filepath.Join(dir, "logs"))
		}
	}()
	bin := cfg.Bin
	if bin == "" {
		bin = filepath.Join(dir, "ha-cluster")
		logf("building the ha-cluster binary")
		b := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/flinkgo/flink/examples/ha-cluster")
		b.Stdout, b.Stderr = out, out
		if err := b.Run(); err != nil {
			return nil, fmt.Errorf("building the ha-cluster binary: %w", err)
		}
	}
	rnd := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rnd.Int64N(int64(hi-lo)))
	}

	c, err := newCluster(bin, dir, cfg.JobManagers, cfg.TMs, cfg.Slots)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if err := c.start(); err != nil {
		return nil, err
	}
	logf("seed %d; %d JobManager and %d TaskManager nodes (%d slots each) in %s", cfg.Seed, len(c.jms), len(c.tms), cfg.Slots, dir)
	if ok, why := waitFor(ctx, 2*time.Minute, c.allUp); !ok {
		return nil, fmt.Errorf("the cluster did not form within 2 minutes: %s", why)
	}
	outDir, stopFile := filepath.Join(dir, "out"), filepath.Join(dir, "stop")
	submitted := time.Now()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	rep.job, err = c.submit(sctx, rest.SubmitRequest{Name: "chaos", Parallelism: cfg.Parallelism,
		Args: []string{fmt.Sprint(cfg.Rate), fmt.Sprint(cfg.Keys), outDir, stopFile}})
	cancel()
	if err != nil {
		return nil, err
	}
	obs := newObserver(c, rep.job, 50*time.Millisecond)
	defer obs.close()
	if ok, why := waitFor(ctx, 2*time.Minute, obs.healthyNow); !ok {
		return nil, fmt.Errorf("job %s did not run within 2 minutes: %s", rep.job, why)
	}
	rep.start = time.Now()
	logf("job %s runs: %d records/s per source subtask, parallelism %d, %d keys; disrupting for %v", rep.job, cfg.Rate, cfg.Parallelism, cfg.Keys, cfg.Duration)
	since := func(t time.Time) string { return fmt.Sprintf("[%7.1fs %s]", t.Sub(rep.start).Seconds(), clock(t)) }

	// close ends the previous disruption's window at t and reports it.
	var prev *disruption
	closeWindow := func(t time.Time) {
		if prev == nil {
			return
		}
		d := prev
		d.window = obs.window(d.at, t)
		last := -1
		for i, s := range d.window {
			if !s.healthy {
				last = i
			}
		}
		switch {
		case last < 0:
			d.recovered = true
		case last+1 < len(d.window):
			d.disturbed, d.recovered, d.recovery = true, true, d.window[last+1].start.Sub(d.at)
		default:
			d.disturbed = true
		}
		msg := "the job was not disturbed"
		if d.disturbed {
			first := 0
			for i, s := range d.window {
				if !s.healthy {
					first = i
					break
				}
			}
			msg = "the job did not run again"
			if d.recovered {
				msg = fmt.Sprintf("the job ran again after %.2fs", d.recovery.Seconds())
			}
			msg += fmt.Sprintf(" (first seen not running at +%.2fs", d.window[first].start.Sub(d.at).Seconds())
			for i := first + 1; i < len(d.window); i++ {
				if d.window[i].healthy {
					if i <= last {
						msg += fmt.Sprintf(", running again at +%.2fs, then not running again", d.window[i].start.Sub(d.at).Seconds())
					}
					break
				}
			}
			msg += ")"
		}
		logf("%s #%d: %s", since(t), d.n, msg)
		if !d.recovered || d.recovery > cfg.MaxRecovery {
			for _, s := range d.window {
				logf("      +%6.2fs %-7v %s", s.start.Sub(d.at).Seconds(), healthWord(s.healthy), s.desc)
			}
			to := t
			if d.recovered {
				to = d.at.Add(d.recovery)
			}
			for _, l := range logLines(c, d.at.Add(-time.Second), to, 60) {
				logf("      %s", l)
			}
		}
		prev = nil
	}
	// settle waits until every node is up and the job runs.
	settle := func() bool {
		ok, why := waitFor(ctx, cfg.Stall, func() (bool, string) {
			cr, err := c.restartCrashed()
			for _, s := range cr {
				logf("%s %s; restarted", since(time.Now()), s)
			}
			rep.crashes = append(rep.crashes, cr...)
			if err != nil {
				return false, err.Error()
			}
			if ok, why := c.allUp(); !ok {
				return false, why
			}
			return obs.healthyNow()
		})
		if !ok {
			rep.stalled = why
			logf("%s STALL: not recovered within %v: %s", since(time.Now()), cfg.Stall, why)
		}
		return ok
	}

	end := rep.start.Add(cfg.Duration)
	next := rep.start.Add(between(cfg.MinInterval, cfg.MaxInterval))
	for ctx.Err() == nil && rep.stalled == "" {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil || !time.Now().Before(end) {
			break
		}
		if !settle() {
			break
		}
		closeWindow(time.Now())
		d := &disruption{n: len(rep.disruptions) + 1, at: time.Now()}
		// Any node, but a JobManager node only while every other is up
		// (settle checked it), so that the group keeps its quorum.
		d.node = c.nodes[rnd.IntN(len(c.nodes))]
		if seg, ok := obs.current(); ok && seg.leader >= 0 {
			d.leader = c.jms[seg.leader] == d.node
		}
		role := ""
		if d.leader {
			role = " (the leader)"
		}
		if rnd.IntN(2) == 0 {
			down := between(0, cfg.MaxDown)
			d.what = fmt.Sprintf("kill -9 %s%s, restarted after %.1fs", d.node.name, role, down.Seconds())
			logf("%s #%d %s", since(d.at), d.n, d.what)
			if err := d.node.kill(); err != nil {
				return rep, err
			}
			time.Sleep(down)
			if err := d.node.start(); err != nil {
				return rep, err
			}
			rep.kills++
		} else {
			pause := between(cfg.MinPause, cfg.MaxPause)
			d.what = fmt.Sprintf("pause %s%s for %.1fs", d.node.name, role, pause.Seconds())
			logf("%s #%d %s", since(d.at), d.n, d.what)
			if err := d.node.signal(syscall.SIGSTOP); err != nil {
				return rep, err
			}
			time.Sleep(pause)
			if err := d.node.signal(syscall.SIGCONT); err != nil {
				return rep, err
			}
			rep.pauses++
		}
		rep.disruptions = append(rep.disruptions, d)
		prev = d
		next = d.at.Add(between(cfg.MinInterval, cfg.MaxInterval))
	}
	settled := settle()
	closeWindow(time.Now())
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}

	// The end: every subtask's next index is below p × rate × (seconds
	// since the submission) + p (the source's pacing is strict), so this
	// end has not been passed; the sources emit the rest at full speed.
	p := int64(cfg.Parallelism)
	secs := int64(time.Since(submitted).Seconds()) + 3
	endIndex := p * (cfg.Rate*secs + 1)
	logf("%s writing the end %d into the stop file", since(time.Now()), endIndex)
	if err := writeAtomically(stopFile, fmt.Sprintf("%d\n", endIndex)); err != nil {
		return rep, err
	}
	if settled {
		ok, why := waitFor(ctx, cfg.EndTimeout, func() (bool, string) {
			seg, ok := obs.current()
			return ok && seg.leader >= 0 && seg.state.IsTerminal(), seg.desc
		})
		if !ok {
			logf("the job did not end within %v: %s", cfg.EndTimeout, why)
		}
	}
	if seg, ok := obs.current(); ok {
		rep.finalState = seg.state
		if seg.state != flink.JobFinished {
			rep.rootCause = c.exceptions(rep.job)
		}
	}
	obs.close()
	rep.leaderChanges, rep.leaders = obs.leaderChanges()
	rep.dualLeaders = obs.dualLeaders()
	cr, _ := c.restartCrashed()
	rep.crashes = append(rep.crashes, cr...)
	c.close()
	if rep.exact, err = checkOutput(outDir, endIndex, cfg.Keys); err != nil {
		return rep, err
	}
	if rep.elections, err = elections(c); err != nil {
		return rep, err
	}
	rep.print(out)
	return rep, nil
}

// clock renders t as the nodes' logs do, to find it there.
func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }

func healthWord(ok bool) string {
	if ok {
		return "running"
	}
	return "DOWN"
}

// writeAtomically writes a file that readers see whole or not at all.
func writeAtomically(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	return nil
}

// recoveries returns the recovery times of the disruptions that disturbed
// the job and from which it recovered, sorted.
func (r *report) recoveries() []time.Duration {
	var ds []time.Duration
	for _, d := range r.disruptions {
		if d.disturbed && d.recovered {
			ds = append(ds, d.recovery)
		}
	}
	slices.Sort(ds)
	return ds
}

// failures lists why the run fails: output not exact, no recovery, the
// job not finished, a recovery longer than maxRecovery.
func (r *report) failures(maxRecovery time.Duration) []string {
	var f []string
	if r.stalled != "" {
		f = append(f, "the cluster did not recover: "+r.stalled)
	}
	if r.finalState != flink.JobFinished {
		f = append(f, fmt.Sprintf("the job ended %s, want FINISHED", r.finalState))
	}
	if !r.exact.exact() {
		f = append(f, "the output is not exact")
	}
	if rs := r.recoveries(); len(rs) > 0 && rs[len(rs)-1] > maxRecovery {
		n := 0
		for _, d := range rs {
			if d > maxRecovery {
				n++
			}
		}
		f = append(f, fmt.Sprintf("%d recoveries took longer than %v (max %.2fs)", n, maxRecovery, rs[len(rs)-1].Seconds()))
	}
	return f
}

// print writes the report's summary.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n== chaos run: seed %d, %v of disruptions, job %s\n", r.cfg.Seed, r.cfg.Duration, r.job)
	fmt.Fprintf(w, "disruptions: %d (%d kill -9 and restart, %d SIGSTOP/SIGCONT pauses)\n", len(r.disruptions), r.kills, r.pauses)
	var undisturbed int
	for _, d := range r.disruptions {
		if !d.disturbed {
			undisturbed++
		}
	}
	rs := r.recoveries()
	fmt.Fprintf(w, "recoveries: %d disruptions stopped the job", len(rs))
	if len(rs) > 0 {
		fmt.Fprintf(w, ": median %.2fs, max %.2fs; over %v: %d", median(rs).Seconds(), rs[len(rs)-1].Seconds(), r.cfg.MaxRecovery, countOver(rs, r.cfg.MaxRecovery))
	}
	fmt.Fprintf(w, "; %d did not disturb it\n", undisturbed)
	fmt.Fprintf(w, "per disruption:")
	for _, d := range r.disruptions {
		switch {
		case !d.disturbed:
			fmt.Fprintf(w, " #%d -", d.n)
		case d.recovered:
			fmt.Fprintf(w, " #%d %.2fs", d.n, d.recovery.Seconds())
		default:
			fmt.Fprintf(w, " #%d STALLED", d.n)
		}
	}
	fmt.Fprintln(w)
	// An election is explained by the leader killed or paused in the 15 s
	// before it; the others are flapping (or a node that rejoined forced
	// one).
	var unexplained []string
	for i, e := range r.elections {
		if i == 0 {
			continue
		}
		explained, during := false, ""
		for _, d := range r.disruptions {
			if d.leader && !e.at.Before(d.at) && e.at.Sub(d.at) < 15*time.Second {
				explained = true
			}
			if !e.at.Before(d.at) {
				during = fmt.Sprintf(", %.1fs after #%d %s", e.at.Sub(d.at).Seconds(), d.n, d.what)
			}
		}
		if !explained {
			unexplained = append(unexplained, fmt.Sprintf("term %d (%s at %s%s)", e.term, e.node, clock(e.at), during))
		}
	}
	elected := 0
	if len(r.elections) > 0 {
		elected = len(r.elections) - 1
	}
	fmt.Fprintf(w, "elections after the first (from the JobManager logs): %d, %d without the leader killed or paused in the 15 s before", elected, len(unexplained))
	if len(unexplained) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(unexplained, ", "))
	}
	fmt.Fprintf(w, "\nleader changes seen through REST: %d (%s)", r.leaderChanges, strings.Join(r.leaders, " → "))
	if r.dualLeaders > 0 {
		fmt.Fprintf(w, "; %d observations with two nodes serving as leader", r.dualLeaders)
	}
	fmt.Fprintln(w)
	if len(r.crashes) > 0 {
		fmt.Fprintf(w, "nodes that exited by themselves: %s\n", strings.Join(r.crashes, "; "))
	}
	if r.stalled != "" {
		fmt.Fprintf(w, "STALLED: %s\n", r.stalled)
	}
	fmt.Fprintf(w, "job: %s", r.finalState)
	if r.rootCause != "" {
		fmt.Fprintf(w, " (%s)", r.rootCause)
	}
	fmt.Fprintf(w, "\noutput: %s\n", r.exact)
}

// median returns the median of sorted durations (the mean of the middle
// two for an even number).
func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

func countOver(ds []time.Duration, max time.Duration) int {
	n := 0
	for _, d := range ds {
		if d > max {
			n++
		}
	}
	return n
}
