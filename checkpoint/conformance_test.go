package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The conformance suite: the same cases run against every Storage.

func TestFileStorageConformance(t *testing.T) { runConformance(t, newFileFactory) }
func TestMemStorageConformance(t *testing.T)  { runConformance(t, newMemFactory) }

func TestS3StorageConformance(t *testing.T) {
	requireMinio(t)
	runConformance(t, newS3Factory)
}

type conformanceCase struct {
	name string
	run  func(t *testing.T, s Storage, list func() []string)
}

func runConformance(t *testing.T, factory storageFactory) {
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) {
			s, list := factory(t)
			tc.run(t, s, list)
		})
	}
}

const job = "job-a"

var conformanceCases = []conformanceCase{
	{"StreamRoundTrip", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		for _, n := range []int{0, 1, 999, 4096} {
			data := pattern(n, byte(n))
			h := writeStream(t, ctx, s, CheckpointLocation(job, 1), fmt.Sprintf("s%d", n), data)
			assert.Equal(t, data, readStream(t, ctx, s, h), "size %d", n)
		}
	}},
	{"ReadAt", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		data := pattern(3000, 1)
		h := writeStream(t, ctx, s, CheckpointLocation(job, 1), "keyed", data)
		r, err := s.OpenStream(ctx, h)
		require.NoError(t, err)
		defer r.Close()
		for _, tc := range []struct {
			off, n, want int
			eof          bool
		}{
			{0, 10, 10, false},
			{1500, 100, 100, false},
			{2990, 10, 10, false},
			{2995, 10, 5, true},
			{3000, 10, 0, true},
			{3500, 1, 0, true},
		} {
			p := make([]byte, tc.n)
			n, err := r.ReadAt(p, int64(tc.off))
			require.Equal(t, tc.want, n, "ReadAt(%d, %d)", tc.off, tc.n)
			if tc.eof {
				require.ErrorIs(t, err, io.EOF)
			} else {
				require.NoError(t, err)
			}
			if n > 0 {
				require.Equal(t, data[tc.off:tc.off+n], p[:n])
			}
		}
		// Sequential reading still starts at 0 and is independent of ReadAt.
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Equal(t, data, got)
	}},
	{"ConcurrentReadAt", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		data := pattern(8000, 3)
		h := writeStream(t, ctx, s, CheckpointLocation(job, 1), "keyed", data)
		r, err := s.OpenStream(ctx, h)
		require.NoError(t, err)
		defer r.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				p := make([]byte, 1000)
				if _, err := r.ReadAt(p, int64(i*1000)); err != nil {
					errs <- err
				} else if !bytes.Equal(p, data[i*1000:(i+1)*1000]) {
					errs <- fmt.Errorf("chunk %d differs", i)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}},
	{"AbortLeavesNothing", func(t *testing.T, s Storage, list func() []string) {
		ctx := testCtx(t)
		w, err := s.CreateStream(ctx, CheckpointLocation(job, 1), "keyed")
		require.NoError(t, err)
		_, err = w.Write(pattern(5000, 0))
		require.NoError(t, err)
		require.NoError(t, w.Abort())
		require.NoError(t, w.Abort(), "Abort is idempotent")
		_, err = w.Write([]byte{1})
		require.ErrorIs(t, err, ErrWriterClosed)
		_, err = w.Close()
		require.ErrorIs(t, err, ErrWriterClosed)
		require.Empty(t, list())
	}},
	{"WriterClosedTwice", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		w, err := s.CreateStream(ctx, CheckpointLocation(job, 1), "keyed")
		require.NoError(t, err)
		_, err = w.Write([]byte("abc"))
		require.NoError(t, err)
		h, err := w.Close()
		require.NoError(t, err)
		require.NoError(t, w.Abort(), "Abort after Close is a no-op")
		_, err = w.Close()
		require.ErrorIs(t, err, ErrWriterClosed)
		_, err = w.Write([]byte("x"))
		require.ErrorIs(t, err, ErrWriterClosed)
		require.Equal(t, []byte("abc"), readStream(t, ctx, s, h))
	}},
	{"StreamReplacedByName", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		loc := CheckpointLocation(job, 1)
		writeStream(t, ctx, s, loc, "keyed", []byte("first"))
		h := writeStream(t, ctx, s, loc, "keyed", []byte("second!"))
		require.Equal(t, []byte("second!"), readStream(t, ctx, s, h))
	}},
	{"OpenStreamErrors", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		h := writeStream(t, ctx, s, CheckpointLocation(job, 1), "keyed", []byte("abc"))
		_, err := s.OpenStream(ctx, StreamHandle{Path: h.Path, Size: 4})
		require.ErrorIs(t, err, ErrCorrupt)
		require.ErrorContains(t, err, "handle says 4 bytes, found 3")
		missing := StreamHandle{Path: strings.Replace(h.Path, "keyed", "nothere", 1), Size: 3}
		_, err = s.OpenStream(ctx, missing)
		require.ErrorIs(t, err, ErrNotFound)
	}},
	{"MetadataRoundTrip", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		loc := CheckpointLocation(job, 3)
		keyed := writeStream(t, ctx, s, loc, "keyed", pattern(400, 1))
		op := writeStream(t, ctx, s, loc, "op", pattern(50, 2))
		m := testMetadata(job, 3, keyed, op)
		require.NoError(t, s.WriteMetadata(ctx, loc, m))
		got, err := s.ReadMetadata(ctx, loc)
		require.NoError(t, err)
		m.Version = MetadataVersion
		require.Equal(t, m, got)
		// The handles in the metadata read back open the streams.
		require.Equal(t, pattern(400, 1), readStream(t, ctx, s, got.Operators[0].Subtasks[0].Keyed[0].Stream))
	}},
	{"MetadataNotOverwritten", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		loc := CheckpointLocation(job, 1)
		m := testMetadata(job, 1, StreamHandle{}, StreamHandle{})
		require.NoError(t, s.WriteMetadata(ctx, loc, m))
		m2 := testMetadata(job, 1, StreamHandle{}, StreamHandle{})
		m2.JobName = "other"
		require.ErrorIs(t, s.WriteMetadata(ctx, loc, m2), ErrExists)
		got, err := s.ReadMetadata(ctx, loc)
		require.NoError(t, err)
		require.Equal(t, "wordcount", got.JobName)
	}},
	{"MetadataMismatch", func(t *testing.T, s Storage, list func() []string) {
		ctx := testCtx(t)
		m := testMetadata(job, 1, StreamHandle{}, StreamHandle{})
		for _, loc := range []Location{CheckpointLocation(job, 2), CheckpointLocation("job-b", 1), SavepointLocation("sp")} {
			require.ErrorIs(t, s.WriteMetadata(ctx, loc, m), ErrInvalidMetadata, "%s", loc)
		}
		bad := testMetadata(job, 1, StreamHandle{}, StreamHandle{})
		bad.Operators[0].Parallelism = 0
		require.ErrorIs(t, s.WriteMetadata(ctx, CheckpointLocation(job, 1), bad), ErrInvalidMetadata)
		require.ErrorIs(t, s.WriteMetadata(ctx, CheckpointLocation(job, 1), nil), ErrInvalidMetadata)
		require.Empty(t, list())
	}},
	{"ConcurrentMetadataWrites", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		loc := CheckpointLocation(job, 1)
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				m := testMetadata(job, 1, StreamHandle{}, StreamHandle{})
				m.JobName = fmt.Sprintf("writer-%d", i)
				errs[i] = s.WriteMetadata(ctx, loc, m)
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "two writers succeeded")
				winner = i
			} else {
				require.ErrorIs(t, err, ErrExists)
			}
		}
		require.NotEqual(t, -1, winner, "no writer succeeded")
		got, err := s.ReadMetadata(ctx, loc)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("writer-%d", winner), got.JobName)
	}},
	{"ReadMissingMetadata", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		_, err := s.ReadMetadata(ctx, CheckpointLocation(job, 1))
		require.ErrorIs(t, err, ErrNotFound)
		writeStream(t, ctx, s, CheckpointLocation(job, 1), "keyed", []byte("x"))
		_, err = s.ReadMetadata(ctx, CheckpointLocation(job, 1))
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.ReadMetadata(ctx, SavepointLocation("nope"))
		require.ErrorIs(t, err, ErrNotFound)
	}},
	{"ListOnlyCompleted", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		ids, err := s.ListCheckpoints(ctx, job)
		require.NoError(t, err)
		require.Empty(t, ids)
		_, err = LatestCheckpoint(ctx, s, job)
		require.ErrorIs(t, err, ErrNotFound)
		for _, id := range []int64{10, 2, 1, 11} {
			loc := CheckpointLocation(job, id)
			writeStream(t, ctx, s, loc, "keyed", []byte("x"))
			if id != 11 { // 11 never completes
				require.NoError(t, s.WriteMetadata(ctx, loc, testMetadata(job, id, StreamHandle{}, StreamHandle{})))
			}
		}
		// Another job and a savepoint are not listed.
		require.NoError(t, s.WriteMetadata(ctx, CheckpointLocation("job-b", 12), testMetadata("job-b", 12, StreamHandle{}, StreamHandle{})))
		sp := testMetadata(job, 13, StreamHandle{}, StreamHandle{})
		sp.IsSavepoint = true
		require.NoError(t, s.WriteMetadata(ctx, SavepointLocation("sp-1"), sp))

		ids, err = s.ListCheckpoints(ctx, job)
		require.NoError(t, err)
		require.Equal(t, []int64{1, 2, 10}, ids)
		latest, err := LatestCheckpoint(ctx, s, job)
		require.NoError(t, err)
		require.Equal(t, int64(10), latest)
	}},
	{"Delete", func(t *testing.T, s Storage, list func() []string) {
		ctx := testCtx(t)
		for _, id := range []int64{1, 2} {
			loc := CheckpointLocation(job, id)
			k := writeStream(t, ctx, s, loc, "keyed", pattern(100, 0))
			o := writeStream(t, ctx, s, loc, "op", pattern(10, 0))
			require.NoError(t, s.WriteMetadata(ctx, loc, testMetadata(job, id, k, o)))
		}
		require.NoError(t, s.Delete(ctx, CheckpointLocation(job, 1)))
		require.NoError(t, s.Delete(ctx, CheckpointLocation(job, 1)), "deleting twice is fine")
		require.NoError(t, s.Delete(ctx, CheckpointLocation(job, 99)), "deleting a missing checkpoint is fine")
		ids, err := s.ListCheckpoints(ctx, job)
		require.NoError(t, err)
		require.Equal(t, []int64{2}, ids)
		for _, p := range list() {
			require.NotContains(t, p, "chk-1/")
		}
		require.NoError(t, s.Delete(ctx, CheckpointLocation(job, 2)))
		require.Empty(t, list())
	}},
	{"Savepoint", func(t *testing.T, s Storage, list func() []string) {
		ctx := testCtx(t)
		loc := SavepointLocation("savepoint-job-a-1")
		k := writeStream(t, ctx, s, loc, "keyed", pattern(300, 5))
		o := writeStream(t, ctx, s, loc, "op", pattern(30, 6))
		m := testMetadata(job, 5, k, o)
		m.IsSavepoint = true
		require.NoError(t, s.WriteMetadata(ctx, loc, m))

		// Checkpoints of the job come and go; the savepoint stays.
		cloc := CheckpointLocation(job, 6)
		require.NoError(t, s.WriteMetadata(ctx, cloc, testMetadata(job, 6, StreamHandle{}, StreamHandle{})))
		require.NoError(t, s.Delete(ctx, cloc))

		got, err := s.ReadMetadata(ctx, loc)
		require.NoError(t, err)
		require.True(t, got.IsSavepoint)
		require.Equal(t, k, got.Operators[0].Subtasks[0].Keyed[0].Stream)
		require.Equal(t, pattern(30, 6), readStream(t, ctx, s, got.Operators[0].Subtasks[0].Operator[0].Stream))
		require.ErrorIs(t, s.WriteMetadata(ctx, loc, m), ErrExists)

		require.NoError(t, s.Delete(ctx, loc))
		_, err = s.ReadMetadata(ctx, loc)
		require.ErrorIs(t, err, ErrNotFound)
		require.Empty(t, list())
	}},
	{"InvalidNames", func(t *testing.T, s Storage, list func() []string) {
		ctx := testCtx(t)
		for _, loc := range []Location{
			CheckpointLocation("", 1),
			CheckpointLocation("../x", 1),
			CheckpointLocation("a/b", 1),
			CheckpointLocation(".hidden", 1),
			CheckpointLocation(job, 0),
			CheckpointLocation(job, -1),
			SavepointLocation("../escape"),
			SavepointLocation("a/../../b"),
			SavepointLocation("a//b"),
			{Job: job, CheckpointID: 1, Savepoint: "sp"},
		} {
			_, err := s.CreateStream(ctx, loc, "keyed")
			require.ErrorIs(t, err, ErrInvalidName, "%+v", loc)
			_, err = s.ReadMetadata(ctx, loc)
			require.ErrorIs(t, err, ErrInvalidName, "%+v", loc)
			require.ErrorIs(t, s.Delete(ctx, loc), ErrInvalidName, "%+v", loc)
		}
		for _, name := range []string{"", "a/b", "..", ".tmp", "_metadata", MetadataFileName, strings.Repeat("x", 256)} {
			_, err := s.CreateStream(ctx, CheckpointLocation(job, 1), name)
			require.ErrorIs(t, err, ErrInvalidName, "%q", name)
		}
		_, err := s.ListCheckpoints(ctx, "../x")
		require.ErrorIs(t, err, ErrInvalidName)
		require.Empty(t, list())
	}},
	{"ConcurrentWriters", func(t *testing.T, s Storage, _ func() []string) {
		ctx := testCtx(t)
		loc := CheckpointLocation(job, 1)
		const n = 6
		handles := make([]StreamHandle, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				w, err := s.CreateStream(ctx, loc, fmt.Sprintf("subtask-%d", i))
				if err == nil {
					_, err = w.Write(pattern(2000+i, byte(i)))
				}
				if err == nil {
					handles[i], err = w.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		for i, h := range handles {
			require.Equal(t, pattern(2000+i, byte(i)), readStream(t, ctx, s, h))
		}
	}},
	{"StoreRetention", func(t *testing.T, s Storage, list func() []string) {
		ctx := testCtx(t)
		st, err := OpenStore(ctx, s, job, StoreConfig{MaxRetained: 2})
		require.NoError(t, err)
		for id := int64(1); id <= 4; id++ {
			require.NoError(t, st.Add(ctx, completeCheckpoint(t, ctx, s, id)))
		}
		ids, err := s.ListCheckpoints(ctx, job)
		require.NoError(t, err)
		require.Equal(t, []int64{3, 4}, ids)
		for _, p := range list() {
			require.True(t, strings.Contains(p, "chk-3") || strings.Contains(p, "chk-4"), "left behind: %s", p)
		}
		reopened, err := OpenStore(ctx, s, job, StoreConfig{MaxRetained: 1})
		require.NoError(t, err)
		require.Equal(t, []int64{4}, storeIDs(reopened))
		ids, err = s.ListCheckpoints(ctx, job)
		require.NoError(t, err)
		require.Equal(t, []int64{4}, ids)
	}},
	{"CancelledContext", func(t *testing.T, s Storage, list func() []string) {
		ctx, cancel := context.WithCancel(testCtx(t))
		w, err := s.CreateStream(ctx, CheckpointLocation(job, 1), "keyed")
		require.NoError(t, err)
		_, err = w.Write([]byte("abc"))
		require.NoError(t, err)
		cancel()
		_, err = w.Write([]byte("def"))
		require.ErrorIs(t, err, context.Canceled)
		_, err = w.Close()
		require.ErrorIs(t, err, ErrWriterClosed)
		require.Empty(t, list())

		_, err = s.CreateStream(ctx, CheckpointLocation(job, 1), "keyed")
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, s.WriteMetadata(ctx, CheckpointLocation(job, 1), testMetadata(job, 1, StreamHandle{}, StreamHandle{})), context.Canceled)
		_, err = s.ListCheckpoints(ctx, job)
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, list())
	}},
}
