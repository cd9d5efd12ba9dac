package flink

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/flinkgo/flink/internal/rpc"
)

// Every port of a node bounds what a peer, trusted or not, can cost it:
// the RPC port by RPCLimits, the REST port by RESTLimits, the data port by
// network.Config (FrameTimeout, MaxConnections). A peer that stalls in the
// middle of a frame or request is disconnected, memory grows with the
// bytes received rather than with what a header announces, and
// connections beyond the limit are closed as soon as they are accepted.

// RPCLimits bound what a peer can cost a node's RPC server. Zero fields
// take their defaults.
type RPCLimits struct {
	// MaxConnections bounds the connections served at once; one more is
	// closed as soon as it is accepted. Default 1024: every node of a large
	// cluster with room to spare.
	MaxConnections int
	// FrameTimeout bounds the time from a frame's first byte to its last:
	// a peer that stalls in the middle of a frame is disconnected.
	// Default 30 s: a deployment descriptor crosses a slow link within it.
	FrameTimeout time.Duration
	// IdleTimeout closes a connection that sent nothing for that long;
	// clients dial again on their next call. Default 10 minutes.
	IdleTimeout time.Duration
}

// DefaultRPCLimits returns the RPC server's default limits.
func DefaultRPCLimits() RPCLimits { return RPCLimits(rpc.DefaultLimits()) }

// Validate reports a negative limit.
func (l RPCLimits) Validate() error {
	if l.MaxConnections < 0 || l.FrameTimeout < 0 || l.IdleTimeout < 0 {
		return fmt.Errorf("%w: RPC limits %+v: want >= 0 (0 takes the default)", ErrInvalidConfig, l)
	}
	return nil
}

// RESTLimits bound what a client can cost a REST server. Zero fields take
// their defaults.
type RESTLimits struct {
	// MaxConnections bounds the connections served at once; one more is
	// closed as soon as it is accepted, as on the RPC and data ports,
	// rather than left waiting in the listen queue behind clients that may
	// never finish their requests. Default 256: a dashboard opens about
	// six, the CLI one per call.
	MaxConnections int
	// HeaderTimeout bounds the arrival of a request's headers, and
	// RequestTimeout of the whole request (bodies are at most 1 MiB):
	// a client that stalls mid-request is disconnected. Defaults 10 s
	// and 30 s.
	HeaderTimeout  time.Duration
	RequestTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle for that long.
	// Default 2 minutes.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers. Default 64 KiB.
	MaxHeaderBytes int
}

// DefaultRESTLimits returns the REST servers' default limits.
func DefaultRESTLimits() RESTLimits {
	return RESTLimits{MaxConnections: 256, HeaderTimeout: 10 * time.Second, RequestTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// Validate reports a negative limit.
func (l RESTLimits) Validate() error {
	if l.MaxConnections < 0 || l.HeaderTimeout < 0 || l.RequestTimeout < 0 || l.IdleTimeout < 0 || l.MaxHeaderBytes < 0 {
		return fmt.Errorf("%w: REST limits %+v: want >= 0 (0 takes the default)", ErrInvalidConfig, l)
	}
	return nil
}

// withDefaults fills zero fields with the defaults.
func (l RESTLimits) withDefaults() RESTLimits {
	d := DefaultRESTLimits()
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&l.HeaderTimeout, d.HeaderTimeout)
	fill(&l.RequestTimeout, d.RequestTimeout)
	fill(&l.IdleTimeout, d.IdleTimeout)
	if l.MaxConnections <= 0 {
		l.MaxConnections = d.MaxConnections
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return l
}

// limitListener accepts at most max connections that are not closed yet:
// one more is closed as soon as it is accepted. It must wrap the TCP
// listener itself, below any TLS listener, so that the refusal costs no
// handshake and http.Server still sees its *tls.Conn.
type limitListener struct {
	net.Listener
	max int
	log *slog.Logger

	mu struct {
		sync.Mutex
		open    int
		refused int       // since the last warning
		warned  time.Time // warnings come at most once a second
	}
}

func newLimitListener(l net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: l, max: max, log: log}
}

// Accept returns the next connection within the limit, closing those
// beyond it.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.mu.open < l.max {
			l.mu.open++
			l.mu.Unlock()
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.mu.refused++
		var refused int
		if now := time.Now(); now.Sub(l.mu.warned) >= time.Second {
			refused, l.mu.refused, l.mu.warned = l.mu.refused, 0, now
		}
		l.mu.Unlock()
		c.Close()
		if refused > 0 {
			l.log.Warn("connections refused: too many connections", "listener", l.Addr(), "max", l.max, "refused", refused)
		}
	}
}

// limitedConn gives its place back to its listener when closed.
type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

// Close closes the connection and frees its place, once.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.mu.open--
		c.l.mu.Unlock()
	})
	return err
}
