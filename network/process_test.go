package network

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flinkgo/flink/security"
)

// Two TaskManagers in separate OS processes: the test process is TaskManager 0 and re-executes its
// own binary (with childEnv set) as TaskManager 1. Each hosts one producer and one consumer
// subtask of a 2x2 keyed shuffle; half of the exchanges are local, half cross loopback TCP.
//
// Child protocol on stdout: "ADDR <data address>", then "DONE <records> <cpu nanoseconds>" or
// "ERR <message>". The child exits when its stdin closes.

// shuffleJob describes one side of the cross-process shuffle.
type shuffleJob struct {
	perProducer int
	record      string // "small" (testRecord, checked) or "bench100" (100-byte records, counted)
	timeout     time.Duration
	// tlsDir, if set, holds a development secret (nodes "tm-0", "tm-1"):
	// the data connections run mutual TLS with it.
	tlsDir string
}

func (j shuffleJob) env() []string {
	return []string{
		childEnv + "=shuffle",
		"FLINKGO_N=" + strconv.Itoa(j.perProducer),
		"FLINKGO_RECORD=" + j.record,
		"FLINKGO_TIMEOUT=" + j.timeout.String(),
		"FLINKGO_TLS=" + j.tlsDir,
	}
}

// config returns TaskManager self's data-plane configuration for j.
func (j shuffleJob) config(self int) (Config, error) {
	c := testConfig(true)
	if j.tlsDir != "" {
		m, err := security.Load(security.FromDir(j.tlsDir, fmt.Sprintf("tm-%d", self)))
		if err != nil {
			return c, err
		}
		c.TLS = m.Internal
	}
	return c, nil
}

// runSubtask runs producer and consumer subtask `self` of the 2x2 shuffle in env; the other
// subtask's TaskManager is at peer. It returns the records the consumer received.
func runSubtask(ctx context.Context, env *Environment, self int, peer string, j shuffleJob) (int, error) {
	const par = 2
	part, err := env.NewResultPartition(pid(self, 0), par)
	if err != nil {
		return 0, err
	}
	specs := make([]InputChannelSpec, par)
	for p := range par {
		specs[p] = InputChannelSpec{Partition: pid(p, 0), Subpartition: self}
		if p != self {
			specs[p].ProducerAddr = peer
		}
	}
	gate, err := env.NewInputGate(specs)
	if err != nil {
		return 0, err
	}
	defer gate.Close()
	cfg := RecordWriterConfig{BufferTimeout: j.timeout}
	perr := make(chan error, 1)
	var got int
	switch j.record {
	case "bench100":
		go func() { perr <- produceBench(ctx, part, self, j.perProducer, par, cfg) }()
		got, err = consumeBench(ctx, gate)
	default:
		go func() { perr <- produce(ctx, part, self, j.perProducer, par, cfg, testCodecs()) }()
		got, err = consume(ctx, gate, self, j.perProducer, par, testCodecs())
	}
	if err != nil {
		part.Release(err)
		<-perr
		return got, err
	}
	if err := <-perr; err != nil {
		return got, err
	}
	// Wait until the peer consumed our partition to its end (it then releases itself).
	for env.Partitions.Len() > 0 {
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("waiting for the peer to consume partition: %w", ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return got, nil
}

// cpuNanos returns the user+system CPU time of this process.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// runChild is TaskManager 1 of the cross-process tests.
func runChild(role string) int {
	if role != "shuffle" {
		fmt.Println("ERR unknown role", role)
		return 2
	}
	n, _ := strconv.Atoi(os.Getenv("FLINKGO_N"))
	timeout, _ := time.ParseDuration(os.Getenv("FLINKGO_TIMEOUT"))
	j := shuffleJob{perProducer: n, record: os.Getenv("FLINKGO_RECORD"), timeout: timeout, tlsDir: os.Getenv("FLINKGO_TLS")}
	cfg, err := j.config(1)
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	env, err := NewEnvironment(cfg)
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	defer env.Close()
	fmt.Println("ADDR", env.Addr())
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		fmt.Println("ERR no peer address")
		return 1
	}
	peer := strings.TrimSpace(in.Text())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cpu0 := cpuNanos()
	got, err := runSubtask(ctx, env, 1, peer, j)
	if err != nil {
		fmt.Println("ERR", strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	fmt.Println("DONE", got, cpuNanos()-cpu0)
	io.Copy(io.Discard, os.Stdin) // exit when the parent is done
	return 0
}

// crossProcessResult is the outcome of one cross-process shuffle.
type crossProcessResult struct {
	records  int // received by both consumers
	elapsed  time.Duration
	cpuNanos int64 // user+sys of both processes during the shuffle
}

// runCrossProcess runs the 2x2 shuffle with the child process as TaskManager 1.
func runCrossProcess(t testing.TB, j shuffleJob) crossProcessResult {
	t.Helper()
	cfg, err := j.config(0)
	if err != nil {
		t.Fatal(err)
	}
	env := newEnv(t, cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), j.env()...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	readLine := func(prefix string) []string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("child ended before %s: %v", prefix, lines.Err())
		}
		f := strings.Fields(lines.Text())
		if len(f) == 0 || f[0] != prefix {
			t.Fatalf("child said %q, want %s", lines.Text(), prefix)
		}
		return f[1:]
	}
	childAddr := readLine("ADDR")[0]
	ctx := testCtx(t, 5*time.Minute)
	start := time.Now()
	cpu0 := cpuNanos()
	fmt.Fprintln(stdin, env.Addr())
	got, err := runSubtask(ctx, env, 0, childAddr, j)
	if err != nil {
		t.Fatalf("TaskManager 0: %v", err)
	}
	done := readLine("DONE")
	elapsed := time.Since(start)
	childGot, _ := strconv.Atoi(done[0])
	childCPU, _ := strconv.ParseInt(done[1], 10, 64)
	return crossProcessResult{records: got + childGot, elapsed: elapsed, cpuNanos: cpuNanos() - cpu0 + childCPU}
}

func TestCrossProcessShuffle(t *testing.T) {
	// 10 M records without the race detector; the race detector slows everything ~10x.
	total := 10_000_000
	if testing.Short() {
		total = 1_000_000
	}
	res := runCrossProcess(t, shuffleJob{perProducer: total / 2, record: "small", timeout: DefaultBufferTimeout})
	if res.records != total {
		t.Fatalf("received %d records, want %d", res.records, total)
	}
	t.Logf("%d records across 2 processes in %v (%.0f records/s, %.0f records per CPU-second)",
		total, res.elapsed, float64(total)/res.elapsed.Seconds(), float64(total)/(float64(res.cpuNanos)/1e9))
}

// TestCrossProcessShuffleTLS is the cross-process shuffle with mutual TLS
// on the data connections: every record arrives, in order, checked.
func TestCrossProcessShuffleTLS(t *testing.T) {
	total := 1_000_000
	res := runCrossProcess(t, shuffleJob{perProducer: total / 2, record: "small", timeout: DefaultBufferTimeout, tlsDir: devSecret(t)})
	if res.records != total {
		t.Fatalf("received %d records, want %d", res.records, total)
	}
}

// devSecret writes a development secret for "tm-0" and "tm-1".
func devSecret(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := security.GenerateDevCerts(dir, security.DevCertsConfig{Nodes: []string{"tm-0", "tm-1"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}
