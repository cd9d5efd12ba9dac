package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// raftWaitTimeout bounds every wait for a condition in the Raft tests. The
// conditions take well under a second; the margin is for -race on a
// loaded machine.
const raftWaitTimeout = 15 * time.Second

// testRaftLogger returns a logger for Raft tests: silent unless
// FLINK_TEST_RAFT_LOG is set, then text to stderr at debug level.
func testRaftLogger() *slog.Logger {
	if os.Getenv("FLINK_TEST_RAFT_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testRaftConfig returns a configuration for in-process nodes: timeouts
// shorter than DefaultRaftConfig's, so that elections take a few hundred
// milliseconds, and snapshots only when a test takes them.
func testRaftConfig(id, dir string, trans raft.Transport) RaftConfig {
	c := LocalRaftConfig()
	c.NodeID = id
	c.DataDir = dir
	c.Transport = trans
	c.Fingerprint = testFingerprint
	c.Logger = testRaftLogger()
	c.HeartbeatTimeout = 200 * time.Millisecond
	c.ElectionTimeout = 200 * time.Millisecond
	c.LeaderLeaseTimeout = 100 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.SnapshotInterval = time.Hour
	c.SnapshotThreshold = 1 << 20
	c.TrailingLogs = 2
	c.LogSegmentSize = 256 << 10
	return c
}

// raftTestCluster is a Raft group in one process, over raft.InmemTransport,
// whose links a test can cut and heal.
type raftTestCluster struct {
	t     *testing.T
	ids   []string
	nodes map[string]*RaftNode // nil while a node is down
	trans map[string]*raft.InmemTransport
	dirs  map[string]string
	// configure, if set, adjusts each node's configuration.
	configure func(*RaftConfig)
}

// newRaftTestCluster starts n nodes "n1".."nN" that bootstrap one group.
func newRaftTestCluster(t *testing.T, n int, configure func(*RaftConfig)) *raftTestCluster {
	t.Helper()
	c := &raftTestCluster{t: t, nodes: map[string]*RaftNode{}, trans: map[string]*raft.InmemTransport{},
		dirs: map[string]string{}, configure: configure}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.ids = append(c.ids, id)
		c.dirs[id] = t.TempDir()
	}
	t.Cleanup(c.shutdownAll)
	for _, id := range c.ids {
		c.start(id, true)
	}
	return c
}

// start starts node id on a new transport linked to every other node.
func (c *raftTestCluster) start(id string, bootstrap bool) *RaftNode {
	c.t.Helper()
	_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
	c.trans[id] = tr
	for _, other := range c.ids {
		if other != id && c.trans[other] != nil {
			c.link(id, other)
		}
	}
	cfg := testRaftConfig(id, c.dirs[id], tr)
	if bootstrap {
		for _, p := range c.ids {
			cfg.Bootstrap = append(cfg.Bootstrap, RaftPeer{ID: p, Addr: p})
		}
	}
	if c.configure != nil {
		c.configure(&cfg)
	}
	n, err := NewRaftNode(cfg)
	require.NoError(c.t, err)
	c.nodes[id] = n
	return n
}

// link connects a and b both ways.
func (c *raftTestCluster) link(a, b string) {
	c.trans[a].Connect(raft.ServerAddress(b), c.trans[b])
	c.trans[b].Connect(raft.ServerAddress(a), c.trans[a])
}

// isolate cuts every link of id, both ways.
func (c *raftTestCluster) isolate(id string) {
	c.trans[id].DisconnectAll()
	for _, other := range c.ids {
		if other != id {
			c.trans[other].Disconnect(raft.ServerAddress(id))
		}
	}
}

// heal restores every link of id.
func (c *raftTestCluster) heal(id string) {
	for _, other := range c.ids {
		if other != id {
			c.link(id, other)
		}
	}
}

// stop shuts node id down.
func (c *raftTestCluster) stop(id string) {
	c.t.Helper()
	require.NoError(c.t, c.nodes[id].Shutdown())
	c.nodes[id] = nil
}

func (c *raftTestCluster) shutdownAll() {
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil {
			if err := n.Shutdown(); err != nil {
				c.t.Errorf("shutdown %s: %v", id, err)
			}
		}
	}
}

// others returns the ids other than id.
func (c *raftTestCluster) others(id string) []string {
	return slices.DeleteFunc(slices.Clone(c.ids), func(s string) bool { return s == id })
}

// waitLeader waits until one of ids (all nodes if none given) holds a
// fencing token and the others among ids follow it, and returns it.
func (c *raftTestCluster) waitLeader(ids ...string) *RaftNode {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.ids
	}
	var leader *RaftNode
	require.Eventually(c.t, func() bool {
		leader = nil
		for _, id := range ids {
			if n := c.nodes[id]; n != nil && !n.Token().IsZero() {
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, id := range ids {
			if n := c.nodes[id]; n != nil {
				if lid, _ := n.Leader(); lid != leader.ID() {
					return false
				}
			}
		}
		return true
	}, raftWaitTimeout, 5*time.Millisecond, "no leader among %v", ids)
	return leader
}

// waitSameJobs waits until every running node among ids holds want.
func (c *raftTestCluster) waitSameJobs(want []JobRecord, ids ...string) {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.ids
	}
	for _, id := range ids {
		n := c.nodes[id]
		if n == nil {
			continue
		}
		require.Eventually(c.t, func() bool { return slices.EqualFunc(n.Jobs(), want, jobRecordsEqual) },
			raftWaitTimeout, 5*time.Millisecond, "node %s: jobs %+v, want %+v", id, n.Jobs(), want)
	}
}

func jobRecordsEqual(a, b JobRecord) bool {
	return a.ID == b.ID && a.Name == b.Name && slices.Equal(a.Args, b.Args) && string(a.Config) == string(b.Config) &&
		a.Status == b.Status && a.Latest == b.Latest && a.CheckpointCounter == b.CheckpointCounter && a.Revision == b.Revision
}

// waitLeadershipEvent receives from events until match accepts an event.
func waitLeadershipEvent(t *testing.T, events <-chan LeadershipEvent, match func(LeadershipEvent) bool) LeadershipEvent {
	t.Helper()
	deadline := time.NewTimer(raftWaitTimeout)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "events closed")
			if match(ev) {
				return ev
			}
		case <-deadline.C:
			t.Fatalf("no matching leadership event within %v", raftWaitTimeout)
		}
	}
}

func raftTestContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), raftWaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// applyUnchecked appends c through n's raft without RaftNode's token
// check, as a proposer racing a leadership change would, and returns the
// job store's verdict.
func applyUnchecked(t *testing.T, n *RaftNode, c command) error {
	t.Helper()
	data, err := encodeCommand(&c)
	require.NoError(t, err)
	f := n.raft.Apply(data, 0)
	require.NoError(t, f.Error())
	return f.Response().(applyResult).err
}

func TestRaftElectsLeaderAndReplicatesJobStore(t *testing.T) {
	c := newRaftTestCluster(t, 3, nil)
	ctx := raftTestContext(t)
	leader := c.waitLeader()
	tok := leader.Token()
	require.Equal(t, leader.ID(), tok.Leader)

	events, stop := leader.WatchLeadership()
	defer stop()
	ev := <-events
	require.True(t, ev.IsLeader)
	require.Equal(t, tok, ev.Token)
	require.Equal(t, leader.ID(), ev.LeaderID)

	require.NoError(t, leader.SubmitJob(ctx, tok, testJobSpec("job-1")))
	require.NoError(t, leader.SubmitJob(ctx, tok, JobSpec{ID: "job-2", Name: "sessions", Status: "CREATED"}))
	require.ErrorIs(t, leader.SubmitJob(ctx, tok, testJobSpec("job-1")), ErrJobExists)
	require.ErrorIs(t, leader.SubmitJob(ctx, tok, JobSpec{ID: "job-3"}), ErrInvalidJob)
	require.NoError(t, leader.UpdateJobStatus(ctx, tok, "job-1", "RUNNING"))
	require.ErrorIs(t, leader.UpdateJobStatus(ctx, tok, "nope", "RUNNING"), ErrUnknownJob)
	id, err := leader.NextCheckpointID(ctx, tok, "job-1")
	require.NoError(t, err)
	require.Equal(t, int64(1), id)
	cp := CheckpointPointer{ID: id, Location: "file:///chk/job-1/chk-1"}
	require.NoError(t, leader.CommitCheckpoint(ctx, tok, "job-1", cp))
	require.ErrorIs(t, leader.CommitCheckpoint(ctx, tok, "job-1", cp), ErrCheckpointNotNewer)
	require.NoError(t, leader.RemoveJob(ctx, tok, "job-2"))
	latest, err := leader.LatestCheckpoint("job-1")
	require.NoError(t, err)
	require.Equal(t, cp, latest)
	_, err = leader.LatestCheckpoint("job-2")
	require.ErrorIs(t, err, ErrUnknownJob)

	want := leader.Jobs()
	require.Len(t, want, 1)
	c.waitSameJobs(want)

	for _, id := range c.others(leader.ID()) {
		f := c.nodes[id]
		require.True(t, f.Token().IsZero())
		require.False(t, f.IsLeader())
		err := f.SubmitJob(ctx, tok, testJobSpec("job-9"))
		require.ErrorIs(t, err, ErrNotLeader)
		require.Contains(t, err.Error(), fmt.Sprintf("the leader is %q", leader.ID()))
		require.ErrorIs(t, f.VerifyLeader(ctx), ErrNotLeader)
		require.NoError(t, f.Health(ctx))
		st := f.Status()
		require.Equal(t, "Follower", st.State)
		require.Equal(t, leader.ID(), st.LeaderID)
		require.Equal(t, 3, st.Voters)
	}
	require.NoError(t, leader.VerifyLeader(ctx))
	require.NoError(t, leader.Health(ctx))
	st := leader.Status()
	require.Equal(t, "Leader", st.State)
	require.Equal(t, tok, st.Token)
	require.Equal(t, tok.Term, st.Term)
	peers, err := leader.Peers()
	require.NoError(t, err)
	require.Equal(t, []RaftPeer{{"n1", "n1"}, {"n2", "n2"}, {"n3", "n3"}}, peers)
}

// An old leader's token is rejected once another term has begun: by the
// node's check before proposing, and by the job store itself for a
// command that slips through, even when the old leader leads again.
func TestRaftRejectsStaleToken(t *testing.T) {
	c := newRaftTestCluster(t, 3, nil)
	ctx := raftTestContext(t)
	first := c.waitLeader()
	oldTok := first.Token()
	require.NoError(t, first.SubmitJob(ctx, oldTok, testJobSpec("job")))

	require.NoError(t, first.TransferLeadership(ctx))
	second := c.waitLeader()
	require.NotEqual(t, first.ID(), second.ID())
	newTok := second.Token()
	require.Greater(t, newTok.Term, oldTok.Term)

	cp := CheckpointPointer{ID: 1, Location: "file:///chk/job/chk-1"}
	require.ErrorIs(t, first.CommitCheckpoint(ctx, oldTok, "job", cp), ErrNotLeader)
	err := second.CommitCheckpoint(ctx, oldTok, "job", cp)
	require.ErrorIs(t, err, ErrStaleToken)
	err = applyUnchecked(t, second, command{Type: cmdCommitCheckpoint, Token: oldTok, Job: "job", Checkpoint: cp})
	require.ErrorIs(t, err, ErrStaleToken)
	require.Contains(t, err.Error(), fmt.Sprintf("appended in term %d", newTok.Term))

	// The first leader leads again, in a later term: its old token is
	// still stale.
	require.NoError(t, second.raft.LeadershipTransferToServer(raft.ServerID(first.ID()), raft.ServerAddress(first.Addr())).Error())
	again := c.waitLeader()
	require.Equal(t, first.ID(), again.ID())
	require.Greater(t, again.Token().Term, newTok.Term)
	require.ErrorIs(t, first.CommitCheckpoint(ctx, oldTok, "job", cp), ErrStaleToken)
	err = applyUnchecked(t, first, command{Type: cmdCommitCheckpoint, Token: oldTok, Job: "job", Checkpoint: cp})
	require.ErrorIs(t, err, ErrStaleToken)

	for _, id := range c.ids {
		got, err := c.nodes[id].LatestCheckpoint("job")
		require.NoError(t, err)
		require.True(t, got.IsZero(), "node %s committed a checkpoint with a stale token", id)
	}
	require.NoError(t, first.CommitCheckpoint(ctx, first.Token(), "job", cp))
}

// A leader cut off from the others cannot commit a checkpoint, loses
// leadership, and after the partition heals follows the new leader, whose
// checkpoints it then holds.
func TestRaftPartitionedLeaderCannotCommit(t *testing.T) {
	c := newRaftTestCluster(t, 3, nil)
	ctx := raftTestContext(t)
	old := c.waitLeader()
	oldTok := old.Token()
	require.NoError(t, old.SubmitJob(ctx, oldTok, testJobSpec("job")))
	cp1 := CheckpointPointer{ID: 1, Location: "file:///chk/job/chk-1"}
	require.NoError(t, old.CommitCheckpoint(ctx, oldTok, "job", cp1))
	events, stop := old.WatchLeadership()
	defer stop()

	c.isolate(old.ID())
	cp2 := CheckpointPointer{ID: 2, Location: "file:///chk/job/chk-2"}
	commitCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err := old.CommitCheckpoint(commitCtx, oldTok, "job", cp2)
	cancel()
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrNotLeader), "got %v", err)
	t.Logf("the cut-off leader's commit: %v", err)

	waitLeadershipEvent(t, events, func(ev LeadershipEvent) bool { return !ev.IsLeader }) // the loss is announced
	require.Eventually(t, func() bool { return errors.Is(old.Health(ctx), ErrNoQuorum) }, raftWaitTimeout, 10*time.Millisecond)
	require.True(t, old.Token().IsZero())

	others := c.others(old.ID())
	leader := c.waitLeader(others...)
	tok := leader.Token()
	require.Greater(t, tok.Term, oldTok.Term)
	require.NoError(t, leader.Health(ctx))
	require.ErrorIs(t, leader.CommitCheckpoint(ctx, oldTok, "job", cp2), ErrStaleToken)
	cp3 := CheckpointPointer{ID: 3, Location: "file:///chk/job/chk-3"}
	require.NoError(t, leader.CommitCheckpoint(ctx, tok, "job", cp3))
	latest, err := old.LatestCheckpoint("job")
	require.NoError(t, err)
	require.Equal(t, cp1, latest, "the cut-off node committed nothing")

	c.heal(old.ID())
	c.waitSameJobs(c.waitLeader().Jobs())
	for _, id := range c.ids {
		got, err := c.nodes[id].LatestCheckpoint("job")
		require.NoError(t, err)
		require.Equal(t, cp3, got, "node %s", id)
	}
	require.NotEqual(t, oldTok, old.Token(), "a lost leadership never comes back")
	require.NoError(t, old.Health(ctx))
}

// Snapshots are taken and restored: a node restarted from disk, cut off
// from the others, has the state of its snapshot; rejoined, it catches up
// from the leader's snapshot, its own log having fallen behind the
// leader's compacted log.
func TestRaftSnapshotRestart(t *testing.T) {
	c := newRaftTestCluster(t, 3, nil)
	ctx := raftTestContext(t)
	leader := c.waitLeader()
	tok := leader.Token()
	for i := range 5 {
		id := fmt.Sprintf("job-%d", i)
		require.NoError(t, leader.SubmitJob(ctx, tok, testJobSpec(id)))
		require.NoError(t, leader.CommitCheckpoint(ctx, tok, id, CheckpointPointer{ID: int64(i + 1), Location: "loc-" + id}))
	}
	before := leader.Jobs()
	c.waitSameJobs(before)

	follower := c.others(leader.ID())[0]
	require.NoError(t, c.nodes[follower].Snapshot(ctx))
	c.stop(follower)

	for i := 5; i < 10; i++ {
		require.NoError(t, leader.SubmitJob(ctx, tok, testJobSpec(fmt.Sprintf("job-%d", i))))
	}
	require.NoError(t, leader.Snapshot(ctx)) // compacts the log past the stopped node's end
	after := leader.Jobs()
	leaderSnap := leader.raft.Stats()["last_snapshot_index"]

	// Restarted with no links, it can only have its own snapshot.
	_, tr := raft.NewInmemTransport(raft.ServerAddress(follower))
	c.trans[follower] = tr
	n, err := NewRaftNode(testRaftConfig(follower, c.dirs[follower], tr))
	require.NoError(t, err)
	c.nodes[follower] = n
	require.True(t, slices.EqualFunc(before, n.Jobs(), jobRecordsEqual), "restored %+v, want %+v", n.Jobs(), before)

	c.heal(follower)
	c.waitSameJobs(after)
	want, err := strconv.ParseUint(leaderSnap, 10, 64)
	require.NoError(t, err)
	require.Eventually(t, func() bool { // raft records the install just after the restore
		snap, err := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
		return err == nil && snap >= want
	}, raftWaitTimeout, 5*time.Millisecond, "caught up by installing the leader's snapshot")
}

// A node with a different job registry fingerprint is not added to the
// group; a compatible one is, and receives the job store.
func TestRaftAddVoterChecksFingerprint(t *testing.T) {
	c := newRaftTestCluster(t, 1, nil)
	ctx := raftTestContext(t)
	leader := c.waitLeader()
	tok := leader.Token()
	require.NoError(t, leader.SubmitJob(ctx, tok, testJobSpec("job")))

	// n2 and n3 start without bootstrapping: they wait to be added.
	c.ids = append(c.ids, "n2", "n3")
	c.dirs["n2"], c.dirs["n3"] = t.TempDir(), t.TempDir()
	other := c.start("n2", false)
	compatible := c.start("n3", false)

	err := leader.AddVoter(ctx, other.ID(), other.Addr(), "fp-another-build")
	require.ErrorIs(t, err, ErrIncompatibleBinary)
	require.Contains(t, err.Error(), "fp-another-build")
	require.Contains(t, err.Error(), testFingerprint)
	peers, err := leader.Peers()
	require.NoError(t, err)
	require.Equal(t, []RaftPeer{{"n1", "n1"}}, peers)

	require.ErrorIs(t, compatible.AddVoter(ctx, other.ID(), other.Addr(), testFingerprint), ErrNotLeader)
	require.NoError(t, leader.AddVoter(ctx, compatible.ID(), compatible.Addr(), testFingerprint))
	peers, err = leader.Peers()
	require.NoError(t, err)
	require.Equal(t, []RaftPeer{{"n1", "n1"}, {"n3", "n3"}}, peers)
	c.waitSameJobs(leader.Jobs(), "n3")
	require.Empty(t, other.Jobs())

	require.NoError(t, leader.RemoveServer(ctx, "n3"))
	peers, err = leader.Peers()
	require.NoError(t, err)
	require.Equal(t, []RaftPeer{{"n1", "n1"}}, peers)
}

func TestRaftShutdown(t *testing.T) {
	c := newRaftTestCluster(t, 1, nil)
	ctx := raftTestContext(t)
	n := c.waitLeader()
	events, stop := n.WatchLeadership()
	defer stop()
	require.NoError(t, n.Shutdown())
	require.NoError(t, n.Shutdown(), "idempotent")
	c.nodes["n1"] = nil

	var last LeadershipEvent
	for ev := range events { // closed after a last event
		last = ev
	}
	require.Equal(t, LeadershipEvent{}, last)
	closed, stop2 := n.WatchLeadership()
	stop2()
	<-closed

	require.ErrorIs(t, n.SubmitJob(ctx, FencingToken{Term: 1, Leader: "n1"}, testJobSpec("job")), ErrRaftClosed)
	require.ErrorIs(t, n.VerifyLeader(ctx), ErrRaftClosed)
	require.ErrorIs(t, n.Health(ctx), ErrRaftClosed)
	require.ErrorIs(t, n.AddVoter(ctx, "x", "x", testFingerprint), ErrRaftClosed)
	require.True(t, n.Token().IsZero())
	require.Equal(t, "Shutdown", n.Status().State)
}

func TestRaftConfigValidate(t *testing.T) {
	valid := func() RaftConfig {
		c := DefaultRaftConfig()
		c.NodeID = "jm-0"
		c.DataDir = "/var/lib/flink"
		c.AdvertiseAddr = "jm-0.jobmanager:7947"
		return c
	}
	require.NoError(t, func() error { c := valid(); return c.Validate() }())
	tests := []struct {
		name   string
		modify func(*RaftConfig)
		want   string
	}{
		{"no id", func(c *RaftConfig) { c.NodeID = "" }, "empty NodeID"},
		{"no data dir", func(c *RaftConfig) { c.DataDir = "" }, "empty DataDir"},
		{"bad bind", func(c *RaftConfig) { c.BindAddr = "localhost:7947" }, "expected ip:port"},
		{"unadvertisable", func(c *RaftConfig) { c.AdvertiseAddr = "" }, "set AdvertiseAddr"},
		{"advertise port 0", func(c *RaftConfig) { c.AdvertiseAddr = "10.0.0.1:0" }, "expected 1..65535"},
		{"bootstrap without self", func(c *RaftConfig) { c.Bootstrap = []RaftPeer{{"jm-1", "10.0.0.2:7947"}} }, "not this node"},
		{"bootstrap duplicate id", func(c *RaftConfig) { c.Bootstrap = []RaftPeer{{"jm-0", ""}, {"jm-0", "10.0.0.2:7947"}} }, "duplicate ID"},
		{"bootstrap duplicate addr", func(c *RaftConfig) {
			c.Bootstrap = []RaftPeer{{"jm-0", "10.0.0.2:7947"}, {"jm-1", "10.0.0.2:7947"}}
		}, "share Addr"},
		{"bootstrap peer without addr", func(c *RaftConfig) { c.Bootstrap = []RaftPeer{{"jm-0", ""}, {"jm-1", ""}} }, "empty Addr"},
		{"heartbeat too low", func(c *RaftConfig) { c.HeartbeatTimeout = time.Millisecond }, "HeartbeatTimeout"},
		{"election below heartbeat", func(c *RaftConfig) { c.ElectionTimeout = 100 * time.Millisecond }, "ElectionTimeout = 100ms"},
		{"lease above heartbeat", func(c *RaftConfig) { c.LeaderLeaseTimeout = 2 * time.Second }, "LeaderLeaseTimeout = 2s"},
		{"no retain", func(c *RaftConfig) { c.SnapshotRetain = 0 }, "SnapshotRetain"},
		{"tiny segments", func(c *RaftConfig) { c.LogSegmentSize = 1024 }, "LogSegmentSize"},
		{"no pool", func(c *RaftConfig) { c.MaxPool = 0 }, "MaxPool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			err := c.Validate()
			require.ErrorIs(t, err, ErrInvalidRaftConfig)
			require.Contains(t, err.Error(), tt.want)
			_, err = NewRaftNode(c)
			require.ErrorIs(t, err, ErrInvalidRaftConfig)
		})
	}
	// With an injected transport, addresses are the transport's business.
	c := valid()
	c.BindAddr, c.AdvertiseAddr = "", ""
	_, c.Transport = raft.NewInmemTransport("a")
	c.Bootstrap = []RaftPeer{{"jm-0", "a"}, {"jm-1", "b"}}
	require.NoError(t, c.Validate())
}

// TestDefaultRaftTimeoutsTolerateStalls: the default timeouts ride out a
// CPU stall of a second or more on every node (a leader's lease is as
// long as its followers' patience, so a stalled leader does not step down
// while they still follow it), pre-vote is on, and a lost leader is still
// noticed within 3 s, which leaves the election and the jobs' restart
// within the 5 s target.
func TestDefaultRaftTimeoutsTolerateStalls(t *testing.T) {
	for name, c := range map[string]RaftConfig{"default": DefaultRaftConfig(), "local": LocalRaftConfig()} {
		require.GreaterOrEqual(t, c.HeartbeatTimeout, time.Second, name)
		require.Equal(t, c.HeartbeatTimeout, c.LeaderLeaseTimeout, name)
		require.GreaterOrEqual(t, c.ElectionTimeout, c.HeartbeatTimeout, name)
		require.LessOrEqual(t, 2*c.HeartbeatTimeout, 3*time.Second, name)
		c.NodeID = "jm-0"
		rc := c.raftConfig()
		require.False(t, rc.PreVoteDisabled, name)
		require.Equal(t, c.LeaderLeaseTimeout, rc.LeaderLeaseTimeout, name)
	}
}
