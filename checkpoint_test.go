package flink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
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
func runningCountJob(env *Env, records, keys int64, dir string, inject *failureInjector, throttle bool) {
	src := Generate(env, records, func(i int64) (int64, error) { return i % keys, nil }).UID("source")
	mapped := Map(src, func(k int64) (keyCount, error) {
		if inject != nil {
			if err := inject.check(); err != nil {
				return keyCount{}, err
			}
		}
		if throttle && k == 0 {
			time.Sleep(50 * time.Microsecond)
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
	runningCountJob(env, records, keys, out, inject, true)
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
}
