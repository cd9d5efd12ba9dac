package flink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func execute(t *testing.T, env *Env) *JobResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := env.Execute(ctx)
	require.NoError(t, err)
	require.Equal(t, JobFinished, res.Status)
	return res
}

func sorted[T any](vs []T, less func(a, b T) int) []T {
	vs = slices.Clone(vs)
	slices.SortFunc(vs, less)
	return vs
}

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestMapFilterFlatMap(t *testing.T) {
	env := NewEnv(WithParallelism(3))
	src := FromSlice(env, ints(2000))
	doubled := Map(src, func(v int) (int, error) { return v * 2, nil }).Name("double")
	even4 := Filter(doubled, func(v int) (bool, error) { return v%4 == 0, nil }).Name("mult4")
	pairs := FlatMap(even4, func(v int, out Collector[int]) error {
		out.Collect(v)
		out.Collect(-v)
		return nil
	}).Name("pm")
	got := Collect(pairs)
	res := execute(t, env)

	var want []int
	for i := range 2000 {
		if v := i * 2; v%4 == 0 {
			want = append(want, v, -v)
		}
	}
	assert.Equal(t, sorted(want, cmpInt), sorted(got.Values(), cmpInt))
	for name, want := range map[string][2]int64{"double": {2000, 2000}, "mult4": {2000, 1000}, "pm": {1000, 2000}} {
		op, ok := res.Operator(name)
		require.True(t, ok, name)
		assert.Equal(t, want, [2]int64{op.RecordsIn, op.RecordsOut}, name)
	}
}

func cmpInt(a, b int) int { return a - b }

func TestProcessSeesSubtask(t *testing.T) {
	env := NewEnv(WithParallelism(4))
	src := Generate(env, 400, func(i int64) (int64, error) { return i, nil })
	tagged := Process(src, func(rc *RuntimeContext, v int64, out Collector[string]) error {
		out.Collect(fmt.Sprintf("%d/%d", rc.SubtaskIndex(), rc.Parallelism()))
		return nil
	})
	got := Collect(tagged)
	execute(t, env)
	counts := map[string]int{}
	for _, v := range got.Values() {
		counts[v]++
	}
	assert.Equal(t, map[string]int{"0/4": 100, "1/4": 100, "2/4": 100, "3/4": 100}, counts)
}

type kv struct {
	K string
	V int
}

func TestKeyByReduceAndAggregate(t *testing.T) {
	env := NewEnv(WithParallelism(3))
	src := Generate(env, 3000, func(i int64) (kv, error) { return kv{K: fmt.Sprint("k", i%7), V: int(i)}, nil })
	keyed := KeyBy(src, func(r kv) string { return r.K })
	sums := Reduce(keyed, func(a, b kv) (kv, error) { return kv{a.K, a.V + b.V}, nil })
	avgs := Aggregate(keyed, avgAgg{})
	gotSums, gotAvgs := Collect(sums), Collect(avgs)
	execute(t, env)

	want := map[string]int{}
	n := map[string]int{}
	for i := range 3000 {
		want[fmt.Sprint("k", i%7)] += i
		n[fmt.Sprint("k", i%7)]++
	}
	final := map[string]int{}
	for _, r := range gotSums.Values() {
		final[r.K] = max(final[r.K], r.V)
	}
	assert.Equal(t, want, final)
	assert.Len(t, gotSums.Values(), 3000, "a rolling reduce emits once per record")
	var maxCount = map[string]int{}
	for _, a := range gotAvgs.Values() {
		maxCount[a.K] = max(maxCount[a.K], a.N)
	}
	assert.Equal(t, n, maxCount)
}

type avgAcc struct {
	K   string
	Sum int
	N   int
}

type avgAgg struct{}

func (avgAgg) CreateAccumulator() avgAcc { return avgAcc{} }
func (avgAgg) Add(v kv, a avgAcc) (avgAcc, error) {
	return avgAcc{K: v.K, Sum: a.Sum + v.V, N: a.N + 1}, nil
}
func (avgAgg) Result(a avgAcc) (avgAcc, error) { return a, nil }
func (avgAgg) Merge(a, b avgAcc) (avgAcc, error) {
	return avgAcc{K: a.K, Sum: a.Sum + b.Sum, N: a.N + b.N}, nil
}

func TestKeyedRecordsMeetInOneSubtask(t *testing.T) {
	env := NewEnv(WithParallelism(4))
	src := Generate(env, 4000, func(i int64) (int64, error) { return i, nil })
	where := Process(KeyBy(src, func(v int64) int64 { return v % 50 }).Stream(),
		func(rc *RuntimeContext, v int64, out Collector[[2]int64]) error {
			out.Collect([2]int64{v % 50, int64(rc.SubtaskIndex())})
			return nil
		})
	got := Collect(where)
	execute(t, env)
	owner := map[int64]int64{}
	for _, p := range got.Values() {
		if o, ok := owner[p[0]]; ok {
			require.Equal(t, o, p[1], "key %d seen in two subtasks", p[0])
		}
		owner[p[0]] = p[1]
	}
	assert.Len(t, owner, 50)
}

func TestUnionRebalanceBroadcastForward(t *testing.T) {
	env := NewEnv(WithParallelism(2))
	a := FromSlice(env, []int{1, 2, 3})
	b := FromSlice(env, []int{10, 20})
	u := Union(a, b)
	reb := Map(u.Rebalance(), func(v int) (int, error) { return v, nil }).SetParallelism(3)
	bc := Process(reb.Broadcast(), func(rc *RuntimeContext, v int, out Collector[int]) error {
		out.Collect(v*100 + rc.SubtaskIndex())
		return nil
	}).SetParallelism(2)
	fw := Map(bc.Forward(), func(v int) (int, error) { return v, nil }).SetParallelism(2)
	got := Collect(fw)
	execute(t, env)
	var want []int
	for _, v := range []int{1, 2, 3, 10, 20} {
		want = append(want, v*100, v*100+1)
	}
	assert.Equal(t, sorted(want, cmpInt), sorted(got.Values(), cmpInt))
}

func TestReadLinesSplitsFilesExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	var want []string
	var paths []string
	for f := range 3 {
		var b strings.Builder
		for i := range 1000 + f*37 {
			line := fmt.Sprintf("file%d line %d %s", f, i, strings.Repeat("x", i%13))
			want = append(want, line)
			b.WriteString(line)
			if i%2 == 0 {
				b.WriteString("\r\n")
			} else {
				b.WriteString("\n")
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("f%d.txt", f))
		require.NoError(t, os.WriteFile(p, []byte(strings.TrimRight(b.String(), "\r\n")), 0o644))
		paths = append(paths, p)
	}
	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	paths = append(paths, empty)
	for _, par := range []int{1, 2, 5} {
		t.Run(fmt.Sprint("parallelism ", par), func(t *testing.T) {
			env := NewEnv(WithParallelism(par))
			got := Collect(ReadLines(env, paths...))
			execute(t, env)
			assert.Equal(t, sorted(want, strings.Compare), sorted(got.Values(), strings.Compare))
		})
	}
}

func TestReadLinesMissingFile(t *testing.T) {
	env := NewEnv(WithParallelism(1))
	Collect(ReadLines(env, filepath.Join(t.TempDir(), "nope.txt")))
	_, err := env.Execute(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	var te *TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "ReadLines", te.Operator)
}

// splitSource reads splits 0..n-1, each a range of 100 numbers.
type splitSource struct {
	n        int
	canceled atomic.Bool
}

func (s *splitSource) Run(ctx context.Context, out *SourceContext[int]) error {
	for _, split := range out.Splits(s.n) {
		for i := range 100 {
			if s.canceled.Load() {
				return nil
			}
			if err := out.Collect(split*100 + i); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *splitSource) Cancel() { s.canceled.Store(true) }

func TestParallelSourceReadsOwnSplits(t *testing.T) {
	env := NewEnv(WithParallelism(3))
	got := Collect(FromSource(env, "splits", func() Source[int] { return &splitSource{n: 10} }))
	res := execute(t, env)
	assert.Equal(t, ints(1000), sorted(got.Values(), cmpInt))
	op, _ := res.Operator("splits")
	assert.EqualValues(t, 1000, op.RecordsOut)
}

func TestSinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	env := NewEnv(WithParallelism(2))
	src := FromSlice(env, []string{"a", "b", "c", "d"})
	var buf bytes.Buffer
	PrintTo(src, &buf).SetParallelism(1)
	WriteText(src, dir)
	var written atomic.Int64
	SinkTo(src, "count", SinkFunc(func(string) error { written.Add(1); return nil }))
	execute(t, env)

	assert.Equal(t, "a\nb\nc\nd\n", buf.String())
	assert.EqualValues(t, 4, written.Load())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var lines []string
	for _, e := range entries {
		require.False(t, strings.HasSuffix(e.Name(), ".inprogress"), e.Name())
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		lines = append(lines, strings.Fields(string(b))...)
	}
	assert.Equal(t, []string{"a", "b", "c", "d"}, sorted(lines, strings.Compare))
}

func TestPrintPrefixesSubtaskAbove1(t *testing.T) {
	env := NewEnv(WithParallelism(2))
	var buf bytes.Buffer
	PrintTo(Generate(env, 4, func(i int64) (int64, error) { return i, nil }), &buf)
	execute(t, env)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	sort.Strings(lines)
	assert.Equal(t, []string{"1> 0", "1> 1", "2> 2", "2> 3"}, lines)
}

func TestBufferTimeoutZeroAndNegative(t *testing.T) {
	for _, d := range []time.Duration{0, -1, time.Millisecond} {
		env := NewEnv(WithParallelism(2), WithBufferTimeout(d))
		src := Generate(env, 5000, func(i int64) (int64, error) { return i, nil })
		got := Collect(Reduce(KeyBy(src, func(v int64) int64 { return v % 3 }), func(a, b int64) (int64, error) { return a + b, nil }))
		execute(t, env)
		assert.Len(t, got.Values(), 5000, "timeout %v", d)
	}
}

func TestUnhashableKeyFailsAtBuild(t *testing.T) {
	env := NewEnv()
	src := FromSlice(env, []int{1})
	Collect(KeyBy(src, func(v int) *int { return &v }).Stream())
	_, err := env.JobGraph()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no stable hash")
}

func TestJobWithoutSinkFails(t *testing.T) {
	env := NewEnv()
	Map(FromSlice(env, []int{1}), func(v int) (int, error) { return v, nil })
	_, err := env.Execute(context.Background())
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "no sink")
}

func TestUserErrorNamesOperatorAndSubtask(t *testing.T) {
	boom := errors.New("boom")
	env := NewEnv(WithParallelism(2))
	src := Generate(env, 1000, func(i int64) (int64, error) { return i, nil })
	m := Map(src, func(v int64) (int64, error) {
		if v == 700 {
			return 0, boom
		}
		return v, nil
	}).Name("explode")
	Collect(m)
	res, err := env.Execute(context.Background())
	require.ErrorIs(t, err, boom)
	var te *TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "explode", te.Operator)
	assert.Equal(t, 1, te.Subtask, "700 is in subtask 1's range [500, 1000)")
	assert.Equal(t, JobFailed, res.Status)
	assert.Contains(t, err.Error(), `operator "explode"`)
}

func TestUserPanicFailsTask(t *testing.T) {
	env := NewEnv(WithParallelism(2))
	src := Generate(env, -1, func(i int64) (int64, error) { return i, nil })
	f := Filter(src, func(v int64) (bool, error) {
		if v == 12345 {
			panic("filter exploded")
		}
		return true, nil
	}).Name("fragile")
	SinkTo(f, "discard", SinkFunc(func(int64) error { return nil }))
	_, err := env.Execute(context.Background())
	require.ErrorIs(t, err, ErrUserPanic)
	var te *TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "fragile", te.Operator)
	assert.Contains(t, err.Error(), "filter exploded")
}

func TestCancelStopsUnboundedJob(t *testing.T) {
	env := NewEnv(WithParallelism(2))
	var seen atomic.Int64
	src := Generate(env, -1, func(i int64) (int64, error) { return i, nil })
	k := Reduce(KeyBy(src, func(v int64) int64 { return v % 10 }), func(a, b int64) (int64, error) { return a + b, nil })
	SinkTo(k, "count", SinkFunc(func(int64) error { seen.Add(1); return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := env.Execute(ctx); done <- err }()
	require.Eventually(t, func() bool { return seen.Load() > 10000 }, 30*time.Second, time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrJobCanceled)
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("job did not stop after cancel")
	}
}

// blockingSource emits until cancelled, ignoring nothing: it returns when
// Collect fails.
type blockingSource struct{ emitted *atomic.Int64 }

func (s blockingSource) Run(ctx context.Context, out *SourceContext[int]) error {
	for i := 0; ; i++ {
		if err := out.Collect(i); err != nil {
			return err
		}
		s.emitted.Add(1)
	}
}

func (s blockingSource) Cancel() {}

func TestBackpressureBoundsInFlightRecords(t *testing.T) {
	env := NewEnv(WithParallelism(1), WithoutChaining())
	var emitted atomic.Int64
	release := make(chan struct{})
	src := FromSource(env, "fast", func() Source[int] { return blockingSource{&emitted} })
	reb := Map(src, func(v int) (int, error) { return v, nil })
	SinkTo(reb, "slow", SinkFunc(func(int) error { <-release; return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := env.Execute(ctx); done <- err }()
	require.Eventually(t, func() bool { return emitted.Load() > 0 }, 30*time.Second, time.Millisecond)
	// Two exchanges, each with buffersPerChannel buffers in flight plus the
	// one being filled, and the batches the operators hold.
	bound := int64(2*(buffersPerChannel+1)*batchSize + 4*batchSize)
	assert.Never(t, func() bool { return emitted.Load() > bound }, 300*time.Millisecond, 5*time.Millisecond,
		"a blocked sink must stop the source")
	cancel()
	close(release)
	require.ErrorIs(t, <-done, ErrJobCanceled)
}

func TestRegisteredJobOnLocalCluster(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister("squares", func(env *Env, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("want 1 argument, got %d", len(args))
		}
		var n int64
		if _, err := fmt.Sscan(args[0], &n); err != nil {
			return err
		}
		src := Generate(env, n, func(i int64) (int64, error) { return i * i, nil })
		SinkTo(src, "discard", SinkFunc(func(int64) error { return nil }))
		return nil
	})
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.Registry = 3, 2, reg
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()

	res, err := c.Run(ctx, JobSubmission{Name: "squares", Args: []string{"600"}, Parallelism: 6})
	require.NoError(t, err)
	op, _ := res.Operator("Generate")
	assert.EqualValues(t, 600, op.RecordsOut)
	assert.Equal(t, 6, op.Parallelism)

	_, err = c.Run(ctx, JobSubmission{Name: "cubes"})
	require.ErrorIs(t, err, ErrUnknownJob)
	assert.Contains(t, err.Error(), "squares", "the error lists what is registered")

	_, err = c.Run(ctx, JobSubmission{Name: "squares"})
	require.ErrorContains(t, err, "want 1 argument")

	jobs, err := c.Dispatcher().ListJobs(ctx)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, JobFinished, jobs[0].Status)
}
