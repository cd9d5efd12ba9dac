package flink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/state"
	"github.com/flinkgo/flink/window"
)

// tev is a test event: a key, an event-time timestamp and a value.
type tev struct {
	Key int64
	TS  int64
	V   int64
}

// winResult is one fired window's aggregate.
type winResult struct {
	Key        int64
	Start, End int64
	N, Sum     int64
}

func cmpWin(a, b winResult) int {
	return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End),
		cmp.Compare(a.N, b.N), cmp.Compare(a.Sum, b.Sum))
}

// genEvent is event i of a stream of keys 0..6 whose timestamps advance
// 10 ms per event and run up to 360 ms out of order.
func genEvent(i int64) tev {
	return tev{Key: i % 7, TS: 1_000_000 + i*10 - (i*7919%37)*10, V: i}
}

// countAgg counts and sums events.
type countAgg struct{}

func (countAgg) CreateAccumulator() winResult { return winResult{} }
func (countAgg) Add(v tev, acc winResult) (winResult, error) {
	acc.N++
	acc.Sum += v.V
	return acc, nil
}
func (countAgg) Result(acc winResult) (winResult, error) { return acc, nil }
func (countAgg) Merge(a, b winResult) (winResult, error) {
	return winResult{N: a.N + b.N, Sum: a.Sum + b.Sum}, nil
}

func withWindow(ctx *WindowContext[int64], v winResult, out Collector[winResult]) error {
	v.Key, v.Start, v.End = ctx.Key(), ctx.Window().Start, ctx.Window().End
	out.Collect(v)
	return nil
}

// referenceWindows computes what an event-time window operator with
// assigner a must emit for events, without lateness.
func referenceWindows(t *testing.T, events []tev, a window.Assigner) []winResult {
	t.Helper()
	type kw struct {
		key int64
		w   window.TimeWindow
	}
	acc := map[kw]winResult{}
	if s, ok := a.(*window.SessionWindows); ok {
		byKey := map[int64][]tev{}
		for _, e := range events {
			byKey[e.Key] = append(byKey[e.Key], e)
		}
		var out []winResult
		for k, es := range byKey {
			slices.SortFunc(es, func(a, b tev) int { return cmp.Compare(a.TS, b.TS) })
			var cur winResult
			for i, e := range es {
				if i == 0 || e.TS >= cur.End {
					if i > 0 {
						out = append(out, cur)
					}
					cur = winResult{Key: k, Start: e.TS}
				}
				cur.End = max(cur.End, e.TS+s.Gap())
				cur.N++
				cur.Sum += e.V
			}
			out = append(out, cur)
		}
		return out
	}
	for _, e := range events {
		ws, err := a.AssignWindows(nil, e.TS)
		require.NoError(t, err)
		for _, w := range ws {
			r := acc[kw{e.Key, w}]
			r.Key, r.Start, r.End = e.Key, w.Start, w.End
			r.N++
			r.Sum += e.V
			acc[kw{e.Key, w}] = r
		}
	}
	var out []winResult
	for _, r := range acc {
		out = append(out, r)
	}
	return out
}

func TestEventTimeWindows(t *testing.T) {
	const n = 20_000
	events := make([]tev, n)
	for i := range events {
		events[i] = genEvent(int64(i))
	}
	tumbling, err := window.Tumbling(window.EventTime, time.Second, 0)
	require.NoError(t, err)
	sliding, err := window.Sliding(window.EventTime, 2*time.Second, 500*time.Millisecond, 0)
	require.NoError(t, err)
	// Sessions need gaps: drop events so that each key has pauses.
	session, err := window.Session(window.EventTime, 300*time.Millisecond)
	require.NoError(t, err)
	sessionEvents := slices.DeleteFunc(slices.Clone(events), func(e tev) bool { return (e.TS/1000)%3 == 1 })

	cases := []struct {
		name   string
		a      window.Assigner
		events []tev
	}{
		{"tumbling", tumbling, events},
		{"sliding", sliding, events},
		{"session", session, sessionEvents},
	}
	for _, network := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/network=%v", tc.name, network), func(t *testing.T) {
				env := NewEnv(WithParallelism(2), WithAutoWatermarkInterval(5*time.Millisecond))
				src := FromSlice(env, tc.events)
				// Spread the events over two subtasks, each with its own
				// watermarks, so the window operator combines two channels.
				spread := Map(src.Rebalance(), func(e tev) (tev, error) { return e, nil })
				stamped := AssignTimestampsAndWatermarks(spread, ForBoundedOutOfOrderness[tev](400*time.Millisecond).
					WithTimestampAssigner(func(e tev, _ int64) int64 { return e.TS }))
				keyed := KeyBy(stamped, func(e tev) int64 { return e.Key })
				var results *DataStream[winResult]
				if tc.name == "session" {
					results = WindowProcess(Window(keyed, tc.a), func(ctx *WindowContext[int64], es []tev, out Collector[winResult]) error {
						r := winResult{Key: ctx.Key(), Start: ctx.Window().Start, End: ctx.Window().End}
						for _, e := range es {
							r.N++
							r.Sum += e.V
						}
						out.Collect(r)
						return nil
					})
				} else {
					results = WindowAggregateWith(Window(keyed, tc.a), countAgg{}, withWindow)
				}
				got := Collect(results)
				runLocalOrNetwork(t, env, network)
				want := referenceWindows(t, tc.events, tc.a)
				assert.Equal(t, sorted(want, cmpWin), sorted(got.Values(), cmpWin))
			})
		}
	}
}

// scriptSource emits a script of records and watermarks in one subtask.
type scriptSource struct {
	script []any // tev or a watermark (int64)
}

func (s *scriptSource) Run(ctx context.Context, out *SourceContext[tev]) error {
	for _, step := range s.script {
		var err error
		switch v := step.(type) {
		case tev:
			err = out.CollectWithTimestamp(v, v.TS)
		case int64:
			err = out.EmitWatermark(v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *scriptSource) Cancel() {}

func TestAllowedLatenessAndLateSideOutput(t *testing.T) {
	env := NewEnv(WithParallelism(1))
	src := FromSource(env, "script", func() Source[tev] {
		return &scriptSource{script: []any{
			tev{Key: 1, TS: 100, V: 1}, tev{Key: 1, TS: 900, V: 2},
			int64(1500),                // fires [0,1000): 2 records
			tev{Key: 1, TS: 500, V: 4}, // late but within the lateness: fires again with 3
			int64(2500),                // passes the cleanup time 1999
			tev{Key: 1, TS: 600, V: 8}, // too late: side output
			tev{Key: 1, TS: 2600, V: 16},
		}}
	})
	tumbling, err := window.Tumbling(window.EventTime, time.Second, 0)
	require.NoError(t, err)
	late := NewOutputTag[tev]("late")
	results := WindowAggregateWith(Window(KeyBy(src, func(e tev) int64 { return e.Key }), tumbling).
		AllowedLateness(time.Second).SideOutputLateData(late), countAgg{}, withWindow)
	got := Collect(results)
	lateGot := Collect(GetSideOutput(results, late))
	execute(t, env)
	assert.Equal(t, []winResult{
		{Key: 1, Start: 0, End: 1000, N: 2, Sum: 3},
		{Key: 1, Start: 0, End: 1000, N: 3, Sum: 7},
		{Key: 1, Start: 2000, End: 3000, N: 1, Sum: 16},
	}, got.Values())
	assert.Equal(t, []tev{{Key: 1, TS: 600, V: 8}}, lateGot.Values())
}

// timerCounter counts records per key and emits the count one second of
// event time after each key's first record, and a note to a side output.
type timerCounter struct{ tag OutputTag[string] }

func (f timerCounter) ProcessElement(ctx *KeyedContext[int64], v tev, _ Collector[winResult]) error {
	ts, ok := ctx.Timestamp()
	if !ok {
		return errors.New("no timestamp")
	}
	count, err := stateValue[int64](ctx, "count")
	if err != nil {
		return err
	}
	n, _, err := count.Value()
	if err != nil {
		return err
	}
	if n == 0 {
		ctx.TimerService().RegisterEventTimeTimer(ts + 1000)
	}
	return count.Update(n + 1)
}

func (f timerCounter) OnTimer(ctx *KeyedContext[int64], ts int64, out Collector[winResult]) error {
	count, err := stateValue[int64](ctx, "count")
	if err != nil {
		return err
	}
	n, _, err := count.Value()
	if err != nil {
		return err
	}
	if ctx.TimeDomain() != EventTime {
		return fmt.Errorf("timer domain %v", ctx.TimeDomain())
	}
	out.Collect(winResult{Key: ctx.CurrentKey(), End: ts, N: n})
	Output(ctx, f.tag, fmt.Sprintf("key %d fired at %d", ctx.CurrentKey(), ts))
	return count.Clear()
}

func TestKeyedEventTimeTimersAndSideOutput(t *testing.T) {
	env := NewEnv(WithParallelism(2))
	src := FromSource(env, "script", func() Source[tev] {
		return &scriptSource{script: []any{
			tev{Key: 1, TS: 100}, tev{Key: 2, TS: 200}, tev{Key: 1, TS: 300},
			int64(1150), // key 1's timer (1100) fires
			tev{Key: 1, TS: 1200}, tev{Key: 2, TS: 1190},
		}}
	}).SetParallelism(1)
	tag := NewOutputTag[string]("notes")
	fired := KeyedProcess(KeyBy(src, func(e tev) int64 { return e.Key }), KeyedProcessFunction[int64, tev, winResult](timerCounter{tag}))
	got := Collect(fired)
	notes := Collect(GetSideOutput(fired, tag))
	execute(t, env)
	// Key 1: first timer at 1100 with 2 records; its record at 1200 starts
	// a new count, fired at 2200 by the final watermark. Key 2: 1200, with
	// both its records.
	assert.Equal(t, []winResult{{Key: 1, End: 1100, N: 2}, {Key: 1, End: 2200, N: 1}, {Key: 2, End: 1200, N: 2}},
		sorted(got.Values(), cmpWin))
	assert.ElementsMatch(t, []string{"key 1 fired at 1100", "key 1 fired at 2200", "key 2 fired at 1200"}, notes.Values())
}

// procTimerFunc registers a processing-time timer 20 ms ahead per record.
type procTimerFunc struct{}

func (procTimerFunc) ProcessElement(ctx *KeyedContext[int64], v tev, _ Collector[int64]) error {
	ctx.TimerService().RegisterProcessingTimeTimer(ctx.TimerService().CurrentProcessingTime() + 20)
	return nil
}

func (procTimerFunc) OnTimer(ctx *KeyedContext[int64], ts int64, out Collector[int64]) error {
	if ctx.TimeDomain() != ProcessingTime {
		return fmt.Errorf("timer domain %v", ctx.TimeDomain())
	}
	if _, ok := ctx.Timestamp(); ok {
		return errors.New("a processing-time timer's output has a timestamp")
	}
	out.Collect(ctx.CurrentKey())
	return nil
}

// waitingSource emits records, then waits until done is closed.
type waitingSource struct {
	records []tev
	done    <-chan struct{}
}

func (s *waitingSource) Run(ctx context.Context, out *SourceContext[tev]) error {
	for _, r := range s.records {
		if err := out.Collect(r); err != nil {
			return err
		}
	}
	return awaitDone(ctx, s.done, "timed out waiting for the timers")
}

func (s *waitingSource) Cancel() {}

func TestProcessingTimeTimers(t *testing.T) {
	done := make(chan struct{})
	var fired atomic.Int64
	var once sync.Once
	env := NewEnv(WithParallelism(2), WithBufferTimeout(0))
	src := FromSource(env, "wait", func() Source[tev] {
		return &waitingSource{records: []tev{{Key: 1}, {Key: 2}, {Key: 3}}, done: done}
	}).SetParallelism(1)
	keys := KeyedProcess(KeyBy(src, func(e tev) int64 { return e.Key }), KeyedProcessFunction[int64, tev, int64](procTimerFunc{}))
	SinkTo(keys, "count", SinkFunc(func(int64) error {
		if fired.Add(1) == 3 {
			once.Do(func() { close(done) })
		}
		return nil
	}))
	execute(t, env)
	assert.Equal(t, int64(3), fired.Load())
}

// idleSource: subtask 0 emits records and a watermark, then waits for done;
// subtask 1 marks itself idle and waits too.
type idleSource struct{ done <-chan struct{} }

func (s *idleSource) Run(ctx context.Context, out *SourceContext[tev]) error {
	if out.RuntimeContext().SubtaskIndex() == 1 {
		if err := out.MarkIdle(); err != nil {
			return err
		}
	} else {
		for _, ts := range []int64{100, 200, 300} {
			if err := out.CollectWithTimestamp(tev{Key: 1, TS: ts, V: 1}, ts); err != nil {
				return err
			}
		}
		if err := out.EmitWatermark(5000); err != nil {
			return err
		}
	}
	return awaitDone(ctx, s.done, "timed out: the window did not fire while a source subtask was idle")
}

func (s *idleSource) Cancel() {}

func TestIdleSourceDoesNotHoldBackWatermarks(t *testing.T) {
	for _, network := range []bool{false, true} {
		t.Run(fmt.Sprintf("network=%v", network), func(t *testing.T) {
			done := make(chan struct{})
			var once sync.Once
			env := NewEnv(WithParallelism(2), WithBufferTimeout(0))
			src := FromSource(env, "idle", func() Source[tev] { return &idleSource{done: done} })
			tumbling, err := window.Tumbling(window.EventTime, time.Second, 0)
			require.NoError(t, err)
			results := WindowAggregateWith(Window(KeyBy(src, func(e tev) int64 { return e.Key }), tumbling), countAgg{}, withWindow)
			var got []winResult
			var mu sync.Mutex
			SinkTo(results, "signal", SinkFunc(func(r winResult) error {
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
				once.Do(func() { close(done) })
				return nil
			}))
			runLocalOrNetwork(t, env, network)
			assert.Equal(t, []winResult{{Key: 1, Start: 0, End: 1000, N: 3, Sum: 3}}, got)
		})
	}
}

func TestEventTimeBadInput(t *testing.T) {
	tumbling, err := window.Tumbling(window.EventTime, time.Second, 0)
	require.NoError(t, err)
	t.Run("records without timestamps", func(t *testing.T) {
		env := NewEnv(WithParallelism(1))
		src := FromSlice(env, []tev{{Key: 1, TS: 5}})
		Collect(WindowAggregateWith(Window(KeyBy(src, func(e tev) int64 { return e.Key }), tumbling), countAgg{}, withWindow))
		_, err := env.Execute(context.Background())
		assert.ErrorIs(t, err, ErrNoTimestamp)
	})
	t.Run("watermarks going backwards", func(t *testing.T) {
		env := NewEnv(WithParallelism(1))
		src := FromSlice(env, []tev{{Key: 1, TS: 5}, {Key: 1, TS: 6}})
		var next int64 = 100
		stamped := AssignTimestampsAndWatermarks(src, ForGenerator[tev](func() window.Generator { return backwards{&next} }).
			WithTimestampAssigner(func(e tev, _ int64) int64 { return e.TS }))
		Collect(stamped)
		_, err := env.Execute(context.Background())
		assert.ErrorIs(t, err, window.ErrWatermarkRegressed)
	})
	t.Run("non-positive window size", func(t *testing.T) {
		_, err := window.Tumbling(window.EventTime, 0, 0)
		assert.ErrorIs(t, err, window.ErrInvalidAssigner)
		_, err = window.Sliding(window.EventTime, time.Second, -time.Second, 0)
		assert.ErrorIs(t, err, window.ErrInvalidAssigner)
	})
	t.Run("negative lateness", func(t *testing.T) {
		env := NewEnv(WithParallelism(1))
		src := FromSlice(env, []tev{{Key: 1, TS: 5}})
		Collect(WindowAggregateWith(Window(KeyBy(src, func(e tev) int64 { return e.Key }), tumbling).AllowedLateness(-time.Second), countAgg{}, withWindow))
		_, err := env.JobGraph()
		assert.ErrorIs(t, err, window.ErrInvalidLateness)
	})
}

// backwards is a punctuated generator whose watermarks decrease.
type backwards struct{ next *int64 }

func (b backwards) OnEvent(_ int64, out window.Output) {
	out.EmitWatermark(*b.next)
	*b.next -= 10
}
func (b backwards) OnPeriodicEmit(window.Output) {}

// TestWindowsExactlyOnceUnderFailures runs an event-time window job with
// checkpoints while failures hit it: window contents and timers restore
// from checkpoints, and the transactional sink's output holds every
// window's result exactly once.
func TestWindowsExactlyOnceUnderFailures(t *testing.T) {
	t.Run("in-process exchange", func(t *testing.T) { testWindowsExactlyOnce(t, false) })
	t.Run("network exchange", func(t *testing.T) { testWindowsExactlyOnce(t, true) })
}

func testWindowsExactlyOnce(t *testing.T, network bool) {
	records := int64(200_000)
	if raceEnabled {
		records = 50_000
	}
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewPCG(uint64(seed), 0))
	inject := &failureInjector{}
	for range 3 {
		inject.points = append(inject.points, 1+rnd.Int64N(records))
	}
	slices.Sort(inject.points)
	t.Logf("seed %d: failures at records %v", seed, inject.points)

	dir := t.TempDir()
	storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: filepath.Join(dir, "checkpoints")})
	require.NoError(t, err)
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager, cfg.CheckpointStorage = 2, storage
	if network {
		cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.IsolatedTaskManagers = 2, 1, true
	}
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()

	env := NewEnv(WithParallelism(2), WithCheckpointing(20*time.Millisecond), WithAutoWatermarkInterval(10*time.Millisecond),
		WithRestartStrategy(FixedDelayRestart(10, 10*time.Millisecond)))
	src := Generate(env, records, func(i int64) (tev, error) {
		if i%1000 == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		return genEvent(i), nil
	}).UID("source")
	checked := Map(src, func(e tev) (tev, error) { return e, inject.check() }).UID("inject")
	stamped := AssignTimestampsAndWatermarks(checked, ForBoundedOutOfOrderness[tev](400*time.Millisecond).
		WithTimestampAssigner(func(e tev, _ int64) int64 { return e.TS })).UID("timestamps")
	sliding, err := window.Sliding(window.EventTime, 2*time.Second, 500*time.Millisecond, 0)
	require.NoError(t, err)
	results := WindowAggregateWith(Window(KeyBy(stamped, func(e tev) int64 { return e.Key }), sliding), countAgg{}, withWindow).UID("windows")
	out := filepath.Join(dir, "out")
	WriteFilesExactlyOnce(results, out, func(r winResult) string {
		return fmt.Sprintf("%d,%d,%d,%d,%d", r.Key, r.Start, r.End, r.N, r.Sum)
	}).UID("sink")

	g, err := env.JobGraph()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.RunGraph(ctx, g)
	require.NoError(t, err)
	require.Equal(t, JobFinished, res.Status, "%v", res.Err)
	assert.GreaterOrEqual(t, res.Restarts, 1)

	var got []winResult
	for _, l := range readCommitted(t, out) {
		f := strings.Split(l, ",")
		require.Len(t, f, 5, l)
		var v [5]int64
		for i := range v {
			v[i], err = strconv.ParseInt(f[i], 10, 64)
			require.NoError(t, err)
		}
		got = append(got, winResult{Key: v[0], Start: v[1], End: v[2], N: v[3], Sum: v[4]})
	}
	events := make([]tev, records)
	for i := range events {
		events[i] = genEvent(int64(i))
	}
	want := referenceWindows(t, events, sliding)
	require.Equal(t, len(want), len(got), "window results")
	assert.Equal(t, sorted(want, cmpWin), sorted(got, cmpWin))
}

func stateValue[T any](ctx *KeyedContext[int64], name string) (state.ValueState[T], error) {
	return state.GetValueState(ctx.State(), state.ValueStateDescriptor[T]{Name: name})
}

// punctuated emits a watermark right behind every event.
type punctuated struct{}

func (punctuated) OnEvent(ts int64, out window.Output) { out.EmitWatermark(ts - 1) }
func (punctuated) OnPeriodicEmit(window.Output)        {}

// twoSplits reads two splits per subtask in turns; split 1 runs 5 s of
// event time ahead of split 0, each in order.
type twoSplits struct{ n int64 }

func (s *twoSplits) Run(ctx context.Context, out *SourceContext[tev]) error {
	sub := int64(out.RuntimeContext().SubtaskIndex())
	for i := range s.n {
		for split := range int64(2) {
			e := tev{Key: i % 3, TS: split*5000 + i*10, V: sub*1_000_000 + split*100_000 + i}
			if err := out.CollectFromSplit(int(split), e); err != nil {
				return err
			}
		}
	}
	for split := range 2 {
		if err := out.FinishSplit(split); err != nil {
			return err
		}
	}
	return nil
}

func (s *twoSplits) Cancel() {}

// TestPerSplitWatermarks: every split has its own generator and the
// subtask's watermark is the minimum over its splits, so the split that is
// behind loses no record, though a generator per subtask would have made
// most of its records late.
func TestPerSplitWatermarks(t *testing.T) {
	const n = 1000
	env := NewEnv(WithParallelism(2))
	src := FromSourceWithWatermarks(env, "splits", func() Source[tev] { return &twoSplits{n: n} },
		ForGenerator[tev](func() window.Generator { return punctuated{} }).WithTimestampAssigner(func(e tev, _ int64) int64 { return e.TS }))
	tumbling, err := window.Tumbling(window.EventTime, time.Second, 0)
	require.NoError(t, err)
	late := NewOutputTag[tev]("late")
	results := WindowAggregateWith(Window(KeyBy(src, func(e tev) int64 { return e.Key }), tumbling).SideOutputLateData(late), countAgg{}, withWindow)
	got := Collect(results)
	lateGot := Collect(GetSideOutput(results, late))
	execute(t, env)
	var events []tev
	for sub := range int64(2) {
		for i := range int64(n) {
			for split := range int64(2) {
				events = append(events, tev{Key: i % 3, TS: split*5000 + i*10, V: sub*1_000_000 + split*100_000 + i})
			}
		}
	}
	assert.Empty(t, lateGot.Values())
	assert.Equal(t, sorted(referenceWindows(t, events, tumbling), cmpWin), sorted(got.Values(), cmpWin))
}

// TestProcessingTimeWindowsAndCountTrigger: processing-time tumbling
// windows fire on the wall clock while the source still runs; a count
// trigger fires an event-time window every second record.
func TestProcessingTimeWindowsAndCountTrigger(t *testing.T) {
	t.Run("processing time", func(t *testing.T) {
		done := make(chan struct{})
		var once sync.Once
		env := NewEnv(WithParallelism(1), WithBufferTimeout(0))
		src := FromSource(env, "wait", func() Source[tev] {
			return &waitingSource{records: []tev{{Key: 1, V: 1}, {Key: 1, V: 2}, {Key: 2, V: 4}}, done: done}
		})
		tumbling, err := window.Tumbling(window.ProcessingTime, 50*time.Millisecond, 0)
		require.NoError(t, err)
		results := WindowAggregateWith(Window(KeyBy(src, func(e tev) int64 { return e.Key }), tumbling), countAgg{}, withWindow)
		var mu sync.Mutex
		var got []winResult
		SinkTo(results, "results", SinkFunc(func(r winResult) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, r)
			n := int64(0)
			for _, g := range got {
				n += g.N
			}
			if n == 3 {
				once.Do(func() { close(done) })
			}
			return nil
		}))
		execute(t, env)
		var sum, n int64
		for _, r := range got {
			assert.Equal(t, int64(50), r.End-r.Start)
			sum, n = sum+r.Sum, n+r.N
		}
		assert.Equal(t, int64(7), sum)
		assert.Equal(t, int64(3), n)
	})
	t.Run("count trigger", func(t *testing.T) {
		env := NewEnv(WithParallelism(1))
		src := FromSource(env, "script", func() Source[tev] {
			return &scriptSource{script: []any{
				tev{Key: 1, TS: 10, V: 1}, tev{Key: 1, TS: 20, V: 2}, tev{Key: 1, TS: 30, V: 4},
				tev{Key: 1, TS: 40, V: 8}, tev{Key: 1, TS: 50, V: 16},
			}}
		})
		tumbling, err := window.Tumbling(window.EventTime, time.Second, 0)
		require.NoError(t, err)
		every2, err := window.Count(2)
		require.NoError(t, err)
		got := Collect(WindowAggregateWith(Window(KeyBy(src, func(e tev) int64 { return e.Key }), tumbling).Trigger(every2), countAgg{}, withWindow))
		execute(t, env)
		// Fires (without purging) on the 2nd and 4th record; the end of the
		// window does not fire a count trigger.
		assert.Equal(t, []winResult{{Key: 1, End: 1000, N: 2, Sum: 3}, {Key: 1, End: 1000, N: 4, Sum: 15}}, got.Values())
	})
}

// stallingSource: subtask 0 emits records across two windows; subtask 1
// emits one early record, then nothing until done.
type stallingSource struct{ done <-chan struct{} }

func (s *stallingSource) Run(ctx context.Context, out *SourceContext[tev]) error {
	if out.RuntimeContext().SubtaskIndex() == 1 {
		if err := out.Collect(tev{Key: 1, TS: 10, V: 100}); err != nil {
			return err
		}
	} else {
		for _, ts := range []int64{100, 200, 1500} {
			if err := out.Collect(tev{Key: 1, TS: ts, V: 1}); err != nil {
				return err
			}
		}
	}
	return awaitDone(ctx, s.done, "timed out: the idle timeout did not release the watermark")
}

func (s *stallingSource) Cancel() {}

// TestIdleTimeout: a watermark strategy with an idle timeout marks a
// subtask that stopped receiving records idle, so the window downstream
// fires without waiting for it.
func TestIdleTimeout(t *testing.T) {
	done := make(chan struct{})
	var once sync.Once
	env := NewEnv(WithParallelism(2), WithBufferTimeout(0), WithAutoWatermarkInterval(10*time.Millisecond))
	src := FromSource(env, "stalling", func() Source[tev] { return &stallingSource{done: done} })
	stamped := AssignTimestampsAndWatermarks(src, ForMonotonousTimestamps[tev]().WithIdleness(50*time.Millisecond).
		WithTimestampAssigner(func(e tev, _ int64) int64 { return e.TS }))
	tumbling, err := window.Tumbling(window.EventTime, time.Second, 0)
	require.NoError(t, err)
	results := WindowAggregateWith(Window(KeyBy(stamped, func(e tev) int64 { return e.Key }), tumbling), countAgg{}, withWindow)
	var got []winResult
	var mu sync.Mutex
	SinkTo(results, "signal", SinkFunc(func(r winResult) error {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		once.Do(func() { close(done) })
		return nil
	})).SetParallelism(1)
	execute(t, env)
	require.NotEmpty(t, got)
	assert.Equal(t, winResult{Key: 1, Start: 0, End: 1000, N: 3, Sum: 102}, got[0])
}

// awaitDone waits until done is closed, the source is cancelled, or 30 s
// passed (an error saying what did not happen).
func awaitDone(ctx context.Context, done <-chan struct{}, what string) error {
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New(what)
	case <-ctx.Done():
		return ctx.Err()
	}
}
