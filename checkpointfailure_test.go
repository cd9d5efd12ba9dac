package flink

import (
	"context"
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
		keyedSums(env)
		return nil
	})
	return reg
}

// keyedSums adds an unbounded keyed running sum to env: numbers (a
// millisecond's pause every 100, so that checkpoints interleave), keyed by
// value modulo 100, summed, discarded.
func keyedSums(env *Env) {
	nums := Generate(env, -1, func(i int64) (int64, error) {
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
		return i % 100, nil
	}).UID("numbers")
	sums := Reduce(KeyBy(nums, func(v int64) int64 { return v }), func(a, b int64) (int64, error) { return a + b, nil }).UID("sums")
	SinkTo(sums, "discard", SinkFunc(func(int64) error { return nil }))
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

// A TaskManager process started without checkpoint storage (no
// FLINK_CHECKPOINT_DIR) must not be handed the subtasks of a job that takes
// checkpoints: every checkpoint would be declined and the job would burn
// through its restart strategy. The job fails at deployment, without a
// restart, with an error that names the TaskManager and the setting.
func TestTaskManagerWithoutCheckpointStorageIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	ckpts, out := filepath.Join(dir, "checkpoints"), filepath.Join(dir, "out")
	cfg := DefaultNodeConfig(RoleJobManager)
	cfg.BindAddr, cfg.Registry, cfg.SlotRequestTimeout, cfg.CheckpointDir = "127.0.0.1:0", testRegistry(), time.Minute, ckpts
	jm, err := NewNode(cfg)
	require.NoError(t, err)
	require.NoError(t, jm.Start(context.Background()))
	defer jm.Close()
	startChildWith(t, childConfig{ID: "tm-with-storage", JobManagerAddr: jm.Addr(), Slots: 1, CheckpointDir: ckpts})
	startChildWith(t, childConfig{ID: "tm-without-storage", JobManagerAddr: jm.Addr(), Slots: 1})
	waitForSlots(t, jm.ResourceManager(), 2)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := jm.Dispatcher()
	id, err := d.SubmitJob(ctx, JobSubmission{Name: "exactly-once", Args: []string{"1000000", "10", out}, Parallelism: 2})
	require.NoError(t, err)
	res, err := d.JobResult(ctx, id)
	require.NoError(t, err)
	require.Equal(t, JobFailed, res.Status, "%v", res.Err)
	assert.Zero(t, res.Restarts, "a missing setting is not worth a restart")
	require.ErrorIs(t, res.Err, ErrNoCheckpointStorage)
	assert.Contains(t, res.Err.Error(), `task manager "tm-without-storage"`)
	assert.Contains(t, res.Err.Error(), "FLINK_CHECKPOINT_DIR")
	assert.NotContains(t, res.Err.Error(), "tm-with-storage")
}
