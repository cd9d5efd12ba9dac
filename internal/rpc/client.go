package rpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/flinkgo/flink/security"
	"github.com/vmihailenco/msgpack/v5"
)

// ErrConnectionLost: the connection broke while a call was in flight. The
// call may or may not have run on the server.
var ErrConnectionLost = errors.New("rpc: connection lost")

// ErrClientClosed is returned by calls on a closed client.
var ErrClientClosed = errors.New("rpc: client closed")

// RemoteError is an error the server's handler returned.
type RemoteError struct {
	Method string
	Msg    string
	// Err is the well-known error the server named, or nil.
	Err error
}

func (e *RemoteError) Error() string { return fmt.Sprintf("rpc: %s: %s", e.Method, e.Msg) }

// Unwrap lets errors.Is match the well-known error.
func (e *RemoteError) Unwrap() error { return e.Err }

// Client calls one server over one TCP connection, dialled on first use and
// again after it breaks. It is safe for concurrent use; calls are
// multiplexed on the connection.
type Client struct {
	addr  string
	codes Codes
	dial  func(ctx context.Context, addr string) (net.Conn, error)

	wg sync.WaitGroup
	mu struct {
		sync.Mutex
		conn    *clientConn
		nextID  uint64
		closed  bool
		dialing chan struct{} // closed when a dial in progress ends
	}
}

type clientConn struct {
	c       net.Conn
	wmu     sync.Mutex
	w       *bufio.Writer
	mu      sync.Mutex
	pending map[uint64]chan *envelope
	err     error // set once the connection broke
}

// NewClient returns a client of the server at addr. codes may be nil.
// With tlsCfg set, every connection is secured with it (the handshake
// bounded by the call's context).
func NewClient(addr string, codes Codes, tlsCfg *tls.Config) *Client {
	var d net.Dialer
	return &Client{addr: addr, codes: codes, dial: func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil || tlsCfg == nil {
			return c, err
		}
		return security.ClientHandshake(ctx, c, tlsCfg)
	}}
}

// CallOption changes one call.
type CallOption func(*callOptions)

type callOptions struct{ idempotent bool }

// Idempotent marks a call safe to repeat: it is retried on a lost
// connection until its context ends. Other calls are never retried.
func Idempotent() CallOption { return func(o *callOptions) { o.idempotent = true } }

// Call calls method with req and decodes the response. The context's
// deadline travels to the server; its fencing token too (WithToken).
func Call[Req, Resp any](ctx context.Context, c *Client, method string, req Req, opts ...CallOption) (Resp, error) {
	var resp Resp
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	body, err := msgpack.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("rpc: encoding request of %s: %w", method, err)
	}
	backoff := 10 * time.Millisecond
	for {
		env, err := c.roundTrip(ctx, method, body)
		if err == nil {
			if env.Error != "" {
				return resp, &RemoteError{Method: method, Msg: env.Error, Err: c.codes.errorOf(env.Code)}
			}
			if err := msgpack.Unmarshal(env.Body, &resp); err != nil {
				return resp, fmt.Errorf("%w: response of %s: %w", ErrMalformedFrame, method, err)
			}
			return resp, nil
		}
		if !o.idempotent || !errors.Is(err, ErrConnectionLost) || ctx.Err() != nil {
			return resp, err
		}
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, time.Second)
		case <-ctx.Done():
			return resp, fmt.Errorf("rpc: %s: %w (after %w)", method, ctx.Err(), err)
		}
	}
}

func (c *Client) roundTrip(ctx context.Context, method string, body []byte) (*envelope, error) {
	cc, id, err := c.connection(ctx)
	if err != nil {
		return nil, err
	}
	env := &envelope{Kind: kindRequest, ID: id, Method: method, Token: TokenFrom(ctx), Body: body}
	if d, ok := ctx.Deadline(); ok {
		env.Deadline = d.UnixNano()
	}
	frame, err := appendFrame(nil, env)
	if err != nil {
		return nil, err
	}
	ch := make(chan *envelope, 1)
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return nil, cc.err
	}
	cc.pending[id] = ch
	cc.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		delete(cc.pending, id)
		cc.mu.Unlock()
	}()

	cc.wmu.Lock()
	if d, ok := ctx.Deadline(); ok {
		cc.c.SetWriteDeadline(d)
	}
	_, err = cc.w.Write(frame)
	if err == nil {
		err = cc.w.Flush()
	}
	cc.c.SetWriteDeadline(time.Time{})
	cc.wmu.Unlock()
	if err != nil {
		c.broken(cc, err)
		return nil, fmt.Errorf("%w: %s: sending to %s: %w", ErrConnectionLost, method, c.addr, err)
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			cc.mu.Lock()
			err := cc.err
			cc.mu.Unlock()
			return nil, err
		}
		return resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("rpc: %s to %s: %w", method, c.addr, ctx.Err())
	}
}

// connection returns the live connection, dialling if there is none, and a
// fresh call id.
func (c *Client) connection(ctx context.Context) (*clientConn, uint64, error) {
	for {
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return nil, 0, ErrClientClosed
		}
		c.mu.nextID++
		id := c.mu.nextID
		if cc := c.mu.conn; cc != nil {
			c.mu.Unlock()
			return cc, id, nil
		}
		if wait := c.mu.dialing; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.mu.dialing = done
		c.mu.Unlock()

		conn, err := c.dial(ctx, c.addr)
		c.mu.Lock()
		c.mu.dialing = nil
		close(done)
		if err != nil {
			c.mu.Unlock()
			return nil, 0, fmt.Errorf("%w: dialing %s: %w", ErrConnectionLost, c.addr, err)
		}
		if c.mu.closed {
			c.mu.Unlock()
			conn.Close()
			return nil, 0, ErrClientClosed
		}
		cc := &clientConn{c: conn, w: bufio.NewWriter(conn), pending: make(map[uint64]chan *envelope)}
		c.mu.conn = cc
		c.wg.Add(1)
		c.mu.Unlock()
		go c.readLoop(cc)
		return cc, id, nil
	}
}

// readLoop delivers responses to their calls until the connection breaks.
func (c *Client) readLoop(cc *clientConn) {
	defer c.wg.Done()
	r := bufio.NewReader(cc.c)
	var buf []byte
	for {
		env, b, err := readFrame(r, buf)
		buf = b
		if err == nil && env.Kind != kindResponse {
			err = fmt.Errorf("%w: request frame sent to a client", ErrMalformedFrame)
		}
		if err != nil {
			c.broken(cc, err)
			return
		}
		cc.mu.Lock()
		if ch, ok := cc.pending[env.ID]; ok {
			delete(cc.pending, env.ID)
			ch <- env // buffered for the one response of the call
		}
		cc.mu.Unlock()
	}
}

// broken fails every call in flight on cc and forgets the connection.
func (c *Client) broken(cc *clientConn, cause error) {
	cc.mu.Lock()
	if cc.err == nil {
		cc.err = fmt.Errorf("%w: %s: %w", ErrConnectionLost, c.addr, cause)
		for id, ch := range cc.pending {
			close(ch)
			delete(cc.pending, id)
		}
	}
	cc.mu.Unlock()
	cc.c.Close()
	c.mu.Lock()
	if c.mu.conn == cc {
		c.mu.conn = nil
	}
	c.mu.Unlock()
}

// Close closes the connection, fails calls in flight and waits for the
// client's goroutine. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.mu.closed = true
	cc := c.mu.conn
	c.mu.Unlock()
	if cc != nil {
		c.broken(cc, ErrClientClosed)
	}
	c.wg.Wait()
	return nil
}
