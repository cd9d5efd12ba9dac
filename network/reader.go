package network

import (
	"context"
	"fmt"
)

// RecordReader reads records of type T from an InputGate: it reassembles records that span
// buffers (per channel) and decodes them with a Codec. Records and events of one channel come out
// in the order they were written. It is used by one goroutine.
type RecordReader[T any] struct {
	gate    *InputGate
	codec   Codec[T]
	desers  []recordDeserializer
	current int // channel whose buffer is being drained, -1 for none
}

// ReadResult says what RecordReader.Next produced.
type ReadResult struct {
	// Channel is the input channel the record or event came from.
	Channel int
	// IsEvent reports that Next returned an event (in Event) instead of a record.
	IsEvent bool
	// Event is the event when IsEvent; its payload is owned by the caller.
	Event Event
}

// NewRecordReader returns a reader of gate's records. maxRecordSize bounds a record's length
// prefix (0 means DefaultMaxRecordSize); a larger prefix is reported as ErrCorruptRecord.
func NewRecordReader[T any](gate *InputGate, codec Codec[T], maxRecordSize int) *RecordReader[T] {
	if maxRecordSize <= 0 {
		maxRecordSize = DefaultMaxRecordSize
	}
	r := &RecordReader[T]{gate: gate, codec: codec, desers: make([]recordDeserializer, gate.NumChannels()), current: -1}
	for i := range r.desers {
		r.desers[i] = newRecordDeserializer(maxRecordSize)
	}
	return r
}

// Next decodes the next record into *rec, or returns the next event (including each channel's
// end-of-partition event) without touching *rec. It blocks until one is available or ctx ends and
// returns io.EOF after every channel has ended. After an error the reader must not be used again.
func (r *RecordReader[T]) Next(ctx context.Context, rec *T) (ReadResult, error) {
	return r.NextOr(ctx, rec, nil)
}

// NextOr is Next, except that it returns ErrInterrupted, without touching
// *rec and leaving the reader usable, when interrupt delivers while it
// waits for input (see InputGate.NextOr).
func (r *RecordReader[T]) NextOr(ctx context.Context, rec *T, interrupt <-chan struct{}) (ReadResult, error) {
	for {
		if r.current >= 0 {
			ch := r.current
			data, ok, err := r.desers[ch].next()
			if err != nil {
				r.desers[ch].release()
				return ReadResult{}, fmt.Errorf("network: input channel %d: %w", ch, err)
			}
			if ok {
				if err := r.codec.Decode(data, rec); err != nil {
					return ReadResult{}, fmt.Errorf("network: input channel %d: decode record: %w", ch, err)
				}
				return ReadResult{Channel: ch}, nil
			}
			r.current = -1
		}
		boe, err := r.gate.NextOr(ctx, interrupt)
		if err != nil {
			return ReadResult{}, err
		}
		if boe.IsEvent() {
			if r.desers[boe.Channel].hasPartial() {
				r.desers[boe.Channel].release()
				return ReadResult{}, fmt.Errorf("%w: input channel %d: %s event inside a record", ErrCorruptRecord, boe.Channel, boe.Event.Kind)
			}
			return ReadResult{Channel: boe.Channel, IsEvent: true, Event: boe.Event}, nil
		}
		r.desers[boe.Channel].setBuffer(boe.Buffer)
		r.current = boe.Channel
	}
}

// Buffered reports whether unread bytes remain in the buffer being decoded,
// so that Next can likely return without waiting on the gate. A consumer
// that batches records hands its batch on when Buffered is false instead of
// holding it while Next waits for more input.
func (r *RecordReader[T]) Buffered() bool {
	return r.current >= 0 && len(r.desers[r.current].data) > 0
}

// Close recycles buffers held by the reader. It does not close the gate.
func (r *RecordReader[T]) Close() {
	for i := range r.desers {
		r.desers[i].release()
	}
	r.current = -1
}
