package flink

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/ha"
	"github.com/flinkgo/flink/internal/rpc"
	"github.com/flinkgo/flink/rest"
	"github.com/flinkgo/flink/security"
)

// haCluster is a cluster of separate processes in HA mode: JobManager
// nodes forming a Raft group and TaskManager nodes following the leader.
type haCluster struct {
	t        testing.TB
	dir      string
	ckpts    string
	rpcAddrs []string
	rest     []string
	ids      []string
	mu       sync.Mutex
	procs    map[string]*exec.Cmd
	cfgs     map[string]childConfig
	clients  map[string]*rpc.Client
	// With security on: the REST scheme, an HTTP client with the CA and
	// the REST token, and the CLI certificate's material for RPC.
	scheme string
	http   *http.Client
	sec    *security.Material
}

// freeAddrs returns n loopback addresses with free ports, for servers that
// must know each other's addresses before they start (gossip seeds, Raft
// peers). The ports are released before use, so another process could take
// one meanwhile. To make that rare they are picked at random below Linux's
// ephemeral range (32768-60999), where the kernel never hands out ports
// for outgoing connections or for listeners on port 0, and must be free
// for TCP and UDP both (memberlist uses both).
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	taken := make(map[int]bool)
	for tries := 0; len(out) < n; tries++ {
		require.Less(t, tries, 10_000, "no free ports")
		port := 20_000 + rand.IntN(12_000)
		if taken[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		taken[port] = true
		out = append(out, addr)
	}
	return out
}

// startHACluster starts jms JobManager node processes and tms one-slot
// TaskManager node processes, all in HA mode with a shared checkpoint
// directory.
func startHACluster(t testing.TB, jms, tms int) *haCluster {
	return startHAClusterSecured(t, jms, tms, false)
}

// startHAClusterSecured is startHACluster, with every node's security on
// when secure is set (certificates from one development CA).
func startHAClusterSecured(t testing.TB, jms, tms int, secure bool) *haCluster {
	t.Helper()
	c := &haCluster{t: t, dir: t.TempDir(), procs: map[string]*exec.Cmd{}, cfgs: map[string]childConfig{}, clients: map[string]*rpc.Client{},
		scheme: "http", http: &http.Client{Timeout: 2 * time.Second}}
	secDir := ""
	if secure {
		secDir = filepath.Join(c.dir, "security")
		var nodes []string
		for i := range jms {
			nodes = append(nodes, fmt.Sprintf("jm-%d", i))
		}
		for i := range tms {
			nodes = append(nodes, fmt.Sprintf("tm-%d", i))
		}
		require.NoError(t, security.GenerateDevCerts(secDir, security.DevCertsConfig{Nodes: nodes}))
		var err error
		c.sec, err = security.Load(security.FromDir(secDir, "client"))
		require.NoError(t, err)
		c.scheme, c.http = "https", restClient(t, secDir)
	}
	c.ckpts = filepath.Join(c.dir, "checkpoints")
	c.rpcAddrs, c.rest = freeAddrs(t, jms), freeAddrs(t, jms)
	raftAddrs := freeAddrs(t, jms)
	var peers []string
	for i := range jms {
		c.ids = append(c.ids, fmt.Sprintf("jm-%d", i))
		peers = append(peers, fmt.Sprintf("jm-%d=%s", i, raftAddrs[i]))
	}
	jmList := strings.Join(c.rpcAddrs, ",")
	var wg sync.WaitGroup
	start := func(cc childConfig) {
		defer wg.Done()
		cmd := startChildWith(t, cc)
		c.mu.Lock()
		c.procs[cc.ID], c.cfgs[cc.ID] = cmd, cc
		c.mu.Unlock()
	}
	for i := range jms {
		wg.Add(1)
		go start(childConfig{ID: c.ids[i], Roles: "jobmanager", HA: true, BindAddr: c.rpcAddrs[i], RESTAddr: c.rest[i],
			RaftAddr: raftAddrs[i], RaftDir: filepath.Join(c.dir, c.ids[i]), RaftPeers: peers, JobManagerAddr: jmList, CheckpointDir: c.ckpts,
			SecurityDir: secDir})
	}
	wg.Wait()
	for i := range tms {
		wg.Add(1)
		go start(childConfig{ID: fmt.Sprintf("tm-%d", i), HA: true, JobManagerAddr: jmList, Slots: 1, CheckpointDir: c.ckpts, SecurityDir: secDir})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, cl := range c.clients {
			cl.Close()
		}
	})
	return c
}

// restart starts JobManager node i again, with its Raft state, and waits
// until it follows a leader.
func (c *haCluster) restart(i int) {
	c.t.Helper()
	c.mu.Lock()
	cc := c.cfgs[c.ids[i]]
	c.mu.Unlock()
	cmd := startChildWith(c.t, cc)
	c.mu.Lock()
	c.procs[cc.ID] = cmd
	c.mu.Unlock()
	require.Eventually(c.t, func() bool {
		info, err := c.ask(i)
		return err == nil && info.LeaderID != ""
	}, time.Minute, 10*time.Millisecond, "%s rejoins the group", cc.ID)
}

// proc returns the process of JobManager node i.
func (c *haCluster) proc(i int) *exec.Cmd {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[c.ids[i]]
}

// ask asks JobManager node i who leads; an error if it does not answer.
func (c *haCluster) ask(i int) (leaderInfo, error) {
	c.mu.Lock()
	cl, ok := c.clients[c.rpcAddrs[i]]
	if !ok {
		var tlsCfg *tls.Config
		if c.sec != nil {
			tlsCfg = c.sec.Internal
		}
		cl = rpc.NewClient(c.rpcAddrs[i], rpcCodes, tlsCfg)
		c.clients[c.rpcAddrs[i]] = cl
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return rpc.Call[empty, leaderInfo](ctx, cl, "ha.Leader", empty{})
}

// leader waits until one of the live JobManager nodes leads, other than
// the excluded ones, and returns its index.
func (c *haCluster) leader(exclude ...int) int {
	c.t.Helper()
	idx := -1
	require.Eventually(c.t, func() bool {
		for i := range c.rpcAddrs {
			if containsInt(exclude, i) {
				continue
			}
			if info, err := c.ask(i); err == nil && info.Leads {
				idx = i
				return true
			}
		}
		return false
	}, time.Minute, 10*time.Millisecond, "no JobManager node leads")
	return idx
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// restJob gets the job's details through JobManager node i's REST API,
// following a redirect to the leader; false if no leader answered.
// awaitExactEnd waits until node i reports job id FINISHED and checks that
// the committed output in out holds every running count exactly once.
func (c *haCluster) awaitExactEnd(t *testing.T, i int, id JobID, out string, records, keys int64) {
	t.Helper()
	var final rest.JobDetails
	require.Eventually(t, func() bool {
		jd, ok := c.restJob(i, id)
		final = jd
		return ok && jd.State.IsTerminal()
	}, 5*time.Minute, 20*time.Millisecond, "the job ends")
	require.Equal(t, rest.JobFinished, final.State)
	checkRunningCounts(t, readCommitted(t, out), records, keys)
}

func (c *haCluster) restJob(i int, id JobID) (rest.JobDetails, bool) {
	resp, err := c.http.Get(c.scheme + "://" + c.rest[i] + "/jobs/" + string(id))
	if err != nil {
		return rest.JobDetails{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rest.JobDetails{}, false
	}
	var jd rest.JobDetails
	if json.NewDecoder(resp.Body).Decode(&jd) != nil {
		return rest.JobDetails{}, false
	}
	return jd, true
}

// submit submits a registered job through node i's REST API (a follower
// redirects to the leader).
func (c *haCluster) submit(i int, req rest.SubmitRequest) JobID {
	c.t.Helper()
	body, _ := json.Marshal(req)
	var id JobID
	require.Eventually(c.t, func() bool {
		resp, err := c.http.Post(c.scheme+"://"+c.rest[i]+"/jobs", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r rest.SubmitResponse
		if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&r) != nil {
			return false
		}
		id = JobID(r.JobID)
		return true
	}, time.Minute, 50*time.Millisecond, "submitting %s", req.Name)
	return id
}

// TestHAKillLeaderExactlyOnce runs the exactly-once job of the checkpoint
// tests on three JobManager processes in HA mode and two TaskManager
// processes, kills the leading JobManager with SIGKILL mid-job, and checks
// that a standby takes the job over from its latest checkpoint and the
// committed output is exact.
func TestHAKillLeaderExactlyOnce(t *testing.T) {
	testHAKillLeaderExactlyOnce(t, false)
}

// TestHAKillLeaderExactlyOnceSecured is TestHAKillLeaderExactlyOnce with
// security on: mutual TLS between every process, encrypted gossip and an
// authenticated REST API.
func TestHAKillLeaderExactlyOnceSecured(t *testing.T) {
	testHAKillLeaderExactlyOnce(t, true)
}

func testHAKillLeaderExactlyOnce(t *testing.T, secure bool) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	records := int64(3_000_000) // about 15 s: the kill must land mid-job
	if raceEnabled {
		records = 500_000
	}
	const keys = 1000
	c := startHAClusterSecured(t, 3, 2, secure)
	out := filepath.Join(c.dir, "out")
	leader := c.leader()
	follower := (leader + 1) % 3
	t.Logf("%s leads", c.ids[leader])

	id := c.submit(follower, rest.SubmitRequest{Name: "exactly-once", Args: []string{fmt.Sprint(records), fmt.Sprint(keys), out}, Parallelism: 2})
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	at := int(records/20) + rnd.IntN(int(records/5))
	waitLines(t, out, at)
	var before rest.JobDetails
	require.Eventually(t, func() bool {
		jd, ok := c.restJob(follower, id)
		before = jd
		return ok && (jd.AllRunning() || jd.State.IsTerminal())
	}, time.Minute, 5*time.Millisecond)
	require.False(t, before.State.IsTerminal(), "the job ended before the leader could be killed")

	t.Logf("killing the leader %s after %d committed lines", c.ids[leader], at)
	killed := time.Now()
	require.NoError(t, c.proc(leader).Process.Kill())
	next := c.leader(leader)
	elected := time.Since(killed)
	var running time.Duration
	require.Eventually(t, func() bool {
		jd, ok := c.restJob(next, id)
		if ok && jd.AllRunning() {
			running = time.Since(killed)
			return true
		}
		return false
	}, 2*time.Minute, 5*time.Millisecond, "the new leader runs the job")
	t.Logf("%s leads %v after the kill; the job runs again after %v", c.ids[next], elected, running)

	c.awaitExactEnd(t, next, id, out, records, keys)

	// The same job submitted again with other arguments runs with its own:
	// the TaskManagers ran the first submission, and must not reuse what
	// they built for it.
	again, out2 := records/10, filepath.Join(c.dir, "out-again")
	id2 := c.submit(next, rest.SubmitRequest{Name: "exactly-once", Args: []string{fmt.Sprint(again), fmt.Sprint(keys), out2}, Parallelism: 2})
	c.awaitExactEnd(t, next, id2, out2, again, keys)

	// With the second leader gone too, the last node has no quorum: it
	// leads nothing and says why.
	require.NoError(t, c.proc(next).Process.Kill())
	last := 3 - leader - next
	require.Eventually(t, func() bool {
		resp, err := c.http.Get(c.scheme + "://" + c.rest[last] + "/jobs")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var e rest.ErrorBody
		return resp.StatusCode == http.StatusServiceUnavailable && json.NewDecoder(resp.Body).Decode(&e) == nil &&
			len(e.Errors) == 1 && strings.Contains(e.Errors[0], "no raft quorum")
	}, 30*time.Second, 20*time.Millisecond, "the last node answers 503: no quorum")
}

// TestTaskManagerFencing: a TaskManager refuses calls carrying an older
// leader's token, and on the first call of a newer leader frees the slots
// of the older ones.
func TestTaskManagerFencing(t *testing.T) {
	tm := newTaskManager("tm-f", "tm-f", "rm", 2, ResourceProfile{}, newLocalResolver(), NewRegistry(), newGraphStore(), newLocalShuffle(), nil, nil, discardLogger)
	defer tm.close()
	ctx := context.Background()
	with := func(term uint64, leader string) context.Context {
		return rpc.WithToken(ctx, rpc.Token{Term: term, Leader: leader})
	}
	id := ExecutionAttemptID{Job: "j", Vertex: 0, Subtask: 0}

	require.NoError(t, tm.NotifyCheckpointComplete(ctx, id, 1), "calls without a token are not fenced")
	require.NoError(t, tm.NotifyCheckpointComplete(with(2, "jm-a"), id, 1))
	require.Equal(t, rpc.Token{Term: 2, Leader: "jm-a"}, tm.leaderToken())
	tm.mu.Lock()
	require.NoError(t, tm.mu.slots.Allocate(0, "j", "alloc-2"))
	tm.mu.allocTerms["alloc-2"] = 2
	tm.mu.Unlock()

	err := tm.NotifyCheckpointComplete(with(1, "jm-b"), id, 1)
	require.ErrorIs(t, err, ErrStaleLeader)
	require.ErrorContains(t, err, "jm-a leads term 2")
	require.ErrorIs(t, tm.TriggerCheckpoint(with(2, "jm-b"), id, CheckpointBarrier{ID: 1}), ErrStaleLeader, "one leader per term")
	require.ErrorIs(t, tm.RequestSlot(with(1, "jm-b"), SlotID{TaskManager: "tm-f", Index: 1}, "j", "alloc-1", "jm"), ErrStaleLeader)
	require.ErrorIs(t, tm.SubmitTask(with(1, "jm-b"), TaskDeploymentDescriptor{ID: id}), ErrUnknownJob, "the graph is checked first")

	require.NoError(t, tm.NotifyCheckpointAborted(with(3, "jm-c"), id, 1), "aborts pass")
	require.NoError(t, tm.NotifyCheckpointComplete(with(3, "jm-c"), id, 1))
	require.Equal(t, uint64(3), tm.leaderToken().Term)
	tm.mu.Lock()
	report := tm.mu.slots.Report()
	tm.mu.Unlock()
	for _, s := range report {
		require.Empty(t, s.Allocation, "the newer leader's first call frees the older leaders' slots")
	}
	require.False(t, tm.adoptLeader(rpc.Token{Term: 3, Leader: "jm-c"}))
}

func TestHAConfigValidation(t *testing.T) {
	base := func() NodeConfig {
		c := DefaultNodeConfig(RoleJobManager)
		c.Registry, c.HA, c.ID, c.RaftAddr = NewRegistry(), true, "jm-0", "127.0.0.1:7000"
		c.RaftPeers = []string{"jm-0=127.0.0.1:7000", "jm-1=127.0.0.1:7001"}
		return c
	}
	require.NoError(t, base().Validate())
	for name, tc := range map[string]struct {
		change func(*NodeConfig)
		want   string
	}{
		"no id":          {func(c *NodeConfig) { c.ID = "" }, "fixed ID"},
		"no raft addr":   {func(c *NodeConfig) { c.RaftAddr = "" }, "needs RaftAddr"},
		"bad peer":       {func(c *NodeConfig) { c.RaftPeers = []string{"jm-0"} }, "want id=host:port"},
		"self missing":   {func(c *NodeConfig) { c.RaftPeers = []string{"jm-1=127.0.0.1:7001"} }, "do not list this node"},
		"no peers":       {func(c *NodeConfig) { c.RaftPeers = nil }, "gossip address"},
		"expect, no gsp": {func(c *NodeConfig) { c.RaftPeers, c.RaftBootstrapExpect = nil, 3 }, "gossip address"},
		"tm without jms": {func(c *NodeConfig) { c.Roles = RoleTaskManager; c.Slots = 1 }, "job manager"},
	} {
		c := base()
		tc.change(&c)
		err := c.Validate()
		require.ErrorIs(t, err, ErrInvalidConfig, name)
		require.ErrorContains(t, err, tc.want, name)
	}

	t.Setenv("FLINK_HA", "true")
	t.Setenv("FLINK_RAFT_ADDR", "10.0.0.1:7947")
	t.Setenv("FLINK_RAFT_PEERS", "jm-0=10.0.0.1:7947, jm-1=10.0.0.2:7947")
	cfg, _, err := NodeConfigFromEnv(DefaultNodeConfig(RoleJobManager), []string{"-raft-expect", "0"})
	require.NoError(t, err)
	require.True(t, cfg.HA)
	require.Equal(t, "10.0.0.1:7947", cfg.RaftAddr)
	require.Equal(t, []string{"jm-0=10.0.0.1:7947", "jm-1=10.0.0.2:7947"}, cfg.RaftPeers)
	t.Setenv("FLINK_HA", "maybe")
	_, _, err = NodeConfigFromEnv(DefaultNodeConfig(RoleJobManager), nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// TestHAFrozenLeaderIsFenced freezes the leading JobManager process
// (SIGSTOP: to the others it is cut off) during the exactly-once job, lets
// a standby take the job over, then wakes the old leader: it still runs
// its JobManagers and believes it leads until it hears of the new term,
// but its fencing token is stale, so it neither deploys nor commits a
// checkpoint; it steps down and the output is exact.
func TestHAFrozenLeaderIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	records := int64(3_000_000)
	if raceEnabled {
		records = 500_000
	}
	const keys = 1000
	c := startHACluster(t, 3, 2)
	out := filepath.Join(c.dir, "out")
	leader := c.leader()
	id := c.submit(leader, rest.SubmitRequest{Name: "exactly-once", Args: []string{fmt.Sprint(records), fmt.Sprint(keys), out}, Parallelism: 2})
	waitLines(t, out, int(records/10))
	var before rest.JobDetails
	require.Eventually(t, func() bool {
		jd, ok := c.restJob(leader, id)
		before = jd
		return ok && (jd.AllRunning() || jd.State.IsTerminal())
	}, time.Minute, 5*time.Millisecond)
	require.False(t, before.State.IsTerminal(), "the job ended before the leader could be frozen")

	t.Logf("freezing the leader %s", c.ids[leader])
	frozen := time.Now()
	require.NoError(t, c.proc(leader).Process.Signal(syscall.SIGSTOP))
	next := c.leader(leader)
	require.Eventually(t, func() bool {
		jd, ok := c.restJob(next, id)
		return ok && jd.AllRunning()
	}, 2*time.Minute, 5*time.Millisecond, "the new leader runs the job")
	t.Logf("%s runs the job %v after the freeze; waking %s", c.ids[next], time.Since(frozen), c.ids[leader])
	require.NoError(t, c.proc(leader).Process.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool {
		info, err := c.ask(leader)
		return err == nil && !info.Leads && info.LeaderID != ""
	}, time.Minute, 10*time.Millisecond, "the old leader steps down")

	c.awaitExactEnd(t, next, id, out, records, keys)

	// The next leader still knows the job ended, though it did not run it.
	lines := len(readCommitted(t, out))
	require.NoError(t, c.proc(next).Process.Kill())
	third := c.leader(next)
	require.Eventually(t, func() bool {
		jd, ok := c.restJob(third, id)
		return ok && jd.State == rest.JobFinished
	}, 30*time.Second, 20*time.Millisecond, "%s reports the job FINISHED", c.ids[third])
	require.Len(t, readCommitted(t, out), lines, "a finished job is not run again")
}

// TestHABootstrapFromMembership starts three JobManager nodes in one
// process that find each other by gossip and bootstrap the Raft group from
// the membership, then a fourth that the leader adds as a voter, which
// leaves again and is removed.
func TestHABootstrapFromMembership(t *testing.T) {
	dir := t.TempDir()
	gossip := freeAddrs(t, 4)
	newNode := func(i int, peers []string, expect int) *Node {
		cfg := DefaultNodeConfig(RoleJobManager)
		cfg.ID, cfg.BindAddr, cfg.GossipAddr, cfg.Peers, cfg.Registry = fmt.Sprintf("jm-%d", i), "127.0.0.1:0", gossip[i], peers, testRegistry()
		cfg.HA, cfg.RaftAddr, cfg.RaftDir, cfg.RaftBootstrapExpect = true, freeAddrs(t, 1)[0], filepath.Join(dir, cfg.ID), expect
		n, err := NewNode(cfg)
		require.NoError(t, err)
		return n
	}
	first := newNode(0, nil, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Start blocks until three JobManager nodes gossip: start them together.
	nodes := []*Node{first}
	errs := make(chan error, 3)
	go func() { errs <- first.Start(ctx) }()
	for i := 1; i < 3; i++ {
		n := newNode(i, []string{gossip[0]}, 3)
		nodes = append(nodes, n)
		go func() { errs <- n.Start(ctx) }()
	}
	for range 3 {
		require.NoError(t, <-errs)
	}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	leader := func() *Node {
		var l *Node
		require.Eventually(t, func() bool {
			for _, n := range nodes {
				if n.Leads() {
					l = n
					return true
				}
			}
			return false
		}, 30*time.Second, 5*time.Millisecond, "a leader")
		return l
	}
	l := leader()
	peers, err := l.Raft().Peers()
	require.NoError(t, err)
	require.Len(t, peers, 3)

	fourth := newNode(3, []string{gossip[0]}, 0)
	require.NoError(t, fourth.Start(ctx))
	nodes = append(nodes, fourth)
	require.Eventually(t, func() bool {
		peers, err := leader().Raft().Peers()
		return err == nil && len(peers) == 4
	}, 30*time.Second, 10*time.Millisecond, "the leader adds the fourth node as a voter")
	require.Eventually(t, func() bool { id, _ := fourth.Raft().Leader(); return id != "" }, 30*time.Second, 10*time.Millisecond)

	require.NoError(t, fourth.Close())
	nodes = nodes[:3]
	require.Eventually(t, func() bool {
		peers, err := leader().Raft().Peers()
		return err == nil && len(peers) == 3
	}, 30*time.Second, 10*time.Millisecond, "the leader removes the node that left")

	// A leader that leaves hands over first: its leave reaches a node that
	// may not have taken office yet, which removes it all the same.
	old := leader()
	require.NoError(t, old.Close())
	nodes = slices.DeleteFunc(nodes, func(n *Node) bool { return n == old })
	require.Eventually(t, func() bool {
		peers, err := leader().Raft().Peers()
		return err == nil && len(peers) == 2 && !slices.ContainsFunc(peers, func(p ha.RaftPeer) bool { return p.ID == old.id })
	}, 30*time.Second, 10*time.Millisecond, "the new leader removes the leader that left")
}

// TestHANodeCorruptRaftLog: a JobManager node whose Raft log was damaged
// does not start, and says which file is damaged.
func TestHANodeCorruptRaftLog(t *testing.T) {
	dir := t.TempDir()
	raftDir := filepath.Join(dir, "raft")
	cfg := DefaultNodeConfig(RoleJobManager)
	cfg.ID, cfg.BindAddr, cfg.Registry = "jm-0", "127.0.0.1:0", testRegistry()
	cfg.HA, cfg.RaftDir, cfg.CheckpointDir = true, raftDir, filepath.Join(dir, "checkpoints")
	cfg.RaftAddr = freeAddrs(t, 1)[0]
	cfg.RaftPeers = []string{"jm-0=" + cfg.RaftAddr}
	n, err := NewNode(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, n.Start(ctx))
	require.Eventually(t, n.Leads, 30*time.Second, 5*time.Millisecond, "a group of one elects itself")
	id, err := n.Dispatcher().SubmitJob(ctx, JobSubmission{Name: "keyed-totals", Args: []string{"10", dir}, Parallelism: 1})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := n.Raft().Job(string(id))
		return err == nil && r.Status == string(JobRunning)
	}, 10*time.Second, 5*time.Millisecond, "the job is in the job store")
	require.NoError(t, n.Close())

	segs, err := filepath.Glob(filepath.Join(raftDir, "wal", "*.wal"))
	require.NoError(t, err)
	require.Len(t, segs, 1)
	b, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	end := len(bytes.TrimRight(b, "\x00"))
	for i := 32; i < end; i++ { // every frame after the segment header
		b[i] ^= 0xff
	}
	require.NoError(t, os.WriteFile(segs[0], b, 0o600))

	n, err = NewNode(cfg)
	require.NoError(t, err)
	err = n.Start(ctx)
	require.ErrorIs(t, err, ha.ErrCorruptLog)
	require.ErrorContains(t, err, "jm-0")
	t.Logf("start refused: %v", err)
	n.Close()
}
