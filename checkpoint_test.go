package flink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/state"
)

// keyCount is a keyed running count: Key's Count-th record.
type keyCount struct {
	Key   int64
	Count int64
}

// failureInjector fails the records at the given positions of the stream
// of records seen (replays included), once each.
type failureInjector struct {
	seen   atomic.Int64
	mu     sync.Mutex
	points []int64
	fired  int
}

func (f *failureInjector) check() error {
	n := f.seen.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired < len(f.points) && n >= f.points[f.fired] {
		f.fired++
		return fmt.Errorf("injected failure %d at record %d", f.fired, n)
	}
	return nil
}

// runningCountJob describes the exactly-once test job: count records
// generated with keys i % keys, keyed running counts, a transactional file
// sink.
func runningCountJob(env *Env, records, keys int64, dir string, inject *failureInjector, throttle time.Duration) {
	src := Generate(env, records, func(i int64) (int64, error) {
		if throttle > 0 && i%1000 == 0 {
			time.Sleep(throttle)
		}
		return i % keys, nil
	}).UID("source")
	runningCounts(src, dir, inject)
}

// runningCounts counts the keys of src and writes each key's running count
// exactly once to dir.
func runningCounts(src *DataStream[int64], dir string, inject *failureInjector) {
	mapped := Map(src, func(k int64) (keyCount, error) {
		if inject != nil {
			if err := inject.check(); err != nil {
				return keyCount{}, err
			}
		}
		return keyCount{Key: k, Count: 1}, nil
	}).UID("map")
	sums := Reduce(KeyBy(mapped, func(r keyCount) int64 { return r.Key }), func(a, b keyCount) (keyCount, error) {
		return keyCount{Key: a.Key, Count: a.Count + b.Count}, nil
	}).UID("sum")
	WriteFilesExactlyOnce(sums, dir, func(r keyCount) string { return fmt.Sprintf("%d,%d", r.Key, r.Count) }).UID("sink")
}

// readCommitted reads the lines of the committed part files in dir.
func readCommitted(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var lines []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
		require.NoError(t, sc.Err())
	}
	return lines
}

// checkRunningCounts verifies that the output holds, for every key, the
// counts 1..n exactly once: nothing lost, nothing duplicated.
func checkRunningCounts(t testing.TB, lines []string, records, keys int64) {
	t.Helper()
	seen := make(map[[2]int64]int, len(lines))
	for _, l := range lines {
		k, c, ok := strings.Cut(l, ",")
		require.True(t, ok, "line %q", l)
		ki, err1 := strconv.ParseInt(k, 10, 64)
		ci, err2 := strconv.ParseInt(c, 10, 64)
		require.NoError(t, errors.Join(err1, err2))
		seen[[2]int64{ki, ci}]++
	}
	var dups, missing int
	for k := range keys {
		n := records / keys
		if k < records%keys {
			n++
		}
		for c := int64(1); c <= n; c++ {
			switch seen[[2]int64{k, c}] {
			case 0:
				missing++
			case 1:
			default:
				dups++
			}
			delete(seen, [2]int64{k, c})
		}
	}
	assert.Zero(t, missing, "records lost")
	assert.Zero(t, dups, "records duplicated")
	assert.Empty(t, seen, "unexpected records")
	assert.Len(t, lines, int(records))
}

func TestExactlyOnceUnderFailures(t *testing.T) {
	t.Run("in-process exchange", func(t *testing.T) { testExactlyOnce(t, false) })
	t.Run("network exchange", func(t *testing.T) { testExactlyOnce(t, true) })
}

func testExactlyOnce(t *testing.T, network bool) {
	records := int64(1_000_000)
	if raceEnabled {
		records = 200_000
	}
	const keys = 1000
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewPCG(uint64(seed), 0))
	inject := &failureInjector{}
	for range 4 {
		inject.points = append(inject.points, 1+rnd.Int64N(records))
	}
	slices.Sort(inject.points)
	t.Logf("seed %d: failures at records %v", seed, inject.points)

	dir := t.TempDir()
	storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: filepath.Join(dir, "checkpoints")})
	require.NoError(t, err)
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager, cfg.CheckpointStorage = 2, storage
	if os.Getenv("FLINKGO_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if network {
		cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.IsolatedTaskManagers = 2, 1, true
	}
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()

	env := NewEnv(WithParallelism(2), WithCheckpointing(20*time.Millisecond), WithRestartStrategy(FixedDelayRestart(10, 10*time.Millisecond)))
	out := filepath.Join(dir, "out")
	runningCountJob(env, records, keys, out, inject, 50*time.Microsecond)
	g, err := env.JobGraph()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.RunGraph(ctx, g)
	require.NoError(t, err)
	assert.Equal(t, JobFinished, res.Status)
	// Two injected failures may hit one attempt before it is cancelled.
	assert.GreaterOrEqual(t, res.Restarts, 1)
	assert.LessOrEqual(t, res.Restarts, len(inject.points))
	stats, ok, err := c.Dispatcher().CheckpointStats(res.ID)
	require.NoError(t, err)
	require.True(t, ok)
	t.Logf("checkpoints: %+v", stats.Counts)
	assert.NotZero(t, stats.Counts.Completed)
	checkRunningCounts(t, readCommitted(t, out), records, keys)
	assert.Empty(t, inProgressFiles(t, out), "transactions of failed attempts left in the output")
}

// inProgressFiles lists the hidden in-progress files of the exactly-once
// file sink in dir: transactions neither committed nor aborted.
func inProgressFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".inprogress") {
			names = append(names, e.Name())
		}
	}
	return names
}

// recordGate holds a generator until the test lets records through: the
// job waits for the test's signal, not for a clock.
type recordGate struct {
	mu      sync.Mutex
	permits int64 // records that may still pass; negative: no limit
	changed chan struct{}
}

// newRecordGate returns a gate that lets permits records through.
func newRecordGate(permits int64) *recordGate {
	return &recordGate{permits: permits, changed: make(chan struct{})}
}

// pass blocks while the permits are used up, then takes one.
func (g *recordGate) pass() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.permits == 0 {
		ch := g.changed
		g.mu.Unlock()
		<-ch
		g.mu.Lock()
	}
	if g.permits > 0 {
		g.permits--
	}
}

// open lets every record through from now on.
func (g *recordGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.permits != 0 {
		g.permits = -1
		return
	}
	g.permits = -1
	close(g.changed)
	g.changed = make(chan struct{})
}

// savepointWhenRunning takes a savepoint of job id once all its subtasks
// run; the test fails if the job ends first.
func savepointWhenRunning(t *testing.T, d *Dispatcher, id JobID, target string, stop bool) string {
	t.Helper()
	for {
		path, err := d.TriggerSavepoint(context.Background(), id, target, stop)
		if errors.Is(err, ErrJobEnding) {
			t.Fatalf("job %s read all its input before the savepoint: %v", id, err)
		}
		if !errors.Is(err, ErrJobNotRunning) {
			require.NoError(t, err)
			return path
		}
		if jd, err := d.JobDetails(context.Background(), id); err == nil && jd.Status.IsTerminal() {
			t.Fatalf("job %s ended (%s) before the savepoint", id, jd.Status)
		}
		time.Sleep(5 * time.Millisecond) // the job is still deploying
	}
}

// waitLines waits until dir holds at least n committed lines.
func waitLines(t *testing.T, dir string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		if _, err := os.Stat(dir); err != nil {
			return false
		}
		return len(readCommitted(t, dir)) >= n
	}, time.Minute, 5*time.Millisecond, "waiting for %d committed lines in %s", n, dir)
}

// submitGatedCounts submits, at parallelism p and from savepoint (if
// set), a job whose source generates records keyed by i%keys and writes
// their running counts to out; the source generates only the records gate
// (if set) lets through, so that the job cannot end before a test takes
// its savepoint.
func submitGatedCounts(ctx context.Context, t *testing.T, d *Dispatcher, p int, records, keys int64, savepoint, out string, gate *recordGate) JobID {
	t.Helper()
	env := NewEnv(WithParallelism(p), WithCheckpointing(30*time.Millisecond), WithSavepoint(savepoint, false))
	src := Generate(env, records, func(i int64) (int64, error) {
		if gate != nil {
			gate.pass()
		}
		return i % keys, nil
	}).UID("source")
	runningCounts(src, out, nil)
	g, err := env.JobGraph()
	require.NoError(t, err)
	id, err := d.submitGraph(ctx, g)
	require.NoError(t, err)
	return id
}

func TestRescaleViaSavepoints(t *testing.T) {
	records := int64(300_000)
	if raceEnabled {
		records = 120_000
	}
	const keys = 500
	dir := t.TempDir()
	storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: filepath.Join(dir, "checkpoints")})
	require.NoError(t, err)
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager, cfg.CheckpointStorage = 3, storage
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	out := filepath.Join(dir, "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start := func(p int, savepoint string, gate *recordGate) JobID {
		return submitGatedCounts(ctx, t, c.Dispatcher(), p, records, keys, savepoint, out, gate)
	}
	// stopWithSavepoint stops job id with a savepoint, then opens its gate
	// so that its sources, held in the generator, see that they stop.
	stopWithSavepoint := func(id JobID, gate *recordGate) string {
		path := savepointWhenRunning(t, c.Dispatcher(), id, "", true)
		gate.open()
		res, err := c.Dispatcher().JobResult(ctx, id)
		require.NoError(t, err)
		require.Equal(t, JobFinished, res.Status, "stop-with-savepoint ends the job as FINISHED")
		return path
	}

	// Each stopped run generates a quarter of the records at most; the
	// records its subtasks generated into a batch they hold (up to
	// batchSize each) are not emitted, so a tenth is surely committed.
	gate1, gate2 := newRecordGate(records/4), newRecordGate(records/4)
	defer gate1.open() // before c.Close: a held source could not stop
	defer gate2.open()
	id := start(2, "", gate1)
	waitLines(t, out, int(records/10))
	sp1 := stopWithSavepoint(id, gate1)
	n1 := len(readCommitted(t, out))
	t.Logf("parallelism 2: %d lines, savepoint %s", n1, sp1)

	id = start(3, sp1, gate2)
	waitLines(t, out, n1+int(records/10))
	sp2 := stopWithSavepoint(id, gate2)
	n2 := len(readCommitted(t, out))
	t.Logf("parallelism 3: %d lines, savepoint %s", n2, sp2)
	require.Less(t, n2, int(records), "the job should not have finished before the second savepoint")

	id = start(1, sp2, nil)
	res, err := c.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	require.Equal(t, JobFinished, res.Status)
	checkRunningCounts(t, readCommitted(t, out), records, keys)
}

// TestSavepointOfEndingJob asks for savepoints of a bounded job whose
// sources have read all their input while a downstream operator still
// works: the answer is ErrJobEnding at once (through the Go API and
// REST), never a savepoint that fails or hangs at random, and the job
// then finishes.
func TestSavepointOfEndingJob(t *testing.T) {
	dir := t.TempDir()
	storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: filepath.Join(dir, "checkpoints")})
	require.NoError(t, err)
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager, cfg.CheckpointStorage = 4, storage
	if os.Getenv("FLINKGO_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	defer free() // before c.Close: the held operator must return

	env := NewEnv(WithParallelism(2), WithCheckpointing(time.Hour))
	src := Generate(env, 10, func(i int64) (int64, error) { return i, nil }).UID("source")
	held := Map(src.Rebalance(), func(i int64) (int64, error) {
		<-release
		return i, nil
	}).UID("held")
	SinkTo(held, "discard", SinkFunc(func(int64) error { return nil }))
	g, err := env.JobGraph()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := c.Dispatcher()
	id, err := d.submitGraph(ctx, g)
	require.NoError(t, err)
	j, err := d.job(id)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return j.jm.ckpt.ending() != nil }, time.Minute, 5*time.Millisecond,
		"both source subtasks read all their input")

	for _, stop := range []bool{false, true} {
		_, err = d.TriggerSavepoint(ctx, id, "", stop)
		require.ErrorIs(t, err, ErrJobEnding, "stop %v", stop)
		assert.Contains(t, err.Error(), "read all their input")
	}
	_, err = d.StartSavepoint(ctx, id, "", false)
	require.ErrorIs(t, err, ErrJobEnding)

	free()
	res, err := d.JobResult(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, JobFinished, res.Status)
}

// fileStorageCluster starts a local cluster of one TaskManager with two
// slots that keeps checkpoints and savepoints in a FileStorage at root;
// it is closed when the test ends.
func fileStorageCluster(t *testing.T, root string) *LocalCluster {
	t.Helper()
	storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: root})
	require.NoError(t, err)
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager, cfg.CheckpointStorage = 2, storage
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// savepointFixture runs the running-count job and stops it with a
// savepoint; it returns the cluster, the savepoint's target and the
// storage's root directory.
func savepointFixture(t *testing.T) (*LocalCluster, string, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "checkpoints")
	c := fileStorageCluster(t, root)
	env := NewEnv(WithParallelism(2))
	runningCountJob(env, -1, 100, filepath.Join(dir, "out"), nil, time.Millisecond)
	g, err := env.JobGraph()
	require.NoError(t, err)
	ctx := context.Background()
	id, err := c.Dispatcher().submitGraph(ctx, g)
	require.NoError(t, err)
	path := savepointWhenRunning(t, c.Dispatcher(), id, "sp", true)
	_, err = c.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	return c, path, root
}

func TestSavepointMismatchAndCorruption(t *testing.T) {
	c, sp, root := savepointFixture(t)
	ctx := context.Background()
	spDir := sp
	require.Equal(t, filepath.Join(root, "_savepoints", "sp"), filepath.Dir(sp), "a fresh directory inside the target")
	out := filepath.Join(t.TempDir(), "out")

	t.Run("savepoint of another job", func(t *testing.T) {
		env := NewEnv(WithParallelism(2), WithSavepoint(sp, false))
		src := Generate(env, 10, func(i int64) (string, error) { return "x", nil }).UID("other-source")
		WriteFilesExactlyOnce(src, out, func(s string) string { return s }).UID("other-sink")
		g, err := env.JobGraph()
		require.NoError(t, err)
		_, err = c.Dispatcher().submitGraph(ctx, g)
		require.ErrorIs(t, err, ErrRestoreMismatch)
		assert.Contains(t, err.Error(), `uid "source"`)
		assert.Contains(t, err.Error(), "AllowNonRestoredState")

		// Allowing non-restored state skips it: the job runs from empty.
		env = NewEnv(WithParallelism(2), WithSavepoint(sp, true))
		src = Generate(env, 10, func(i int64) (string, error) { return "x", nil }).UID("other-source")
		WriteFilesExactlyOnce(src, out, func(s string) string { return s }).UID("other-sink")
		g, err = env.JobGraph()
		require.NoError(t, err)
		res, err := c.RunGraph(ctx, g)
		require.NoError(t, err)
		assert.Equal(t, JobFinished, res.Status)
	})

	t.Run("other max parallelism", func(t *testing.T) {
		env := NewEnv(WithParallelism(2), WithMaxParallelism(64), WithSavepoint(sp, false))
		runningCountJob(env, 1000, 100, out, nil, 0)
		g, err := env.JobGraph()
		require.NoError(t, err)
		_, err = c.Dispatcher().submitGraph(ctx, g)
		require.ErrorIs(t, err, ErrRestoreMismatch)
		assert.Contains(t, err.Error(), "max parallelism")
	})

	t.Run("no such savepoint", func(t *testing.T) {
		env := NewEnv(WithParallelism(2), WithSavepoint("does-not-exist", false))
		runningCountJob(env, 1000, 100, out, nil, 0)
		g, err := env.JobGraph()
		require.NoError(t, err)
		_, err = c.Dispatcher().submitGraph(ctx, g)
		require.ErrorIs(t, err, checkpoint.ErrNotFound)
	})

	t.Run("corrupted state stream", func(t *testing.T) {
		entries, err := os.ReadDir(spDir)
		require.NoError(t, err)
		corrupted := 0
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), "-keyed") {
				p := filepath.Join(spDir, e.Name())
				data, err := os.ReadFile(p)
				require.NoError(t, err)
				for i := len(data) / 2; i < len(data); i++ {
					data[i] ^= 0x5a
				}
				require.NoError(t, os.WriteFile(p, data, 0o644))
				corrupted++
			}
		}
		require.NotZero(t, corrupted)
		env := NewEnv(WithParallelism(2), WithSavepoint(sp, false))
		runningCountJob(env, 1000, 100, out, nil, 0)
		g, err := env.JobGraph()
		require.NoError(t, err)
		res, err := c.RunGraph(ctx, g)
		require.Error(t, err, "a job told to restore must never start empty")
		assert.Equal(t, JobFailed, res.Status)
		assert.Contains(t, err.Error(), "corrupt")
	})

	t.Run("truncated metadata", func(t *testing.T) {
		p := filepath.Join(spDir, checkpoint.MetadataFileName)
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, data[:len(data)/2], 0o644))
		env := NewEnv(WithParallelism(2), WithSavepoint(sp, false))
		runningCountJob(env, 1000, 100, out, nil, 0)
		g, err := env.JobGraph()
		require.NoError(t, err)
		_, err = c.Dispatcher().submitGraph(ctx, g)
		require.ErrorIs(t, err, checkpoint.ErrTruncated)
	})
}

// TestExactlyOnceKilledTaskManagers runs the exactly-once job on
// TaskManager processes and kills one with SIGKILL at a random point, then
// another: the committed output is exact.
func TestExactlyOnceKilledTaskManagers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	records := int64(1_000_000)
	if raceEnabled {
		records = 300_000
	}
	const keys = 1000
	dir := t.TempDir()
	ckpts, out := filepath.Join(dir, "checkpoints"), filepath.Join(dir, "out")

	cfg := DefaultNodeConfig(RoleJobManager)
	cfg.BindAddr, cfg.Registry, cfg.SlotRequestTimeout, cfg.CheckpointDir = "127.0.0.1:0", testRegistry(), time.Minute, ckpts
	if os.Getenv("FLINKGO_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	jm, err := NewNode(cfg)
	require.NoError(t, err)
	require.NoError(t, jm.Start(context.Background()))
	defer jm.Close()
	children := map[ResourceID]*exec.Cmd{}
	var mu sync.Mutex
	start := func(id string) {
		cmd := startChildWith(t, childConfig{ID: id, JobManagerAddr: jm.Addr(), Slots: 1, CheckpointDir: ckpts})
		mu.Lock()
		children[ResourceID(id)] = cmd
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); start(fmt.Sprintf("tm-%d", i)) }()
	}
	wg.Wait()
	waitForSlots(t, jm.ResourceManager(), 3)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := jm.Dispatcher()
	id, err := d.SubmitJob(ctx, JobSubmission{Name: "exactly-once", Args: []string{fmt.Sprint(records), fmt.Sprint(keys), out}, Parallelism: 2})
	require.NoError(t, err)

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	// kill waits for atLeast committed lines and kills a TaskManager running
	// part of the job; it reports false if the job ended first.
	kill := func(atLeast int) bool {
		waitLines(t, out, atLeast)
		victim := runningTaskManager(t, d, id)
		if victim == "" {
			return false
		}
		t.Logf("killing %s after %d committed lines", victim, atLeast)
		require.NoError(t, children[victim].Process.Kill())
		return true
	}
	first := int(records/10) + rnd.IntN(int(records/4))
	require.True(t, kill(first), "the job ended before the first kill")
	start("tm-3")
	if !kill(first + int(records/10) + rnd.IntN(int(records/4))) {
		t.Log("the job ended before the second kill")
	}

	res, err := d.JobResult(ctx, id)
	require.NoError(t, err)
	require.NoError(t, res.Err)
	assert.GreaterOrEqual(t, res.Restarts, 1)
	t.Logf("finished after %d restarts in %v", res.Restarts, res.Duration)
	checkRunningCounts(t, readCommitted(t, out), records, keys)
}

// counterSource is a user-defined replayable source: it emits 0..n-1 of
// its subtask's share and keeps its position in operator state.
type counterSource struct {
	n    int64
	next int64
	end  int64
	pos  state.ListState[int64]
}

func (s *counterSource) InitializeState(ctx *StateInitContext) error {
	var err error
	s.pos, err = state.GetOperatorListState(ctx.OperatorState(), state.ListStateDescriptor[int64]{Name: "position"})
	if err != nil {
		return err
	}
	rc := ctx.RuntimeContext()
	sub, par := int64(rc.SubtaskIndex()), int64(rc.Parallelism())
	s.next, s.end = s.n*sub/par, s.n*(sub+1)/par
	if ctx.IsRestored() {
		restored, err := s.pos.Get()
		if err != nil {
			return err
		}
		if len(restored) != 1 {
			return fmt.Errorf("restored %d positions, want 1", len(restored))
		}
		s.next = restored[0]
	}
	return nil
}

func (s *counterSource) SnapshotState(int64) error { return s.pos.Update([]int64{s.next}) }

func (s *counterSource) Run(ctx context.Context, out *SourceContext[int64]) error {
	for s.next < s.end {
		err := out.WithCheckpointLock(func(out SourceCollector[int64]) error {
			for range 100 {
				if s.next >= s.end {
					break
				}
				out.Collect(s.next)
				s.next++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if s.next%1000 == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	return nil
}

func (s *counterSource) Cancel() {}

func TestUserReplayableSourceAndAtLeastOnce(t *testing.T) {
	const records, keys = 200_000, 100
	for _, mode := range []CheckpointingMode{ExactlyOnce, AtLeastOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			inject := &failureInjector{points: []int64{records / 3, 2 * records / 3}}
			env := NewEnv(WithParallelism(2), WithCheckpointConfig(CheckpointConfig{Interval: 10 * time.Millisecond, Mode: mode}),
				WithRestartStrategy(FixedDelayRestart(5, 0)))
			src := FromSource(env, "counter", func() Source[int64] { return &counterSource{n: records} }).UID("counter")
			mapped := Map(src.Rebalance(), func(i int64) (keyCount, error) {
				if err := inject.check(); err != nil {
					return keyCount{}, err
				}
				return keyCount{Key: i % keys, Count: 1}, nil
			}).UID("map")
			sums := Reduce(KeyBy(mapped, func(r keyCount) int64 { return r.Key }), func(a, b keyCount) (keyCount, error) {
				return keyCount{Key: a.Key, Count: a.Count + b.Count}, nil
			}).UID("sum")
			out := filepath.Join(dir, "out")
			WriteFilesExactlyOnce(sums, out, func(r keyCount) string { return fmt.Sprintf("%d,%d", r.Key, r.Count) }).UID("sink")
			res, err := env.Execute(context.Background())
			require.NoError(t, err)
			assert.GreaterOrEqual(t, res.Restarts, 1)
			lines := readCommitted(t, out)
			if mode == ExactlyOnce {
				checkRunningCounts(t, lines, records, keys)
				return
			}
			// At least once: every running count appears; some may repeat.
			seen := make(map[string]bool, len(lines))
			for _, l := range lines {
				seen[l] = true
			}
			for k := range int64(keys) {
				for c := int64(1); c <= records/keys; c++ {
					require.True(t, seen[fmt.Sprintf("%d,%d", k, c)], "key %d count %d lost", k, c)
				}
			}
		})
	}
}

// untilCheckpointSource emits records until it snapshots checkpoint stop:
// with one checkpoint in flight at a time, every earlier one is complete
// by then.
type untilCheckpointSource struct {
	stop int64
	seen atomic.Int64
}

func (s *untilCheckpointSource) InitializeState(*StateInitContext) error { return nil }

func (s *untilCheckpointSource) SnapshotState(id int64) error {
	s.seen.Store(id)
	return nil
}

func (s *untilCheckpointSource) Run(ctx context.Context, out *SourceContext[int64]) error {
	for i := int64(0); s.seen.Load() < s.stop; i++ {
		if err := out.Collect(i); err != nil {
			return err
		}
	}
	return nil
}

func (s *untilCheckpointSource) Cancel() {}

// TestJobResultCheckpointCounts: the result of a checkpointed job counts
// its checkpoints and names the latest completed one; a job without
// checkpointing counts none.
func TestJobResultCheckpointCounts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := NewEnv(WithParallelism(1), WithCheckpointing(5*time.Millisecond))
	SinkTo(FromSource(env, "until-3", func() Source[int64] { return &untilCheckpointSource{stop: 3} }),
		"discard", SinkFunc(func(int64) error { return nil }))
	res, err := env.Execute(ctx)
	require.NoError(t, err)
	c := res.Checkpoints
	t.Logf("checkpoints: %+v", c)
	assert.GreaterOrEqual(t, c.Triggered, 3)
	assert.GreaterOrEqual(t, c.Completed, 2, "checkpoints 1 and 2 completed before 3 was triggered")
	assert.Zero(t, c.Failed)
	assert.Zero(t, c.Restored)
	assert.GreaterOrEqual(t, c.LatestCompletedID, int64(2))
	assert.NotEmpty(t, c.LatestCompletedPath)
	assert.Equal(t, c.Triggered, c.Completed+c.Failed, "nothing is pending at the end")

	env = NewEnv(WithParallelism(1))
	Collect(FromSlice(env, []int{1, 2, 3}))
	res, err = env.Execute(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Checkpoints)
}
