// Package stalltest checks, over real TCP, that a server bounds what
// stalled peers cost it: peers that send the start of a frame or request
// and then nothing must be disconnected within the server's timeout, cost
// memory for what they sent rather than what they announced, and leave no
// goroutine behind. The RPC, data and REST ports' tests share it.
package stalltest

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Config describes a stall test.
type Config struct {
	// Addr is the server's address.
	Addr string
	// Peers is the number of stalled peers, each on its own connection.
	Peers int
	// Start returns what peer i sends before it stalls.
	Start func(i int) []byte
	// Wait bounds how long a peer waits to be disconnected, and how long
	// the goroutines may take to return: a generous bound, far beyond the
	// server's configured timeout, so that a loaded machine does not fail
	// the test, while a server that never disconnects does.
	Wait time.Duration
}

// Result is what the stalled peers cost the server.
type Result struct {
	// HeapGrowth is the peak of the heap in use while the peers stalled,
	// minus the heap in use before they connected (after collections).
	HeapGrowth int64
}

// Run connects the peers, sends each its start and waits until the server
// disconnects every one: a read on each peer sees the server close the
// connection (after any response it sends), not the peer's own deadline.
// Meanwhile it samples the heap. It then waits until the number of
// goroutines is back to what it was before the peers connected. It fails t
// if a peer is not disconnected or goroutines remain.
func Run(t testing.TB, cfg Config) Result {
	t.Helper()
	before, goroutines := heapInUse(), runtime.NumGoroutine()

	conns := make([]net.Conn, cfg.Peers)
	for i := range conns {
		c, err := net.Dial("tcp", cfg.Addr)
		if err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		defer c.Close()
		if _, err := c.Write(cfg.Start(i)); err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		conns[i] = c
	}
	var wg sync.WaitGroup
	closed := make([]bool, cfg.Peers)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(cfg.Wait))
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			closed[i] = !(errors.As(err, &ne) && ne.Timeout())
		}()
	}
	// The heap's peak while the peers stall, sampled until the server has
	// disconnected them all (one sample could come before the server read
	// anything).
	disconnected := make(chan struct{})
	go func() { wg.Wait(); close(disconnected) }()
	var peak uint64
	for sampling := true; sampling; {
		peak = max(peak, heapInUse())
		select {
		case <-disconnected:
			sampling = false
		case <-time.After(20 * time.Millisecond):
		}
	}
	for i, ok := range closed {
		if !ok {
			t.Errorf("stalled peer %d still connected after %v", i, cfg.Wait)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(cfg.Wait)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines after the stalled peers were disconnected, %d before:\n%s",
				runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return Result{HeapGrowth: int64(peak) - int64(before)}
}

// heapInUse returns the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
