package ha

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// fsmHarness drives a jobStoreFSM with log entries, as raft would.
type fsmHarness struct {
	t     *testing.T
	fsm   *jobStoreFSM
	index uint64
}

func newFSMHarness(t *testing.T) *fsmHarness {
	return &fsmHarness{t: t, fsm: newJobStoreFSM()}
}

// apply encodes c and applies it as the next entry, appended in term.
func (h *fsmHarness) apply(term uint64, c command) applyResult {
	h.t.Helper()
	data, err := encodeCommand(&c)
	require.NoError(h.t, err)
	return h.applyRaw(term, data)
}

func (h *fsmHarness) applyRaw(term uint64, data []byte) applyResult {
	h.index++
	res, ok := h.fsm.Apply(&raft.Log{Index: h.index, Term: term, Type: raft.LogCommand, Data: data}).(applyResult)
	require.True(h.t, ok)
	return res
}

func fsmTok(term uint64) FencingToken { return FencingToken{Term: term, Leader: "jm-0"} }

func testJobSpec(id string) JobSpec {
	return JobSpec{ID: id, Name: "wordcount", Args: []string{"--in", "/data"}, Config: []byte{0x81, 0xa1, 0x70, 0x04}, Status: "CREATED"}
}

func fsmSubmit(id string, term uint64) command {
	s := testJobSpec(id)
	return command{Type: cmdSubmitJob, Token: fsmTok(term), Job: id, Spec: &s}
}

func fsmCommit(id string, term uint64, chk int64) command {
	return command{Type: cmdCommitCheckpoint, Token: fsmTok(term), Job: id,
		Checkpoint: CheckpointPointer{ID: chk, Location: "file:///chk/" + id}}
}

func TestJobStoreFSMApply(t *testing.T) {
	h := newFSMHarness(t)
	require.NoError(t, h.apply(1, fsmSubmit("job-a", 1)).err)
	require.NoError(t, h.apply(1, fsmSubmit("job-b", 1)).err)

	res := h.apply(1, fsmSubmit("job-a", 1))
	require.ErrorIs(t, res.err, ErrJobExists)

	require.NoError(t, h.apply(1, command{Type: cmdUpdateJobStatus, Token: fsmTok(1), Job: "job-a", Status: "RUNNING"}).err)
	require.ErrorIs(t, h.apply(1, command{Type: cmdUpdateJobStatus, Token: fsmTok(1), Job: "nope", Status: "RUNNING"}).err, ErrUnknownJob)

	// Checkpoint ids come from the counter, starting at 1.
	for want := int64(1); want <= 3; want++ {
		res := h.apply(1, command{Type: cmdNextCheckpointID, Token: fsmTok(1), Job: "job-a"})
		require.NoError(t, res.err)
		require.Equal(t, want, res.checkpointID)
	}
	require.NoError(t, h.apply(1, fsmCommit("job-a", 1, 2)).err)
	res = h.apply(1, fsmCommit("job-a", 1, 2))
	require.ErrorIs(t, res.err, ErrCheckpointNotNewer, "no checkpoint is committed twice")
	require.Contains(t, res.err.Error(), "latest committed is 2")
	require.ErrorIs(t, h.apply(1, fsmCommit("job-a", 1, 1)).err, ErrCheckpointNotNewer, "the pointer never moves back")

	// A commit beyond the counter moves the counter along.
	require.NoError(t, h.apply(1, fsmCommit("job-a", 1, 10)).err)
	res = h.apply(1, command{Type: cmdNextCheckpointID, Token: fsmTok(1), Job: "job-a"})
	require.NoError(t, res.err)
	require.Equal(t, int64(11), res.checkpointID)

	a, ok := h.fsm.job("job-a")
	require.True(t, ok)
	want := JobRecord{JobSpec: testJobSpec("job-a"), Latest: CheckpointPointer{ID: 10, Location: "file:///chk/job-a"}, CheckpointCounter: 11, Revision: h.index}
	want.Status = "RUNNING"
	require.Equal(t, want, a)

	require.NoError(t, h.apply(1, command{Type: cmdRemoveJob, Token: fsmTok(1), Job: "job-b"}).err)
	require.ErrorIs(t, h.apply(1, command{Type: cmdRemoveJob, Token: fsmTok(1), Job: "job-b"}).err, ErrUnknownJob)
	require.ErrorIs(t, h.apply(1, fsmCommit("job-b", 1, 1)).err, ErrUnknownJob)
	require.ErrorIs(t, h.apply(1, command{Type: cmdNextCheckpointID, Token: fsmTok(1), Job: "job-b"}).err, ErrUnknownJob)
	jobs := h.fsm.jobs()
	require.Len(t, jobs, 1)
	require.Equal(t, "job-a", jobs[0].ID)
}

// A command is accepted only in the term its token names: the entry's term
// is where the leader that appended it led, so a token of an earlier (or a
// later) leadership is stale, even on the same node.
func TestJobStoreFSMFencing(t *testing.T) {
	h := newFSMHarness(t)
	require.NoError(t, h.apply(3, fsmSubmit("job", 3)).err)
	before := h.fsm.jobs()

	tests := []struct {
		name string
		term uint64 // of the entry
		cmd  command
	}{
		{"older token", 4, fsmCommit("job", 3, 1)},
		{"newer token", 4, fsmCommit("job", 5, 1)},
		{"status", 5, command{Type: cmdUpdateJobStatus, Token: fsmTok(4), Job: "job", Status: "FAILED"}},
		{"remove", 5, command{Type: cmdRemoveJob, Token: fsmTok(4), Job: "job"}},
		{"next id", 5, command{Type: cmdNextCheckpointID, Token: fsmTok(4), Job: "job"}},
		{"submit", 5, fsmSubmit("other", 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.apply(tt.term, tt.cmd)
			require.ErrorIs(t, res.err, ErrStaleToken)
			require.Contains(t, res.err.Error(), "appended in term")
			require.Equal(t, before, h.fsm.jobs(), "a rejected command leaves the store unchanged")
		})
	}
	require.NoError(t, h.apply(6, fsmCommit("job", 6, 1)).err)
}

func TestJobStoreFSMRejectsMalformedEntries(t *testing.T) {
	h := newFSMHarness(t)
	require.NoError(t, h.apply(1, fsmSubmit("job", 1)).err)
	before := h.fsm.jobs()
	good, err := encodeCommand(&command{Type: cmdUpdateJobStatus, Token: fsmTok(1), Job: "job", Status: "RUNNING"})
	require.NoError(t, err)
	flipped := bytes.Clone(good)
	flipped[3] ^= 0x40
	for name, data := range map[string][]byte{
		"empty":     nil,
		"short":     {byte(cmdRemoveJob), 0x80},
		"truncated": good[:len(good)-1],
		"flipped":   flipped,
		"unknown":   frameCommand(append([]byte{0x7f}, good[1:len(good)-4]...)),
	} {
		res := h.applyRaw(1, data)
		require.ErrorIs(t, res.err, ErrMalformedCommand, name)
		require.Equal(t, before, h.fsm.jobs(), name)
	}
}

// frameCommand returns body followed by its CRC-32C: a command frame.
func frameCommand(body []byte) []byte {
	return binary.BigEndian.AppendUint32(bytes.Clone(body), testCRC32C(body))
}

func testCRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func TestEncodeCommandValidates(t *testing.T) {
	spec := testJobSpec("a")
	noName := spec
	noName.Name = ""
	tests := []struct {
		name string
		cmd  command
		want error
	}{
		{"zero token", command{Type: cmdRemoveJob, Job: "a"}, ErrStaleToken},
		{"no job", command{Type: cmdRemoveJob, Token: fsmTok(1)}, ErrInvalidJob},
		{"no spec", command{Type: cmdSubmitJob, Token: fsmTok(1), Job: "a"}, ErrInvalidJob},
		{"spec id differs", command{Type: cmdSubmitJob, Token: fsmTok(1), Job: "b", Spec: &spec}, ErrInvalidJob},
		{"no name", command{Type: cmdSubmitJob, Token: fsmTok(1), Job: "a", Spec: &noName}, ErrInvalidJob},
		{"no status", command{Type: cmdUpdateJobStatus, Token: fsmTok(1), Job: "a"}, ErrInvalidJob},
		{"checkpoint id 0", command{Type: cmdCommitCheckpoint, Token: fsmTok(1), Job: "a", Checkpoint: CheckpointPointer{Location: "x"}}, ErrInvalidJob},
		{"no location", command{Type: cmdCommitCheckpoint, Token: fsmTok(1), Job: "a", Checkpoint: CheckpointPointer{ID: 1}}, ErrInvalidJob},
		{"unknown type", command{Type: 99, Token: fsmTok(1), Job: "a"}, ErrMalformedCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := encodeCommand(&tt.cmd)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range []command{
		fsmSubmit("job-1", 7),
		{Type: cmdUpdateJobStatus, Token: fsmTok(7), Job: "job-1", Status: "RUNNING"},
		{Type: cmdRemoveJob, Token: fsmTok(7), Job: "job-1"},
		fsmCommit("job-1", 7, 42),
		{Type: cmdNextCheckpointID, Token: fsmTok(7), Job: "job-1"},
	} {
		b, err := encodeCommand(&c)
		require.NoError(t, err)
		got, err := decodeCommand(b)
		require.NoError(t, err)
		require.Equal(t, c, got)
	}
}

// persistSnapshot persists a snapshot of f and returns its bytes.
func persistSnapshot(t *testing.T, f *jobStoreFSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	require.NoError(t, err)
	sink := &memSnapshotSink{}
	require.NoError(t, snap.Persist(sink))
	snap.Release()
	require.True(t, sink.closed)
	return sink.Bytes()
}

// memSnapshotSink is a raft.SnapshotSink in memory.
type memSnapshotSink struct {
	bytes.Buffer
	closed, canceled bool
}

func (s *memSnapshotSink) ID() string    { return "mem" }
func (s *memSnapshotSink) Close() error  { s.closed = true; return nil }
func (s *memSnapshotSink) Cancel() error { s.canceled = true; return nil }

func TestJobStoreFSMSnapshotRestore(t *testing.T) {
	h := newFSMHarness(t)
	for _, id := range []string{"c", "a", "b"} {
		require.NoError(t, h.apply(2, fsmSubmit(id, 2)).err)
	}
	require.NoError(t, h.apply(2, fsmCommit("b", 2, 5)).err)
	want := h.fsm.jobs()
	snap := persistSnapshot(t, h.fsm)

	// The snapshot is a copy: later commands do not change it.
	require.NoError(t, h.apply(2, command{Type: cmdRemoveJob, Token: fsmTok(2), Job: "a"}).err)
	require.Equal(t, snap, persistSnapshot(t, func() *jobStoreFSM {
		f := newJobStoreFSM()
		require.NoError(t, f.Restore(io.NopCloser(bytes.NewReader(snap))))
		return f
	}()))

	f := newJobStoreFSM()
	require.NoError(t, f.Restore(io.NopCloser(bytes.NewReader(snap))))
	require.Equal(t, want, f.jobs())

	empty := persistSnapshot(t, newJobStoreFSM())
	require.NoError(t, f.Restore(io.NopCloser(bytes.NewReader(empty))))
	require.Empty(t, f.jobs())
}

func TestDecodeSnapshotCorrupt(t *testing.T) {
	h := newFSMHarness(t)
	require.NoError(t, h.apply(1, fsmSubmit("a", 1)).err)
	require.NoError(t, h.apply(1, fsmCommit("a", 1, 3)).err)
	good := persistSnapshot(t, h.fsm)

	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	// withBody builds a snapshot with a valid header and checksum around
	// body, to reach the body's decoder.
	withBody := func(body []byte) []byte {
		b := append([]byte(snapshotMagic), snapshotVersion1)
		b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
		b = append(b, body...)
		return binary.BigEndian.AppendUint32(b, testCRC32C(b))
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "expected a 9-byte header"},
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), "magic"},
		{"future version", mutate(func(b []byte) []byte { b[4] = 9; return b }), "format version 9"},
		{"truncated", good[:len(good)-3], "truncated"},
		{"length too large", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[5:], 1<<31); return b }), "truncated"},
		{"trailing", append(bytes.Clone(good), 0), "trailing bytes"},
		{"flipped bit", mutate(func(b []byte) []byte { b[12] ^= 1; return b }), "checksum"},
		{"not an array", withBody([]byte{0xc0 + 3}), "job array"},
		{"huge array", withBody([]byte{0xdd, 0x7f, 0xff, 0xff, 0xff}), "jobs announced"},
		{"invalid record", withBody([]byte{0x91, 0x80}), "empty job id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeSnapshot(bytes.NewReader(tt.data))
			require.ErrorIs(t, err, ErrCorruptSnapshot)
			require.Contains(t, err.Error(), tt.want)

			// Restore keeps the state it had.
			before := h.fsm.jobs()
			require.ErrorIs(t, h.fsm.Restore(io.NopCloser(bytes.NewReader(tt.data))), ErrCorruptSnapshot)
			require.Equal(t, before, h.fsm.jobs())
		})
	}
}

func TestDecodeSnapshotRejectsInconsistentRecords(t *testing.T) {
	enc := func(jobs ...JobRecord) []byte {
		var b bytes.Buffer
		require.NoError(t, encodeSnapshot(&b, jobs))
		return b.Bytes()
	}
	a := JobRecord{JobSpec: testJobSpec("a"), Revision: 1}
	b := JobRecord{JobSpec: testJobSpec("b"), Revision: 2}
	counterBehind := a
	counterBehind.Latest = CheckpointPointer{ID: 5, Location: "x"}
	counterBehind.CheckpointCounter = 4
	for name, tt := range map[string]struct {
		data []byte
		want string
	}{
		"unsorted":       {enc(b, a), "not after"},
		"duplicate":      {enc(a, a), "not after"},
		"counter behind": {enc(counterBehind), "counter 4 below latest checkpoint 5"},
	} {
		_, err := decodeSnapshot(bytes.NewReader(tt.data))
		require.ErrorIs(t, err, ErrCorruptSnapshot, name)
		require.Contains(t, err.Error(), tt.want, name)
	}
	jobs, err := decodeSnapshot(bytes.NewReader(enc(a, b)))
	require.NoError(t, err)
	require.Equal(t, []JobRecord{a, b}, jobs)
}

func TestFencingTokenString(t *testing.T) {
	require.Equal(t, "none", FencingToken{}.String())
	require.Equal(t, "term 7 leader jm-1", FencingToken{Term: 7, Leader: "jm-1"}.String())
	require.True(t, FencingToken{}.IsZero())
}
