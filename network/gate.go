package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Default credit-based flow control settings (Flink's defaults).
const (
	// DefaultExclusiveBuffersPerChannel is the number of buffers each remote input channel owns.
	DefaultExclusiveBuffersPerChannel = 2
	// DefaultFloatingBuffersPerGate is the number of buffers an input gate lends to the remote
	// channels whose producers report a backlog.
	DefaultFloatingBuffersPerGate = 8
)

// InputChannelSpec says where one input channel of a gate reads from.
type InputChannelSpec struct {
	// Partition and Subpartition identify the subpartition to read.
	Partition    ResultPartitionID
	Subpartition int
	// ProducerAddr is the data address (ConnectionManager.Addr) of the TaskManager that produces
	// the partition. Empty means the producer runs in this process: the channel reads the
	// partition directly from the gate's ResultPartitionManager.
	ProducerAddr string
}

// InputGateConfig configures an InputGate.
type InputGateConfig struct {
	// Channels lists the gate's input channels, one per producing subtask; a channel's index in
	// this slice is the index Next reports.
	Channels []InputChannelSpec
	// Buffers provides the receive buffers of remote channels. Required if any channel is remote.
	Buffers *NetworkBufferPool
	// Partitions serves local channels. Required if any channel is local.
	Partitions *ResultPartitionManager
	// Connections carries remote channels. Required if any channel is remote.
	Connections *ConnectionManager
	// ExclusiveBuffersPerChannel is the credit each remote channel owns (default 2, at least 1).
	ExclusiveBuffersPerChannel int
	// FloatingBuffers is the number of buffers shared by the gate's remote channels, given to those
	// whose producers report a backlog (default 8).
	FloatingBuffers int
}

// DefaultInputGateConfig returns a configuration with Flink's buffer defaults and no channels.
func DefaultInputGateConfig() InputGateConfig {
	return InputGateConfig{
		ExclusiveBuffersPerChannel: DefaultExclusiveBuffersPerChannel,
		FloatingBuffers:            DefaultFloatingBuffersPerGate,
	}
}

// Validate checks the configuration.
func (c InputGateConfig) Validate() error {
	if len(c.Channels) == 0 {
		return errors.New("network: input gate needs at least one channel")
	}
	var local, remote bool
	for _, ch := range c.Channels {
		if ch.ProducerAddr == "" {
			local = true
		} else {
			remote = true
		}
	}
	switch {
	case local && c.Partitions == nil:
		return errors.New("network: input gate has local channels but no ResultPartitionManager")
	case remote && (c.Connections == nil || c.Buffers == nil):
		return errors.New("network: input gate has remote channels but no ConnectionManager or NetworkBufferPool")
	case remote && c.ExclusiveBuffersPerChannel < 1:
		return fmt.Errorf("network: exclusive buffers per channel must be at least 1, got %d", c.ExclusiveBuffersPerChannel)
	case c.FloatingBuffers < 0:
		return fmt.Errorf("network: floating buffers must not be negative, got %d", c.FloatingBuffers)
	}
	return nil
}

// InputChannel is one input of a gate: it reads one subpartition of one producer. It is
// implemented by *LocalInputChannel and *RemoteInputChannel only. Its methods are safe for
// concurrent use.
type InputChannel interface {
	// Index returns the channel's index in its gate.
	Index() int
	// Spec returns what the channel reads.
	Spec() InputChannelSpec

	// poll takes the next buffer; more reports that another one is ready. It does not block.
	poll() (b *Buffer, more bool, err error)
	// release frees the channel's resources; sendCancel asks a remote producer to stop.
	release(sendCancel bool)
}

// BufferOrEvent is an element read from an input gate.
type BufferOrEvent struct {
	// Channel is the index of the input channel it came from.
	Channel int
	// Buffer holds serialized records; nil for an event. The caller owns it and must Recycle it.
	Buffer *Buffer
	// Event is the in-band event when Buffer is nil. Its payload is owned by the caller.
	Event Event
}

// IsEvent reports whether the element is an event.
func (b BufferOrEvent) IsEvent() bool { return b.Buffer == nil }

// GateMetrics is a snapshot of an input gate's counters.
type GateMetrics struct {
	// Buffers and Bytes count the data buffers returned by Next.
	Buffers int64
	Bytes   int64
	// IdleNanos is the cumulative time Next waited for input: Flink's idle time. Use
	// MillisPerSecond on two samples to get idleTimeMsPerSecond.
	IdleNanos int64
	// PoolSize is the number of receive buffers of the remote channels (exclusive and floating)
	// and PoolUsed those holding data not yet read and recycled; PoolUsed/PoolSize is Flink's
	// inPoolUsage. Both are 0 without remote channels: local channels read their producer's
	// buffers. PoolUsed is a best-effort sample, taken without stopping the channels, and 0
	// once the gate is closed.
	PoolUsed, PoolSize int
}

// InputGate merges the input channels of one consuming subtask: Next returns the next buffer or
// event of any channel whose data is ready, round-robin across channels. A single channel can be
// blocked (for checkpoint barrier alignment) without blocking the others.
//
// Next is called by one goroutine (the consuming subtask). BlockChannel, ResumeChannel, Metrics and
// Close may be called from any goroutine.
type InputGate struct {
	cfg      InputGateConfig
	channels []InputChannel
	pool     *LocalBufferPool // receive buffers of remote channels; nil without remote channels
	poolSize int              // buffers of pool, all taken at creation
	idle     atomic.Int64
	buffers  atomic.Int64
	bytes    atomic.Int64

	requestOnce sync.Once
	requestErr  error

	mu struct {
		sync.Mutex
		queue        []int // channels that may have data, in arrival order
		queued       []bool
		pending      []bool // may have data but blocked
		blocked      []bool
		finished     []bool
		numFinished  int
		pendingLocal []*LocalInputChannel // local channels whose partition is not registered yet
		wake         chan struct{}
		floating     []*segment
		waiters      []*RemoteInputChannel // remote channels waiting for floating buffers
		closed       bool
	}
}

// NewInputGate returns a gate reading the configured channels. The receive buffers of remote
// channels (exclusive and floating) are reserved now: it fails with ErrInsufficientBuffers if the
// NetworkBufferPool cannot guarantee them. Partitions are requested at the first Next or
// RequestPartitions. Close the gate when done.
func NewInputGate(cfg InputGateConfig) (*InputGate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &InputGate{cfg: cfg, channels: make([]InputChannel, len(cfg.Channels))}
	n := len(cfg.Channels)
	g.mu.queued = make([]bool, n)
	g.mu.pending = make([]bool, n)
	g.mu.blocked = make([]bool, n)
	g.mu.finished = make([]bool, n)
	var remote []*RemoteInputChannel
	for i, spec := range cfg.Channels {
		if spec.ProducerAddr == "" {
			lc := &LocalInputChannel{gate: g, index: i, spec: spec}
			g.channels[i] = lc
			g.mu.pendingLocal = append(g.mu.pendingLocal, lc)
		} else {
			rc := newRemoteInputChannel(g, i, spec, cfg.ExclusiveBuffersPerChannel)
			g.channels[i] = rc
			remote = append(remote, rc)
		}
	}
	if len(remote) > 0 {
		total := len(remote)*cfg.ExclusiveBuffersPerChannel + cfg.FloatingBuffers
		pool, err := cfg.Buffers.CreateLocalBufferPool(total, total)
		if err != nil {
			return nil, fmt.Errorf("network: input gate with %d remote channels: %w", len(remote), err)
		}
		g.pool, g.poolSize = pool, total
		for _, rc := range remote {
			for range cfg.ExclusiveBuffersPerChannel {
				seg := g.mustSegment()
				seg.owner = rc
				rc.mu.free = append(rc.mu.free, seg)
			}
		}
		for range cfg.FloatingBuffers {
			g.mu.floating = append(g.mu.floating, g.mustSegment())
		}
	}
	return g, nil
}

// mustSegment takes a reserved segment out of the gate's pool; it cannot fail because the pool's
// minimum covers every segment taken.
func (g *InputGate) mustSegment() *segment {
	seg, err := g.pool.requestSegment()
	if seg == nil || err != nil {
		panic(fmt.Sprintf("network: reserved gate buffer unavailable (%v)", err)) // invariant
	}
	seg.refs.Store(0)
	return seg
}

// NumChannels returns the number of input channels.
func (g *InputGate) NumChannels() int { return len(g.channels) }

// Channel returns input channel i.
func (g *InputGate) Channel(i int) InputChannel { return g.channels[i] }

// Metrics returns a snapshot of the gate's counters.
func (g *InputGate) Metrics() GateMetrics {
	m := GateMetrics{Buffers: g.buffers.Load(), Bytes: g.bytes.Load(), IdleNanos: g.idle.Load(), PoolSize: g.poolSize}
	if g.poolSize == 0 {
		return m
	}
	// Free buffers wait in the gate (floating) or in the channels (announced or announceable as
	// credit); the others hold data. The locks are taken one at a time, never nested.
	g.mu.Lock()
	free, closed := len(g.mu.floating), g.mu.closed
	g.mu.Unlock()
	if closed {
		return m // its buffers went back to the TaskManager's pool
	}
	for _, ch := range g.channels {
		if rc, ok := ch.(*RemoteInputChannel); ok {
			rc.mu.Lock()
			free += len(rc.mu.free)
			rc.mu.Unlock()
		}
	}
	m.PoolUsed = min(max(g.poolSize-free, 0), g.poolSize)
	return m
}

// RequestPartitions connects the remote channels (dialing producers' TaskManagers as needed) and
// sends their partition requests, and requests the local channels whose partitions are
// registered; the others are requested as their producers register them. It is called by the
// first Next; calling it earlier overlaps connection setup with other work. Only the first call
// does anything; it returns the first call's result.
func (g *InputGate) RequestPartitions(ctx context.Context) error {
	g.requestOnce.Do(func() {
		for _, ch := range g.channels {
			if rc, ok := ch.(*RemoteInputChannel); ok {
				if err := rc.request(ctx); err != nil {
					g.requestErr = err
					return
				}
			}
		}
		g.requestErr = g.requestLocal()
	})
	return g.requestErr
}

// requestLocal tries to request the pending local channels.
func (g *InputGate) requestLocal() error {
	g.mu.Lock()
	pending := g.mu.pendingLocal
	g.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	var still []*LocalInputChannel
	for _, lc := range pending {
		ok, err := lc.tryRequest()
		if err != nil {
			return err
		}
		if !ok {
			still = append(still, lc)
		}
	}
	g.mu.Lock()
	g.mu.pendingLocal = still
	g.mu.Unlock()
	return nil
}

// Next returns the next buffer or event of any unblocked channel, waiting until one is ready or ctx
// ends. After a channel's end-of-partition event (which Next returns) the channel is released;
// once every channel has ended Next returns io.EOF. A failed channel makes Next return its error
// (wrapped, naming the channel) from then on; the task should then Close the gate. A returned
// Buffer belongs to the caller, who must Recycle it.
func (g *InputGate) Next(ctx context.Context) (BufferOrEvent, error) {
	return g.NextOr(ctx, nil)
}

// NextOr is Next, except that it returns ErrInterrupted, leaving the gate as
// it was, when interrupt delivers while it waits: a task's mailbox signal,
// so that the task can run its mails and then call NextOr again. A nil
// interrupt never delivers.
func (g *InputGate) NextOr(ctx context.Context, interrupt <-chan struct{}) (BufferOrEvent, error) {
	if err := g.RequestPartitions(ctx); err != nil {
		return BufferOrEvent{}, err
	}
	for {
		g.mu.Lock()
		if g.mu.closed {
			g.mu.Unlock()
			return BufferOrEvent{}, fmt.Errorf("%w: input gate", ErrClosed)
		}
		if g.mu.numFinished == len(g.channels) {
			g.mu.Unlock()
			return BufferOrEvent{}, io.EOF
		}
		idx := -1
		if len(g.mu.queue) > 0 {
			idx = g.mu.queue[0]
			g.mu.queue = g.mu.queue[1:]
			g.mu.queued[idx] = false
		}
		if idx < 0 {
			if g.mu.wake == nil {
				g.mu.wake = make(chan struct{})
			}
			wake := g.mu.wake
			pendingLocal := len(g.mu.pendingLocal) > 0
			g.mu.Unlock()
			var registered <-chan struct{}
			if pendingLocal {
				registered = g.cfg.Partitions.registrationChanged()
				if err := g.requestLocal(); err != nil {
					return BufferOrEvent{}, err
				}
			}
			start := time.Now()
			select {
			case <-wake:
			case <-registered:
			case <-interrupt:
				g.idle.Add(int64(time.Since(start)))
				return BufferOrEvent{}, ErrInterrupted
			case <-ctx.Done():
				g.idle.Add(int64(time.Since(start)))
				return BufferOrEvent{}, ctx.Err()
			}
			g.idle.Add(int64(time.Since(start)))
			continue
		}
		g.mu.Unlock()

		ch := g.channels[idx]
		b, more, err := ch.poll()
		if err != nil {
			g.notify(idx) // the error is sticky: the next call reports it again
			return BufferOrEvent{}, fmt.Errorf("network: input channel %d (%s[%d]): %w", idx, ch.Spec().Partition, ch.Spec().Subpartition, err)
		}
		if more {
			g.notify(idx)
		}
		if b == nil {
			continue
		}
		if !b.event {
			g.buffers.Add(1)
			g.bytes.Add(int64(len(b.data)))
			return BufferOrEvent{Channel: idx, Buffer: b}, nil
		}
		ev, err := unmarshalEvent(b.data)
		if err != nil {
			return BufferOrEvent{}, fmt.Errorf("network: input channel %d: %w", idx, err)
		}
		if ev.Kind == EventEndOfPartition {
			g.finishChannel(idx)
		}
		return BufferOrEvent{Channel: idx, Event: ev}, nil
	}
}

// finishChannel marks channel idx as ended and releases it.
func (g *InputGate) finishChannel(idx int) {
	g.mu.Lock()
	if !g.mu.finished[idx] {
		g.mu.finished[idx] = true
		g.mu.numFinished++
	}
	g.removeFromQueueLocked(idx)
	g.mu.pending[idx] = false
	g.mu.Unlock()
	g.channels[idx].release(false)
}

func (g *InputGate) removeFromQueueLocked(idx int) {
	if !g.mu.queued[idx] {
		return
	}
	g.mu.queued[idx] = false
	for i, c := range g.mu.queue {
		if c == idx {
			g.mu.queue = append(g.mu.queue[:i:i], g.mu.queue[i+1:]...)
			return
		}
	}
}

// notify marks channel idx as possibly having data. Called by channels without their locks held.
func (g *InputGate) notify(idx int) {
	g.mu.Lock()
	if g.mu.closed || g.mu.finished[idx] || g.mu.queued[idx] {
		g.mu.Unlock()
		return
	}
	if g.mu.blocked[idx] {
		g.mu.pending[idx] = true
		g.mu.Unlock()
		return
	}
	g.mu.queued[idx] = true
	g.mu.queue = append(g.mu.queue, idx)
	wake := g.mu.wake
	g.mu.wake = nil
	g.mu.Unlock()
	if wake != nil {
		close(wake)
	}
}

// BlockChannel stops Next from returning elements of channel idx until ResumeChannel(idx); the
// channel's data stays queued (and, for a remote channel, its producer is back-pressured by credit
// once its buffers are used up). Other channels are not affected.
func (g *InputGate) BlockChannel(idx int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.blocked[idx] {
		return
	}
	g.mu.blocked[idx] = true
	if g.mu.queued[idx] {
		g.removeFromQueueLocked(idx)
		g.mu.pending[idx] = true
	}
}

// ResumeChannel undoes BlockChannel.
func (g *InputGate) ResumeChannel(idx int) {
	g.mu.Lock()
	if !g.mu.blocked[idx] {
		g.mu.Unlock()
		return
	}
	g.mu.blocked[idx] = false
	pending := g.mu.pending[idx]
	g.mu.pending[idx] = false
	g.mu.Unlock()
	if pending {
		g.notify(idx)
	}
}

// IsBlocked reports whether channel idx is blocked.
func (g *InputGate) IsBlocked(idx int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.blocked[idx]
}

// Close releases every channel (asking remote producers to stop sending), returns the gate's
// buffers to the NetworkBufferPool and makes Next fail with ErrClosed. Buffers the caller still
// holds return to the pool when recycled. Close is idempotent.
func (g *InputGate) Close() error {
	g.mu.Lock()
	if g.mu.closed {
		g.mu.Unlock()
		return nil
	}
	g.mu.closed = true
	finished := append([]bool(nil), g.mu.finished...)
	wake := g.mu.wake
	g.mu.wake = nil
	floating := g.mu.floating
	g.mu.floating = nil
	g.mu.waiters = nil
	g.mu.Unlock()
	if wake != nil {
		close(wake)
	}
	for i, ch := range g.channels {
		ch.release(!finished[i])
	}
	for _, seg := range floating {
		g.returnToPool(seg)
	}
	if g.pool != nil {
		g.pool.Destroy()
	}
	return nil
}

// returnToPool gives a receive segment (with no references) back to the gate's pool.
func (g *InputGate) returnToPool(seg *segment) {
	seg.owner = g.pool
	g.pool.recycleSegment(seg)
}

// takeFloating gives up to n floating segments to rc. If fewer were available rc is registered as
// a waiter and gets segments as they are recycled.
func (g *InputGate) takeFloating(rc *RemoteInputChannel, n int) []*segment {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.closed {
		return nil
	}
	k := min(n, len(g.mu.floating))
	segs := make([]*segment, k)
	copy(segs, g.mu.floating[len(g.mu.floating)-k:])
	clear(g.mu.floating[len(g.mu.floating)-k:])
	g.mu.floating = g.mu.floating[:len(g.mu.floating)-k]
	if k < n {
		registered := false
		for _, w := range g.mu.waiters {
			if w == rc {
				registered = true
				break
			}
		}
		if !registered {
			g.mu.waiters = append(g.mu.waiters, rc)
		}
	}
	return segs
}

// recycleFloating takes back a floating segment and lends it to a waiting channel, if any.
func (g *InputGate) recycleFloating(seg *segment) {
	for {
		g.mu.Lock()
		if g.mu.closed {
			g.mu.Unlock()
			g.returnToPool(seg)
			return
		}
		if len(g.mu.waiters) == 0 {
			g.mu.floating = append(g.mu.floating, seg)
			g.mu.Unlock()
			return
		}
		w := g.mu.waiters[0]
		g.mu.waiters = g.mu.waiters[1:]
		g.mu.Unlock()
		if w.addFloating(seg) {
			return
		}
	}
}

// removeWaiter forgets rc as a waiter for floating buffers.
func (g *InputGate) removeWaiter(rc *RemoteInputChannel) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, w := range g.mu.waiters {
		if w == rc {
			g.mu.waiters = append(g.mu.waiters[:i:i], g.mu.waiters[i+1:]...)
			return
		}
	}
}
