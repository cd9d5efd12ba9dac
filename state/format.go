package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Stream format, shared by keyed and operator snapshots:
//
//	prefix   8 bytes: magic "FGST", version uint16 big-endian, stream kind, 0
//	frame*   length uint64 big-endian, CRC-32C of the payload uint32
//	         big-endian, payload (msgpack)
//
// The first frame is the header (msgpack-encoded keyedHeader or
// operatorHeader). A keyed stream then has one frame per key group of the
// writer's range, in order; its payload is: key group (int), number of states
// (int), and per state its index in the header (int) and its entries as a
// msgpack bin. An operator stream has one frame per list element, its payload
// the msgpack-encoded element. Handles hold the offsets of these frames, so a
// restore reads only what it owns, and checks each frame's CRC.
const (
	formatVersion   = 1
	frameHeaderSize = 12
	prefixSize      = 8

	streamKeyed    byte = 1
	streamOperator byte = 2
)

var (
	magic      = [4]byte{'F', 'G', 'S', 'T'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

func streamPrefix(kind byte) []byte {
	p := make([]byte, prefixSize)
	copy(p, magic[:])
	binary.BigEndian.PutUint16(p[4:], formatVersion)
	p[6] = kind
	return p
}

// countingWriter tracks the offset of everything written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) writeFrame(payload []byte) error {
	var h [frameHeaderSize]byte
	binary.BigEndian.PutUint64(h[:8], uint64(len(payload)))
	binary.BigEndian.PutUint32(h[8:], crc32.Checksum(payload, castagnoli))
	if _, err := c.Write(h[:]); err != nil {
		return err
	}
	_, err := c.Write(payload)
	return err
}

// streamReader reads frames from a snapshot stream of known size.
type streamReader struct {
	r    io.ReaderAt
	size int64
}

// checkPrefix reads the stream prefix and checks magic, version and kind.
func (s streamReader) checkPrefix(kind byte) error {
	if s.size < prefixSize {
		return corruptf("stream of %d bytes is shorter than its %d-byte prefix (truncated)", s.size, prefixSize)
	}
	var p [prefixSize]byte
	if err := s.readFull(p[:], 0); err != nil {
		return err
	}
	if !bytes.Equal(p[:4], magic[:]) {
		return corruptf("bad magic %q, want %q: not a flinkgo state snapshot", p[:4], magic[:])
	}
	if v := binary.BigEndian.Uint16(p[4:6]); v != formatVersion {
		return fmt.Errorf("%w: stream has version %d, this code reads version %d", ErrSnapshotVersion, v, formatVersion)
	}
	if p[6] != kind || p[7] != 0 {
		return corruptf("stream kind %d/%d, want %d/0 (keyed=%d, operator=%d)", p[6], p[7], kind, streamKeyed, streamOperator)
	}
	return nil
}

func (s streamReader) readFull(p []byte, off int64) error {
	n, err := s.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corruptf("short read of %d bytes at offset %d: got %d (truncated)", len(p), off, n)
	}
	return fmt.Errorf("state: reading snapshot at offset %d: %w", off, err)
}

// frame reads and verifies the frame at off and returns its payload.
func (s streamReader) frame(off int64) ([]byte, error) {
	if off < prefixSize || off > s.size-frameHeaderSize {
		return nil, corruptf("frame offset %d outside stream of %d bytes", off, s.size)
	}
	var h [frameHeaderSize]byte
	if err := s.readFull(h[:], off); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint64(h[:8])
	if n > uint64(s.size-off-frameHeaderSize) {
		return nil, corruptf("frame at %d declares %d bytes, only %d left (truncated)", off, n, s.size-off-frameHeaderSize)
	}
	payload := make([]byte, n)
	if err := s.readFull(payload, off+frameHeaderSize); err != nil {
		return nil, err
	}
	if got, want := crc32.Checksum(payload, castagnoli), binary.BigEndian.Uint32(h[8:]); got != want {
		return nil, corruptf("frame at %d: checksum %08x, want %08x", off, got, want)
	}
	return payload, nil
}

// beginBin32 starts a msgpack bin32 whose length is patched by endBin32, so a
// blob can be encoded in place without knowing its size first. The encoder
// writes straight into buf (bytes.Buffer is a msgpack writer), so direct
// writes interleave correctly.
func beginBin32(buf *bytes.Buffer) int {
	buf.Write([]byte{0xc6, 0, 0, 0, 0})
	return buf.Len()
}

func endBin32(buf *bytes.Buffer, start int) error {
	n := buf.Len() - start
	if n > math.MaxUint32 {
		return fmt.Errorf("state: %d bytes of one state in one key group exceed the 4 GiB format limit", n)
	}
	binary.BigEndian.PutUint32(buf.Bytes()[start-4:start], uint32(n))
	return nil
}

// decodeLen reads an int used as a count and bounds it by the bytes left,
// since every counted item takes at least one byte.
func decodeLen(d *msgpack.Decoder, left int) (int, error) {
	n, err := d.DecodeInt()
	if err != nil {
		return 0, corruptf("reading count: %v", err)
	}
	if n < 0 || n > left {
		return 0, corruptf("count %d with %d bytes left", n, left)
	}
	return n, nil
}

// blobReader decodes a state's entries in one key group.
type blobReader struct {
	r *bytes.Reader
	d *msgpack.Decoder
}

func newBlobReader(b []byte) *blobReader {
	r := bytes.NewReader(b)
	return &blobReader{r: r, d: msgpack.NewDecoder(r)}
}

func (b *blobReader) count() (int, error) { return decodeLen(b.d, b.r.Len()) }

func (b *blobReader) int64() (int64, error) {
	v, err := b.d.DecodeInt64()
	if err != nil {
		return 0, corruptf("reading timestamp: %v", err)
	}
	return v, nil
}

func (b *blobReader) done() error {
	if b.r.Len() != 0 {
		return corruptf("%d trailing bytes after state entries", b.r.Len())
	}
	return nil
}

func decodeWith[T any](b *blobReader, c codec[T], what string) (T, error) {
	v, err := c.dec(b.d)
	if err != nil {
		return v, corruptf("decoding %s: %v", what, err)
	}
	return v, nil
}

// encBuf is an encoder writing into its own buffer.
type encBuf struct {
	buf *bytes.Buffer
	enc *msgpack.Encoder
}

func newEncBuf() *encBuf {
	buf := new(bytes.Buffer)
	return &encBuf{buf: buf, enc: msgpack.NewEncoder(buf)}
}
