package network

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Codec serializes records of type T for the wire.
//
// A Codec value may keep state that it reuses between calls (encoders, scratch space), so one value
// is used by one goroutine at a time: every RecordWriter and RecordReader owns its own. Codecs are
// therefore handed out by factories (see Codecs).
type Codec[T any] interface {
	// Encode appends the encoding of *v to dst and returns the extended slice. It must not keep
	// dst or v after it returns. It must not block.
	Encode(dst []byte, v *T) ([]byte, error)
	// Decode decodes one record from src, which holds exactly the bytes one Encode appended, into
	// *v. It must not keep src after it returns (src is network memory that is reused), so
	// anything that refers to it must be copied.
	Decode(src []byte, v *T) error
}

// Codecs is a registry of codec factories by record type. The zero value is not usable; create one
// with NewCodecs. A Codecs value is safe for concurrent use. There is no global registry: the
// runtime keeps one per environment so that every process of a cluster registers the same codecs.
type Codecs struct {
	mu struct {
		sync.RWMutex
		byType map[reflect.Type]any // values are func() Codec[T]
	}
}

// NewCodecs returns a registry with the built-in fast codecs for int64 (Int64Codec), string
// (StringCodec) and []byte (BytesCodec). Other types use msgpack unless registered.
func NewCodecs() *Codecs {
	c := &Codecs{}
	c.mu.byType = make(map[reflect.Type]any)
	Register(c, func() Codec[int64] { return Int64Codec{} })
	Register(c, func() Codec[string] { return StringCodec{} })
	Register(c, func() Codec[[]byte] { return BytesCodec{} })
	return c
}

// Register makes factory the source of codecs for T in c, replacing any earlier registration.
// Register every codec before any writer or reader of T is created.
func Register[T any](c *Codecs, factory func() Codec[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.byType[reflect.TypeFor[T]()] = factory
}

// CodecFor returns a new codec for T: the registered one if any, otherwise a MsgpackCodec. A nil
// registry always yields a MsgpackCodec.
func CodecFor[T any](c *Codecs) Codec[T] {
	if c != nil {
		c.mu.RLock()
		f, ok := c.mu.byType[reflect.TypeFor[T]()]
		c.mu.RUnlock()
		if ok {
			return f.(func() Codec[T])()
		}
	}
	return NewMsgpackCodec[T]()
}

// MsgpackCodec encodes records with msgpack (github.com/vmihailenco/msgpack/v5). Types
// implementing msgpack.CustomEncoder/CustomDecoder or msgpack.Marshaler/Unmarshaler use their own
// methods. The encoder, decoder and their buffers are reused across records, so fixed-size records
// encode without allocating.
type MsgpackCodec[T any] struct {
	enc *msgpack.Encoder
	dec *msgpack.Decoder
	w   appendWriter
	r   bytes.Reader
}

// NewMsgpackCodec returns a msgpack codec for T.
func NewMsgpackCodec[T any]() *MsgpackCodec[T] {
	c := &MsgpackCodec[T]{}
	c.enc = msgpack.NewEncoder(&c.w)
	c.dec = msgpack.NewDecoder(&c.r)
	return c
}

// Encode implements Codec.
func (c *MsgpackCodec[T]) Encode(dst []byte, v *T) ([]byte, error) {
	c.w.b = dst
	err := c.enc.Encode(v)
	out := c.w.b
	c.w.b = nil
	if err != nil {
		return dst, fmt.Errorf("network: msgpack encode %T: %w", *v, err)
	}
	return out, nil
}

// Decode implements Codec.
func (c *MsgpackCodec[T]) Decode(src []byte, v *T) error {
	c.r.Reset(src)
	err := c.dec.Decode(v)
	rest := c.r.Len()
	c.r.Reset(nil)
	if err != nil {
		return fmt.Errorf("%w: msgpack decode %T: %v", ErrCorruptRecord, *v, err)
	}
	if rest != 0 {
		return fmt.Errorf("%w: msgpack decode %T: %d trailing bytes", ErrCorruptRecord, *v, rest)
	}
	return nil
}

// appendWriter is the msgpack encoder's output: it appends to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *appendWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// Int64Codec encodes an int64 as 8 big-endian bytes.
type Int64Codec struct{}

// Encode implements Codec.
func (Int64Codec) Encode(dst []byte, v *int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(*v)), nil
}

// Decode implements Codec.
func (Int64Codec) Decode(src []byte, v *int64) error {
	if len(src) != 8 {
		return fmt.Errorf("%w: int64 record of %d bytes, want 8", ErrCorruptRecord, len(src))
	}
	*v = int64(binary.BigEndian.Uint64(src))
	return nil
}

// StringCodec encodes a string as its raw bytes (the record's length prefix delimits it).
type StringCodec struct{}

// Encode implements Codec.
func (StringCodec) Encode(dst []byte, v *string) ([]byte, error) { return append(dst, *v...), nil }

// Decode implements Codec. It allocates the string.
func (StringCodec) Decode(src []byte, v *string) error {
	*v = string(src)
	return nil
}

// BytesCodec encodes a byte slice as its raw bytes. Decode reuses the capacity of the destination
// slice, so a reader that decodes into the same variable does not allocate.
type BytesCodec struct{}

// Encode implements Codec.
func (BytesCodec) Encode(dst []byte, v *[]byte) ([]byte, error) { return append(dst, *v...), nil }

// Decode implements Codec.
func (BytesCodec) Decode(src []byte, v *[]byte) error {
	*v = append((*v)[:0], src...)
	return nil
}
