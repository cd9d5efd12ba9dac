package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// ErrInjected is the default error of faults injected into a MemStorage.
var ErrInjected = errors.New("checkpoint: injected fault")

const memScheme = "mem://"

// MemStorage is an in-memory Storage for tests, with fault injection: fail
// the Nth write, a capacity that runs out (ENOSPC), corrupted reads,
// failing deletes and a hook that stalls or fails metadata writes. Objects are keyed like FileStorage's files
// ("<job>/chk-<n>/<name>", "_savepoints/<target>/savepoint-<job>-<random>/<name>")
// and their paths are "mem://<key>". The savepoint root is "_savepoints":
// savepoint targets and paths are "mem://_savepoints/..." or relative to
// it. Committed objects are never modified in place, so they
// behave like durable storage that survives a "crash" of the writers: a
// writer that is neither closed nor aborted simply never becomes visible.
// It is safe for concurrent use.
type MemStorage struct {
	mu struct {
		sync.Mutex
		objects  map[string][]byte
		used     int64 // committed bytes plus bytes buffered by open writers
		writeOps int64
		faults   memFaults
		// reserved are the savepoint directories InitSavepointLocation
		// handed out, like empty directories on a filesystem.
		reserved map[string]bool
	}
	random io.Reader // randomness of savepoint names
}

type memFaults struct {
	failAt    int64 // the write op number that fails; 0: none
	failErr   error
	capacity  int64 // 0: unlimited
	corrupt   func(path string) bool
	deleteErr error
	// beforeMetadata is called by WriteMetadata before it writes.
	beforeMetadata func(ctx context.Context, loc Location) error
}

var _ Storage = (*MemStorage)(nil)

// NewMemStorage returns an empty MemStorage without faults.
func NewMemStorage() *MemStorage {
	s := &MemStorage{random: rand.Reader}
	s.mu.objects = make(map[string][]byte)
	s.mu.reserved = make(map[string]bool)
	return s
}

// FailNthWrite makes the n-th write operation from now fail with err
// (ErrInjected if nil), once. Write operations are counted across the
// storage: every StreamWriter.Write call, every StreamWriter.Close (the
// commit) and every WriteMetadata. n = 1 fails the next one; n <= 0 clears the
// fault. A failed Write or Close aborts its writer, as real I/O errors do.
func (s *MemStorage) FailNthWrite(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		s.mu.faults.failAt, s.mu.faults.failErr = 0, nil
		return
	}
	if err == nil {
		err = ErrInjected
	}
	s.mu.faults.failAt, s.mu.faults.failErr = s.mu.writeOps+int64(n), err
}

// SetCapacity limits the bytes the storage holds, counting committed objects
// and data buffered by open writers; a write that would exceed it fails with
// an error matching both ErrNoSpace and syscall.ENOSPC, like a full disk.
// Zero means unlimited.
func (s *MemStorage) SetCapacity(bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.faults.capacity = bytes
}

// CorruptReads makes reads of the objects whose path satisfies match see
// one bit flipped in the middle of their data (streams and metadata alike).
// The stored objects are unchanged. nil stops corrupting.
func (s *MemStorage) CorruptReads(match func(path string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.faults.corrupt = match
}

// FailDeletes makes every Delete fail with err, deleting nothing; nil
// clears the fault.
func (s *MemStorage) FailDeletes(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.faults.deleteErr = err
}

// BeforeWriteMetadata sets a hook that WriteMetadata calls first, outside
// the storage's lock, with its context and location: a hook that blocks
// stalls the write, as a hung disk or object store does (it should return
// when ctx ends, with ctx's error, as real storage would); one that returns
// an error fails the write with it, and nothing is written. The hook is
// called concurrently when writes are. nil removes it, as ClearFaults does.
func (s *MemStorage) BeforeWriteMetadata(hook func(ctx context.Context, loc Location) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.faults.beforeMetadata = hook
}

// ClearFaults removes every injected fault.
func (s *MemStorage) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.faults = memFaults{}
}

// Paths returns the paths of all committed objects, sorted.
func (s *MemStorage) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.mu.objects))
	for k := range s.mu.objects {
		out = append(out, memScheme+k)
	}
	slices.Sort(out)
	return out
}

// Used returns the bytes held: committed objects plus the data buffered by
// open writers.
func (s *MemStorage) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.used
}

// WriteOps returns how many write operations (as counted by FailNthWrite)
// the storage has seen.
func (s *MemStorage) WriteOps() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.writeOps
}

// writeOpLocked counts one write operation of size bytes and returns the
// injected error for it, if any.
func (s *MemStorage) writeOpLocked(size int64) error {
	s.mu.writeOps++
	f := &s.mu.faults
	if f.failAt != 0 && s.mu.writeOps == f.failAt {
		err := f.failErr
		f.failAt, f.failErr = 0, nil
		return err
	}
	if f.capacity > 0 && s.mu.used+size > f.capacity {
		return fmt.Errorf("%w: %w: capacity %d bytes, %d used, %d more requested",
			ErrNoSpace, syscall.ENOSPC, f.capacity, s.mu.used, size)
	}
	return nil
}

// readLocked returns the object at key, corrupted if a fault says so.
func (s *MemStorage) readLocked(key string) ([]byte, bool) {
	data, ok := s.mu.objects[key]
	if !ok {
		return nil, false
	}
	if c := s.mu.faults.corrupt; c != nil && c(memScheme+key) && len(data) > 0 {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 0x10
	}
	return data, true
}

// locationKey returns the key prefix of loc's directory.
func (s *MemStorage) locationKey(loc Location) (string, error) {
	if err := loc.validate(); err != nil {
		return "", err
	}
	if loc.IsSavepoint() {
		return memSavepointKey(loc.Savepoint)
	}
	return loc.Job + "/" + checkpointDirName(loc.CheckpointID), nil
}

// memSavepointKey resolves a savepoint target or path, "mem://<key>" or
// relative to the savepoint root, to a key inside the root.
func memSavepointKey(p string) (string, error) {
	key, ok := strings.CutPrefix(p, memScheme)
	if !ok {
		key = defaultSavepointDir + "/" + p
		if validRelPath("savepoint path", p) != nil {
			return "", errOutsideRoots(p)
		}
	}
	if validRelPath("savepoint path", key) != nil {
		return "", errOutsideRoots(p)
	}
	if _, ok := within(defaultSavepointDir, key, "/"); !ok {
		return "", errOutsideRoots(p)
	}
	return key, nil
}

// InitSavepointLocation implements Storage: it reserves a key prefix inside
// target under which no object exists and none was reserved before.
func (s *MemStorage) InitSavepointLocation(ctx context.Context, target, job string) (Location, error) {
	if err := ctx.Err(); err != nil {
		return Location{}, err
	}
	if err := validName("job id", job); err != nil {
		return Location{}, err
	}
	if target == "" {
		target = memScheme + defaultSavepointDir
	}
	base, err := memSavepointKey(target)
	if err != nil {
		return Location{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range savepointNameAttempts {
		name, err := savepointName(s.random, job)
		if err != nil {
			return Location{}, err
		}
		key := base + "/" + name
		if !s.mu.reserved[key] && !s.holdsLocked(key+"/") {
			s.mu.reserved[key] = true
			return SavepointLocation(memScheme + key), nil
		}
	}
	return Location{}, errNoFreshName(memScheme + base)
}

// holdsLocked reports whether an object's key starts with prefix.
func (s *MemStorage) holdsLocked(prefix string) bool {
	for k := range s.mu.objects {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// CreateStream implements Storage. Data is buffered in the writer and
// committed on Close.
func (s *MemStorage) CreateStream(ctx context.Context, loc Location, name string) (StreamWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validName("stream name", name); err != nil {
		return nil, err
	}
	dir, err := s.locationKey(loc)
	if err != nil {
		return nil, err
	}
	return &memWriter{s: s, ctx: ctx, key: dir + "/" + name}, nil
}

type memWriter struct {
	s     *MemStorage
	ctx   context.Context
	key   string
	buf   []byte
	ended bool
	err   error
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.ended {
		return 0, fmt.Errorf("%w: %s%s", ErrWriterClosed, memScheme, w.key)
	}
	if err := w.ctx.Err(); err != nil {
		return 0, w.fail(err)
	}
	s := w.s
	s.mu.Lock()
	err := s.writeOpLocked(int64(len(p)))
	if err == nil {
		s.mu.used += int64(len(p))
	}
	s.mu.Unlock()
	if err != nil {
		return 0, w.fail(fmt.Errorf("checkpoint: write stream %s%s: %w", memScheme, w.key, err))
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *memWriter) Pos() int64 { return int64(len(w.buf)) }

func (w *memWriter) Close() (StreamHandle, error) {
	if w.ended {
		return StreamHandle{}, fmt.Errorf("%w: %s%s", ErrWriterClosed, memScheme, w.key)
	}
	if err := w.ctx.Err(); err != nil {
		return StreamHandle{}, w.fail(err)
	}
	s := w.s
	s.mu.Lock()
	err := s.writeOpLocked(0)
	if err == nil {
		if old, ok := s.mu.objects[w.key]; ok {
			s.mu.used -= int64(len(old))
		}
		s.mu.objects[w.key] = w.buf
	}
	s.mu.Unlock()
	if err != nil {
		return StreamHandle{}, w.fail(fmt.Errorf("checkpoint: close stream %s%s: %w", memScheme, w.key, err))
	}
	w.ended = true
	return StreamHandle{Path: memScheme + w.key, Size: int64(len(w.buf))}, nil
}

func (w *memWriter) Abort() error {
	if !w.ended {
		w.fail(fmt.Errorf("%w: aborted", ErrWriterClosed))
	}
	return nil
}

// fail ends the writer, releasing its buffered bytes, and returns err.
func (w *memWriter) fail(err error) error {
	if !w.ended {
		w.ended = true
		w.s.mu.Lock()
		w.s.mu.used -= int64(len(w.buf))
		w.s.mu.Unlock()
		w.buf = nil
		w.err = err
	}
	return err
}

// OpenStream implements Storage.
func (s *MemStorage) OpenStream(ctx context.Context, h StreamHandle) (StreamReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key, ok := strings.CutPrefix(h.Path, memScheme)
	if !ok {
		return nil, fmt.Errorf("%w: stream path %q does not start with %q", ErrInvalidName, h.Path, memScheme)
	}
	s.mu.Lock()
	data, ok := s.readLocked(key)
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("checkpoint: open stream: %w: %s", ErrNotFound, h.Path)
	}
	if int64(len(data)) != h.Size {
		return nil, fmt.Errorf("%w: stream %s: handle says %d bytes, found %d", ErrCorrupt, h.Path, h.Size, len(data))
	}
	return memReader{bytes.NewReader(data)}, nil
}

type memReader struct{ *bytes.Reader }

func (r memReader) Close() error { return nil }

// WriteMetadata implements Storage. It counts as one write operation.
func (s *MemStorage) WriteMetadata(ctx context.Context, loc Location, m *Metadata) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := s.locationKey(loc)
	if err != nil {
		return err
	}
	if err := checkMetadataLocation(loc, m); err != nil {
		return err
	}
	s.mu.Lock()
	hook := s.mu.faults.beforeMetadata
	s.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, loc); err != nil {
			return fmt.Errorf("checkpoint: write metadata of %s: %w", loc, err)
		}
	}
	data, err := EncodeMetadata(relativize(m, memScheme+dir, "/"))
	if err != nil {
		return err
	}
	key := dir + "/" + MetadataFileName
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.mu.objects[key]; ok {
		return fmt.Errorf("%w: metadata of %s", ErrExists, loc)
	}
	if err := s.writeOpLocked(int64(len(data))); err != nil {
		return fmt.Errorf("checkpoint: write metadata of %s: %w", loc, err)
	}
	s.mu.objects[key] = data
	s.mu.used += int64(len(data))
	return nil
}

// ReadMetadata implements Storage.
func (s *MemStorage) ReadMetadata(ctx context.Context, loc Location) (*Metadata, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := s.locationKey(loc)
	if err != nil {
		return nil, err
	}
	key := dir + "/" + MetadataFileName
	s.mu.Lock()
	data, ok := s.readLocked(key)
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("checkpoint: read metadata of %s: %w", loc, ErrNotFound)
	}
	return decodeAt(data, memScheme+key, memScheme+dir, "/", isMemAbs)
}

func isMemAbs(p string) bool { return strings.HasPrefix(p, memScheme) }

// ListCheckpoints implements Storage.
func (s *MemStorage) ListCheckpoints(ctx context.Context, job string) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validName("job id", job); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int64
	for k := range s.mu.objects {
		dir, ok := strings.CutPrefix(k, job+"/")
		if !ok || path.Base(dir) != MetadataFileName {
			continue
		}
		if id, ok := parseCheckpointDirName(path.Dir(dir)); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Delete implements Storage.
func (s *MemStorage) Delete(ctx context.Context, loc Location) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := s.locationKey(loc)
	if err != nil {
		return err
	}
	if dir == defaultSavepointDir {
		return fmt.Errorf("%w: delete %s: it is the savepoint root", ErrInvalidName, loc)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mu.faults.deleteErr; err != nil {
		return fmt.Errorf("checkpoint: delete %s: %w", loc, err)
	}
	delete(s.mu.reserved, dir)
	for k, v := range s.mu.objects {
		if strings.HasPrefix(k, dir+"/") {
			delete(s.mu.objects, k)
			s.mu.used -= int64(len(v))
		}
	}
	return nil
}
