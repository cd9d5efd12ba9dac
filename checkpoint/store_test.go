package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// completeCheckpoint writes checkpoint id of job with one stream and its
// metadata, and returns the metadata.
func completeCheckpoint(t *testing.T, ctx context.Context, s Storage, id int64) *Metadata {
	t.Helper()
	loc := CheckpointLocation(job, id)
	k := writeStream(t, ctx, s, loc, "keyed", pattern(100, byte(id)))
	m := testMetadata(job, id, k, StreamHandle{})
	require.NoError(t, s.WriteMetadata(ctx, loc, m))
	return m
}

func storeIDs(st *Store) []int64 {
	var ids []int64
	for _, c := range st.Checkpoints() {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestStoreRetention(t *testing.T) {
	tests := []struct {
		retained int
		want     []int64
	}{
		{0, []int64{5}}, // default: 1, as Flink
		{1, []int64{5}},
		{3, []int64{3, 4, 5}},
		{10, []int64{1, 2, 3, 4, 5}},
	}
	for _, tc := range tests {
		ctx := testCtx(t)
		s := NewMemStorage()
		st, err := OpenStore(ctx, s, job, StoreConfig{MaxRetained: tc.retained})
		require.NoError(t, err)
		_, ok := st.Latest()
		require.False(t, ok)
		for id := int64(1); id <= 5; id++ {
			require.NoError(t, st.Add(ctx, completeCheckpoint(t, ctx, s, id)))
		}
		require.Equal(t, tc.want, storeIDs(st), "retained %d", tc.retained)
		ids, err := s.ListCheckpoints(ctx, job)
		require.NoError(t, err)
		require.Equal(t, tc.want, ids, "storage holds only the retained checkpoints")
		latest, ok := st.Latest()
		require.True(t, ok)
		require.Equal(t, int64(5), latest.ID)
		require.Equal(t, int64(5), latest.Metadata.CheckpointID)
		stats := st.Stats()
		require.Equal(t, uint64(5), stats.Added)
		require.Equal(t, uint64(5-len(tc.want)), stats.Deleted)
		require.Equal(t, len(tc.want), stats.Retained)
		require.Equal(t, int64(5), stats.LatestID)
	}
}

func TestStoreRecovery(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	s, err := NewFileStorage(FileStorageConfig{Dir: dir})
	require.NoError(t, err)
	for id := int64(1); id <= 4; id++ {
		completeCheckpoint(t, ctx, s, id)
	}
	writeStream(t, ctx, s, CheckpointLocation(job, 5), "keyed", []byte("in progress")) // never completed

	// A new process opens the store on the same directory.
	s2, err := NewFileStorage(FileStorageConfig{Dir: dir})
	require.NoError(t, err)
	st, err := OpenStore(ctx, s2, job, StoreConfig{MaxRetained: 2})
	require.NoError(t, err)
	require.Equal(t, []int64{3, 4}, storeIDs(st))
	latest, _ := st.Latest()
	require.Equal(t, pattern(100, 4), readStream(t, ctx, s2, latest.Metadata.Operators[0].Subtasks[0].Keyed[0].Stream))
	ids, err := s2.ListCheckpoints(ctx, job)
	require.NoError(t, err)
	require.Equal(t, []int64{3, 4}, ids, "recovery deletes subsumed checkpoints")
	require.Equal(t, uint64(2), st.Stats().Deleted)

	// The next checkpoint continues the sequence.
	require.NoError(t, st.Add(ctx, completeCheckpoint(t, ctx, s2, 6)))
	require.Equal(t, []int64{4, 6}, storeIDs(st))

	// An unknown job recovers empty.
	empty, err := OpenStore(ctx, s2, "other-job", DefaultStoreConfig())
	require.NoError(t, err)
	require.Empty(t, empty.Checkpoints())
	require.Equal(t, "other-job", empty.Job())
}

func TestStoreDeleteFailuresAreReported(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	var logs bytes.Buffer
	st, err := OpenStore(ctx, s, job, StoreConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	require.NoError(t, st.Add(ctx, completeCheckpoint(t, ctx, s, 1)))

	boom := errors.New("bucket is read-only")
	s.FailDeletes(boom)
	require.NoError(t, st.Add(ctx, completeCheckpoint(t, ctx, s, 2)), "a deletion failure is not an Add failure")
	require.Equal(t, []int64{2}, storeIDs(st))
	stats := st.Stats()
	require.Equal(t, uint64(1), stats.DeleteFailures)
	require.Equal(t, 1, stats.PendingDeletes)
	require.ErrorIs(t, stats.LastDeleteError, boom)
	require.Contains(t, logs.String(), "could not delete subsumed checkpoint")
	require.Contains(t, logs.String(), "bucket is read-only")

	// Still failing: checkpoint 1 and 2 are both pending now.
	require.NoError(t, st.Add(ctx, completeCheckpoint(t, ctx, s, 3)))
	require.Equal(t, 2, st.Stats().PendingDeletes)

	// Storage recovers: the next Add retries the pending deletions.
	s.FailDeletes(nil)
	require.NoError(t, st.Add(ctx, completeCheckpoint(t, ctx, s, 4)))
	stats = st.Stats()
	require.Zero(t, stats.PendingDeletes)
	require.Equal(t, uint64(3), stats.Deleted)
	ids, err := s.ListCheckpoints(ctx, job)
	require.NoError(t, err)
	require.Equal(t, []int64{4}, ids)
}

func TestStoreAddRejects(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	st, err := OpenStore(ctx, s, job, DefaultStoreConfig())
	require.NoError(t, err)
	require.NoError(t, st.Add(ctx, completeCheckpoint(t, ctx, s, 5)))

	sp := testMetadata(job, 6, StreamHandle{}, StreamHandle{})
	sp.IsSavepoint = true
	other := testMetadata("job-b", 7, StreamHandle{}, StreamHandle{})
	for _, tc := range []struct {
		name string
		m    *Metadata
		msg  string
	}{
		{"nil", nil, "nil metadata"},
		{"savepoint", sp, "savepoints belong to the user"},
		{"other job", other, `checkpoint of job "job-b" added to the store of job "job-a"`},
		{"same id", testMetadata(job, 5, StreamHandle{}, StreamHandle{}), "checkpoint 5 added after checkpoint 5"},
		{"older", testMetadata(job, 4, StreamHandle{}, StreamHandle{}), "checkpoint 4 added after checkpoint 5"},
	} {
		err := st.Add(ctx, tc.m)
		require.ErrorIs(t, err, ErrInvalidMetadata, tc.name)
		require.ErrorContains(t, err, tc.msg, tc.name)
	}
	require.Equal(t, []int64{5}, storeIDs(st))
}

func TestStoreUnreadableCheckpoint(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	completeCheckpoint(t, ctx, s, 1)
	completeCheckpoint(t, ctx, s, 2)
	s.CorruptReads(func(p string) bool { return p == "mem://job-a/chk-2/_metadata" })

	_, err := OpenStore(ctx, s, job, DefaultStoreConfig())
	require.ErrorIs(t, err, ErrCorrupt, "by default an unreadable newest checkpoint is an error")
	require.ErrorContains(t, err, "checkpoint 2")

	var logs bytes.Buffer
	st, err := OpenStore(ctx, s, job, StoreConfig{SkipUnreadable: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	require.Equal(t, []int64{1}, storeIDs(st))
	require.Equal(t, []int64{2}, st.Stats().Skipped)
	require.Contains(t, logs.String(), "skipping unreadable checkpoint")
	ids, err := s.ListCheckpoints(ctx, job)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2}, ids, "an unreadable checkpoint is left for inspection")
}

func TestStoreOpenErrors(t *testing.T) {
	ctx := testCtx(t)
	_, err := OpenStore(ctx, NewMemStorage(), job, StoreConfig{MaxRetained: -1})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = OpenStore(ctx, NewMemStorage(), "a/b", DefaultStoreConfig())
	require.ErrorIs(t, err, ErrInvalidName)

	// A listing failure fails recovery.
	dir := t.TempDir()
	s, err := NewFileStorage(FileStorageConfig{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, job), nil, 0o644)) // the job dir is a file
	_, err = OpenStore(ctx, s, job, DefaultStoreConfig())
	require.Error(t, err)
	require.ErrorContains(t, err, "recover store")
}

func TestStoreDiscardAll(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	st, err := OpenStore(ctx, s, job, StoreConfig{MaxRetained: 2})
	require.NoError(t, err)
	for id := int64(1); id <= 3; id++ {
		require.NoError(t, st.Add(ctx, completeCheckpoint(t, ctx, s, id)))
	}
	sp := testMetadata(job, 4, StreamHandle{}, StreamHandle{})
	sp.IsSavepoint = true
	require.NoError(t, s.WriteMetadata(ctx, SavepointLocation("keep"), sp))

	s.FailDeletes(errors.New("boom"))
	require.ErrorContains(t, st.DiscardAll(ctx), "boom")
	require.Equal(t, 2, st.Stats().PendingDeletes)
	s.FailDeletes(nil)
	require.NoError(t, st.DiscardAll(ctx))
	require.Empty(t, st.Checkpoints())
	ids, err := s.ListCheckpoints(ctx, job)
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = s.ReadMetadata(ctx, SavepointLocation("keep"))
	require.NoError(t, err, "savepoints survive")
}

func TestStoreConcurrentUse(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	st, err := OpenStore(ctx, s, job, StoreConfig{MaxRetained: 2})
	require.NoError(t, err)
	metas := make([]*Metadata, 20)
	for i := range metas {
		metas[i] = completeCheckpoint(t, ctx, s, int64(i+1))
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, m := range metas {
			_ = st.Add(ctx, m)
		}
	})
	for range 2 {
		wg.Go(func() {
			for range 100 {
				st.Latest()
				st.Stats()
				st.Checkpoints()
			}
		})
	}
	wg.Wait()
	require.Equal(t, []int64{19, 20}, storeIDs(st))
	ids, err := s.ListCheckpoints(ctx, job)
	require.NoError(t, err)
	require.Equal(t, []int64{19, 20}, ids)
}
