package network

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

type point struct {
	X, Y int64
	Tag  string
}

// celsius implements msgpack.CustomEncoder/CustomDecoder: it travels as tenths of a degree.
type celsius struct{ deg float64 }

func (c *celsius) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeInt(int64(c.deg * 10)) }

func (c *celsius) DecodeMsgpack(dec *msgpack.Decoder) error {
	v, err := dec.DecodeInt64()
	c.deg = float64(v) / 10
	return err
}

func roundTrip[T any](t *testing.T, c Codec[T], v T) T {
	t.Helper()
	b, err := c.Encode(nil, &v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := c.Decode(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCodecs(t *testing.T) {
	reg := NewCodecs()
	if _, ok := CodecFor[int64](reg).(Int64Codec); !ok {
		t.Fatal("int64 does not use the built-in codec")
	}
	if _, ok := CodecFor[point](reg).(*MsgpackCodec[point]); !ok {
		t.Fatal("unregistered type does not fall back to msgpack")
	}
	if _, ok := CodecFor[int64](nil).(*MsgpackCodec[int64]); !ok {
		t.Fatal("nil registry does not yield msgpack")
	}
	if got := roundTrip(t, CodecFor[point](reg), point{1, -2, "p"}); got != (point{1, -2, "p"}) {
		t.Fatalf("point: %+v", got)
	}
	if got := roundTrip(t, CodecFor[celsius](reg), celsius{21.5}); got.deg != 21.5 {
		t.Fatalf("custom encoder: %+v", got)
	}
	if got := roundTrip(t, CodecFor[int64](reg), -42); got != -42 {
		t.Fatalf("int64: %d", got)
	}
	if got := roundTrip(t, CodecFor[string](reg), "héllo"); got != "héllo" {
		t.Fatalf("string: %q", got)
	}
	if got := roundTrip(t, CodecFor[[]byte](reg), []byte{1, 2}); string(got) != "\x01\x02" {
		t.Fatalf("bytes: %v", got)
	}
	// Registries are independent values.
	other := NewCodecs()
	Register(other, func() Codec[point] { return nil })
	if CodecFor[point](reg) == nil {
		t.Fatal("registration leaked across registries")
	}
	// Bad input is an error, not a panic.
	var p point
	mustErrIs(t, CodecFor[point](reg).Decode([]byte{0xc1}, &p), ErrCorruptRecord)
	b, _ := CodecFor[point](reg).Encode(nil, &point{})
	mustErrIs(t, CodecFor[point](reg).Decode(append(b, 0), &p), ErrCorruptRecord)
	var i int64
	mustErrIs(t, Int64Codec{}.Decode([]byte{1}, &i), ErrCorruptRecord)
}

type fixedRecord struct {
	A, B int64
	C    int32
	D    bool
}

// TestEmitZeroAllocs checks that serializing and writing a fixed-size record does not allocate,
// for msgpack (the default codec) and for a built-in codec.
func TestEmitZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	env := newEnv(t, testConfig(false))
	ctx := context.Background()
	check := func(name string, emit func() error, part *ResultPartition) {
		// Drain the subpartition so that the pool never runs dry during the measurement.
		view, err := env.Partitions.createView(part.ID(), 0, func() {})
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(20000, func() {
			if err := emit(); err != nil {
				t.Fatal(err)
			}
			for {
				res, _ := view.poll(-1)
				if res.buf == nil {
					break
				}
				res.buf.Recycle()
			}
		})
		// A buffer descriptor is allocated per 32 KiB buffer, i.e. per ~1000 records.
		if allocs >= 0.01 {
			t.Errorf("%s: %.4f allocations per record, want 0", name, allocs)
		}
		view.release()
		part.Release(nil)
	}
	p1, _ := env.NewResultPartition(pid(0, 0), 1)
	w1 := NewRecordWriter(p1, CodecFor[fixedRecord](NewCodecs()), RecordWriterConfig{BufferTimeout: -1})
	defer w1.Close()
	rec := fixedRecord{A: 1 << 40, B: -7, C: 3, D: true}
	check("msgpack", func() error { rec.A++; return w1.Emit(ctx, 0, rec) }, p1)

	p2, _ := env.NewResultPartition(pid(1, 0), 1)
	w2 := NewRecordWriter(p2, CodecFor[int64](NewCodecs()), RecordWriterConfig{BufferTimeout: -1})
	defer w2.Close()
	v := int64(0)
	check("int64", func() error { v++; return w2.Emit(ctx, 0, v) }, p2)
}

// TestReadZeroAllocs checks that reading fixed-size records through a gate does not allocate per
// record.
func TestReadZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	env := newEnv(t, testConfig(false))
	ctx := context.Background()
	part, _ := env.NewResultPartition(pid(0, 0), 1)
	w := NewRecordWriter(part, CodecFor[fixedRecord](nil), RecordWriterConfig{BufferTimeout: -1})
	const n = 50000
	go func() {
		for i := range n {
			w.Emit(ctx, 0, fixedRecord{A: int64(i)})
		}
		w.Close()
		part.Finish()
	}()
	gate, _ := env.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0)}})
	defer gate.Close()
	rd := NewRecordReader(gate, CodecFor[fixedRecord](nil), 0)
	defer rd.Close()
	var r fixedRecord
	allocs := testing.AllocsPerRun(n/2, func() {
		if _, err := rd.Next(ctx, &r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs >= 0.05 {
		t.Errorf("%.4f allocations per record read", allocs)
	}
	for {
		if _, err := rd.Next(ctx, &r); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
}
