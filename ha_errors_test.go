package flink

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/rest"
)

// TestHANoLeaderAnswerSaysWhy: a JobManager node of a Raft group whose
// peers are not up answers REST requests with 503 and says what is wrong
// (it knows no leader: an election or no quorum), not "unreachable: <nil>".
func TestHANoLeaderAnswerSaysWhy(t *testing.T) {
	dir := t.TempDir()
	raft := freeAddrs(t, 3)
	cfg := DefaultNodeConfig(RoleJobManager)
	cfg.ID, cfg.BindAddr, cfg.RESTAddr, cfg.Registry = "jm-0", "127.0.0.1:0", freeAddrs(t, 1)[0], testRegistry()
	cfg.HA, cfg.RaftAddr, cfg.RaftDir = true, raft[0], filepath.Join(dir, "raft")
	for i, a := range raft {
		cfg.RaftPeers = append(cfg.RaftPeers, fmt.Sprintf("jm-%d=%s", i, a))
	}
	n, err := NewNode(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, n.Start(ctx))
	defer n.Close()

	resp, err := http.Get("http://" + cfg.RESTAddr + "/jobs")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	var e rest.ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	require.Len(t, e.Errors, 1)
	msg := e.Errors[0]
	t.Logf("503: %s", msg)
	require.NotContains(t, msg, "<nil>")
	require.NotContains(t, msg, "()")
	require.Contains(t, msg, "jm-0 knows no leader")
	require.True(t, strings.Contains(msg, "no raft quorum"), "the Raft health is part of the answer: %s", msg)
}

// TestTaskManagerWithoutHAInHACluster: a TaskManager started without HA
// but pointed at the JobManager nodes of an HA cluster refuses to start and
// says what to set, whether the first address it was given leads or not.
func TestTaskManagerWithoutHAInHACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := startHACluster(t, 3, 0)
	leader := c.leader()
	follower := (leader + 1) % 3
	for name, first := range map[string]int{"leader first": leader, "follower first": follower} {
		addrs := []string{c.rpcAddrs[first]}
		for i, a := range c.rpcAddrs {
			if i != first {
				addrs = append(addrs, a)
			}
		}
		cfg := DefaultNodeConfig(RoleTaskManager)
		cfg.ID, cfg.BindAddr, cfg.Registry, cfg.Slots = "tm-no-ha", "127.0.0.1:0", testRegistry(), 1
		cfg.JobManagerAddr = strings.Join(addrs, ",")
		n, err := NewNode(cfg)
		require.NoError(t, err, name)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = n.Start(ctx)
		cancel()
		n.Close()
		require.ErrorIs(t, err, ErrInvalidConfig, name)
		require.ErrorContains(t, err, "FLINK_HA=true", name)
		require.ErrorContains(t, err, "NodeConfig.HA", name)
		t.Logf("%s: %v", name, err)
	}
}

// TestHALeaderChangeKeepsJobTimesAndRestarts kills the leading JobManager
// process of an HA cluster with a finished and a running job: the new
// leader reports both jobs' original start times, the finished job's end
// time and duration, and counts the takeover, which restarted the running
// job, as a restart.
func TestHALeaderChangeKeepsJobTimesAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := startHACluster(t, 3, 2)
	leader := c.leader()
	done := c.submit(leader, rest.SubmitRequest{Name: "keyed-totals", Args: []string{"1000", t.TempDir()}, Parallelism: 1})
	var finished rest.JobDetails
	require.Eventually(t, func() bool {
		jd, ok := c.restJob(leader, done)
		finished = jd
		return ok && jd.State.IsTerminal()
	}, time.Minute, 10*time.Millisecond, "the bounded job ends")
	require.Equal(t, rest.JobFinished, finished.State)

	running := c.submit(leader, rest.SubmitRequest{Name: "endless", Parallelism: 1})
	var before rest.JobDetails
	require.Eventually(t, func() bool {
		jd, ok := c.restJob(leader, running)
		before = jd
		return ok && jd.AllRunning()
	}, time.Minute, 10*time.Millisecond, "the endless job runs")
	require.Zero(t, before.Restarts)

	require.NoError(t, c.proc(leader).Process.Kill())
	killed := time.Now()
	next := c.leader(leader)
	var after rest.JobDetails
	require.Eventually(t, func() bool {
		jd, ok := c.restJob(next, running)
		after = jd
		return ok && jd.AllRunning()
	}, time.Minute, 10*time.Millisecond, "the new leader runs the endless job")
	require.Equal(t, before.StartTime, after.StartTime, "the running job keeps its start time")
	require.GreaterOrEqual(t, after.Restarts, 1, "the takeover restarted the running job")
	require.GreaterOrEqual(t, after.Duration, killed.UnixMilli()-before.StartTime, "the duration counts from the original start")

	archived, ok := c.restJob(next, done)
	require.True(t, ok)
	require.Equal(t, rest.JobFinished, archived.State)
	require.Equal(t, finished.StartTime, archived.StartTime, "the finished job keeps its start time")
	require.Equal(t, finished.EndTime, archived.EndTime, "the finished job keeps its end time")
	require.Equal(t, finished.Duration, archived.Duration)
	require.Zero(t, archived.Restarts, "the finished job was not restarted")
}
