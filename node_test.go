package flink

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/security"
)

// childNodeEnv makes the test binary run a cluster node instead of tests:
// its value is the node's configuration in JSON.
const childNodeEnv = "FLINKGO_TEST_NODE"

type childConfig struct {
	ID             string
	JobManagerAddr string
	Slots          int
	CheckpointDir  string
	// Roles defaults to taskmanager. The rest configure HA nodes.
	Roles     string
	HA        bool
	BindAddr  string
	RESTAddr  string
	RaftAddr  string
	RaftDir   string
	RaftPeers []string
	// SecurityDir, if set, turns security on with the files
	// security.GenerateDevCerts wrote there for the node's ID.
	SecurityDir string
}

// testRegistry holds the jobs the multi-process tests run; every process
// builds it the same way, as every replica of a binary does.
func testRegistry() *Registry {
	reg := NewRegistry()
	// keyed-totals N DIR: N records keyed by i%1000 through a keyed
	// exchange into a sink that checks per-channel order and writes each
	// key's count to DIR/part-<subtask>.
	reg.MustRegister("keyed-totals", func(env *Env, args []string) error {
		if len(args) != 2 {
			return fmt.Errorf("usage: keyed-totals N DIR")
		}
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return err
		}
		src := Generate(env, n, func(i int64) (int64, error) { return i, nil })
		keyed := KeyBy(src, func(i int64) int64 { return i % 1000 }).Stream()
		par := env.Config().Parallelism
		SinkTo(keyed, "totals", func() Sink[int64] { return &totalsSink{n: n, par: int64(par), dir: args[1]} })
		return nil
	})
	// paced-totals N DIR: keyed-totals at about 1 M records/s per source
	// subtask, restarting on failure: long enough to kill a TaskManager
	// mid-job.
	reg.MustRegister("paced-totals", func(env *Env, args []string) error {
		if len(args) != 2 {
			return fmt.Errorf("usage: paced-totals N DIR")
		}
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return err
		}
		env.Configure(WithRestartStrategy(FixedDelayRestart(10, 100*time.Millisecond)))
		src := Generate(env, n, func(i int64) (int64, error) {
			if i%10_000 == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			return i, nil
		})
		keyed := KeyBy(src, func(i int64) int64 { return i % 1000 }).Stream()
		par := env.Config().Parallelism
		SinkTo(keyed, "totals", func() Sink[int64] { return &totalsSink{n: n, par: int64(par), dir: args[1]} })
		return nil
	})
	// exactly-once N KEYS DIR: the running-count job of the checkpoint
	// tests: N records, keyed running counts, exactly-once file sink in DIR,
	// a checkpoint every 50 ms, restarting on failure.
	reg.MustRegister("exactly-once", func(env *Env, args []string) error {
		if len(args) != 3 {
			return fmt.Errorf("usage: exactly-once N KEYS DIR")
		}
		n, err1 := strconv.ParseInt(args[0], 10, 64)
		keys, err2 := strconv.ParseInt(args[1], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		env.Configure(WithCheckpointing(50*time.Millisecond), WithRestartStrategy(FixedDelayRestart(20, 50*time.Millisecond)))
		runningCountJob(env, n, keys, args[2], nil, 10*time.Millisecond)
		return nil
	})
	// endless [INTERVAL]: an unbounded keyed job that restarts at once on
	// failure, for failover measurements; checkpointed every INTERVAL when
	// given.
	reg.MustRegister("endless", func(env *Env, args []string) error {
		env.Configure(WithRestartStrategy(FixedDelayRestart(1000, 0)))
		if len(args) > 0 {
			d, err := time.ParseDuration(args[0])
			if err != nil {
				return err
			}
			env.Configure(WithCheckpointing(d))
		}
		src := Generate(env, -1, func(i int64) (int64, error) {
			if i%10_000 == 0 {
				time.Sleep(time.Millisecond)
			}
			return i, nil
		})
		keyed := KeyBy(src, func(i int64) int64 { return i % 1000 }).Stream()
		SinkTo(keyed, "discard", SinkFunc(func(int64) error { return nil }))
		return nil
	})
	return reg
}

// totalsSink counts records per key, fails on a record that arrives out of
// its producer's order, and writes the counts when its input ends.
type totalsSink struct {
	n, par  int64
	dir     string
	subtask int
	last    map[int64]int64 // producer subtask -> last record seen
	counts  map[int64]int64
}

func (s *totalsSink) Open(rc *RuntimeContext) error {
	s.subtask, s.last, s.counts = rc.SubtaskIndex(), make(map[int64]int64), make(map[int64]int64)
	return nil
}

func (s *totalsSink) Write(_ context.Context, i int64) error {
	producer := i * s.par / s.n // Generate gives each subtask a contiguous range
	for producer > 0 && i < s.n*producer/s.par {
		producer--
	}
	if last, ok := s.last[producer]; ok && i <= last {
		return fmt.Errorf("record %d after %d from producer %d: out of order", i, last, producer)
	}
	s.last[producer] = i
	s.counts[i%1000]++
	return nil
}

func (s *totalsSink) Finish() error {
	var b strings.Builder
	for k, c := range s.counts {
		fmt.Fprintf(&b, "%d %d\n", k, c)
	}
	return os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("part-%d", s.subtask)), []byte(b.String()), 0o644)
}

func (s *totalsSink) Close() error { return nil }

// runChildNode runs a TaskManager node until it is signalled or its
// parent closes standard input.
func runChildNode() int {
	var cc childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childNodeEnv)), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		return 2
	}
	roles := RoleTaskManager
	if cc.Roles != "" {
		r, err := ParseRoles(cc.Roles)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child node:", err)
			return 2
		}
		roles = r
	}
	cfg := DefaultNodeConfig(roles)
	cfg.ID, cfg.JobManagerAddr, cfg.Slots, cfg.Registry = cc.ID, cc.JobManagerAddr, cc.Slots, testRegistry()
	cfg.CheckpointDir = cc.CheckpointDir
	cfg.HA, cfg.RESTAddr, cfg.RaftAddr, cfg.RaftDir, cfg.RaftPeers = cc.HA, cc.RESTAddr, cc.RaftAddr, cc.RaftDir, cc.RaftPeers
	if cc.BindAddr != "" {
		cfg.BindAddr = cc.BindAddr
	}
	if cc.SecurityDir != "" {
		cfg.Security = security.FromDir(cc.SecurityDir, cc.ID)
	}
	if roles&RoleJobManager != 0 {
		cfg.SlotRequestTimeout = time.Minute
	}
	if os.Getenv("FLINKGO_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	n, err := NewNode(cfg)
	if err == nil {
		err = n.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		return 1
	}
	fmt.Println("ready")
	go func() { io.Copy(io.Discard, os.Stdin); stop() }() // parent gone
	<-ctx.Done()
	n.Close()
	return 0
}

// startChild starts a TaskManager node in a new process of this test
// binary and waits until it has registered.
func startChild(t testing.TB, id, jmAddr string, slots int) *exec.Cmd {
	return startChildWith(t, childConfig{ID: id, JobManagerAddr: jmAddr, Slots: slots})
}

// startChildWith starts a TaskManager node process configured by cc.
func startChildWith(t testing.TB, cc childConfig) *exec.Cmd {
	t.Helper()
	id := cc.ID
	cfg, _ := json.Marshal(cc)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childNodeEnv+"="+string(cfg))
	if os.Getenv("FLINKGO_TEST_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
		io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "child node %s did not start", id)
	case <-time.After(time.Minute):
		t.Fatalf("child node %s did not start within a minute", id)
	}
	return cmd
}

// startChildren starts n one-slot TaskManager processes, tm-0 to tm-(n-1),
// concurrently.
func startChildren(t testing.TB, jmAddr string, n int) map[ResourceID]*exec.Cmd {
	t.Helper()
	children := make(map[ResourceID]*exec.Cmd, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("tm-%d", i)
			cmd := startChild(t, id, jmAddr, 1)
			mu.Lock()
			children[ResourceID(id)] = cmd
			mu.Unlock()
		}()
	}
	wg.Wait()
	return children
}

// runningTaskManager waits until every subtask of job id runs and returns
// a TaskManager running one of them; empty if the job ended first.
func runningTaskManager(t *testing.T, d *Dispatcher, id JobID) ResourceID {
	t.Helper()
	var victim ResourceID
	require.Eventually(t, func() bool {
		jd, err := d.JobDetails(context.Background(), id)
		if err != nil || jd.Status.IsTerminal() {
			return true
		}
		for _, v := range jd.Vertices {
			for _, st := range v.Subtasks {
				if st.State != Running {
					victim = ""
					return false
				}
				victim = st.TaskManager
			}
		}
		return victim != ""
	}, time.Minute, time.Millisecond)
	return victim
}

func startJobManagerNode(t *testing.T) *Node {
	t.Helper()
	cfg := DefaultNodeConfig(RoleJobManager)
	cfg.BindAddr, cfg.Registry, cfg.SlotRequestTimeout = "127.0.0.1:0", testRegistry(), time.Minute
	n, err := NewNode(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() { n.Close() })
	return n
}

func waitForSlots(t *testing.T, rm *ResourceManager, want int) {
	t.Helper()
	require.Eventually(t, func() bool {
		total, _, _ := rm.SlotCounts(context.Background())
		return total == want
	}, time.Minute, 5*time.Millisecond, "waiting for %d slots", want)
}

// requireTotals checks the output of keyed-totals N DIR: every one of the
// 1000 keys counted n/1000 times. what names the job in messages.
func requireTotals(t *testing.T, dir string, n int64, what string) {
	t.Helper()
	totals := readTotals(t, dir)
	require.Len(t, totals, 1000, "%s: keys in %s", what, dir)
	for k, c := range totals {
		require.Equal(t, n/1000, c, "%s: key %d", what, k)
	}
}

func readTotals(t *testing.T, dir string) map[int64]int64 {
	t.Helper()
	totals := map[int64]int64{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var k, c int64
			_, err := fmt.Sscan(line, &k, &c)
			require.NoError(t, err, line)
			totals[k] += c
		}
	}
	return totals
}

func TestSeparateProcessesKeyedShuffle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	n := int64(10_000_000)
	if raceEnabled {
		n = 1_000_000 // the race detector slows every process about tenfold
	}
	jm := startJobManagerNode(t)
	startChildren(t, jm.Addr(), 2)
	waitForSlots(t, jm.ResourceManager(), 2)

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id, err := jm.Dispatcher().SubmitJob(ctx, JobSubmission{Name: "keyed-totals", Args: []string{fmt.Sprint(n), dir}, Parallelism: 2})
	require.NoError(t, err)
	res, err := jm.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	require.NoError(t, res.Err)
	requireTotals(t, dir, n, "keyed-totals")
	op, _ := res.Operator("totals")
	assert.Equal(t, n, op.RecordsIn, "every record arrived exactly once")
	t.Logf("%d records through a keyed exchange between two TaskManager processes in %v", n, res.Duration)
}

func TestKilledTaskManagerIsDetectedAndJobRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	jm := startJobManagerNode(t)
	children := startChildren(t, jm.Addr(), 3)
	rm := jm.ResourceManager()
	waitForSlots(t, rm, 3)

	n := int64(6_000_000)
	if raceEnabled {
		n = 2_000_000
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := jm.Dispatcher()
	id, err := d.SubmitJob(ctx, JobSubmission{Name: "paced-totals", Args: []string{fmt.Sprint(n), dir}, Parallelism: 2})
	require.NoError(t, err)

	// Kill -9 a TaskManager that runs part of the job, once it runs.
	victim := runningTaskManager(t, d, id)
	require.NotEmpty(t, victim, "the job ended before it could be killed")
	killed := time.Now()
	require.NoError(t, children[victim].Process.Kill())
	require.Eventually(t, func() bool {
		for _, tm := range rm.TaskManagers() {
			if tm.ID == victim {
				return false
			}
		}
		return true
	}, 30*time.Second, time.Millisecond, "the killed task manager must be declared lost")
	t.Logf("killed task manager %s declared lost after %v (heartbeat timeout %v)", victim, time.Since(killed), DefaultNodeConfig(0).HeartbeatTimeout)

	res, err := d.JobResult(ctx, id)
	require.NoError(t, err)
	require.NoError(t, res.Err)
	assert.GreaterOrEqual(t, res.Restarts, 1)
	requireTotals(t, dir, n, "the restarted job's output is complete")
	t.Logf("job finished after %d restart(s) in %v", res.Restarts, res.Duration)
}

func TestLocalProcessProviderStartsAndStopsTaskManagers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	provider := &LocalProcessProvider{Slots: 1}
	cfg := DefaultNodeConfig(RoleJobManager)
	cfg.BindAddr, cfg.Registry, cfg.SlotRequestTimeout = "127.0.0.1:0", testRegistry(), time.Minute
	cfg.Provider, cfg.IdleTimeout = provider, 500*time.Millisecond
	jm, err := NewNode(cfg)
	require.NoError(t, err)
	// Children stop when their standard input closes: hand them a pipe
	// that stays open until the test ends.
	stdinR, stdinW, err := os.Pipe()
	require.NoError(t, err)
	defer stdinR.Close()
	defer stdinW.Close()
	provider.Command = func(id ResourceID) *exec.Cmd {
		cc, _ := json.Marshal(childConfig{ID: string(id), JobManagerAddr: jm.Addr(), Slots: 1})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childNodeEnv+"="+string(cc))
		cmd.Stdin = stdinR
		return cmd
	}
	require.NoError(t, jm.Start(context.Background()))
	defer jm.Close()
	total, _, err := jm.ResourceManager().SlotCounts(context.Background())
	require.NoError(t, err)
	require.Zero(t, total, "the cluster starts without task managers")

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := jm.Dispatcher().SubmitJob(ctx, JobSubmission{Name: "keyed-totals", Args: []string{"100000", dir}, Parallelism: 2})
	require.NoError(t, err)
	res, err := jm.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	require.NoError(t, res.Err)
	assert.Len(t, readTotals(t, dir), 1000)

	require.Eventually(t, func() bool { return len(provider.Running()) == 0 }, time.Minute, 10*time.Millisecond,
		"idle task managers are stopped")
	total, _, _ = jm.ResourceManager().SlotCounts(context.Background())
	assert.Zero(t, total)
}

func TestNodesFindEachOtherByGossip(t *testing.T) {
	jmCfg := DefaultNodeConfig(RoleJobManager)
	jmCfg.BindAddr, jmCfg.GossipAddr, jmCfg.Registry = "127.0.0.1:0", "127.0.0.1:0", testRegistry()
	jmCfg.RESTAddr = "127.0.0.1:0"
	jm, err := NewNode(jmCfg)
	require.NoError(t, err)
	require.NoError(t, jm.Start(context.Background()))
	defer jm.Close()

	startTM := func(id string, reg *Registry) (*Node, error) {
		cfg := DefaultNodeConfig(RoleTaskManager)
		cfg.ID, cfg.Slots, cfg.Registry = id, 1, reg
		cfg.GossipAddr, cfg.Peers = "127.0.0.1:0", []string{jm.GossipAddr()}
		n, err := NewNode(cfg)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return n, n.Start(ctx)
	}
	var tms []*Node
	for i := range 2 {
		tm, err := startTM(fmt.Sprintf("gossip-tm-%d", i), testRegistry())
		require.NoError(t, err, "a task manager finds the job manager through the membership")
		defer tm.Close()
		tms = append(tms, tm)
	}
	waitForSlots(t, jm.ResourceManager(), 2)

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := jm.Dispatcher().SubmitJob(ctx, JobSubmission{Name: "keyed-totals", Args: []string{"20000", dir}, Parallelism: 2})
	require.NoError(t, err)
	res, err := jm.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	require.NoError(t, res.Err)

	// The keyed exchange crossed the network: what the sources wrote, the
	// sinks read, as the TaskManagers reported it over RPC.
	require.Len(t, res.Vertices, 2)
	assert.Positive(t, res.Vertices[0].BytesOut)
	assert.Equal(t, res.Vertices[0].BytesOut, res.Vertices[1].BytesIn)
	assert.EqualValues(t, 20000, res.Vertices[1].RecordsIn)
	// Heartbeats over RPC carry the TaskManagers' memory and buffers.
	require.Eventually(t, func() bool {
		for _, tm := range jm.ResourceManager().TaskManagers() {
			if tm.Stats.Memory.HeapUsed == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "heartbeats carry memory")
	for _, tm := range jm.ResourceManager().TaskManagers() {
		assert.Equal(t, network.DefaultNumBuffers, tm.Stats.Network.TotalSegments, tm.ID)
		assert.Equal(t, network.DefaultBufferSize, tm.Stats.Network.SegmentSize, tm.ID)
	}

	// The JobManager node serves the REST API.
	resp, err := http.Get("http://" + jm.RESTAddr() + "/taskmanagers")
	require.NoError(t, err)
	var tmList struct {
		TaskManagers []struct{ ID string } `json:"taskmanagers"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tmList))
	resp.Body.Close()
	assert.Len(t, tmList.TaskManagers, 2)

	// A node of another binary is refused.
	other := testRegistry()
	other.MustRegister("extra", func(env *Env, _ []string) error {
		Collect(FromSlice(env, []int{1}))
		return nil
	})
	stranger, err := startTM("stranger", other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "incompatible")
	stranger.Close()

	// A task manager that leaves is forgotten at once, without waiting for
	// missed heartbeats.
	require.NoError(t, tms[0].Close())
	require.Eventually(t, func() bool { return len(jm.ResourceManager().TaskManagers()) == 1 }, 10*time.Second, time.Millisecond)
}

func TestNodeConfigFromEnv(t *testing.T) {
	t.Setenv("FLINK_ROLES", "taskmanager")
	t.Setenv("FLINK_SLOTS", "3")
	t.Setenv("FLINK_JOBMANAGER_ADDR", "jm:6123")
	t.Setenv("FLINK_PEERS", "a:7946, b:7946")
	t.Setenv("FLINK_SAVEPOINT_ROOTS", "/data/savepoints, /archive")
	cfg, rest, err := NodeConfigFromEnv(DefaultNodeConfig(RoleTaskManager), []string{"-slots", "5", "-id", "tm-x", "extra"})
	require.NoError(t, err)
	assert.Equal(t, RoleTaskManager, cfg.Roles)
	assert.Equal(t, 5, cfg.Slots, "flags win over the environment")
	assert.Equal(t, "jm:6123", cfg.JobManagerAddr)
	assert.Equal(t, "tm-x", cfg.ID)
	assert.Equal(t, []string{"a:7946", "b:7946"}, cfg.Peers)
	assert.Equal(t, []string{"/data/savepoints", "/archive"}, cfg.SavepointRoots)
	assert.Equal(t, []string{"extra"}, rest)
	cfg, _, err = NodeConfigFromEnv(DefaultNodeConfig(RoleTaskManager), []string{"-savepoint-roots", "/sp"})
	require.NoError(t, err)
	assert.Equal(t, []string{"/sp"}, cfg.SavepointRoots, "the flag wins")

	t.Setenv("FLINK_SLOTS", "many")
	_, _, err = NodeConfigFromEnv(DefaultNodeConfig(RoleTaskManager), nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = ParseRoles("scheduler")
	require.ErrorIs(t, err, ErrInvalidConfig)
	cfg = DefaultNodeConfig(RoleTaskManager)
	cfg.Registry = NewRegistry()
	require.ErrorContains(t, cfg.Validate(), "job manager's address")

	t.Setenv("FLINK_SLOTS", "1")
	t.Setenv("FLINK_CHECKPOINT_DIR", "s3://bucket/checkpoints")
	cfg, _, err = NodeConfigFromEnv(DefaultNodeConfig(RoleJobManager), nil)
	require.NoError(t, err)
	cfg.Registry = NewRegistry()
	require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig)
	require.ErrorContains(t, cfg.Validate(), `checkpoint directory "s3://bucket/checkpoints" is a URL`)
	cfg.CheckpointStorage = checkpoint.NewMemStorage()
	require.NoError(t, cfg.Validate(), "the storage is set: the directory is not used")
}
