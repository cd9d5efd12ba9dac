package rpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/flinkgo/flink/security"
	"github.com/vmihailenco/msgpack/v5"
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("rpc: server closed")

// ErrUnknownMethod: the server has no handler for the method called.
var ErrUnknownMethod = errors.New("rpc: unknown method")

// Codes maps well-known errors to names that travel on the wire, so that a
// caller can match a remote error with errors.Is. Server and client should
// share one Codes value.
type Codes map[string]error

func (c Codes) codeOf(err error) string {
	switch {
	case errors.Is(err, ErrUnknownMethod):
		return "rpc.unknown_method"
	case errors.Is(err, context.DeadlineExceeded):
		return "rpc.deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "rpc.canceled"
	}
	for code, target := range c {
		if errors.Is(err, target) {
			return code
		}
	}
	return ""
}

func (c Codes) errorOf(code string) error {
	switch code {
	case "rpc.unknown_method":
		return ErrUnknownMethod
	case "rpc.deadline_exceeded":
		// The caller's deadline, which travelled with the call, expired on
		// the server.
		return context.DeadlineExceeded
	case "rpc.canceled":
		return context.Canceled
	}
	return c[code]
}

// Limits bound what a peer can cost a server, trusted or not.
type Limits struct {
	// MaxConnections bounds the connections served at once; one more is
	// closed as soon as it is accepted. Default 1024.
	MaxConnections int
	// FrameTimeout bounds the time from a frame's first byte to its last:
	// a peer that stalls in the middle of a frame is disconnected.
	// Default 30 s.
	FrameTimeout time.Duration
	// IdleTimeout closes a connection that sent nothing for that long
	// (clients dial again on their next call). Default 10 minutes.
	IdleTimeout time.Duration
}

// DefaultLimits returns the limits a server has unless told otherwise.
func DefaultLimits() Limits {
	return Limits{MaxConnections: 1024, FrameTimeout: 30 * time.Second, IdleTimeout: 10 * time.Minute}
}

// handler decodes a request body, serves it and returns the response.
type handler func(ctx context.Context, body []byte) (any, error)

// Server serves registered methods on every connection it accepts. Register
// handlers with Handle before Serve.
type Server struct {
	handlers map[string]handler
	codes    Codes
	log      *slog.Logger
	limits   Limits
	tls      *tls.Config // nil: plaintext

	ctx    context.Context // cancelled by Close: handlers stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		listeners map[net.Listener]struct{}
		conns     map[net.Conn]struct{}
		closed    bool
	}
}

// NewServer returns a server with no methods. codes may be nil; log may be
// nil to discard.
func NewServer(codes Codes, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{handlers: make(map[string]handler), codes: codes, log: log, limits: DefaultLimits()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.listeners = make(map[net.Listener]struct{})
	s.mu.conns = make(map[net.Conn]struct{})
	return s
}

// SetLimits replaces the server's limits; zero fields keep their defaults.
// Call it before Serve.
func (s *Server) SetLimits(l Limits) {
	d := DefaultLimits()
	if l.MaxConnections <= 0 {
		l.MaxConnections = d.MaxConnections
	}
	if l.FrameTimeout <= 0 {
		l.FrameTimeout = d.FrameTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	s.limits = l
}

// SetTLS makes the server require TLS with cfg on every connection: the
// handshake must finish within the frame timeout, and a peer refused by it
// is logged and disconnected. Handlers find the peer's verified
// certificate with PeerCertificate. Call it before Serve.
func (s *Server) SetTLS(cfg *tls.Config) { s.tls = cfg }

// Handle registers fn as method. fn runs on its own goroutine per call, so
// it may block; its context carries the caller's deadline and token (see
// TokenFrom) and is cancelled when the server closes.
func Handle[Req, Resp any](s *Server, method string, fn func(ctx context.Context, req Req) (Resp, error)) {
	s.handlers[method] = func(ctx context.Context, body []byte) (any, error) {
		var req Req
		if err := msgpack.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("%w: request of %s: %w", ErrMalformedFrame, method, err)
		}
		return fn(ctx, req)
	}
}

// Serve accepts connections on l until Close; it always returns a non-nil
// error, ErrServerClosed after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.mu.listeners[l] = struct{}{}
	s.mu.Unlock()
	for {
		conn, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.mu.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("rpc: accept: %w", err)
		}
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			conn.Close()
			return ErrServerClosed
		}
		if len(s.mu.conns) >= s.limits.MaxConnections {
			s.mu.Unlock()
			s.log.Warn("rpc: connection refused: too many connections", "remote", conn.RemoteAddr(), "max", s.limits.MaxConnections)
			conn.Close()
			continue
		}
		s.mu.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(conn)
	}
}

// serveConn reads requests from one connection and answers each from its
// own goroutine.
func (s *Server) serveConn(conn net.Conn) {
	defer s.wg.Done()
	var (
		wmu   sync.Mutex
		w     = bufio.NewWriter(conn)
		calls sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(s.ctx)
	defer func() {
		cancel()
		conn.Close()
		calls.Wait()
		s.mu.Lock()
		delete(s.mu.conns, conn)
		s.mu.Unlock()
	}()
	var rw net.Conn = conn
	if s.tls != nil {
		tc, peer, err := security.ServerHandshake(ctx, conn, s.tls, s.limits.FrameTimeout)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("rpc: connection refused", "remote", conn.RemoteAddr(), "err", err)
			}
			return
		}
		rw, w = tc, bufio.NewWriter(tc)
		ctx = context.WithValue(ctx, peerKey{}, peer)
	}
	r := bufio.NewReader(rw)
	var buf []byte
	for {
		// Wait for a frame at most the idle timeout, then for the whole
		// frame at most the frame timeout.
		conn.SetReadDeadline(time.Now().Add(s.limits.IdleTimeout))
		_, err := r.Peek(1)
		var env *envelope
		if err == nil {
			conn.SetReadDeadline(time.Now().Add(s.limits.FrameTimeout))
			env, buf, err = readFrame(r, buf)
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				s.log.Debug("rpc connection closed", "remote", conn.RemoteAddr(), "err", err)
			}
			return
		}
		if env.Kind != kindRequest {
			s.log.Warn("rpc: response frame sent to a server", "remote", conn.RemoteAddr())
			return
		}
		calls.Add(1)
		go func() {
			defer calls.Done()
			resp := s.serve(ctx, env)
			frame, err := appendFrame(nil, resp)
			if err != nil {
				frame, _ = appendFrame(nil, &envelope{Kind: kindResponse, ID: env.ID, Error: err.Error()})
			}
			wmu.Lock()
			defer wmu.Unlock()
			if _, err := w.Write(frame); err == nil {
				w.Flush()
			}
		}()
	}
}

func (s *Server) serve(ctx context.Context, req *envelope) *envelope {
	resp := &envelope{Kind: kindResponse, ID: req.ID}
	h, ok := s.handlers[req.Method]
	if !ok {
		resp.Error, resp.Code = fmt.Sprintf("%v: %q", ErrUnknownMethod, req.Method), "rpc.unknown_method"
		return resp
	}
	if req.Deadline != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, req.Deadline))
		defer cancel()
	}
	if !req.Token.IsZero() {
		ctx = context.WithValue(ctx, tokenKey{}, req.Token)
	}
	out, err := callHandler(ctx, h, req.Body)
	if err != nil {
		resp.Error, resp.Code = err.Error(), s.codes.codeOf(err)
		return resp
	}
	body, err := msgpack.Marshal(out)
	if err != nil {
		resp.Error = fmt.Sprintf("rpc: encoding response of %s: %v", req.Method, err)
		return resp
	}
	resp.Body = body
	return resp
}

// callHandler turns a handler's panic into an error for the caller.
func callHandler(ctx context.Context, h handler, body []byte) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rpc: handler panicked: %v", r)
		}
	}()
	return h(ctx, body)
}

// Close stops accepting, closes every connection, cancels running handlers
// and waits for them. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	for l := range s.mu.listeners {
		l.Close()
	}
	for c := range s.mu.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

type peerKey struct{}

// PeerCertificate returns the verified certificate of the peer whose call
// ctx serves, or nil on a server without TLS.
func PeerCertificate(ctx context.Context) *x509.Certificate {
	c, _ := ctx.Value(peerKey{}).(*x509.Certificate)
	return c
}

type tokenKey struct{}

// WithToken returns a context whose calls carry token.
func WithToken(ctx context.Context, token Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

// TokenFrom returns the fencing token a call carried, or the zero Token.
func TokenFrom(ctx context.Context) Token {
	t, _ := ctx.Value(tokenKey{}).(Token)
	return t
}
