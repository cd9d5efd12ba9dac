package flink

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/flinkgo/flink/internal/stalltest"
	"github.com/flinkgo/flink/security"
	"github.com/stretchr/testify/require"
)

// startLimitedNode starts a JobManager and TaskManager node on loopback
// whose RPC and data ports disconnect a peer stalled in a frame after
// 300 ms, with rest as its REST limits.
func startLimitedNode(t *testing.T, rest RESTLimits) *Node {
	return startLimitedNodeSecured(t, rest, security.Config{})
}

// startLimitedNodeSecured is startLimitedNode with sec as its security.
func startLimitedNodeSecured(t *testing.T, rest RESTLimits, sec security.Config) *Node {
	t.Helper()
	cfg := DefaultNodeConfig(RoleJobManager | RoleTaskManager)
	cfg.Security = sec
	cfg.BindAddr, cfg.RESTAddr, cfg.Registry, cfg.Slots = "127.0.0.1:0", "127.0.0.1:0", testRegistry(), 1
	cfg.RPCLimits.FrameTimeout = 300 * time.Millisecond
	cfg.Network.FrameTimeout = 300 * time.Millisecond
	cfg.RESTLimits = rest
	n, err := NewNode(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() { n.Close() })
	return n
}

// Fifty peers stalled in the middle of a frame or request on each port of
// a node (RPC, data, REST) are disconnected within the timeouts set in
// NodeConfig, cost a few MB at most, and leave no goroutine behind; each
// port serves on.
func TestNodePortsCloseStalledPeers(t *testing.T) {
	n := startLimitedNode(t, RESTLimits{HeaderTimeout: 300 * time.Millisecond, RequestTimeout: 500 * time.Millisecond})
	const peers = 50

	rpcHeader := binary.BigEndian.AppendUint16(nil, 0xF1C0)      // internal/rpc's magic
	rpcHeader = binary.BigEndian.AppendUint32(rpcHeader, 16<<20) // the largest body
	dataHeader := binary.BigEndian.AppendUint16(nil, 0xF11C)     // network's magic
	dataHeader = append(dataHeader, 1, 2)                        // version 1, AddCredit
	dataHeader = binary.BigEndian.AppendUint32(dataHeader, 12)
	ports := []struct {
		name, addr string
		start      func(i int) []byte
	}{
		{"rpc", n.Addr(), func(i int) []byte {
			if i%2 == 0 {
				return append(rpcHeader, make([]byte, 100)...) // 16 MiB announced, 100 bytes sent
			}
			return rpcHeader[:3] // half a header
		}},
		{"data", n.netEnv.Addr(), func(i int) []byte {
			if i%2 == 0 {
				return dataHeader[:3]
			}
			return dataHeader // its payload never comes
		}},
		{"rest", n.RESTAddr(), func(i int) []byte {
			if i%2 == 0 {
				return []byte("GET /overview HTTP/1.1\r\nHost: flink\r\n") // half the headers
			}
			return []byte("POST /jobs HTTP/1.1\r\nHost: flink\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"name\":")
		}},
	}
	for _, p := range ports {
		t.Run(p.name, func(t *testing.T) {
			// 20 s is generous for timeouts of 300 and 500 ms, and shorter
			// than the defaults (30 s): a setting NodeConfig failed to pass
			// on fails the test.
			res := stalltest.Run(t, stalltest.Config{Addr: p.addr, Peers: peers, Start: p.start, Wait: 20 * time.Second})
			t.Logf("heap in use grew by %d KiB with %d stalled peers", res.HeapGrowth>>10, peers)
			require.Less(t, res.HeapGrowth, int64(8<<20), "the stalled peers cost a few MB at most")
		})
	}
	resp, err := http.Get("http://" + n.RESTAddr() + "/overview")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "REST serves on")
	total, _, err := n.ResourceManager().SlotCounts(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, total, "the TaskManager is still registered: RPC serves on")
}

// With security on, fifty peers stalled in the middle of a TLS handshake
// on each port (a ClientHello's record header announcing 16 KiB, or half
// of a real ClientHello) are disconnected within the same timeouts, cost
// a few MB at most and leave no goroutine behind.
func TestSecuredNodePortsCloseStalledHandshakes(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, security.GenerateDevCerts(dir, security.DevCertsConfig{Nodes: []string{"node"}}))
	n := startLimitedNodeSecured(t, RESTLimits{HeaderTimeout: 300 * time.Millisecond, RequestTimeout: 500 * time.Millisecond},
		security.FromDir(dir, "node"))
	hello := clientHelloBytes(t, dir)
	start := func(i int) []byte {
		if i%2 == 0 {
			return []byte{0x16, 0x03, 0x01, 0x40, 0x00, 0x01} // a 16 KiB handshake record, 1 byte of it
		}
		return hello[:len(hello)/2]
	}
	for _, p := range []struct{ name, addr string }{{"rpc", n.Addr()}, {"data", n.netEnv.Addr()}, {"rest", n.RESTAddr()}} {
		t.Run(p.name, func(t *testing.T) {
			res := stalltest.Run(t, stalltest.Config{Addr: p.addr, Peers: 50, Start: start, Wait: 20 * time.Second})
			t.Logf("heap in use grew by %d KiB with 50 stalled handshakes", res.HeapGrowth>>10)
			require.Less(t, res.HeapGrowth, int64(8<<20), "the stalled handshakes cost a few MB at most")
		})
	}
}

// clientHelloBytes returns the first flight of a cluster member's TLS
// client handshake.
func clientHelloBytes(t *testing.T, dir string) []byte {
	t.Helper()
	m, err := security.Load(security.FromDir(dir, "node"))
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, _ := c.Read(buf)
		got <- buf[:k]
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	security.ClientHandshake(ctx, c, m.Internal) // no answer: fails after sending its hello
	hello := <-got
	require.NotEmpty(t, hello)
	return hello
}

// A REST connection beyond NodeConfig.RESTLimits.MaxConnections is closed
// as soon as it is accepted; a closed connection gives its place back.
func TestRESTConnectionLimit(t *testing.T) {
	n := startLimitedNode(t, RESTLimits{MaxConnections: 2, HeaderTimeout: time.Minute})
	// Two connections that sent a request's first byte hold both places.
	var holders []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", n.RESTAddr())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("G"))
		require.NoError(t, err)
		holders = append(holders, c)
	}
	extra, err := net.Dial("tcp", n.RESTAddr())
	require.NoError(t, err)
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = extra.Read(make([]byte, 1))
	var ne net.Error
	require.Error(t, err)
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "a third connection is closed at once, not left waiting: %v", err)

	for _, c := range holders {
		c.Close()
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + n.RESTAddr() + "/overview")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 10*time.Millisecond, "REST serves once the holders are gone")
}

// The servers' limits come from the environment and flags too.
func TestLimitsFromEnv(t *testing.T) {
	t.Setenv("FLINK_RPC_MAX_CONNECTIONS", "100")
	t.Setenv("FLINK_RPC_FRAME_TIMEOUT", "5s")
	t.Setenv("FLINK_DATA_FRAME_TIMEOUT", "7s")
	t.Setenv("FLINK_REST_MAX_CONNECTIONS", "20")
	cfg, _, err := NodeConfigFromEnv(DefaultNodeConfig(RoleJobManager), []string{"-rest-max-connections", "30", "-data-max-connections", "40"})
	require.NoError(t, err)
	require.Equal(t, 100, cfg.RPCLimits.MaxConnections)
	require.Equal(t, 5*time.Second, cfg.RPCLimits.FrameTimeout)
	require.Equal(t, DefaultRPCLimits().IdleTimeout, cfg.RPCLimits.IdleTimeout, "unset: the default")
	require.Equal(t, 7*time.Second, cfg.Network.FrameTimeout)
	require.Equal(t, 40, cfg.Network.MaxConnections)
	require.Equal(t, 30, cfg.RESTLimits.MaxConnections, "flags win over the environment")
	t.Setenv("FLINK_RPC_IDLE_TIMEOUT", "forever")
	_, _, err = NodeConfigFromEnv(DefaultNodeConfig(RoleJobManager), nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorContains(t, err, "FLINK_RPC_IDLE_TIMEOUT")
}
