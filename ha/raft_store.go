package ha

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// The layout of RaftConfig.DataDir.
const (
	walDirName       = "wal"         // the log: raft-wal segment files and walMetaFileName
	walMetaFileName  = "wal-meta.db" // raft-wal's metadata and raft's stable store (term, vote)
	snapshotsDirName = "snapshots"   // raft.FileSnapshotStore's directory under DataDir
	lockFileName     = "LOCK"        // held (flock) while a node runs
)

// durableIndexKey is the stable store key of durableIndex: a log index up
// to which every entry was durably written. raft-wal recovers a damaged
// tail segment by dropping what follows the damage, silently; a log that
// ends before durableIndex at start lost entries it had acknowledged, which
// Raft's safety does not survive, so the node refuses to start.
var durableIndexKey = []byte("flink-durable-index")

// durableIndexInterval is how often StoreLogs persists durableIndex, at
// most: each update is an fsync'ed bbolt transaction (about as costly as
// the log write itself), so it lags by up to this much while the node
// runs. Close persists the exact last index.
const durableIndexInterval = time.Second

// logStore is a node's Raft log and stable store: raft-wal in DataDir/wal,
// plus the durableIndex check.
//
// Raft calls its methods from several goroutines; mu serializes writes.
type logStore struct {
	wal    *wal.WAL
	meta   *metadb.BoltMetaDB // raft-wal does not close it; Close does
	dir    string
	logger *slog.Logger

	mu struct {
		sync.Mutex
		durable uint64    // the persisted durableIndex
		savedAt time.Time // when durable was last persisted
		closed  bool
	}
}

var (
	_ raft.LogStore          = (*logStore)(nil)
	_ raft.StableStore       = (*logStore)(nil)
	_ raft.MonotonicLogStore = (*logStore)(nil)
)

// openLogStore opens (or creates) the log in dir. Damage that raft-wal or
// bbolt reports, even as a panic, is returned as an error wrapping
// ErrCorruptLog that names the files.
func openLogStore(dir string, segmentSize int, logger *slog.Logger) (s *logStore, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ha: raft log: %w", err)
	}
	meta := &metadb.BoltMetaDB{}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: opening the log panicked: %v", ErrCorruptLog, describeLogFiles(dir), p)
		}
		if err != nil {
			_ = meta.Close()
		}
	}()
	w, err := wal.Open(dir,
		wal.WithMetaStore(meta),
		wal.WithSegmentSize(segmentSize),
		wal.WithLogger(newHCLogAdapter(logger, "raft-wal")))
	if err != nil {
		if strings.Contains(err.Error(), walMetaFileName) {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorruptLog, filepath.Join(dir, walMetaFileName), err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptLog, describeLogFiles(dir), err)
	}
	s = &logStore{wal: w, meta: meta, dir: dir, logger: logger}
	d, err := w.GetUint64(durableIndexKey)
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("%w: %s: read durable index: %w", ErrCorruptLog, filepath.Join(dir, walMetaFileName), err)
	}
	s.mu.durable = d
	return s, nil
}

// verify checks the log at start: nothing durably written was lost, no
// gap between the latest snapshot (index snapIndex, 0 if none) and the
// log, and every entry reads back, with the right index and, for job store
// commands, an intact checksum. It reads the whole log, which snapshots
// keep short. Errors wrap ErrCorruptLog and name the segment file.
func (s *logStore) verify(snapIndex uint64) error {
	first, err := s.wal.FirstIndex()
	if err != nil {
		return fmt.Errorf("%w: %s: first index: %w", ErrCorruptLog, s.dir, err)
	}
	last, err := s.wal.LastIndex()
	if err != nil {
		return fmt.Errorf("%w: %s: last index: %w", ErrCorruptLog, s.dir, err)
	}
	s.mu.Lock()
	durable := s.mu.durable
	s.mu.Unlock()
	if last < durable {
		return fmt.Errorf("%w: %s: the log ends at index %d, but entries up to %d were written durably: the segment file is damaged, truncated or lost",
			ErrCorruptLog, s.segmentFile(last+1), last, durable)
	}
	if last == 0 {
		return nil
	}
	if first > snapIndex+1 {
		snap := "there is no snapshot"
		if snapIndex > 0 {
			snap = fmt.Sprintf("the latest snapshot ends at index %d", snapIndex)
		}
		return fmt.Errorf("%w: %s: the log starts at index %d and %s: entries %d-%d are missing",
			ErrCorruptLog, s.segmentFile(first), first, snap, snapIndex+1, first-1)
	}
	var l raft.Log
	for i := first; i <= last; i++ {
		if err := s.readChecked(i, &l); err != nil {
			return fmt.Errorf("%w: %s: entry %d: %w", ErrCorruptLog, s.segmentFile(i), i, err)
		}
	}
	return nil
}

// readChecked reads entry i into l and checks it, turning a panic of a
// decoder (raft-wal's on some damaged frames, raft's on a configuration it
// cannot decode) into an error.
func (s *logStore) readChecked(i uint64, l *raft.Log) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoding panicked: %v", p)
		}
	}()
	*l = raft.Log{}
	if err := s.wal.GetLog(i, l); err != nil {
		return err
	}
	if l.Index != i {
		return fmt.Errorf("read back as index %d", l.Index)
	}
	switch l.Type {
	case raft.LogCommand:
		if _, err := decodeCommand(l.Data); err != nil {
			return err
		}
	case raft.LogConfiguration:
		raft.DecodeConfiguration(l.Data) // panics if it cannot decode
	}
	return nil
}

// segmentFile returns the path of the segment file that holds (or would
// hold) entry index: the one with the highest base index not above it.
func (s *logStore) segmentFile(index uint64) string {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return s.dir
	}
	best, bestBase := "", uint64(0)
	for _, e := range entries {
		name := e.Name()
		base, ok := segmentBase(name)
		if !ok || base > index || (best != "" && base < bestBase) {
			continue
		}
		best, bestBase = name, base
	}
	if best == "" {
		return describeLogFiles(s.dir)
	}
	return filepath.Join(s.dir, best)
}

// segmentBase parses the base index out of a raft-wal segment file name
// ("00000000000000000001-0000000000000000.wal").
func segmentBase(name string) (uint64, bool) {
	base, _, ok := strings.Cut(strings.TrimSuffix(name, ".wal"), "-")
	if !ok || !strings.HasSuffix(name, ".wal") {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	return n, err == nil
}

// describeLogFiles names the log's files, for errors that cannot tell
// which one is damaged.
func describeLogFiles(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return dir
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return fmt.Sprintf("%s (%s)", dir, strings.Join(names, ", "))
}

// FirstIndex returns the first index in the log, 0 if it is empty.
func (s *logStore) FirstIndex() (uint64, error) { return s.wal.FirstIndex() }

// LastIndex returns the last index in the log, 0 if it is empty.
func (s *logStore) LastIndex() (uint64, error) { return s.wal.LastIndex() }

// GetLog reads entry index into l. Entries before FirstIndex are reported
// missing (raft.ErrLogNotFound) even while raft-wal can still read them,
// since it deletes only whole segments: deleted means deleted, and a
// follower that needs them gets a snapshot.
func (s *logStore) GetLog(index uint64, l *raft.Log) error {
	first, err := s.wal.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return s.wal.GetLog(index, l)
}

// StoreLog appends one entry.
func (s *logStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs appends entries durably, and now and then persists how far
// the log is durable.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.wal.StoreLogs(logs); err != nil {
		return err
	}
	if len(logs) == 0 {
		return nil
	}
	if time.Since(s.mu.savedAt) >= durableIndexInterval {
		if err := s.saveDurableLocked(logs[len(logs)-1].Index); err != nil {
			// The entries are stored; only the check at the next start
			// is weaker. A failing stable store stops raft soon anyway.
			s.logger.Warn("raft log: cannot persist the durable index", "error", err)
		}
	}
	return nil
}

// DeleteRange deletes entries min to max, inclusive: a prefix after a
// snapshot, a suffix that conflicts with the leader's log, or everything
// after a snapshot is installed. durableIndex is lowered first when the
// deletion reaches the end of the log.
func (s *logStore) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, err := s.wal.FirstIndex()
	if err != nil {
		return err
	}
	last, err := s.wal.LastIndex()
	if err != nil {
		return err
	}
	if min <= max && max >= last && min <= last {
		target := uint64(0) // everything goes
		if min > first {
			target = min - 1 // a suffix goes
		}
		if target < s.mu.durable {
			if err := s.saveDurableLocked(target); err != nil {
				return fmt.Errorf("ha: raft log: lower the durable index before deleting entries %d-%d: %w", min, max, err)
			}
		}
	}
	return s.wal.DeleteRange(min, max)
}

// saveDurableLocked persists index as durableIndex. s.mu is held.
func (s *logStore) saveDurableLocked(index uint64) error {
	if err := s.wal.SetUint64(durableIndexKey, index); err != nil {
		return err
	}
	s.mu.durable = index
	s.mu.savedAt = time.Now()
	return nil
}

// IsMonotonic reports true: raft-wal cannot have gaps in the log, so raft
// must delete the whole log after it installs a snapshot.
func (s *logStore) IsMonotonic() bool { return true }

// Set stores a stable store value.
func (s *logStore) Set(key, val []byte) error { return s.wal.Set(key, val) }

// Get returns a stable store value, empty if it is not set.
func (s *logStore) Get(key []byte) ([]byte, error) { return s.wal.Get(key) }

// SetUint64 stores a stable store integer.
func (s *logStore) SetUint64(key []byte, val uint64) error { return s.wal.SetUint64(key, val) }

// GetUint64 returns a stable store integer, 0 if it is not set.
func (s *logStore) GetUint64(key []byte) (uint64, error) { return s.wal.GetUint64(key) }

// Close persists the exact durable index and closes the log. Raft must no
// longer use it. It is idempotent.
func (s *logStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true
	var errs []error
	if last, err := s.wal.LastIndex(); err == nil && last != s.mu.durable {
		errs = append(errs, s.saveDurableLocked(last))
	}
	errs = append(errs, s.wal.Close(), s.meta.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ha: close raft log %s: %w", s.dir, err)
	}
	return nil
}

// snapshotMetaFile is the part of raft.FileSnapshotStore's meta.json that
// verifySnapshots reads.
type snapshotMetaFile struct {
	raft.SnapshotMeta
	CRC []byte
}

// verifySnapshots checks the snapshot store in dataDir before raft opens
// it. raft skips a snapshot whose metadata cannot be read and falls back to
// an older one when the newest fails its checksum, so a damaged snapshot
// would make the node start from older state than its log continues, and
// raft stop (panic) on the first missing entry. Instead every snapshot's
// meta.json must parse, and the newest snapshot must pass its checksum and
// decode as a job store snapshot; errors wrap ErrCorruptSnapshot and name
// the file. It returns the newest snapshot's metadata, nil if there is
// none.
func verifySnapshots(dataDir string, store *raft.FileSnapshotStore) (*raft.SnapshotMeta, error) {
	dir := filepath.Join(dataDir, snapshotsDirName)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("ha: raft snapshots: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		path := filepath.Join(dir, e.Name(), "meta.json")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorruptSnapshot, path, err)
		}
		var m snapshotMetaFile
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorruptSnapshot, path, err)
		}
		if m.Version < raft.SnapshotVersionMin || m.Version > raft.SnapshotVersionMax {
			return nil, fmt.Errorf("%w: %s: snapshot format version %d, expected %d..%d",
				ErrCorruptSnapshot, path, m.Version, raft.SnapshotVersionMin, raft.SnapshotVersionMax)
		}
	}
	metas, err := store.List()
	if err != nil {
		return nil, fmt.Errorf("ha: raft snapshots: %w", err)
	}
	if len(metas) == 0 {
		return nil, nil
	}
	latest := metas[0]
	path := filepath.Join(dir, latest.ID, "state.bin")
	_, rc, err := store.Open(latest.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptSnapshot, path, err)
	}
	defer rc.Close()
	if _, err := decodeSnapshot(rc); err != nil {
		return nil, snapshotFileError(path, err)
	}
	return latest, nil
}

// snapshotFileError names path in an error of decodeSnapshot: "ha: corrupt
// job store snapshot: <path>: <what is wrong>".
func snapshotFileError(path string, err error) error {
	if !errors.Is(err, ErrCorruptSnapshot) {
		return fmt.Errorf("ha: read snapshot %s: %w", path, err)
	}
	detail := strings.TrimPrefix(err.Error(), ErrCorruptSnapshot.Error()+": ")
	return fmt.Errorf("%w: %s: %s", ErrCorruptSnapshot, path, detail)
}
