package checkpoint

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// FileStorageConfig configures a FileStorage.
type FileStorageConfig struct {
	// Dir is the root of checkpoint storage. Checkpoint n of job j lives in
	// "<Dir>/<j>/chk-<n>/", its metadata in "<Dir>/<j>/chk-<n>/_metadata", as
	// in Flink's FsCheckpointStorage. Required; made absolute.
	Dir string
	// SavepointDir is the default savepoint target (Flink's
	// state.savepoints.dir), where relative targets and savepoint paths
	// resolve. Default: "<Dir>/_savepoints" (a name no job id can take).
	SavepointDir string
	// SavepointRoots are the directories savepoints may be written into and
	// restored from: every savepoint target and savepoint path, absolute or
	// resolved, must lie inside one of them, also after following the
	// symbolic links below the root. Default: Dir; SavepointDir is always
	// one. Relative entries are made absolute; symbolic links in the roots
	// themselves are resolved once, by NewFileStorage.
	SavepointRoots []string
}

// Validate checks the configuration without touching the filesystem.
func (c FileStorageConfig) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: FileStorageConfig.Dir is empty", ErrInvalidConfig)
	}
	for i, r := range c.SavepointRoots {
		if r == "" || strings.ContainsRune(r, 0) {
			return fmt.Errorf("%w: FileStorageConfig.SavepointRoots[%d] %q, expected a directory", ErrInvalidConfig, i, r)
		}
	}
	return nil
}

// FileStorage is the default Storage: a directory on a local or mounted
// filesystem. Streams are written to hidden temporary files, fsynced and
// renamed into place on Close; metadata is written to a temporary file,
// fsynced and linked into place without replacing an existing one, and the
// directory is fsynced, so a crash at any point leaves either no metadata or
// complete metadata. It is safe for concurrent use.
//
// Layout:
//
//	<Dir>/<job>/chk-<n>/_metadata        completed checkpoint's metadata
//	<Dir>/<job>/chk-<n>/<stream>          state streams of checkpoint n
//	<Dir>/<job>/chk-<n>/.<stream>.*.tmp   a stream being written
//	<target>/savepoint-<job>-<random>/    a savepoint (self-contained)
//
// Savepoints stay inside the savepoint roots (FileStorageConfig): a target
// or savepoint path outside them, or one that is not clean, is refused
// before anything is looked up, and a symbolic link inside a root that
// leads out of the roots is refused the same way. (The check guards what
// requests name; a process that can write inside the roots can still swap
// a directory for a link between the check and the use.)
//
// Flink's shared/ and taskowned/ directories (for incremental checkpoints)
// are not used yet.
type FileStorage struct {
	dir          string
	savepointDir string
	roots        []fileRoot
	random       io.Reader // randomness of savepoint names
}

// fileRoot is a savepoint root as configured (absolute, clean) and with its
// symbolic links resolved.
type fileRoot struct{ given, real string }

// maxSymlinks bounds the symbolic links followed while confining one
// savepoint path, as the kernel's limit does (40 on Linux).
const maxSymlinks = 40

var _ Storage = (*FileStorage)(nil)

// NewFileStorage validates cfg and creates the root directory if needed.
func NewFileStorage(cfg FileStorageConfig) (*FileStorage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: resolve storage dir: %w", err)
	}
	spDir := cfg.SavepointDir
	if spDir == "" {
		spDir = filepath.Join(dir, defaultSavepointDir)
	}
	if spDir, err = filepath.Abs(spDir); err != nil {
		return nil, fmt.Errorf("checkpoint: resolve savepoint dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: create storage dir: %w", noSpace(err))
	}
	given := []string{dir}
	if len(cfg.SavepointRoots) > 0 {
		given = cfg.SavepointRoots
	}
	given = append(slices.Clip(given), spDir)
	s := &FileStorage{dir: dir, savepointDir: spDir, random: rand.Reader}
	for _, r := range given {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: resolve savepoint root %q: %w", r, err)
		}
		real, err := realPath(abs)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: resolve savepoint root %q: %w", r, err)
		}
		if !slices.Contains(s.roots, fileRoot{abs, real}) {
			s.roots = append(s.roots, fileRoot{abs, real})
		}
	}
	return s, nil
}

// realPath resolves the symbolic links of p, an absolute clean path, as
// far as it exists; the part that does not exist yet is kept as it is.
func realPath(p string) (string, error) {
	var missing []string
	for {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			slices.Reverse(missing)
			return filepath.Join(append([]string{r}, missing...)...), nil
		}
		parent := filepath.Dir(p)
		if !errors.Is(err, fs.ErrNotExist) || parent == p {
			return "", err
		}
		missing = append(missing, filepath.Base(p))
		p = parent
	}
}

// Dir returns the storage's absolute root directory.
func (s *FileStorage) Dir() string { return s.dir }

// SavepointRoots returns the directories savepoints may be written into and
// restored from, with their symbolic links resolved.
func (s *FileStorage) SavepointRoots() []string {
	out := make([]string, len(s.roots))
	for i, r := range s.roots {
		out[i] = r.real
	}
	return out
}

// LocationDir returns the directory of loc: "<Dir>/<job>/chk-<n>" for a
// checkpoint; for a savepoint, its directory if it is absolute, else
// "<SavepointDir>/<dir>" (a relative one must be a clean path without
// ".."), with the symbolic links below the savepoint root resolved. A
// savepoint directory outside the savepoint roots is refused with
// ErrInvalidName.
func (s *FileStorage) LocationDir(loc Location) (string, error) {
	if err := loc.validate(); err != nil {
		return "", err
	}
	if !loc.IsSavepoint() {
		return filepath.Join(s.dir, loc.Job, checkpointDirName(loc.CheckpointID)), nil
	}
	return s.confine(loc.Savepoint)
}

// confine resolves a savepoint target or path to a directory inside the
// savepoint roots, or fails with errOutsideRoots. Nothing outside the
// roots is looked at: the path is checked as text first, then the entries
// below its root are examined one by one with Lstat, and a symbolic link
// is followed only if its target, as text, lies inside the roots too.
func (s *FileStorage) confine(p string) (string, error) {
	cur := p
	if filepath.IsAbs(p) {
		if filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
			return "", errOutsideRoots(p)
		}
	} else {
		if validRelPath("savepoint path", p) != nil {
			return "", errOutsideRoots(p)
		}
		cur = filepath.Join(s.savepointDir, filepath.FromSlash(p))
	}
	for range maxSymlinks {
		root, rest, ok := s.rootOf(cur)
		if !ok {
			break
		}
		next, done := followBelow(root, rest)
		if done {
			return next, nil
		}
		cur = next
	}
	return "", errOutsideRoots(p)
}

// rootOf finds the root that holds p, by its configured or its resolved
// form, and returns the root's resolved form and the rest of p below it.
func (s *FileStorage) rootOf(p string) (string, string, bool) {
	sep := string(filepath.Separator)
	for _, r := range s.roots {
		for _, form := range []string{r.real, r.given} {
			if rest, ok := within(form, p, sep); ok {
				return r.real, rest, true
			}
		}
	}
	return "", "", false
}

// followBelow walks rest (a clean relative path) below root, a directory
// without symbolic links. It returns the path and true once it reaches the
// end or an entry that does not exist (or is not a directory, which the
// caller's own I/O then reports); it returns the path the first symbolic
// link leads to, with the rest appended, and false.
func followBelow(root, rest string) (string, bool) {
	if rest == "" {
		return root, true
	}
	cur := root
	segs := strings.Split(rest, string(filepath.Separator))
	for i, seg := range segs {
		next := filepath.Join(cur, seg)
		fi, err := os.Lstat(next)
		if err != nil {
			return filepath.Join(append([]string{next}, segs[i+1:]...)...), true
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(next)
			if err != nil {
				return filepath.Join(append([]string{next}, segs[i+1:]...)...), true
			}
			if !filepath.IsAbs(target) {
				// cur has no symbolic links, so ".." in target resolves
				// as text.
				target = filepath.Join(cur, target)
			}
			return filepath.Join(append([]string{filepath.Clean(target)}, segs[i+1:]...)...), false
		}
		cur = next
	}
	return cur, true
}

// isRoot reports whether dir is one of the savepoint roots or the default
// savepoint directory.
func (s *FileStorage) isRoot(dir string) bool {
	for _, r := range s.roots {
		if dir == r.real || dir == r.given {
			return true
		}
	}
	return dir == s.savepointDir
}

// InitSavepointLocation implements Storage: it creates target (inside the
// savepoint roots) if needed, then a fresh directory in it with os.Mkdir,
// trying another random name if the first exists.
func (s *FileStorage) InitSavepointLocation(ctx context.Context, target, job string) (Location, error) {
	if err := ctx.Err(); err != nil {
		return Location{}, err
	}
	if err := validName("job id", job); err != nil {
		return Location{}, err
	}
	if target == "" {
		target = s.savepointDir
	}
	base, err := s.confine(target)
	if err != nil {
		return Location{}, err
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return Location{}, fmt.Errorf("%w: savepoint target %q is not a directory", ErrInvalidName, target)
		}
		return Location{}, fmt.Errorf("checkpoint: create savepoint target %q: %w", target, noSpace(err))
	}
	for range savepointNameAttempts {
		name, err := savepointName(s.random, job)
		if err != nil {
			return Location{}, err
		}
		dir := filepath.Join(base, name)
		err = os.Mkdir(dir, 0o755)
		if err == nil {
			return SavepointLocation(dir), nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return Location{}, fmt.Errorf("checkpoint: create savepoint directory in %q: %w", target, noSpace(err))
		}
	}
	return Location{}, errNoFreshName(base)
}

// CreateStream implements Storage. The stream is written to a hidden
// temporary file in loc's directory and renamed to name on Close.
func (s *FileStorage) CreateStream(ctx context.Context, loc Location, name string) (StreamWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validName("stream name", name); err != nil {
		return nil, err
	}
	dir, err := s.LocationDir(loc)
	if err != nil {
		return nil, err
	}
	// A writer of the same checkpoint that failed may remove the directory
	// between MkdirAll and CreateTemp (see fileWriter.fail): create it
	// again then.
	var f *os.File
	for range 3 {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("checkpoint: create %s: %w", loc, noSpace(err))
		}
		if f, err = os.CreateTemp(dir, tempPattern(name)); !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: create stream %q in %s: %w", name, loc, noSpace(err))
	}
	w := &fileWriter{ctx: ctx, f: f, final: filepath.Join(dir, name)}
	if !loc.IsSavepoint() {
		w.removeEmpty = dir
	}
	return w, nil
}

// tempPattern is the os.CreateTemp pattern for a temporary file that will
// be renamed to name: hidden, and short enough for a 255-byte file name.
func tempPattern(name string) string {
	if len(name) > 200 {
		name = name[:200]
	}
	return "." + name + ".*.tmp"
}

type fileWriter struct {
	ctx   context.Context
	f     *os.File // nil once closed or aborted
	final string
	pos   int64
	err   error // the error that ended the writer, if any
	// removeEmpty is the checkpoint directory the writer created or shares,
	// removed when a failed or aborted writer leaves it empty: the
	// checkpoint fails with it, and its discard may have run already.
	removeEmpty string
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if w.f == nil {
		return 0, w.closedErr()
	}
	if err := w.ctx.Err(); err != nil {
		return 0, w.fail(err)
	}
	n, err := w.f.Write(p)
	w.pos += int64(n)
	if err != nil {
		return n, w.fail(fmt.Errorf("checkpoint: write stream %s: %w", w.final, noSpace(err)))
	}
	return n, nil
}

func (w *fileWriter) Pos() int64 { return w.pos }

func (w *fileWriter) Close() (StreamHandle, error) {
	if w.f == nil {
		return StreamHandle{}, w.closedErr()
	}
	if err := w.ctx.Err(); err != nil {
		return StreamHandle{}, w.fail(err)
	}
	if err := w.f.Sync(); err != nil {
		return StreamHandle{}, w.fail(fmt.Errorf("checkpoint: sync stream %s: %w", w.final, noSpace(err)))
	}
	tmp := w.f.Name()
	err := w.f.Close()
	w.f = nil
	if err == nil {
		err = os.Rename(tmp, w.final)
	}
	if err != nil {
		_ = os.Remove(tmp)
		w.removeDirIfEmpty()
		w.err = fmt.Errorf("checkpoint: close stream %s: %w", w.final, noSpace(err))
		return StreamHandle{}, w.err
	}
	w.err = ErrWriterClosed
	return StreamHandle{Path: w.final, Size: w.pos}, nil
}

func (w *fileWriter) Abort() error {
	if w.f == nil {
		return nil
	}
	w.fail(fmt.Errorf("%w: aborted", ErrWriterClosed))
	return nil
}

// fail aborts the writer, removing its temporary file (and the checkpoint
// directory if that leaves it empty), and returns err.
func (w *fileWriter) fail(err error) error {
	if w.f != nil {
		tmp := w.f.Name()
		_ = w.f.Close()
		_ = os.Remove(tmp)
		w.removeDirIfEmpty()
		w.f = nil
		w.err = err
	}
	return err
}

// removeDirIfEmpty removes the writer's checkpoint directory if it holds
// nothing: a failed checkpoint leaves no empty chk-<n> directory behind,
// even when it was discarded before this writer failed (os.Remove fails on
// a directory that is not empty, which is then left alone).
func (w *fileWriter) removeDirIfEmpty() {
	if w.removeEmpty != "" {
		_ = os.Remove(w.removeEmpty)
	}
}

func (w *fileWriter) closedErr() error {
	if w.err == nil || errors.Is(w.err, ErrWriterClosed) {
		return fmt.Errorf("%w: %s", ErrWriterClosed, w.final)
	}
	return fmt.Errorf("%w: %s failed earlier: %w", ErrWriterClosed, w.final, w.err)
}

// OpenStream implements Storage. h.Path must be an absolute file path. The
// context is checked only when opening: local reads are not interruptible.
func (s *FileStorage) OpenStream(ctx context.Context, h StreamHandle) (StreamReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(h.Path) {
		return nil, fmt.Errorf("%w: stream path %q is not an absolute file path", ErrInvalidName, h.Path)
	}
	f, err := os.Open(h.Path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: open stream: %w", notFound(err))
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("checkpoint: open stream: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != h.Size {
		_ = f.Close()
		return nil, fmt.Errorf("%w: stream %s: handle says %d bytes, found %d (%s)", ErrCorrupt, h.Path, h.Size, fi.Size(), fi.Mode().Type())
	}
	return &fileReader{File: f, size: fi.Size()}, nil
}

type fileReader struct {
	*os.File
	size int64
}

func (r *fileReader) Size() int64 { return r.size }

// WriteMetadata implements Storage: temporary file, fsync, link into place
// (failing if metadata exists), fsync of the directory and its parents.
func (s *FileStorage) WriteMetadata(ctx context.Context, loc Location, m *Metadata) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := s.LocationDir(loc)
	if err != nil {
		return err
	}
	if err := checkMetadataLocation(loc, m); err != nil {
		return err
	}
	data, err := EncodeMetadata(relativize(m, dir, string(filepath.Separator)))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: create %s: %w", loc, noSpace(err))
	}
	// Make the renames of the streams durable before the metadata that
	// points to them.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("checkpoint: write metadata of %s: %w", loc, err)
	}
	if err := writeFileAtomic(ctx, dir, MetadataFileName, data); err != nil {
		return fmt.Errorf("checkpoint: write metadata of %s: %w", loc, err)
	}
	// Make the directory entries leading to it durable too.
	parents := []string{filepath.Dir(dir)}
	if !loc.IsSavepoint() {
		parents = append(parents, s.dir)
	}
	for _, d := range parents {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("checkpoint: write metadata of %s: %w", loc, err)
		}
	}
	return nil
}

// writeFileAtomic writes data to dir/name through a temporary file, fsyncs
// it and links it into place, failing with ErrExists if dir/name exists.
// On error nothing is left behind.
func writeFileAtomic(ctx context.Context, dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPattern(name))
	if err != nil {
		return noSpace(err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		_ = os.Remove(tmp)
	}()
	if _, err := f.Write(data); err != nil {
		return noSpace(err)
	}
	if err := f.Sync(); err != nil {
		return noSpace(err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return noSpace(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	final := filepath.Join(dir, name)
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, final)
		}
		// A filesystem without hard links: check, then rename.
		if _, serr := os.Lstat(final); serr == nil {
			return fmt.Errorf("%w: %s", ErrExists, final)
		}
		if err := os.Rename(tmp, final); err != nil {
			return noSpace(err)
		}
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, noSpace(err))
	}
	return nil
}

// ReadMetadata implements Storage.
func (s *FileStorage) ReadMetadata(ctx context.Context, loc Location) (*Metadata, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := s.LocationDir(loc)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, MetadataFileName)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read metadata of %s: %w", loc, notFound(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read metadata %s: %w", p, err)
	}
	return decodeAt(data, p, dir, string(filepath.Separator), filepath.IsAbs)
}

// decodeAt decodes metadata read from where and resolves its relative paths
// against base.
func decodeAt(data []byte, where, base, sep string, isAbs func(string) bool) (*Metadata, error) {
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("%w: metadata %s is larger than the %d-byte limit", ErrCorrupt, where, MaxMetadataSize)
	}
	m, err := DecodeMetadata(data)
	if err == nil {
		m, err = resolve(m, base, sep, isAbs)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (reading %s)", err, where)
	}
	return m, nil
}

// ListCheckpoints implements Storage: the chk-<n> directories of the job
// that contain a _metadata file.
func (s *FileStorage) ListCheckpoints(ctx context.Context, job string) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validName("job id", job); err != nil {
		return nil, err
	}
	jobDir := filepath.Join(s.dir, job)
	entries, err := os.ReadDir(jobDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list checkpoints of job %q: %w", job, err)
	}
	var ids []int64
	for _, e := range entries {
		id, ok := parseCheckpointDirName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		fi, err := os.Lstat(filepath.Join(jobDir, e.Name(), MetadataFileName))
		if err == nil && fi.Mode().IsRegular() {
			ids = append(ids, id)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("checkpoint: list checkpoints of job %q: %w", job, err)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Delete implements Storage: it removes the metadata, fsyncs, then removes
// the directory recursively. A savepoint target names a directory the
// savepoint owns; Delete removes all of it.
func (s *FileStorage) Delete(ctx context.Context, loc Location) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := s.LocationDir(loc)
	if err != nil {
		return err
	}
	if loc.IsSavepoint() && s.isRoot(dir) {
		return fmt.Errorf("%w: delete %s: it is a savepoint root", ErrInvalidName, loc)
	}
	err = os.Remove(filepath.Join(dir, MetadataFileName))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	} else if err == nil {
		err = syncDir(dir)
	}
	if err == nil {
		err = os.RemoveAll(dir)
	}
	if err != nil {
		return fmt.Errorf("checkpoint: delete %s: %w", loc, err)
	}
	return nil
}

// notFound wraps a file-not-found error with ErrNotFound; a path through
// a file (ENOTDIR) finds nothing either.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
