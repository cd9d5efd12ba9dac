package flink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startIdentityJobManager starts a JobManager node on loopback whose
// heartbeat timeout is a minute: a TaskManager taken over quickly was not
// declared lost by missed heartbeats.
func startIdentityJobManager(t *testing.T) *Node {
	t.Helper()
	cfg := DefaultNodeConfig(RoleJobManager)
	cfg.BindAddr, cfg.Registry, cfg.SlotRequestTimeout = "127.0.0.1:0", testRegistry(), time.Minute
	cfg.HeartbeatTimeout = time.Minute
	n, err := NewNode(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() { n.Close() })
	return n
}

// newIdentityTaskManager prepares a TaskManager node with id on its own
// loopback port, as a separate process would be; opts may give a
// *slog.Logger to log to and a bind address (string).
func newIdentityTaskManager(t *testing.T, id, jmAddr string, slots int, opts ...any) *Node {
	t.Helper()
	cfg := DefaultNodeConfig(RoleTaskManager)
	cfg.ID, cfg.JobManagerAddr, cfg.Slots, cfg.Registry = id, jmAddr, slots, testRegistry()
	for _, o := range opts {
		switch o := o.(type) {
		case *slog.Logger:
			cfg.Logger = o
		case string:
			cfg.BindAddr = o
		}
	}
	n, err := NewNode(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	return n
}

// registeredAt returns the address under which rm knows TaskManager id,
// and its slots; empty if it does not know it.
func registeredAt(rm *ResourceManager, id ResourceID) (addr string, slots int) {
	for _, tm := range rm.TaskManagers() {
		if tm.ID == id {
			return tm.Address, tm.SlotsTotal
		}
	}
	return "", 0
}

// TestTaskManagerIDHijackRefused starts a second TaskManager node under
// the id of a live one, at another address: its registration is refused
// with ErrTaskManagerIDInUse, and the first keeps its slots and runs the
// next job, exactly. Before, the second took over the id's address and
// the next job failed on it.
func TestTaskManagerIDHijackRefused(t *testing.T) {
	jm := startIdentityJobManager(t)
	rm := jm.ResourceManager()
	first := newIdentityTaskManager(t, "tm-a", jm.Addr(), 2)
	require.NoError(t, first.Start(context.Background()))
	waitForSlots(t, rm, 2)

	second := newIdentityTaskManager(t, "tm-a", jm.Addr(), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := second.Start(ctx)
	require.ErrorIs(t, err, ErrTaskManagerIDInUse)
	require.ErrorContains(t, err, first.Addr())
	second.Close()
	// The address is the sender's word: one naming the first's is refused
	// too.
	err = rm.RegisterTaskManager(ctx, TaskManagerRegistration{ID: "tm-a", Address: first.Addr() + "/taskmanager/tm-a",
		Instance: "rogue", Fingerprint: testRegistry().Fingerprint()})
	require.ErrorIs(t, err, ErrTaskManagerIDInUse)

	addr, slots := registeredAt(rm, "tm-a")
	require.Equal(t, first.Addr()+"/taskmanager/tm-a", addr, "the first keeps its address")
	require.Equal(t, 2, slots, "the first keeps its slots")

	dir := t.TempDir()
	const n = 200_000
	id, err := jm.Dispatcher().SubmitJob(ctx, JobSubmission{Name: "keyed-totals", Args: []string{fmt.Sprint(n), dir}, Parallelism: 2})
	require.NoError(t, err)
	res, err := jm.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	require.NoError(t, res.Err)
	require.Zero(t, res.Restarts)
	requireTotals(t, dir, n, "the next job")
}

// TestRestartedTaskManagerIDAcceptedAtOnce closes a TaskManager node and
// starts another under its id at a new address, as a killed and restarted
// process with a dynamic port: the old one does not answer at its old
// address, so the new one is accepted at once, long before the heartbeat
// timeout (a minute) would declare the old one lost.
func TestRestartedTaskManagerIDAcceptedAtOnce(t *testing.T) {
	jm := startIdentityJobManager(t)
	rm := jm.ResourceManager()
	first := newIdentityTaskManager(t, "tm-b", jm.Addr(), 1)
	require.NoError(t, first.Start(context.Background()))
	waitForSlots(t, rm, 1)
	first.Close()

	second := newIdentityTaskManager(t, "tm-b", jm.Addr(), 2)
	// Far less than the heartbeat timeout: only the probe can let it in.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, second.Start(ctx))
	addr, slots := registeredAt(rm, "tm-b")
	require.Equal(t, second.Addr()+"/taskmanager/tm-b", addr)
	require.Equal(t, 2, slots)

	// Restarted at the same address (a fixed port), it is accepted at
	// once too: the old instance no longer answers there.
	second.Close()
	third := newIdentityTaskManager(t, "tm-b", jm.Addr(), 3, second.Addr())
	require.NoError(t, third.Start(ctx))
	addr, slots = registeredAt(rm, "tm-b")
	require.Equal(t, second.Addr()+"/taskmanager/tm-b", addr)
	require.Equal(t, 3, slots)
}

// TestSilentTaskManagerIDTakenOver registers a TaskManager whose address
// accepts connections but never answers (a paused or wedged process): a
// new instance under its id from another address is accepted once the
// probe's deadline passes, not after the heartbeat timeout.
func TestSilentTaskManagerIDTakenOver(t *testing.T) {
	jm := startIdentityJobManager(t)
	rm := jm.ResourceManager()
	silent := silentListener(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, rm.RegisterTaskManager(ctx, TaskManagerRegistration{
		ID: "tm-c", Address: silent + "/taskmanager/tm-c", Instance: "old", Fingerprint: testRegistry().Fingerprint(),
		Slots: []SlotStatus{{ID: SlotID{TaskManager: "tm-c"}}},
	}))
	second := newIdentityTaskManager(t, "tm-c", jm.Addr(), 1)
	require.NoError(t, second.Start(ctx))
	addr, _ := registeredAt(rm, "tm-c")
	require.Equal(t, second.Addr()+"/taskmanager/tm-c", addr)
}

// TestTaskManagerRefusedOnReregistrationSaysSoAndRetries makes the
// ResourceManager forget a live TaskManager (as a missed heartbeat
// would), lets a second one take its id, and checks that the first, told
// by its next heartbeat to register again, is refused, logs it as an
// error once, and registers again as soon as the second is gone.
func TestTaskManagerRefusedOnReregistrationSaysSoAndRetries(t *testing.T) {
	jm := startIdentityJobManager(t)
	rm := jm.ResourceManager()
	logs := &recordingHandler{}
	first := newIdentityTaskManager(t, "tm-d", jm.Addr(), 1, slog.New(logs))
	require.NoError(t, first.Start(context.Background()))
	waitForSlots(t, rm, 1)

	// The first may register again between the two steps: then the
	// second is refused, and the test tries again.
	var second *Node
	var startErr error
	require.Eventually(t, func() bool {
		rm.TaskManagerLost("tm-d", errors.New("the test forgets it"))
		second = newIdentityTaskManager(t, "tm-d", jm.Addr(), 2)
		startErr = second.Start(context.Background())
		if errors.Is(startErr, ErrTaskManagerIDInUse) {
			second.Close()
			return false
		}
		return true
	}, 30*time.Second, time.Millisecond, "the second takes the id of the forgotten first")
	require.NoError(t, startErr)
	require.Eventually(t, func() bool { return logs.count(slog.LevelError, "registration refused") > 0 },
		30*time.Second, 5*time.Millisecond, "the first logs its refusal")
	addr, _ := registeredAt(rm, "tm-d")
	require.Equal(t, second.Addr()+"/taskmanager/tm-d", addr, "the second keeps the id")

	second.Close()
	require.Eventually(t, func() bool {
		addr, _ := registeredAt(rm, "tm-d")
		return addr == first.Addr()+"/taskmanager/tm-d"
	}, 30*time.Second, 5*time.Millisecond, "the first registers again once the second is gone")
	require.Equal(t, 1, logs.count(slog.LevelError, "registration refused"), "the refusal is logged once, not every heartbeat")
}

// recordingHandler is a slog.Handler that keeps every record's level and
// message.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

// count returns how many records of level have a message that starts with
// prefix.
func (h *recordingHandler) count(level slog.Level, prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Level == level && strings.HasPrefix(r.Message, prefix) {
			n++
		}
	}
	return n
}

// silentListener listens on loopback, accepts connections and never
// answers on them, until the test ends.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
