package network

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// DefaultBufferTimeout is Flink's default buffer timeout: a partially filled buffer is shipped at
// the latest this long after its first record.
const DefaultBufferTimeout = 100 * time.Millisecond

// RecordWriterConfig configures a RecordWriter.
type RecordWriterConfig struct {
	// BufferTimeout is the longest a written record waits in a partially filled buffer before it
	// is shipped. 0 ships after every record (lowest latency); a negative value ships only full
	// buffers and on Flush (highest throughput). Default DefaultBufferTimeout.
	BufferTimeout time.Duration
	// MaxRecordSize bounds a serialized record. Default DefaultMaxRecordSize.
	MaxRecordSize int
}

// DefaultRecordWriterConfig returns the default configuration (buffer timeout 100 ms).
func DefaultRecordWriterConfig() RecordWriterConfig {
	return RecordWriterConfig{BufferTimeout: DefaultBufferTimeout, MaxRecordSize: DefaultMaxRecordSize}
}

// RecordWriter serializes records of type T with a Codec into the buffers of a ResultPartition.
// The caller picks the subpartition (the partitioner lives above this package). A record may span
// several buffers. A buffer is shipped when it is full or when the buffer timeout expires, by an
// output flusher goroutine the writer owns and stops on Close.
//
// Emit, Broadcast, BroadcastEvent and Flush are called by one goroutine (the producing subtask);
// Metrics and Close may be called from any goroutine.
type RecordWriter[T any] struct {
	part       *ResultPartition
	codec      Codec[T]
	flushEvery bool
	maxRecord  int

	scratch []byte
	tmp     T

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewRecordWriter returns a writer of records of type T into p. A zero MaxRecordSize takes the
// default. Close the writer before finishing the partition.
func NewRecordWriter[T any](p *ResultPartition, codec Codec[T], cfg RecordWriterConfig) *RecordWriter[T] {
	if cfg.MaxRecordSize <= 0 {
		cfg.MaxRecordSize = DefaultMaxRecordSize
	}
	w := &RecordWriter[T]{
		part:       p,
		codec:      codec,
		flushEvery: cfg.BufferTimeout == 0,
		maxRecord:  cfg.MaxRecordSize,
		scratch:    make([]byte, lengthPrefixSize, 256),
		stop:       make(chan struct{}),
	}
	if cfg.BufferTimeout > 0 {
		w.wg.Add(1)
		go w.runFlusher(cfg.BufferTimeout)
	}
	return w
}

// runFlusher is the output flusher: it flushes all subpartitions every timeout.
func (w *RecordWriter[T]) runFlusher(timeout time.Duration) {
	defer w.wg.Done()
	t := time.NewTicker(timeout)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.part.flushAll()
		}
	}
}

// serialize encodes rec behind a length prefix into the writer's scratch buffer.
func (w *RecordWriter[T]) serialize(rec T) ([]byte, error) {
	w.tmp = rec
	buf, err := w.codec.Encode(w.scratch[:lengthPrefixSize], &w.tmp)
	var zero T
	w.tmp = zero
	if err != nil {
		return nil, fmt.Errorf("network: partition %s: encode record: %w", w.part.id, err)
	}
	if cap(buf) > cap(w.scratch) {
		w.scratch = buf[:lengthPrefixSize]
	}
	n := len(buf) - lengthPrefixSize
	if n > w.maxRecord {
		return nil, fmt.Errorf("%w: partition %s: record of %d bytes, maximum %d", ErrRecordTooLarge, w.part.id, n, w.maxRecord)
	}
	binary.BigEndian.PutUint32(buf, uint32(n))
	return buf, nil
}

// Emit writes rec to subpartition sub. It blocks while no output buffer is available
// (backpressure) and returns ctx's error if ctx ends first; the record is then not written.
func (w *RecordWriter[T]) Emit(ctx context.Context, sub int, rec T) error {
	buf, err := w.serialize(rec)
	if err != nil {
		return err
	}
	return w.part.emit(ctx, sub, buf, w.flushEvery)
}

// Broadcast writes rec to every subpartition (it is serialized once). It blocks like Emit.
func (w *RecordWriter[T]) Broadcast(ctx context.Context, rec T) error {
	buf, err := w.serialize(rec)
	if err != nil {
		return err
	}
	return w.part.broadcast(ctx, buf, w.flushEvery)
}

// BroadcastEvent flushes every subpartition and appends ev to each, so that ev follows every
// record emitted before it. It does not block.
func (w *RecordWriter[T]) BroadcastEvent(ev Event) error { return w.part.BroadcastEvent(ev) }

// Flush ships the partially filled buffers of all subpartitions now.
func (w *RecordWriter[T]) Flush() { w.part.flushAll() }

// Metrics returns the partition's output counters.
func (w *RecordWriter[T]) Metrics() WriterMetrics { return w.part.Metrics() }

// Close stops the output flusher and flushes all subpartitions. It does not finish the partition:
// call ResultPartition.Finish afterwards to send end-of-partition. Close is idempotent.
func (w *RecordWriter[T]) Close() error {
	w.closeOnce.Do(func() {
		close(w.stop)
		w.wg.Wait()
		w.part.flushAll()
	})
	return nil
}
