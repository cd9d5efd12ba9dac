package network

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// serverConn is the producer side of one TCP connection from a consuming TaskManager. Its reader
// goroutine handles partition requests, credit and cancellations; its writer goroutine sends the
// buffers of every subpartition requested over the connection, round-robin among the readers
// that have both data and credit (events need no credit), so that a reader without credit never
// holds up the others.
type serverConn struct {
	m        *ConnectionManager
	nc       net.Conn
	batch    *recordBatcher // under the TLS layer; nil without TLS
	remote   string
	signal   chan struct{}
	done     chan struct{}
	doneOnce sync.Once

	mu struct {
		sync.Mutex
		readers map[uint64]*serverReader
		maxID   uint64 // highest channel id ever requested
		queue   []*serverReader
		errs    [][]byte // encoded ErrorResponses to send
		fatal   bool     // close after sending errs
		closed  bool
	}
}

// serverReader is the state of one requested subpartition on a server connection. Its fields
// (except view, set once) are guarded by serverConn.mu.
type serverReader struct {
	id       uint64
	view     *subpartitionView
	credit   int
	seq      uint32
	queued   bool
	released bool
}

func newServerConn(m *ConnectionManager, nc net.Conn) *serverConn {
	var batch *recordBatcher
	if m.cfg.TLS != nil {
		batch = &recordBatcher{Conn: nc}
		nc = tls.Server(batch, m.cfg.TLS) // readLoop runs the handshake
	}
	s := &serverConn{
		batch:  batch,
		m:      m,
		nc:     nc,
		remote: nc.RemoteAddr().String(),
		signal: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	s.mu.readers = make(map[uint64]*serverReader)
	return s
}

func (s *serverConn) wakeWriter() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// enqueueLocked puts r in the writer's round-robin queue.
func (s *serverConn) enqueueLocked(r *serverReader) bool {
	if r.queued || r.released || r.view == nil || s.mu.closed {
		return false
	}
	r.queued = true
	s.mu.queue = append(s.mu.queue, r)
	return true
}

// notify is the subpartition listener of r: data arrived or the subpartition was released.
func (s *serverConn) notify(r *serverReader) {
	s.mu.Lock()
	ok := s.enqueueLocked(r)
	s.mu.Unlock()
	if ok {
		s.wakeWriter()
	}
}

// sendError queues an ErrorResponse; fatal closes the connection after it is sent.
func (s *serverConn) sendError(channel uint64, code uint8, msg string, fatal bool) {
	s.mu.Lock()
	s.mu.errs = append(s.mu.errs, appendErrorResponse(nil, errorResponse{channel: channel, code: code, message: msg}))
	if fatal {
		s.mu.fatal = true
	}
	s.mu.Unlock()
	s.wakeWriter()
}

// readLoop handles the consumer's messages until the connection ends.
func (s *serverConn) readLoop() {
	defer s.m.wg.Done()
	if tc, ok := s.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), s.m.cfg.FrameTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			s.m.cfg.Logger.Warn("network: connection refused: TLS handshake failed", "remote", s.remote, "err", err)
			s.shutdown()
			return
		}
		s.batch.start()
	}
	br := bufio.NewReaderSize(s.nc, 16<<10)
	fr := frameReader{r: br, maxData: s.m.cfg.MaxBufferSize}
	for {
		// Between frames the connection may idle; once a frame starts, all
		// of it must arrive within the frame timeout.
		s.nc.SetReadDeadline(time.Time{})
		_, err := br.Peek(1)
		if err == nil {
			s.nc.SetReadDeadline(time.Now().Add(s.m.cfg.FrameTimeout))
			var t msgType
			var n int
			if t, n, err = fr.readHeader(); err == nil {
				err = s.handle(&fr, t, n)
			}
		} else if err == io.EOF {
			err = truncated(err, "frame header")
		}
		if err == nil {
			continue
		}
		if errors.Is(err, errCloseRequested) || errors.Is(err, ErrConnectionClosed) || errors.Is(err, net.ErrClosed) {
			s.shutdown()
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.m.cfg.Logger.Warn("network: consumer stalled inside a frame; closing connection", "remote", s.remote, "timeout", s.m.cfg.FrameTimeout)
			s.shutdown()
			return
		}
		if errors.Is(err, ErrMalformedFrame) || errors.Is(err, ErrProtocol) {
			s.m.cfg.Logger.Warn("network: bad frame from consumer; closing connection", "remote", s.remote, "err", err)
			s.sendError(0, errCodeProtocol, fmt.Sprintf("network: connection from %s: %v", s.remote, err), true)
			return // the writer sends the error and shuts down
		}
		s.shutdown()
		return
	}
}

var errCloseRequested = errors.New("network: close requested")

// handle processes one frame from the consumer.
func (s *serverConn) handle(fr *frameReader, t msgType, n int) error {
	if t == msgBufferResponse || t == msgErrorResponse {
		return fmt.Errorf("%w: unexpected %s from a consumer", ErrProtocol, t)
	}
	p, err := fr.readPayload(t, n)
	if err != nil {
		return err
	}
	switch t {
	case msgPartitionRequest:
		req, err := decodePartitionRequest(p)
		if err != nil {
			return err
		}
		return s.onPartitionRequest(req)
	case msgAddCredit:
		ac, err := decodeAddCredit(p)
		if err != nil {
			return err
		}
		s.mu.Lock()
		r := s.mu.readers[ac.channel]
		if r == nil {
			unknown := ac.channel > s.mu.maxID
			s.mu.Unlock()
			if unknown {
				return fmt.Errorf("%w: AddCredit for unknown channel %d", ErrProtocol, ac.channel)
			}
			return nil // the reader finished or was cancelled meanwhile
		}
		r.credit += int(ac.credit)
		ok := s.enqueueLocked(r)
		s.mu.Unlock()
		if ok {
			s.wakeWriter()
		}
		return nil
	case msgCancelPartitionRequest:
		id, err := decodeCancel(p)
		if err != nil {
			return err
		}
		s.mu.Lock()
		r := s.mu.readers[id]
		unknown := r == nil && id > s.mu.maxID
		s.mu.Unlock()
		if unknown {
			return fmt.Errorf("%w: CancelPartitionRequest for unknown channel %d", ErrProtocol, id)
		}
		if r != nil {
			s.releaseReader(r)
		}
		return nil
	case msgCloseRequest:
		if len(p) != 0 {
			return fmt.Errorf("%w: CloseRequest with %d payload bytes", ErrMalformedFrame, len(p))
		}
		return errCloseRequested
	}
	return fmt.Errorf("%w: unexpected %s", ErrProtocol, t)
}

// onPartitionRequest creates the reader of a requested subpartition, or answers with an error.
func (s *serverConn) onPartitionRequest(req partitionRequest) error {
	r := &serverReader{id: req.channel, credit: int(req.credit)}
	s.mu.Lock()
	if _, dup := s.mu.readers[req.channel]; dup {
		s.mu.Unlock()
		return fmt.Errorf("%w: second PartitionRequest for active channel %d", ErrProtocol, req.channel)
	}
	s.mu.maxID = max(s.mu.maxID, req.channel)
	s.mu.readers[req.channel] = r
	s.mu.Unlock()

	view, err := s.m.partitions.createView(req.partition, int(req.subpartition), func() { s.notify(r) })
	if err != nil {
		s.mu.Lock()
		delete(s.mu.readers, req.channel)
		s.mu.Unlock()
		code := uint8(errCodeGeneric)
		switch {
		case errors.Is(err, ErrPartitionNotFound):
			code = errCodePartitionNotFound
		case errors.Is(err, ErrPartitionReleased):
			code = errCodePartitionReleased
		}
		s.sendError(req.channel, code, err.Error(), false)
		return nil
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		view.release()
		return nil
	}
	r.view = view
	ok := s.enqueueLocked(r)
	s.mu.Unlock()
	if ok {
		s.wakeWriter()
	}
	return nil
}

// releaseReader detaches a reader from its subpartition and forgets it.
func (s *serverConn) releaseReader(r *serverReader) {
	s.mu.Lock()
	if r.released {
		s.mu.Unlock()
		return
	}
	r.released = true
	if s.mu.readers[r.id] == r {
		delete(s.mu.readers, r.id)
	}
	view := r.view
	s.mu.Unlock()
	if view != nil {
		view.release()
	}
}

// writeLoop sends buffers and errors until the connection is shut down.
func (s *serverConn) writeLoop() {
	defer s.m.wg.Done()
	bw := bufio.NewWriterSize(s.nc, 64<<10)
	var hdr []byte
	for {
		select {
		case <-s.signal:
		case <-s.done:
			return
		}
		for {
			s.mu.Lock()
			errs := s.mu.errs
			s.mu.errs = nil
			fatal := s.mu.fatal
			var r *serverReader
			if len(s.mu.queue) > 0 {
				r = s.mu.queue[0]
				s.mu.queue[0] = nil
				s.mu.queue = s.mu.queue[1:]
				r.queued = false
			}
			credit := 0
			if r != nil {
				credit = r.credit
			}
			s.mu.Unlock()

			for _, e := range errs {
				if _, err := bw.Write(e); err != nil {
					s.shutdown()
					return
				}
			}
			if fatal {
				if bw.Flush() == nil {
					s.batch.flush()
				}
				s.shutdown()
				return
			}
			if r == nil {
				break
			}
			if err := s.sendNext(bw, r, credit, &hdr); err != nil {
				s.m.cfg.Logger.Warn("network: writing to consumer failed", "remote", s.remote, "err", err)
				s.shutdown()
				return
			}
		}
		if err := bw.Flush(); err != nil {
			s.shutdown()
			return
		}
		if err := s.batch.flush(); err != nil {
			s.shutdown()
			return
		}
	}
}

// recordBatcher sits under a server connection's TLS layer. crypto/tls
// writes each record (at most 16 KiB of data) with a Write of its own, a
// system call each, where the plaintext connection writes 64 KiB at once;
// once the handshake is done, the batcher gathers the records of one flush
// of the writer loop and sends them with one write. Records written while
// the writer loop is not flushing (an alert when the connection closes)
// go out with the next flush, or not at all.
type recordBatcher struct {
	net.Conn
	batching atomic.Bool // set after the handshake, whose flights go out at once
	mu       sync.Mutex
	buf      []byte
}

// batchSize holds the records of the writer's 64 KiB buffer with their
// headers and tags.
const batchSize = 80 << 10

func (b *recordBatcher) start() {
	b.mu.Lock()
	b.buf = make([]byte, 0, batchSize)
	b.mu.Unlock()
	b.batching.Store(true)
}

func (b *recordBatcher) Write(p []byte) (int, error) {
	if !b.batching.Load() {
		return b.Conn.Write(p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(b.buf) {
			return b.Conn.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// flush sends the gathered records; it does nothing on a nil batcher.
func (b *recordBatcher) flush() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *recordBatcher) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// sendNext sends r's next buffer if its credit allows.
func (s *serverConn) sendNext(bw *bufio.Writer, r *serverReader, credit int, hdr *[]byte) error {
	s.mu.Lock()
	released := r.released
	s.mu.Unlock()
	if released {
		return nil // e.g. re-queued by the partition's release after its end-of-partition was sent
	}
	res, err := r.view.poll(credit)
	if err != nil {
		code := uint8(errCodeGeneric)
		if errors.Is(err, ErrPartitionReleased) {
			code = errCodePartitionReleased
		}
		s.releaseReader(r)
		*hdr = appendErrorResponse((*hdr)[:0], errorResponse{channel: r.id, code: code, message: err.Error()})
		_, werr := bw.Write(*hdr)
		return werr
	}
	b := res.buf
	if b == nil {
		return nil
	}
	s.mu.Lock()
	if r.released {
		s.mu.Unlock()
		b.Recycle()
		return nil
	}
	if !b.event {
		r.credit--
	}
	seq := r.seq
	r.seq++
	if res.more {
		s.enqueueLocked(r) // round-robin: back of the queue, behind the other channels
	}
	s.mu.Unlock()

	dataType := uint8(dataTypeBuffer)
	if b.event {
		dataType = dataTypeEvent
	}
	*hdr = appendBufferResponseHeader((*hdr)[:0], bufferResponseHeader{
		channel: r.id, seq: seq, backlog: uint32(res.backlog), dataType: dataType, size: len(b.data),
	})
	_, err = bw.Write(*hdr)
	if err == nil {
		_, err = bw.Write(b.data)
	}
	s.m.bytesOut.Add(int64(len(b.data)))
	eop := b.event && EventKind(b.data[0]) == EventEndOfPartition
	b.Recycle()
	if eop {
		s.releaseReader(r)
	}
	return err
}

// shutdown closes the connection and releases every reader. It is idempotent.
func (s *serverConn) shutdown() {
	s.doneOnce.Do(func() {
		s.mu.Lock()
		s.mu.closed = true
		readers := make([]*serverReader, 0, len(s.mu.readers))
		for _, r := range s.mu.readers {
			readers = append(readers, r)
		}
		s.mu.queue = nil
		s.mu.Unlock()
		close(s.done)
		s.nc.Close()
		for _, r := range readers {
			s.releaseReader(r)
		}
		s.m.forgetServer(s)
	})
}
