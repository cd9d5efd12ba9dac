package network

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flinkgo/flink/security"
)

// ConnectionManagerConfig configures a ConnectionManager.
type ConnectionManagerConfig struct {
	// ListenAddr is the TCP address the server side listens on, for example "127.0.0.1:0" (any
	// free port). Empty means no listener: the manager only connects to others.
	ListenAddr string
	// MaxBufferSize is the largest buffer accepted in a BufferResponse. It must be at least the
	// buffer size of every producer in the cluster. Default DefaultBufferSize.
	MaxBufferSize int
	// PartitionRequestInitialBackoff and PartitionRequestMaxBackoff bound the wait between
	// retries of a partition request the producer's TaskManager does not know yet (its producer
	// did not register the partition yet). Defaults 10 ms and 1 s.
	PartitionRequestInitialBackoff time.Duration
	PartitionRequestMaxBackoff     time.Duration
	// PartitionRequestTimeout is how long a remote channel retries before it fails with
	// ErrPartitionNotFound. Default 30 s.
	PartitionRequestTimeout time.Duration
	// FrameTimeout bounds the time from a consumer's frame's first byte to
	// its last: a peer that stalls inside a frame is disconnected. Default
	// 30 s. (A connection between frames may idle: a consumer sends nothing
	// while its producer has no data.)
	FrameTimeout time.Duration
	// MaxConnections bounds the consumer connections served at once; one
	// more is closed as soon as it is accepted. Default 1024.
	MaxConnections int
	// TLS, if set, secures every connection, served and dialed (mutual
	// TLS with the cluster's certificates; see package security). A
	// consumer's handshake must finish within FrameTimeout.
	TLS *tls.Config
	// Logger receives connection-level events. Default: discard.
	Logger *slog.Logger
}

// DefaultConnectionManagerConfig returns the defaults, listening on 127.0.0.1 on any free port.
func DefaultConnectionManagerConfig() ConnectionManagerConfig {
	return ConnectionManagerConfig{
		ListenAddr:                     "127.0.0.1:0",
		MaxBufferSize:                  DefaultBufferSize,
		PartitionRequestInitialBackoff: 10 * time.Millisecond,
		PartitionRequestMaxBackoff:     time.Second,
		PartitionRequestTimeout:        30 * time.Second,
		FrameTimeout:                   30 * time.Second,
		MaxConnections:                 1024,
	}
}

// ensureDefaults fills zero fields with defaults.
func (c *ConnectionManagerConfig) ensureDefaults() {
	d := DefaultConnectionManagerConfig()
	if c.MaxBufferSize <= 0 {
		c.MaxBufferSize = d.MaxBufferSize
	}
	if c.PartitionRequestInitialBackoff <= 0 {
		c.PartitionRequestInitialBackoff = d.PartitionRequestInitialBackoff
	}
	if c.PartitionRequestMaxBackoff <= 0 {
		c.PartitionRequestMaxBackoff = d.PartitionRequestMaxBackoff
	}
	if c.PartitionRequestTimeout <= 0 {
		c.PartitionRequestTimeout = d.PartitionRequestTimeout
	}
	if c.FrameTimeout <= 0 {
		c.FrameTimeout = d.FrameTimeout
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ConnectionManager owns the data-plane TCP connections of one TaskManager. Its server side listens
// and serves partition requests from a ResultPartitionManager; its client side keeps one TCP
// connection per remote TaskManager address and multiplexes every remote input channel to that
// TaskManager over it. All methods are safe for concurrent use.
type ConnectionManager struct {
	cfg        ConnectionManagerConfig
	partitions *ResultPartitionManager
	ln         net.Listener
	lastID     atomic.Uint64
	wg         sync.WaitGroup
	bytesIn    atomic.Int64
	bytesOut   atomic.Int64

	mu struct {
		sync.Mutex
		clients map[string]*clientConn
		servers map[*serverConn]struct{}
		closed  bool
	}
}

// NewConnectionManager starts a connection manager serving the partitions of partitions (nil when
// it only consumes). With a ListenAddr it listens at once; Addr reports the bound address.
func NewConnectionManager(cfg ConnectionManagerConfig, partitions *ResultPartitionManager) (*ConnectionManager, error) {
	cfg.ensureDefaults()
	m := &ConnectionManager{cfg: cfg, partitions: partitions}
	m.mu.clients = make(map[string]*clientConn)
	m.mu.servers = make(map[*serverConn]struct{})
	if cfg.ListenAddr != "" {
		if partitions == nil {
			return nil, errors.New("network: connection manager with a listener needs a ResultPartitionManager")
		}
		ln, err := net.Listen("tcp", cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("network: listen on %s: %w", cfg.ListenAddr, err)
		}
		m.ln = ln
		m.wg.Add(1)
		go m.acceptLoop()
	}
	return m, nil
}

// Addr returns the listener's address ("host:port"), or "" without a listener.
func (m *ConnectionManager) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// ConnectionMetrics is a snapshot of a ConnectionManager.
type ConnectionMetrics struct {
	// ClientConnections and ServerConnections count the open connections.
	ClientConnections int
	ServerConnections int
	// BytesIn and BytesOut count BufferResponse data received and sent.
	BytesIn  int64
	BytesOut int64
}

// Metrics returns a snapshot of the manager's counters.
func (m *ConnectionManager) Metrics() ConnectionMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	return ConnectionMetrics{
		ClientConnections: len(m.mu.clients),
		ServerConnections: len(m.mu.servers),
		BytesIn:           m.bytesIn.Load(),
		BytesOut:          m.bytesOut.Load(),
	}
}

// Close stops the listener, closes every connection (client connections send a CloseRequest first;
// their channels fail with ErrClosed) and waits for every goroutine the manager started. It is
// idempotent.
func (m *ConnectionManager) Close() error {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.mu.closed = true
	clients := make([]*clientConn, 0, len(m.mu.clients))
	for _, c := range m.mu.clients {
		clients = append(clients, c)
	}
	servers := make([]*serverConn, 0, len(m.mu.servers))
	for s := range m.mu.servers {
		servers = append(servers, s)
	}
	m.mu.Unlock()
	if m.ln != nil {
		m.ln.Close()
	}
	for _, c := range clients {
		c.close()
	}
	for _, s := range servers {
		s.shutdown()
	}
	m.wg.Wait()
	return nil
}

// newChannelID returns a channel id unique within this manager (and so within every connection
// it opens).
func (m *ConnectionManager) newChannelID() uint64 { return m.lastID.Add(1) }

// acceptLoop accepts server connections until the listener is closed.
func (m *ConnectionManager) acceptLoop() {
	defer m.wg.Done()
	for {
		nc, err := m.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.cfg.Logger.Warn("network: accept failed", "err", err)
			}
			return
		}
		m.mu.Lock()
		if m.mu.closed {
			m.mu.Unlock()
			nc.Close()
			return
		}
		if len(m.mu.servers) >= m.cfg.MaxConnections {
			m.mu.Unlock()
			m.cfg.Logger.Warn("network: connection refused: too many connections", "remote", nc.RemoteAddr(), "max", m.cfg.MaxConnections)
			nc.Close()
			continue
		}
		s := newServerConn(m, nc)
		m.mu.servers[s] = struct{}{}
		m.wg.Add(2)
		m.mu.Unlock()
		go s.readLoop()
		go s.writeLoop()
	}
}

// connect returns the client connection to addr, dialing it if needed. Concurrent callers for the
// same address share one dial.
func (m *ConnectionManager) connect(ctx context.Context, addr string) (*clientConn, error) {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: connection manager", ErrClosed)
	}
	if c, ok := m.mu.clients[addr]; ok {
		m.mu.Unlock()
		select {
		case <-c.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("network: connecting to %s: %w", addr, ctx.Err())
		}
		if c.dialErr != nil {
			return nil, c.dialErr
		}
		return c, nil
	}
	c := newClientConn(m, addr)
	m.mu.clients[addr] = c
	m.mu.Unlock()

	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err == nil && m.cfg.TLS != nil {
		// crypto/tls reads about a record (16 KiB) per system call; the
		// producer sends 64 KiB at once.
		nc = &readBufferedConn{Conn: nc, r: bufio.NewReaderSize(nc, 64<<10)}
		nc, err = security.ClientHandshake(ctx, nc, m.cfg.TLS)
	}
	m.mu.Lock()
	if err == nil && m.mu.closed {
		nc.Close()
		err = fmt.Errorf("%w: connection manager", ErrClosed)
	}
	if err != nil {
		c.dialErr = fmt.Errorf("network: connecting to %s: %w", addr, err)
		if m.mu.clients[addr] == c {
			delete(m.mu.clients, addr)
		}
		m.mu.Unlock()
		close(c.ready)
		return nil, c.dialErr
	}
	c.nc = nc
	m.wg.Add(2)
	m.mu.Unlock()
	go c.readLoop()
	go c.writeLoop()
	close(c.ready)
	return c, nil
}

// readBufferedConn reads its connection through a buffer.
type readBufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readBufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// forgetClient removes a failed client connection so that the next request dials again.
func (m *ConnectionManager) forgetClient(c *clientConn) {
	m.mu.Lock()
	if m.mu.clients[c.addr] == c {
		delete(m.mu.clients, c.addr)
	}
	m.mu.Unlock()
}

// forgetServer removes a closed server connection.
func (m *ConnectionManager) forgetServer(s *serverConn) {
	m.mu.Lock()
	delete(m.mu.servers, s)
	m.mu.Unlock()
}

// clientConn is the consumer side of one TCP connection to a remote TaskManager. A reader
// goroutine dispatches BufferResponses and ErrorResponses to channels by id; a writer goroutine
// sends partition requests, credit announcements and cancellations.
type clientConn struct {
	m        *ConnectionManager
	addr     string
	nc       net.Conn
	ready    chan struct{} // closed once dialed (or the dial failed)
	dialErr  error
	signal   chan struct{}
	done     chan struct{}
	doneOnce sync.Once

	mu struct {
		sync.Mutex
		channels map[uint64]*RemoteInputChannel
		out      [][]byte // encoded control frames to send
		credits  []*RemoteInputChannel
		err      error
		closing  bool
	}
}

func newClientConn(m *ConnectionManager, addr string) *clientConn {
	c := &clientConn{
		m:      m,
		addr:   addr,
		ready:  make(chan struct{}),
		signal: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	c.mu.channels = make(map[uint64]*RemoteInputChannel)
	return c
}

// register adds a channel to the connection.
func (c *clientConn) register(id uint64, ch *RemoteInputChannel) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.err != nil {
		return c.mu.err
	}
	c.mu.channels[id] = ch
	return nil
}

// unregister removes a channel; with cancel the producer is asked to stop sending.
func (c *clientConn) unregister(id uint64, cancel bool) {
	c.mu.Lock()
	delete(c.mu.channels, id)
	c.mu.Unlock()
	if cancel {
		c.enqueue(appendCancel(nil, id))
	}
}

// channel returns the registered channel with the given id, or nil.
func (c *clientConn) channel(id uint64) *RemoteInputChannel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.channels[id]
}

func (c *clientConn) sendPartitionRequest(r partitionRequest) {
	frame, err := appendPartitionRequest(nil, r)
	if err != nil {
		if ch := c.channel(r.channel); ch != nil {
			ch.fail(err)
		}
		return
	}
	c.enqueue(frame)
}

// enqueue queues an encoded control frame for the writer.
func (c *clientConn) enqueue(frame []byte) {
	c.mu.Lock()
	if c.mu.err != nil || c.mu.closing {
		c.mu.Unlock()
		return
	}
	c.mu.out = append(c.mu.out, frame)
	c.mu.Unlock()
	c.wakeWriter()
}

// queueCredit asks the writer to announce ch's unannounced credit.
func (c *clientConn) queueCredit(ch *RemoteInputChannel) {
	c.mu.Lock()
	if c.mu.err != nil || c.mu.closing {
		c.mu.Unlock()
		return
	}
	c.mu.credits = append(c.mu.credits, ch)
	c.mu.Unlock()
	c.wakeWriter()
}

func (c *clientConn) wakeWriter() {
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// writeLoop sends queued control frames. On shutdown it sends a CloseRequest.
func (c *clientConn) writeLoop() {
	defer c.m.wg.Done()
	bw := bufio.NewWriterSize(c.nc, 4<<10)
	var buf []byte
	var out [][]byte
	var credits []*RemoteInputChannel
	for {
		select {
		case <-c.signal:
		case <-c.done:
			c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			bw.Write(appendCloseRequest(buf[:0]))
			bw.Flush()
			return
		}
		c.mu.Lock()
		out, c.mu.out = c.mu.out, out[:0]
		credits, c.mu.credits = c.mu.credits, credits[:0]
		c.mu.Unlock()
		var err error
		for i, f := range out {
			if err == nil {
				_, err = bw.Write(f)
			}
			out[i] = nil
		}
		for i, ch := range credits {
			credits[i] = nil
			if id, n := ch.takeUnannounced(); n > 0 && err == nil {
				buf = appendAddCredit(buf[:0], addCredit{channel: id, credit: n})
				_, err = bw.Write(buf)
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			c.fail(fmt.Errorf("%w: writing: %v", ErrConnectionClosed, err))
			return
		}
	}
}

// readLoop dispatches frames from the producer's TaskManager until the connection fails or closes.
func (c *clientConn) readLoop() {
	defer c.m.wg.Done()
	size := 64 << 10
	if c.m.cfg.TLS != nil {
		// Over TLS, a buffer smaller than a network buffer lets most of
		// each one's data go from the decrypted record straight into its
		// segment (bufio reads large reads directly), saving a copy; the
		// connection below buffers the system calls.
		size = 16 << 10
	}
	fr := frameReader{r: bufio.NewReaderSize(c.nc, size), maxData: c.m.cfg.MaxBufferSize}
	for {
		if err := c.readFrame(&fr); err != nil {
			c.fail(err)
			return
		}
	}
}

// readFrame reads and dispatches one frame.
func (c *clientConn) readFrame(fr *frameReader) error {
	t, n, err := fr.readHeader()
	if err != nil {
		return err
	}
	switch t {
	case msgBufferResponse:
		h, err := fr.readBufferResponseHeader(n)
		if err != nil {
			return err
		}
		ch := c.channel(h.channel)
		if ch == nil {
			if h.channel > c.m.lastID.Load() {
				return fmt.Errorf("%w: BufferResponse for unknown channel %d", ErrProtocol, h.channel)
			}
			// A channel released (cancelled) while data was in flight: drop the data.
			if _, err := io.CopyN(io.Discard, fr.r, int64(h.size)); err != nil {
				return truncated(noEOF(err), "BufferResponse data")
			}
			return nil
		}
		c.m.bytesIn.Add(int64(h.size))
		if h.dataType == dataTypeEvent {
			data := make([]byte, h.size)
			if _, err := io.ReadFull(fr.r, data); err != nil {
				return truncated(noEOF(err), "BufferResponse data")
			}
			return ch.onEvent(data, h.seq, int(h.backlog))
		}
		seg, err := ch.takeSegment(h.size)
		if err != nil {
			return err
		}
		if _, err := io.ReadFull(fr.r, seg.data[:h.size]); err != nil {
			ch.putBack(seg)
			return truncated(noEOF(err), "BufferResponse data")
		}
		return ch.onBuffer(seg, h.size, h.seq, int(h.backlog))
	case msgErrorResponse:
		p, err := fr.readPayload(t, n)
		if err != nil {
			return err
		}
		m, err := decodeErrorResponse(p)
		if err != nil {
			return err
		}
		if m.channel == 0 {
			return fmt.Errorf("%w: %s", ErrRemote, m.message)
		}
		if ch := c.channel(m.channel); ch != nil {
			ch.onError(m.code, m.message)
		} else if m.channel > c.m.lastID.Load() {
			return fmt.Errorf("%w: ErrorResponse for unknown channel %d", ErrProtocol, m.channel)
		}
		return nil
	default:
		return fmt.Errorf("%w: unexpected %s from a producer", ErrProtocol, t)
	}
}

// fail closes the connection after an error and fails every channel on it with that error,
// naming the remote address.
func (c *clientConn) fail(err error) {
	c.mu.Lock()
	if c.mu.err != nil {
		c.mu.Unlock()
		return
	}
	if c.mu.closing {
		err = fmt.Errorf("%w: connection manager", ErrClosed)
	}
	err = fmt.Errorf("network: connection to %s: %w", c.addr, err)
	c.mu.err = err
	chans := make([]*RemoteInputChannel, 0, len(c.mu.channels))
	for _, ch := range c.mu.channels {
		chans = append(chans, ch)
	}
	closing := c.mu.closing
	c.mu.Unlock()
	if !closing {
		c.m.cfg.Logger.Warn("network: data connection failed", "remote", c.addr, "err", err)
	}
	c.doneOnce.Do(func() { close(c.done) })
	c.nc.Close()
	c.m.forgetClient(c)
	for _, ch := range chans {
		ch.fail(err)
	}
}

// close shuts the connection down gracefully (CloseRequest, then close) for Close of the manager.
func (c *clientConn) close() {
	<-c.ready
	if c.dialErr != nil {
		return
	}
	c.mu.Lock()
	if c.mu.closing || c.mu.err != nil {
		c.mu.Unlock()
		return
	}
	c.mu.closing = true
	c.mu.Unlock()
	c.doneOnce.Do(func() { close(c.done) })
	// The writer sends CloseRequest and exits; the server then closes, ending the reader. Close
	// the socket as well in case the peer does not.
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
}
