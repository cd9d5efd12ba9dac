package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/flinkgo/flink/state"
)

// The metadata file format:
//
//	offset  size  field
//	0       4     magic "FGCK" (0x4647434B)
//	4       4     format version, big endian (MetadataVersion)
//	8       8     body length in bytes, big endian
//	16      4     CRC-32C (Castagnoli) of the body, big endian
//	20      n     body: the Metadata as msgpack, map keys sorted
//
// Like Flink's Checkpoints.storeCheckpointMetadata, a magic number and a
// version come first, so a reader can refuse a file it does not understand;
// the length and checksum catch truncation and corruption before decoding.
const (
	// MetadataMagic is the number every metadata file starts with.
	MetadataMagic uint32 = 0x4647434B
	// MetadataVersion is the format version this package writes and reads.
	MetadataVersion = 1
	// MaxMetadataSize bounds the metadata a storage reads (256 MiB): larger
	// files are refused rather than loaded into memory.
	MaxMetadataSize = 256 << 20

	metadataHeaderSize = 20
)

// Errors of the metadata codec.
var (
	// ErrBadMagic: the data does not start with MetadataMagic; it is not a
	// flinkgo metadata file.
	ErrBadMagic = errors.New("checkpoint: not a metadata file")
	// ErrUnsupportedVersion: the metadata has a format version this build
	// cannot read.
	ErrUnsupportedVersion = errors.New("checkpoint: unsupported metadata version")
	// ErrTruncated: the metadata is shorter than its header says.
	ErrTruncated = errors.New("checkpoint: truncated metadata")
	// ErrInvalidMetadata: the metadata is well formed but inconsistent
	// (offsets outside their stream, key groups outside the max parallelism,
	// duplicate operators, ...), or does not belong where it is written.
	ErrInvalidMetadata = errors.New("checkpoint: invalid metadata")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Metadata describes one completed checkpoint or savepoint: for every
// operator and subtask, the handles of the state streams it wrote. It is what
// a restore reads first. The coordinator builds it from the subtasks'
// acknowledgements and writes it with Storage.WriteMetadata.
type Metadata struct {
	// Version is the format version the metadata was decoded from.
	// EncodeMetadata ignores it and always writes MetadataVersion.
	Version int `msgpack:"-"`
	// JobID is the id of the job that took the checkpoint.
	JobID string `msgpack:"job_id"`
	// JobName is the job's registered name, for people reading savepoints.
	JobName string `msgpack:"job_name,omitempty"`
	// CheckpointID is the checkpoint's id, >= 1, increasing within a job.
	CheckpointID int64 `msgpack:"checkpoint_id"`
	// Timestamp is when the checkpoint was triggered. Decoded in UTC.
	Timestamp time.Time `msgpack:"timestamp"`
	// IsSavepoint marks a user-triggered savepoint.
	IsSavepoint bool `msgpack:"is_savepoint,omitempty"`
	// Operators holds the state of every operator that has state.
	Operators []OperatorState `msgpack:"operators"`
}

// OperatorState is the state of one operator across its subtasks.
type OperatorState struct {
	// OperatorID identifies the operator across job versions; a restore
	// matches state to operators by it.
	OperatorID string `msgpack:"operator_id"`
	// UID is the user-given uid the OperatorID was derived from, if any.
	UID string `msgpack:"uid,omitempty"`
	// Parallelism is the operator's parallelism when the checkpoint was
	// taken.
	Parallelism int `msgpack:"parallelism"`
	// MaxParallelism is the operator's number of key groups.
	MaxParallelism int `msgpack:"max_parallelism"`
	// Subtasks is indexed by subtask index; it may be shorter than
	// Parallelism when the last subtasks have no state.
	Subtasks []SubtaskState `msgpack:"subtasks"`
}

// SubtaskState is the state one subtask wrote for a checkpoint.
type SubtaskState struct {
	// Keyed holds the subtask's keyed state streams.
	Keyed []KeyedStateHandle `msgpack:"keyed,omitempty"`
	// Operator holds the subtask's operator (non-keyed) state streams.
	Operator []OperatorStateHandle `msgpack:"operator,omitempty"`
	// Raw holds small opaque per-subtask data, such as source positions,
	// stored inline in the metadata rather than in a stream.
	Raw map[string][]byte `msgpack:"raw,omitempty"`
}

// EncodeMsgpack implements msgpack.CustomEncoder, writing the same map as
// the default struct encoding but with Raw's keys sorted, so that encoding
// is deterministic. Decoding uses the default.
func (st SubtaskState) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 0
	for _, nonEmpty := range []bool{len(st.Keyed) > 0, len(st.Operator) > 0, len(st.Raw) > 0} {
		if nonEmpty {
			n++
		}
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	if len(st.Keyed) > 0 {
		if err := enc.EncodeMulti("keyed", st.Keyed); err != nil {
			return err
		}
	}
	if len(st.Operator) > 0 {
		if err := enc.EncodeMulti("operator", st.Operator); err != nil {
			return err
		}
	}
	if len(st.Raw) > 0 {
		if err := enc.EncodeString("raw"); err != nil {
			return err
		}
		return encodeSortedMap(enc, st.Raw)
	}
	return nil
}

// encodeSortedMap encodes m as a msgpack map with its keys in order.
func encodeSortedMap[V any](enc *msgpack.Encoder, m map[string]V) error {
	if m == nil {
		return enc.EncodeNil()
	}
	if err := enc.EncodeMapLen(len(m)); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := enc.EncodeMulti(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// KeyedStateHandle points to a stream holding the keyed state of a range of
// key groups, with the offset at which each key group's data starts, so a
// restore at another parallelism reads only the key groups it owns.
type KeyedStateHandle struct {
	// Stream is the stream holding the state.
	Stream StreamHandle
	// KeyGroups is the range of key groups in the stream.
	KeyGroups state.KeyGroupRange
	// Offsets[i] is the offset in Stream of key group KeyGroups.Start+i.
	Offsets []int64
}

// keyedWire is KeyedStateHandle's encoded form, independent of how
// state.KeyGroupRange encodes itself.
type keyedWire struct {
	Stream  StreamHandle `msgpack:"stream"`
	Start   int          `msgpack:"kg_start"`
	End     int          `msgpack:"kg_end"`
	Offsets []int64      `msgpack:"offsets"`
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (h KeyedStateHandle) EncodeMsgpack(enc *msgpack.Encoder) error {
	return enc.Encode(keyedWire{Stream: h.Stream, Start: h.KeyGroups.Start, End: h.KeyGroups.End, Offsets: h.Offsets})
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (h *KeyedStateHandle) DecodeMsgpack(dec *msgpack.Decoder) error {
	var w keyedWire
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*h = KeyedStateHandle{Stream: w.Stream, KeyGroups: state.KeyGroupRange{Start: w.Start, End: w.End}, Offsets: w.Offsets}
	return nil
}

// DistributionMode says how the partitions of a list-style operator state
// are redistributed when the operator is restored, as Flink's
// OperatorStateHandle.Mode.
type DistributionMode uint8

const (
	// SplitDistribute: the partitions are split among the new subtasks
	// (Flink's getListState).
	SplitDistribute DistributionMode = iota
	// Union: every new subtask gets all partitions (getUnionListState).
	Union
	// Broadcast: every subtask holds the same state; each new subtask gets
	// one copy.
	Broadcast
)

// String returns the mode's name.
func (d DistributionMode) String() string {
	switch d {
	case SplitDistribute:
		return "split"
	case Union:
		return "union"
	case Broadcast:
		return "broadcast"
	}
	return fmt.Sprintf("DistributionMode(%d)", uint8(d))
}

// OperatorStateHandle points to a stream holding a subtask's operator state:
// several named list states, each split in partitions.
type OperatorStateHandle struct {
	// Stream is the stream holding the state.
	Stream StreamHandle `msgpack:"stream"`
	// States maps each state's name to where its partitions start and how
	// they are redistributed.
	States map[string]OperatorStateInfo `msgpack:"states"`
}

// EncodeMsgpack implements msgpack.CustomEncoder, writing the same map as
// the default struct encoding but with States' keys sorted. Decoding uses
// the default.
func (h OperatorStateHandle) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeMapLen(2); err != nil {
		return err
	}
	if err := enc.EncodeMulti("stream", h.Stream); err != nil {
		return err
	}
	if err := enc.EncodeString("states"); err != nil {
		return err
	}
	return encodeSortedMap(enc, h.States)
}

// OperatorStateInfo locates one named operator state inside its stream.
type OperatorStateInfo struct {
	// Offsets[i] is the offset in the stream of list partition i.
	Offsets []int64 `msgpack:"offsets"`
	// Mode says how the partitions are redistributed on restore.
	Mode DistributionMode `msgpack:"mode"`
}

// EncodeMetadata validates m and encodes it in the metadata file format. The
// output is deterministic: equal metadata encodes to equal bytes.
func EncodeMetadata(m *Metadata) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil metadata", ErrInvalidMetadata)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write(make([]byte, metadataHeaderSize))
	if err := newBodyEncoder(&buf).Encode(m); err != nil {
		return nil, fmt.Errorf("checkpoint: encode metadata: %w", err)
	}
	out := buf.Bytes()
	body := out[metadataHeaderSize:]
	binary.BigEndian.PutUint32(out[0:], MetadataMagic)
	binary.BigEndian.PutUint32(out[4:], MetadataVersion)
	binary.BigEndian.PutUint64(out[8:], uint64(len(body)))
	binary.BigEndian.PutUint32(out[16:], crc32.Checksum(body, castagnoli))
	return out, nil
}

// newBodyEncoder returns the msgpack encoder of metadata bodies: sorted map
// keys for deterministic output, compact integers for size.
func newBodyEncoder(w io.Writer) *msgpack.Encoder {
	enc := msgpack.NewEncoder(w)
	enc.SetSortMapKeys(true)
	enc.UseCompactInts(true)
	return enc
}

// DecodeMetadata decodes and validates metadata in the file format. It never
// panics: bad input is an error wrapping ErrBadMagic, ErrUnsupportedVersion,
// ErrTruncated, ErrCorrupt or ErrInvalidMetadata that says what was expected
// and what was found. The result does not alias data. Stream paths are
// returned as stored: those inside the checkpoint's own directory are
// relative; Storage.ReadMetadata resolves them.
func DecodeMetadata(data []byte) (*Metadata, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, expected at least a %d-byte header", ErrTruncated, len(data), metadataHeaderSize)
	}
	if magic := binary.BigEndian.Uint32(data); magic != MetadataMagic {
		return nil, fmt.Errorf("%w: expected magic %#08x, found %#08x", ErrBadMagic, MetadataMagic, magic)
	}
	if len(data) < metadataHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, expected at least a %d-byte header", ErrTruncated, len(data), metadataHeaderSize)
	}
	if v := binary.BigEndian.Uint32(data[4:]); v != MetadataVersion {
		return nil, fmt.Errorf("%w: expected version %d, found %d", ErrUnsupportedVersion, MetadataVersion, v)
	}
	n := binary.BigEndian.Uint64(data[8:])
	body := data[metadataHeaderSize:]
	switch {
	case n > uint64(len(body)):
		return nil, fmt.Errorf("%w: header announces a %d-byte body, found %d bytes", ErrTruncated, n, len(body))
	case n < uint64(len(body)):
		return nil, fmt.Errorf("%w: header announces a %d-byte body, found %d bytes (trailing data)", ErrCorrupt, n, len(body))
	}
	if want, got := binary.BigEndian.Uint32(data[16:]), crc32.Checksum(body, castagnoli); want != got {
		return nil, fmt.Errorf("%w: body checksum expected %#08x, found %#08x", ErrCorrupt, want, got)
	}
	return decodeMetadataBody(body)
}

// decodeMetadataBody decodes and validates a msgpack body.
func decodeMetadataBody(body []byte) (_ *Metadata, err error) {
	if err := checkMsgpack(body); err != nil {
		return nil, fmt.Errorf("%w: metadata body: %w", ErrCorrupt, err)
	}
	// The msgpack library panics on some ill-typed input (nil where a
	// time.Time is expected, for one); bad input must be an error.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: decode metadata body: %v", ErrCorrupt, p)
		}
	}()
	r := bytes.NewReader(body)
	dec := msgpack.NewDecoder(r)
	m := new(Metadata)
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: decode metadata body: %w", ErrCorrupt, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the metadata body", ErrCorrupt, r.Len())
	}
	m.Version = MetadataVersion
	if !m.Timestamp.IsZero() {
		m.Timestamp = m.Timestamp.UTC()
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Validate checks that m is consistent: ids present, parallelisms in range,
// key groups inside the max parallelism with one offset each, offsets inside
// their streams, known distribution modes. It does not look at storage.
func (m *Metadata) Validate() error {
	if m.JobID == "" {
		return fmt.Errorf("%w: empty job id", ErrInvalidMetadata)
	}
	if m.CheckpointID < 1 {
		return fmt.Errorf("%w: checkpoint id must be >= 1, found %d", ErrInvalidMetadata, m.CheckpointID)
	}
	seen := make(map[string]bool, len(m.Operators))
	for i := range m.Operators {
		op := &m.Operators[i]
		if op.OperatorID == "" {
			return fmt.Errorf("%w: operator %d has an empty id", ErrInvalidMetadata, i)
		}
		if seen[op.OperatorID] {
			return fmt.Errorf("%w: operator %q appears twice", ErrInvalidMetadata, op.OperatorID)
		}
		seen[op.OperatorID] = true
		if err := op.validate(); err != nil {
			return fmt.Errorf("%w: operator %q: %w", ErrInvalidMetadata, op.OperatorID, err)
		}
	}
	return nil
}

func (op *OperatorState) validate() error {
	if op.Parallelism < 1 || op.MaxParallelism < op.Parallelism || op.MaxParallelism > state.UpperBoundMaxParallelism {
		return fmt.Errorf("expected 1 <= parallelism <= max parallelism <= %d, found parallelism %d and max parallelism %d",
			state.UpperBoundMaxParallelism, op.Parallelism, op.MaxParallelism)
	}
	if len(op.Subtasks) > op.Parallelism {
		return fmt.Errorf("%d subtask states for parallelism %d", len(op.Subtasks), op.Parallelism)
	}
	for i := range op.Subtasks {
		st := &op.Subtasks[i]
		for j, k := range st.Keyed {
			if err := k.validate(op.MaxParallelism); err != nil {
				return fmt.Errorf("subtask %d keyed handle %d: %w", i, j, err)
			}
		}
		for j, o := range st.Operator {
			if err := o.validate(); err != nil {
				return fmt.Errorf("subtask %d operator handle %d: %w", i, j, err)
			}
		}
	}
	return nil
}

func (h StreamHandle) validate() error {
	if h.Path == "" {
		return errors.New("stream has an empty path")
	}
	if h.Size < 0 {
		return fmt.Errorf("stream %q has negative size %d", h.Path, h.Size)
	}
	return nil
}

func validOffsets(offsets []int64, h StreamHandle) error {
	for i, off := range offsets {
		if off < 0 || off > h.Size {
			return fmt.Errorf("offset %d is %d, expected within the %d-byte stream %q", i, off, h.Size, h.Path)
		}
	}
	return nil
}

func (h KeyedStateHandle) validate(maxParallelism int) error {
	if err := h.Stream.validate(); err != nil {
		return err
	}
	kg := h.KeyGroups
	if kg.Start < 0 || kg.End < kg.Start || kg.End >= maxParallelism {
		return fmt.Errorf("key groups %s, expected a non-empty range within [0, %d]", kg, maxParallelism-1)
	}
	if len(h.Offsets) != kg.Len() {
		return fmt.Errorf("%d offsets for the %d key groups %s", len(h.Offsets), kg.Len(), kg)
	}
	return validOffsets(h.Offsets, h.Stream)
}

func (h OperatorStateHandle) validate() error {
	if err := h.Stream.validate(); err != nil {
		return err
	}
	for name, info := range h.States {
		if name == "" {
			return errors.New("operator state with an empty name")
		}
		if info.Mode > Broadcast {
			return fmt.Errorf("state %q has %s, expected split, union or broadcast", name, info.Mode)
		}
		if err := validOffsets(info.Offsets, h.Stream); err != nil {
			return fmt.Errorf("state %q: %w", name, err)
		}
	}
	return nil
}

// mapPaths returns a copy of m with every stream path replaced by f(path).
// Handle slices are copied; offsets and raw bytes are shared with m.
func (m *Metadata) mapPaths(f func(string) (string, error)) (*Metadata, error) {
	out := *m
	out.Operators = make([]OperatorState, len(m.Operators))
	for i, op := range m.Operators {
		subtasks := make([]SubtaskState, len(op.Subtasks))
		for j, st := range op.Subtasks {
			if st.Keyed != nil {
				keyed := make([]KeyedStateHandle, len(st.Keyed))
				for k, h := range st.Keyed {
					p, err := f(h.Stream.Path)
					if err != nil {
						return nil, err
					}
					h.Stream.Path = p
					keyed[k] = h
				}
				st.Keyed = keyed
			}
			if st.Operator != nil {
				opHandles := make([]OperatorStateHandle, len(st.Operator))
				for k, h := range st.Operator {
					p, err := f(h.Stream.Path)
					if err != nil {
						return nil, err
					}
					h.Stream.Path = p
					opHandles[k] = h
				}
				st.Operator = opHandles
			}
			subtasks[j] = st
		}
		if op.Subtasks != nil {
			op.Subtasks = subtasks
		}
		out.Operators[i] = op
	}
	if m.Operators == nil {
		out.Operators = nil
	}
	return &out, nil
}
