package flink_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/state"
	"github.com/flinkgo/flink/window"
)

type WordCount struct {
	Word  string
	Count int
}

// A rolling word count, printed as it updates.
func Example() {
	env := flink.NewEnv(flink.WithParallelism(1))
	lines := flink.FromSlice(env, []string{"to be", "or not to be"})
	words := flink.FlatMap(lines, func(line string, out flink.Collector[WordCount]) error {
		for _, w := range strings.Fields(line) {
			out.Collect(WordCount{Word: w, Count: 1})
		}
		return nil
	})
	counts := flink.Reduce(flink.KeyBy(words, func(wc WordCount) string { return wc.Word }),
		func(a, b WordCount) (WordCount, error) { return WordCount{a.Word, a.Count + b.Count}, nil })
	flink.Print(counts)
	if _, err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {to 1}
	// {be 1}
	// {or 1}
	// {not 1}
	// {to 2}
	// {be 2}
}

// Jobs registered by name run on a cluster: every process of the cluster
// builds the same JobGraph from the same registry.
func ExampleRegistry() {
	reg := flink.NewRegistry()
	reg.MustRegister("evens", func(env *flink.Env, args []string) error {
		nums := flink.Generate(env, 10, func(i int64) (int64, error) { return i, nil })
		evens := flink.Filter(nums, func(v int64) (bool, error) { return v%2 == 0, nil }).Name("evens")
		flink.SinkTo(evens, "discard", flink.SinkFunc(func(int64) error { return nil }))
		return nil
	})
	cfg := flink.DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.Registry = 2, 2, reg
	cluster, err := flink.NewLocalCluster(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()
	res, err := cluster.Run(context.Background(), flink.JobSubmission{Name: "evens", Parallelism: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	op, _ := res.Operator("evens")
	fmt.Println(res.Status, op.RecordsIn, op.RecordsOut)
	// Output: FINISHED 10 5
}

// A keyed process function keeps state per key: here, a running count per
// word, emitted at every second sighting.
func ExampleKeyedProcess() {
	env := flink.NewEnv(flink.WithParallelism(1))
	words := flink.FromSlice(env, []string{"a", "b", "a", "a", "b", "a"})
	pairs := flink.KeyedProcess(flink.KeyBy(words, func(w string) string { return w }),
		flink.OnElement(func(ctx *flink.KeyedContext[string], w string, out flink.Collector[string]) error {
			count, err := state.GetValueState(ctx.State(), state.ValueStateDescriptor[int]{Name: "count"})
			if err != nil {
				return err
			}
			n, _, err := count.Value()
			if err != nil {
				return err
			}
			if n++; n%2 == 0 {
				out.Collect(fmt.Sprintf("%s seen %d times", ctx.CurrentKey(), n))
			}
			return count.Update(n)
		}))
	flink.Print(pairs)
	if _, err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// a seen 2 times
	// b seen 2 times
	// a seen 4 times
}

// Click is a page view at a time in Unix milliseconds.
type Click struct {
	Page string
	At   int64
}

// Page views per page in one-second event-time windows. Timestamps come
// from the records; clicks may arrive up to 500 ms out of order.
func ExampleWindow() {
	env := flink.NewEnv(flink.WithParallelism(1))
	clicks := flink.FromSlice(env, []Click{
		{"home", 100}, {"cart", 300}, {"home", 900}, {"home", 1200}, {"home", 700}, {"cart", 2100},
	})
	stamped := flink.AssignTimestampsAndWatermarks(clicks,
		flink.ForBoundedOutOfOrderness[Click](500*time.Millisecond).
			WithTimestampAssigner(func(c Click, _ int64) int64 { return c.At }))
	perSecond, err := window.Tumbling(window.EventTime, time.Second, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	views := flink.WindowProcess(flink.Window(flink.KeyBy(stamped, func(c Click) string { return c.Page }), perSecond),
		func(ctx *flink.WindowContext[string], cs []Click, out flink.Collector[string]) error {
			out.Collect(fmt.Sprintf("%s [%d, %d): %d views", ctx.Key(), ctx.Window().Start, ctx.Window().End, len(cs)))
			return nil
		})
	flink.Print(views)
	if _, err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Unordered output:
	// home [0, 1000): 3 views
	// cart [0, 1000): 1 views
	// home [1000, 2000): 1 views
	// cart [2000, 3000): 1 views
}

// A job's restart strategy may be set with WithRestartStrategy or directly
// on its JobConfig; either is honoured. Left unset, a checkpointed job
// restarts with exponential delay, as in Flink; here NoRestart makes the
// first failure final.
func ExampleRestartStrategy() {
	env := flink.NewEnv(flink.WithParallelism(1), flink.WithCheckpointing(time.Minute),
		func(c *flink.JobConfig) { c.Restart = flink.NoRestart() })
	flink.Collect(flink.Map(flink.FromSlice(env, []int{1}), func(int) (int, error) {
		return 0, errors.New("bad record")
	}))
	res, err := env.Execute(context.Background())
	fmt.Println(res.Status, res.Restarts, err != nil)
	// Output: FAILED 0 true
}

// A job's result counts its checkpoints. A bounded job with checkpointing
// takes a final checkpoint when its input ends, as Flink's
// execution.checkpointing.checkpoints-after-tasks-finish.
func ExampleCheckpointCounts() {
	env := flink.NewEnv(flink.WithParallelism(1), flink.WithCheckpointing(time.Hour))
	flink.Collect(flink.FromSlice(env, []int{1, 2, 3}))
	res, err := env.Execute(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	c := res.Checkpoints
	fmt.Println(c.Completed, c.Failed, c.LatestCompletedID)
	// Output: 1 0 1
}

// countdown is a user source: each subtask emits its share of n..1. Run
// watches ctx, so a cancelled job stops it between records.
type countdown struct{ n int }

func (c *countdown) Run(ctx context.Context, out *flink.SourceContext[int]) error {
	rc := out.RuntimeContext()
	for i := c.n - rc.SubtaskIndex(); i > 0; i -= rc.Parallelism() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := out.Collect(i); err != nil {
			return err
		}
	}
	return nil
}

func (c *countdown) Cancel() {}

// A user-defined source and sink: the source is created once per subtask
// and its Run gets the subtask's context; so does the sink's Write.
func ExampleFromSource() {
	env := flink.NewEnv(flink.WithParallelism(1))
	nums := flink.FromSource(env, "countdown", func() flink.Source[int] { return &countdown{n: 3} })
	flink.SinkTo(nums, "stdout", func() flink.Sink[int] { return &lineSink{} })
	if _, err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// line 1: 3
	// line 2: 2
	// line 3: 1
}

// lineSink prints numbered lines; each subtask has its own instance, so
// its counter needs no lock.
type lineSink struct{ n int }

func (s *lineSink) Open(*flink.RuntimeContext) error { return nil }

func (s *lineSink) Write(ctx context.Context, v int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.n++
	fmt.Printf("line %d: %d\n", s.n, v)
	return nil
}

func (s *lineSink) Finish() error { return nil }
func (s *lineSink) Close() error  { return nil }

// clickCounter counts a page's clicks and reports the count one second of
// event time after the page's first click: ProcessElement registers the
// timer, OnTimer (KeyedTimerFunction) receives it.
type clickCounter struct{}

func (clickCounter) ProcessElement(ctx *flink.KeyedContext[string], c Click, _ flink.Collector[string]) error {
	count, err := state.GetValueState(ctx.State(), state.ValueStateDescriptor[int]{Name: "count"})
	if err != nil {
		return err
	}
	n, _, err := count.Value()
	if err != nil {
		return err
	}
	if n == 0 {
		ctx.TimerService().RegisterEventTimeTimer(c.At + 1000)
	}
	return count.Update(n + 1)
}

func (clickCounter) OnTimer(ctx *flink.KeyedContext[string], ts int64, out flink.Collector[string]) error {
	count, err := state.GetValueState(ctx.State(), state.ValueStateDescriptor[int]{Name: "count"})
	if err != nil {
		return err
	}
	n, _, err := count.Value()
	if err != nil {
		return err
	}
	out.Collect(fmt.Sprintf("%s: %d clicks by %d", ctx.CurrentKey(), n, ts))
	return count.Clear()
}

// A keyed process function with event-time timers.
func ExampleKeyedTimerFunction() {
	env := flink.NewEnv(flink.WithParallelism(1))
	clicks := flink.FromSlice(env, []Click{{"home", 100}, {"cart", 300}, {"home", 900}, {"home", 1200}})
	stamped := flink.AssignTimestampsAndWatermarks(clicks,
		flink.ForMonotonousTimestamps[Click]().WithTimestampAssigner(func(c Click, _ int64) int64 { return c.At }))
	reports := flink.KeyedProcess(flink.KeyBy(stamped, func(c Click) string { return c.Page }),
		clickCounter{})
	flink.Print(reports)
	if _, err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// home: 3 clicks by 1100
	// cart: 1 clicks by 1300
}

// firstSeen reports each key the first time its subtask sees it. The set
// is a plain field: every subtask has its own copy of the function, made
// in Open, and only that subtask's goroutine touches it. (State that must
// survive a failure belongs in keyed state instead.)
type firstSeen struct {
	seen map[string]bool
}

func (f *firstSeen) Open(rc *flink.RuntimeContext) error {
	f.seen = make(map[string]bool)
	return nil
}

func (f *firstSeen) ProcessElement(ctx *flink.KeyedContext[string], w string, out flink.Collector[string]) error {
	if !f.seen[w] {
		f.seen[w] = true
		out.Collect("first " + w)
	}
	return nil
}

func (f *firstSeen) Close() error { return nil }

// A function with per-subtask fields and an open/close lifecycle.
func ExampleRichFunction() {
	env := flink.NewEnv(flink.WithParallelism(2))
	words := flink.FromSlice(env, []string{"a", "b", "a", "c", "b"})
	firsts := flink.KeyedProcess(flink.KeyBy(words, func(w string) string { return w }), &firstSeen{})
	got := flink.Collect(firsts)
	if _, err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	vs := got.Values()
	slices.Sort(vs)
	fmt.Println(vs)
	// Output: [first a first b first c]
}
