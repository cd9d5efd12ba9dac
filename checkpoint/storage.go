package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// Errors returned by the storages, the metadata codec and the Store. They are
// wrapped with context (which job, which checkpoint, which path); match them
// with errors.Is.
var (
	// ErrNotFound: the checkpoint, savepoint, metadata or stream does not exist.
	ErrNotFound = errors.New("checkpoint: not found")
	// ErrExists: metadata already exists at the location; completed
	// checkpoints and savepoints are never overwritten.
	ErrExists = errors.New("checkpoint: already exists")
	// ErrInvalidName: a job id, stream name or savepoint target is not a safe
	// path name, or a savepoint target or path lies outside the storage's
	// savepoint roots.
	ErrInvalidName = errors.New("checkpoint: invalid name")
	// ErrInvalidConfig: a storage or store configuration failed validation.
	ErrInvalidConfig = errors.New("checkpoint: invalid config")
	// ErrNoSpace: the storage is full (ENOSPC on a filesystem, the capacity
	// limit of a MemStorage). Errors wrapping it also match syscall.ENOSPC
	// when the operating system reported it.
	ErrNoSpace = errors.New("checkpoint: no space left on storage")
	// ErrWriterClosed: Write, Close or Abort was called on a StreamWriter
	// that was already closed or aborted.
	ErrWriterClosed = errors.New("checkpoint: stream writer already closed")
	// ErrCorrupt: stored data does not match what was written (a checksum
	// or size mismatch, or an undecodable metadata body).
	ErrCorrupt = errors.New("checkpoint: corrupt data")
)

// MetadataFileName is the name of the file (or object) holding a completed
// checkpoint's or savepoint's metadata inside its directory, as in Flink. A
// directory without it is not a completed checkpoint.
const MetadataFileName = "_metadata"

// defaultSavepointDir is the directory (below a storage's root) where
// relative savepoint targets resolve by default. Job ids cannot start with
// '_', so it never collides with a job's directory.
const defaultSavepointDir = "_savepoints"

// StreamHandle points to one state stream written through a StreamWriter.
// It is a small value: copy it freely and store it in Metadata.
type StreamHandle struct {
	// Path is where the stream lives, in the storage's own syntax: an
	// absolute file path for FileStorage, "s3://bucket/key" for S3Storage and
	// "mem://key" for MemStorage. In encoded metadata, paths inside the
	// checkpoint's own directory are stored relative to it (so a savepoint
	// directory can be moved); Storage.ReadMetadata resolves them again.
	Path string `msgpack:"path"`
	// Size is the stream's length in bytes.
	Size int64 `msgpack:"size"`
}

// Location names the directory of one checkpoint or one savepoint. Build it
// with CheckpointLocation or SavepointLocation.
type Location struct {
	// Job is the job id of a checkpoint location; empty for savepoints.
	Job string
	// CheckpointID is the checkpoint's id, >= 1; zero for savepoints.
	CheckpointID int64
	// Savepoint is the directory of a savepoint location: one returned by
	// Storage.InitSavepointLocation, or a savepoint path to restore from;
	// empty for checkpoints. Each storage documents how it resolves it and
	// refuses one outside its savepoint roots.
	Savepoint string
}

// CheckpointLocation is the location of checkpoint id of job. Checkpoints
// live under the storage's root at "<job>/chk-<id>/", as in Flink.
func CheckpointLocation(job string, id int64) Location {
	return Location{Job: job, CheckpointID: id}
}

// SavepointLocation is the location of the savepoint in directory dir, to
// restore from. A savepoint directory is self-contained: its state streams
// live in it and its metadata refers to them by relative paths, so it
// outlives the job and can be moved or copied as a whole. To take a
// savepoint, get a fresh directory from Storage.InitSavepointLocation
// instead: writing into an existing one could overwrite another savepoint's
// streams.
func SavepointLocation(dir string) Location {
	return Location{Savepoint: dir}
}

// IsSavepoint reports whether l is a savepoint location.
func (l Location) IsSavepoint() bool { return l.Savepoint != "" }

// String returns a readable form of l for messages.
func (l Location) String() string {
	if l.IsSavepoint() {
		return "savepoint " + strconv.Quote(l.Savepoint)
	}
	return fmt.Sprintf("checkpoint %d of job %q", l.CheckpointID, l.Job)
}

// validate checks the location's names. It does not resolve savepoint
// targets; storages do that.
func (l Location) validate() error {
	if l.IsSavepoint() {
		if l.Job != "" || l.CheckpointID != 0 {
			return fmt.Errorf("%w: %s has a job or checkpoint id as well", ErrInvalidName, l)
		}
		return nil
	}
	if err := validName("job id", l.Job); err != nil {
		return err
	}
	if l.CheckpointID < 1 {
		return fmt.Errorf("%w: checkpoint id must be >= 1, found %d", ErrInvalidName, l.CheckpointID)
	}
	return nil
}

// checkpointDirName is the directory name of checkpoint id: "chk-<id>".
func checkpointDirName(id int64) string { return "chk-" + strconv.FormatInt(id, 10) }

// parseCheckpointDirName parses "chk-<id>", accepting only the canonical
// decimal form (no sign, no leading zeros).
func parseCheckpointDirName(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, "chk-")
	if !ok || s == "" || s[0] == '0' {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 || checkpointDirName(id) != name {
		return 0, false
	}
	return id, true
}

// Storage keeps checkpoint and savepoint data: the state streams that
// subtasks write and the metadata the coordinator writes once every subtask
// has acknowledged. FileStorage (the default), S3Storage and MemStorage
// implement it.
//
// Every method may block on I/O and is bounded by its context; a filesystem
// call already in progress cannot be interrupted, so FileStorage checks the
// context between steps. All methods are safe for concurrent use by many
// goroutines. Memory passed in (metadata, byte slices) stays owned by the
// caller and is not retained after the call returns.
type Storage interface {
	// CreateStream starts writing a state stream called name into the
	// directory of loc. Nothing is visible until the writer's Close returns a
	// handle; Abort (or a failed Write or Close) leaves nothing behind.
	// Closing a stream whose name already exists in loc replaces it. The
	// context bounds the whole write, including later Write and Close calls:
	// once it is done they fail and the write is aborted.
	CreateStream(ctx context.Context, loc Location, name string) (StreamWriter, error)

	// OpenStream opens a stream for reading, sequentially and at random
	// offsets, so that a restore can read only some key groups. It fails with
	// ErrNotFound if the stream does not exist and ErrCorrupt if its size
	// differs from h.Size. The context bounds the reads made through the
	// returned reader until it is closed.
	OpenStream(ctx context.Context, h StreamHandle) (StreamReader, error)

	// WriteMetadata encodes m and writes it as loc's metadata atomically: a
	// reader sees either no metadata or all of it, even if the process
	// crashes or the storage fills up half way. It fails with ErrExists if
	// loc already has metadata, and with ErrInvalidMetadata if m is invalid
	// or does not match loc (job id, checkpoint id, savepoint flag). Only
	// after it returns nil is the checkpoint complete and listed.
	WriteMetadata(ctx context.Context, loc Location, m *Metadata) error

	// ReadMetadata reads and decodes loc's metadata, resolving relative
	// stream paths against loc. It fails with ErrNotFound if there is none,
	// and with the codec's errors (ErrBadMagic, ErrUnsupportedVersion,
	// ErrTruncated, ErrCorrupt, ErrInvalidMetadata) if it cannot be decoded.
	// The caller owns the returned Metadata.
	ReadMetadata(ctx context.Context, loc Location) (*Metadata, error)

	// ListCheckpoints returns the ids of job's completed checkpoints (those
	// whose metadata was written), in ascending order. A checkpoint directory
	// without metadata is never listed. An unknown job has none.
	ListCheckpoints(ctx context.Context, job string) ([]int64, error)

	// Delete removes the checkpoint or savepoint at loc with all its files.
	// It removes the metadata first, so a partly deleted checkpoint is never
	// listed as completed. Deleting a location that does not exist is not an
	// error; a savepoint root itself is never deleted (ErrInvalidName).
	Delete(ctx context.Context, loc Location) error

	// InitSavepointLocation makes a fresh, empty directory for one
	// savepoint of job inside target and returns its location, as Flink's
	// initializeLocationForSavepoint: "<target>/savepoint-<first 6
	// characters of job>-<12 random hex digits>". An existing directory is
	// never reused, so a savepoint never overwrites anything. An empty
	// target is the storage's default savepoint directory (Flink's
	// state.savepoints.dir); a relative one resolves inside it. A target
	// that is malformed or outside the storage's savepoint roots fails with
	// ErrInvalidName and an error that does not tell whether it exists.
	// The location's Savepoint is in the storage's own syntax (an absolute
	// directory, "s3://bucket/key", "mem://key"): report it to the user as
	// the savepoint's path. Delete removes it again.
	InitSavepointLocation(ctx context.Context, target, job string) (Location, error)
}

// StreamWriter writes one state stream. It is used by one goroutine at a
// time. Exactly one of Close or Abort should end every writer; a writer that
// is abandoned (a crashed process) leaves nothing visible, though a
// FileStorage may leave a hidden temporary file that Delete of the
// checkpoint removes. (In a live process, an abandoned S3Storage writer of
// a large stream holds a goroutine and an upload until its context is done.)
type StreamWriter interface {
	// Write appends p to the stream; p is not retained. It may block on I/O.
	io.Writer
	// Pos returns the number of bytes written so far: the offset the next
	// Write starts at, for recording key-group and partition offsets.
	Pos() int64
	// Close finishes the stream, makes it durable and visible, and returns
	// its handle. If Close fails the stream is aborted and nothing is left.
	Close() (StreamHandle, error)
	// Abort discards the stream and everything written to it. It is safe to
	// call after a failed Write or Close, and does nothing after a successful
	// Close, so `defer w.Abort()` is a fine pattern.
	Abort() error
}

// StreamReader reads one state stream. Read is for one goroutine at a time;
// ReadAt may be called concurrently. Close releases it.
type StreamReader interface {
	io.Reader
	io.ReaderAt
	io.Closer
	// Size returns the stream's length in bytes.
	Size() int64
}

// LatestCheckpoint returns the id of job's newest completed checkpoint in s,
// or ErrNotFound if it has none.
func LatestCheckpoint(ctx context.Context, s Storage, job string) (int64, error) {
	ids, err := s.ListCheckpoints(ctx, job)
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("%w: no completed checkpoint of job %q", ErrNotFound, job)
	}
	return ids[len(ids)-1], nil
}

// validName checks that s can be used as one path segment on every storage:
// non-empty, at most 255 bytes, no separators or NUL, not "." or "..", and not
// starting with '.' or '_' (reserved for temporary files and _metadata).
func validName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalidName, what)
	case len(s) > 255:
		return fmt.Errorf("%w: %s is %d bytes, expected at most 255", ErrInvalidName, what, len(s))
	case strings.ContainsAny(s, "/\\\x00"):
		return fmt.Errorf("%w: %s %q contains '/', '\\' or NUL", ErrInvalidName, what, s)
	case s[0] == '.' || s[0] == '_':
		return fmt.Errorf("%w: %s %q starts with '.' or '_' (reserved)", ErrInvalidName, what, s)
	}
	return nil
}

// validRelPath checks a relative, slash-separated path such as a savepoint
// target: clean, no empty, "." or ".." segments, no leading '/', no
// backslashes or NUL. Segments may start with '.' or '_'.
func validRelPath(what, p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") || path.Clean(p) != p {
		return fmt.Errorf("%w: %s %q is not a clean relative path", ErrInvalidName, what, p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." || len(seg) > 255 {
			return fmt.Errorf("%w: %s %q has segment %q", ErrInvalidName, what, p, seg)
		}
	}
	return nil
}

// noSpace wraps err with ErrNoSpace when it reports ENOSPC or EDQUOT.
func noSpace(err error) error {
	if err != nil && !errors.Is(err, ErrNoSpace) && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// checkMetadataLocation checks that m is valid and belongs at loc.
func checkMetadataLocation(loc Location, m *Metadata) error {
	if m == nil {
		return fmt.Errorf("%w: nil metadata", ErrInvalidMetadata)
	}
	if m.IsSavepoint != loc.IsSavepoint() {
		return fmt.Errorf("%w: metadata IsSavepoint=%t written to %s", ErrInvalidMetadata, m.IsSavepoint, loc)
	}
	if !loc.IsSavepoint() && (m.JobID != loc.Job || m.CheckpointID != loc.CheckpointID) {
		return fmt.Errorf("%w: metadata of checkpoint %d of job %q written to %s",
			ErrInvalidMetadata, m.CheckpointID, m.JobID, loc)
	}
	return m.Validate()
}

// relativize returns a copy of m whose stream paths below base (base plus
// the separator sep) are made relative to base, with '/' separators. Other
// paths are kept.
func relativize(m *Metadata, base, sep string) *Metadata {
	prefix := base + sep
	out, _ := m.mapPaths(func(p string) (string, error) {
		if rel, ok := strings.CutPrefix(p, prefix); ok && rel != "" {
			return strings.ReplaceAll(rel, sep, "/"), nil
		}
		return p, nil
	})
	return out
}

// resolve turns the relative stream paths of a decoded m into paths below
// base, rejecting relative paths that would escape it. isAbs tells which
// paths are already absolute in the storage's syntax.
func resolve(m *Metadata, base, sep string, isAbs func(string) bool) (*Metadata, error) {
	return m.mapPaths(func(p string) (string, error) {
		if p == "" || isAbs(p) {
			return p, nil
		}
		if err := validRelPath("stream path", p); err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidMetadata, err)
		}
		return base + sep + strings.ReplaceAll(p, "/", sep), nil
	})
}
