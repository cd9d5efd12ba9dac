package network

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/flinkgo/flink/internal/stalltest"
)

// Peers that stall inside a frame on the data port (half a header, or a
// header whose payload never comes) are disconnected within the frame
// timeout, cost a few MB at most and leave no goroutine behind; before,
// they stayed connected for ever.
func TestDataPortClosesStalledFrames(t *testing.T) {
	cfg := testConfig(true)
	cfg.FrameTimeout = 300 * time.Millisecond
	env := newEnv(t, cfg)
	var hdr [frameHeaderSize]byte
	binary.BigEndian.PutUint16(hdr[0:], frameMagic)
	hdr[2], hdr[3] = frameVersion, byte(msgAddCredit)
	binary.BigEndian.PutUint32(hdr[4:], 12)
	const peers = 50
	res := stalltest.Run(t, stalltest.Config{Addr: env.Addr(), Peers: peers, Wait: 30 * time.Second, Start: func(i int) []byte {
		if i%2 == 0 {
			return hdr[:3] // half a header
		}
		return hdr[:] // a header; its payload never comes
	}})
	t.Logf("heap in use grew by %d KiB with %d stalled peers", res.HeapGrowth>>10, peers)
	if res.HeapGrowth > 8<<20 {
		t.Errorf("the stalled peers cost %d KiB, want a few MB at most", res.HeapGrowth>>10)
	}
}

// Connections beyond MaxConnections are closed at once.
func TestDataPortConnectionLimit(t *testing.T) {
	cfg := testConfig(true)
	cfg.MaxConnections = 1
	env := newEnv(t, cfg)
	first, err := net.Dial("tcp", env.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		extra, err := net.Dial("tcp", env.Addr())
		if err != nil {
			t.Fatal(err)
		}
		extra.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = extra.Read(make([]byte, 1))
		extra.Close()
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return // closed by the server
		}
		if time.Now().After(deadline) {
			t.Fatal("a second connection was not closed")
		}
	}
}
