package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/rest"
)

// runDetached submits a job and returns its id.
func runDetached(t *testing.T, addr string, args ...string) string {
	t.Helper()
	r := cmd(context.Background(), addr, append([]string{"run", "-d"}, args...)...)
	require.Equal(t, 0, r.code, "%+v", r)
	id := jobIDRE.FindString(r.stdout)
	require.NotEmpty(t, id, r.stdout)
	return id
}

// awaitCheckpoint waits until job id completed a checkpoint, and returns
// the id of the first it completed.
func awaitCheckpoint(t *testing.T, c *flink.LocalCluster, id string) int64 {
	t.Helper()
	var first int64
	require.Eventually(t, func() bool {
		st, ok, err := c.Dispatcher().CheckpointStats(flink.JobID(id))
		require.NoError(t, err)
		require.True(t, ok, "the cluster keeps checkpoints")
		for _, h := range st.History {
			if h.Status.String() == "COMPLETED" && (first == 0 || h.ID < first) {
				first = h.ID
			}
		}
		return st.Counts.Completed > 0
	}, 30*time.Second, 5*time.Millisecond)
	return first
}

// awaitAllRunning waits until every subtask of job id runs.
func awaitAllRunning(t *testing.T, addr, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		r := cmd(context.Background(), addr, "--output", "json", "info", id)
		var d rest.JobDetails
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &d) != nil {
			return false
		}
		var total int64
		for _, n := range d.StatusCounts {
			total += n
		}
		return total > 0 && d.StatusCounts["RUNNING"] == total
	}, 30*time.Second, 5*time.Millisecond)
}

func jobStatus(t *testing.T, c *flink.LocalCluster, id string) flink.JobStatus {
	t.Helper()
	res, err := c.Dispatcher().JobResult(context.Background(), flink.JobID(id))
	require.NoError(t, err)
	return res.Status
}

// freshLocation matches the location of a savepoint of job id in target
// of the cluster's (in-memory) storage.
func freshLocation(id, target string) *regexp.Regexp {
	return regexp.MustCompile(`^mem://_savepoints/` + regexp.QuoteMeta(target) + `savepoint-` + id[:6] + `-[0-9a-f]{12}$`)
}

// A savepoint, a stop with a savepoint, and a run from that savepoint.
// Each savepoint goes into a fresh directory inside its target, and the
// CLI prints that directory.
func TestSavepointStopAndRestore(t *testing.T) {
	c, addr := startCluster(t)
	id := runDetached(t, addr, "checkpointed", "-p", "2")
	awaitCheckpoint(t, c, id)

	r := cmd(context.Background(), addr, "savepoint", id, "manual-sp")
	require.Equal(t, 0, r.code, "%+v", r)
	manual, ok := strings.CutPrefix(strings.TrimSuffix(r.stdout, "\n"), "Savepoint completed. Path: ")
	require.True(t, ok, r.stdout)
	assert.Regexp(t, freshLocation(id, "manual-sp/"), manual)
	assert.Contains(t, r.stderr, "Triggering savepoint for job "+id)
	assert.Contains(t, r.stderr, "flink run --fromSavepoint "+manual+" ")

	// Without a directory the cluster picks one; JSON output has no progress.
	r = cmd(context.Background(), addr, "--output", "json", "savepoint", id)
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Empty(t, r.stderr)
	var sp savepointResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sp), r.stdout)
	assert.Equal(t, id, sp.JobID)
	assert.NotEmpty(t, sp.RequestID)
	assert.Regexp(t, freshLocation(id, ""), sp.Location)
	assert.Empty(t, sp.FailureCause)

	// A second savepoint into the same target gets a directory of its own.
	r = cmd(context.Background(), addr, "savepoint", id, "manual-sp")
	require.Equal(t, 0, r.code, "%+v", r)
	manual2, _ := strings.CutPrefix(strings.TrimSuffix(r.stdout, "\n"), "Savepoint completed. Path: ")
	assert.Regexp(t, freshLocation(id, "manual-sp/"), manual2)
	assert.NotEqual(t, manual, manual2)

	r = cmd(context.Background(), addr, "stop", id, "--savepointPath", "stop-sp")
	require.Equal(t, 0, r.code, "%+v", r)
	lines := strings.Split(r.stdout, "\n")
	require.Len(t, lines, 3, r.stdout)
	stopped, ok := strings.CutPrefix(lines[0], "Savepoint completed. Path: ")
	require.True(t, ok, r.stdout)
	assert.Regexp(t, freshLocation(id, "stop-sp/"), stopped)
	assert.Equal(t, "Job "+id+" has been stopped.", lines[1])
	assert.Contains(t, r.stderr, "Suspending job "+id)
	assert.Equal(t, flink.JobFinished, jobStatus(t, c, id))
	st, _, err := c.Dispatcher().CheckpointStats(flink.JobID(id))
	require.NoError(t, err)
	require.NotNil(t, st.LatestSavepoint)
	spID := st.LatestSavepoint.ID

	// A stopped job takes no more savepoints: the server refuses (409).
	r = cmd(context.Background(), addr, "savepoint", id)
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Contains(t, r.stderr, "(HTTP 409)")
	assert.Empty(t, r.stdout)

	// From the savepoint, at another parallelism: checkpoint ids go on
	// after the savepoint's. The target is no savepoint.
	r = cmd(context.Background(), addr, "run", "-d", "checkpointed", "--fromSavepoint", "stop-sp")
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Contains(t, r.stderr, `no savepoint at "stop-sp" (HTTP 400)`)
	id2 := runDetached(t, addr, "checkpointed", "-p", "3", "--fromSavepoint", stopped)
	assert.Greater(t, awaitCheckpoint(t, c, id2), spID, "the job started from the savepoint")

	r = cmd(context.Background(), addr, "--output", "json", "stop", "-p", "stop-sp2", id2)
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Empty(t, r.stderr)
	sp = savepointResult{}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sp), r.stdout)
	assert.Regexp(t, freshLocation(id2, "stop-sp2/"), sp.Location)
	assert.Equal(t, savepointResult{JobID: id2, RequestID: sp.RequestID, Location: sp.Location, State: rest.JobFinished}, sp)
	assert.Equal(t, flink.JobFinished, jobStatus(t, c, id2))
	stopped2 := sp.Location

	// A job without the "sums" operator starts from the savepoint only with
	// --allowNonRestoredState.
	r = cmd(context.Background(), addr, "run", "-d", "checkpointed-nosums", "-p", "1", "--fromSavepoint", stopped2)
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Contains(t, r.stderr, "AllowNonRestoredState")
	assert.Contains(t, r.stderr, "(HTTP 400)")
	id3 := runDetached(t, addr, "checkpointed-nosums", "-p", "1", "-s", stopped2, "--allowNonRestoredState")
	awaitCheckpoint(t, c, id3)
	r = cmd(context.Background(), addr, "cancel", id3)
	require.Equal(t, 0, r.code, "%+v", r)

	r = cmd(context.Background(), addr, "run", "checkpointed", "-p", "1", "--fromSavepoint", "no-such-savepoint")
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Contains(t, r.stderr, `no savepoint at "no-such-savepoint" (HTTP 400)`)
}

// Savepoint targets and paths outside the cluster's savepoint roots are
// refused (HTTP 400) with a message that says the same whether the path
// exists or not; nothing is written.
func TestSavepointOutsideRoots(t *testing.T) {
	c, addr := startCluster(t)
	id := runDetached(t, addr, "checkpointed", "-p", "1")
	awaitCheckpoint(t, c, id)
	for _, p := range []string{"/etc", "/etc/passwd", "/nonexistent", "../..", "/tmp/x/../../etc"} {
		want := fmt.Sprintf("savepoint path %q is not a clean path inside the allowed savepoint directories (HTTP 400)", p)
		r := cmd(context.Background(), addr, "savepoint", id, p)
		assert.Equal(t, 1, r.code, "%+v", r)
		assert.Contains(t, r.stderr, "invalid savepoint target: "+want)
		assert.Empty(t, r.stdout)
		r = cmd(context.Background(), addr, "stop", id, "-p", p)
		assert.Equal(t, 1, r.code, "%+v", r)
		assert.Contains(t, r.stderr, "invalid savepoint target: "+want)
		r = cmd(context.Background(), addr, "run", "-d", "checkpointed", "-s", p)
		assert.Equal(t, 1, r.code, "%+v", r)
		assert.Contains(t, r.stderr, "invalid savepoint path: "+want)
	}
	jd, err := c.Dispatcher().JobDetails(context.Background(), flink.JobID(id))
	require.NoError(t, err)
	assert.Equal(t, flink.JobRunning, jd.Status, "the job runs on")
	r := cmd(context.Background(), addr, "cancel", id)
	require.Equal(t, 0, r.code, "%+v", r)
}

// A savepoint that cannot complete: progress while waiting, then its
// failure cause and exit status 1; the job keeps running.
func TestSavepointFailure(t *testing.T) {
	c, addr := startCluster(t)
	id := runDetached(t, addr, "stuck", "-p", "1")
	awaitAllRunning(t, addr, id)

	r := cmd(context.Background(), addr, "savepoint", id)
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Empty(t, r.stdout)
	assert.Regexp(t, `waiting for savepoint of job `+id+` \.\.\. \d+ms\n`, r.stderr)
	assert.Contains(t, r.stderr, "flink: savepoint of job "+id+" failed: savepoint ")
	assert.Contains(t, r.stderr, "expired")

	r = cmd(context.Background(), addr, "--output", "json", "stop", id)
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.NotContains(t, r.stderr, "waiting")
	var sp savepointResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sp), r.stdout)
	assert.Equal(t, id, sp.JobID)
	assert.NotEmpty(t, sp.FailureCause)
	assert.Empty(t, sp.Location)
	assert.Contains(t, sp.FailureCause, "expired")
	assert.Contains(t, r.stderr, "flink: savepoint of job "+id+" failed: "+strings.TrimPrefix(sp.FailureCause, "flink: "))

	jobs, err := c.Dispatcher().ListJobs(context.Background())
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, flink.JobRunning, jobs[0].Status, "a failed stop leaves the job running")
	r = cmd(context.Background(), addr, "cancel", id)
	require.Equal(t, 0, r.code, "%+v", r)
}

// Interrupting a wait for a savepoint exits 1 and says the savepoint goes on.
func TestSavepointInterrupted(t *testing.T) {
	_, addr := startCluster(t)
	id := runDetached(t, addr, "stuck", "-p", "1", "1m")
	awaitAllRunning(t, addr, id)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		cl := newCLI(&bytes.Buffer{}, &stderr, func(string) string { return "" })
		cl.poll, cl.progressEvery = 5*time.Millisecond, 20*time.Millisecond
		done <- cl.main(ctx, []string{"--addr", addr, "savepoint", id})
	}()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "waiting for savepoint") }, 10*time.Second, 5*time.Millisecond)
	cancel()
	assert.Equal(t, 1, <-done)
	assert.Contains(t, stderr.String(), "stopped waiting for the savepoint of job "+id+"; it goes on (request id ")
	r := cmd(context.Background(), addr, "cancel", id)
	require.Equal(t, 0, r.code, "%+v", r)
}
