package flink

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/flinkgo/flink/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type event struct {
	User  string
	Value int
}

func TestKeyedProcessKeepsStatePerKey(t *testing.T) {
	for _, isolated := range []bool{false, true} {
		t.Run(fmt.Sprint("network ", isolated), func(t *testing.T) {
			env := NewEnv(WithParallelism(3))
			src := Generate(env, 3000, func(i int64) (event, error) { return event{User: fmt.Sprint("u", i%10), Value: int(i)}, nil })
			// Per user: count events and remember the largest value.
			out := KeyedProcess(KeyBy(src, func(e event) string { return e.User }),
				OnElement(func(ctx *KeyedContext[string], e event, out Collector[string]) error {
					count, err := state.GetValueState(ctx.State(), state.ValueStateDescriptor[int]{Name: "count"})
					if err != nil {
						return err
					}
					seen, err := state.GetListState(ctx.State(), state.ListStateDescriptor[int]{Name: "values"})
					if err != nil {
						return err
					}
					n, _, err := count.Value()
					if err != nil {
						return err
					}
					if err := count.Update(n + 1); err != nil {
						return err
					}
					if err := seen.Add(e.Value); err != nil {
						return err
					}
					if n+1 == 300 {
						vs, err := seen.Get()
						if err != nil {
							return err
						}
						out.Collect(fmt.Sprintf("%s %d %d", ctx.CurrentKey(), n+1, len(vs)))
					}
					return nil
				}))
			got := Collect(out)
			cfg := DefaultClusterConfig()
			cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.IsolatedTaskManagers = 3, 1, isolated
			c, err := NewLocalCluster(cfg)
			require.NoError(t, err)
			defer c.Close()
			g, err := env.JobGraph()
			require.NoError(t, err)
			_, err = c.RunGraph(context.Background(), g)
			require.NoError(t, err)
			var want []string
			for u := range 10 {
				want = append(want, fmt.Sprintf("u%d 300 300", u))
			}
			assert.ElementsMatch(t, want, got.Values(), "each key's state holds exactly its own records")
		})
	}
}

func TestKeyedProcessStateMisuseFailsTheTask(t *testing.T) {
	env := NewEnv(WithParallelism(1))
	src := FromSlice(env, []int{1, 2})
	Collect(KeyedProcess(KeyBy(src, func(v int) int { return v }),
		OnElement(func(ctx *KeyedContext[int], v int, out Collector[int]) error {
			if _, err := state.GetValueState(ctx.State(), state.ValueStateDescriptor[int]{Name: "s"}); err != nil {
				return err
			}
			// The same name as another kind of state is refused.
			_, err := state.GetListState(ctx.State(), state.ListStateDescriptor[int]{Name: "s"})
			return err
		})).Name("misuse"))
	_, err := env.Execute(context.Background())
	require.Error(t, err)
	assert.True(t, errors.Is(err, state.ErrIncompatibleState), err)
	var te *TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "misuse", te.Operator)
}

// TestKeyedProcessTimerWithoutOnTimer: a timer firing for a keyed process
// function that does not implement KeyedTimerFunction fails the job,
// saying so.
func TestKeyedProcessTimerWithoutOnTimer(t *testing.T) {
	env := NewEnv(WithParallelism(1))
	src := AssignTimestampsAndWatermarks(FromSlice(env, []int64{10, 20}),
		ForMonotonousTimestamps[int64]().WithTimestampAssigner(func(v int64, _ int64) int64 { return v }))
	Collect(KeyedProcess(KeyBy(src, func(v int64) int64 { return v }),
		OnElement(func(ctx *KeyedContext[int64], v int64, out Collector[int64]) error {
			ctx.TimerService().RegisterEventTimeTimer(v + 5)
			return nil
		})))
	_, err := env.Execute(context.Background())
	require.ErrorContains(t, err, "without OnTimer")
}
