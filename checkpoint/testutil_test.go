package checkpoint

import (
	"context"
	"io"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/state"
)

// storageFactory makes an empty storage for one test, and a function that
// lists every object or file it holds (temporary files and incomplete
// uploads included), to check that nothing is left behind.
type storageFactory func(t *testing.T) (Storage, func() []string)

func newFileFactory(t *testing.T) (Storage, func() []string) {
	dir := t.TempDir()
	s, err := NewFileStorage(FileStorageConfig{Dir: dir})
	require.NoError(t, err)
	return s, func() []string { return walkFiles(t, dir) }
}

func newMemFactory(t *testing.T) (Storage, func() []string) {
	s := NewMemStorage()
	return s, s.Paths
}

func newS3Factory(t *testing.T) (Storage, func() []string) { return newTestS3Storage(t) }

// walkFiles lists the regular files under dir.
func walkFiles(t *testing.T, dir string) []string {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// writeStream writes data as a stream in chunks and returns its handle.
func writeStream(t *testing.T, ctx context.Context, s Storage, loc Location, name string, data []byte) StreamHandle {
	t.Helper()
	w, err := s.CreateStream(ctx, loc, name)
	require.NoError(t, err)
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1000)
		require.Equal(t, int64(off), w.Pos())
		k, err := w.Write(data[off : off+n])
		require.NoError(t, err)
		require.Equal(t, n, k)
		off += n
	}
	h, err := w.Close()
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), h.Size)
	return h
}

func readStream(t *testing.T, ctx context.Context, s Storage, h StreamHandle) []byte {
	t.Helper()
	r, err := s.OpenStream(ctx, h)
	require.NoError(t, err)
	defer r.Close()
	require.Equal(t, h.Size, r.Size())
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	return data
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// testMetadata returns valid metadata for checkpoint id of job whose
// operator refers to the given keyed and operator state streams.
func testMetadata(job string, id int64, keyed, op StreamHandle) *Metadata {
	m := &Metadata{
		JobID:        job,
		JobName:      "wordcount",
		CheckpointID: id,
		Timestamp:    time.Date(2025, 3, 1, 12, 0, 0, 123_000_000, time.UTC),
		Operators: []OperatorState{{
			OperatorID:     "op-1",
			UID:            "counter",
			Parallelism:    2,
			MaxParallelism: 8,
			Subtasks: []SubtaskState{
				{
					Keyed: []KeyedStateHandle{{
						Stream:    keyed,
						KeyGroups: state.KeyGroupRange{Start: 0, End: 3},
						Offsets:   []int64{0, keyed.Size / 4, keyed.Size / 2, keyed.Size},
					}},
					Operator: []OperatorStateHandle{{
						Stream: op,
						States: map[string]OperatorStateInfo{
							"offsets": {Offsets: []int64{0, op.Size / 2}, Mode: SplitDistribute},
							"members": {Offsets: []int64{op.Size}, Mode: Union},
						},
					}},
					Raw: map[string][]byte{"source-position": {1, 2, 3}},
				},
				{},
			},
		}},
	}
	if keyed.Path == "" {
		m.Operators[0].Subtasks[0].Keyed = nil
	}
	if op.Path == "" {
		m.Operators[0].Subtasks[0].Operator = nil
	}
	return m
}
