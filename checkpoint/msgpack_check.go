package checkpoint

import (
	"encoding/binary"
	"fmt"
)

// maxMsgpackDepth bounds the nesting of containers in a metadata body; real
// metadata nests about six deep.
const maxMsgpackDepth = 64

// checkMsgpack walks one msgpack value spanning all of b without decoding
// it, and fails if the value is malformed, truncated, followed by extra
// bytes, nested deeper than maxMsgpackDepth, or declares a container or
// string longer than the bytes that remain. The msgpack decoder trusts the
// lengths it reads and allocates for them up front, so without this check a
// few corrupt bytes could make it allocate gigabytes. After the check, every
// allocation is bounded by a small multiple of len(b).
func checkMsgpack(b []byte) error {
	w := msgpackWalker{b: b}
	if err := w.value(0); err != nil {
		return err
	}
	if w.off != len(b) {
		return fmt.Errorf("%d bytes after the msgpack value", len(b)-w.off)
	}
	return nil
}

type msgpackWalker struct {
	b   []byte
	off int
}

func (w *msgpackWalker) remaining() int { return len(w.b) - w.off }

// uint reads an n-byte big-endian length.
func (w *msgpackWalker) uint(n int) (int, error) {
	if w.remaining() < n {
		return 0, fmt.Errorf("truncated at byte %d: %d-byte length, %d bytes left", w.off, n, w.remaining())
	}
	var v uint64
	switch n {
	case 1:
		v = uint64(w.b[w.off])
	case 2:
		v = uint64(binary.BigEndian.Uint16(w.b[w.off:]))
	case 4:
		v = uint64(binary.BigEndian.Uint32(w.b[w.off:]))
	}
	w.off += n
	return int(v), nil
}

// skip advances over n bytes of payload.
func (w *msgpackWalker) skip(n int) error {
	if n > w.remaining() {
		return fmt.Errorf("truncated at byte %d: %d-byte payload, %d bytes left", w.off, n, w.remaining())
	}
	w.off += n
	return nil
}

func (w *msgpackWalker) value(depth int) error {
	if depth > maxMsgpackDepth {
		return fmt.Errorf("nested deeper than %d at byte %d", maxMsgpackDepth, w.off)
	}
	if w.remaining() < 1 {
		return fmt.Errorf("truncated at byte %d: expected a value", w.off)
	}
	c := w.b[w.off]
	w.off++
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil // fixint, nil, bool
	case c >= 0xa0 && c <= 0xbf:
		return w.skip(int(c & 0x1f)) // fixstr
	case c >= 0x90 && c <= 0x9f:
		return w.array(int(c&0x0f), depth)
	case c >= 0x80 && c <= 0x8f:
		return w.mapping(int(c&0x0f), depth)
	}
	switch c {
	case 0xcc, 0xd0:
		return w.skip(1)
	case 0xcd, 0xd1:
		return w.skip(2)
	case 0xca, 0xce, 0xd2:
		return w.skip(4)
	case 0xcb, 0xcf, 0xd3:
		return w.skip(8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 plus a type byte
		return w.skip(1 + 1<<(c-0xd4))
	case 0xc4, 0xd9, 0xc5, 0xda, 0xc6, 0xdb: // bin and str 8, 16, 32
		n, err := w.uint(map[byte]int{0xc4: 1, 0xd9: 1, 0xc5: 2, 0xda: 2, 0xc6: 4, 0xdb: 4}[c])
		if err != nil {
			return err
		}
		return w.skip(n)
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32
		n, err := w.uint(map[byte]int{0xc7: 1, 0xc8: 2, 0xc9: 4}[c])
		if err != nil {
			return err
		}
		return w.skip(n + 1)
	case 0xdc, 0xdd:
		n, err := w.uint(map[byte]int{0xdc: 2, 0xdd: 4}[c])
		if err != nil {
			return err
		}
		return w.array(n, depth)
	case 0xde, 0xdf:
		n, err := w.uint(map[byte]int{0xde: 2, 0xdf: 4}[c])
		if err != nil {
			return err
		}
		return w.mapping(n, depth)
	}
	return fmt.Errorf("invalid msgpack code %#02x at byte %d", c, w.off-1)
}

func (w *msgpackWalker) array(n, depth int) error {
	if n > w.remaining() { // every element takes at least one byte
		return fmt.Errorf("array of %d elements at byte %d, only %d bytes left", n, w.off, w.remaining())
	}
	for range n {
		if err := w.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

func (w *msgpackWalker) mapping(n, depth int) error {
	if n > w.remaining()/2 { // every entry takes at least two bytes
		return fmt.Errorf("map of %d entries at byte %d, only %d bytes left", n, w.off, w.remaining())
	}
	for range 2 * n {
		if err := w.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
