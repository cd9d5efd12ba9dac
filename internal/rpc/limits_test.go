package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heapInUse returns the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Strangers that announce the largest frame and stall, or stall after half
// a header, cost the server what they sent, not what they announced, and
// are disconnected within the frame timeout; the server keeps serving.
// Before, each announced 16 MiB was allocated up front (20 such peers cost
// 330 MB) and the connections stayed open for ever.
func TestStalledHalfFramesCostLittleAndAreClosed(t *testing.T) {
	const peers = 50
	limits := DefaultLimits()
	limits.FrameTimeout = 500 * time.Millisecond
	_, addr := serveWith(t, "127.0.0.1:0", limits)
	before := heapInUse()

	var hdr [headerSize]byte
	binary.BigEndian.PutUint16(hdr[:2], magic)
	binary.BigEndian.PutUint32(hdr[2:], MaxFrameSize)
	conns := make([]net.Conn, peers)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		if i%2 == 0 {
			_, err = c.Write(append(hdr[:], make([]byte, 100)...)) // 16 MiB announced, 100 bytes sent
		} else {
			_, err = c.Write(hdr[:3]) // half a header
		}
		require.NoError(t, err)
		conns[i] = c
	}
	// Every stalled peer is disconnected: a read sees the close well
	// before its own deadline.
	var wg sync.WaitGroup
	closed := make([]bool, peers)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			closed[i] = err != nil && !(errors.As(err, &ne) && ne.Timeout())
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
		assert.True(t, ok, "stalled peer %d disconnected", i)
	}
	grown := int64(peak) - int64(before)
	t.Logf("heap in use grew by %d KiB with %d stalled peers", grown>>10, peers)
	assert.Less(t, grown, int64(8<<20), "the stalled peers cost a few MB at most")

	c := NewClient(addr, nil, nil)
	defer c.Close()
	_, err := Call[echoReq, echoResp](context.Background(), c, "echo", echoReq{Text: "still serving"})
	require.NoError(t, err)
}

// Connections beyond MaxConnections are closed at once; the ones served
// go on.
func TestConnectionLimit(t *testing.T) {
	limits := DefaultLimits()
	limits.MaxConnections = 2
	_, addr := serveWith(t, "127.0.0.1:0", limits)
	c := NewClient(addr, nil, nil)
	defer c.Close()
	_, err := Call[echoReq, echoResp](context.Background(), c, "echo", echoReq{Text: "one"})
	require.NoError(t, err)
	idle, err := net.Dial("tcp", addr) // the second connection
	require.NoError(t, err)
	defer idle.Close()
	require.Eventually(t, func() bool {
		extra, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer extra.Close()
		extra.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = extra.Read(make([]byte, 1))
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}, 10*time.Second, 10*time.Millisecond, "a third connection is closed at once")
	_, err = Call[echoReq, echoResp](context.Background(), c, "echo", echoReq{Text: "two"})
	require.NoError(t, err, "the first connection goes on")
}
