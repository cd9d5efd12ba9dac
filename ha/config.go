package ha

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// MembershipConfig configures a Membership. Start from
// DefaultMembershipConfig or LocalMembershipConfig, set NodeName or
// Meta.NodeID and the addresses, then pass it to NewMembership, which
// validates it. The zero value is not valid.
type MembershipConfig struct {
	// NodeName is the node's unique name in the pool. Empty means
	// Meta.NodeID.
	NodeName string
	// BindAddr is the IP address the gossip listeners (UDP and TCP) bind.
	BindAddr string
	// BindPort is the port the gossip listeners bind; 0 picks a free port
	// that is free for both UDP and TCP (see Membership.LocalAddr).
	BindPort int
	// AdvertiseAddr is the IP address peers use to reach this node. Empty
	// means BindAddr, or a private address of the host if BindAddr is
	// unspecified (0.0.0.0).
	AdvertiseAddr string
	// AdvertisePort is the port peers use to reach this node; 0 means the
	// bound port.
	AdvertisePort int
	// Join lists the peers ("host:port") that Membership.Join contacts when
	// it is called with no peers.
	Join []string
	// Meta is the metadata this node publishes. It must pass
	// NodeMeta.Validate and encode within MetaMaxSize.
	Meta NodeMeta
	// Logger receives the membership's logs, including memberlist's, at
	// matching levels. Nil discards them.
	Logger *slog.Logger
	// RefuseIncompatible makes this node refuse to merge with, or admit,
	// peers whose metadata decodes but fails CheckCompatible against Meta.
	// Peers with undecodable metadata are admitted and reported with
	// Member.MetaErr, so the application decides.
	RefuseIncompatible bool
	// Keys, if set, encrypt and authenticate all gossip (UDP and TCP) with
	// memberlist's keyring: the first key encrypts, every key decrypts, so
	// a key is rotated by rolling restarts (add it last, then move it
	// first, then drop the old one). A node without a key of the pool
	// cannot join it or be heard. Each key is 16, 24 or 32 bytes (AES-128,
	// -192, -256).
	Keys [][]byte

	// ProbeInterval is how often this node probes a random peer. With
	// ProbeTimeout, SuspicionMult and the cluster size it sets how fast a
	// dead node is detected.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for an ack before
	// indirect probes start. It must be below ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspected node has to refute the
	// suspicion: SuspicionMult * max(1, log10(n)) * ProbeInterval once
	// SuspicionMult-2 other nodes confirm the suspicion.
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds the suspicion time when no other node
	// confirms: SuspicionMaxTimeoutMult times the minimum above.
	SuspicionMaxTimeoutMult int
	// IndirectChecks is how many peers are asked to probe a node that did
	// not answer a direct probe.
	IndirectChecks int
	// GossipInterval is how often queued broadcasts (joins, suspicions,
	// deaths, metadata updates) are gossiped.
	GossipInterval time.Duration
	// GossipNodes is how many random peers each gossip round reaches.
	GossipNodes int
	// RetransmitMult scales how many times a broadcast is retransmitted:
	// RetransmitMult * ceil(log10(n+1)).
	RetransmitMult int
	// PushPullInterval is how often a full state sync with a random peer
	// runs, repairing what gossip missed; 0 disables it.
	PushPullInterval time.Duration
	// TCPTimeout bounds each TCP exchange: a join attempt to one peer, a
	// push/pull sync, a fallback probe.
	TCPTimeout time.Duration
	// GossipToTheDeadTime is how long dead nodes still receive gossip, so
	// that a falsely declared node learns it and rejoins; dead nodes are
	// forgotten after it.
	GossipToTheDeadTime time.Duration
	// DeadNodeReclaimTime is how long after its death a node's name may be
	// taken by a node at another address (a restarted container with a new
	// IP); 0 means only after the dead node is forgotten.
	DeadNodeReclaimTime time.Duration
	// BroadcastTimeout bounds how long UpdateMeta and Leave wait for their
	// broadcast to go out; a context deadline shortens it.
	BroadcastTimeout time.Duration
}

// DefaultMembershipConfig returns a configuration for a LAN, tuned so that a
// killed node is declared dead within 3 s in clusters of up to 10 nodes
// (memberlist's own LAN preset takes 5 s or more). The detection time is
// the wait for some peer's next probe of the dead node (at most
// ProbeInterval on average, up to (n-1)*ProbeInterval for one prober), one
// ProbeInterval for the direct and indirect probes to fail, and
// SuspicionMult*ProbeInterval of suspicion once a second peer confirms:
// about 0.4 + 0.4 + 1.2 = 2 s, 2.4 s at worst in a three-node cluster.
// Above 10 nodes the suspicion grows with log10(n).
func DefaultMembershipConfig() MembershipConfig {
	return MembershipConfig{
		BindAddr:                "0.0.0.0",              // every interface; containers have one
		BindPort:                7946,                   // memberlist's well-known gossip port
		RefuseIncompatible:      true,                   // a fingerprint mismatch is an error, never silent
		ProbeInterval:           400 * time.Millisecond, // a dead node is probed, and suspected, within ~1 s
		ProbeTimeout:            200 * time.Millisecond, // LAN RTT is far lower; leaves 200 ms for indirect probes
		SuspicionMult:           3,                      // 1.2 s to refute (up to 10 nodes) once 1 other node confirms
		SuspicionMaxTimeoutMult: 4,                      // unconfirmed, up to 4.8 s: one slow prober is not trusted alone
		IndirectChecks:          3,                      // enough independent paths to rule out one lossy link
		GossipInterval:          100 * time.Millisecond, // suspicion and death spread in ~100 ms per hop
		GossipNodes:             3,                      // memberlist's default fan-out
		RetransmitMult:          4,                      // memberlist's default; reaches every node with high probability
		PushPullInterval:        15 * time.Second,       // cheap anti-entropy at our cluster sizes
		TCPTimeout:              3 * time.Second,        // a LAN peer that needs longer is as good as down
		GossipToTheDeadTime:     15 * time.Second,       // lets a falsely declared node learn it and rejoin
		DeadNodeReclaimTime:     5 * time.Second,        // a restarted container may rejoin under its old name
		BroadcastTimeout:        5 * time.Second,        // far more than one gossip round on a LAN
	}
}

// LocalMembershipConfig returns a configuration for nodes on one host
// (loopback, tests): DefaultMembershipConfig's failure detection, so tests
// measure what production gets, with loopback addresses, a free port and
// shorter network timeouts.
func LocalMembershipConfig() MembershipConfig {
	c := DefaultMembershipConfig()
	c.BindAddr = "127.0.0.1"                // never reachable from outside the host
	c.BindPort = 0                          // a free port: many nodes per host
	c.TCPTimeout = time.Second              // loopback answers at once or not at all
	c.PushPullInterval = 5 * time.Second    // state converges fast in tests
	c.GossipToTheDeadTime = 5 * time.Second // short-lived nodes are forgotten sooner
	c.BroadcastTimeout = 2 * time.Second    // loopback gossip is immediate
	return c
}

// name returns the effective node name.
func (c *MembershipConfig) name() string {
	if c.NodeName != "" {
		return c.NodeName
	}
	return c.Meta.NodeID
}

// Validate reports the first problem in c, wrapped with ErrInvalidConfig
// (and with ErrInvalidMeta or ErrMetaTooLarge for Meta). It has no side
// effects.
func (c *MembershipConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.name() == "" {
		return bad("NodeName and Meta.NodeID are both empty")
	}
	if _, err := netip.ParseAddr(c.BindAddr); err != nil {
		return bad("BindAddr %q: expected an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" {
		if _, err := netip.ParseAddr(c.AdvertiseAddr); err != nil {
			return bad("AdvertiseAddr %q: expected an IP address or empty", c.AdvertiseAddr)
		}
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return bad("BindPort = %d, expected 0..65535", c.BindPort)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return bad("AdvertisePort = %d, expected 0..65535", c.AdvertisePort)
	}
	if _, err := c.Meta.Encode(); err != nil {
		return fmt.Errorf("%w: Meta: %w", ErrInvalidConfig, err)
	}
	for i, k := range c.Keys {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return bad("Keys[%d] is %d bytes, expected 16, 24 or 32", i, n)
		}
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval},
		{"TCPTimeout", c.TCPTimeout},
		{"BroadcastTimeout", c.BroadcastTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return bad("%s = %v, expected > 0", p.name, p.d)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return bad("ProbeTimeout = %v, expected below ProbeInterval = %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.PushPullInterval < 0 || c.GossipToTheDeadTime < 0 || c.DeadNodeReclaimTime < 0 {
		return bad("PushPullInterval, GossipToTheDeadTime and DeadNodeReclaimTime must be >= 0")
	}
	counts := []struct {
		name string
		n    int
	}{
		{"SuspicionMult", c.SuspicionMult},
		{"SuspicionMaxTimeoutMult", c.SuspicionMaxTimeoutMult},
		{"GossipNodes", c.GossipNodes},
		{"RetransmitMult", c.RetransmitMult},
	}
	for _, p := range counts {
		if p.n < 1 {
			return bad("%s = %d, expected >= 1", p.name, p.n)
		}
	}
	if c.IndirectChecks < 0 {
		return bad("IndirectChecks = %d, expected >= 0", c.IndirectChecks)
	}
	return nil
}
