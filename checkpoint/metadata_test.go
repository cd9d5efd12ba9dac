package checkpoint

import (
	"bytes"
	"encoding/binary"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/state"
)

var update = flag.Bool("update", false, "rewrite testdata/metadata-v1.golden and the fuzz seed corpus")

// goldenMetadata is the metadata encoded in testdata/metadata-v1.golden.
func goldenMetadata() *Metadata {
	m := testMetadata("3f9a0c1d2e4b5a6978877665544332211", 42,
		StreamHandle{Path: "keyed-0", Size: 400},
		StreamHandle{Path: "/abs/op-0", Size: 50})
	m.Operators = append(m.Operators, OperatorState{
		OperatorID: "op-2", Parallelism: 1, MaxParallelism: 128,
		Subtasks: []SubtaskState{{Operator: []OperatorStateHandle{{
			Stream: StreamHandle{Path: "bcast", Size: 10},
			States: map[string]OperatorStateInfo{"rules": {Offsets: []int64{0}, Mode: Broadcast}},
		}}}},
	})
	return m
}

func TestMetadataRoundTrip(t *testing.T) {
	m := goldenMetadata()
	data, err := EncodeMetadata(m)
	require.NoError(t, err)
	got, err := DecodeMetadata(data)
	require.NoError(t, err)
	m.Version = MetadataVersion
	require.Equal(t, m, got)

	again, err := EncodeMetadata(got)
	require.NoError(t, err)
	require.Equal(t, data, again, "encoding is deterministic")
}

func TestMetadataEncodingDeterministic(t *testing.T) {
	m := goldenMetadata()
	st := &m.Operators[0].Subtasks[0]
	for i := range 20 {
		name := string(rune('a' + i))
		st.Raw[name] = []byte(name)
		st.Operator[0].States[name] = OperatorStateInfo{Offsets: []int64{int64(i)}}
	}
	first, err := EncodeMetadata(m)
	require.NoError(t, err)
	for range 10 {
		again, err := EncodeMetadata(m)
		require.NoError(t, err)
		require.Equal(t, first, again)
	}
}

// TestMetadataGolden pins the format: a change to the encoding that would
// make old files unreadable fails here. Run with -update after a deliberate
// format change (and bump MetadataVersion).
func TestMetadataGolden(t *testing.T) {
	path := filepath.Join("testdata", "metadata-v1.golden")
	data, err := EncodeMetadata(goldenMetadata())
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(path, data, 0o644))
	}
	golden, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, golden, data)
	got, err := DecodeMetadata(golden)
	require.NoError(t, err)
	want := goldenMetadata()
	want.Version = 1
	require.Equal(t, want, got)
}

// frame wraps body in a valid header with the given version.
func frame(version uint32, body []byte) []byte {
	out := make([]byte, metadataHeaderSize+len(body))
	binary.BigEndian.PutUint32(out, MetadataMagic)
	binary.BigEndian.PutUint32(out[4:], version)
	binary.BigEndian.PutUint64(out[8:], uint64(len(body)))
	binary.BigEndian.PutUint32(out[16:], crc32.Checksum(body, castagnoli))
	copy(out[metadataHeaderSize:], body)
	return out
}

func TestDecodeMetadataBadInput(t *testing.T) {
	good, err := EncodeMetadata(goldenMetadata())
	require.NoError(t, err)
	body := good[metadataHeaderSize:]
	with := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	invalid := goldenMetadata()
	invalid.Operators[0].MaxParallelism = 1 // below parallelism 2
	invalidBody, err := encodeBodyUnchecked(invalid)
	require.NoError(t, err)

	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "0 bytes, expected at least a 20-byte header"},
		{"three bytes", []byte("FGC"), ErrTruncated, "3 bytes"},
		{"wrong magic", with(func(b []byte) { b[0] = 'X' }), ErrBadMagic, "expected magic 0x4647434b, found 0x5847434b"},
		{"json", []byte(`{"job_id": "x"}`), ErrBadMagic, "expected magic 0x4647434b"},
		{"header truncated", good[:10], ErrTruncated, "10 bytes, expected at least a 20-byte header"},
		{"version 0", frame(0, body), ErrUnsupportedVersion, "expected version 1, found 0"},
		{"version 2", frame(2, body), ErrUnsupportedVersion, "expected version 1, found 2"},
		{"body truncated", good[:len(good)-1], ErrTruncated, "body, found"},
		{"header only", good[:metadataHeaderSize], ErrTruncated, "found 0 bytes"},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt, "trailing data"},
		{"flipped body bit", with(func(b []byte) { b[len(b)/2] ^= 1 }), ErrCorrupt, "checksum expected"},
		{"flipped checksum", with(func(b []byte) { b[17] ^= 1 }), ErrCorrupt, "checksum expected"},
		{"huge length", with(func(b []byte) { binary.BigEndian.PutUint64(b[8:], 1<<62) }), ErrTruncated, "announces a 4611686018427387904-byte body"},
		{"garbage body", frame(1, []byte{0xc1, 0xc1}), ErrCorrupt, "invalid msgpack code 0xc1 at byte 0"},
		{"body of wrong type", frame(1, []byte{0x93, 1, 2, 3}), ErrCorrupt, "decode metadata body"},
		{"two values", frame(1, append(bytes.Clone(body), 0xc0)), ErrCorrupt, "1 bytes after the msgpack value"},
		{"huge array", frame(1, []byte{0x81, 0xa9, 'o', 'p', 'e', 'r', 'a', 't', 'o', 'r', 's', 0xdd, 0x82, 0xa6, 0x73, 0x74}),
			ErrCorrupt, "array of 2191946612 elements at byte 16, only 0 bytes left"},
		{"huge map", frame(1, []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}), ErrCorrupt, "map of 4294967295 entries"},
		{"huge string", frame(1, []byte{0x81, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'}), ErrCorrupt, "2147483647-byte payload, 1 bytes left"},
		{"nil timestamp", frame(1, []byte("\x83\xa6job_id\xa1j\xadcheckpoint_id\x01\xa9timestamp\xc0")),
			ErrCorrupt, "decode metadata body"},
		{"deep nesting", frame(1, bytes.Repeat([]byte{0x91}, 100)), ErrCorrupt, "nested deeper than 64"},
		{"invalid content", frame(1, invalidBody), ErrInvalidMetadata, "parallelism 2 and max parallelism 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeMetadata(tc.data)
			require.Nil(t, m)
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.msg)
			require.True(t, strings.HasPrefix(err.Error(), "checkpoint: "), err.Error())
		})
	}
}

// encodeBodyUnchecked encodes m's body without validating it.
func encodeBodyUnchecked(m *Metadata) ([]byte, error) {
	var buf bytes.Buffer
	err := newBodyEncoder(&buf).Encode(m)
	return buf.Bytes(), err
}

func TestMetadataValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *Metadata)
		msg    string
	}{
		{"no job id", func(m *Metadata) { m.JobID = "" }, "empty job id"},
		{"checkpoint id 0", func(m *Metadata) { m.CheckpointID = 0 }, "checkpoint id must be >= 1, found 0"},
		{"empty operator id", func(m *Metadata) { m.Operators[0].OperatorID = "" }, "operator 0 has an empty id"},
		{"duplicate operator", func(m *Metadata) { m.Operators = append(m.Operators, m.Operators[0]) }, `operator "op-1" appears twice`},
		{"parallelism 0", func(m *Metadata) { m.Operators[0].Parallelism = 0 }, "found parallelism 0"},
		{"max parallelism too big", func(m *Metadata) { m.Operators[0].MaxParallelism = state.UpperBoundMaxParallelism + 1 }, "max parallelism 32769"},
		{"too many subtasks", func(m *Metadata) { m.Operators[0].Parallelism = 1 }, "2 subtask states for parallelism 1"},
		{"empty stream path", func(m *Metadata) { m.Operators[0].Subtasks[0].Keyed[0].Stream.Path = "" }, "empty path"},
		{"negative size", func(m *Metadata) { m.Operators[0].Subtasks[0].Keyed[0].Stream.Size = -1 }, "negative size -1"},
		{"key groups outside", func(m *Metadata) {
			m.Operators[0].Subtasks[0].Keyed[0].KeyGroups = state.KeyGroupRange{Start: 5, End: 8}
		}, "key groups [5, 8], expected a non-empty range within [0, 7]"},
		{"empty key groups", func(m *Metadata) {
			m.Operators[0].Subtasks[0].Keyed[0].KeyGroups = state.KeyGroupRange{Start: 3, End: 2}
		}, "key groups [3, 2]"},
		{"offset count", func(m *Metadata) { m.Operators[0].Subtasks[0].Keyed[0].Offsets = []int64{0} }, "1 offsets for the 4 key groups [0, 3]"},
		{"offset past end", func(m *Metadata) { m.Operators[0].Subtasks[0].Keyed[0].Offsets[3] = 401 }, "offset 3 is 401, expected within the 400-byte stream"},
		{"negative offset", func(m *Metadata) { m.Operators[0].Subtasks[0].Operator[0].States["offsets"].Offsets[0] = -1 }, `state "offsets": offset 0 is -1`},
		{"bad mode", func(m *Metadata) {
			m.Operators[0].Subtasks[0].Operator[0].States["members"] = OperatorStateInfo{Mode: 7}
		}, "has DistributionMode(7), expected split, union or broadcast"},
		{"empty state name", func(m *Metadata) {
			m.Operators[0].Subtasks[0].Operator[0].States[""] = OperatorStateInfo{}
		}, "operator state with an empty name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := goldenMetadata()
			tc.modify(m)
			err := m.Validate()
			require.ErrorIs(t, err, ErrInvalidMetadata)
			require.ErrorContains(t, err, tc.msg)
			_, err = EncodeMetadata(m)
			require.ErrorIs(t, err, ErrInvalidMetadata, "EncodeMetadata validates")
		})
	}
	require.NoError(t, goldenMetadata().Validate())
	_, err := EncodeMetadata(nil)
	require.ErrorIs(t, err, ErrInvalidMetadata)
}

// TestCheckMsgpackAcceptsEncoderOutput: the length check accepts every
// format the encoder produces.
func TestCheckMsgpackAcceptsEncoderOutput(t *testing.T) {
	long := strings.Repeat("x", 70000)
	values := []any{
		nil, true, false, 0, 1, -1, 127, 128, -33, 255, 256, -129, 65535, 65536, -32769,
		int64(1) << 40, -(int64(1) << 40), uint64(1) << 63, float32(1.5), 2.5,
		"", "short", strings.Repeat("y", 40), strings.Repeat("z", 300), long,
		[]byte{}, []byte("bin"), bytes.Repeat([]byte{1}, 300), []byte(long),
		make([]int, 20), make([]int, 70000), map[string]int{"a": 1}, bigMap(20), bigMap(70000),
		time.Unix(1, 0), time.Unix(1<<33, 5), time.Unix(1, 5),
		goldenMetadata(), []any{[]any{map[string]any{"k": []any{nil}}}},
	}
	for i, v := range values {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, checkMsgpack(b), "value %d (%T)", i, v)
		if len(b) > 1 {
			require.Error(t, checkMsgpack(b[:len(b)-1]), "truncated value %d (%T)", i, v)
		}
	}
	require.Error(t, checkMsgpack(nil))
}

func bigMap(n int) map[string]int {
	m := make(map[string]int, n)
	for i := range n {
		m[strconv.Itoa(i)] = i
	}
	return m
}

func TestDistributionModeString(t *testing.T) {
	require.Equal(t, "split", SplitDistribute.String())
	require.Equal(t, "union", Union.String())
	require.Equal(t, "broadcast", Broadcast.String())
	require.Equal(t, "DistributionMode(9)", DistributionMode(9).String())
}

func BenchmarkEncodeMetadata(b *testing.B) {
	m := bigMetadata(8, 32)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		data, err := EncodeMetadata(m)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size), "bytes/op")
}

func BenchmarkDecodeMetadata(b *testing.B) {
	data, err := EncodeMetadata(bigMetadata(8, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeMetadata(data); err != nil {
			b.Fatal(err)
		}
	}
}

// bigMetadata has ops operators of parallelism par with keyed and operator
// state in every subtask.
func bigMetadata(ops, par int) *Metadata {
	m := &Metadata{JobID: "job", CheckpointID: 1}
	for o := range ops {
		op := OperatorState{OperatorID: "op-" + string(rune('a'+o)), Parallelism: par, MaxParallelism: 128}
		for i := range par {
			kg := state.KeyGroupRangeForSubtask(128, par, i)
			offsets := make([]int64, kg.Len())
			for k := range offsets {
				offsets[k] = int64(k * 100)
			}
			h := StreamHandle{Path: "keyed", Size: int64(kg.Len() * 100)}
			op.Subtasks = append(op.Subtasks, SubtaskState{
				Keyed: []KeyedStateHandle{{Stream: h, KeyGroups: kg, Offsets: offsets}},
				Operator: []OperatorStateHandle{{Stream: StreamHandle{Path: "op", Size: 10},
					States: map[string]OperatorStateInfo{"s": {Offsets: []int64{0, 5}}}}},
			})
		}
		m.Operators = append(m.Operators, op)
	}
	return m
}
