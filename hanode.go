package flink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flinkgo/flink/ha"
	"github.com/flinkgo/flink/internal/rpc"
)

// High availability of a Node (NodeConfig.HA). Every JobManager node runs
// an ha.RaftNode; the leader of the Raft group runs the Dispatcher, the
// ResourceManager and the JobManagers under its fencing token, and the
// others serve only the leader lookup ("ha.Leader") and redirect REST
// calls to the leader. A node that loses the leadership stops its
// JobManagers at once (deposes them); a node that wins it restarts every
// job the job store holds as running, from the checkpoint its pointer
// names. TaskManagers ask the JobManager nodes which one leads, register
// with it, and follow a newer leader as soon as they see its token (see
// fencing.go).

// leadership is what a node runs while it leads.
type leadership struct {
	tok    ha.FencingToken
	rm     *ResourceManager
	d      *Dispatcher
	rest   http.Handler // nil without a REST address
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// validateHA checks the HA settings.
func (c NodeConfig) validateHA() error {
	if !c.HA {
		return nil
	}
	if c.Roles&RoleTaskManager != 0 && c.Roles&RoleJobManager == 0 && c.JobManagerAddr == "" && c.GossipAddr == "" {
		return errors.New("HA: a task manager needs the job manager nodes' addresses or a gossip address to find the leader")
	}
	if c.Roles&RoleJobManager == 0 {
		return nil
	}
	switch {
	case c.ID == "":
		return errors.New("HA: a job manager node needs a fixed ID: it names the node in the Raft group")
	case c.RaftAddr == "":
		return errors.New("HA: a job manager node needs RaftAddr")
	case len(c.RaftPeers) == 0 && c.GossipAddr == "":
		return errors.New("HA: a job manager node needs RaftPeers, or a gossip address to find its peers")
	case c.RaftBootstrapExpect < 0:
		return fmt.Errorf("HA: RaftBootstrapExpect %d, want >= 0", c.RaftBootstrapExpect)
	case c.RaftBootstrapExpect > 0 && c.GossipAddr == "":
		return errors.New("HA: RaftBootstrapExpect needs a gossip address")
	}
	if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		return fmt.Errorf("HA: RaftAddr %q: %v", c.RaftAddr, err)
	}
	peers, err := parseRaftPeers(c.RaftPeers)
	if err != nil {
		return err
	}
	if len(peers) > 0 && !slices.ContainsFunc(peers, func(p ha.RaftPeer) bool { return p.ID == c.ID }) {
		return fmt.Errorf("HA: RaftPeers %v do not list this node %q", c.RaftPeers, c.ID)
	}
	return nil
}

// parseRaftPeers parses "id=host:port" items.
func parseRaftPeers(items []string) ([]ha.RaftPeer, error) {
	var peers []ha.RaftPeer
	for _, it := range items {
		id, addr, ok := strings.Cut(it, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("HA: Raft peer %q, want id=host:port", it)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("HA: Raft peer %q: %v", it, err)
		}
		peers = append(peers, ha.RaftPeer{ID: id, Addr: addr})
	}
	return peers, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// raftConfig returns the Raft configuration of the node.
func (n *Node) raftConfig(id, fingerprint string, bootstrap []ha.RaftPeer) ha.RaftConfig {
	var rc ha.RaftConfig
	switch {
	case n.cfg.Raft != nil:
		rc = *n.cfg.Raft
	case isLoopback(n.cfg.RaftAddr):
		rc = ha.LocalRaftConfig()
	default:
		rc = ha.DefaultRaftConfig()
	}
	rc.NodeID, rc.Fingerprint, rc.Logger, rc.Bootstrap = id, fingerprint, n.log, bootstrap
	if n.sec != nil {
		rc.TLS = n.sec.Internal
	}
	rc.BindAddr, rc.AdvertiseAddr = n.cfg.RaftAddr, ""
	if host, port, _ := net.SplitHostPort(n.cfg.RaftAddr); net.ParseIP(host) == nil || net.ParseIP(host).IsUnspecified() {
		// A name or 0.0.0.0: listen everywhere, advertise what was given
		// (a name) or the RPC host.
		rc.BindAddr = net.JoinHostPort("0.0.0.0", port)
		rc.AdvertiseAddr = n.cfg.RaftAddr
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			rpcHost, _, _ := net.SplitHostPort(n.addr)
			rc.AdvertiseAddr = net.JoinHostPort(rpcHost, port)
		}
	}
	rc.DataDir = n.cfg.RaftDir
	if rc.DataDir == "" {
		if n.cfg.DataDir != "" {
			rc.DataDir = filepath.Join(n.cfg.DataDir, "raft")
		} else {
			rc.DataDir = filepath.Join(os.TempDir(), "flinkgo-raft-"+id)
		}
	}
	return rc
}

func isLoopback(hostPort string) bool {
	host, _, _ := net.SplitHostPort(hostPort)
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveHA registers the RPC handlers of a JobManager node in HA mode: the
// roles of the current leadership, and the leader lookup.
func (n *Node) serveHA() {
	serveResourceManager(n.server, func() (*ResourceManager, error) {
		l, err := n.leading()
		if err != nil {
			return nil, err
		}
		return l.rm, nil
	})
	serveJobManagers(n.server, func() (*Dispatcher, error) {
		l, err := n.leading()
		if err != nil {
			return nil, err
		}
		return l.d, nil
	})
	rpc.Handle(n.server, "ha.Leader", func(ctx context.Context, _ empty) (leaderInfo, error) {
		return n.leaderInfo(), nil
	})
}

// leaderInfo is a JobManager node's answer to "who leads?".
type leaderInfo struct {
	// Leads is set when the answering node leads and runs the roles.
	Leads bool
	// Term is the term of its leadership when it leads.
	Term uint64
	// NodeID, RPCAddr and RESTAddr describe the answering node.
	NodeID   string
	RPCAddr  string
	RESTAddr string
	// LeaderID is the leader the answering node knows of.
	LeaderID string
	// RaftTerm is the answering node's current Raft term, led or not: it
	// grows by one with every election the node takes part in.
	RaftTerm uint64
}

func (n *Node) leaderInfo() leaderInfo {
	info := leaderInfo{NodeID: n.id, RPCAddr: n.addr, RESTAddr: n.advertisedREST()}
	if n.Raft() == nil {
		return info
	}
	info.LeaderID, _ = n.Raft().Leader()
	info.RaftTerm = n.Raft().Status().Term
	if l, err := n.leading(); err == nil && n.Raft().Token() == l.tok {
		info.Leads, info.Term = true, l.tok.Term
	}
	return info
}

// advertisedREST returns the REST address other hosts reach: the bound one,
// with the RPC address's host when bound to every interface.
func (n *Node) advertisedREST() string {
	host, port, err := net.SplitHostPort(n.restAddr)
	if err != nil {
		return n.restAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		rpcHost, _, _ := net.SplitHostPort(n.addr)
		return net.JoinHostPort(rpcHost, port)
	}
	return n.restAddr
}

// leading returns the node's current leadership, or an error wrapping
// ErrStaleLeader that names the leader if one is known.
func (n *Node) leading() (*leadership, error) {
	n.haMu.Lock()
	l := n.haMu.leader
	n.haMu.Unlock()
	if l != nil {
		return l, nil
	}
	if n.Raft() == nil {
		return nil, fmt.Errorf("%w: node %s runs no JobManager", ErrStaleLeader, n.id)
	}
	if id, addr := n.Raft().Leader(); id != "" {
		return nil, fmt.Errorf("%w: node %s does not lead; %s (raft %s) does", ErrStaleLeader, n.id, id, addr)
	}
	return nil, fmt.Errorf("%w: node %s does not lead and knows no leader", ErrStaleLeader, n.id)
}

// startRaft starts the node's Raft member and the loop that follows its
// leadership.
func (n *Node) startRaft(ctx context.Context, fingerprint string) error {
	peers, err := parseRaftPeers(n.cfg.RaftPeers)
	if err != nil {
		return err
	}
	if len(peers) == 0 && n.cfg.RaftBootstrapExpect > 0 {
		if peers, err = n.peersFromMembership(ctx, n.cfg.RaftBootstrapExpect); err != nil {
			return err
		}
	}
	rn, err := ha.NewRaftNode(n.raftConfig(n.id, fingerprint, peers))
	if err != nil {
		return fmt.Errorf("flink: node %s: %w", n.id, err)
	}
	n.haMu.Lock()
	n.haMu.raft = rn
	n.haMu.Unlock()
	events, stop := rn.WatchLeadership()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer stop()
		n.followLeadership(events)
	}()
	return nil
}

// peersFromMembership waits until want JobManager nodes gossip their Raft
// addresses and returns them, sorted by id: every node computes the same
// list.
func (n *Node) peersFromMembership(ctx context.Context, want int) ([]ha.RaftPeer, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var peers []ha.RaftPeer
		for _, m := range n.membership().Members() {
			if m.MetaErr == nil && m.Meta.Roles.Has(ha.RoleJobManager) && m.Meta.RaftAddr != "" {
				peers = append(peers, ha.RaftPeer{ID: m.Meta.NodeID, Addr: m.Meta.RaftAddr})
			}
		}
		if len(peers) >= want {
			slices.SortFunc(peers, func(a, b ha.RaftPeer) int { return strings.Compare(a.ID, b.ID) })
			return peers, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("flink: node %s: %d of %d JobManager nodes in the membership to bootstrap the Raft group: %w",
				n.id, len(peers), want, ctx.Err())
		}
	}
}

// followLeadership starts the roles when the node becomes leader and
// deposes them when it stops leading, until the node closes.
func (n *Node) followLeadership(events <-chan ha.LeadershipEvent) {
	defer n.stepDown()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			n.haMu.Lock()
			cur := n.haMu.leader
			n.haMu.Unlock()
			if ev.IsLeader && cur != nil && cur.tok == ev.Token {
				continue
			}
			n.stepDown()
			if ev.IsLeader {
				n.lead(ev.Token)
			}
		}
	}
}

// lead starts the roles under tok and restarts the jobs of the store.
func (n *Node) lead(tok ha.FencingToken) {
	start := time.Now()
	res := fencedResolver{resolver: n.resolver, tok: rpc.Token{Term: tok.Term, Leader: tok.Leader}}
	rmAddr := n.addr + "/resourcemanager"
	rm := newResourceManager(rmAddr, res, n.log)
	rm.provider, rm.idleTimeout, rm.fingerprint = n.cfg.Provider, n.cfg.IdleTimeout, n.fingerprint
	rm.heartbeatTimeout = n.cfg.HeartbeatTimeout
	d := newDispatcher(n.cfg.Registry, newGraphStore(), rmAddr, n.addr+"/", n.local, res, jobManagerConfig{
		slotRequestTimeout: n.cfg.SlotRequestTimeout, storage: n.storage, now: time.Now,
		heartbeatInterval: n.cfg.HeartbeatInterval, heartbeatTimeout: n.cfg.HeartbeatTimeout,
	}, n.log)
	d.store = raftJobStore{node: n.Raft(), tok: tok}
	d.attemptBase = int(tok.Term) << 20
	l := &leadership{tok: tok, rm: rm, d: d}
	l.ctx, l.cancel = context.WithCancel(n.ctx)
	if n.cfg.RESTAddr != "" {
		l.rest = n.newRESTServer(d, rm).Handler()
	}
	n.local.bind(rmAddr, rm)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		rm.monitor(l.ctx, n.cfg.HeartbeatInterval/2, n.cfg.HeartbeatTimeout)
	}()
	n.haMu.Lock()
	n.haMu.leader = l
	n.haMu.Unlock()
	n.log.Info("leading: JobManager roles started", "term", tok.Term)
	recs := n.Raft().Jobs()
	d.archiveJobs(recs)
	d.recoverJobs(l.ctx, recs)
	n.log.Info("leading: jobs recovered", "term", tok.Term, "took", time.Since(start))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		// Membership events can come while no node leads, or a change can
		// fail; reconciling on a clock retries them.
		t := time.NewTicker(reconcileInterval)
		defer t.Stop()
		for {
			n.reconcileVoters(l.ctx)
			select {
			case <-t.C:
			case <-l.ctx.Done():
				return
			}
		}
	}()
}

// reconcileInterval is how often the leader brings the Raft group in step
// with the membership, besides doing so on every membership change.
const reconcileInterval = 5 * time.Second

// stepDown deposes the roles of the current leadership, if any.
func (n *Node) stepDown() {
	n.haMu.Lock()
	l := n.haMu.leader
	n.haMu.leader = nil
	n.haMu.Unlock()
	if l == nil {
		return
	}
	n.log.Warn("leadership lost: JobManager roles stopped", "term", l.tok.Term)
	n.local.unbind(l.rm.addr)
	l.cancel()
	l.d.depose()
	l.wg.Wait()
	l.rm.close()
}

// reconcileVoters brings the Raft group in step with the membership: it
// adds the alive JobManager nodes that are not voters yet (the leader's
// AddVoter refuses other binaries) and removes the voters that left
// gracefully; a failed node stays a voter, as it may come back. Calls are
// serialized.
func (n *Node) reconcileVoters(ctx context.Context) {
	members := n.membership()
	if members == nil || n.Raft() == nil {
		return
	}
	n.reconcileMu.Lock()
	defer n.reconcileMu.Unlock()
	peers, err := n.Raft().Peers()
	if err != nil {
		return
	}
	alive := members.Members()
	for _, m := range alive {
		if m.MetaErr != nil || !m.Meta.Roles.Has(ha.RoleJobManager) || m.Meta.RaftAddr == "" {
			continue
		}
		if slices.ContainsFunc(peers, func(p ha.RaftPeer) bool { return p.ID == m.Meta.NodeID && p.Addr == m.Meta.RaftAddr }) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.Raft().AddVoter(cctx, m.Meta.NodeID, m.Meta.RaftAddr, m.Meta.Fingerprint)
		cancel()
		if err != nil {
			n.log.Warn("adding a JobManager node to the Raft group failed", "peer", m.Meta.NodeID, "err", err)
		}
	}
	isAlive := func(id string) bool {
		return slices.ContainsFunc(alive, func(m ha.Member) bool { return m.MetaErr == nil && m.Meta.NodeID == id })
	}
	for _, m := range members.Left() {
		id := m.Meta.NodeID
		if m.MetaErr != nil || id == n.id || isAlive(id) || !slices.ContainsFunc(peers, func(p ha.RaftPeer) bool { return p.ID == id }) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.Raft().RemoveServer(cctx, id)
		cancel()
		if err != nil {
			n.log.Warn("removing a JobManager node that left from the Raft group failed", "peer", id, "err", err)
		}
	}
}

// memberChanged keeps the Raft group in step with the membership when a
// JobManager node joins, changes or leaves.
func (n *Node) memberChanged(ev ha.MembershipEvent) {
	if n.Raft() == nil || ev.Member.MetaErr != nil || !ev.Member.Meta.Roles.Has(ha.RoleJobManager) || ev.Member.Meta.NodeID == n.id {
		return
	}
	l, err := n.leading()
	if err != nil {
		return
	}
	switch ev.Type {
	case ha.EventJoin, ha.EventUpdate, ha.EventLeave:
		n.reconcileVoters(l.ctx)
	}
}

// leaderCandidates returns the RPC addresses of the JobManager nodes this
// node knows: configured, in the membership, and itself.
func (n *Node) leaderCandidates() []string {
	seen := map[string]bool{}
	var out []string
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if n.cfg.Roles&RoleJobManager != 0 {
		add(n.addr)
	}
	for _, a := range n.jmAddrs {
		add(a)
	}
	if members := n.membership(); members != nil {
		for _, m := range members.Members() {
			if m.MetaErr == nil && m.Meta.Roles.Has(ha.RoleJobManager) {
				add(m.Meta.RPCAddr)
			}
		}
	}
	return out
}

// haTaskManagerHint says how to start a TaskManager of an HA cluster.
const haTaskManagerHint = "a TaskManager of an HA cluster needs FLINK_HA=true (NodeConfig.HA = true) " +
	"and every JobManager node's RPC address in FLINK_JOBMANAGER_ADDR (NodeConfig.JobManagerAddr), so that it follows the leader"

// refuseHAJobManager returns an error wrapping ErrInvalidConfig if the job
// manager at addr is a node of an HA cluster: a TaskManager started without
// HA would register with it if it leads and never follow the next leader,
// or be refused with ErrStaleLeader if it does not. A job manager that
// does not answer is not refused here: registering reports that.
func (n *Node) refuseHAJobManager(ctx context.Context, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, leaderLookupTimeout)
	defer cancel()
	info, err := call[empty, leaderInfo](cctx, n.resolver.client(addr), "ha.Leader", empty{}, rpc.Idempotent())
	if err != nil {
		return nil // rpc.ErrUnknownMethod: not an HA node; other errors: registering says
	}
	leads := "no leader is known"
	switch {
	case info.Leads:
		leads = fmt.Sprintf("it leads term %d", info.Term)
	case info.LeaderID != "":
		leads = info.LeaderID + " leads"
	}
	return fmt.Errorf("%w: node %s runs without HA, but the job manager at %s is node %s of an HA cluster (%s): %s",
		ErrInvalidConfig, n.id, addr, info.NodeID, leads, haTaskManagerHint)
}

// leaderLookupTimeout bounds asking one JobManager node who leads.
const leaderLookupTimeout = time.Second

// discoverLeader asks every JobManager node it knows who leads and
// returns the answer of the leader with the newest term.
func (n *Node) discoverLeader(ctx context.Context) (leaderInfo, error) {
	return n.discoverLeaderAfter(ctx, 0)
}

// discoverLeaderAfter is discoverLeader, but with after > 0 it returns as
// soon as a node answers that it leads a term after that, without waiting
// for nodes that do not answer: it cancels their lookups and waits for
// them to end.
func (n *Node) discoverLeaderAfter(ctx context.Context, after uint64) (leaderInfo, error) {
	cands := n.leaderCandidates()
	if len(cands) == 0 {
		return leaderInfo{}, fmt.Errorf("%w: no JobManager node known", ErrStaleLeader)
	}
	ctx, cancel := context.WithCancel(ctx)
	var lookups sync.WaitGroup
	defer func() {
		cancel()
		lookups.Wait()
	}()
	answers := make(chan leaderInfo, len(cands))
	errs := make(chan error, len(cands))
	for _, a := range cands {
		lookups.Add(1)
		go func() {
			defer lookups.Done()
			if a == n.addr && n.Raft() != nil {
				answers <- n.leaderInfo()
				return
			}
			cctx, cancel := context.WithTimeout(ctx, leaderLookupTimeout)
			defer cancel()
			info, err := call[empty, leaderInfo](cctx, n.resolver.client(a), "ha.Leader", empty{}, rpc.Idempotent())
			if err != nil {
				errs <- fmt.Errorf("%s: %w", a, err)
				return
			}
			answers <- info
		}()
	}
	var best leaderInfo
	var got []leaderInfo
	var failed []error
	for range cands {
		select {
		case info := <-answers:
			if info.Leads && info.Term > best.Term {
				best = info
			}
			if after > 0 && best.Term > after {
				return best, nil
			}
			got = append(got, info)
		case err := <-errs:
			failed = append(failed, err)
		}
	}
	if best.Leads {
		return best, nil
	}
	return leaderInfo{}, noLeaderError(cands, got, failed)
}

// noLeaderError says why none of the JobManager nodes at cands leads:
// what each node that answered knows of the leader, and why the others
// did not answer.
func noLeaderError(cands []string, answers []leaderInfo, failed []error) error {
	answered := make(map[string]bool, len(answers))
	for _, a := range answers {
		answered[a.NodeID] = true
	}
	var why []string
	for _, a := range answers {
		switch {
		case a.LeaderID == "":
			why = append(why, fmt.Sprintf("%s knows no leader (an election is under way, or too few JobManager nodes are up for a Raft quorum)", a.NodeID))
		case a.LeaderID == a.NodeID:
			why = append(why, fmt.Sprintf("%s was elected but has not started its JobManager roles yet", a.NodeID))
		case answered[a.LeaderID]:
			why = append(why, fmt.Sprintf("%s follows %s", a.NodeID, a.LeaderID))
		default:
			why = append(why, fmt.Sprintf("%s follows %s, which is not among the JobManager nodes that answered", a.NodeID, a.LeaderID))
		}
	}
	for _, err := range failed {
		why = append(why, fmt.Sprintf("%v (no answer)", err))
	}
	return fmt.Errorf("%w: none of the JobManager nodes %v leads: %s", ErrStaleLeader, cands, strings.Join(why, "; "))
}

// followLeader makes the TaskManager register with the current leader,
// following it if it is newer than the one it knew.
func (n *Node) followLeader(ctx context.Context) error {
	info, err := n.discoverLeader(ctx)
	if err != nil {
		return err
	}
	return n.follow(ctx, info)
}

// follow makes the TaskManager follow the leader info describes and
// register with it.
func (n *Node) follow(ctx context.Context, info leaderInfo) error {
	tok := rpc.Token{Term: info.Term, Leader: info.NodeID}
	if cur := n.tm.leaderToken(); tok.Term < cur.Term {
		return fmt.Errorf("%w: %s leads term %d, but term %d was seen", ErrStaleLeader, info.NodeID, info.Term, cur.Term)
	}
	n.tm.adoptLeader(tok)
	n.tm.setResourceManagerAddr(info.RPCAddr + "/resourcemanager")
	if err := n.tm.register(ctx); err != nil {
		return fmt.Errorf("flink: registering with the leader %s at %s: %w", info.NodeID, info.RPCAddr, err)
	}
	n.log.Info("registered with the leader", "leader", info.NodeID, "term", info.Term)
	return nil
}

// watchLeader makes a TaskManager follow a new leader as soon as one
// leads: every heartbeat interval it asks the JobManager nodes whether
// one leads a newer term than the leader it follows. A failed heartbeat
// finds a new leader too, but a leader that is cut off (rather than dead)
// lets heartbeats hang for the heartbeat timeout.
func (n *Node) watchLeader() {
	tick := time.NewTicker(n.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		cur := n.tm.leaderToken()
		if cur.Term == 0 {
			continue // the heartbeats look for the first leader
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HeartbeatInterval)
		info, err := n.discoverLeaderAfter(ctx, cur.Term)
		cancel()
		if err == nil && info.Term > cur.Term {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HeartbeatTimeout)
			if err := n.follow(ctx, info); err != nil && n.ctx.Err() == nil {
				n.log.Debug("following the newer leader failed", "err", err)
			}
			cancel()
		}
	}
}

// followLeaderUntil retries followLeader until it succeeds or ctx ends.
func (n *Node) followLeaderUntil(ctx context.Context) error {
	tick := time.NewTicker(n.cfg.HeartbeatInterval / 5)
	defer tick.Stop()
	for {
		err := n.followLeader(ctx)
		if err == nil || errors.Is(err, ErrTaskManagerIDInUse) {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		}
	}
}

// serveRESTHA serves the REST API on the leader and redirects to it
// elsewhere; without a leader it answers 503 with the reason.
func (n *Node) serveRESTHA(w http.ResponseWriter, r *http.Request) {
	if l, err := n.leading(); err == nil && l.rest != nil {
		l.rest.ServeHTTP(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*leaderLookupTimeout)
	defer cancel()
	info, err := n.discoverLeader(ctx)
	if err == nil && info.NodeID != n.id && info.RESTAddr != "" {
		http.Redirect(w, r, n.restScheme()+"://"+info.RESTAddr+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		return
	}
	msg := "no JobManager leads the cluster"
	if err != nil {
		msg += ": " + err.Error()
	} else if info.RESTAddr == "" {
		msg = fmt.Sprintf("the leader %s serves no REST API", info.NodeID)
	}
	if n.Raft() != nil {
		if herr := n.Raft().Health(ctx); herr != nil {
			msg += "; " + herr.Error()
		}
	}
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, msg)
}

// membership returns the node's membership, or nil.
func (n *Node) membership() *ha.Membership {
	n.haMu.Lock()
	defer n.haMu.Unlock()
	return n.members
}

// Raft returns the node's Raft member in HA mode (its Status and Health
// say who leads and whether the group has a quorum), or nil.
func (n *Node) Raft() *ha.RaftNode {
	n.haMu.Lock()
	defer n.haMu.Unlock()
	return n.haMu.raft
}

// Leads reports whether the node leads its HA cluster and runs the
// JobManager roles. Without HA it reports whether the node is a
// JobManager.
func (n *Node) Leads() bool {
	if !n.cfg.HA {
		return n.dispatcher != nil
	}
	_, err := n.leading()
	return err == nil
}
