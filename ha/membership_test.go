package ha

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

const testFingerprint = "fp-test-registry"

// eventLog records a Membership's events and lets a test wait for one.
type eventLog struct {
	mu      sync.Mutex
	events  []MembershipEvent
	changed chan struct{} // closed and replaced on every new event
	done    chan struct{} // closed when the Events channel is closed
}

func recordEvents(m *Membership) *eventLog {
	l := &eventLog{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ev := range m.Events() {
			l.mu.Lock()
			l.events = append(l.events, ev)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	return l
}

// wait returns the first recorded event matching match, waiting up to
// timeout for it.
func (l *eventLog) wait(t testing.TB, timeout time.Duration, what string, match func(MembershipEvent) bool) MembershipEvent {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, ev := range l.events {
			if match(ev) {
				l.mu.Unlock()
				return ev
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-l.done:
			t.Fatalf("events closed while waiting for %s", what)
		case <-deadline.C:
			t.Fatalf("no %s within %v; events: %v", what, timeout, l.snapshot())
		}
	}
}

func (l *eventLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.events {
		out = append(out, ev.Type.String()+":"+ev.Member.Name)
	}
	return out
}

func isEvent(typ EventType, name string) func(MembershipEvent) bool {
	return func(ev MembershipEvent) bool { return ev.Type == typ && ev.Member.Name == name }
}

type testNode struct {
	*Membership
	log *eventLog
}

func testLogger(tb testing.TB) *slog.Logger {
	if os.Getenv("HA_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startNode starts a Membership on loopback, closed at the end of the test.
func startNode(tb testing.TB, id string, edit ...func(*MembershipConfig)) *testNode {
	tb.Helper()
	cfg := LocalMembershipConfig()
	cfg.Meta = NodeMeta{
		NodeID:      id,
		Roles:       RoleTaskManager,
		RPCAddr:     "127.0.0.1:6123",
		DataAddr:    "127.0.0.1:6121",
		Slots:       4,
		Fingerprint: testFingerprint,
		Version:     "test",
	}
	cfg.Logger = testLogger(tb)
	for _, e := range edit {
		e(&cfg)
	}
	m, err := NewMembership(cfg)
	if err != nil {
		tb.Fatalf("NewMembership(%s): %v", id, err)
	}
	n := &testNode{Membership: m, log: recordEvents(m)}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("Close(%s): %v", id, err)
		}
		<-n.log.done
	})
	return n
}

// startCluster starts n nodes, joins them to the first, and waits until
// every node has seen every other join.
func startCluster(tb testing.TB, n int, edit ...func(*MembershipConfig)) []*testNode {
	tb.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = startNode(tb, "node-"+strconv.Itoa(i), edit...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, nd := range nodes[1:] {
		if _, err := nd.Join(ctx, []string{nodes[0].LocalAddr().String()}); err != nil {
			tb.Fatalf("Join: %v", err)
		}
	}
	for _, a := range nodes {
		for _, b := range nodes {
			a.log.wait(tb, 10*time.Second, a.Name()+" sees "+b.Name()+" join", isEvent(EventJoin, b.Name()))
		}
	}
	return nodes
}

func memberNames(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestMembershipThreeNodes(t *testing.T) {
	nodes := startCluster(t, 3)
	want := []string{"node-0", "node-1", "node-2"}
	addrs := make(map[string]string)
	for _, n := range nodes {
		addrs[n.Name()] = n.LocalAddr().String()
	}
	for _, n := range nodes {
		ms := n.Members()
		if got := memberNames(ms); !slices.Equal(got, want) {
			t.Fatalf("%s: Members() = %v, want %v", n.Name(), got, want)
		}
		for _, m := range ms {
			if m.MetaErr != nil || m.Meta.NodeID != m.Name || m.Meta.Slots != 4 ||
				m.Meta.Fingerprint != testFingerprint || m.State != StateAlive {
				t.Errorf("%s sees %+v", n.Name(), m)
			}
			if m.Addr.String() != addrs[m.Name] {
				t.Errorf("%s sees %s at %v", n.Name(), m.Name, m.Addr)
			}
		}
	}
}

func TestMembershipUpdateMeta(t *testing.T) {
	nodes := startCluster(t, 3)
	meta := nodes[2].Meta()
	meta.Slots = 9
	meta.Roles |= RoleJobManager
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[2].UpdateMeta(ctx, meta); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	for _, n := range nodes {
		ev := n.log.wait(t, 10*time.Second, n.Name()+" sees node-2 update", func(ev MembershipEvent) bool {
			return ev.Type == EventUpdate && ev.Member.Name == "node-2" && ev.Member.Meta.Slots == 9
		})
		if ev.Member.Meta != meta {
			t.Errorf("%s: updated meta = %+v, want %+v", n.Name(), ev.Member.Meta, meta)
		}
		i := slices.IndexFunc(n.Members(), func(m Member) bool { return m.Name == "node-2" })
		if got := n.Members()[i].Meta; got != meta {
			t.Errorf("%s: Members() meta = %+v, want %+v", n.Name(), got, meta)
		}
	}
	if err := nodes[2].UpdateMeta(ctx, NodeMeta{NodeID: "node-2", Version: string(make([]byte, MetaMaxSize))}); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("UpdateMeta(too large) = %v, want ErrMetaTooLarge", err)
	}
	if got := nodes[2].Meta(); got != meta {
		t.Fatalf("a rejected update changed Meta() to %+v", got)
	}
}

func TestMembershipGracefulLeave(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[2].Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := nodes[2].Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, n := range nodes[:2] {
		// The announcement and memberlist's notice travel on different
		// connections; a failure reported first is followed by the leave.
		ev := n.log.wait(t, 10*time.Second, n.Name()+" sees node-2 leave", func(ev MembershipEvent) bool {
			return ev.Member.Name == "node-2" && ev.Type == EventLeave
		})
		if ev.Member.State != StateLeft {
			t.Errorf("%s: got %v (%v), want leave (left)", n.Name(), ev.Type, ev.Member.State)
		}
		if got := memberNames(n.Members()); !slices.Equal(got, []string{"node-0", "node-1"}) {
			t.Errorf("%s: Members() = %v after leave", n.Name(), got)
		}
		if got := memberNames(n.Left()); !slices.Equal(got, []string{"node-2"}) {
			t.Errorf("%s: Left() = %v after leave", n.Name(), got)
		}
	}
}

// TestMembershipLeaveAnnouncedLate: a leave announcement that arrives after
// memberlist reported the node gone (TCP and UDP race on a loaded machine)
// turns the failure into a leave, so the Raft leader still removes the node
// that left.
func TestMembershipLeaveAnnouncedLate(t *testing.T) {
	n := startNode(t, "node-0")
	d := &delegate{m: n.Membership}
	peer := &memberlist.Node{Name: "node-1", Addr: net.IPv4(127, 0, 0, 1), Port: 7946}
	d.NotifyJoin(peer)
	d.NotifyLeave(peer)
	n.log.wait(t, 10*time.Second, "failure", func(ev MembershipEvent) bool {
		return ev.Member.Name == "node-1" && ev.Type == EventFailed
	})
	if got := n.Left(); len(got) != 0 {
		t.Fatalf("Left() = %v before the announcement", memberNames(got))
	}
	d.NotifyMsg(append([]byte{userMsgLeaving}, "node-1"...))
	ev := n.log.wait(t, 10*time.Second, "leave after the failure", func(ev MembershipEvent) bool {
		return ev.Member.Name == "node-1" && ev.Type == EventLeave
	})
	if ev.Member.State != StateLeft {
		t.Errorf("leave event state = %v, want left", ev.Member.State)
	}
	if got := memberNames(n.Left()); !slices.Equal(got, []string{"node-1"}) {
		t.Errorf("Left() = %v, want [node-1]", got)
	}
	d.NotifyJoin(peer) // a rejoin forgets the leave
	if got := n.Left(); len(got) != 0 {
		t.Errorf("Left() = %v after a rejoin", memberNames(got))
	}
}

// killAndMeasure closes victim without leaving (as kill -9 would, from the
// peers' point of view: its sockets stop answering) and returns how long
// each survivor took to report it failed.
func killAndMeasure(tb testing.TB, victim *testNode, survivors []*testNode) []time.Duration {
	tb.Helper()
	start := time.Now()
	if err := victim.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	var out []time.Duration
	for _, n := range survivors {
		ev := n.log.wait(tb, 10*time.Second, n.Name()+" sees "+victim.Name()+" fail", func(ev MembershipEvent) bool {
			return ev.Member.Name == victim.Name() && (ev.Type == EventLeave || ev.Type == EventFailed)
		})
		if ev.Type != EventFailed || ev.Member.State != StateDead {
			tb.Fatalf("%s: got %v (%v) for a killed node, want failed (dead)", n.Name(), ev.Type, ev.Member.State)
		}
		out = append(out, ev.Time.Sub(start))
	}
	return out
}

func TestMembershipKilledNodeDetected(t *testing.T) {
	nodes := startCluster(t, 3)
	d := killAndMeasure(t, nodes[2], nodes[:2])
	t.Logf("killed node declared dead after %v (node-0) and %v (node-1); target 3s", d[0], d[1])
	for _, n := range nodes[:2] {
		if got := memberNames(n.Members()); !slices.Equal(got, []string{"node-0", "node-1"}) {
			t.Errorf("%s: Members() = %v after kill", n.Name(), got)
		}
	}
}

func TestMembershipRefusesIncompatible(t *testing.T) {
	a := startNode(t, "a")
	b := startNode(t, "b", func(c *MembershipConfig) { c.Meta.Fingerprint = "fp-other-build" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := b.Join(ctx, []string{a.LocalAddr().String()})
	if !errors.Is(err, ErrIncompatibleBinary) {
		t.Fatalf("Join from another build = %v, want ErrIncompatibleBinary", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Join retried until ctx ended; want an immediate refusal")
	}
	t.Logf("refused: %v", err)
	for _, n := range []*testNode{a, b} {
		if got := memberNames(n.Members()); len(got) != 1 {
			t.Errorf("%s: Members() = %v, want only itself", n.Name(), got)
		}
	}
}

func TestMembershipAdmitsIncompatibleWhenAsked(t *testing.T) {
	admit := func(c *MembershipConfig) { c.RefuseIncompatible = false }
	a := startNode(t, "a", admit)
	b := startNode(t, "b", admit, func(c *MembershipConfig) { c.Meta.Fingerprint = "fp-other-build" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Join(ctx, []string{a.LocalAddr().String()}); err != nil {
		t.Fatalf("Join: %v", err)
	}
	ev := a.log.wait(t, 10*time.Second, "a sees b join", isEvent(EventJoin, "b"))
	if err := CheckCompatible(a.Meta(), ev.Member.Meta); !errors.Is(err, ErrIncompatibleBinary) {
		t.Fatalf("CheckCompatible = %v, want ErrIncompatibleBinary", err)
	}
}

// rawDelegate is a memberlist delegate publishing arbitrary metadata.
type rawDelegate struct{ meta []byte }

func (d rawDelegate) NodeMeta(int) []byte                 { return d.meta }
func (d rawDelegate) NotifyMsg([]byte)                    {}
func (d rawDelegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (d rawDelegate) LocalState(bool) []byte              { return nil }
func (d rawDelegate) MergeRemoteState(buf []byte, _ bool) {}

func TestMembershipMalformedPeerMeta(t *testing.T) {
	a := startNode(t, "a")
	for i, meta := range [][]byte{
		[]byte("not msgpack at all"),
		{metaFormatV1, 0x81, 0xa2, 'i', 'd', 0xdb, 0x7f, 0xff, 0xff, 0xff},
		nil,
	} {
		name := fmt.Sprintf("raw-%d", i)
		mc := memberlist.DefaultLocalConfig()
		mc.Name = name
		mc.BindAddr = "127.0.0.1"
		mc.BindPort = 0
		mc.Delegate = rawDelegate{meta: meta}
		mc.LogOutput = discard{}
		raw, err := memberlist.Create(mc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = raw.Shutdown() })
		if _, err := raw.Join([]string{a.LocalAddr().String()}); err != nil {
			t.Fatalf("raw join: %v", err)
		}
		ev := a.log.wait(t, 10*time.Second, "a sees "+name+" join", isEvent(EventJoin, name))
		if !errors.Is(ev.Member.MetaErr, ErrMalformedMeta) {
			t.Fatalf("join event MetaErr = %v, want ErrMalformedMeta", ev.Member.MetaErr)
		}
		t.Logf("%s: %v", name, ev.Member.MetaErr)
	}
	ms := a.Members()
	if len(ms) != 4 {
		t.Fatalf("Members() = %v, want a and three raw peers", memberNames(ms))
	}
	for _, m := range ms {
		if (m.Name == "a") != (m.MetaErr == nil) {
			t.Errorf("member %s: MetaErr = %v", m.Name, m.MetaErr)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestMembershipJoinRetries(t *testing.T) {
	// Reserve a port, free it, and start the peer on it only after the
	// joiner has begun retrying.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	b := startNode(t, "b")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	peer := "127.0.0.1:" + strconv.Itoa(port)
	if _, err := b.Join(ctx, []string{peer}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join(nobody) = %v, want DeadlineExceeded", err)
	}

	cfg := LocalMembershipConfig()
	cfg.BindPort = port
	cfg.Meta = NodeMeta{NodeID: "a", Fingerprint: testFingerprint}
	type result struct {
		m   *Membership
		err error
	}
	started := make(chan result, 1)
	timer := time.AfterFunc(300*time.Millisecond, func() {
		m, err := NewMembership(cfg)
		started <- result{m, err}
	})
	defer timer.Stop()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	n, joinErr := b.Join(ctx2, []string{peer})
	r := <-started
	if r.err != nil {
		t.Fatalf("NewMembership on port %d: %v", port, r.err)
	}
	defer r.m.Close()
	if joinErr != nil || n != 1 {
		t.Fatalf("Join = %d, %v; want 1 once the peer starts", n, joinErr)
	}
}

func TestMembershipClose(t *testing.T) {
	a := startNode(t, "a", func(c *MembershipConfig) { c.Join = []string{"127.0.0.1:1"} })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	<-a.log.done // Events is closed
	ctx := context.Background()
	if _, err := a.Join(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close = %v", err)
	}
	if err := a.UpdateMeta(ctx, a.Meta()); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateMeta after Close = %v", err)
	}
	if err := a.Leave(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Close = %v", err)
	}
	if !a.LocalAddr().IsValid() {
		t.Errorf("LocalAddr() after Close = %v", a.LocalAddr())
	}
}

func TestNewMembershipInvalidConfig(t *testing.T) {
	cfg := LocalMembershipConfig()
	if _, err := NewMembership(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewMembership(no id) = %v, want ErrInvalidConfig", err)
	}
}

// BenchmarkFailureDetection measures, over b.N runs, how long the two
// survivors of a three-node loopback cluster with the default failure
// detection take to declare a closed (not left) node dead. Run it with
// -benchtime=5x for five runs. Reported: median and max in ms, where each
// run counts the slower survivor.
func BenchmarkFailureDetection(b *testing.B) {
	var runs []time.Duration
	for i := 0; i < b.N; i++ {
		func() {
			b.StopTimer()
			nodes := startCluster(b, 3)
			b.StartTimer()
			d := killAndMeasure(b, nodes[2], nodes[:2])
			runs = append(runs, max(d[0], d[1]))
			b.StopTimer()
			for _, n := range nodes {
				n.Close() // idempotent; Cleanup closes again at the end
			}
		}()
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(runs[len(runs)/2]), "median-detect-ms")
	b.ReportMetric(ms(runs[len(runs)-1]), "max-detect-ms")
	b.Logf("runs: %v", runs)
}

// With a keyring, gossip is encrypted: a node without a key of the pool
// cannot join it, and keys rotate by rolling restarts, each step's old and
// new configurations gossiping together.
func TestMembershipKeyringRotation(t *testing.T) {
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	oldKey, newKey := key(1), key(2)
	withKeys := func(keys ...[]byte) func(*MembershipConfig) {
		return func(c *MembershipConfig) { c.Keys = keys }
	}
	join := func(a, b *testNode) error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := b.Join(ctx, []string{a.LocalAddr().String()})
		return err
	}
	steps := [][][]byte{{oldKey}, {oldKey, newKey}, {newKey, oldKey}, {newKey}}
	for i := 1; i < len(steps); i++ {
		a := startNode(t, fmt.Sprintf("before-%d", i), withKeys(steps[i-1]...))
		b := startNode(t, fmt.Sprintf("after-%d", i), withKeys(steps[i]...))
		require.NoError(t, join(a, b), "step %d: a restarted node gossips with the others", i)
		a.log.wait(t, 10*time.Second, "a sees b", isEvent(EventJoin, b.Name()))
	}

	a := startNode(t, "keyed", withKeys(oldKey))
	for name, keys := range map[string][][]byte{"no key": nil, "other key": {key(3)}} {
		rogue := startNode(t, "rogue-"+strings.ReplaceAll(name, " ", "-"), withKeys(keys...))
		require.Error(t, join(a, rogue), name)
		require.Equal(t, []string{"keyed"}, memberNames(a.Members()), "%s: the rogue is not a member", name)
	}
	_, err := NewMembership(func() MembershipConfig {
		c := LocalMembershipConfig()
		c.Meta, c.Keys = NodeMeta{NodeID: "x", Fingerprint: testFingerprint, Version: "test"}, [][]byte{key(4)[:7]}
		return c
	}())
	require.ErrorIs(t, err, ErrInvalidConfig, "a key of 7 bytes")
}
