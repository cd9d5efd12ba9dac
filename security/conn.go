package security

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"time"
)

// DefaultHandshakeTimeout bounds a TLS handshake: a peer that has not
// finished it by then is disconnected.
const DefaultHandshakeTimeout = 10 * time.Second

// ServerHandshake runs the server side of a TLS handshake on c, bounded by
// ctx and timeout, and returns the secured connection and the peer's
// verified certificate. On failure it closes c; the error names the peer
// and why it was refused (a certificate not from the cluster CA, none,
// an expired one, not TLS at all).
func ServerHandshake(ctx context.Context, c net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, *x509.Certificate, error) {
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tc := tls.Server(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("security: refused connection from %s: TLS handshake: %w", c.RemoteAddr(), err)
	}
	return tc, peerLeaf(tc), nil
}

// ClientHandshake runs the client side of a TLS handshake on c, bounded by
// ctx, and returns the secured connection. On failure it closes c.
func ClientHandshake(ctx context.Context, c net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultHandshakeTimeout)
		defer cancel()
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("security: TLS handshake with %s: %w", c.RemoteAddr(), err)
	}
	return tc, nil
}

func peerLeaf(tc *tls.Conn) *x509.Certificate {
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		return certs[0]
	}
	return nil
}

// LazyServer wraps an accepted connection whose reader is a library that
// knows nothing of TLS (Raft's transport): the handshake runs on the first
// Read or Write, bounded by timeout, and a failed one is reported to
// onFail (which may log it) and fails that call.
func LazyServer(c net.Conn, cfg *tls.Config, timeout time.Duration, onFail func(error)) net.Conn {
	return &lazyConn{Conn: c, cfg: cfg, timeout: timeout, onFail: onFail}
}

type lazyConn struct {
	net.Conn           // the raw connection: Close, addresses and deadlines act on it
	tc       *tls.Conn // set by the handshake, read after once.Do
	cfg      *tls.Config
	timeout  time.Duration
	onFail   func(error)
	once     sync.Once
	err      error
}

func (l *lazyConn) handshake() error {
	l.once.Do(func() {
		tc, _, err := ServerHandshake(context.Background(), l.Conn, l.cfg, l.timeout)
		if err != nil {
			l.err = err
			if l.onFail != nil {
				l.onFail(err)
			}
			return
		}
		l.tc = tc
	})
	return l.err
}

func (l *lazyConn) Read(p []byte) (int, error) {
	if err := l.handshake(); err != nil {
		return 0, err
	}
	return l.tc.Read(p)
}

func (l *lazyConn) Write(p []byte) (int, error) {
	if err := l.handshake(); err != nil {
		return 0, err
	}
	return l.tc.Write(p)
}
