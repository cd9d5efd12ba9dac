package network

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzFrameDecoder feeds arbitrary bytes to the frame decoder: it must never panic, every error
// must wrap ErrMalformedFrame or ErrConnectionClosed, and every frame it accepts must re-encode to
// the same bytes.
func FuzzFrameDecoder(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendAddCredit(nil, addCredit{channel: 1, credit: 2}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		fr := frameReader{r: r, maxData: 1024}
		for {
			start := len(data) - r.Len()
			typ, n, err := fr.readHeader()
			if err != nil {
				checkDecodeErr(t, err)
				return
			}
			var re []byte
			switch typ {
			case msgBufferResponse:
				h, err := fr.readBufferResponseHeader(n)
				if err != nil {
					checkDecodeErr(t, err)
					return
				}
				payload := make([]byte, h.size)
				if _, err := io.ReadFull(r, payload); err != nil {
					return // a truncated stream; the connection code reports it
				}
				re = append(appendBufferResponseHeader(nil, h), payload...)
			default:
				p, err := fr.readPayload(typ, n)
				if err != nil {
					checkDecodeErr(t, err)
					return
				}
				re, err = reencode(typ, p)
				if err != nil {
					checkDecodeErr(t, err)
					return
				}
			}
			end := len(data) - r.Len()
			if !bytes.Equal(re, data[start:end]) {
				t.Fatalf("%s re-encodes as %x, read %x", typ, re, data[start:end])
			}
		}
	})
}

// reencode decodes a control frame payload and encodes the message again.
func reencode(t msgType, p []byte) ([]byte, error) {
	switch t {
	case msgPartitionRequest:
		m, err := decodePartitionRequest(p)
		if err != nil {
			return nil, err
		}
		return appendPartitionRequest(nil, m)
	case msgAddCredit:
		m, err := decodeAddCredit(p)
		return appendAddCredit(nil, m), err
	case msgCancelPartitionRequest:
		ch, err := decodeCancel(p)
		return appendCancel(nil, ch), err
	case msgCloseRequest:
		if len(p) != 0 {
			return nil, ErrMalformedFrame
		}
		return appendCloseRequest(nil), nil
	case msgErrorResponse:
		m, err := decodeErrorResponse(p)
		return appendErrorResponse(nil, m), err
	}
	return nil, ErrMalformedFrame
}

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformedFrame) && !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("decode error %v wraps neither ErrMalformedFrame nor ErrConnectionClosed", err)
	}
}

// FuzzRecordDeserializer checks the record deserializer two ways: arbitrary bytes cut into
// buffers of arbitrary size never panic and fail only with ErrCorruptRecord; and records built
// from the input (split at 0xFF bytes), serialized with length prefixes and cut into buffers come
// back unchanged.
func FuzzRecordDeserializer(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0}, uint16(2))
	f.Add([]byte("hello\xffworld\xff\xff"), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		size := int(chunk%97) + 1
		const maxRecord = 1 << 10

		// Arbitrary stream.
		d := newRecordDeserializer(maxRecord)
		feed(t, &d, data, size, func([]byte) {})

		// Round trip.
		records := bytes.Split(data, []byte{0xff})
		var stream []byte
		for _, r := range records {
			stream = append(stream, byte(len(r)>>24), byte(len(r)>>16), byte(len(r)>>8), byte(len(r)))
			stream = append(stream, r...)
		}
		d = newRecordDeserializer(1 << 30)
		var got [][]byte
		if err := feed(t, &d, stream, size, func(r []byte) { got = append(got, bytes.Clone(r)) }); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if d.hasPartial() {
			t.Fatal("round trip left a partial record")
		}
		if len(got) != len(records) {
			t.Fatalf("round trip: %d records, want %d", len(got), len(records))
		}
		for i := range got {
			if !bytes.Equal(got[i], records[i]) {
				t.Fatalf("record %d: %x, want %x", i, got[i], records[i])
			}
		}
	})
}

// feed runs stream through d in buffers of size bytes, calling emit for each record.
func feed(t *testing.T, d *recordDeserializer, stream []byte, size int, emit func([]byte)) error {
	t.Helper()
	for len(stream) > 0 {
		n := min(size, len(stream))
		d.setBuffer(&Buffer{data: stream[:n]})
		stream = stream[n:]
		for {
			rec, ok, err := d.next()
			if err != nil {
				if !errors.Is(err, ErrCorruptRecord) {
					t.Fatalf("deserializer error %v does not wrap ErrCorruptRecord", err)
				}
				return err
			}
			if !ok {
				break
			}
			if len(rec) > d.maxRecord {
				t.Fatalf("record of %d bytes beyond the maximum %d", len(rec), d.maxRecord)
			}
			emit(rec)
		}
	}
	return nil
}
