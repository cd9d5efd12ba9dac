package rpc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type echoReq struct {
	Text  string
	Delay time.Duration
}

type echoResp struct {
	Text     string
	Deadline time.Time
	Token    Token
}

var errNoSuchJob = errors.New("no such job")

var testCodes = Codes{"job.unknown": errNoSuchJob}

// serve starts a server with test methods on a loopback port.
func serve(t *testing.T, addr string) (*Server, string) {
	t.Helper()
	return serveWith(t, addr, DefaultLimits())
}

// serveWith is serve with the given limits.
func serveWith(t *testing.T, addr string, limits Limits) (*Server, string) {
	t.Helper()
	s := NewServer(testCodes, nil)
	s.SetLimits(limits)
	Handle(s, "echo", func(ctx context.Context, req echoReq) (echoResp, error) {
		if req.Delay > 0 {
			select {
			case <-time.After(req.Delay):
			case <-ctx.Done():
				return echoResp{}, ctx.Err()
			}
		}
		d, _ := ctx.Deadline()
		return echoResp{Text: req.Text, Deadline: d, Token: TokenFrom(ctx)}, nil
	})
	Handle(s, "fail", func(ctx context.Context, req string) (string, error) {
		return "", errors.Join(errors.New("looking up "+req), errNoSuchJob)
	})
	Handle(s, "panic", func(ctx context.Context, req string) (string, error) { panic("handler exploded") })
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		assert.ErrorIs(t, <-done, ErrServerClosed)
	})
	return s, l.Addr().String()
}

func TestCallCarriesDeadlineAndToken(t *testing.T) {
	_, addr := serve(t, "127.0.0.1:0")
	c := NewClient(addr, testCodes, nil)
	defer c.Close()
	deadline := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(WithToken(context.Background(), Token{Term: 7, Leader: "jm-1"}), deadline)
	defer cancel()
	resp, err := Call[echoReq, echoResp](ctx, c, "echo", echoReq{Text: "hi"})
	require.NoError(t, err)
	assert.Equal(t, "hi", resp.Text)
	assert.Equal(t, Token{Term: 7, Leader: "jm-1"}, resp.Token)
	assert.WithinDuration(t, deadline, resp.Deadline, time.Millisecond)
}

func TestConcurrentCallsShareOneConnection(t *testing.T) {
	_, addr := serve(t, "127.0.0.1:0")
	c := NewClient(addr, nil, nil)
	defer c.Close()
	var dials int
	var mu sync.Mutex
	inner := c.dial
	c.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		dials++
		mu.Unlock()
		return inner(ctx, addr)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := string(rune('a' + i%26))
			resp, err := Call[echoReq, echoResp](context.Background(), c, "echo", echoReq{Text: text})
			assert.NoError(t, err)
			assert.Equal(t, text, resp.Text)
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, dials)
}

func TestErrors(t *testing.T) {
	_, addr := serve(t, "127.0.0.1:0")
	c := NewClient(addr, testCodes, nil)
	defer c.Close()
	ctx := context.Background()

	_, err := Call[string, string](ctx, c, "fail", "job-42")
	require.ErrorIs(t, err, errNoSuchJob, "a well-known error keeps its identity across the wire")
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Msg, "looking up job-42")

	_, err = Call[string, string](ctx, c, "nope", "")
	require.ErrorIs(t, err, ErrUnknownMethod)

	_, err = Call[string, string](ctx, c, "panic", "")
	require.ErrorContains(t, err, "handler exploded")

	_, err = Call[int, string](ctx, c, "fail", 12)
	require.ErrorContains(t, err, "malformed", "a request of the wrong type is refused")

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = Call[echoReq, echoResp](short, c, "echo", echoReq{Delay: time.Minute})
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// The connection is still good after all that.
	resp, err := Call[echoReq, echoResp](ctx, c, "echo", echoReq{Text: "still here"})
	require.NoError(t, err)
	assert.Equal(t, "still here", resp.Text)
}

func TestServerCloseFailsCallsInFlight(t *testing.T) {
	s, addr := serve(t, "127.0.0.1:0")
	c := NewClient(addr, nil, nil)
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := Call[echoReq, echoResp](context.Background(), c, "echo", echoReq{Delay: time.Minute})
		done <- err
	}()
	// Wait until the call reached the server.
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.mu.conns) == 1
	}, 10*time.Second, time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("call hung after the server closed")
	}
}

func TestIdempotentCallRetriesUntilServerIsBack(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close() // nothing listens yet

	c := NewClient(addr, nil, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err = Call[echoReq, echoResp](ctx, c, "echo", echoReq{Text: "once"})
	require.ErrorIs(t, err, ErrConnectionLost, "a call that is not idempotent is not retried")

	done := make(chan error, 1)
	go func() {
		_, err := Call[echoReq, echoResp](ctx, c, "echo", echoReq{Text: "again"}, Idempotent())
		done <- err
	}()
	serve(t, addr)
	require.NoError(t, <-done)
}

func TestMalformedInputClosesOnlyThatConnection(t *testing.T) {
	_, addr := serve(t, "127.0.0.1:0")
	for _, garbage := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{0xF1, 0xC0, 0xFF, 0xFF, 0xFF, 0xFF},       // too large
		{0xF1, 0xC0, 0, 0, 0, 3, 0xc1, 0xc1, 0xc1}, // not msgpack
		{0xF1, 0xC0, 0, 0, 0, 10, 1, 2},            // truncated
	} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = conn.Write(garbage)
		require.NoError(t, err)
		require.NoError(t, conn.(*net.TCPConn).CloseWrite(), "the peer goes away mid-frame")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		assert.Error(t, err, "the server closes a connection that sent %q", garbage)
		conn.Close()
	}
	c := NewClient(addr, nil, nil)
	defer c.Close()
	_, err := Call[echoReq, echoResp](context.Background(), c, "echo", echoReq{Text: "ok"})
	require.NoError(t, err)
}

func TestFrameRoundTrip(t *testing.T) {
	env := &envelope{Kind: kindRequest, ID: 9, Method: "m", Deadline: 123, Token: Token{Term: 2, Leader: "x"}, Body: []byte{0xa1, 'z'}}
	frame, err := appendFrame(nil, env)
	require.NoError(t, err)
	got, _, err := readFrame(bytes.NewReader(frame), nil)
	require.NoError(t, err)
	assert.Equal(t, env, got)
}

func FuzzReadFrame(f *testing.F) {
	for _, env := range []*envelope{
		{Kind: kindRequest, ID: 1, Method: "echo", Body: []byte{0xc0}},
		{Kind: kindResponse, ID: 2, Error: "boom", Code: "x"},
		{Kind: kindRequest, ID: 3, Method: "m", Deadline: 1, Token: Token{Term: 1, Leader: "l"}},
	} {
		frame, err := appendFrame(nil, env)
		require.NoError(f, err)
		f.Add(frame)
	}
	f.Add([]byte{0xF1, 0xC0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		env, _, err := readFrame(bytes.NewReader(data), nil)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same envelope.
		frame, err := appendFrame(nil, env)
		require.NoError(t, err)
		again, _, err := readFrame(bytes.NewReader(frame), nil)
		require.NoError(t, err)
		assert.Equal(t, env, again)
	})
}
