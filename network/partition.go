package network

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ResultPartitionID identifies one result partition cluster-wide: the job, the execution attempt of
// the producing subtask, and the index of the partition among that subtask's outputs. It is
// comparable (usable as a map key) and msgpack-encodable.
type ResultPartitionID struct {
	JobID      string `msgpack:"job"`
	ProducerID string `msgpack:"producer"`
	Partition  int    `msgpack:"partition"`
}

// String returns "job/producer/partition".
func (id ResultPartitionID) String() string {
	return id.JobID + "/" + id.ProducerID + "/" + strconv.Itoa(id.Partition)
}

// ResultPartition is the output of one producing subtask towards one consumer operator: one
// pipelined subpartition per consuming subtask. The producer writes records through a
// RecordWriter (or events with AddEvent / BroadcastEvent), calls Finish when done, and Release on
// failure. Consumers read subpartitions through the ResultPartitionManager the partition is
// registered with, each subpartition by exactly one reader at a time.
//
// The writing methods are called by one goroutine (the producing subtask) plus the record writer's
// output flusher; Metrics, Release and the reading side may be called concurrently.
type ResultPartition struct {
	id            ResultPartitionID
	pool          *LocalBufferPool
	subs          []*subpartition
	backPressured atomic.Int64 // nanoseconds spent waiting for a buffer, finished waits
	waitingSince  atomic.Int64 // Unix nanoseconds a wait in progress began; 0 if none
	consumed      atomic.Int32 // subpartitions read to their end
	manager       atomic.Pointer[ResultPartitionManager]

	wmu struct {
		sync.Mutex
		builders []bufferBuilder
		finished bool
		released bool
		records  int64
		buffers  int64
		bytes    int64
	}
}

// bufferBuilder is the segment a subpartition's records are currently written into. The bytes
// [committed, pos) are written but not yet handed to the subpartition.
type bufferBuilder struct {
	seg       *segment
	pos       int
	committed int
}

// NewResultPartition returns a partition with numSubpartitions subpartitions whose buffers come
// from pool. The pool must guarantee at least numSubpartitions buffers (one partially filled
// buffer per subpartition plus progress), otherwise the writer could deadlock; use
// PartitionPoolSize for Flink's sizing. The partition owns the pool and destroys it on Release or
// after it was fully consumed.
func NewResultPartition(id ResultPartitionID, numSubpartitions int, pool *LocalBufferPool) (*ResultPartition, error) {
	if numSubpartitions <= 0 {
		return nil, fmt.Errorf("network: partition %s: number of subpartitions must be positive, got %d", id, numSubpartitions)
	}
	if pool.Min() < numSubpartitions {
		return nil, fmt.Errorf("network: partition %s: buffer pool guarantees %d buffers, need at least %d (one per subpartition)",
			id, pool.Min(), numSubpartitions)
	}
	p := &ResultPartition{id: id, pool: pool, subs: make([]*subpartition, numSubpartitions)}
	for i := range p.subs {
		p.subs[i] = &subpartition{parent: p, index: i}
	}
	p.wmu.builders = make([]bufferBuilder, numSubpartitions)
	return p, nil
}

// PartitionPoolSize returns Flink's local pool bounds for a partition with n subpartitions:
// min = n + 1 and max = n*buffersPerChannel + floating (Flink's defaults are 2 and 8).
func PartitionPoolSize(n, buffersPerChannel, floating int) (minBuffers, maxBuffers int) {
	return n + 1, max(n+1, n*buffersPerChannel+floating)
}

// ID returns the partition's id.
func (p *ResultPartition) ID() ResultPartitionID { return p.id }

// NumSubpartitions returns the number of subpartitions.
func (p *ResultPartition) NumSubpartitions() int { return len(p.subs) }

// WriterMetrics is a snapshot of the output side of a partition (and of its record writer).
type WriterMetrics struct {
	// Records is the number of records written (a broadcast record counts once per subpartition).
	Records int64
	// Buffers and Bytes count the data buffers handed to subpartitions and their bytes.
	Buffers int64
	Bytes   int64
	// BackPressuredNanos is the cumulative time the writer waited for an output buffer: the
	// backpressure measure. Use MillisPerSecond on two samples to get Flink's
	// backPressuredTimeMsPerSecond.
	BackPressuredNanos int64
	// PoolSize is the most buffers the partition's pool may hold and PoolUsed those in use
	// (being filled, or queued for and read by consumers); PoolUsed/PoolSize is Flink's
	// outPoolUsage.
	PoolUsed, PoolSize int
}

// Metrics returns a snapshot of the partition's output counters.
func (p *ResultPartition) Metrics() WriterMetrics {
	pm := p.pool.Metrics()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return WriterMetrics{
		Records:            p.wmu.records,
		Buffers:            p.wmu.buffers,
		Bytes:              p.wmu.bytes,
		BackPressuredNanos: p.backPressuredNanos(),
		PoolUsed:           max(pm.Held-pm.Free, 0),
		PoolSize:           pm.Max,
	}
}

// backPressuredNanos counts a wait in progress too, so that a producer
// stuck behind a paused consumer shows as back-pressured while it waits.
func (p *ResultPartition) backPressuredNanos() int64 {
	n := p.backPressured.Load()
	if since := p.waitingSince.Load(); since != 0 {
		n += max(time.Now().UnixNano()-since, 0)
	}
	return n
}

// emit writes one serialized record (length prefix included) to subpartition sub. With flush it
// hands the record's bytes to the subpartition at once. It blocks while no buffer is available.
func (p *ResultPartition) emit(ctx context.Context, sub int, rec []byte, flush bool) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.checkWritableLocked(sub); err != nil {
		return err
	}
	if err := p.writeLocked(ctx, sub, rec); err != nil {
		return err
	}
	p.wmu.records++
	if flush {
		p.flushLocked(sub)
	}
	return nil
}

// broadcast writes one serialized record to every subpartition.
func (p *ResultPartition) broadcast(ctx context.Context, rec []byte, flush bool) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.checkWritableLocked(0); err != nil {
		return err
	}
	for sub := range p.subs {
		if err := p.writeLocked(ctx, sub, rec); err != nil {
			return err
		}
		p.wmu.records++
		if flush {
			p.flushLocked(sub)
		}
	}
	return nil
}

func (p *ResultPartition) checkWritableLocked(sub int) error {
	switch {
	case p.wmu.released:
		return fmt.Errorf("%w: partition %s", ErrPartitionReleased, p.id)
	case p.wmu.finished:
		return fmt.Errorf("%w: partition %s is finished", ErrClosed, p.id)
	case sub < 0 || sub >= len(p.subs):
		return fmt.Errorf("network: partition %s: subpartition %d out of range [0, %d)", p.id, sub, len(p.subs))
	}
	return nil
}

// writeLocked copies rec into sub's buffers, taking new buffers as they fill. While it waits for a
// buffer it releases wmu so that the output flusher can flush other subpartitions.
func (p *ResultPartition) writeLocked(ctx context.Context, sub int, rec []byte) error {
	for len(rec) > 0 {
		bb := &p.wmu.builders[sub]
		if bb.seg == nil {
			seg, err := p.pool.requestSegment()
			if err == nil && seg == nil {
				p.wmu.Unlock()
				start := time.Now()
				p.waitingSince.Store(start.UnixNano())
				seg, err = p.pool.requestSegmentBlocking(ctx)
				p.backPressured.Add(int64(time.Since(start)))
				p.waitingSince.Store(0)
				p.wmu.Lock()
				if err == nil && p.wmu.released {
					seg.release()
					err = fmt.Errorf("%w: partition %s", ErrPartitionReleased, p.id)
				}
			}
			if err != nil {
				return fmt.Errorf("network: partition %s subpartition %d: %w", p.id, sub, err)
			}
			bb = &p.wmu.builders[sub]
			*bb = bufferBuilder{seg: seg}
		}
		n := copy(bb.seg.data[bb.pos:], rec)
		bb.pos += n
		rec = rec[n:]
		if bb.pos == len(bb.seg.data) {
			p.flushLocked(sub)
		}
	}
	return nil
}

// flushLocked hands the written, not yet committed bytes of sub's builder to the subpartition, and
// drops the builder when its segment is full.
func (p *ResultPartition) flushLocked(sub int) {
	bb := &p.wmu.builders[sub]
	if bb.seg == nil {
		return
	}
	if bb.pos > bb.committed {
		b := newBuffer(bb.seg, bb.committed, bb.pos)
		p.wmu.buffers++
		p.wmu.bytes += int64(bb.pos - bb.committed)
		bb.committed = bb.pos
		p.subs[sub].add(b)
	}
	if bb.pos == len(bb.seg.data) {
		bb.seg.release()
		*bb = bufferBuilder{}
	}
}

// flushAll hands every subpartition's unflushed bytes to it. Called by the output flusher.
func (p *ResultPartition) flushAll() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.wmu.released {
		return
	}
	for sub := range p.subs {
		p.flushLocked(sub)
	}
}

// AddEvent appends an event to subpartition sub after flushing the records written before it.
// It does not block.
func (p *ResultPartition) AddEvent(sub int, ev Event) error {
	if ev.Kind == 0 || ev.Kind == EventEndOfPartition {
		return fmt.Errorf("network: partition %s: event kind %d is not allowed here (use Finish for end of partition)", p.id, ev.Kind)
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.checkWritableLocked(sub); err != nil {
		return err
	}
	p.flushLocked(sub)
	p.subs[sub].add(newEventBuffer(ev.marshal()))
	return nil
}

// BroadcastEvent appends an event to every subpartition after flushing the records written before
// it. It does not block.
func (p *ResultPartition) BroadcastEvent(ev Event) error {
	if ev.Kind == 0 || ev.Kind == EventEndOfPartition {
		return fmt.Errorf("network: partition %s: event kind %d is not allowed here (use Finish for end of partition)", p.id, ev.Kind)
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.checkWritableLocked(0); err != nil {
		return err
	}
	data := ev.marshal()
	for sub := range p.subs {
		p.flushLocked(sub)
		p.subs[sub].add(newEventBuffer(data))
	}
	return nil
}

// Finish flushes all subpartitions and appends the end-of-partition event to each: the producer
// is done. Writing after Finish fails. Finish is idempotent. Stop the record writer (Close) first.
func (p *ResultPartition) Finish() error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.wmu.released {
		return fmt.Errorf("%w: partition %s", ErrPartitionReleased, p.id)
	}
	if p.wmu.finished {
		return nil
	}
	p.wmu.finished = true
	data := EndOfPartition().marshal()
	for sub := range p.subs {
		p.flushLocked(sub)
		p.releaseBuilderLocked(sub)
		p.subs[sub].add(newEventBuffer(data))
	}
	return nil
}

func (p *ResultPartition) releaseBuilderLocked(sub int) {
	bb := &p.wmu.builders[sub]
	if bb.seg != nil {
		bb.seg.release()
		*bb = bufferBuilder{}
	}
}

// Release discards the partition: queued buffers are recycled, readers fail with
// ErrPartitionReleased (carrying cause when non-nil), the partition is unregistered from its
// manager and its buffer pool destroyed. Release is idempotent; the producer calls it when it
// fails or is cancelled, and it happens by itself once every subpartition was read to its end.
func (p *ResultPartition) Release(cause error) {
	p.wmu.Lock()
	if p.wmu.released {
		p.wmu.Unlock()
		return
	}
	p.wmu.released = true
	for sub := range p.subs {
		p.releaseBuilderLocked(sub)
	}
	p.wmu.Unlock()
	for _, s := range p.subs {
		s.release(cause)
	}
	if m := p.manager.Load(); m != nil {
		m.remove(p)
	}
	p.pool.Destroy()
}

// onSubpartitionConsumed is called when a reader consumed a subpartition's end-of-partition event.
func (p *ResultPartition) onSubpartitionConsumed() {
	if int(p.consumed.Add(1)) == len(p.subs) {
		p.Release(nil)
	}
}

// subpartition is one pipelined queue of buffers and events for one consumer.
type subpartition struct {
	parent *ResultPartition
	index  int

	mu struct {
		sync.Mutex
		queue    bufferQueue
		backlog  int // data buffers in queue
		released bool
		cause    error
		view     *subpartitionView
		consumed bool
	}
}

// add appends a buffer and notifies the reader when the queue was empty.
func (s *subpartition) add(b *Buffer) {
	s.mu.Lock()
	if s.mu.released {
		s.mu.Unlock()
		b.Recycle()
		return
	}
	if tail := s.mu.queue.tail(); tail != nil && tail.tryAppend(b) {
		s.mu.Unlock()
		return
	}
	s.mu.queue.push(b)
	if !b.event {
		s.mu.backlog++
	}
	var notify func()
	if s.mu.queue.len() == 1 && s.mu.view != nil {
		notify = s.mu.view.listener
	}
	s.mu.Unlock()
	if notify != nil {
		notify()
	}
}

func (s *subpartition) release(cause error) {
	s.mu.Lock()
	if s.mu.released {
		s.mu.Unlock()
		return
	}
	s.mu.released = true
	s.mu.cause = cause
	bufs := s.mu.queue.drain()
	s.mu.backlog = 0
	var notify func()
	if s.mu.view != nil {
		notify = s.mu.view.listener
	}
	s.mu.Unlock()
	for _, b := range bufs {
		b.Recycle()
	}
	if notify != nil {
		notify()
	}
}

// createView registers the single reader of the subpartition.
func (s *subpartition) createView(listener func()) (*subpartitionView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.mu.released:
		return nil, s.releasedErrLocked()
	case s.mu.consumed:
		return nil, fmt.Errorf("%w: partition %s subpartition %d was already consumed", ErrPartitionReleased, s.parent.id, s.index)
	case s.mu.view != nil:
		return nil, fmt.Errorf("%w: partition %s subpartition %d", ErrSubpartitionInUse, s.parent.id, s.index)
	}
	v := &subpartitionView{sub: s, listener: listener}
	s.mu.view = v
	return v, nil
}

func (s *subpartition) releasedErrLocked() error {
	if s.mu.cause != nil {
		return fmt.Errorf("%w: partition %s subpartition %d: %w", ErrPartitionReleased, s.parent.id, s.index, s.mu.cause)
	}
	return fmt.Errorf("%w: partition %s subpartition %d", ErrPartitionReleased, s.parent.id, s.index)
}

// subpartitionView is the reading end of a subpartition. listener is called (without locks held,
// from the writing goroutine) whenever the queue becomes non-empty or the subpartition is
// released; it must not block.
type subpartitionView struct {
	sub      *subpartition
	listener func()
	released atomic.Bool
}

// pollResult describes what poll returned and what follows.
type pollResult struct {
	buf *Buffer
	// backlog is the number of data buffers still queued after buf.
	backlog int
	// more reports that the view can be polled again now (with credit-1 if buf was data).
	more bool
}

// poll takes the next buffer. credit < 0 means unlimited; with credit == 0 only an event can be
// taken. It returns an error when the subpartition was released.
func (v *subpartitionView) poll(credit int) (pollResult, error) {
	s := v.sub
	s.mu.Lock()
	if s.mu.released {
		err := s.releasedErrLocked()
		s.mu.Unlock()
		return pollResult{}, err
	}
	head := s.mu.queue.peek()
	if head == nil || (credit == 0 && !head.event) {
		s.mu.Unlock()
		return pollResult{}, nil
	}
	s.mu.queue.pop()
	if !head.event {
		s.mu.backlog--
		if credit > 0 {
			credit--
		}
	}
	res := pollResult{buf: head, backlog: s.mu.backlog}
	if next := s.mu.queue.peek(); next != nil {
		res.more = credit != 0 || next.event
	}
	eop := head.event && len(head.data) > 0 && EventKind(head.data[0]) == EventEndOfPartition
	if eop {
		s.mu.consumed = true
	}
	s.mu.Unlock()
	if eop {
		s.parent.onSubpartitionConsumed()
	}
	return res, nil
}

// available reports whether poll(credit) would return a buffer.
func (v *subpartitionView) available(credit int) bool {
	s := v.sub
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.released {
		return true // poll reports the error
	}
	head := s.mu.queue.peek()
	return head != nil && (credit != 0 || head.event)
}

// release detaches the reader. A subpartition that was not consumed to its end can then be
// requested again.
func (v *subpartitionView) release() {
	if v.released.Swap(true) {
		return
	}
	s := v.sub
	s.mu.Lock()
	if s.mu.view == v {
		s.mu.view = nil
	}
	s.mu.Unlock()
}

// bufferQueue is a FIFO of buffers.
type bufferQueue struct {
	items []*Buffer
	head  int
}

func (q *bufferQueue) len() int { return len(q.items) - q.head }

func (q *bufferQueue) push(b *Buffer) {
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Compact instead of growing: the consumed prefix is dead space.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, b)
}

func (q *bufferQueue) peek() *Buffer {
	if q.head == len(q.items) {
		return nil
	}
	return q.items[q.head]
}

func (q *bufferQueue) tail() *Buffer {
	if q.head == len(q.items) {
		return nil
	}
	return q.items[len(q.items)-1]
}

func (q *bufferQueue) pop() *Buffer {
	if q.head == len(q.items) {
		return nil
	}
	b := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items = q.items[:0]
		q.head = 0
	}
	return b
}

func (q *bufferQueue) drain() []*Buffer {
	out := append([]*Buffer(nil), q.items[q.head:]...)
	clear(q.items)
	q.items = q.items[:0]
	q.head = 0
	return out
}
