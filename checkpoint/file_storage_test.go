package checkpoint

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFileStorageLeftoverTempFiles simulates a crash after the metadata was
// written to its temporary file but before it was linked into place, and a
// crash in the middle of a stream: nothing is listed, and Delete cleans up.
func TestFileStorageLeftoverTempFiles(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	s, err := NewFileStorage(FileStorageConfig{Dir: dir})
	require.NoError(t, err)
	loc := CheckpointLocation(job, 1)
	k := writeStream(t, ctx, s, loc, "keyed", pattern(400, 0))
	o := writeStream(t, ctx, s, loc, "op", pattern(50, 0))
	data, err := EncodeMetadata(testMetadata(job, 1, k, o))
	require.NoError(t, err)
	cdir, err := s.LocationDir(loc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(cdir, "._metadata.12345.tmp"), data, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cdir, ".keyed2.777.tmp"), []byte("partial"), 0o644))

	ids, err := s.ListCheckpoints(ctx, job)
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = s.ReadMetadata(ctx, loc)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.OpenStream(ctx, StreamHandle{Path: filepath.Join(cdir, "keyed2"), Size: 7})
	require.ErrorIs(t, err, ErrNotFound)

	// A stream that was abandoned leaves only its hidden temporary file.
	w, err := s.CreateStream(ctx, loc, "abandoned")
	require.NoError(t, err)
	_, err = w.Write([]byte("half"))
	require.NoError(t, err)
	for _, p := range walkFiles(t, dir) {
		require.NotEqual(t, "abandoned", filepath.Base(p))
	}
	require.NoError(t, w.Abort())

	// A later checkpoint completes normally and is the only one listed.
	require.NoError(t, s.WriteMetadata(ctx, CheckpointLocation(job, 2), testMetadata(job, 2, StreamHandle{}, StreamHandle{})))
	ids, err = s.ListCheckpoints(ctx, job)
	require.NoError(t, err)
	require.Equal(t, []int64{2}, ids)

	require.NoError(t, s.Delete(ctx, loc))
	_, err = os.Stat(cdir)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestFileStorageCorruptMetadataOnDisk(t *testing.T) {
	ctx := testCtx(t)
	s, err := NewFileStorage(FileStorageConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	loc := CheckpointLocation(job, 1)
	require.NoError(t, s.WriteMetadata(ctx, loc, testMetadata(job, 1, StreamHandle{}, StreamHandle{})))
	cdir, _ := s.LocationDir(loc)
	p := filepath.Join(cdir, MetadataFileName)
	data, err := os.ReadFile(p)
	require.NoError(t, err)

	tests := []struct {
		name    string
		content []byte
		want    error
	}{
		{"truncated", data[:len(data)-3], ErrTruncated},
		{"empty", nil, ErrTruncated},
		{"zeroed", make([]byte, len(data)), ErrBadMagic},
		{"bit flip", func() []byte { b := append([]byte(nil), data...); b[40] ^= 4; return b }(), ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(p, tc.content, 0o644))
			_, err := s.ReadMetadata(ctx, loc)
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, p, "the error names the file")
		})
	}
}

// TestFileStorageSavepointRelocation moves a savepoint directory and reads
// it from its new place: its metadata refers to its streams relatively.
func TestFileStorageSavepointRelocation(t *testing.T) {
	ctx := testCtx(t)
	elsewhere := t.TempDir()
	s, err := NewFileStorage(FileStorageConfig{Dir: t.TempDir(), SavepointRoots: []string{elsewhere}})
	require.NoError(t, err)
	target := filepath.Join(elsewhere, "savepoint-1")
	loc := SavepointLocation(target)
	k := writeStream(t, ctx, s, loc, "keyed", pattern(400, 1))
	o := writeStream(t, ctx, s, loc, "op", pattern(50, 2))
	require.Equal(t, filepath.Join(target, "keyed"), k.Path)
	m := testMetadata(job, 1, k, o)
	m.IsSavepoint = true
	require.NoError(t, s.WriteMetadata(ctx, loc, m))

	raw, err := os.ReadFile(filepath.Join(target, MetadataFileName))
	require.NoError(t, err)
	stored, err := DecodeMetadata(raw)
	require.NoError(t, err)
	require.Equal(t, "keyed", stored.Operators[0].Subtasks[0].Keyed[0].Stream.Path, "stored relative")

	moved := filepath.Join(elsewhere, "moved")
	require.NoError(t, os.Rename(target, moved))
	got, err := s.ReadMetadata(ctx, SavepointLocation(moved))
	require.NoError(t, err)
	h := got.Operators[0].Subtasks[0].Keyed[0].Stream
	require.Equal(t, filepath.Join(moved, "keyed"), h.Path)
	require.Equal(t, pattern(400, 1), readStream(t, ctx, s, h))

	// A relative path escaping the directory is refused.
	bad := testMetadata(job, 1, StreamHandle{Path: "../outside", Size: 400}, StreamHandle{})
	bad.IsSavepoint = true
	data, err := EncodeMetadata(bad)
	require.NoError(t, err)
	evil := filepath.Join(elsewhere, "evil")
	require.NoError(t, os.MkdirAll(evil, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(evil, MetadataFileName), data, 0o644))
	_, err = s.ReadMetadata(ctx, SavepointLocation(evil))
	require.ErrorIs(t, err, ErrInvalidMetadata)
}

func TestFileStorageLocationDir(t *testing.T) {
	root := t.TempDir()
	s, err := NewFileStorage(FileStorageConfig{Dir: root})
	require.NoError(t, err)
	s2, err := NewFileStorage(FileStorageConfig{Dir: root, SavepointDir: "/sp"})
	require.NoError(t, err)
	tests := []struct {
		s    *FileStorage
		loc  Location
		want string
		err  error
	}{
		{s, CheckpointLocation("j", 7), filepath.Join(root, "j", "chk-7"), nil},
		{s, SavepointLocation("a/b"), filepath.Join(root, "_savepoints", "a", "b"), nil},
		{s2, SavepointLocation("a"), "/sp/a", nil},
		{s, SavepointLocation(filepath.Join(root, "sp")), filepath.Join(root, "sp"), nil},
		{s, SavepointLocation("/abs/sp"), "", ErrInvalidName},
		{s2, SavepointLocation("/sp"), "/sp", nil},
		{s, SavepointLocation("/"), "", ErrInvalidName},
		{s, SavepointLocation("/abs/../sp"), "", ErrInvalidName},
		{s, SavepointLocation("a/"), "", ErrInvalidName},
		{s, CheckpointLocation("j/k", 1), "", ErrInvalidName},
	}
	for _, tc := range tests {
		got, err := tc.s.LocationDir(tc.loc)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, "%+v", tc.loc)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
	require.Equal(t, root, s.Dir())
}

func TestFileStorageConfig(t *testing.T) {
	_, err := NewFileStorage(FileStorageConfig{})
	require.ErrorIs(t, err, ErrInvalidConfig)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err = NewFileStorage(FileStorageConfig{Dir: file})
	require.Error(t, err)
	_, err = NewFileStorage(FileStorageConfig{Dir: filepath.Join(file, "sub")})
	require.Error(t, err)
	// Relative dirs are made absolute.
	s, err := NewFileStorage(FileStorageConfig{Dir: "testdata"})
	require.NoError(t, err)
	require.True(t, filepath.IsAbs(s.Dir()))
	_, err = s.OpenStream(testCtx(t), StreamHandle{Path: "relative"})
	require.ErrorIs(t, err, ErrInvalidName)
}

func TestNoSpaceWrapping(t *testing.T) {
	err := noSpace(&fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC})
	require.ErrorIs(t, err, ErrNoSpace)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.True(t, strings.HasPrefix(err.Error(), "checkpoint: no space left"))
	require.ErrorIs(t, noSpace(syscall.EDQUOT), ErrNoSpace)
	require.NotErrorIs(t, noSpace(syscall.EIO), ErrNoSpace)
	require.NoError(t, noSpace(nil))
	require.Equal(t, 1, strings.Count(noSpace(noSpace(syscall.ENOSPC)).Error(), "no space left on storage"))
}

// A checkpoint is discarded when one subtask declines it, while another
// subtask may still be about to write its state there: that late writer
// creates the chk-<n> directory again, and when it fails or is aborted
// (its checkpoint is gone, or the disk is full), it must not leave the
// directory behind empty. A directory that holds something stays, and so
// does a savepoint's target directory.
func TestFileStorageFailedWriterLeavesNoEmptyCheckpointDir(t *testing.T) {
	ctx := testCtx(t)
	s, err := NewFileStorage(FileStorageConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	loc := CheckpointLocation(job, 7)
	cdir, err := s.LocationDir(loc)
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, loc)) // the decline's discard ran first

	late, err := s.CreateStream(ctx, loc, "late")
	require.NoError(t, err)
	_, err = late.Write([]byte("state"))
	require.NoError(t, err)
	require.NoError(t, late.Abort())
	_, err = os.Stat(cdir)
	require.ErrorIs(t, err, fs.ErrNotExist, "an aborted writer left an empty %s", cdir)

	// Another writer's stream keeps the directory.
	writeStream(t, ctx, s, loc, "kept", pattern(10, 0))
	w, err := s.CreateStream(ctx, loc, "failed")
	require.NoError(t, err)
	require.NoError(t, w.Abort())
	_, err = os.Stat(filepath.Join(cdir, "kept"))
	require.NoError(t, err)
	// A writer created after a failed one removed the directory works.
	require.NoError(t, s.Delete(ctx, loc))
	writeStream(t, ctx, s, loc, "again", pattern(10, 0))

	sp := SavepointLocation("sp-1")
	spDir, err := s.LocationDir(sp)
	require.NoError(t, err)
	w, err = s.CreateStream(ctx, sp, "failed")
	require.NoError(t, err)
	require.NoError(t, w.Abort())
	_, err = os.Stat(spDir)
	require.NoError(t, err, "a savepoint target stays")
}
