// Package rpc carries typed requests and responses between flinkgo's roles:
// msgpack over TCP, many concurrent calls multiplexed on one connection,
// deadlines taken from the caller's context, and a fencing token on every
// call so that receivers can refuse a deposed leader.
package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxFrameSize bounds one message; a peer announcing more is broken or
// hostile, and its connection is closed.
const MaxFrameSize = 16 << 20

// magic starts every frame, so a peer speaking another protocol fails fast.
const magic uint16 = 0xF1C0

// headerSize is magic (2) + body length (4).
const headerSize = 6

// Errors of the wire protocol.
var (
	// ErrMalformedFrame: the bytes on a connection are not a valid frame.
	ErrMalformedFrame = errors.New("rpc: malformed frame")
	// ErrFrameTooLarge: a frame announced more than MaxFrameSize bytes.
	ErrFrameTooLarge = errors.New("rpc: frame too large")
)

// Token is a leader's fencing token: the term of its leadership and its id.
// Receivers reject calls carrying a token older than the newest they saw.
type Token struct {
	Term   uint64 `msgpack:"t"`
	Leader string `msgpack:"l"`
}

// IsZero reports whether no token is set.
func (t Token) IsZero() bool { return t.Term == 0 && t.Leader == "" }

// kind of envelope.
const (
	kindRequest  uint8 = 1
	kindResponse uint8 = 2
)

// envelope is one frame's content.
type envelope struct {
	Kind   uint8  `msgpack:"k"`
	ID     uint64 `msgpack:"i"`
	Method string `msgpack:"m,omitempty"`
	// Deadline is the caller's deadline in Unix nanoseconds; 0 for none.
	Deadline int64  `msgpack:"d,omitempty"`
	Token    Token  `msgpack:"f,omitempty"`
	Error    string `msgpack:"e,omitempty"`
	// Code names a well-known error, so callers can match it with errors.Is.
	Code string             `msgpack:"c,omitempty"`
	Body msgpack.RawMessage `msgpack:"b,omitempty"`
}

// appendFrame encodes env as a frame appended to dst.
func appendFrame(dst []byte, env *envelope) ([]byte, error) {
	body, err := msgpack.Marshal(env)
	if err != nil {
		return dst, fmt.Errorf("rpc: encoding frame: %w", err)
	}
	if len(body) > MaxFrameSize {
		return dst, fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooLarge, len(body), MaxFrameSize)
	}
	dst = binary.BigEndian.AppendUint16(dst, magic)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...), nil
}

// readFrame reads one frame from r. buf is reused for the body when large
// enough; the returned envelope does not alias it.
func readFrame(r io.Reader, buf []byte) (*envelope, []byte, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, buf, err
	}
	if m := binary.BigEndian.Uint16(hdr[:2]); m != magic {
		return nil, buf, fmt.Errorf("%w: magic %#04x, want %#04x", ErrMalformedFrame, m, magic)
	}
	n := binary.BigEndian.Uint32(hdr[2:])
	if n > MaxFrameSize {
		return nil, buf, fmt.Errorf("%w: %d bytes announced, at most %d", ErrFrameTooLarge, n, MaxFrameSize)
	}
	// The body is read into a buffer that grows as bytes arrive, never to
	// what the header claims up front: a peer that announces 16 MiB and
	// stalls costs what it sent, not 16 MiB.
	buf = buf[:0]
	for len(buf) < int(n) {
		chunk := min(int(n)-len(buf), max(readChunk, len(buf)))
		buf = slices.Grow(buf, chunk)
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, buf, fmt.Errorf("%w: truncated body: %w", ErrMalformedFrame, err)
		}
	}
	env, err := decodeEnvelope(buf)
	return env, buf, err
}

// readChunk is the least a frame's body buffer grows by.
const readChunk = 64 << 10

// decodeEnvelope parses a frame body.
func decodeEnvelope(body []byte) (*envelope, error) {
	var env envelope
	if err := msgpack.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedFrame, err)
	}
	if env.Kind != kindRequest && env.Kind != kindResponse {
		return nil, fmt.Errorf("%w: kind %d", ErrMalformedFrame, env.Kind)
	}
	if env.Kind == kindRequest && env.Method == "" {
		return nil, fmt.Errorf("%w: request %d without a method", ErrMalformedFrame, env.ID)
	}
	// Body aliases the read buffer, which the reader reuses.
	env.Body = append(msgpack.RawMessage(nil), env.Body...)
	return &env, nil
}
