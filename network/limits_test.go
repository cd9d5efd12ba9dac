package network

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// Peers that stall inside a frame on the data port (half a header, or a
// header whose payload never comes) are disconnected within the frame
// timeout; before, they stayed connected for ever.
func TestDataPortClosesStalledFrames(t *testing.T) {
	cfg := testConfig(true)
	cfg.FrameTimeout = 300 * time.Millisecond
	env := newEnv(t, cfg)
	var hdr [frameHeaderSize]byte
	binary.BigEndian.PutUint16(hdr[0:], frameMagic)
	hdr[2], hdr[3] = frameVersion, byte(msgAddCredit)
	binary.BigEndian.PutUint32(hdr[4:], 12)
	const peers = 50
	var wg sync.WaitGroup
	errs := make([]error, peers)
	for i := range peers {
		nc, err := net.Dial("tcp", env.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if i%2 == 0 {
			_, err = nc.Write(hdr[:3]) // half a header
		} else {
			_, err = nc.Write(hdr[:]) // a header; its payload never comes
		}
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := nc.Read(make([]byte, 1))
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				errs[i] = errors.New("still connected after 30 s")
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("peer %d: %v", i, err)
		}
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
