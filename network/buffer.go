package network

import (
	"fmt"
	"sync/atomic"
)

// DefaultBufferSize is the size of a network buffer (Flink's default memory segment size, 32 KiB).
const DefaultBufferSize = 32 << 10

// recycler takes back a segment whose last reference was dropped. Implementations must not block
// and may be called from any goroutine.
type recycler interface {
	recycleSegment(s *segment)
}

// segment is one fixed-size block of network memory. It is reference counted: the record writer
// holds a reference while it fills the segment, and every Buffer sliced off it holds one. When the
// count drops to zero the segment goes back to its owner (a LocalBufferPool, a remote input channel
// or an input gate).
type segment struct {
	data  []byte
	refs  atomic.Int32
	owner recycler
}

// release drops one reference and returns the segment to its owner when it was the last one.
func (s *segment) release() {
	switch n := s.refs.Add(-1); {
	case n == 0:
		s.owner.recycleSegment(s)
	case n < 0:
		panic("network: segment released more often than retained") // internal invariant
	}
}

// Buffer is a read-only view of serialized data or of one serialized event. Buffers travel from a
// result partition to an input gate; between subtasks of the same process the very same Buffer is
// handed over (no copy).
//
// Whoever receives a Buffer owns it and must call Recycle exactly once when done with its bytes;
// Recycle returns the memory to the pool it came from. A Buffer is not safe for concurrent use.
type Buffer struct {
	seg   *segment // nil for unpooled (event) buffers and after Recycle
	off   int      // offset of data in seg.data
	data  []byte
	event bool
}

// newBuffer returns a Buffer viewing seg.data[from:to] and takes a reference on seg.
func newBuffer(seg *segment, from, to int) *Buffer {
	seg.refs.Add(1)
	return &Buffer{seg: seg, off: from, data: seg.data[from:to:to]}
}

// tryAppend extends b by next when next views the bytes of the same segment that directly follow
// b's, dropping next's reference. It is how flushes that the reader has not picked up yet
// coalesce into one buffer (as Flink's readers take all bytes written so far).
func (b *Buffer) tryAppend(next *Buffer) bool {
	if b.event || next.event || b.seg == nil || b.seg != next.seg || b.off+len(b.data) != next.off {
		return false
	}
	end := next.off + len(next.data)
	b.data = b.seg.data[b.off:end:end]
	next.seg.refs.Add(-1) // b still holds a reference, so this is never the last one
	next.seg = nil
	next.data = nil
	return true
}

// newEventBuffer returns an unpooled buffer holding a serialized event.
func newEventBuffer(data []byte) *Buffer {
	return &Buffer{data: data, event: true}
}

// Bytes returns the buffer's contents. The slice is valid until Recycle and must not be modified.
func (b *Buffer) Bytes() []byte { return b.data }

// Len returns the number of bytes in the buffer.
func (b *Buffer) Len() int { return len(b.data) }

// IsEvent reports whether the buffer holds a serialized event rather than records.
func (b *Buffer) IsEvent() bool { return b.event }

// Recycle releases the buffer's memory back to its pool. Calling it again is a no-op.
func (b *Buffer) Recycle() {
	if b.seg != nil {
		s := b.seg
		b.seg = nil
		b.data = nil
		s.release()
	}
}

// EventKind identifies an in-band event. Kinds 1 to 31 are reserved for this package and the
// runtime (end of partition, watermarks, checkpoint barriers, ...); kinds from 32 are free for
// other uses.
type EventKind uint8

// Event kinds defined by this package.
const (
	// EventEndOfPartition is the last element of every subpartition: the producer finished.
	EventEndOfPartition EventKind = 1
	// EventWatermark is reserved for event-time watermarks (payload defined by the runtime).
	EventWatermark EventKind = 2
	// EventCheckpointBarrier is reserved for checkpoint barriers (payload defined by the runtime).
	EventCheckpointBarrier EventKind = 3
	// EventCancelCheckpoint is reserved for checkpoint cancellation markers.
	EventCancelCheckpoint EventKind = 4
	// EventWatermarkStatus is reserved for watermark status changes (idle, active).
	EventWatermarkStatus EventKind = 5
	// EventUserBase is the first kind free for uses outside the runtime.
	EventUserBase EventKind = 32
)

// String returns a readable name for the kind.
func (k EventKind) String() string {
	switch k {
	case EventEndOfPartition:
		return "EndOfPartition"
	case EventWatermark:
		return "Watermark"
	case EventCheckpointBarrier:
		return "CheckpointBarrier"
	case EventWatermarkStatus:
		return "WatermarkStatus"
	case EventCancelCheckpoint:
		return "CancelCheckpoint"
	}
	return fmt.Sprintf("Event(%d)", uint8(k))
}

// Event is an in-band event: a kind and an opaque payload. Events travel on the same channels as
// records and keep their order relative to them.
type Event struct {
	Kind    EventKind
	Payload []byte
}

// EndOfPartition returns the end-of-partition event.
func EndOfPartition() Event { return Event{Kind: EventEndOfPartition} }

// marshal returns the event's wire form: the kind byte followed by the payload.
func (e Event) marshal() []byte {
	b := make([]byte, 1+len(e.Payload))
	b[0] = byte(e.Kind)
	copy(b[1:], e.Payload)
	return b
}

// unmarshalEvent parses an event's wire form. The payload aliases data.
func unmarshalEvent(data []byte) (Event, error) {
	if len(data) == 0 || data[0] == 0 {
		return Event{}, fmt.Errorf("%w: empty event or event kind 0 (%d bytes)", ErrCorruptRecord, len(data))
	}
	ev := Event{Kind: EventKind(data[0])}
	if len(data) > 1 {
		ev.Payload = data[1:]
	}
	return ev, nil
}
