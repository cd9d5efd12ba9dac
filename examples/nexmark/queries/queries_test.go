package queries_test

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/queries"
	"github.com/flinkgo/flink/examples/nexmark/ref"
)

// testEvents is the size of the generated streams the queries are checked on.
const testEvents = 100_000

// configs are the generator settings the queries are checked with: a slow event rate, so that
// 100k events span many windows (and events fall exactly on window boundaries), and the
// benchmark's default rate, where they all fall in one window.
func configs() map[string]gen.Config {
	slow := gen.DefaultConfig()
	slow.EventsPerSecond = 1000
	return map[string]gen.Config{"1k/s": slow, "10M/s": gen.DefaultConfig()}
}

// run runs query q on events 0 to n-1 of cfg at parallelism 2 and returns its output.
func run[T any](t *testing.T, cfg gen.Config, n int64, q func(*flink.DataStream[gen.Event]) *flink.DataStream[T]) []T {
	t.Helper()
	env := flink.NewEnv(flink.WithParallelism(2), flink.WithCheckpointing(50*time.Millisecond))
	out := flink.Collect(q(queries.Source(env, cfg, n)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := env.Execute(ctx)
	require.NoError(t, err)
	require.Equal(t, flink.JobFinished, res.Status)
	return out.Values()
}

func events(t *testing.T, cfg gen.Config, n int64) []gen.Event {
	t.Helper()
	g, err := gen.New(cfg)
	require.NoError(t, err)
	evs, err := g.AppendEvents(nil, 0, n)
	require.NoError(t, err)
	return evs
}

func compareBid(a, b gen.Bid) int {
	return cmp.Or(cmp.Compare(a.DateTime, b.DateTime), cmp.Compare(a.Auction, b.Auction),
		cmp.Compare(a.Bidder, b.Bidder), cmp.Compare(a.Price, b.Price),
		cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.URL, b.URL), cmp.Compare(a.Extra, b.Extra))
}

// check runs q and compares its output, sorted with compare, with want (computed by the
// reference on the same events).
func check[T any](t *testing.T, q func(*flink.DataStream[gen.Event]) *flink.DataStream[T], want func([]gen.Event) []T, compare func(a, b T) int) {
	for name, cfg := range configs() {
		t.Run(name, func(t *testing.T) {
			exp := want(events(t, cfg, testEvents))
			got := run(t, cfg, testEvents, q)
			slices.SortFunc(exp, compare)
			slices.SortFunc(got, compare)
			require.NotEmpty(t, exp, "the reference finds no result: the test checks nothing")
			require.Equal(t, len(exp), len(got))
			require.Equal(t, exp, got)
		})
	}
}

func TestQ0(t *testing.T)  { check(t, queries.Q0, ref.Q0, compareBid) }
func TestQ1(t *testing.T)  { check(t, queries.Q1, ref.Q1, compareBid) }
func TestQ2(t *testing.T)  { check(t, queries.Q2, ref.Q2, ref.CompareQ2) }
func TestQ3(t *testing.T)  { check(t, queries.Q3, ref.Q3, ref.CompareQ3) }
func TestQ5(t *testing.T)  { check(t, queries.Q5, ref.Q5, ref.CompareQ5) }
func TestQ7(t *testing.T)  { check(t, queries.Q7, ref.Q7, ref.CompareQ7) }
func TestQ8(t *testing.T)  { check(t, queries.Q8, ref.Q8, ref.CompareQ8) }
func TestQ11(t *testing.T) { check(t, queries.Q11, ref.Q11, ref.CompareQ11) }

// TestQ4 folds q4's upsert stream (the last record per category wins; a category's records
// arrive in order) into the final result.
func TestQ4(t *testing.T) {
	final := func(s *flink.DataStream[gen.Event]) *flink.DataStream[ref.Q4Result] { return queries.Q4(s) }
	for name, cfg := range configs() {
		t.Run(name, func(t *testing.T) {
			exp := ref.Q4(events(t, cfg, testEvents))
			last := map[int64]ref.Q4Result{}
			for _, r := range run(t, cfg, testEvents, final) {
				last[r.Category] = r
			}
			got := slices.SortedFunc(func(yield func(ref.Q4Result) bool) {
				for _, r := range last {
					if !yield(r) {
						return
					}
				}
			}, ref.CompareQ4)
			require.NotEmpty(t, exp)
			require.Equal(t, exp, got)
		})
	}
}
