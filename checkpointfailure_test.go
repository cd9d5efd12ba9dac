package flink

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/checkpoint"
)

// checkpointFailureRegistry holds "keyed-sums": an unbounded keyed job that
// checkpoints every 20 ms and restarts once, so that checkpoints that keep
// failing fail it.
func checkpointFailureRegistry() *Registry {
	reg := NewRegistry()
	reg.MustRegister("keyed-sums", func(env *Env, args []string) error {
		env.Configure(WithCheckpointing(20*time.Millisecond), WithRestartStrategy(FixedDelayRestart(1, time.Millisecond)))
		nums := Generate(env, -1, func(i int64) (int64, error) {
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
			return i % 100, nil
		}).UID("numbers")
		sums := Reduce(KeyBy(nums, func(v int64) int64 { return v }), func(a, b int64) (int64, error) { return a + b, nil }).UID("sums")
		SinkTo(sums, "discard", SinkFunc(func(int64) error { return nil }))
		return nil
	})
	return reg
}

// mountFullTmpfs mounts a 64 KiB tmpfs at a new directory, creates dir
// inside it, and fills the rest with a file, so that writing there fails
// with ENOSPC. The test is skipped where mounting is not allowed (not
// root, or in a container without CAP_SYS_ADMIN).
func mountFullTmpfs(t *testing.T, dir string) string {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	p := filepath.Join(mnt, dir)
	require.NoError(t, os.MkdirAll(p, 0o755))
	f, err := os.Create(filepath.Join(mnt, "filler"))
	require.NoError(t, err)
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	return p
}

// A checkpoint storage that runs out of space fails the job with the cause
// named: the JobResult's error and the REST exceptions say "no space left
// on device" and where, not only that too many checkpoints failed; and the
// failed checkpoints leave no chk-* directories behind.
func TestFullCheckpointDiskNamesTheCause(t *testing.T) {
	t.Run("tmpfs", func(t *testing.T) {
		dir := mountFullTmpfs(t, "checkpoints")
		storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: dir})
		require.NoError(t, err)
		f := newRESTFixtureWith(t, checkpointFailureRegistry(), func(cfg *ClusterConfig) { cfg.CheckpointStorage = storage })
		id := f.submit(t, `{"name": "keyed-sums", "parallelism": 2}`)
		r := f.await(t, id)
		require.Equal(t, JobFailed, r.Status)
		require.ErrorIs(t, r.Err, checkpoint.ErrTooManyFailures)
		require.ErrorIs(t, r.Err, syscall.ENOSPC, "%v", r.Err)
		assert.Contains(t, r.Err.Error(), dir)
		ex := f.get(t, "/jobs/"+string(id)+"/exceptions")
		assert.Contains(t, ex["root-exception"], "no space left on device")
		assert.Contains(t, ex["root-exception"], dir)
		assert.Empty(t, checkpointDirs(t, filepath.Join(dir, string(id))), "directories of failed checkpoints")
	})
	t.Run("injected", func(t *testing.T) {
		storage := checkpoint.NewMemStorage()
		storage.SetCapacity(16)
		f := newRESTFixtureWith(t, checkpointFailureRegistry(), func(cfg *ClusterConfig) { cfg.CheckpointStorage = storage })
		id := f.submit(t, `{"name": "keyed-sums", "parallelism": 2}`)
		r := f.await(t, id)
		require.Equal(t, JobFailed, r.Status)
		require.ErrorIs(t, r.Err, checkpoint.ErrTooManyFailures)
		require.ErrorIs(t, r.Err, checkpoint.ErrNoSpace, "%v", r.Err)
		assert.Contains(t, r.Err.Error(), "mem://"+string(id)+"/chk-")
		ex := f.get(t, "/jobs/"+string(id)+"/exceptions")
		assert.Contains(t, ex["root-exception"], "capacity 16 bytes")
		assert.Empty(t, storage.Paths(), "objects of failed checkpoints")
	})
}

// checkpointDirs lists the chk-* directories in a job's checkpoint
// directory.
func checkpointDirs(t *testing.T, jobDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(jobDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var dirs []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "chk-") {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}
