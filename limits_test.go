package flink

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startLimitedNode starts a JobManager and TaskManager node on loopback
// whose RPC and data ports disconnect a peer stalled in a frame after
// 300 ms, with rest as its REST limits.
func startLimitedNode(t *testing.T, rest RESTLimits) *Node {
	t.Helper()
	cfg := DefaultNodeConfig(RoleJobManager | RoleTaskManager)
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
