package checkpoint

import (
	"bytes"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The savepoint location cases run against every Storage, as the
// conformance suite does.

func TestFileStorageSavepointLocations(t *testing.T) { runSavepointCases(t, newFileFactory) }
func TestMemStorageSavepointLocations(t *testing.T)  { runSavepointCases(t, newMemFactory) }

func TestS3StorageSavepointLocations(t *testing.T) {
	requireMinio(t)
	runSavepointCases(t, newS3Factory)
}

func runSavepointCases(t *testing.T, factory storageFactory) {
	for _, tc := range savepointCases {
		t.Run(tc.name, func(t *testing.T) {
			s, list := factory(t)
			tc.run(t, s, list)
		})
	}
}

// spJob is a job id as the JobManager passes it: 32 hex digits.
const spJob = "0123456789abcdef0123456789abcdef"

var spNameRE = regexp.MustCompile(`^savepoint-012345-[0-9a-f]{12}$`)

// fixedRandom yields names[0], names[1], ... as randomness, repeating the
// last one, to make savepoint names collide on purpose.
type fixedRandom struct {
	names [][]byte
	i     int
}

func (r *fixedRandom) Read(p []byte) (int, error) {
	b := r.names[min(r.i, len(r.names)-1)]
	r.i++
	return copy(p, b), nil
}

func setRandom(t *testing.T, s Storage, r io.Reader) {
	switch s := s.(type) {
	case *FileStorage:
		s.random = r
	case *MemStorage:
		s.random = r
	case *S3Storage:
		s.random = r
	default:
		t.Fatalf("no randomness to set in %T", s)
	}
}

// writeSavepoint writes a savepoint with one stream of data at loc.
func writeSavepoint(t *testing.T, s Storage, loc Location, data []byte) {
	t.Helper()
	ctx := testCtx(t)
	h := writeStream(t, ctx, s, loc, "op", data)
	m := testMetadata(spJob, 1, StreamHandle{}, h)
	m.IsSavepoint = true
	require.NoError(t, s.WriteMetadata(ctx, loc, m))
}

// readSavepoint reads back the stream writeSavepoint wrote at loc.
func readSavepoint(t *testing.T, s Storage, loc Location) []byte {
	t.Helper()
	ctx := testCtx(t)
	m, err := s.ReadMetadata(ctx, loc)
	require.NoError(t, err)
	return readStream(t, ctx, s, m.Operators[0].Subtasks[0].Operator[0].Stream)
}

// lastSegment returns the last element of a location in any storage's
// syntax.
func lastSegment(loc Location) string { return path.Base(filepath.ToSlash(loc.Savepoint)) }

// outsideTargets are malformed or outside the savepoint roots of every
// storage the factories make: absolute paths that exist and that do not,
// paths with "..", other schemes and buckets.
var outsideTargets = []string{
	"/etc", "/etc/passwd", "/nonexistent", "../..", "/tmp/x/../../etc", "a/../../b", "a//b", "./a",
	"s3://other-bucket/x", "mem://job-a/chk-1", "mem://_savepoints/../job-a", "/",
}

var savepointCases = []conformanceCase{
	{"FreshDirectories", func(t *testing.T, s Storage, list func() []string) {
		ctx := testCtx(t)
		// Two savepoints into one target get two directories, each
		// named as Flink names them; neither overwrites the other.
		a, err := s.InitSavepointLocation(ctx, "sp", spJob)
		require.NoError(t, err)
		b, err := s.InitSavepointLocation(ctx, "sp", spJob)
		require.NoError(t, err)
		require.NotEqual(t, a, b)
		for _, loc := range []Location{a, b} {
			require.Regexp(t, spNameRE, lastSegment(loc))
			require.Contains(t, filepath.ToSlash(loc.Savepoint), "/sp/savepoint-")
		}
		writeSavepoint(t, s, a, pattern(300, 1))
		writeSavepoint(t, s, b, pattern(200, 2))
		require.Equal(t, pattern(300, 1), readSavepoint(t, s, a))
		require.Equal(t, pattern(200, 2), readSavepoint(t, s, b))

		// The default target is the storage's savepoint directory.
		d, err := s.InitSavepointLocation(ctx, "", spJob)
		require.NoError(t, err)
		require.Regexp(t, spNameRE, lastSegment(d))
		require.NotContains(t, filepath.ToSlash(d.Savepoint), "/sp/")
		writeSavepoint(t, s, d, pattern(10, 3))
		require.Equal(t, pattern(10, 3), readSavepoint(t, s, d))

		// Deleting one leaves the others.
		require.NoError(t, s.Delete(ctx, a))
		_, err = s.ReadMetadata(ctx, a)
		require.ErrorIs(t, err, ErrNotFound)
		require.Equal(t, pattern(200, 2), readSavepoint(t, s, b))
		for _, p := range list() {
			require.NotContains(t, p, lastSegment(a), "left behind")
		}
	}},
	{"NameCollision", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		x, y := bytes.Repeat([]byte{0xaa}, 6), bytes.Repeat([]byte{0xbb}, 6)
		setRandom(t, s, &fixedRandom{names: [][]byte{x}})
		first, err := s.InitSavepointLocation(ctx, "sp", spJob)
		require.NoError(t, err)
		require.Equal(t, "savepoint-012345-aaaaaaaaaaaa", lastSegment(first))
		writeSavepoint(t, s, first, pattern(100, 1))

		// The same name comes up again: another is tried.
		setRandom(t, s, &fixedRandom{names: [][]byte{x, y}})
		second, err := s.InitSavepointLocation(ctx, "sp", spJob)
		require.NoError(t, err)
		require.Equal(t, "savepoint-012345-bbbbbbbbbbbb", lastSegment(second))
		writeSavepoint(t, s, second, pattern(50, 2))
		require.Equal(t, pattern(100, 1), readSavepoint(t, s, first), "the first savepoint is intact")

		// Only taken names: it gives up rather than reuse one.
		setRandom(t, s, &fixedRandom{names: [][]byte{x}})
		_, err = s.InitSavepointLocation(ctx, "sp", spJob)
		require.ErrorIs(t, err, ErrExists)
	}},
	{"OutsideRoots", func(t *testing.T, s Storage, list func() []string) {
		ctx := testCtx(t)
		for _, p := range outsideTargets {
			// One message for every such path, whether it exists or not.
			want := errOutsideRoots(p).Error()
			_, err := s.InitSavepointLocation(ctx, p, spJob)
			require.ErrorIs(t, err, ErrInvalidName, p)
			require.EqualError(t, err, want)
			_, err = s.ReadMetadata(ctx, SavepointLocation(p))
			require.ErrorIs(t, err, ErrInvalidName, p)
			require.EqualError(t, err, want)
			_, err = s.CreateStream(ctx, SavepointLocation(p), "op")
			require.ErrorIs(t, err, ErrInvalidName, p)
			require.ErrorIs(t, s.Delete(ctx, SavepointLocation(p)), ErrInvalidName, p)
		}
		for _, job := range []string{"", "a/b", ".x"} {
			_, err := s.InitSavepointLocation(ctx, "sp", job)
			require.ErrorIs(t, err, ErrInvalidName, job)
		}
		require.Empty(t, list())
	}},
	{"MissingSavepoint", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		_, err := s.ReadMetadata(ctx, SavepointLocation("no-such-savepoint"))
		require.ErrorIs(t, err, ErrNotFound)
		loc, err := s.InitSavepointLocation(ctx, "sp", spJob)
		require.NoError(t, err)
		_, err = s.ReadMetadata(ctx, loc)
		require.ErrorIs(t, err, ErrNotFound, "an initialized location holds no savepoint yet")
	}},
}

func TestFileStorageSavepointRoots(t *testing.T) {
	ctx := testCtx(t)
	root, outside := t.TempDir(), t.TempDir()
	s, err := NewFileStorage(FileStorageConfig{Dir: root})
	require.NoError(t, err)
	spDir := filepath.Join(root, defaultSavepointDir)
	require.NoError(t, os.MkdirAll(spDir, 0o755))

	// A readable savepoint outside the roots, and a link to it inside.
	secret, err := NewFileStorage(FileStorageConfig{Dir: outside, SavepointRoots: []string{outside}})
	require.NoError(t, err)
	secretLoc, err := secret.InitSavepointLocation(ctx, outside, spJob)
	require.NoError(t, err)
	writeSavepoint(t, secret, secretLoc, pattern(10, 1))
	require.NoError(t, os.Symlink(outside, filepath.Join(spDir, "out")))
	require.NoError(t, os.Symlink("../../"+filepath.Base(outside), filepath.Join(root, "rel-out")))
	require.NoError(t, os.Symlink(filepath.Join(spDir, "out"), filepath.Join(spDir, "chain")))
	require.NoError(t, os.Symlink("loop", filepath.Join(spDir, "loop")))
	name := lastSegment(secretLoc)
	for _, p := range []string{
		"out", "out/" + name, "chain/" + name, "loop", filepath.Join(spDir, "out", name),
		filepath.Join(root, "rel-out", name), outside, secretLoc.Savepoint,
	} {
		want := errOutsideRoots(p).Error()
		_, err := s.ReadMetadata(ctx, SavepointLocation(p))
		require.EqualError(t, err, want, "a link inside a root does not lead out of it")
		_, err = s.InitSavepointLocation(ctx, p, spJob)
		require.EqualError(t, err, want)
	}
	require.Equal(t, pattern(10, 1), readSavepoint(t, secret, secretLoc), "still there")

	// A link that stays inside the roots is followed.
	other := filepath.Join(root, "other")
	require.NoError(t, os.Mkdir(other, 0o755))
	require.NoError(t, os.Symlink("../other", filepath.Join(spDir, "in")))
	loc, err := s.InitSavepointLocation(ctx, "in", spJob)
	require.NoError(t, err)
	require.Equal(t, other, filepath.Dir(loc.Savepoint), "reported without the link")
	writeSavepoint(t, s, loc, pattern(20, 2))
	require.Equal(t, pattern(20, 2), readSavepoint(t, s, SavepointLocation(filepath.Join("in", lastSegment(loc)))))

	// A file is no target; a path through it holds no savepoint.
	file := filepath.Join(spDir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err = s.InitSavepointLocation(ctx, "file", spJob)
	require.ErrorIs(t, err, ErrInvalidName)
	require.ErrorContains(t, err, "not a directory")
	_, err = s.ReadMetadata(ctx, SavepointLocation(file))
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.ReadMetadata(ctx, SavepointLocation(filepath.Join(file, "x")))
	require.ErrorIs(t, err, ErrNotFound)

	// A root is never deleted as a savepoint.
	for _, r := range []string{root, spDir} {
		require.ErrorIs(t, s.Delete(ctx, SavepointLocation(r)), ErrInvalidName)
		_, err = os.Stat(r)
		require.NoError(t, err)
	}
}

func TestFileStorageConfiguredSavepointRoots(t *testing.T) {
	ctx := testCtx(t)
	dir, extra, real := t.TempDir(), t.TempDir(), t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(real, link))
	s, err := NewFileStorage(FileStorageConfig{Dir: dir, SavepointRoots: []string{extra, link}})
	require.NoError(t, err)
	require.Equal(t, []string{extra, real, filepath.Join(dir, defaultSavepointDir)}, s.SavepointRoots(),
		"the roots' links are resolved; the default savepoint directory is always one")

	loc, err := s.InitSavepointLocation(ctx, filepath.Join(extra, "a"), spJob)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(extra, "a"), filepath.Dir(loc.Savepoint))
	for _, target := range []string{filepath.Join(link, "b"), filepath.Join(real, "b")} {
		loc, err = s.InitSavepointLocation(ctx, target, spJob)
		require.NoError(t, err)
		require.Equal(t, filepath.Join(real, "b"), filepath.Dir(loc.Savepoint))
	}
	loc, err = s.InitSavepointLocation(ctx, "", spJob)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, defaultSavepointDir), filepath.Dir(loc.Savepoint))

	// Dir is no root once roots are configured.
	p := filepath.Join(dir, "x")
	_, err = s.InitSavepointLocation(ctx, p, spJob)
	require.EqualError(t, err, errOutsideRoots(p).Error())

	_, err = NewFileStorage(FileStorageConfig{Dir: dir, SavepointRoots: []string{""}})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestMemStorageSavepointRoots(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	loc, err := s.InitSavepointLocation(ctx, "mem://_savepoints/a", spJob)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc.Savepoint, "mem://_savepoints/a/savepoint-012345-"), loc.Savepoint)
	writeSavepoint(t, s, loc, pattern(5, 1))
	rel := strings.TrimPrefix(loc.Savepoint, "mem://_savepoints/")
	require.Equal(t, pattern(5, 1), readSavepoint(t, s, SavepointLocation(rel)), "relative to the root")
	require.ErrorIs(t, s.Delete(ctx, SavepointLocation("mem://_savepoints")), ErrInvalidName)
	require.Equal(t, pattern(5, 1), readSavepoint(t, s, loc))
	for _, p := range []string{"mem://", "mem://job-a", "mem://_savepointsx/a", "mem://_savepoints/a/"} {
		_, err := s.InitSavepointLocation(ctx, p, spJob)
		require.EqualError(t, err, errOutsideRoots(p).Error())
	}
}

// The S3 storage's roots are checked as text, so this test needs no
// server.
func TestS3StorageSavepointRoots(t *testing.T) {
	s, err := NewS3Storage(S3StorageConfig{Endpoint: "127.0.0.1:1", Bucket: "b", Prefix: "ck"})
	require.NoError(t, err)
	defer s.Close()
	for _, tc := range []struct{ in, bucket, key string }{
		{"sp", "b", "ck/_savepoints/sp"},
		{"s3://b/ck", "b", "ck"},
		{"s3://b/ck/x/y", "b", "ck/x/y"},
		{"s3://b/ck/_savepoints/z", "b", "ck/_savepoints/z"},
	} {
		bucket, key, err := s.savepointKey(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, []string{tc.bucket, tc.key}, []string{bucket, key}, tc.in)
	}
	for _, p := range append([]string{"s3://b/other/x", "s3://b/ckx", "s3://c/ck/x", "s3://b", "s3://b/", "s3://b/ck/../x", "s3:///ck"}, outsideTargets...) {
		_, _, err := s.savepointKey(p)
		require.EqualError(t, err, errOutsideRoots(p).Error(), p)
	}
	require.ErrorIs(t, s.Delete(testCtx(t), SavepointLocation("s3://b/ck")), ErrInvalidName)

	// Configured roots replace the storage's prefix; the savepoint prefix
	// stays one.
	s2, err := NewS3Storage(S3StorageConfig{Endpoint: "127.0.0.1:1", Bucket: "b", Prefix: "ck",
		SavepointRoots: []string{"s3://archive", "s3://b/keep"}})
	require.NoError(t, err)
	defer s2.Close()
	for _, p := range []string{"s3://archive/any/x", "s3://b/keep/x", "s3://b/ck/_savepoints/x", "x"} {
		_, _, err := s2.savepointKey(p)
		require.NoError(t, err, p)
	}
	_, _, err = s2.savepointKey("s3://b/ck/x")
	require.ErrorIs(t, err, ErrInvalidName)

	for _, bad := range []string{"", "archive", "s3://", "s3:///x", "s3://b/a/../c", "s3://b/x/"} {
		cfg := S3StorageConfig{Endpoint: "127.0.0.1:1", Bucket: "b", SavepointRoots: []string{bad}}
		require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig, bad)
	}
}
