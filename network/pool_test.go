package network

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestPoolInsufficientBuffers(t *testing.T) {
	p, err := NewNetworkBufferPool(10, 1024)
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.CreateLocalBufferPool(8, 10)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.CreateLocalBufferPool(4, 4)
	mustErrIs(t, err, ErrInsufficientBuffers)
	if msg := err.Error(); !strings.Contains(msg, "need 4 buffers") || !strings.Contains(msg, "only 2 of 10") {
		t.Fatalf("error %q does not give needed and available buffers", msg)
	}
	a.Destroy()
	b, err := p.CreateLocalBufferPool(4, 4)
	if err != nil {
		t.Fatalf("after Destroy: %v", err)
	}
	b.Destroy()
	if m := p.Metrics(); m.Reserved != 0 || m.LocalPools != 0 || m.Available != 10 {
		t.Fatalf("metrics after destroying all pools: %+v", m)
	}
}

func TestPoolEnvironmentDeployError(t *testing.T) {
	cfg := testConfig(false)
	cfg.NumBuffers = 4
	env := newEnv(t, cfg)
	_, err := env.NewResultPartition(pid(0, 0), 8)
	mustErrIs(t, err, ErrInsufficientBuffers)
	if !strings.Contains(err.Error(), "need 9 buffers") {
		t.Fatalf("error %q", err)
	}
}

func TestPoolMinGuaranteedAndExcessShared(t *testing.T) {
	p, _ := NewNetworkBufferPool(6, 1024)
	a, _ := p.CreateLocalBufferPool(2, 6)
	b, _ := p.CreateLocalBufferPool(2, 6)
	defer a.Destroy()
	defer b.Destroy()
	// a may take its 2 plus the 2 buffers nobody is guaranteed, but not b's 2.
	var segs []*segment
	for {
		s, err := a.requestSegment()
		if err != nil {
			t.Fatal(err)
		}
		if s == nil {
			break
		}
		segs = append(segs, s)
	}
	if len(segs) != 4 {
		t.Fatalf("a got %d buffers, want 4 (2 guaranteed + 2 excess)", len(segs))
	}
	for range 2 {
		if s, _ := b.requestSegment(); s == nil {
			t.Fatal("b did not get its guaranteed buffer")
		}
	}
	// A blocked request gives up with its context, never hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.requestSegmentBlocking(ctx); err == nil {
		t.Fatal("blocking request succeeded on an exhausted pool")
	}
	// Recycling wakes a blocked request.
	done := make(chan *segment)
	go func() {
		s, _ := a.requestSegmentBlocking(context.Background())
		done <- s
	}()
	segs[0].release()
	select {
	case s := <-done:
		if s == nil {
			t.Fatal("nil segment")
		}
		s.release()
	case <-time.After(5 * time.Second):
		t.Fatal("blocked request not woken by recycling")
	}
	for _, s := range segs[1:] {
		s.release()
	}
}

func TestPoolDestroyWakesWaiters(t *testing.T) {
	p, _ := NewNetworkBufferPool(1, 1024)
	a, _ := p.CreateLocalBufferPool(1, 1)
	s, _ := a.requestSegment()
	errc := make(chan error)
	go func() {
		_, err := a.requestSegmentBlocking(context.Background())
		errc <- err
	}()
	waitFor(t, 5*time.Second, "waiter", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.mu.waiters == 1 })
	a.Destroy()
	mustErrIs(t, <-errc, ErrClosed)
	s.release()
	if m := p.Metrics(); m.Available != 1 {
		t.Fatalf("buffer not returned after destroy: %+v", m)
	}
}

func TestMillisPerSecond(t *testing.T) {
	cases := []struct {
		before, after int64
		elapsed       time.Duration
		want          float64
	}{
		{0, int64(500 * time.Millisecond), time.Second, 500},
		{int64(time.Second), int64(3 * time.Second), 2 * time.Second, 1000},
		{0, 0, time.Second, 0},
		{5, 1, time.Second, 0}, // counter went backwards: no rate
		{0, 10, 0, 0},          // no elapsed time
	}
	for _, c := range cases {
		if got := MillisPerSecond(c.before, c.after, c.elapsed); got != c.want {
			t.Errorf("MillisPerSecond(%d, %d, %v) = %v, want %v", c.before, c.after, c.elapsed, got, c.want)
		}
	}
}
