package flink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/checkpoint"
)

// savepointDirRE matches a savepoint directory's name, as Flink names it.
func savepointDirRE(id JobID) *regexp.Regexp {
	return regexp.MustCompile(`^savepoint-` + string(id)[:6] + `-[0-9a-f]{12}$`)
}

// TestTwoSavepointsIntoOneTarget takes two savepoints of one job into the
// same target directory: each gets a fresh directory of its own, and both
// restore, with exact results. (The second used to write into the first's
// directory, overwriting its operator state files, then fail on its
// metadata, and the first then failed to restore as corrupt.)
func TestTwoSavepointsIntoOneTarget(t *testing.T) {
	records := int64(200_000)
	if raceEnabled {
		records = 80_000
	}
	const keys = 500
	dir := t.TempDir()
	root := filepath.Join(dir, "checkpoints")
	c := fileStorageCluster(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := c.Dispatcher()

	start := func(savepoint, out string, gate *recordGate) JobID {
		return submitGatedCounts(ctx, t, d, 2, records, keys, savepoint, out, gate)
	}
	finish := func(id JobID) {
		res, err := d.JobResult(ctx, id)
		require.NoError(t, err)
		require.Equal(t, JobFinished, res.Status, "%v", res.Err)
	}

	out := filepath.Join(dir, "out")
	gate := newRecordGate(records / 4)
	defer gate.open() // before c.Close: a held source could not stop
	id := start("", out, gate)
	waitLines(t, out, int(records/20))
	sp1 := savepointWhenRunning(t, d, id, "same", false)
	sp2 := savepointWhenRunning(t, d, id, "same", true)
	gate.open()
	finish(id)

	target := filepath.Join(root, "_savepoints", "same")
	require.NotEqual(t, sp1, sp2)
	for _, sp := range []string{sp1, sp2} {
		require.Equal(t, target, filepath.Dir(sp))
		require.Regexp(t, savepointDirRE(id), filepath.Base(sp))
	}

	// From the second, the job completes its output exactly.
	finish(start(sp2, out, nil))
	checkRunningCounts(t, readCommitted(t, out), records, keys)

	// From the first, into another directory: every key counts on from
	// its count in the savepoint to its total, each count once.
	out1 := filepath.Join(dir, "out1")
	finish(start(sp1, out1, nil))
	checkCountsFrom(t, readCommitted(t, out1), records, keys)
}

// checkCountsFrom verifies that lines hold, for every key, the counts
// c+1..n exactly once, for some c >= 0 (the key's count when the job
// started from a savepoint) and n the key's total.
func checkCountsFrom(t *testing.T, lines []string, records, keys int64) {
	t.Helper()
	counts := make(map[int64][]int64)
	for _, l := range lines {
		k, c, ok := strings.Cut(l, ",")
		require.True(t, ok, "line %q", l)
		ki, err1 := strconv.ParseInt(k, 10, 64)
		ci, err2 := strconv.ParseInt(c, 10, 64)
		require.NoError(t, errors.Join(err1, err2))
		counts[ki] = append(counts[ki], ci)
	}
	for k := range keys {
		n := records / keys
		if k < records%keys {
			n++
		}
		got := counts[k]
		seen := make(map[int64]bool, len(got))
		lo := n + 1
		for _, c := range got {
			require.False(t, seen[c], "key %d: count %d twice", k, c)
			require.LessOrEqual(t, c, n, "key %d: count %d beyond its total", k, c)
			seen[c] = true
			lo = min(lo, c)
		}
		require.Equal(t, int(n-lo+1), len(got), "key %d: counts %d..%d have gaps", k, lo, n)
		delete(counts, k)
	}
	require.Empty(t, counts, "unexpected keys")
}

// outsidePaths are savepoint targets and paths outside the default roots
// of a FileStorage in a temporary directory, or malformed: ones that exist
// and ones that do not.
var outsidePaths = []string{"/etc", "/etc/passwd", "../..", "/tmp/x/../../etc", "/nonexistent", "a/../../b"}

// TestSavepointPathsOutsideRoots: savepoint targets and savepoint paths
// outside the storage's savepoint roots, malformed, or through a link
// inside a root that leads out, are refused with one message that tells
// nothing about the path, by the Go API (checkpoint.ErrInvalidName) and
// by REST (400), for POST /jobs/{id}/savepoints, /stop and POST /jobs.
// A missing savepoint inside the roots is a 400 "no savepoint at ...".
func TestSavepointPathsOutsideRoots(t *testing.T) {
	root := t.TempDir()
	storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: root})
	require.NoError(t, err)
	outside := t.TempDir()
	spDir := filepath.Join(root, "_savepoints")
	require.NoError(t, os.MkdirAll(spDir, 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(spDir, "link")))
	f := newRESTFixtureWith(t, restTestRegistry(), func(cfg *ClusterConfig) { cfg.CheckpointStorage = storage })
	d := f.cluster.Dispatcher()
	id := f.submit(t, `{"name": "checkpointed", "parallelism": 2}`)
	base := "/jobs/" + string(id)
	require.Eventually(t, func() bool { _, ok := allRunning(d, id, 0); return ok }, 30*time.Second, 5*time.Millisecond)

	paths := append(slices.Clone(outsidePaths), "link", filepath.Join(spDir, "link"), filepath.Join(spDir, "link", "x"))
	for _, p := range paths {
		want := fmt.Sprintf("savepoint path %q is not a clean path inside the allowed savepoint directories", p)
		_, err := d.TriggerSavepoint(context.Background(), id, p, false)
		require.ErrorIs(t, err, checkpoint.ErrInvalidName, p)
		require.ErrorContains(t, err, want)

		body := fmt.Sprintf(`{"target-directory": %q}`, p)
		status, _, m := f.do(t, http.MethodPost, base+"/savepoints", body)
		require.Equal(t, http.StatusBadRequest, status, "%s: %v", p, m)
		assert.Equal(t, []any{"invalid savepoint target: " + want}, m["errors"], p)
		status, _, m = f.do(t, http.MethodPost, base+"/stop", fmt.Sprintf(`{"targetDirectory": %q}`, p))
		require.Equal(t, http.StatusBadRequest, status, "%s: %v", p, m)
		assert.Equal(t, []any{"invalid savepoint target: " + want}, m["errors"], p)

		status, _, m = f.do(t, http.MethodPost, "/jobs", fmt.Sprintf(`{"name": "checkpointed", "savepointPath": %q}`, p))
		require.Equal(t, http.StatusBadRequest, status, "%s: %v", p, m)
		assert.Equal(t, []any{"invalid savepoint path: " + want}, m["errors"], p)

		env := NewEnv(WithSavepoint(p, false))
		SinkTo(Generate(env, 1, func(i int64) (int64, error) { return i, nil }), "discard", SinkFunc(func(int64) error { return nil }))
		g, err := env.JobGraph()
		require.NoError(t, err)
		_, err = d.submitGraph(context.Background(), g)
		require.ErrorIs(t, err, checkpoint.ErrInvalidName, p)
	}
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing was written through the link")

	// Inside the roots: a missing savepoint.
	for _, p := range []string{"missing", filepath.Join(spDir, "missing"), filepath.Join(root, "x", "y")} {
		status, _, m := f.do(t, http.MethodPost, "/jobs", fmt.Sprintf(`{"name": "checkpointed", "savepointPath": %q}`, p))
		require.Equal(t, http.StatusBadRequest, status, "%s: %v", p, m)
		assert.Equal(t, []any{fmt.Sprintf("no savepoint at %q", p)}, m["errors"], p)
	}

	// The job still runs and takes a savepoint where it may.
	status, _, m := f.do(t, http.MethodPost, base+"/savepoints", fmt.Sprintf(`{"target-directory": %q}`, filepath.Join(root, "ok")))
	require.Equal(t, http.StatusAccepted, status, "%v", m)
}

// TestNodeSavepointRoots: a node's SavepointRoots replace its checkpoint
// directory as the place savepoints may go; the default savepoint
// directory stays one.
func TestNodeSavepointRoots(t *testing.T) {
	dir := t.TempDir()
	ckpts, extra := filepath.Join(dir, "checkpoints"), filepath.Join(dir, "savepoints")
	cfg := DefaultNodeConfig(RoleJobManager | RoleTaskManager)
	cfg.BindAddr, cfg.Registry, cfg.Slots, cfg.SlotRequestTimeout = "127.0.0.1:0", testRegistry(), 2, time.Minute
	cfg.CheckpointDir, cfg.SavepointRoots = ckpts, []string{extra}
	n, err := NewNode(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	defer n.Close()
	d := n.Dispatcher()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	submit := func(savepoint string) JobID {
		id, err := d.SubmitJob(ctx, JobSubmission{Name: "endless", Args: []string{"20ms"}, Parallelism: 1, SavepointPath: savepoint})
		require.NoError(t, err)
		require.Eventually(t, func() bool { _, ok := allRunning(d, id, 0); return ok }, 30*time.Second, 5*time.Millisecond)
		return id
	}
	id := submit("")

	sp := savepointWhenRunning(t, d, id, filepath.Join(extra, "a"), false)
	require.Equal(t, filepath.Join(extra, "a"), filepath.Dir(sp))
	require.Regexp(t, savepointDirRE(id), filepath.Base(sp))
	sp2 := savepointWhenRunning(t, d, id, "", false)
	require.Equal(t, filepath.Join(ckpts, "_savepoints"), filepath.Dir(sp2))

	p := filepath.Join(ckpts, "x")
	_, err = d.TriggerSavepoint(ctx, id, p, false)
	require.ErrorIs(t, err, checkpoint.ErrInvalidName)
	_, err = d.SubmitJob(ctx, JobSubmission{Name: "endless", SavepointPath: p})
	require.ErrorIs(t, err, checkpoint.ErrInvalidName)

	id2 := submit(sp)
	for _, j := range []JobID{id, id2} {
		require.NoError(t, d.CancelJob(ctx, j))
		_, err := d.JobResult(ctx, j)
		require.NoError(t, err)
	}
}
