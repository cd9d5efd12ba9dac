package ha

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberState is a member's liveness as seen by the local node.
//
// memberlist's public API does not expose suspicion (a suspected node is
// still reported alive until it refutes or is declared dead), so there is
// no suspect state here.
type MemberState uint8

const (
	// StateAlive is a member that answers probes.
	StateAlive MemberState = iota
	// StateLeft is a member that left gracefully (Membership.Leave).
	StateLeft
	// StateDead is a member declared dead by the failure detector.
	StateDead
)

// String returns "alive", "left" or "dead".
func (s MemberState) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateLeft:
		return "left"
	case StateDead:
		return "dead"
	}
	return fmt.Sprintf("MemberState(%d)", uint8(s))
}

// Member is one node of the pool as seen by the local node.
type Member struct {
	// Name is the node's name in the pool.
	Name string
	// Addr is the node's gossip address.
	Addr netip.AddrPort
	// Meta is the node's decoded metadata; zero when MetaErr is set.
	Meta NodeMeta
	// MetaErr is non-nil, wrapping ErrMalformedMeta, when the node's
	// metadata could not be decoded. Such a node must not be given work.
	MetaErr error
	// State is the node's liveness.
	State MemberState
}

// EventType says what happened to a member.
type EventType uint8

const (
	// EventJoin reports a member that joined (or rejoined) the pool,
	// including the local node when it starts.
	EventJoin EventType = iota + 1
	// EventUpdate reports a member that published new metadata.
	EventUpdate
	// EventLeave reports a member that left gracefully. It may follow an
	// EventFailed for the same member when its leave announcement arrived
	// after memberlist's notice.
	EventLeave
	// EventFailed reports a member that the failure detector declared
	// dead, or that stopped without leaving.
	EventFailed
)

// String returns "join", "update", "leave" or "failed".
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventLeave:
		return "leave"
	case EventFailed:
		return "failed"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// MembershipEvent is a change in the pool, delivered by Membership.Events.
type MembershipEvent struct {
	// Type is what happened.
	Type EventType
	// Member is the member after the change.
	Member Member
	// Time is when the local node learnt of the change.
	Time time.Time
}

// userMsgLeaving is the first byte of the message a node sends to its peers
// just before it leaves, followed by its name. memberlist reports leaves and
// deaths alike, so this is how peers tell a graceful leave from a failure.
const userMsgLeaving byte = 0x01

// Membership is this node's view of, and presence in, the cluster's
// memberlist pool. Its methods are safe for concurrent use.
type Membership struct {
	cfg    MembershipConfig
	name   string
	logger *slog.Logger
	ml     *memberlist.Memberlist

	// lifecycle is held shared while calling into ml and exclusively by
	// Close, so that nothing calls memberlist after Shutdown.
	lifecycle sync.RWMutex
	closed    bool // guarded by lifecycle

	mu struct {
		sync.Mutex
		meta      NodeMeta
		metaBytes []byte
		members   map[string]Member
		leaving   map[string]struct{}   // names that announced a leave
		gone      map[string]goneMember // members that left or failed, until they rejoin
		queue     []MembershipEvent     // not yet delivered to events
		refused   error                 // last peer refused by the merge delegate
		refusals  int
		self      Member // the local node, kept after it leaves
		closed    bool
	}

	wake      chan struct{} // cap 1: the queue has grown
	events    chan MembershipEvent
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// NewMembership validates cfg, binds the gossip listeners and starts
// memberlist with this node alone in its pool. It does not contact peers;
// call Join. The caller must Close the Membership.
func NewMembership(cfg MembershipConfig) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	metaBytes, err := cfg.Meta.Encode()
	if err != nil {
		return nil, err // unreachable: Validate encoded it
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Membership{
		cfg:    cfg,
		name:   cfg.name(),
		logger: logger.With("component", "membership", "node", cfg.name()),
		wake:   make(chan struct{}, 1),
		events: make(chan MembershipEvent, 16),
		done:   make(chan struct{}),
	}
	m.cfg.Join = slices.Clone(cfg.Join)
	m.mu.meta = cfg.Meta
	m.mu.metaBytes = metaBytes
	m.mu.members = make(map[string]Member)
	m.mu.leaving = make(map[string]struct{})
	m.mu.gone = make(map[string]goneMember)

	mc := memberlist.DefaultLANConfig()
	mc.Name = m.name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BindPort
	}
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.SuspicionMaxTimeoutMult = cfg.SuspicionMaxTimeoutMult
	mc.IndirectChecks = cfg.IndirectChecks
	mc.GossipInterval = cfg.GossipInterval
	mc.GossipNodes = cfg.GossipNodes
	mc.RetransmitMult = cfg.RetransmitMult
	mc.PushPullInterval = cfg.PushPullInterval
	mc.TCPTimeout = cfg.TCPTimeout
	mc.GossipToTheDeadTime = cfg.GossipToTheDeadTime
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	mc.Logger = log.New(&logWriter{logger: logger.With("component", "memberlist", "node", m.name)}, "", 0)
	if len(cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.Keys[1:], cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("%w: Keys: %w", ErrInvalidConfig, err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	d := &delegate{m: m}
	mc.Delegate = d
	mc.Events = d
	if cfg.RefuseIncompatible {
		mc.Alive = d
		mc.Merge = d
	}

	m.wg.Add(1)
	go m.dispatch()
	ml, err := memberlist.Create(mc)
	if err != nil {
		close(m.done)
		m.wg.Wait()
		return nil, fmt.Errorf("ha: start memberlist on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	m.ml = ml
	m.logger.Debug("membership started", "addr", m.LocalAddr())
	return m, nil
}

// Name returns the local node's name in the pool.
func (m *Membership) Name() string { return m.name }

// LocalAddr returns the address peers use to reach this node, with the
// actual port when BindPort was 0. Pass its String to a peer's Join.
func (m *Membership) LocalAddr() netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.self.Addr
}

// Meta returns the metadata this node currently publishes.
func (m *Membership) Meta() NodeMeta {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.meta
}

// Join contacts peers ("host:port"; cfg.Join when peers is empty) and
// merges state with them, retrying with backoff until at least one answers,
// ctx ends or the Membership closes. It returns how many peers answered.
// One attempt can outlast ctx by up to TCPTimeout per unreachable peer,
// since memberlist's join takes no context. If RefuseIncompatible is set
// and a peer's cluster runs another binary, Join fails at once with an
// error wrapping ErrIncompatibleBinary.
func (m *Membership) Join(ctx context.Context, peers []string) (int, error) {
	if len(peers) == 0 {
		peers = m.cfg.Join
	}
	if len(peers) == 0 {
		return 0, fmt.Errorf("ha: join: no peers given and MembershipConfig.Join is empty")
	}
	backoff := 50 * time.Millisecond
	var timer *time.Timer
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("ha: join %v: %w", peers, err)
		}
		n, err, refused := m.joinOnce(peers)
		if n > 0 {
			m.logger.Info("joined cluster", "peers", peers, "answered", n, "attempts", attempt)
			return n, nil
		}
		if refused != nil {
			return 0, fmt.Errorf("ha: join %v: %w", peers, refused)
		}
		if errors.Is(err, ErrClosed) {
			return 0, err
		}
		m.logger.Debug("join attempt failed", "peers", peers, "attempt", attempt, "err", err)
		if timer == nil {
			timer = time.NewTimer(backoff)
			defer timer.Stop()
		} else {
			timer.Reset(backoff)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("ha: join %v: %w after %d attempts; last: %w", peers, ctx.Err(), attempt, err)
		case <-m.done:
			return 0, ErrClosed
		case <-timer.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// joinOnce makes one memberlist join attempt. refused is the merge
// delegate's error if it refused a peer during the attempt.
func (m *Membership) joinOnce(peers []string) (n int, err, refused error) {
	m.lifecycle.RLock()
	defer m.lifecycle.RUnlock()
	if m.closed {
		return 0, ErrClosed, nil
	}
	m.mu.Lock()
	before := m.mu.refusals
	m.mu.Unlock()
	n, err = m.ml.Join(peers)
	m.mu.Lock()
	if m.mu.refusals != before {
		refused = m.mu.refused
	}
	m.mu.Unlock()
	return n, err, refused
}

// Members returns the alive members, the local node included, sorted by
// name. The slice is newly allocated.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.mu.members))
	for _, mb := range m.mu.members {
		if mb.State == StateAlive {
			out = append(out, mb)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// goneRetention is how long Left remembers a member that left.
const goneRetention = time.Hour

// goneMember is a member that left or failed, and when it was learnt.
type goneMember struct {
	Member
	at time.Time
}

// Left returns the members that left gracefully within the last hour and
// have not rejoined since, sorted by name. Their State is StateLeft. A
// member first reported as failed is reported here once its late leave
// announcement arrives.
func (m *Membership) Left() []Member {
	m.mu.Lock()
	var out []Member
	for _, g := range m.mu.gone {
		if g.State == StateLeft {
			out = append(out, g.Member)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// pruneGoneLocked forgets members gone for longer than goneRetention.
func (m *Membership) pruneGoneLocked(now time.Time) {
	for name, g := range m.mu.gone {
		if now.Sub(g.at) > goneRetention {
			delete(m.mu.gone, name)
		}
	}
}

// queueLocked queues ev for the events channel and wakes the dispatcher.
func (m *Membership) queueLocked(ev MembershipEvent) {
	m.mu.queue = append(m.mu.queue, ev)
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Events returns the channel of membership changes, in the order the local
// node learnt them, starting with the local node's own join. Every change
// is delivered (none is dropped) as long as the Membership is open, so the
// queue behind the channel grows while nobody reads it. The channel is
// closed by Close; undelivered events are then discarded.
func (m *Membership) Events() <-chan MembershipEvent { return m.events }

// UpdateMeta validates and publishes new metadata for this node, then waits
// until the update has been gossiped to a peer, or BroadcastTimeout or the
// ctx deadline passes (in which case it returns an error, but the update
// still spreads). meta.NodeID may change; the node's name does not.
func (m *Membership) UpdateMeta(ctx context.Context, meta NodeMeta) error {
	b, err := meta.Encode()
	if err != nil {
		return err
	}
	timeout, err := m.broadcastTimeout(ctx)
	if err != nil {
		return fmt.Errorf("ha: update meta: %w", err)
	}
	m.lifecycle.RLock()
	defer m.lifecycle.RUnlock()
	if m.closed {
		return ErrClosed
	}
	m.mu.Lock()
	m.mu.meta, m.mu.metaBytes = meta, b
	m.mu.Unlock()
	if err := m.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("ha: update meta: %w", err)
	}
	return nil
}

// Leave announces that this node leaves the pool, so that peers report
// EventLeave rather than EventFailed, and waits until the leave has been
// gossiped to a peer, or BroadcastTimeout or the ctx deadline passes. The
// node keeps answering probes until Close, which should follow.
func (m *Membership) Leave(ctx context.Context) error {
	timeout, err := m.broadcastTimeout(ctx)
	if err != nil {
		return fmt.Errorf("ha: leave: %w", err)
	}
	m.lifecycle.RLock()
	defer m.lifecycle.RUnlock()
	if m.closed {
		return ErrClosed
	}
	m.announceLeaving()
	if err := m.ml.Leave(timeout); err != nil {
		return fmt.Errorf("ha: leave: %w", err)
	}
	m.logger.Info("left cluster")
	return nil
}

// announceLeaving tells every alive peer, over TCP and in parallel, that
// this node is about to leave. Failures are logged: a peer that misses the
// message reports the leave as a failure.
func (m *Membership) announceLeaving() {
	msg := append([]byte{userMsgLeaving}, m.name...)
	var wg sync.WaitGroup
	for _, mb := range m.Members() {
		if mb.Name == m.name {
			continue
		}
		node := &memberlist.Node{Name: mb.Name, Addr: net.IP(mb.Addr.Addr().AsSlice()), Port: mb.Addr.Port()}
		wg.Go(func() {
			if err := m.ml.SendReliable(node, msg); err != nil {
				m.logger.Warn("cannot announce leave", "peer", node.Name, "err", err)
			}
		})
	}
	wg.Wait()
}

// broadcastTimeout is BroadcastTimeout shortened to ctx's deadline.
func (m *Membership) broadcastTimeout(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	timeout := m.cfg.BroadcastTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
		if timeout <= 0 {
			return 0, context.DeadlineExceeded
		}
	}
	return timeout, nil
}

// Close shuts memberlist down without leaving (peers will detect a
// failure unless Leave was called), stops the event goroutine and closes
// the Events channel. It is idempotent and returns the first call's error.
// memberlist's Shutdown does not wait for a probe already in flight; that
// goroutine ends by itself at the probe's deadline (at most 8 times
// ProbeInterval later).
func (m *Membership) Close() error {
	m.closeOnce.Do(func() {
		m.lifecycle.Lock()
		m.closed = true
		m.lifecycle.Unlock()
		if err := m.ml.Shutdown(); err != nil {
			m.closeErr = fmt.Errorf("ha: shut down memberlist: %w", err)
		}
		m.mu.Lock()
		m.mu.closed = true
		m.mu.queue = nil
		m.mu.Unlock()
		close(m.done)
		m.wg.Wait()
		m.logger.Debug("membership closed")
	})
	return m.closeErr
}

// dispatch moves queued events to the events channel until Close.
func (m *Membership) dispatch() {
	defer m.wg.Done()
	defer close(m.events)
	for {
		m.mu.Lock()
		if len(m.mu.queue) == 0 {
			m.mu.Unlock()
			select {
			case <-m.wake:
				continue
			case <-m.done:
				return
			}
		}
		ev := m.mu.queue[0]
		m.mu.queue[0] = MembershipEvent{}
		m.mu.queue = m.mu.queue[1:]
		m.mu.Unlock()
		select {
		case m.events <- ev:
		case <-m.done:
			return
		}
	}
}

// observe applies a memberlist notification to the member view and queues
// the event. It is called by memberlist with its node lock held, so it
// must not block or call into memberlist.
func (m *Membership) observe(typ EventType, n *memberlist.Node) {
	mb := Member{Name: n.Name, State: StateAlive}
	if ip, ok := netip.AddrFromSlice(n.Addr); ok {
		mb.Addr = netip.AddrPortFrom(ip.Unmap(), n.Port)
	}
	mb.Meta, mb.MetaErr = DecodeNodeMeta(n.Meta)
	if mb.MetaErr != nil {
		mb.MetaErr = fmt.Errorf("node %q: %w", n.Name, mb.MetaErr)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return
	}
	now := time.Now()
	switch typ {
	case EventJoin:
		delete(m.mu.leaving, n.Name)
		delete(m.mu.gone, n.Name)
	case EventLeave:
		if _, ok := m.mu.leaving[n.Name]; ok || n.Name == m.name {
			mb.State = StateLeft
		} else {
			typ, mb.State = EventFailed, StateDead
		}
		delete(m.mu.leaving, n.Name)
	}
	m.mu.members[n.Name] = mb
	if n.Name == m.name {
		m.mu.self = mb
	}
	if mb.State != StateAlive {
		delete(m.mu.members, n.Name)
		if n.Name != m.name {
			m.mu.gone[n.Name] = goneMember{Member: mb, at: now}
		}
	}
	m.pruneGoneLocked(now)
	m.queueLocked(MembershipEvent{Type: typ, Member: mb, Time: now})
	switch {
	case mb.MetaErr != nil:
		m.logger.Warn("member "+typ.String(), "member", n.Name, "addr", mb.Addr, "err", mb.MetaErr)
	case typ == EventFailed:
		m.logger.Warn("member failed", "member", n.Name, "addr", mb.Addr)
	default:
		m.logger.Info("member "+typ.String(), "member", n.Name, "addr", mb.Addr)
	}
}

// checkPeer returns an error wrapping ErrIncompatibleBinary if n's
// metadata decodes and its fingerprint differs from the local one.
func (m *Membership) checkPeer(n *memberlist.Node) error {
	if n.Name == m.name {
		return nil
	}
	remote, err := DecodeNodeMeta(n.Meta)
	if err != nil {
		return nil // admitted; reported through Member.MetaErr
	}
	m.mu.Lock()
	local := m.mu.meta
	m.mu.Unlock()
	return CheckCompatible(local, remote)
}

// delegate adapts Membership to memberlist's delegate interfaces.
// memberlist calls them from its own goroutines, some with its node lock
// held; none of them blocks.
type delegate struct{ m *Membership }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate = (*delegate)(nil)
	_ memberlist.MergeDelegate = (*delegate)(nil)
)

// NodeMeta returns the encoded local metadata (never over limit: Encode
// checked it against MetaMaxSize).
func (d *delegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	return slices.Clone(d.m.mu.metaBytes)
}

// NotifyMsg records a peer's leave announcement; other messages are
// ignored. msg is only read during the call.
func (d *delegate) NotifyMsg(msg []byte) {
	if len(msg) < 2 || msg[0] != userMsgLeaving {
		return
	}
	name := string(msg[1:])
	m := d.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return
	}
	if g, ok := m.mu.gone[name]; ok && g.State == StateDead {
		// The announcement came after memberlist's notice of the leave
		// (they travel on different connections): it was a leave after all.
		g.State, g.at = StateLeft, time.Now()
		m.mu.gone[name] = g
		m.queueLocked(MembershipEvent{Type: EventLeave, Member: g.Member, Time: g.at})
		m.logger.Info("member left (announcement after the failure notice)", "member", name, "addr", g.Addr)
		return
	}
	m.mu.leaving[name] = struct{}{}
}

// GetBroadcasts returns nothing: this package gossips only metadata.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState returns nothing: there is no state beyond metadata to sync.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores remote state: LocalState sends none.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin queues EventJoin.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.m.observe(EventJoin, n) }

// NotifyLeave queues EventLeave or EventFailed.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.m.observe(EventLeave, n) }

// NotifyUpdate queues EventUpdate.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.m.observe(EventUpdate, n) }

// NotifyAlive ignores alive messages of incompatible peers (set only with
// RefuseIncompatible).
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	if err := d.m.checkPeer(n); err != nil {
		d.m.logger.Warn("ignoring incompatible peer", "peer", n.Name, "err", err)
		return err
	}
	return nil
}

// NotifyMerge refuses a join with a cluster holding an incompatible peer
// (set only with RefuseIncompatible).
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if err := d.m.checkPeer(n); err != nil {
			d.m.logger.Warn("refusing to merge with incompatible cluster", "peer", n.Name, "err", err)
			d.m.mu.Lock()
			d.m.mu.refused, d.m.mu.refusals = err, d.m.mu.refusals+1
			d.m.mu.Unlock()
			return err
		}
	}
	return nil
}

// logWriter turns memberlist's log lines ("[LEVEL] memberlist: text") into
// slog records at the matching level.
type logWriter struct{ logger *slog.Logger }

// logLevels maps memberlist's level prefixes to slog levels.
var logLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

// Write logs one line; it never fails.
func (w *logWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for _, l := range logLevels {
		if rest, ok := strings.CutPrefix(msg, l.prefix); ok {
			level, msg = l.level, strings.TrimSpace(rest)
			break
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	w.logger.Log(context.Background(), level, msg)
	return len(p), nil
}
