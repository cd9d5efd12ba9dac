package state

import (
	"github.com/vmihailenco/msgpack/v5"
)

// codec encodes and decodes one type with msgpack. Common types take the
// encoder's typed fast paths; the rest go through reflection. Values that
// hold interfaces may not round-trip to the same dynamic type; keep state
// types concrete.
type codec[T any] struct {
	enc func(*msgpack.Encoder, T) error
	dec func(*msgpack.Decoder) (T, error)
}

func newCodec[T any]() codec[T] {
	var zero T
	var c any
	switch any(zero).(type) {
	case string:
		c = codec[string]{
			enc: func(e *msgpack.Encoder, v string) error { return e.EncodeString(v) },
			dec: func(d *msgpack.Decoder) (string, error) { return d.DecodeString() },
		}
	case int:
		c = codec[int]{
			enc: func(e *msgpack.Encoder, v int) error { return e.EncodeInt(int64(v)) },
			dec: func(d *msgpack.Decoder) (int, error) { return d.DecodeInt() },
		}
	case int64:
		c = codec[int64]{
			enc: func(e *msgpack.Encoder, v int64) error { return e.EncodeInt(v) },
			dec: func(d *msgpack.Decoder) (int64, error) { return d.DecodeInt64() },
		}
	case int32:
		c = codec[int32]{
			enc: func(e *msgpack.Encoder, v int32) error { return e.EncodeInt(int64(v)) },
			dec: func(d *msgpack.Decoder) (int32, error) { return d.DecodeInt32() },
		}
	case uint64:
		c = codec[uint64]{
			enc: func(e *msgpack.Encoder, v uint64) error { return e.EncodeUint(v) },
			dec: func(d *msgpack.Decoder) (uint64, error) { return d.DecodeUint64() },
		}
	case float64:
		c = codec[float64]{
			enc: func(e *msgpack.Encoder, v float64) error { return e.EncodeFloat64(v) },
			dec: func(d *msgpack.Decoder) (float64, error) { return d.DecodeFloat64() },
		}
	case bool:
		c = codec[bool]{
			enc: func(e *msgpack.Encoder, v bool) error { return e.EncodeBool(v) },
			dec: func(d *msgpack.Decoder) (bool, error) { return d.DecodeBool() },
		}
	case []byte:
		c = codec[[]byte]{
			enc: func(e *msgpack.Encoder, v []byte) error { return e.EncodeBytes(v) },
			dec: func(d *msgpack.Decoder) ([]byte, error) { return d.DecodeBytes() },
		}
	}
	if tc, ok := c.(codec[T]); ok {
		return tc
	}
	return codec[T]{
		enc: func(e *msgpack.Encoder, v T) error { return e.Encode(v) },
		dec: func(d *msgpack.Decoder) (T, error) {
			var v T
			err := d.Decode(&v)
			return v, err
		},
	}
}
