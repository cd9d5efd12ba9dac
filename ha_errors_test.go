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
	var e RESTError
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
