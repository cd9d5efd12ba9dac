package ha

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/flinkgo/flink/security"
	"github.com/hashicorp/raft"
)

// streamCloseWait bounds how long closing the stream layer waits for
// raft's connection handlers to end; they end at once when their
// connection is closed, so this is only a guard against a hang.
const streamCloseWait = 5 * time.Second

// tcpStreamLayer is the raft.StreamLayer of the TCP transport. Unlike
// raft's own, closing it closes every connection it accepted or dialed and
// waits until raft's handlers of the accepted ones have ended: raft's
// NetworkTransport.Close only stops the listener, and a handler blocked
// reading a peer's idle connection would otherwise outlive the node until
// that peer writes to it or closes it.
type tcpStreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	logger    *slog.Logger
	// tls, if set, secures every connection; accepted ones must finish
	// their handshake within handshakeTimeout.
	tls              *tls.Config
	handshakeTimeout time.Duration

	handlers sync.WaitGroup // accepted connections not yet closed by raft's handler
	accepts  sync.WaitGroup // Accept calls in progress

	mu struct {
		sync.Mutex
		closed bool
		conns  map[*trackedConn]struct{}
	}
}

var _ raft.StreamLayer = (*tcpStreamLayer)(nil)

// newTCPStreamLayer listens on bind ("ip:port"). advertise, if not nil, is
// the address peers dial; otherwise the listener's address, which must
// then be a specific IP.
func newTCPStreamLayer(bind string, advertise net.Addr, logger *slog.Logger) (*tcpStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if a, ok := advertise.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() || a.Port == 0 {
		_ = ln.Close()
		return nil, fmt.Errorf("advertised address %v is not one peers can dial", advertise)
	}
	s := &tcpStreamLayer{ln: ln, advertise: advertise, logger: logger}
	s.mu.conns = make(map[*trackedConn]struct{})
	return s, nil
}

// maxRaftConns bounds the accepted connections of a Raft transport at
// once (its peers pool a few each), so that strangers cannot exhaust the
// node's file descriptors; more are closed as soon as accepted.
const maxRaftConns = 256

// acceptedConns counts the accepted connections not yet closed.
func (s *tcpStreamLayer) acceptedConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.mu.conns {
		if c.accepted {
			n++
		}
	}
	return n
}

// Accept waits for and returns the next inbound connection. It is called
// by the transport's listener goroutine.
func (s *tcpStreamLayer) Accept() (net.Conn, error) {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil, net.ErrClosed
	}
	s.accepts.Add(1)
	s.mu.Unlock()
	defer s.accepts.Done()
	var c net.Conn
	for {
		var err error
		if c, err = s.ln.Accept(); err != nil {
			return nil, err
		}
		if n := s.acceptedConns(); n < maxRaftConns {
			break
		}
		s.logger.Warn("raft: connection refused: too many connections", "remote", c.RemoteAddr(), "max", maxRaftConns)
		_ = c.Close()
	}
	if s.tls != nil {
		// The handshake runs on raft's handler goroutine, at its first
		// read, not here: a stalled stranger must not hold up Accept.
		c = security.LazyServer(c, s.tls, s.handshakeTimeout, func(err error) {
			s.logger.Warn("raft: connection refused", "err", err)
		})
	}
	return s.track(c, true)
}

// Dial connects to a peer within timeout.
func (s *tcpStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if c, err = security.ClientHandshake(ctx, c, s.tls); err != nil {
			return nil, err
		}
	}
	return s.track(c, false)
}

// track registers c so that Close closes it.
func (s *tcpStreamLayer) track(c net.Conn, accepted bool) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, s: s, accepted: accepted}
	s.mu.conns[tc] = struct{}{}
	if accepted {
		s.handlers.Add(1)
	}
	return tc, nil
}

// Addr returns the advertised address.
func (s *tcpStreamLayer) Addr() net.Addr { return s.advertise }

// Close stops the listener, closes every tracked connection and waits for
// the Accept in progress and the handlers of accepted connections to end.
// The transport calls it once, after it stopped consuming RPCs.
func (s *tcpStreamLayer) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	err := s.ln.Close()
	var errs []error
	for c := range s.mu.conns {
		if cerr := c.Conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			errs = append(errs, cerr)
		}
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.accepts.Wait()
		s.handlers.Wait()
		close(done)
	}()
	t := time.NewTimer(streamCloseWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.logger.Warn("raft transport: connection handlers still running after close", "waited", streamCloseWait)
	}
	return errors.Join(append(errs, err)...)
}

// trackedConn is a connection of the stream layer.
type trackedConn struct {
	net.Conn
	s        *tcpStreamLayer
	accepted bool
	once     sync.Once
}

// Close closes the connection and forgets it; for an accepted connection
// it marks its handler done.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.mu.conns, c)
		c.s.mu.Unlock()
		if c.accepted {
			c.s.handlers.Done()
		}
	})
	return err
}
