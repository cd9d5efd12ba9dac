package network

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Wire format. Every frame starts with an 8-byte header:
//
//	magic   uint16  0xF11C
//	version uint8   1
//	type    uint8   message type
//	length  uint32  payload length in bytes (big-endian, like every integer on the wire)
//
// followed by the payload of the message type:
//
//	PartitionRequest        channel u64, subpartition u32, credit u32,
//	                        job u16+bytes, producer u16+bytes, partition u32
//	AddCredit               channel u64, credit u32
//	CancelPartitionRequest  channel u64
//	CloseRequest            (empty)
//	BufferResponse          channel u64, sequence u32, backlog u32, data type u8, data
//	ErrorResponse           channel u64 (0: the whole connection), code u8, message bytes
//
// The client (consumer side) sends the first four, the server (producer side) the last two.
// Channel ids are chosen by the client and are never 0.

const (
	frameMagic      = 0xF11C
	frameVersion    = 1
	frameHeaderSize = 8

	// maxControlPayload bounds the payload of every frame but BufferResponse.
	maxControlPayload = 8 << 10
	// maxIDLen bounds the job and producer ids of a PartitionRequest.
	maxIDLen = 1 << 10
	// maxErrorMessage bounds the message of an ErrorResponse.
	maxErrorMessage = 4 << 10
	// bufferResponseFixed is the size of a BufferResponse payload without its data.
	bufferResponseFixed = 8 + 4 + 4 + 1
)

// msgType is a frame's message type.
type msgType uint8

const (
	msgPartitionRequest msgType = iota + 1
	msgAddCredit
	msgCancelPartitionRequest
	msgCloseRequest
	msgBufferResponse
	msgErrorResponse
	msgTypeLimit
)

func (t msgType) String() string {
	switch t {
	case msgPartitionRequest:
		return "PartitionRequest"
	case msgAddCredit:
		return "AddCredit"
	case msgCancelPartitionRequest:
		return "CancelPartitionRequest"
	case msgCloseRequest:
		return "CloseRequest"
	case msgBufferResponse:
		return "BufferResponse"
	case msgErrorResponse:
		return "ErrorResponse"
	}
	return fmt.Sprintf("msgType(%d)", uint8(t))
}

// Data types of a BufferResponse.
const (
	dataTypeBuffer = 0
	dataTypeEvent  = 1
)

// Error codes of an ErrorResponse.
const (
	errCodeGeneric           = 0
	errCodePartitionNotFound = 1
	errCodePartitionReleased = 2
	errCodeProtocol          = 3
)

type partitionRequest struct {
	channel      uint64
	subpartition uint32
	credit       uint32
	partition    ResultPartitionID
}

type addCredit struct {
	channel uint64
	credit  uint32
}

type errorResponse struct {
	channel uint64
	code    uint8
	message string
}

type bufferResponseHeader struct {
	channel  uint64
	seq      uint32
	backlog  uint32
	dataType uint8
	size     int // data bytes following
}

func appendHeader(dst []byte, t msgType, length int) []byte {
	dst = binary.BigEndian.AppendUint16(dst, frameMagic)
	dst = append(dst, frameVersion, byte(t))
	return binary.BigEndian.AppendUint32(dst, uint32(length))
}

func appendPartitionRequest(dst []byte, m partitionRequest) ([]byte, error) {
	id := m.partition
	if len(id.JobID) > maxIDLen || len(id.ProducerID) > maxIDLen {
		return dst, fmt.Errorf("network: partition id %s: job and producer ids must be at most %d bytes", id, maxIDLen)
	}
	if id.Partition < 0 || uint64(id.Partition) > 1<<32-1 {
		return dst, fmt.Errorf("network: partition id %s: partition index out of range", id)
	}
	n := 8 + 4 + 4 + 2 + len(id.JobID) + 2 + len(id.ProducerID) + 4
	dst = appendHeader(dst, msgPartitionRequest, n)
	dst = binary.BigEndian.AppendUint64(dst, m.channel)
	dst = binary.BigEndian.AppendUint32(dst, m.subpartition)
	dst = binary.BigEndian.AppendUint32(dst, m.credit)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(id.JobID)))
	dst = append(dst, id.JobID...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(id.ProducerID)))
	dst = append(dst, id.ProducerID...)
	return binary.BigEndian.AppendUint32(dst, uint32(id.Partition)), nil
}

func appendAddCredit(dst []byte, m addCredit) []byte {
	dst = appendHeader(dst, msgAddCredit, 12)
	dst = binary.BigEndian.AppendUint64(dst, m.channel)
	return binary.BigEndian.AppendUint32(dst, m.credit)
}

func appendCancel(dst []byte, channel uint64) []byte {
	dst = appendHeader(dst, msgCancelPartitionRequest, 8)
	return binary.BigEndian.AppendUint64(dst, channel)
}

func appendCloseRequest(dst []byte) []byte {
	return appendHeader(dst, msgCloseRequest, 0)
}

func appendErrorResponse(dst []byte, m errorResponse) []byte {
	msg := m.message
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage]
	}
	dst = appendHeader(dst, msgErrorResponse, 9+len(msg))
	dst = binary.BigEndian.AppendUint64(dst, m.channel)
	dst = append(dst, m.code)
	return append(dst, msg...)
}

// appendBufferResponseHeader appends the frame header and the fixed part of a BufferResponse; the
// caller writes the size data bytes after it.
func appendBufferResponseHeader(dst []byte, h bufferResponseHeader) []byte {
	dst = appendHeader(dst, msgBufferResponse, bufferResponseFixed+h.size)
	dst = binary.BigEndian.AppendUint64(dst, h.channel)
	dst = binary.BigEndian.AppendUint32(dst, h.seq)
	dst = binary.BigEndian.AppendUint32(dst, h.backlog)
	return append(dst, h.dataType)
}

// frameReader decodes frames from a stream. It is used by one goroutine.
type frameReader struct {
	r       io.Reader
	maxData int // largest BufferResponse data accepted
	hdr     [frameHeaderSize]byte
	scratch []byte
}

// readHeader reads and validates the next frame header. io.EOF means the stream ended cleanly
// between frames.
func (fr *frameReader) readHeader() (msgType, int, error) {
	if n, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		if err == io.EOF || (err == io.ErrUnexpectedEOF && n > 0) {
			return 0, 0, truncated(err, "frame header")
		}
		return 0, 0, err
	}
	if m := binary.BigEndian.Uint16(fr.hdr[0:]); m != frameMagic {
		return 0, 0, fmt.Errorf("%w: magic %#04x, want %#04x", ErrMalformedFrame, m, frameMagic)
	}
	if v := fr.hdr[2]; v != frameVersion {
		return 0, 0, fmt.Errorf("%w: version %d, want %d", ErrMalformedFrame, v, frameVersion)
	}
	t := msgType(fr.hdr[3])
	if t == 0 || t >= msgTypeLimit {
		return 0, 0, fmt.Errorf("%w: unknown message type %d", ErrMalformedFrame, uint8(t))
	}
	n := binary.BigEndian.Uint32(fr.hdr[4:])
	limit := uint32(maxControlPayload)
	if t == msgBufferResponse {
		limit = uint32(bufferResponseFixed + fr.maxData)
	}
	if n > limit {
		return 0, 0, fmt.Errorf("%w: %s of %d bytes, maximum %d", ErrMalformedFrame, t, n, limit)
	}
	return t, int(n), nil
}

// truncated turns an EOF inside a frame into ErrConnectionClosed.
func truncated(err error, what string) error {
	if err == io.EOF {
		return fmt.Errorf("%w: stream ended (%v)", ErrConnectionClosed, err)
	}
	return fmt.Errorf("%w: stream ended inside %s (%v)", ErrConnectionClosed, what, err)
}

// readPayload reads a control frame's payload into the reader's scratch space; the result is valid
// until the next read.
func (fr *frameReader) readPayload(t msgType, n int) ([]byte, error) {
	if cap(fr.scratch) < n {
		fr.scratch = make([]byte, n, max(n, 256))
	}
	p := fr.scratch[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		return nil, truncated(noEOF(err), t.String())
	}
	return p, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: inside a frame, any end of stream is unexpected.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readBufferResponseHeader reads the fixed part of a BufferResponse whose payload is n bytes; the
// caller then reads h.size data bytes from fr.r.
func (fr *frameReader) readBufferResponseHeader(n int) (bufferResponseHeader, error) {
	if n < bufferResponseFixed {
		return bufferResponseHeader{}, fmt.Errorf("%w: BufferResponse payload of %d bytes, want at least %d", ErrMalformedFrame, n, bufferResponseFixed)
	}
	var b [bufferResponseFixed]byte
	if _, err := io.ReadFull(fr.r, b[:]); err != nil {
		return bufferResponseHeader{}, truncated(noEOF(err), "BufferResponse")
	}
	h := bufferResponseHeader{
		channel:  binary.BigEndian.Uint64(b[0:]),
		seq:      binary.BigEndian.Uint32(b[8:]),
		backlog:  binary.BigEndian.Uint32(b[12:]),
		dataType: b[16],
		size:     n - bufferResponseFixed,
	}
	switch {
	case h.channel == 0:
		return h, fmt.Errorf("%w: BufferResponse for channel 0", ErrMalformedFrame)
	case h.dataType != dataTypeBuffer && h.dataType != dataTypeEvent:
		return h, fmt.Errorf("%w: BufferResponse data type %d", ErrMalformedFrame, h.dataType)
	case h.size == 0:
		return h, fmt.Errorf("%w: empty BufferResponse", ErrMalformedFrame)
	}
	return h, nil
}

// payloadDecoder reads big-endian fields from a payload and remembers the first error.
type payloadDecoder struct {
	p   []byte
	err error
	t   msgType
}

func (d *payloadDecoder) need(n int) bool {
	if d.err == nil && len(d.p) < n {
		d.err = fmt.Errorf("%w: %s payload truncated", ErrMalformedFrame, d.t)
	}
	return d.err == nil
}

func (d *payloadDecoder) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := binary.BigEndian.Uint64(d.p)
	d.p = d.p[8:]
	return v
}

func (d *payloadDecoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(d.p)
	d.p = d.p[4:]
	return v
}

func (d *payloadDecoder) u8() uint8 {
	if !d.need(1) {
		return 0
	}
	v := d.p[0]
	d.p = d.p[1:]
	return v
}

func (d *payloadDecoder) str16() string {
	if !d.need(2) {
		return ""
	}
	n := int(binary.BigEndian.Uint16(d.p))
	d.p = d.p[2:]
	if n > maxIDLen {
		d.err = fmt.Errorf("%w: %s: id of %d bytes, maximum %d", ErrMalformedFrame, d.t, n, maxIDLen)
		return ""
	}
	if !d.need(n) {
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	return s
}

// done returns the first error, or an error if bytes are left over.
func (d *payloadDecoder) done() error {
	if d.err == nil && len(d.p) != 0 {
		d.err = fmt.Errorf("%w: %s payload has %d trailing bytes", ErrMalformedFrame, d.t, len(d.p))
	}
	return d.err
}

func decodeChannel(d *payloadDecoder) uint64 {
	ch := d.u64()
	if d.err == nil && ch == 0 {
		d.err = fmt.Errorf("%w: %s for channel 0", ErrMalformedFrame, d.t)
	}
	return ch
}

func decodePartitionRequest(p []byte) (partitionRequest, error) {
	d := payloadDecoder{p: p, t: msgPartitionRequest}
	var m partitionRequest
	m.channel = decodeChannel(&d)
	m.subpartition = d.u32()
	m.credit = d.u32()
	m.partition.JobID = d.str16()
	m.partition.ProducerID = d.str16()
	m.partition.Partition = int(d.u32())
	return m, d.done()
}

func decodeAddCredit(p []byte) (addCredit, error) {
	d := payloadDecoder{p: p, t: msgAddCredit}
	m := addCredit{channel: decodeChannel(&d), credit: d.u32()}
	if d.err == nil && m.credit == 0 {
		d.err = fmt.Errorf("%w: AddCredit of 0", ErrMalformedFrame)
	}
	return m, d.done()
}

func decodeCancel(p []byte) (uint64, error) {
	d := payloadDecoder{p: p, t: msgCancelPartitionRequest}
	ch := decodeChannel(&d)
	return ch, d.done()
}

func decodeErrorResponse(p []byte) (errorResponse, error) {
	d := payloadDecoder{p: p, t: msgErrorResponse}
	m := errorResponse{channel: d.u64(), code: d.u8()}
	if d.err == nil {
		if len(d.p) > maxErrorMessage {
			return m, fmt.Errorf("%w: ErrorResponse message of %d bytes, maximum %d", ErrMalformedFrame, len(d.p), maxErrorMessage)
		}
		m.message = string(d.p)
		d.p = nil
	}
	return m, d.done()
}
