package ha

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/security"
)

// raftTCPCluster is a three-node group over real TCP on loopback, with
// LocalRaftConfig's timeouts: the ones production gets.
type raftTCPCluster struct {
	tb    testing.TB
	nodes []*RaftNode // nil while a node is down
	cfgs  []RaftConfig
}

// newRaftTCPCluster starts three nodes: the first bootstraps a group alone and
// adds the other two with AddVoter.
func newRaftTCPCluster(tb testing.TB) *raftTCPCluster {
	return newRaftTCPClusterTLS(tb, nil)
}

// newRaftTCPClusterTLS is newRaftTCPCluster with node i's transport
// secured by tlsOf(i), if tlsOf is set.
func newRaftTCPClusterTLS(tb testing.TB, tlsOf func(i int) *tls.Config) *raftTCPCluster {
	tb.Helper()
	c := &raftTCPCluster{tb: tb}
	tb.Cleanup(func() {
		for _, n := range c.nodes {
			if n != nil {
				_ = n.Shutdown()
			}
		}
	})
	for i := range 3 {
		cfg := LocalRaftConfig()
		cfg.NodeID = fmt.Sprintf("tcp-%d", i+1)
		cfg.DataDir = tb.TempDir()
		cfg.Fingerprint = testFingerprint
		cfg.Logger = testRaftLogger()
		if tlsOf != nil {
			cfg.TLS = tlsOf(i)
		}
		if i == 0 {
			cfg.Bootstrap = []RaftPeer{{ID: cfg.NodeID}}
		}
		n, err := NewRaftNode(cfg)
		require.NoError(tb, err)
		cfg.BindAddr = n.Addr() // a restart reuses the port the group knows
		cfg.Bootstrap = nil
		c.nodes, c.cfgs = append(c.nodes, n), append(c.cfgs, cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), raftWaitTimeout)
	defer cancel()
	first := c.nodes[0]
	require.Eventually(tb, func() bool { return !first.Token().IsZero() }, raftWaitTimeout, 5*time.Millisecond)
	for _, n := range c.nodes[1:] {
		require.NoError(tb, first.AddVoter(ctx, n.ID(), n.Addr(), testFingerprint))
	}
	return c
}

// leader returns the index of the node that holds a token, or -1.
func (c *raftTCPCluster) leader() int {
	for i, n := range c.nodes {
		if n != nil && !n.Token().IsZero() {
			return i
		}
	}
	return -1
}

// failover shuts the leader down and returns its index, the index of the
// node that takes over and the time from the shutdown's start until that
// node announced its leadership (LeadershipEvent.IsLeader).
func (c *raftTCPCluster) failover() (old, next int, took time.Duration) {
	c.tb.Helper()
	require.Eventually(c.tb, func() bool { old = c.leader(); return old >= 0 }, raftWaitTimeout, time.Millisecond)
	type watch struct {
		i      int
		events <-chan LeadershipEvent
		stop   func()
	}
	var watches []watch
	for i, n := range c.nodes {
		if i != old && n != nil {
			events, stop := n.WatchLeadership()
			defer stop()
			watches = append(watches, watch{i, events, stop})
		}
	}
	start := time.Now()
	require.NoError(c.tb, c.nodes[old].Shutdown())
	c.nodes[old] = nil
	deadline := time.NewTimer(raftWaitTimeout)
	defer deadline.Stop()
	for {
		// Two watchers: select on both without reflection.
		select {
		case ev := <-watches[0].events:
			if ev.IsLeader {
				return old, watches[0].i, time.Since(start)
			}
		case ev := <-watches[1].events:
			if ev.IsLeader {
				return old, watches[1].i, time.Since(start)
			}
		case <-deadline.C:
			c.tb.Fatalf("no new leader within %v of shutting down %s", raftWaitTimeout, c.cfgs[old].NodeID)
			return
		}
	}
}

// restart starts node i again from its data directory, at its address.
func (c *raftTCPCluster) restart(i int) *RaftNode {
	c.tb.Helper()
	n, err := NewRaftNode(c.cfgs[i])
	require.NoError(c.tb, err)
	c.nodes[i] = n
	return n
}

// A leader shut down is replaced by one of the two others over real TCP;
// the job store survives, and the old leader rejoins as a follower.
func TestRaftTCPLeaderFailover(t *testing.T) {
	c := newRaftTCPCluster(t)
	ctx := raftTestContext(t)
	old := c.nodes[c.leader()]
	tok := old.Token()
	require.NoError(t, old.SubmitJob(ctx, tok, testJobSpec("job")))
	cp1 := CheckpointPointer{ID: 1, Location: "file:///chk/job/chk-1"}
	require.NoError(t, old.CommitCheckpoint(ctx, tok, "job", cp1))
	oldIndex, newIndex, took := c.failover()
	require.Equal(t, old.ID(), c.cfgs[oldIndex].NodeID)
	t.Logf("new leader %s after %v", c.nodes[newIndex].ID(), took)
	leader := c.nodes[newIndex]
	newTok := leader.Token()
	require.Greater(t, newTok.Term, tok.Term)
	latest, err := leader.LatestCheckpoint("job")
	require.NoError(t, err)
	require.Equal(t, cp1, latest)
	cp2 := CheckpointPointer{ID: 2, Location: "file:///chk/job/chk-2"}
	require.NoError(t, leader.CommitCheckpoint(ctx, newTok, "job", cp2))
	require.NoError(t, leader.Health(ctx))

	back := c.restart(oldIndex)
	require.Eventually(t, func() bool {
		got, err := back.LatestCheckpoint("job")
		id, _ := back.Leader()
		return err == nil && got == cp2 && id == leader.ID()
	}, raftWaitTimeout, 5*time.Millisecond)
	require.True(t, back.Token().IsZero())
	require.NoError(t, back.Health(ctx))
}

// A group with mutual TLS fails over like one without, and a stranger
// dialing its transport in plaintext or with a certificate of another CA is
// refused while the group keeps working.
func TestRaftTCPWithTLSRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, security.GenerateDevCerts(dir, security.DevCertsConfig{Nodes: []string{"tcp-1", "tcp-2", "tcp-3"}}))
	c := newRaftTCPClusterTLS(t, func(i int) *tls.Config {
		m, err := security.Load(security.FromDir(dir, fmt.Sprintf("tcp-%d", i+1)))
		require.NoError(t, err)
		return m.Internal
	})
	ctx := raftTestContext(t)
	require.Eventually(t, func() bool { return c.leader() >= 0 }, raftWaitTimeout, time.Millisecond)
	leader := c.nodes[c.leader()]

	other := t.TempDir()
	require.NoError(t, security.GenerateDevCerts(other, security.DevCertsConfig{Nodes: []string{"tcp-1"}}))
	stranger, err := security.Load(security.FromDir(other, "tcp-1"))
	require.NoError(t, err)
	lax := stranger.Internal.Clone()
	lax.VerifyConnection = nil
	for name, cfg := range map[string]*tls.Config{"plaintext": nil, "other CA": lax} {
		conn, err := net.Dial("tcp", leader.Addr())
		require.NoError(t, err)
		if cfg != nil {
			conn = tls.Client(conn, cfg)
		}
		// A raft AppendEntries RPC type byte and some garbage.
		conn.Write(append([]byte{0}, make([]byte, 64)...))
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = io.ReadAll(conn)
		conn.Close()
		require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "%s: the transport closes the connection", name)
	}
	require.NoError(t, leader.SubmitJob(ctx, leader.Token(), testJobSpec("job")))
	_, next, took := c.failover()
	t.Logf("with TLS, a new leader after %v", took)
	require.NoError(t, c.nodes[next].Health(ctx))
}

// BenchmarkRaftLeaderFailover measures how long a three-node group over
// loopback TCP, with LocalRaftConfig's (production) timeouts, takes to
// announce a new leader after its leader is shut down. Each iteration kills
// the current leader and restarts it (not timed) as a follower. Run it with
// a fixed count, since each failover takes about a second:
//
//	go test -run '^$' -bench RaftLeaderFailover -benchtime 20x ./ha/
func BenchmarkRaftLeaderFailover(b *testing.B) {
	c := newRaftTCPCluster(b)
	var took []time.Duration
	b.ResetTimer()
	for range b.N {
		old, _, d := c.failover()
		took = append(took, d)
		b.StopTimer()
		n := c.restart(old)
		require.Eventually(b, func() bool { id, _ := n.Leader(); return id != "" }, raftWaitTimeout, time.Millisecond)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2])/float64(time.Millisecond), "median-ms/failover")
	b.ReportMetric(float64(took[len(took)-1])/float64(time.Millisecond), "max-ms/failover")
}
