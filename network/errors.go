package network

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (match them with errors.Is) and
// add what was expected, what was found and, for connection errors, the remote address.
var (
	// ErrInsufficientBuffers reports that a buffer pool cannot be created because the
	// NetworkBufferPool cannot guarantee its minimum number of buffers. The message says how many
	// buffers were needed and how many were available; the caller adds the TaskManager's name.
	ErrInsufficientBuffers = errors.New("network: insufficient network buffers")

	// ErrClosed reports use of a pool, partition, gate, writer or connection manager after Close.
	ErrClosed = errors.New("network: closed")
	// ErrInterrupted is returned by InputGate.NextOr and RecordReader.NextOr
	// when their interrupt channel delivered before input did. It is not a
	// failure: the gate and reader stay usable.
	ErrInterrupted = errors.New("network: interrupted")

	// ErrPartitionNotFound reports that no result partition with the requested id is registered
	// (yet). It is retriable: the producer may not have registered its partition yet.
	ErrPartitionNotFound = errors.New("network: result partition not found")

	// ErrPartitionReleased reports that a result partition was released (by its producer, or
	// because it failed) before its consumer read all of it.
	ErrPartitionReleased = errors.New("network: result partition released")

	// ErrDuplicatePartition reports the registration of a partition id that is already registered.
	ErrDuplicatePartition = errors.New("network: duplicate result partition")

	// ErrSubpartitionInUse reports a second concurrent request for a pipelined subpartition,
	// which supports exactly one reader.
	ErrSubpartitionInUse = errors.New("network: subpartition already has a reader")

	// ErrMalformedFrame reports a frame that does not follow the wire format (bad magic, version,
	// message type, length or payload).
	ErrMalformedFrame = errors.New("network: malformed frame")

	// ErrProtocol reports a well-formed frame that violates the protocol: an unknown channel id, a
	// buffer sent without credit, a sequence number out of order, a message sent in the wrong
	// direction.
	ErrProtocol = errors.New("network: protocol violation")

	// ErrConnectionClosed reports that a data connection ended (the peer closed it, possibly in the
	// middle of a frame) while channels still used it.
	ErrConnectionClosed = errors.New("network: connection closed")

	// ErrRemote wraps an error that the peer reported in an ErrorResponse.
	ErrRemote = errors.New("network: remote error")

	// ErrCorruptRecord reports a serialized record stream that cannot be deserialized: a length
	// prefix out of range, a record truncated by an event or the end of a partition.
	ErrCorruptRecord = errors.New("network: corrupt record stream")

	// ErrRecordTooLarge reports a record whose serialized form exceeds the configured maximum.
	ErrRecordTooLarge = errors.New("network: record too large")
)
