package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/flinkgo/flink/internal/stalltest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Strangers that announce the largest frame and stall, or stall after half
// a header, cost the server what they sent, not what they announced, are
// disconnected within the frame timeout and leave no goroutine behind; the
// server keeps serving. Before, each announced 16 MiB was allocated up
// front (20 such peers cost 330 MB) and the connections stayed open for
// ever.
func TestStalledHalfFramesCostLittleAndAreClosed(t *testing.T) {
	limits := DefaultLimits()
	limits.FrameTimeout = 500 * time.Millisecond
	_, addr := serveWith(t, "127.0.0.1:0", limits)

	var hdr [headerSize]byte
	binary.BigEndian.PutUint16(hdr[:2], magic)
	binary.BigEndian.PutUint32(hdr[2:], MaxFrameSize)
	const peers = 50
	res := stalltest.Run(t, stalltest.Config{Addr: addr, Peers: peers, Wait: 30 * time.Second, Start: func(i int) []byte {
		if i%2 == 0 {
			return append(hdr[:], make([]byte, 100)...) // 16 MiB announced, 100 bytes sent
		}
		return hdr[:3] // half a header
	}})
	t.Logf("heap in use grew by %d KiB with %d stalled peers", res.HeapGrowth>>10, peers)
	assert.Less(t, res.HeapGrowth, int64(8<<20), "the stalled peers cost a few MB at most")

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
