package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// takeCheckpoint writes two streams and the metadata of checkpoint id, as
// subtasks and the coordinator would. On the first error it stops; if crash
// is set it abandons the open writer (a process dying), else aborts it.
func takeCheckpoint(ctx context.Context, s Storage, id int64, crash bool) error {
	loc := CheckpointLocation(job, id)
	var handles []StreamHandle
	for i, n := range []int{2500, 700} {
		w, err := s.CreateStream(ctx, loc, fmt.Sprintf("s%d", i))
		if err != nil {
			return err
		}
		data := pattern(n, byte(i))
		for off := 0; off < n; off += 1000 {
			if _, err := w.Write(data[off:min(off+1000, n)]); err != nil {
				if !crash {
					_ = w.Abort()
				}
				return err
			}
		}
		h, err := w.Close()
		if err != nil {
			return err
		}
		handles = append(handles, h)
	}
	return s.WriteMetadata(ctx, loc, testMetadata(job, id, handles[0], handles[1]))
}

// TestMemStorageFailEveryWrite fails each write operation of a checkpoint in
// turn, with and without aborting, and checks that no checkpoint becomes
// visible and that the next checkpoint still completes.
func TestMemStorageFailEveryWrite(t *testing.T) {
	ctx := testCtx(t)
	for _, crash := range []bool{false, true} {
		for k := 1; ; k++ {
			s := NewMemStorage()
			s.FailNthWrite(k, nil)
			err := takeCheckpoint(ctx, s, 1, crash)
			if err == nil {
				require.Equal(t, int64(k-1), s.WriteOps(), "the checkpoint succeeded only once the fault was past its last write")
				break
			}
			require.ErrorIs(t, err, ErrInjected, "crash=%t k=%d", crash, k)
			ids, err := s.ListCheckpoints(ctx, job)
			require.NoError(t, err)
			require.Empty(t, ids, "crash=%t k=%d: a failed checkpoint is listed", crash, k)
			_, err = s.ReadMetadata(ctx, CheckpointLocation(job, 1))
			require.ErrorIs(t, err, ErrNotFound)
			for _, p := range s.Paths() {
				require.False(t, strings.HasSuffix(p, MetadataFileName), "crash=%t k=%d: %s", crash, k, p)
			}
			// The fault is one-shot: the next checkpoint completes.
			require.NoError(t, takeCheckpoint(ctx, s, 2, crash))
			ids, err = s.ListCheckpoints(ctx, job)
			require.NoError(t, err)
			require.Equal(t, []int64{2}, ids)
		}
	}
}

func TestMemStorageNoSpace(t *testing.T) {
	ctx := testCtx(t)
	t.Run("stream", func(t *testing.T) {
		s := NewMemStorage()
		s.SetCapacity(3000)
		err := takeCheckpoint(ctx, s, 1, false)
		require.ErrorIs(t, err, ErrNoSpace)
		require.ErrorIs(t, err, syscall.ENOSPC)
		require.ErrorContains(t, err, "capacity 3000 bytes, 2500 used, 700 more requested")
		require.Equal(t, int64(2500), s.Used(), "only the first, committed stream holds space")
		ids, err := s.ListCheckpoints(ctx, job)
		require.NoError(t, err)
		require.Empty(t, ids)
		require.NoError(t, s.Delete(ctx, CheckpointLocation(job, 1)))
		require.Zero(t, s.Used())
		require.Empty(t, s.Paths())
	})
	t.Run("metadata", func(t *testing.T) {
		s := NewMemStorage()
		loc := CheckpointLocation(job, 1)
		k := writeStream(t, ctx, s, loc, "keyed", pattern(400, 0))
		o := writeStream(t, ctx, s, loc, "op", pattern(50, 0))
		s.SetCapacity(s.Used() + 10)
		m := testMetadata(job, 1, k, o)
		err := s.WriteMetadata(ctx, loc, m)
		require.ErrorIs(t, err, ErrNoSpace)
		_, err = s.ReadMetadata(ctx, loc)
		require.ErrorIs(t, err, ErrNotFound, "no half-written metadata")
		ids, err := s.ListCheckpoints(ctx, job)
		require.NoError(t, err)
		require.Empty(t, ids)
		s.SetCapacity(0)
		require.NoError(t, s.WriteMetadata(ctx, loc, m))
	})
}

func TestMemStorageCorruptReads(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	require.NoError(t, takeCheckpoint(ctx, s, 1, false))
	loc := CheckpointLocation(job, 1)
	m, err := s.ReadMetadata(ctx, loc)
	require.NoError(t, err)
	h := m.Operators[0].Subtasks[0].Keyed[0].Stream

	s.CorruptReads(func(p string) bool { return strings.HasSuffix(p, MetadataFileName) })
	_, err = s.ReadMetadata(ctx, loc)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "checksum expected")
	require.ErrorContains(t, err, "mem://job-a/chk-1/_metadata")

	s.CorruptReads(func(p string) bool { return p == h.Path })
	got := readStream(t, ctx, s, h)
	want := pattern(2500, 0)
	diff := 0
	for i := range got {
		if got[i] != want[i] {
			diff++
		}
	}
	require.Equal(t, 1, diff, "one corrupted byte")

	s.CorruptReads(nil)
	require.Equal(t, want, readStream(t, ctx, s, h))
	_, err = s.ReadMetadata(ctx, loc)
	require.NoError(t, err)
}

func TestMemStorageFailDeletes(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	require.NoError(t, takeCheckpoint(ctx, s, 1, false))
	boom := errors.New("boom")
	s.FailDeletes(boom)
	require.ErrorIs(t, s.Delete(ctx, CheckpointLocation(job, 1)), boom)
	ids, err := s.ListCheckpoints(ctx, job)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, ids)
	s.ClearFaults()
	require.NoError(t, s.Delete(ctx, CheckpointLocation(job, 1)))
	require.Empty(t, s.Paths())
}

func TestMemStorageFaultCustomError(t *testing.T) {
	ctx := testCtx(t)
	s := NewMemStorage()
	boom := errors.New("disk on fire")
	s.FailNthWrite(2, boom)
	w, err := s.CreateStream(ctx, CheckpointLocation(job, 1), "keyed")
	require.NoError(t, err)
	_, err = w.Write([]byte("a"))
	require.NoError(t, err)
	_, err = w.Write([]byte("b"))
	require.ErrorIs(t, err, boom)
	require.Zero(t, s.Used(), "a failed Write aborts the writer")
	s.FailNthWrite(1, nil)
	s.FailNthWrite(0, nil) // cleared
	require.NoError(t, takeCheckpoint(ctx, s, 1, false))
}
