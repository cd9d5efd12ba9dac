package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flinkgo/flink"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		var d flink.RESTJobDetails
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

// A savepoint, a stop with a savepoint, and a run from that savepoint.
func TestSavepointStopAndRestore(t *testing.T) {
	c, addr := startCluster(t)
	id := runDetached(t, addr, "checkpointed", "-p", "2")
	awaitCheckpoint(t, c, id)

	r := cmd(context.Background(), addr, "savepoint", id, "manual-sp")
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Equal(t, "Savepoint completed. Path: manual-sp\n", r.stdout)
	assert.Contains(t, r.stderr, "Triggering savepoint for job "+id)
	assert.Contains(t, r.stderr, "flink run --fromSavepoint manual-sp")

	// Without a directory the cluster picks one; JSON output has no progress.
	r = cmd(context.Background(), addr, "--output", "json", "savepoint", id)
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Empty(t, r.stderr)
	var sp savepointResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sp), r.stdout)
	assert.Equal(t, id, sp.JobID)
	assert.NotEmpty(t, sp.RequestID)
	assert.NotEmpty(t, sp.Location)
	assert.Empty(t, sp.FailureCause)

	r = cmd(context.Background(), addr, "stop", id, "--savepointPath", "stop-sp")
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Equal(t, "Savepoint completed. Path: stop-sp\nJob "+id+" has been stopped.\n", r.stdout)
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
	// after the savepoint's.
	id2 := runDetached(t, addr, "checkpointed", "-p", "3", "--fromSavepoint", "stop-sp")
	assert.Greater(t, awaitCheckpoint(t, c, id2), spID, "the job started from the savepoint")

	r = cmd(context.Background(), addr, "--output", "json", "stop", "-p", "stop-sp2", id2)
	require.Equal(t, 0, r.code, "%+v", r)
	assert.Empty(t, r.stderr)
	sp = savepointResult{}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sp), r.stdout)
	assert.Equal(t, savepointResult{JobID: id2, RequestID: sp.RequestID, Location: "stop-sp2", State: flink.JobFinished}, sp)
	assert.Equal(t, flink.JobFinished, jobStatus(t, c, id2))

	// A job without the "sums" operator starts from the savepoint only with
	// --allowNonRestoredState.
	r = cmd(context.Background(), addr, "run", "-d", "checkpointed-nosums", "-p", "1", "--fromSavepoint", "stop-sp2")
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Contains(t, r.stderr, "AllowNonRestoredState")
	assert.Contains(t, r.stderr, "(HTTP 400)")
	id3 := runDetached(t, addr, "checkpointed-nosums", "-p", "1", "-s", "stop-sp2", "--allowNonRestoredState")
	awaitCheckpoint(t, c, id3)
	r = cmd(context.Background(), addr, "cancel", id3)
	require.Equal(t, 0, r.code, "%+v", r)

	r = cmd(context.Background(), addr, "run", "checkpointed", "-p", "1", "--fromSavepoint", "no-such-savepoint")
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Contains(t, r.stderr, "no-such-savepoint")
	assert.Contains(t, r.stderr, "(HTTP 400)")
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
