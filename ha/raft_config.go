//lint:file-ignore ST1005 validation errors start with the name of the field they are about (Bootstrap[i])

package ha

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// RaftPeer is one voter of the Raft group.
type RaftPeer struct {
	// ID is the peer's node id (RaftConfig.NodeID).
	ID string
	// Addr is the address ("host:port") where the peer's Raft transport
	// listens, as its RaftNode.Addr reports it.
	Addr string
}

// RaftConfig configures a RaftNode. Start from DefaultRaftConfig or
// LocalRaftConfig, set NodeID, DataDir and the addresses, then pass it to
// NewRaftNode, which validates it. The zero value is not valid.
//
// The timeouts decide how fast a lost leader is replaced, and how long a
// process may be starved of CPU before the group holds an election it did
// not need (each one restarts every job from its latest checkpoint). A
// follower that hears nothing from the leader for HeartbeatTimeout (checked
// at random intervals between HeartbeatTimeout and twice that) starts an
// election; the election takes a round trip or two. A leader that has not
// heard from a quorum for LeaderLeaseTimeout steps down (check-quorum).
// Elections start with a pre-vote round (hashicorp/raft's pre-vote, on
// unless disabled): a node bumps its term only if a quorum would vote for
// it, and a follower that still hears from a leader grants no vote, so a
// node that was starved or cut off cannot depose a healthy leader when it
// comes back.
//
// With the defaults a killed leader is replaced in about 1.5-3 s
// (BenchmarkHALeaderKill measures it), and a leader or follower survives a
// stall of up to 1.5 s, which a loaded 2-core machine produces; at the
// lease and heartbeat timeouts of 250 and 500 ms the group held 3-34
// needless elections per 10 minutes with the CPU saturated
// (BenchmarkHAElectionsUnderLoad; see BENCHMARKS.md). The lease equals the
// heartbeat timeout: a shorter lease makes a stalled leader step down
// while its followers still follow it, which forces an election all the
// same. A cut-off leader and the new one may therefore both believe they
// lead for a moment; fencing tokens make the overlap harmless.
type RaftConfig struct {
	// NodeID is the node's id in the Raft group; it must not change across
	// restarts of the node. Required.
	NodeID string
	// BindAddr is the "ip:port" the TCP transport listens on. Port 0 picks
	// a free port (see RaftNode.Addr). Ignored when Transport is set.
	BindAddr string
	// AdvertiseAddr is the "host:port" peers dial to reach this node; it is
	// resolved once, at start, and stored in the group's configuration.
	// Empty means the bound address, which then must be a specific IP, not
	// 0.0.0.0. Ignored when Transport is set.
	AdvertiseAddr string
	// Transport, if set, replaces the TCP transport; tests pass a
	// raft.InmemTransport. The node takes ownership: Shutdown closes it.
	Transport raft.Transport
	// DataDir is the directory that holds the node's Raft log ("wal/"),
	// snapshots ("snapshots/") and lock file. Required; created if missing.
	DataDir string
	// Bootstrap lists the voters the group starts with, this node
	// included; this node's entry may leave Addr empty for its own
	// address. It is used only when DataDir holds no Raft state yet, so
	// every node of a new group may be started with the same list. Empty
	// means join an existing group (a leader's AddVoter adds this node).
	Bootstrap []RaftPeer
	// Fingerprint is the fingerprint of this node's job registry. The
	// leader's AddVoter refuses candidates with another fingerprint.
	Fingerprint string
	// TLS, if set, secures the TCP transport: every connection, accepted
	// or dialed, runs a mutual TLS handshake with it (see package
	// security), within TCPTimeout for accepted ones. Ignored when
	// Transport is set.
	TLS *tls.Config
	// Logger receives the node's logs, including raft's, at matching
	// levels. Nil discards them.
	Logger *slog.Logger

	// HeartbeatTimeout is how long a follower waits without hearing from
	// the leader (randomized up to twice as long) before it starts an
	// election. The leader sends heartbeats ten times as often.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes (randomized
	// up to twice as long) before it starts another election. It must be
	// at least HeartbeatTimeout.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader keeps leading without
	// contact with a quorum before it steps down. It must not exceed
	// HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how long the leader waits without new entries
	// before it sends an AppendEntries anyway, which tells followers the
	// commit index.
	CommitTimeout time.Duration
	// SnapshotInterval is how often (randomized up to twice as long) the
	// node checks whether to snapshot the job store.
	SnapshotInterval time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot
	// make the check take a snapshot.
	SnapshotThreshold uint64
	// TrailingLogs is how many log entries a snapshot leaves in the log,
	// so that a follower slightly behind catches up from the log rather
	// than a whole snapshot.
	TrailingLogs uint64
	// SnapshotRetain is how many snapshots are kept on disk.
	SnapshotRetain int
	// LogSegmentSize is the size of each log segment file, allocated in
	// full when the segment is created.
	LogSegmentSize int
	// MaxPool is how many idle TCP connections to each peer the transport
	// keeps.
	MaxPool int
	// TCPTimeout bounds each TCP dial and exchange of the transport.
	TCPTimeout time.Duration
}

// DefaultRaftConfig returns a configuration for a LAN, tuned to replace a
// lost leader within about 3 s and to ride out CPU stalls of up to 1.5 s
// without an election (see RaftConfig). NodeID, DataDir and
// AdvertiseAddr must still be set.
func DefaultRaftConfig() RaftConfig {
	return RaftConfig{
		BindAddr:           "0.0.0.0:7947",          // every interface, next to memberlist's 7946
		HeartbeatTimeout:   1500 * time.Millisecond, // a dead leader is noticed in 1.5-3 s; a 1.5 s stall is survived
		ElectionTimeout:    1500 * time.Millisecond, // a split vote is retried in 1.5-3 s
		LeaderLeaseTimeout: 1500 * time.Millisecond, // check-quorum: as tolerant of a stall as the followers
		CommitTimeout:      50 * time.Millisecond,   // raft's default; followers learn commits within 50 ms
		SnapshotInterval:   30 * time.Second,        // the job store is small: checking is cheap
		SnapshotThreshold:  1024,                    // entries are ~100 bytes: snapshots stay tiny
		TrailingLogs:       1024,                    // a follower down for minutes catches up from the log
		SnapshotRetain:     2,                       // one to fall back on if the newest is damaged
		LogSegmentSize:     8 << 20,                 // tens of thousands of entries per segment file
		MaxPool:            3,                       // raft's suggestion; traffic is light
		TCPTimeout:         2 * time.Second,         // a LAN peer that needs longer is as good as down
	}
}

// LocalRaftConfig returns a configuration for nodes on one host (loopback,
// tests): DefaultRaftConfig's timeouts, so tests measure what production
// gets, with a free loopback port, small log segments and a shorter TCP
// timeout.
func LocalRaftConfig() RaftConfig {
	c := DefaultRaftConfig()
	c.BindAddr = "127.0.0.1:0" // never reachable from outside the host; a free port
	c.LogSegmentSize = 1 << 20 // many nodes per host, each allocates a segment
	c.TCPTimeout = time.Second // loopback answers at once or not at all
	return c
}

// Validate reports the first problem in c, wrapped with
// ErrInvalidRaftConfig. It has no side effects: it neither resolves names
// nor touches DataDir.
func (c *RaftConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRaftConfig, fmt.Sprintf(format, args...))
	}
	if c.NodeID == "" {
		return bad("empty NodeID")
	}
	if c.DataDir == "" {
		return bad("node %q: empty DataDir", c.NodeID)
	}
	if c.Transport == nil {
		bind, err := netip.ParseAddrPort(c.BindAddr)
		if err != nil {
			return bad("node %q: BindAddr %q: expected ip:port", c.NodeID, c.BindAddr)
		}
		if c.AdvertiseAddr == "" && bind.Addr().IsUnspecified() {
			return bad("node %q: BindAddr %q is not an address peers can dial: set AdvertiseAddr", c.NodeID, c.BindAddr)
		}
		if c.AdvertiseAddr != "" {
			if err := checkHostPort(c.AdvertiseAddr); err != nil {
				return bad("node %q: AdvertiseAddr %q: %v", c.NodeID, c.AdvertiseAddr, err)
			}
		}
	}
	if err := c.validateBootstrap(); err != nil {
		return bad("node %q: %v", c.NodeID, err)
	}
	durations := []struct {
		name string
		d    time.Duration
		min  time.Duration
	}{
		{"HeartbeatTimeout", c.HeartbeatTimeout, 5 * time.Millisecond},
		{"ElectionTimeout", c.ElectionTimeout, 5 * time.Millisecond},
		{"LeaderLeaseTimeout", c.LeaderLeaseTimeout, 5 * time.Millisecond},
		{"CommitTimeout", c.CommitTimeout, time.Millisecond},
		{"SnapshotInterval", c.SnapshotInterval, 5 * time.Millisecond},
		{"TCPTimeout", c.TCPTimeout, time.Millisecond},
	}
	for _, d := range durations {
		if d.d < d.min {
			return bad("%s = %v, expected >= %v", d.name, d.d, d.min)
		}
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return bad("ElectionTimeout = %v, expected >= HeartbeatTimeout = %v", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return bad("LeaderLeaseTimeout = %v, expected <= HeartbeatTimeout = %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotThreshold < 1 {
		return bad("SnapshotThreshold = 0, expected >= 1")
	}
	if c.SnapshotRetain < 1 {
		return bad("SnapshotRetain = %d, expected >= 1", c.SnapshotRetain)
	}
	if c.LogSegmentSize < 64<<10 || c.LogSegmentSize > 1<<30 {
		return bad("LogSegmentSize = %d, expected 64 KiB .. 1 GiB", c.LogSegmentSize)
	}
	if c.MaxPool < 1 {
		return bad("MaxPool = %d, expected >= 1", c.MaxPool)
	}
	return nil
}

// validateBootstrap checks the Bootstrap list: unique ids and addresses,
// this node among them.
func (c *RaftConfig) validateBootstrap() error {
	if len(c.Bootstrap) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(c.Bootstrap))
	addrs := make(map[string]string, len(c.Bootstrap))
	for i, p := range c.Bootstrap {
		if p.ID == "" {
			return fmt.Errorf("Bootstrap[%d]: empty ID", i)
		}
		if ids[p.ID] {
			return fmt.Errorf("Bootstrap[%d]: duplicate ID %q", i, p.ID)
		}
		ids[p.ID] = true
		if p.Addr == "" {
			if p.ID != c.NodeID {
				return fmt.Errorf("Bootstrap[%d]: peer %q has an empty Addr (only this node's may be empty)", i, p.ID)
			}
			continue
		}
		if c.Transport == nil {
			if err := checkHostPort(p.Addr); err != nil {
				return fmt.Errorf("Bootstrap[%d]: peer %q: Addr %q: %v", i, p.ID, p.Addr, err)
			}
		}
		if other, dup := addrs[p.Addr]; dup {
			return fmt.Errorf("Bootstrap[%d]: peers %q and %q share Addr %q", i, other, p.ID, p.Addr)
		}
		addrs[p.Addr] = p.ID
	}
	if !ids[c.NodeID] {
		return fmt.Errorf("Bootstrap lists %d peers but not this node", len(c.Bootstrap))
	}
	return nil
}

// checkHostPort reports whether s is "host:port" with a port in 1..65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("expected host:port: %v", err)
	}
	if host == "" {
		return fmt.Errorf("expected host:port, the host is empty")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q, expected 1..65535", port)
	}
	return nil
}

// raftConfig returns the configuration of the raft library for c.
func (c *RaftConfig) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.PreVoteDisabled = false // raft's default, stated: pre-vote keeps a returning node from deposing a healthy leader
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotInterval = c.SnapshotInterval
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.TrailingLogs = c.TrailingLogs
	rc.NoLegacyTelemetry = true
	return rc
}
