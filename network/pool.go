package network

import (
	"context"
	"fmt"
	"sync"
)

// DefaultNumBuffers is the default number of buffers of a NetworkBufferPool (64 MiB of 32 KiB
// buffers, Flink's default minimum network memory).
const DefaultNumBuffers = 2048

// NetworkBufferPool is the fixed pool of network buffers of one TaskManager. Tasks do not take
// buffers from it directly: each result partition and input gate creates a LocalBufferPool with a
// guaranteed minimum and an upper bound. The sum of all minimums never exceeds the pool's size, so
// a task that got its local pool can always make progress; creating a local pool whose minimum
// cannot be guaranteed fails at once with ErrInsufficientBuffers instead of hanging.
//
// Memory is allocated lazily, on first use of each buffer, and then reused. All methods are safe
// for concurrent use.
type NetworkBufferPool struct {
	bufferSize int
	total      int

	mu struct {
		sync.Mutex
		free      []*segment
		allocated int // segments ever allocated; never more than total
		reserved  int // sum of the minimums of live local pools
		owed      int // buffers still owed to local pools below their minimum
		pools     int // live local pools
		changed   chan struct{}
		closed    bool
	}
}

// NewNetworkBufferPool returns a pool of numBuffers buffers of bufferSize bytes each.
func NewNetworkBufferPool(numBuffers, bufferSize int) (*NetworkBufferPool, error) {
	if numBuffers <= 0 {
		return nil, fmt.Errorf("network: number of buffers must be positive, got %d", numBuffers)
	}
	if bufferSize < 64 || bufferSize > 1<<26 {
		return nil, fmt.Errorf("network: buffer size must be between 64 bytes and 64 MiB, got %d", bufferSize)
	}
	return &NetworkBufferPool{bufferSize: bufferSize, total: numBuffers}, nil
}

// BufferSize returns the size of every buffer of the pool in bytes.
func (p *NetworkBufferPool) BufferSize() int { return p.bufferSize }

// NumBuffers returns the pool's fixed number of buffers.
func (p *NetworkBufferPool) NumBuffers() int { return p.total }

// PoolMetrics is a snapshot of a NetworkBufferPool.
type PoolMetrics struct {
	// Total is the fixed number of buffers.
	Total int
	// Available is the number of buffers not held by any local pool.
	Available int
	// Reserved is the sum of the minimums of the live local pools.
	Reserved int
	// LocalPools is the number of live local pools.
	LocalPools int
}

// Metrics returns a snapshot of the pool's counters.
func (p *NetworkBufferPool) Metrics() PoolMetrics {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolMetrics{
		Total:      p.total,
		Available:  p.availableLocked(),
		Reserved:   p.mu.reserved,
		LocalPools: p.mu.pools,
	}
}

func (p *NetworkBufferPool) availableLocked() int {
	return p.total - p.mu.allocated + len(p.mu.free)
}

// CreateLocalBufferPool returns a local pool that is guaranteed min buffers and may hold up to max
// when the NetworkBufferPool has buffers nobody else is guaranteed. It fails with an error wrapping
// ErrInsufficientBuffers when min buffers cannot be guaranteed. Destroy the local pool when the
// task ends.
func (p *NetworkBufferPool) CreateLocalBufferPool(min, max int) (*LocalBufferPool, error) {
	if min < 0 || max < 1 || min > max {
		return nil, fmt.Errorf("network: invalid local pool bounds min=%d max=%d (want 0 <= min <= max, max >= 1)", min, max)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return nil, fmt.Errorf("%w: network buffer pool", ErrClosed)
	}
	if free := p.total - p.mu.reserved; min > free {
		return nil, fmt.Errorf("%w: need %d buffers of %d bytes, only %d of %d are not reserved by %d other pools",
			ErrInsufficientBuffers, min, p.bufferSize, free, p.total, p.mu.pools)
	}
	p.mu.reserved += min
	p.mu.owed += min
	p.mu.pools++
	lp := &LocalBufferPool{global: p, min: min, max: max}
	return lp, nil
}

// Close marks the pool closed: no new local pools can be created. Buffers still in use stay valid.
func (p *NetworkBufferPool) Close() {
	p.mu.Lock()
	p.mu.closed = true
	p.mu.Unlock()
}

// take hands out one segment to a local pool. reserved says that the local pool is below its
// minimum, so the segment comes out of its guarantee; otherwise the segment must come from buffers
// that no local pool is owed. It returns nil when no segment can be given.
func (p *NetworkBufferPool) take(reserved bool) *segment {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reserved {
		p.mu.owed--
	} else if p.availableLocked() <= p.mu.owed {
		return nil
	}
	if n := len(p.mu.free); n > 0 {
		s := p.mu.free[n-1]
		p.mu.free[n-1] = nil
		p.mu.free = p.mu.free[:n-1]
		return s
	}
	p.mu.allocated++
	return &segment{data: make([]byte, p.bufferSize)}
}

// give takes back segments from a local pool. owed is how many of them the local pool is owed
// back afterwards (it dropped below its minimum).
func (p *NetworkBufferPool) give(segs []*segment, owed int) {
	p.mu.Lock()
	p.mu.free = append(p.mu.free, segs...)
	p.mu.owed += owed
	ch := p.mu.changed
	p.mu.changed = nil
	p.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// changedChan returns a channel closed the next time segments come back to the pool.
func (p *NetworkBufferPool) changedChan() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.changed == nil {
		p.mu.changed = make(chan struct{})
	}
	return p.mu.changed
}

// release ends a local pool's reservation. stillOwed is how many buffers the pool was still owed.
func (p *NetworkBufferPool) release(min, stillOwed int, segs []*segment) {
	p.mu.Lock()
	p.mu.reserved -= min
	p.mu.owed -= stillOwed
	p.mu.pools--
	p.mu.free = append(p.mu.free, segs...)
	ch := p.mu.changed
	p.mu.changed = nil
	p.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// LocalBufferPool is the share of a NetworkBufferPool used by one result partition or input gate:
// at least Min buffers are guaranteed, at most Max are held at once. Buffers return to it when
// recycled; buffers above the minimum go back to the NetworkBufferPool when nobody here waits.
// All methods are safe for concurrent use.
type LocalBufferPool struct {
	global   *NetworkBufferPool
	min, max int

	mu struct {
		sync.Mutex
		free      []*segment
		held      int // segments taken from the global pool and not given back
		waiters   int
		wake      chan struct{}
		destroyed bool
	}
}

// Min returns the number of buffers guaranteed to the pool.
func (lp *LocalBufferPool) Min() int { return lp.min }

// Max returns the maximum number of buffers the pool holds at once.
func (lp *LocalBufferPool) Max() int { return lp.max }

// BufferSize returns the size of the pool's buffers in bytes.
func (lp *LocalBufferPool) BufferSize() int { return lp.global.bufferSize }

// LocalPoolMetrics is a snapshot of a LocalBufferPool.
type LocalPoolMetrics struct {
	// Min and Max are the pool's bounds.
	Min, Max int
	// Held is the number of buffers taken from the NetworkBufferPool (free here or in use).
	Held int
	// Free is the number of held buffers not in use.
	Free int
}

// Metrics returns a snapshot of the pool's counters.
func (lp *LocalBufferPool) Metrics() LocalPoolMetrics {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return LocalPoolMetrics{Min: lp.min, Max: lp.max, Held: lp.mu.held, Free: len(lp.mu.free)}
}

// requestSegment returns a segment with one reference, or nil when none is available now.
func (lp *LocalBufferPool) requestSegment() (*segment, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.requestSegmentLocked()
}

func (lp *LocalBufferPool) requestSegmentLocked() (*segment, error) {
	if lp.mu.destroyed {
		return nil, fmt.Errorf("%w: local buffer pool destroyed", ErrClosed)
	}
	var s *segment
	if n := len(lp.mu.free); n > 0 {
		s = lp.mu.free[n-1]
		lp.mu.free[n-1] = nil
		lp.mu.free = lp.mu.free[:n-1]
	} else if lp.mu.held < lp.max {
		if s = lp.global.take(lp.mu.held < lp.min); s == nil {
			return nil, nil
		}
		lp.mu.held++
	} else {
		return nil, nil
	}
	s.owner = lp
	s.refs.Store(1)
	return s, nil
}

// requestSegmentBlocking waits until a segment is available, the pool is destroyed, or ctx ends.
func (lp *LocalBufferPool) requestSegmentBlocking(ctx context.Context) (*segment, error) {
	for {
		lp.mu.Lock()
		s, err := lp.requestSegmentLocked()
		if s != nil || err != nil {
			lp.mu.Unlock()
			return s, err
		}
		if lp.mu.wake == nil {
			lp.mu.wake = make(chan struct{})
		}
		wake := lp.mu.wake
		var global <-chan struct{}
		if lp.mu.held < lp.max {
			global = lp.global.changedChan()
		}
		lp.mu.waiters++
		lp.mu.Unlock()

		var cerr error
		select {
		case <-wake:
		case <-global:
		case <-ctx.Done():
			cerr = ctx.Err()
		}
		lp.mu.Lock()
		lp.mu.waiters--
		lp.mu.Unlock()
		if cerr != nil {
			return nil, fmt.Errorf("network: waiting for a network buffer: %w", cerr)
		}
	}
}

// recycleSegment implements recycler.
func (lp *LocalBufferPool) recycleSegment(s *segment) {
	lp.mu.Lock()
	if lp.mu.destroyed {
		lp.mu.held--
		lp.mu.Unlock()
		lp.global.give([]*segment{s}, 0)
		return
	}
	if lp.mu.waiters == 0 && lp.mu.held > lp.min {
		lp.mu.held--
		lp.mu.Unlock()
		lp.global.give([]*segment{s}, 0)
		return
	}
	lp.mu.free = append(lp.mu.free, s)
	wake := lp.mu.wake
	lp.mu.wake = nil
	lp.mu.Unlock()
	if wake != nil {
		close(wake)
	}
}

// Destroy gives the pool's free buffers and its guarantee back to the NetworkBufferPool and wakes
// waiters with ErrClosed. Buffers still in use return to the NetworkBufferPool when recycled.
// Destroy is idempotent.
func (lp *LocalBufferPool) Destroy() {
	lp.mu.Lock()
	if lp.mu.destroyed {
		lp.mu.Unlock()
		return
	}
	lp.mu.destroyed = true
	free := lp.mu.free
	lp.mu.free = nil
	owed := max(0, lp.min-lp.mu.held)
	lp.mu.held -= len(free)
	wake := lp.mu.wake
	lp.mu.wake = nil
	lp.mu.Unlock()
	lp.global.release(lp.min, owed, free)
	if wake != nil {
		close(wake)
	}
}
