package network

import (
	"encoding/binary"
	"fmt"
)

// Records are written to a subpartition's buffers as a stream of length-prefixed frames: a 4-byte
// big-endian length followed by that many bytes of codec output. A record may start in one buffer
// and end in a later one, and may be larger than a buffer. Events are never interleaved with the
// bytes of a record: the writer flushes before it adds an event.

// lengthPrefixSize is the size of the record length prefix.
const lengthPrefixSize = 4

// DefaultMaxRecordSize is the default upper bound of a serialized record (without its prefix).
// A larger length prefix is treated as corruption rather than as a reason to allocate.
const DefaultMaxRecordSize = 64 << 20

// recordDeserializer reassembles the records of one input channel from its buffers. It is used by
// one goroutine.
type recordDeserializer struct {
	maxRecord int
	buf       *Buffer // current buffer, nil when none
	data      []byte  // unread bytes of buf
	lenBuf    [lengthPrefixSize]byte
	lenHave   int    // bytes of a split length prefix collected in lenBuf
	recLen    int    // length of the record being collected, -1 when reading a prefix next
	span      []byte // bytes of a record split across buffers
	spanUsed  bool   // span was returned by the last next and must be reset
}

func newRecordDeserializer(maxRecord int) recordDeserializer {
	return recordDeserializer{maxRecord: maxRecord, recLen: -1}
}

// setBuffer gives the deserializer the next buffer of its channel. The deserializer recycles it
// once all of its bytes have been consumed (at the first next call after that).
func (d *recordDeserializer) setBuffer(b *Buffer) {
	d.buf = b
	d.data = b.Bytes()
}

// hasPartial reports whether the deserializer holds an incomplete record.
func (d *recordDeserializer) hasPartial() bool {
	return d.lenHave > 0 || d.recLen >= 0 || len(d.data) > 0
}

// next returns the next complete record. ok is false when the current buffer is used up (it has
// then been recycled) and more buffers are needed. rec is valid until the next call of next or
// release.
func (d *recordDeserializer) next() (rec []byte, ok bool, err error) {
	if d.spanUsed {
		d.span = d.span[:0]
		d.spanUsed = false
	}
	if d.recLen < 0 {
		if d.lenHave == 0 && len(d.data) >= lengthPrefixSize {
			d.recLen = int(binary.BigEndian.Uint32(d.data))
			d.data = d.data[lengthPrefixSize:]
		} else {
			n := copy(d.lenBuf[d.lenHave:], d.data)
			d.lenHave += n
			d.data = d.data[n:]
			if d.lenHave < lengthPrefixSize {
				d.recycle()
				return nil, false, nil
			}
			d.recLen = int(binary.BigEndian.Uint32(d.lenBuf[:]))
			d.lenHave = 0
		}
		if d.recLen > d.maxRecord {
			n := d.recLen
			d.recLen = -1
			return nil, false, fmt.Errorf("%w: record length %d exceeds the maximum of %d bytes", ErrCorruptRecord, n, d.maxRecord)
		}
	}
	if len(d.span) == 0 && len(d.data) >= d.recLen {
		rec = d.data[:d.recLen]
		d.data = d.data[d.recLen:]
		d.recLen = -1
		return rec, true, nil
	}
	need := d.recLen - len(d.span)
	n := min(need, len(d.data))
	d.span = append(d.span, d.data[:n]...)
	d.data = d.data[n:]
	if n < need {
		d.recycle()
		return nil, false, nil
	}
	d.recLen = -1
	d.spanUsed = true
	return d.span, true, nil
}

// recycle releases the current buffer once all of it was consumed.
func (d *recordDeserializer) recycle() {
	if d.buf != nil {
		d.buf.Recycle()
		d.buf = nil
	}
	d.data = nil
}

// release drops all state and recycles the current buffer.
func (d *recordDeserializer) release() {
	d.recycle()
	d.lenHave = 0
	d.recLen = -1
	d.span = d.span[:0]
	d.spanUsed = false
}
