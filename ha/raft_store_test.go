package ha

import (
	"bytes"
	"encoding/json"
	"hash/crc64"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// startSingleRaftNode starts a one-node group in dir and waits until it leads.
func startSingleRaftNode(t *testing.T, dir string) *RaftNode {
	t.Helper()
	_, tr := raft.NewInmemTransport("n1")
	cfg := testRaftConfig("n1", dir, tr)
	cfg.Bootstrap = []RaftPeer{{ID: "n1"}}
	n, err := NewRaftNode(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Shutdown() })
	require.Eventually(t, func() bool { return !n.Token().IsZero() }, raftWaitTimeout, 5*time.Millisecond)
	return n
}

// seedRaftDataDir leaves in dir the state of a one-node group that snapshotted
// after job "a" and then stored jobs "b" and "c" in its log only.
func seedRaftDataDir(t *testing.T, dir string) []JobRecord {
	t.Helper()
	n := startSingleRaftNode(t, dir)
	ctx := raftTestContext(t)
	tok := n.Token()
	require.NoError(t, n.SubmitJob(ctx, tok, testJobSpec("a")))
	for i := int64(1); i <= 3; i++ { // enough entries that the snapshot compacts the log
		require.NoError(t, n.CommitCheckpoint(ctx, tok, "a", CheckpointPointer{ID: i, Location: "loc"}))
	}
	require.NoError(t, n.Snapshot(ctx))
	require.NoError(t, n.SubmitJob(ctx, tok, testJobSpec("b")))
	require.NoError(t, n.SubmitJob(ctx, tok, testJobSpec("c")))
	jobs := n.Jobs()
	require.NoError(t, n.Shutdown())
	return jobs
}

// copyRaftDataDir copies the tree src to dst.
func copyRaftDataDir(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
}

// onlyFileMatching returns the one file matching pattern under dir.
func onlyFileMatching(t *testing.T, dir, pattern string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, pattern))
	require.NoError(t, err)
	require.Len(t, matches, 1, "files matching %s", pattern)
	return matches[0]
}

// Damaged state on disk is an error at start that names the file, never a
// node that silently starts from older state.
func TestRaftCorruptFilesAtStart(t *testing.T) {
	seed := t.TempDir()
	want := seedRaftDataDir(t, seed)

	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string) (file string)
		want    error
		detail  string
	}{
		{"snapshot state", func(t *testing.T, dir string) string {
			path := onlyFileMatching(t, dir, "snapshots/*/state.bin")
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			b[len(b)/2] ^= 0x10
			require.NoError(t, os.WriteFile(path, b, 0o600))
			return path
		}, ErrCorruptSnapshot, "CRC mismatch"},
		{"snapshot metadata", func(t *testing.T, dir string) string {
			path := onlyFileMatching(t, dir, "snapshots/*/meta.json")
			require.NoError(t, os.WriteFile(path, []byte(`{"Version":1,"ID":`), 0o600))
			return path
		}, ErrCorruptSnapshot, "unexpected end of JSON"},
		{"snapshot of another format", func(t *testing.T, dir string) string {
			// raft's checksum matches, the content is not a job store.
			path := onlyFileMatching(t, dir, "snapshots/*/state.bin")
			content := []byte("not a job store snapshot")
			require.NoError(t, os.WriteFile(path, content, 0o600))
			metaPath := filepath.Join(filepath.Dir(path), "meta.json")
			var meta map[string]any
			b, err := os.ReadFile(metaPath)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &meta))
			h := crc64.New(crc64.MakeTable(crc64.ECMA))
			h.Write(content)
			meta["CRC"], meta["Size"] = h.Sum(nil), len(content)
			b, err = json.Marshal(meta)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(metaPath, b, 0o600))
			return path
		}, ErrCorruptSnapshot, `magic "not "`},
		{"snapshot lost", func(t *testing.T, dir string) string {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, snapshotsDirName)))
			return onlyFileMatching(t, dir, "wal/*.wal")
		}, ErrCorruptLog, "entries 1-"},
		{"log metadata", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, walDirName, walMetaFileName)
			require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte{0xa5}, 32<<10), 0o600))
			return path
		}, ErrCorruptLog, ""},
		{"log segment damaged", func(t *testing.T, dir string) string {
			path := onlyFileMatching(t, dir, "wal/*.wal")
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			end := len(bytes.TrimRight(b, "\x00"))
			for i := 32; i < end; i++ { // every frame after the file header
				b[i] ^= 0xff
			}
			require.NoError(t, os.WriteFile(path, b, 0o600))
			return path
		}, ErrCorruptLog, ""},
		{"log segment lost", func(t *testing.T, dir string) string {
			path := onlyFileMatching(t, dir, "wal/*.wal")
			require.NoError(t, os.Remove(path))
			return path
		}, ErrCorruptLog, "were written durably"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyRaftDataDir(t, seed, dir)
			file := tt.corrupt(t, dir)
			_, tr := raft.NewInmemTransport("n1")
			n, err := NewRaftNode(testRaftConfig("n1", dir, tr))
			if err == nil {
				_ = n.Shutdown()
			}
			require.ErrorIs(t, err, tt.want)
			require.Contains(t, err.Error(), filepath.Base(file), "the error names the file")
			require.Contains(t, err.Error(), tt.detail)
			t.Log(err)

			// The lock was released: the node can be started once the
			// damage is repaired.
			require.NoError(t, os.RemoveAll(dir))
			copyRaftDataDir(t, seed, dir)
			n = startSingleRaftNode(t, dir)
			require.Eventually(t, func() bool { return len(n.Jobs()) == len(want) }, raftWaitTimeout, 5*time.Millisecond)
			require.NoError(t, n.Shutdown())
		})
	}
}

func TestRaftRestartResumesState(t *testing.T) {
	dir := t.TempDir()
	want := seedRaftDataDir(t, dir)
	_, tr := raft.NewInmemTransport("n1")
	n, err := NewRaftNode(testRaftConfig("n1", dir, tr)) // no Bootstrap: resumes
	require.NoError(t, err)
	defer n.Shutdown()
	require.Len(t, n.Jobs(), 1, "the snapshot is restored before the node starts")
	require.Eventually(t, func() bool { return !n.Token().IsZero() }, raftWaitTimeout, 5*time.Millisecond)
	require.Equal(t, want, n.Jobs(), "a leader's store holds every earlier command")

	_, tr2 := raft.NewInmemTransport("n1")
	_, err = NewRaftNode(testRaftConfig("n1", dir, tr2))
	require.ErrorIs(t, err, ErrDataDirLocked)
	require.Contains(t, err.Error(), filepath.Join(dir, lockFileName))
}

func TestRaftLogStoreDurableIndex(t *testing.T) {
	dir := t.TempDir()
	s, err := openLogStore(dir, 64<<10, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogNoop})
	}
	require.NoError(t, s.StoreLogs(logs))
	// A suffix deleted (a conflict with the leader's log) lowers the
	// durable index; a prefix deleted (compaction) does not.
	require.NoError(t, s.DeleteRange(8, 10))
	require.NoError(t, s.DeleteRange(1, 3))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "idempotent")

	s, err = openLogStore(dir, 64<<10, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, s.verify(3))
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	require.Equal(t, [2]uint64{4, 7}, [2]uint64{first, last})
	var l raft.Log
	require.ErrorIs(t, s.GetLog(2, &l), raft.ErrLogNotFound, "deleted entries stay deleted")
	require.ErrorIs(t, s.verify(2), ErrCorruptLog, "a gap between snapshot and log")
	// Everything deleted (after a snapshot is installed): nothing is owed.
	require.NoError(t, s.DeleteRange(4, 7))
	require.NoError(t, s.Close())

	s, err = openLogStore(dir, 64<<10, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, s.verify(7))
	require.NoError(t, s.Close())
}
