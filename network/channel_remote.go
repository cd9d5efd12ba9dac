package network

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// RemoteInputChannel reads a subpartition produced by another TaskManager over the connection
// manager's shared TCP connection to it, with credit-based flow control: the channel owns
// ExclusiveBuffersPerChannel receive buffers, borrows floating buffers from its gate when the
// producer reports a backlog, and announces each free buffer to the producer as one credit. The
// producer sends a data buffer only against credit, so the connection's reader never waits for a
// slow consumer and other channels on the connection keep flowing.
type RemoteInputChannel struct {
	gate      *InputGate
	index     int
	spec      InputChannelSpec
	exclusive int

	mu struct {
		sync.Mutex
		conn         *clientConn
		id           uint64
		received     bufferQueue
		free         []*segment // receive buffers; each one is (or will be) one credit
		floating     int        // floating segments held (free, queued or in use)
		unannounced  int        // free buffers not yet announced as credit
		senderCredit int        // credit announced to the producer and not used yet
		creditQueued bool
		backlog      int
		nextSeq      uint32
		err          error
		released     bool
		requested    bool
		retry        *time.Timer
		backoff      time.Duration
		deadline     time.Time
	}
}

func newRemoteInputChannel(g *InputGate, index int, spec InputChannelSpec, exclusive int) *RemoteInputChannel {
	return &RemoteInputChannel{gate: g, index: index, spec: spec, exclusive: exclusive}
}

// Index implements InputChannel.
func (c *RemoteInputChannel) Index() int { return c.index }

// Spec implements InputChannel.
func (c *RemoteInputChannel) Spec() InputChannelSpec { return c.spec }

// request connects to the producer's TaskManager and sends the partition request.
func (c *RemoteInputChannel) request(ctx context.Context) error {
	m := c.gate.cfg.Connections
	conn, err := m.connect(ctx, c.spec.ProducerAddr)
	if err != nil {
		return fmt.Errorf("network: input channel %d (%s[%d]): %w", c.index, c.spec.Partition, c.spec.Subpartition, err)
	}
	id := m.newChannelID()
	c.mu.Lock()
	if c.mu.released {
		c.mu.Unlock()
		return nil
	}
	c.mu.conn = conn
	c.mu.id = id
	c.mu.requested = true
	c.mu.backoff = m.cfg.PartitionRequestInitialBackoff
	c.mu.deadline = time.Now().Add(m.cfg.PartitionRequestTimeout)
	credit := len(c.mu.free)
	c.mu.senderCredit = credit
	c.mu.unannounced = 0
	c.mu.Unlock()
	if err := conn.register(id, c); err != nil {
		return fmt.Errorf("network: input channel %d (%s[%d]): %w", c.index, c.spec.Partition, c.spec.Subpartition, err)
	}
	conn.sendPartitionRequest(partitionRequest{
		channel:      id,
		subpartition: uint32(c.spec.Subpartition),
		credit:       uint32(credit),
		partition:    c.spec.Partition,
	})
	return nil
}

// takeSegment returns a free receive buffer for an incoming data buffer of size bytes. Called by
// the connection's reader goroutine.
func (c *RemoteInputChannel) takeSegment(size int) (*segment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.mu.free)
	if c.mu.senderCredit <= 0 || n == 0 {
		return nil, fmt.Errorf("%w: channel %d received a buffer without credit", ErrProtocol, c.mu.id)
	}
	seg := c.mu.free[n-1]
	if size > len(seg.data) {
		return nil, fmt.Errorf("%w: buffer of %d bytes exceeds the receive buffer size %d", ErrProtocol, size, len(seg.data))
	}
	c.mu.free[n-1] = nil
	c.mu.free = c.mu.free[:n-1]
	c.mu.senderCredit--
	return seg, nil
}

// putBack returns a segment taken by takeSegment that could not be filled.
func (c *RemoteInputChannel) putBack(seg *segment) {
	c.mu.Lock()
	c.mu.free = append(c.mu.free, seg)
	c.mu.senderCredit++
	c.mu.Unlock()
}

// checkSeqLocked verifies the sequence number of an incoming buffer or event.
func (c *RemoteInputChannel) checkSeqLocked(seq uint32) error {
	if seq != c.mu.nextSeq {
		return fmt.Errorf("%w: channel %d: sequence number %d, want %d", ErrProtocol, c.mu.id, seq, c.mu.nextSeq)
	}
	c.mu.nextSeq++
	return nil
}

// onBuffer queues a received buffer (seg filled with size bytes). Called by the connection's
// reader goroutine. An error is a protocol violation of the connection.
func (c *RemoteInputChannel) onBuffer(seg *segment, size int, seq uint32, backlog int) error {
	seg.refs.Store(0)
	b := newBuffer(seg, 0, size)
	c.mu.Lock()
	if c.mu.released {
		c.mu.Unlock()
		b.Recycle()
		return nil
	}
	if err := c.checkSeqLocked(seq); err != nil {
		c.mu.Unlock()
		b.Recycle()
		return err
	}
	c.mu.received.push(b)
	wasEmpty := c.mu.received.len() == 1
	need := c.onBacklogLocked(backlog)
	c.mu.Unlock()
	if need > 0 {
		c.requestFloating(need)
	}
	if wasEmpty {
		c.gate.notify(c.index)
	}
	return nil
}

// onEvent queues a received event. Called by the connection's reader goroutine.
func (c *RemoteInputChannel) onEvent(data []byte, seq uint32, backlog int) error {
	c.mu.Lock()
	if c.mu.released {
		c.mu.Unlock()
		return nil
	}
	if err := c.checkSeqLocked(seq); err != nil {
		c.mu.Unlock()
		return err
	}
	c.mu.received.push(newEventBuffer(data))
	wasEmpty := c.mu.received.len() == 1
	need := c.onBacklogLocked(backlog)
	c.mu.Unlock()
	if need > 0 {
		c.requestFloating(need)
	}
	if wasEmpty {
		c.gate.notify(c.index)
	}
	return nil
}

// onBacklogLocked records the producer's backlog and returns how many floating buffers the
// channel should borrow: it wants backlog + exclusive free buffers (Flink's rule).
func (c *RemoteInputChannel) onBacklogLocked(backlog int) int {
	c.mu.backlog = backlog
	return backlog + c.exclusive - len(c.mu.free)
}

// requestFloating borrows up to n floating buffers from the gate and announces them as credit.
func (c *RemoteInputChannel) requestFloating(n int) {
	segs := c.gate.takeFloating(c, n)
	if len(segs) == 0 {
		return
	}
	c.mu.Lock()
	if c.mu.released {
		c.mu.Unlock()
		for _, s := range segs {
			c.gate.recycleFloating(s)
		}
		return
	}
	for _, s := range segs {
		s.owner = c
		c.mu.free = append(c.mu.free, s)
	}
	c.mu.floating += len(segs)
	queue := c.addCreditLocked(len(segs))
	c.mu.Unlock()
	if queue != nil {
		queue.queueCredit(c)
	}
}

// addFloating offers one floating buffer; it reports whether the channel took it.
func (c *RemoteInputChannel) addFloating(seg *segment) bool {
	c.mu.Lock()
	if c.mu.released || len(c.mu.free) >= c.mu.backlog+c.exclusive {
		c.mu.Unlock()
		return false
	}
	seg.owner = c
	c.mu.free = append(c.mu.free, seg)
	c.mu.floating++
	queue := c.addCreditLocked(1)
	c.mu.Unlock()
	if queue != nil {
		queue.queueCredit(c)
	}
	return true
}

// addCreditLocked records n new free buffers to announce and returns the connection to notify if
// an AddCredit must be queued.
func (c *RemoteInputChannel) addCreditLocked(n int) *clientConn {
	c.mu.unannounced += n
	if c.mu.creditQueued || c.mu.conn == nil {
		return nil
	}
	c.mu.creditQueued = true
	return c.mu.conn
}

// takeUnannounced returns and clears the credit to announce. Called by the connection's writer.
func (c *RemoteInputChannel) takeUnannounced() (uint64, uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.creditQueued = false
	if c.mu.released {
		return c.mu.id, 0
	}
	n := c.mu.unannounced
	c.mu.unannounced = 0
	c.mu.senderCredit += n
	return c.mu.id, uint32(n)
}

// recycleSegment implements recycler: the consumer is done with a received buffer. The buffer
// becomes credit again, unless it is a floating buffer the channel no longer needs, which goes
// back to the gate.
func (c *RemoteInputChannel) recycleSegment(seg *segment) {
	c.mu.Lock()
	if c.mu.released {
		c.mu.Unlock()
		c.gate.recycleFloating(seg)
		return
	}
	if c.mu.floating > 0 && len(c.mu.free) >= c.mu.backlog+c.exclusive {
		c.mu.floating--
		c.mu.Unlock()
		c.gate.recycleFloating(seg)
		return
	}
	c.mu.free = append(c.mu.free, seg)
	queue := c.addCreditLocked(1)
	c.mu.Unlock()
	if queue != nil {
		queue.queueCredit(c)
	}
}

// onError handles an ErrorResponse for this channel. Called by the connection's reader.
func (c *RemoteInputChannel) onError(code uint8, msg string) {
	if code == errCodePartitionNotFound {
		c.mu.Lock()
		if !c.mu.released && c.mu.err == nil && time.Now().Before(c.mu.deadline) {
			d := c.mu.backoff
			c.mu.backoff = min(2*c.mu.backoff, c.gate.cfg.Connections.cfg.PartitionRequestMaxBackoff)
			c.mu.retry = time.AfterFunc(d, c.retryRequest)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	var err error
	switch code {
	case errCodePartitionNotFound:
		err = fmt.Errorf("%w: %w: %s (gave up after %v)", ErrRemote, ErrPartitionNotFound, msg, c.gate.cfg.Connections.cfg.PartitionRequestTimeout)
	case errCodePartitionReleased:
		err = fmt.Errorf("%w: %w: %s", ErrRemote, ErrPartitionReleased, msg)
	default:
		err = fmt.Errorf("%w: %s", ErrRemote, msg)
	}
	c.fail(err)
}

// retryRequest sends the partition request again after a not-found answer.
func (c *RemoteInputChannel) retryRequest() {
	c.mu.Lock()
	conn, id, credit := c.mu.conn, c.mu.id, len(c.mu.free)
	ok := !c.mu.released && c.mu.err == nil && conn != nil
	c.mu.unannounced = 0 // the request carries all free buffers as initial credit
	c.mu.senderCredit = credit
	c.mu.Unlock()
	if ok {
		conn.sendPartitionRequest(partitionRequest{
			channel:      id,
			subpartition: uint32(c.spec.Subpartition),
			credit:       uint32(credit),
			partition:    c.spec.Partition,
		})
	}
}

// fail records err (the first error wins) and wakes the gate so that Next reports it.
func (c *RemoteInputChannel) fail(err error) {
	c.mu.Lock()
	if c.mu.released || c.mu.err != nil {
		c.mu.Unlock()
		return
	}
	c.mu.err = err
	c.mu.Unlock()
	c.gate.notify(c.index)
}

// poll implements InputChannel. Buffers received before a failure are returned first.
func (c *RemoteInputChannel) poll() (*Buffer, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.mu.received.pop(); b != nil {
		return b, c.mu.received.len() > 0 || c.mu.err != nil, nil
	}
	if c.mu.err != nil {
		return nil, false, c.mu.err
	}
	return nil, false, nil
}

// release implements InputChannel.
func (c *RemoteInputChannel) release(sendCancel bool) {
	c.mu.Lock()
	if c.mu.released {
		c.mu.Unlock()
		return
	}
	c.mu.released = true
	if c.mu.retry != nil {
		c.mu.retry.Stop()
	}
	conn, id, requested := c.mu.conn, c.mu.id, c.mu.requested
	received := c.mu.received.drain()
	free := c.mu.free
	c.mu.free = nil
	c.mu.unannounced = 0
	c.mu.Unlock()
	c.gate.removeWaiter(c)
	for _, b := range received {
		b.Recycle() // comes back through recycleSegment, which forwards it to the gate
	}
	for _, s := range free {
		c.gate.recycleFloating(s)
	}
	if requested {
		conn.unregister(id, sendCancel)
	}
}
