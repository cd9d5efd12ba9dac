package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
)

// StoreConfig configures a Store.
type StoreConfig struct {
	// MaxRetained is how many completed checkpoints the store keeps; older
	// ones are deleted from storage when a newer one is added. Flink's
	// state.checkpoints.num-retained; default 1, as in Flink, because one
	// completed checkpoint is enough to restore and keeps storage small.
	MaxRetained int
	// SkipUnreadable makes OpenStore skip completed checkpoints whose
	// metadata cannot be decoded (corrupt, or written by a newer version),
	// logging them, and recover from older ones. Off by default: restoring
	// an older checkpoint than the newest completed one can replay side
	// effects that transactional sinks already committed, so an unreadable
	// newest checkpoint is an error unless the operator opts in.
	SkipUnreadable bool
	// Logger receives deletion failures and skipped checkpoints. Default:
	// discard.
	Logger *slog.Logger
}

// DefaultStoreConfig returns the defaults: keep one checkpoint, fail on
// unreadable ones, discard logs.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{MaxRetained: 1}
}

// Validate checks the configuration; zero values mean the defaults.
func (c StoreConfig) Validate() error {
	if c.MaxRetained < 0 {
		return fmt.Errorf("%w: StoreConfig.MaxRetained %d, expected >= 1 (or 0 for the default 1)", ErrInvalidConfig, c.MaxRetained)
	}
	return nil
}

// CompletedCheckpoint is a checkpoint held by a Store.
type CompletedCheckpoint struct {
	// ID is the checkpoint's id.
	ID int64
	// Metadata is its metadata. It is shared: do not modify it.
	Metadata *Metadata
}

// StoreStats are a Store's pulled metrics.
type StoreStats struct {
	// Retained is the number of checkpoints held.
	Retained int
	// LatestID is the newest checkpoint's id; 0 if there is none.
	LatestID int64
	// Added counts checkpoints added since the store was opened.
	Added uint64
	// Deleted counts checkpoints deleted from storage.
	Deleted uint64
	// DeleteFailures counts failed deletions; each is retried on the next
	// Add.
	DeleteFailures uint64
	// PendingDeletes is the number of subsumed checkpoints whose deletion
	// failed and is waiting for a retry.
	PendingDeletes int
	// Skipped lists the unreadable checkpoints OpenStore skipped (with
	// StoreConfig.SkipUnreadable); they are left in storage.
	Skipped []int64
	// LastDeleteError is the most recent deletion failure, if any.
	LastDeleteError error
}

// Store is the completed checkpoint store of one job, as Flink's
// CompletedCheckpointStore: it keeps the newest MaxRetained completed
// checkpoints and deletes older ones from storage. OpenStore recovers its
// list from storage, so a restarted JobManager finds the checkpoints of the
// previous one. Deleting is best effort: a failure is logged, counted in
// Stats and retried on the next Add, never returned as an error of Add.
//
// Savepoints are not held by the store: they belong to the user.
// The store is safe for concurrent use; Add and DiscardAll block on storage.
type Store struct {
	storage Storage
	job     string
	cfg     StoreConfig

	mu struct {
		sync.Mutex
		checkpoints []CompletedCheckpoint // ascending ids
		pending     []int64               // subsumed, deletion failed
		stats       StoreStats
	}
}

// OpenStore recovers job's completed checkpoints from storage: it lists
// them, reads the metadata of the newest MaxRetained and deletes the older
// ones (failures reported as for Add). It fails if listing or reading fails;
// a checkpoint whose metadata cannot be decoded fails it too, unless
// cfg.SkipUnreadable is set.
func OpenStore(ctx context.Context, storage Storage, job string, cfg StoreConfig) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxRetained == 0 {
		cfg.MaxRetained = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := validName("job id", job); err != nil {
		return nil, err
	}
	s := &Store{storage: storage, job: job, cfg: cfg}
	ids, err := storage.ListCheckpoints(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: recover store of job %q: %w", job, err)
	}
	var kept []CompletedCheckpoint
	var subsumed []int64
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		if len(kept) == cfg.MaxRetained {
			subsumed = append(subsumed, id)
			continue
		}
		m, err := storage.ReadMetadata(ctx, CheckpointLocation(job, id))
		switch {
		case err == nil:
			kept = append(kept, CompletedCheckpoint{ID: id, Metadata: m})
		case errors.Is(err, ErrNotFound):
			// Deleted since it was listed.
		case cfg.SkipUnreadable && isUnreadable(err):
			cfg.Logger.Warn("checkpoint: skipping unreadable checkpoint", "job", job, "checkpoint", id, "error", err)
			s.mu.stats.Skipped = append(s.mu.stats.Skipped, id)
		default:
			return nil, fmt.Errorf("checkpoint: recover store of job %q: checkpoint %d: %w", job, id, err)
		}
	}
	slices.Reverse(kept)
	s.mu.checkpoints = kept
	s.deleteSubsumed(ctx, subsumed)
	return s, nil
}

// isUnreadable reports whether err says the metadata itself is bad, as
// opposed to the storage failing to deliver it.
func isUnreadable(err error) bool {
	for _, e := range []error{ErrBadMagic, ErrUnsupportedVersion, ErrTruncated, ErrCorrupt, ErrInvalidMetadata} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Job returns the id of the store's job.
func (s *Store) Job() string { return s.job }

// Add records a completed checkpoint whose metadata has been written with
// Storage.WriteMetadata, then deletes the checkpoints it subsumes (beyond
// MaxRetained) and retries earlier failed deletions. It returns an error
// only for a checkpoint it refuses: a savepoint, another job's, or one not
// newer than the latest; deletion failures are reported through the logger
// and Stats. m is kept: do not modify it afterwards.
func (s *Store) Add(ctx context.Context, m *Metadata) error {
	switch {
	case m == nil:
		return fmt.Errorf("%w: nil metadata", ErrInvalidMetadata)
	case m.IsSavepoint:
		return fmt.Errorf("%w: savepoint %d added to the checkpoint store; savepoints belong to the user", ErrInvalidMetadata, m.CheckpointID)
	case m.JobID != s.job:
		return fmt.Errorf("%w: checkpoint of job %q added to the store of job %q", ErrInvalidMetadata, m.JobID, s.job)
	}
	s.mu.Lock()
	if n := len(s.mu.checkpoints); n > 0 && m.CheckpointID <= s.mu.checkpoints[n-1].ID {
		latest := s.mu.checkpoints[n-1].ID
		s.mu.Unlock()
		return fmt.Errorf("%w: checkpoint %d added after checkpoint %d, expected a newer one", ErrInvalidMetadata, m.CheckpointID, latest)
	}
	s.mu.checkpoints = append(s.mu.checkpoints, CompletedCheckpoint{ID: m.CheckpointID, Metadata: m})
	s.mu.stats.Added++
	var subsumed []int64
	for len(s.mu.checkpoints) > s.cfg.MaxRetained {
		subsumed = append(subsumed, s.mu.checkpoints[0].ID)
		s.mu.checkpoints = slices.Delete(s.mu.checkpoints, 0, 1)
	}
	subsumed = append(subsumed, s.mu.pending...)
	s.mu.pending = nil
	s.mu.Unlock()
	s.deleteSubsumed(ctx, subsumed)
	return nil
}

// deleteSubsumed deletes checkpoints from storage, recording failures for a
// retry.
func (s *Store) deleteSubsumed(ctx context.Context, ids []int64) {
	for _, id := range ids {
		err := s.storage.Delete(ctx, CheckpointLocation(s.job, id))
		s.mu.Lock()
		if err != nil {
			s.mu.stats.DeleteFailures++
			s.mu.stats.LastDeleteError = err
			if !slices.Contains(s.mu.pending, id) {
				s.mu.pending = append(s.mu.pending, id)
			}
		} else {
			s.mu.stats.Deleted++
		}
		s.mu.Unlock()
		if err != nil {
			s.cfg.Logger.Warn("checkpoint: could not delete subsumed checkpoint; will retry",
				"job", s.job, "checkpoint", id, "error", err)
		}
	}
}

// Latest returns the newest checkpoint, or false if the store is empty.
func (s *Store) Latest() (CompletedCheckpoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.checkpoints) == 0 {
		return CompletedCheckpoint{}, false
	}
	return s.mu.checkpoints[len(s.mu.checkpoints)-1], true
}

// Checkpoints returns the retained checkpoints, oldest first.
func (s *Store) Checkpoints() []CompletedCheckpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mu.checkpoints)
}

// Stats returns the store's metrics.
func (s *Store) Stats() StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.mu.stats
	st.Retained = len(s.mu.checkpoints)
	if st.Retained > 0 {
		st.LatestID = s.mu.checkpoints[st.Retained-1].ID
	}
	st.PendingDeletes = len(s.mu.pending)
	st.Skipped = slices.Clone(st.Skipped)
	return st
}

// DiscardAll deletes every retained checkpoint and every pending deletion
// from storage and empties the store, as Flink does when a job reaches a
// terminal state without retained checkpoints. Unlike Add it returns the
// deletion failures; the failed checkpoints stay pending.
func (s *Store) DiscardAll(ctx context.Context) error {
	s.mu.Lock()
	ids := s.mu.pending
	for _, c := range s.mu.checkpoints {
		ids = append(ids, c.ID)
	}
	s.mu.checkpoints, s.mu.pending = nil, nil
	s.mu.Unlock()
	s.deleteSubsumed(ctx, ids)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.pending) > 0 {
		return fmt.Errorf("checkpoint: discard checkpoints %v of job %q: %w", s.mu.pending, s.job, s.mu.stats.LastDeleteError)
	}
	return nil
}
