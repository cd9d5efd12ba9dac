package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// LeadershipEvent is a node's view of the group's leadership, as delivered
// by RaftNode.WatchLeadership.
type LeadershipEvent struct {
	// IsLeader reports whether this node leads and its job store holds
	// every command committed before its term: it may act as the
	// JobManager leader with Token.
	IsLeader bool
	// Token is this node's fencing token while IsLeader; zero otherwise.
	Token FencingToken
	// LeaderID is the id of the leader this node knows of; empty when it
	// knows none (an election is running, or there is no quorum).
	LeaderID string
	// LeaderAddr is the transport address of that leader.
	LeaderAddr string
}

// RaftNode is one member of the JobManager Raft group: it elects a leader
// with hashicorp/raft and replicates the job store. Create it with
// NewRaftNode and stop it with Shutdown. Its methods are safe for
// concurrent use.
//
// Commands that change the job store (SubmitJob, UpdateJobStatus,
// RemoveJob, CommitCheckpoint, NextCheckpointID) run only on the leader
// and carry its fencing token (Token). The read methods (Jobs, Job,
// LatestCheckpoint) read this node's copy, which on a follower may lag the
// leader's by a heartbeat or so.
type RaftNode struct {
	cfg    RaftConfig
	logger *slog.Logger
	raft   *raft.Raft
	fsm    *jobStoreFSM
	logs   *logStore
	addr   string
	unlock func() error

	obsCh    chan raft.Observation
	observer *raft.Observer
	stopCh   chan struct{} // closed by Shutdown
	wg       sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error

	mu struct {
		sync.Mutex
		closed bool
		event  LeadershipEvent // last published; event.Token is the current token
		subs   map[chan LeadershipEvent]struct{}
	}
}

// NewRaftNode validates cfg, opens (or creates) the node's state in
// cfg.DataDir, starts its transport and joins the group: it bootstraps the
// group from cfg.Bootstrap if DataDir holds no Raft state, and otherwise
// resumes from the latest snapshot and the log.
//
// A damaged log or snapshot is an error at start, never silently older
// state: the error wraps ErrCorruptLog or ErrCorruptSnapshot and names the
// file. A data directory held by another node gives ErrDataDirLocked. On
// error nothing is left running, and an injected cfg.Transport is still
// the caller's to close.
func NewRaftNode(cfg RaftConfig) (*RaftNode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Bootstrap = append([]RaftPeer(nil), cfg.Bootstrap...)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", cfg.NodeID)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("ha: raft data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n := &RaftNode{cfg: cfg, logger: logger, fsm: newJobStoreFSM(), unlock: unlock, stopCh: make(chan struct{})}
	var trans raft.Transport
	ok := false
	defer func() {
		if ok {
			return
		}
		if trans != nil && cfg.Transport == nil {
			_ = trans.(raft.WithClose).Close()
		}
		if n.logs != nil {
			_ = n.logs.Close()
		}
		_ = unlock()
	}()

	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, newHCLogAdapter(logger, "raft-snapshot"))
	if err != nil {
		return nil, fmt.Errorf("ha: raft snapshot store in %s: %w", cfg.DataDir, err)
	}
	latest, err := verifySnapshots(cfg.DataDir, snaps)
	if err != nil {
		return nil, err
	}
	if n.logs, err = openLogStore(filepath.Join(cfg.DataDir, walDirName), cfg.LogSegmentSize, logger); err != nil {
		return nil, err
	}
	var snapIndex uint64
	if latest != nil {
		snapIndex = latest.Index
	}
	if err := n.logs.verify(snapIndex); err != nil {
		return nil, err
	}

	if trans = cfg.Transport; trans == nil {
		tcp, err := newTCPTransport(&cfg, logger)
		if err != nil {
			return nil, err
		}
		trans = tcp
	}
	n.addr = string(trans.LocalAddr())

	rc := cfg.raftConfig()
	rc.Logger = newHCLogAdapter(logger, "raft")
	if len(cfg.Bootstrap) > 0 {
		var conf raft.Configuration
		for _, p := range cfg.Bootstrap {
			addr := p.Addr
			if addr == "" { // this node; Validate allows no other
				addr = n.addr
			}
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(addr)})
		}
		err := raft.BootstrapCluster(rc, n.logs, n.logs, snaps, trans, conf)
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) { // ErrCantBootstrap: state exists, resume it
			return nil, fmt.Errorf("ha: bootstrap raft group: %w", err)
		}
	}

	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.logs, snaps, trans); err != nil {
		return nil, fmt.Errorf("ha: start raft node %q in %s: %w", cfg.NodeID, cfg.DataDir, err)
	}
	ok = true

	n.mu.subs = make(map[chan LeadershipEvent]struct{})
	n.obsCh = make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(n.observer)
	n.wg.Add(1)
	go n.watchLeadership()
	logger.Info("raft node started", "addr", n.addr, "data_dir", cfg.DataDir, "snapshot_index", snapIndex)
	return n, nil
}

// newTCPTransport starts the TCP transport of cfg: raft's
// NetworkTransport over a stream layer that closes its connections when
// the transport is closed.
func newTCPTransport(cfg *RaftConfig, logger *slog.Logger) (*raft.NetworkTransport, error) {
	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("ha: raft AdvertiseAddr %q: %w", cfg.AdvertiseAddr, err)
		}
		advertise = a
	}
	stream, err := newTCPStreamLayer(cfg.BindAddr, advertise, logger)
	if err == nil {
		stream.tls, stream.handshakeTimeout = cfg.TLS, cfg.TCPTimeout
	}
	if err != nil {
		return nil, fmt.Errorf("ha: raft transport on %s (advertised as %q): %w", cfg.BindAddr, cfg.AdvertiseAddr, err)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: cfg.MaxPool,
		Timeout: cfg.TCPTimeout,
		Logger:  newHCLogAdapter(logger, "raft-net"),
	}), nil
}

// ID returns the node's id.
func (n *RaftNode) ID() string { return n.cfg.NodeID }

// Addr returns the address peers reach this node's transport at: the
// advertised address, or the bound one (with the port picked for port 0).
func (n *RaftNode) Addr() string { return n.addr }

// IsLeader reports whether raft considers this node the leader. Right
// after an election Token may still be zero for a moment, until the job
// store holds every earlier command; act on leadership through
// WatchLeadership or Token.
func (n *RaftNode) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the id and address of the leader this node knows of;
// both are empty when it knows none.
func (n *RaftNode) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Token returns this node's fencing token while it leads and its job store
// is up to date (see LeadershipEvent), and the zero token otherwise.
func (n *RaftNode) Token() FencingToken {
	n.mu.Lock()
	tok := n.mu.event.Token
	n.mu.Unlock()
	if tok.IsZero() || n.raft.State() != raft.Leader || n.raft.CurrentTerm() != tok.Term {
		return FencingToken{}
	}
	return tok
}

// WatchLeadership returns a channel of leadership changes and a func that
// stops the watch and closes the channel. The channel holds at most one
// event, the latest: a receiver that falls behind skips intermediate
// states but always sees the current one. The current state is delivered
// at once. Shutdown delivers a last event (not leader, no leader) and
// closes the channel. stop is idempotent.
func (n *RaftNode) WatchLeadership() (events <-chan LeadershipEvent, stop func()) {
	ch := make(chan LeadershipEvent, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		ch <- LeadershipEvent{}
		close(ch)
		return ch, func() {}
	}
	ch <- n.mu.event
	n.mu.subs[ch] = struct{}{}
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, ok := n.mu.subs[ch]; ok {
			delete(n.mu.subs, ch)
			close(ch)
		}
	}
}

// watchLeadership turns raft's leader and state observations into
// LeadershipEvents until Shutdown.
func (n *RaftNode) watchLeadership() {
	defer n.wg.Done()
	for {
		n.refreshLeadership()
		select {
		case <-n.stopCh:
			return
		case <-n.obsCh:
		}
	}
}

// refreshLeadership publishes the current leadership. Observations only
// say that something changed; the state is read from raft, so a dropped
// observation loses nothing as long as a later one arrives. A new leader
// is announced only after a barrier: once every command of earlier terms
// is applied to its job store.
func (n *RaftNode) refreshLeadership() {
	var tok FencingToken
	for n.raft.State() == raft.Leader {
		term := n.raft.CurrentTerm()
		n.mu.Lock()
		cur := n.mu.event.Token
		n.mu.Unlock()
		if cur.Term == term {
			tok = cur
			break
		}
		err := n.raft.Barrier(0).Error()
		if n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term {
			continue // leadership lost or changed meanwhile: look again
		}
		if err == nil {
			tok = FencingToken{Term: term, Leader: n.cfg.NodeID}
			break
		}
		n.logger.Warn("raft barrier of a new leader failed, retrying", "term", term, "error", err)
		t := time.NewTimer(n.cfg.CommitTimeout)
		select {
		case <-n.stopCh:
			t.Stop()
			return
		case <-t.C:
		}
	}
	id, addr := n.Leader()
	n.publish(LeadershipEvent{IsLeader: !tok.IsZero(), Token: tok, LeaderID: id, LeaderAddr: addr})
}

// publish records ev and hands it to every watcher, replacing an event
// they have not received yet.
func (n *RaftNode) publish(ev LeadershipEvent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ev == n.mu.event || n.mu.closed {
		return
	}
	if ev.IsLeader != n.mu.event.IsLeader || ev.LeaderID != n.mu.event.LeaderID {
		n.logger.Info("raft leadership", "leader", ev.IsLeader, "token", ev.Token.String(), "leader_id", ev.LeaderID)
	}
	n.mu.event = ev
	for ch := range n.mu.subs {
		select {
		case <-ch:
		default:
		}
		ch <- ev
	}
}

// VerifyLeader confirms that this node still leads, by a round of
// heartbeats acknowledged by a quorum. It fails with ErrNotLeader if not,
// and with ctx's error if ctx ends first.
func (n *RaftNode) VerifyLeader(ctx context.Context) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	err := n.wait(ctx, n.raft.VerifyLeader())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return n.notLeaderError("verify leadership")
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: verify leadership: %w", ErrRaftClosed, err)
	}
	return fmt.Errorf("ha: verify leadership on %q: %w", n.cfg.NodeID, err)
}

// TransferLeadership hands leadership to the most up-to-date follower and
// waits until it has it: a planned handover (before Shutdown of a leader,
// say) that takes milliseconds, not an election timeout.
func (n *RaftNode) TransferLeadership(ctx context.Context) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	if err := n.wait(ctx, n.raft.LeadershipTransfer()); err != nil {
		return n.leaderOpError("transfer leadership", err)
	}
	return nil
}

// Snapshot snapshots the job store now and compacts the log, keeping
// RaftConfig.TrailingLogs entries. Nothing new to snapshot is not an
// error.
func (n *RaftNode) Snapshot(ctx context.Context) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	err := n.wait(ctx, n.raft.Snapshot())
	if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("ha: raft snapshot: %w", err)
	}
	return nil
}

// AddVoter adds the node id, whose transport is at addr and whose job
// registry has the given fingerprint, to the group as a voter, and waits
// until the change is committed. A fingerprint that differs from this
// node's is refused with an error wrapping ErrIncompatibleBinary: a node
// of another build must not hold or lead the job store. It runs only on
// the leader (ErrNotLeader elsewhere). Adding a present node updates its
// address.
func (n *RaftNode) AddVoter(ctx context.Context, id, addr, fingerprint string) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	if id == "" || addr == "" {
		return fmt.Errorf("ha: add voter: id %q and address %q must both be set", id, addr)
	}
	local := NodeMeta{NodeID: n.cfg.NodeID, Fingerprint: n.cfg.Fingerprint}
	if err := CheckCompatible(local, NodeMeta{NodeID: id, Fingerprint: fingerprint}); err != nil {
		return fmt.Errorf("ha: add voter %q at %s refused: %w", id, addr, err)
	}
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, enqueueTimeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		return n.leaderOpError(fmt.Sprintf("add voter %q at %s", id, addr), err)
	}
	n.logger.Info("raft voter added", "peer", id, "peer_addr", addr)
	return nil
}

// RemoveServer removes the node id from the group and waits until the
// change is committed. It runs only on the leader (ErrNotLeader
// elsewhere). A leader that removes itself steps down once the change
// commits.
func (n *RaftNode) RemoveServer(ctx context.Context, id string) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	f := n.raft.RemoveServer(raft.ServerID(id), 0, enqueueTimeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		return n.leaderOpError(fmt.Sprintf("remove server %q", id), err)
	}
	n.logger.Info("raft server removed", "peer", id)
	return nil
}

// Peers returns the voters of the group's latest configuration (committed
// or not) as this node knows it, sorted by id.
func (n *RaftNode) Peers() ([]RaftPeer, error) {
	if err := n.checkOpen(); err != nil {
		return nil, err
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("ha: raft configuration: %w", err)
	}
	var peers []RaftPeer
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			peers = append(peers, RaftPeer{ID: string(s.ID), Addr: string(s.Address)})
		}
	}
	slices.SortFunc(peers, func(a, b RaftPeer) int { return strings.Compare(a.ID, b.ID) })
	return peers, nil
}

// Shutdown stops the node: raft, the transport, the log, and every
// goroutine the node started, and releases DataDir. A leader does not hand
// over leadership (see TransferLeadership): the others elect a new leader
// after their heartbeat timeout. Commands in flight end with
// ErrOutcomeUnknown. Shutdown is idempotent; later calls return the
// first's result.
func (n *RaftNode) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.mu.Lock()
		n.mu.closed = true
		n.mu.Unlock()
		close(n.stopCh)
		err := n.raft.Shutdown().Error() // waits for raft's goroutines, closes the transport
		n.raft.DeregisterObserver(n.observer)
		n.wg.Wait()
		n.mu.Lock()
		for ch := range n.mu.subs {
			select {
			case <-ch:
			default:
			}
			ch <- LeadershipEvent{}
			close(ch)
		}
		n.mu.subs = nil
		n.mu.event = LeadershipEvent{}
		n.mu.Unlock()
		n.shutdownErr = errors.Join(err, n.logs.Close(), n.unlock())
		n.logger.Info("raft node shut down")
	})
	return n.shutdownErr
}

// checkOpen returns ErrRaftClosed after Shutdown.
func (n *RaftNode) checkOpen() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return ErrRaftClosed
	}
	return nil
}

// wait waits for f, or for ctx to end. A context that can end needs a
// goroutine to wait on f; it ends when raft responds, which it does for
// every future by Shutdown at the latest, and Shutdown waits for it.
func (n *RaftNode) wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return ErrRaftClosed
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		done <- f.Error()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueueTimeout returns how long raft may wait to accept a request: until
// ctx's deadline, or forever.
func enqueueTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}

// notLeaderError returns an error wrapping ErrNotLeader that names the
// known leader.
func (n *RaftNode) notLeaderError(op string) error {
	id, addr := n.Leader()
	if id == "" {
		return fmt.Errorf("%w: %s on %q: no leader known", ErrNotLeader, op, n.cfg.NodeID)
	}
	return fmt.Errorf("%w: %s on %q: the leader is %q at %s", ErrNotLeader, op, n.cfg.NodeID, id, addr)
}

// leaderOpError maps raft's error for a leader-only operation op.
func (n *RaftNode) leaderOpError(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return n.notLeaderError(op)
	case errors.Is(err, ErrRaftClosed), errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %s: %w", ErrRaftClosed, op, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s: %w", ErrOutcomeUnknown, op, err)
	}
	return fmt.Errorf("ha: %s: %w", op, err)
}
