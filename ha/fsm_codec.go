package ha

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// castagnoli is the CRC-32C table of commands and snapshots.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// commandType is the first byte of an encoded command.
type commandType byte

// The command types. Values are part of the log format: never reuse one.
const (
	cmdSubmitJob        commandType = 1
	cmdUpdateJobStatus  commandType = 2
	cmdRemoveJob        commandType = 3
	cmdCommitCheckpoint commandType = 4
	cmdNextCheckpointID commandType = 5
	cmdRecordRestarts   commandType = 6
)

// String returns the command's name, as in error messages.
func (t commandType) String() string {
	switch t {
	case cmdSubmitJob:
		return "submit job"
	case cmdUpdateJobStatus:
		return "update job status"
	case cmdRemoveJob:
		return "remove job"
	case cmdCommitCheckpoint:
		return "commit checkpoint"
	case cmdNextCheckpointID:
		return "next checkpoint id"
	case cmdRecordRestarts:
		return "record restarts"
	}
	return fmt.Sprintf("command type %#x", byte(t))
}

// maxCommandSize bounds an encoded command. Raft entries of the job store
// are small; a larger one is a bug or corruption, never a job.
const maxCommandSize = 1 << 20

// command is one change to the job store, as replicated through Raft. Its
// wire form is the type byte, a msgpack map of the fields that type uses,
// and the CRC-32C (big endian) of both. Fields added later are omitted
// when empty, so that a binary that predates them reads the command as
// before (msgpack skips keys it does not know).
type command struct {
	Type       commandType       `msgpack:"-"`
	Token      FencingToken      `msgpack:"tok"`
	Job        string            `msgpack:"job"`
	Spec       *JobSpec          `msgpack:"spec,omitempty"`
	Status     string            `msgpack:"st,omitempty"`
	Checkpoint CheckpointPointer `msgpack:"chk,omitempty"`
	// Restarts is the job's restart count (update job status, record
	// restarts); the record keeps the highest it was given.
	Restarts int64 `msgpack:"rst,omitempty"`
	// EndTime is when the job ended, in Unix milliseconds (update job
	// status); zero leaves the record's end time as it is.
	EndTime int64 `msgpack:"end,omitempty"`
}

// validate reports whether c has the fields its type needs. It does not
// look at the store; see jobStoreFSM.apply.
func (c *command) validate() error {
	if c.Token.IsZero() {
		return fmt.Errorf("%w: %v: zero fencing token", ErrStaleToken, c.Type)
	}
	if c.Job == "" {
		return fmt.Errorf("%w: %v: empty job id", ErrInvalidJob, c.Type)
	}
	if c.Restarts < 0 {
		return fmt.Errorf("%w: %v for job %q: %d restarts, expected >= 0", ErrInvalidJob, c.Type, c.Job, c.Restarts)
	}
	if c.EndTime < 0 {
		return fmt.Errorf("%w: %v for job %q: end time %d, expected Unix milliseconds >= 0", ErrInvalidJob, c.Type, c.Job, c.EndTime)
	}
	switch c.Type {
	case cmdSubmitJob:
		if c.Spec == nil {
			return fmt.Errorf("%w: submit job %q: no job spec", ErrInvalidJob, c.Job)
		}
		if c.Spec.ID != c.Job {
			return fmt.Errorf("%w: submit job %q: spec has id %q", ErrInvalidJob, c.Job, c.Spec.ID)
		}
		return c.Spec.Validate()
	case cmdUpdateJobStatus:
		if c.Status == "" {
			return fmt.Errorf("%w: job %q: empty status", ErrInvalidJob, c.Job)
		}
	case cmdCommitCheckpoint:
		return c.Checkpoint.validate(c.Job)
	case cmdRecordRestarts:
		if c.Restarts < 1 {
			return fmt.Errorf("%w: record restarts for job %q: %d restarts, expected >= 1", ErrInvalidJob, c.Job, c.Restarts)
		}
	case cmdRemoveJob, cmdNextCheckpointID:
	default:
		return fmt.Errorf("%w: unknown %v", ErrMalformedCommand, c.Type)
	}
	return nil
}

// encodeCommand validates c and returns its wire form, newly allocated.
func encodeCommand(c *command) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte(byte(c.Type))
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetOmitEmpty(true)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("ha: encode %v for job %q: %w", c.Type, c.Job, err)
	}
	if buf.Len()+crc32.Size > maxCommandSize {
		return nil, fmt.Errorf("%w: %v for job %q is %d bytes, limit %d",
			ErrInvalidJob, c.Type, c.Job, buf.Len()+crc32.Size, maxCommandSize)
	}
	return binary.BigEndian.AppendUint32(buf.Bytes(), crc32.Checksum(buf.Bytes(), castagnoli)), nil
}

// decodeCommand parses a command's wire form. Malformed input, including a
// well-formed command that fails validation, is reported with an error
// wrapping ErrMalformedCommand; it never panics. b is not retained.
func decodeCommand(b []byte) (command, error) {
	var c command
	const minLen = 1 + 1 + crc32.Size // type, an empty map, checksum
	switch {
	case len(b) < minLen:
		return c, fmt.Errorf("%w: %d bytes, expected at least %d", ErrMalformedCommand, len(b), minLen)
	case len(b) > maxCommandSize:
		return c, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformedCommand, len(b), maxCommandSize)
	}
	body, sum := b[:len(b)-crc32.Size], binary.BigEndian.Uint32(b[len(b)-crc32.Size:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return c, fmt.Errorf("%w: checksum %#08x, expected %#08x", ErrMalformedCommand, got, sum)
	}
	c.Type = commandType(body[0])
	if err := decodeExact(body[1:], &c); err != nil {
		return command{}, fmt.Errorf("%w: %v: %w", ErrMalformedCommand, c.Type, err)
	}
	c.Type = commandType(body[0]) // the msgpack body cannot set it, but be explicit
	if err := c.validate(); err != nil {
		return command{}, fmt.Errorf("%w: %w", ErrMalformedCommand, err)
	}
	return c, nil
}

// decodeExact decodes one msgpack value from b into v and fails if bytes
// are left over.
func decodeExact(b []byte, v any) error {
	r := bytes.NewReader(b)
	dec := msgpack.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d trailing bytes", r.Len())
	}
	return nil
}

// The snapshot format: a header of snapshotMagic, one version byte and the
// body's length (uint32, big endian); the body, a msgpack array of
// JobRecord sorted by id; and the CRC-32C (big endian) of header and body.
const (
	snapshotMagic     = "FLJS" // FLink Job Store
	snapshotVersion1  = byte(1)
	snapshotHeaderLen = len(snapshotMagic) + 1 + 4
)

// encodeSnapshot writes the snapshot of jobs, which must be sorted by id,
// to w.
func encodeSnapshot(w io.Writer, jobs []JobRecord) error {
	var body bytes.Buffer
	enc := msgpack.NewEncoder(&body)
	enc.UseCompactInts(true)
	enc.SetOmitEmpty(true)
	if err := enc.EncodeArrayLen(len(jobs)); err != nil {
		return fmt.Errorf("ha: encode job store snapshot: %w", err)
	}
	for i := range jobs {
		if err := enc.Encode(&jobs[i]); err != nil {
			return fmt.Errorf("ha: encode job store snapshot: job %q: %w", jobs[i].ID, err)
		}
	}
	if body.Len() > 1<<32-1 {
		return fmt.Errorf("ha: encode job store snapshot: %d bytes, limit 4 GiB", body.Len())
	}
	out := make([]byte, 0, snapshotHeaderLen+body.Len()+crc32.Size)
	out = append(out, snapshotMagic...)
	out = append(out, snapshotVersion1)
	out = binary.BigEndian.AppendUint32(out, uint32(body.Len()))
	out = append(out, body.Bytes()...)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("ha: write job store snapshot: %w", err)
	}
	return nil
}

// decodeSnapshot reads a snapshot written by encodeSnapshot from r, to its
// end. Damaged input is reported with an error wrapping ErrCorruptSnapshot
// that says what was expected and what was found; it never panics. The
// jobs are returned sorted by id.
func decodeSnapshot(r io.Reader) ([]JobRecord, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, args...))
	}
	header := make([]byte, snapshotHeaderLen)
	if n, err := io.ReadFull(r, header); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, corrupt("%d bytes, expected a %d-byte header", n, snapshotHeaderLen)
		}
		return nil, fmt.Errorf("ha: read job store snapshot: %w", err)
	}
	if magic := string(header[:len(snapshotMagic)]); magic != snapshotMagic {
		return nil, corrupt("magic %q, expected %q", magic, snapshotMagic)
	}
	if v := header[len(snapshotMagic)]; v != snapshotVersion1 {
		return nil, corrupt("format version %d, this binary reads version %d", v, snapshotVersion1)
	}
	bodyLen := int64(binary.BigEndian.Uint32(header[len(snapshotMagic)+1:]))
	// ReadAll grows its buffer as data arrives, so a damaged length cannot
	// make it allocate more than the input holds.
	rest, err := io.ReadAll(io.LimitReader(r, bodyLen+crc32.Size+1))
	if err != nil {
		return nil, fmt.Errorf("ha: read job store snapshot: %w", err)
	}
	switch got, want := int64(len(rest)), bodyLen+crc32.Size; {
	case got < want:
		return nil, corrupt("truncated: the header announces a %d-byte body and a %d-byte checksum, found %d bytes",
			bodyLen, crc32.Size, got)
	case got > want:
		return nil, corrupt("trailing bytes after the %d-byte body and its checksum", bodyLen)
	}
	body := rest[:bodyLen]
	sum := binary.BigEndian.Uint32(rest[bodyLen:])
	crc := crc32.Update(crc32.Checksum(header, castagnoli), castagnoli, body)
	if crc != sum {
		return nil, corrupt("checksum %#08x, expected %#08x", crc, sum)
	}
	jobs, err := decodeSnapshotBody(body)
	if err != nil {
		return nil, corrupt("%v", err)
	}
	return jobs, nil
}

// decodeSnapshotBody decodes and validates the msgpack array of records.
func decodeSnapshotBody(body []byte) ([]JobRecord, error) {
	r := bytes.NewReader(body)
	dec := msgpack.NewDecoder(r)
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, fmt.Errorf("job array: %w", err)
	}
	if n < 0 {
		n = 0 // nil array
	}
	if n > r.Len() { // every record takes at least one byte
		return nil, fmt.Errorf("%d jobs announced in %d bytes", n, r.Len())
	}
	jobs := make([]JobRecord, n)
	for i := range jobs {
		if err := dec.Decode(&jobs[i]); err != nil {
			return nil, fmt.Errorf("job %d of %d: %w", i+1, n, err)
		}
		if err := jobs[i].validate(); err != nil {
			return nil, fmt.Errorf("job %d of %d: %w", i+1, n, err)
		}
		if i > 0 && jobs[i-1].ID >= jobs[i].ID {
			return nil, fmt.Errorf("job %d of %d: id %q not after %q", i+1, n, jobs[i].ID, jobs[i-1].ID)
		}
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return jobs, nil
}

// sortJobs sorts records by id, the order of snapshots and Jobs.
func sortJobs(jobs []JobRecord) {
	slices.SortFunc(jobs, func(a, b JobRecord) int { return strings.Compare(a.ID, b.ID) })
}
