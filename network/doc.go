// Package network is the data plane of flinkgo: network buffers and their pools, result
// partitions, input gates, in-band events, and credit-based flow control over TCP. It follows
// Apache Flink's network stack (NetworkBufferPool, LocalBufferPool, ResultPartition,
// ResultSubpartition, InputGate, Local/RemoteInputChannel, PartitionRequest / BufferResponse /
// AddCredit / ErrorResponse / CancelPartitionRequest / CloseRequest).
//
// # One record's path
//
// A producing subtask writes records of type T with a RecordWriter, which serializes each record
// with a Codec (length-prefixed; a record may span buffers and be larger than one) into 32 KiB
// buffers taken from its ResultPartition's LocalBufferPool. The caller picks the subpartition
// (one per consuming subtask); the partitioner lives above this package. A buffer is handed to its
// subpartition when it is full or when the buffer timeout expires (default 100 ms, 0 = after every
// record), and flushes that the reader has not picked up yet coalesce.
//
// A consuming subtask reads through an InputGate with one InputChannel per producing subtask. A
// LocalInputChannel takes the producer's buffers straight out of the subpartition queue (same
// process: no socket, no copy). A RemoteInputChannel receives them over the ConnectionManager's
// single TCP connection to the producer's TaskManager, multiplexed with every other channel
// between the two TaskManagers. A RecordReader on top reassembles and decodes records and
// returns them and the in-band events in the order they were written.
//
// # Memory and backpressure
//
// Each TaskManager has one fixed NetworkBufferPool. Partitions and gates take LocalBufferPools
// with a guaranteed minimum; if the minimum cannot be guaranteed, creation fails at once with
// ErrInsufficientBuffers (a job fails to deploy instead of hanging). Buffers go back to their pool
// when recycled: the consumer of a Buffer must call Recycle exactly once.
//
// Remote channels use credit-based flow control: each owns exclusive receive buffers (default 2),
// the gate lends floating buffers (default 8) to channels whose producers report a backlog, and
// a producer sends a data buffer only against credit (events need none). The connection's reader
// therefore never waits for a consumer, and a slow consumer back-pressures only its own producer.
// Backpressure is measured: WriterMetrics.BackPressuredNanos is the time a writer waited for a
// buffer and GateMetrics.IdleNanos the time a gate waited for input; MillisPerSecond turns two
// samples into Flink's ms-per-second rates.
//
// # Events
//
// Events (end of partition, and kinds reserved for watermarks and checkpoint barriers) are a kind
// byte plus an opaque payload, sent in-band after flushing the records written before them. The
// gate returns each channel's end-of-partition event and then io.EOF once all channels ended.
// InputGate.BlockChannel holds back one channel (for barrier alignment) while others flow.
//
// # Concurrency and lifecycles
//
// A RecordWriter is used by one producing goroutine, an InputGate and a RecordReader by one
// consuming goroutine; pools, managers, metrics and Close are safe for concurrent use. Every
// goroutine has an owner that stops it and waits for it: a RecordWriter's output flusher
// (RecordWriter.Close) and the ConnectionManager's listener and per-connection reader and writer
// (ConnectionManager.Close). Gates, partitions and pools start no goroutines.
//
// # Errors
//
// Errors are prefixed "network: " and wrap the exported sentinels (ErrInsufficientBuffers,
// ErrPartitionNotFound, ErrMalformedFrame, ErrProtocol, ErrConnectionClosed, ...). A malformed
// frame, an unknown channel id, a buffer without credit or a peer closing mid-frame fails that
// connection's channels with an error naming the remote address; it never panics or hangs.
//
// # Wire format
//
// See frame.go: an 8-byte header (magic 0xF11C, version, message type, payload length) and a
// compact big-endian payload per message type.
//
// # Typical use
//
// The runtime creates one Environment per TaskManager:
//
//	env, _ := network.NewEnvironment(network.DefaultConfig())
//	defer env.Close()
//	part, _ := env.NewResultPartition(id, numConsumers)       // producer
//	w := network.NewRecordWriter(part, network.CodecFor[T](codecs), network.DefaultRecordWriterConfig())
//	w.Emit(ctx, subpartition, record)
//	w.Close(); part.Finish()
//
//	gate, _ := env.NewInputGate(channelSpecs)                 // consumer
//	r := network.NewRecordReader(gate, network.CodecFor[T](codecs), 0)
//	res, err := r.Next(ctx, &record)                          // io.EOF at the end
package network
