package flink

import (
	"context"
	"testing"
	"time"

	"github.com/flinkgo/flink/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func identity[T any](v T) (T, error) { return v, nil }

func TestJobGraphChainsAndSlots(t *testing.T) {
	discard := func(s *DataStream[int]) { SinkTo(s, "sink", SinkFunc(func(int) error { return nil })) }
	tests := []struct {
		name     string
		opts     []Option
		build    func(env *Env)
		vertices []string
		edges    []string
		slots    int
	}{{
		name: "forward chain",
		opts: []Option{WithParallelism(4)},
		build: func(env *Env) {
			s := Generate(env, 10, func(i int64) (int, error) { return int(i), nil })
			discard(Filter(Map(s, identity[int]), func(int) (bool, error) { return true, nil }))
		},
		vertices: []string{"Source: Generate -> Map -> Filter -> sink"},
		slots:    4,
	}, {
		name: "chaining disabled",
		opts: []Option{WithParallelism(4), WithoutChaining()},
		build: func(env *Env) {
			discard(Map(Generate(env, 10, func(i int64) (int, error) { return int(i), nil }), identity[int]))
		},
		vertices: []string{"Source: Generate", "Map", "sink"},
		edges:    []string{"0->1 FORWARD", "1->2 FORWARD"},
		slots:    4,
	}, {
		name: "keyBy breaks the chain",
		opts: []Option{WithParallelism(3)},
		build: func(env *Env) {
			s := Map(Generate(env, 10, func(i int64) (int, error) { return int(i), nil }), identity[int])
			discard(Reduce(KeyBy(s, func(v int) int { return v }), func(a, b int) (int, error) { return a + b, nil }))
		},
		vertices: []string{"Source: Generate -> Map", "Reduce -> sink"},
		edges:    []string{"0->1 HASH"},
		slots:    3,
	}, {
		name: "parallelism change rebalances",
		opts: []Option{WithParallelism(2)},
		build: func(env *Env) {
			s := FromSlice(env, []int{1, 2, 3})
			discard(Map(s, identity[int]))
		},
		vertices: []string{"Source: FromSlice", "Map -> sink"},
		edges:    []string{"0->1 REBALANCE"},
		slots:    2,
	}, {
		name: "slot sharing groups add up",
		opts: []Option{WithParallelism(2)},
		build: func(env *Env) {
			s := Generate(env, 10, func(i int64) (int, error) { return int(i), nil })
			m := Map(s, identity[int]).SetParallelism(3).SlotSharingGroup("heavy")
			discard(m.Rebalance())
		},
		vertices: []string{"Source: Generate", "Map", "sink"},
		edges:    []string{"0->1 REBALANCE", "1->2 REBALANCE"},
		slots:    5,
	}, {
		name: "new chain and disabled chaining",
		opts: []Option{WithParallelism(2)},
		build: func(env *Env) {
			s := Generate(env, 10, func(i int64) (int, error) { return int(i), nil })
			a := Map(s, identity[int]).StartNewChain()
			b := Map(a, identity[int])
			c := Map(b, identity[int]).DisableChaining()
			discard(Map(c, identity[int]))
		},
		vertices: []string{"Source: Generate", "Map -> Map", "Map", "Map -> sink"},
		edges:    []string{"0->1 FORWARD", "1->2 FORWARD", "2->3 FORWARD"},
		slots:    2,
	}, {
		name: "union and fan-out",
		opts: []Option{WithParallelism(2)},
		build: func(env *Env) {
			a := Generate(env, 10, func(i int64) (int, error) { return int(i), nil })
			b := Generate(env, 10, func(i int64) (int, error) { return int(i), nil })
			u := Map(Union(a, b), identity[int])
			discard(u)
			discard(Map(u, identity[int]).Name("second"))
		},
		vertices: []string{"Source: Generate", "Source: Generate", "Map -> sink -> second -> sink"},
		edges:    []string{"0->2 FORWARD", "1->2 FORWARD"},
		slots:    2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := NewEnv(tt.opts...)
			tt.build(env)
			g, err := env.JobGraph()
			require.NoError(t, err)
			var names, edges []string
			for _, v := range g.Vertices {
				names = append(names, v.Name)
			}
			for _, e := range g.Edges {
				edges = append(edges, fmtEdge(e))
			}
			assert.Equal(t, tt.vertices, names)
			assert.Equal(t, tt.edges, edges)
			assert.Equal(t, tt.slots, g.SlotsNeeded())

			env2 := NewEnv(tt.opts...)
			tt.build(env2)
			g2, err := env2.JobGraph()
			require.NoError(t, err)
			assert.Equal(t, g.Fingerprint, g2.Fingerprint, "the same job builds the same fingerprint")
		})
	}
}

func fmtEdge(e *JobEdge) string {
	return string(rune('0'+e.Source)) + "->" + string(rune('0'+e.Target)) + " " + e.Partitioner
}

func TestFingerprintChangesWithGraph(t *testing.T) {
	build := func(par int, name string) string {
		env := NewEnv(WithParallelism(par))
		s := Map(FromSlice(env, []int{1}), identity[int]).Name(name)
		Collect(s)
		g, err := env.JobGraph()
		require.NoError(t, err)
		return g.Fingerprint
	}
	assert.NotEqual(t, build(1, "a"), build(2, "a"))
	assert.NotEqual(t, build(1, "a"), build(1, "b"))
}

func TestGraphErrors(t *testing.T) {
	t.Run("forward needs equal parallelism", func(t *testing.T) {
		env := NewEnv(WithParallelism(2))
		Collect(Map(FromSlice(env, []int{1}).Forward(), identity[int]))
		_, err := env.JobGraph()
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, err.Error(), "forward partitioning")
	})
	t.Run("non-parallel source", func(t *testing.T) {
		env := NewEnv()
		Collect(FromSlice(env, []int{1}).SetParallelism(2))
		_, err := env.JobGraph()
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, err.Error(), "not parallel")
	})
	t.Run("parallelism above max parallelism", func(t *testing.T) {
		env := NewEnv(WithParallelism(4), WithMaxParallelism(2))
		Collect(Generate(env, 1, func(i int64) (int64, error) { return i, nil }))
		_, err := env.JobGraph()
		require.ErrorIs(t, err, ErrInvalidConfig)
	})
	t.Run("bad parallelism", func(t *testing.T) {
		env := NewEnv()
		Collect(Map(FromSlice(env, []int{1}), identity[int]).SetParallelism(0))
		_, err := env.JobGraph()
		require.ErrorIs(t, err, ErrInvalidConfig)
	})
	t.Run("name on a union", func(t *testing.T) {
		env := NewEnv()
		a := FromSlice(env, []int{1})
		Collect(Union(a, a).Name("u"))
		_, err := env.JobGraph()
		require.ErrorContains(t, err, "union")
	})
}

func TestExecutionStateTransitions(t *testing.T) {
	legal := map[[2]ExecutionState]bool{}
	for from, tos := range legalTransitions {
		for _, to := range tos {
			legal[[2]ExecutionState{ExecutionState(from), to}] = true
		}
	}
	for from := Created; from <= Failed; from++ {
		for to := Created; to <= Failed; to++ {
			ev := &ExecutionVertex{Vertex: &JobVertex{Name: "v", Parallelism: 1}, State: from}
			err := ev.Transition(to)
			if legal[[2]ExecutionState{from, to}] {
				assert.NoError(t, err, "%s -> %s", from, to)
				assert.Equal(t, to, ev.State)
			} else {
				assert.ErrorIs(t, err, ErrIllegalTransition, "%s -> %s", from, to)
				assert.Equal(t, from, ev.State)
			}
		}
	}
	for _, s := range []ExecutionState{Finished, Canceled, Failed} {
		assert.True(t, s.IsTerminal())
	}
	// The happy path and a cancellation.
	ev := &ExecutionVertex{Vertex: &JobVertex{Name: "v", Parallelism: 1}}
	for _, s := range []ExecutionState{Scheduled, Deploying, Running, Canceling, Canceled} {
		require.NoError(t, ev.Transition(s))
	}
}

func TestExecutionGraphResetStartsNewAttempt(t *testing.T) {
	env := NewEnv(WithParallelism(2))
	Collect(Map(Generate(env, 1, func(i int64) (int64, error) { return i, nil }), identity[int64]))
	g, err := env.JobGraph()
	require.NoError(t, err)
	eg := NewExecutionGraph("job", g)
	require.Len(t, eg.All(), 2)
	ev := eg.All()[0]
	require.NoError(t, ev.Transition(Scheduled))
	require.ErrorIs(t, eg.Reset(), ErrIllegalTransition, "cannot restart while a subtask is scheduled")
	require.NoError(t, ev.Transition(Canceled))
	require.NoError(t, eg.Reset())
	assert.Equal(t, 1, ev.ID.Attempt)
	assert.Equal(t, Created, ev.State)
	assert.Nil(t, eg.Lookup(ExecutionAttemptID{Job: "job", Vertex: 0, Subtask: 0, Attempt: 0}), "old attempts are unknown")
	assert.Same(t, ev, eg.Lookup(ev.ID))
}

func TestNotEnoughSlots(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.SlotRequestTimeout = 1, 2, 200*time.Millisecond
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	env := NewEnv(WithParallelism(4))
	Collect(Generate(env, 10, func(i int64) (int64, error) { return i, nil }))
	g, err := env.JobGraph()
	require.NoError(t, err)
	res, err := c.RunGraph(context.Background(), g)
	require.ErrorIs(t, err, ErrNotEnoughSlots)
	assert.Contains(t, err.Error(), "needs 4 slots")
	assert.Contains(t, err.Error(), "cluster has 2 slots")
	assert.Equal(t, JobFailed, res.Status)

	// The slots it held are free again: a job that fits runs.
	env = NewEnv(WithParallelism(2))
	Collect(Generate(env, 10, func(i int64) (int64, error) { return i, nil }))
	g, err = env.JobGraph()
	require.NoError(t, err)
	_, err = c.RunGraph(context.Background(), g)
	require.NoError(t, err)
}

func TestSlotSharingAcrossTaskManagers(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager = 3, 2
	c, err := NewLocalCluster(cfg)
	require.NoError(t, err)
	defer c.Close()
	env := NewEnv(WithParallelism(6))
	src := Generate(env, 60000, func(i int64) (int64, error) { return i, nil })
	sum := Reduce(KeyBy(src, func(v int64) int64 { return v % 100 }), func(a, b int64) (int64, error) { return a + b, nil })
	got := Collect(Filter(sum, func(int64) (bool, error) { return true, nil }))
	g, err := env.JobGraph()
	require.NoError(t, err)
	require.Equal(t, 6, g.SlotsNeeded(), "3 operators at parallelism 6 share 6 slots")
	res, err := c.RunGraph(context.Background(), g)
	require.NoError(t, err)
	op, _ := res.Operator("Reduce")
	assert.EqualValues(t, 60000, op.RecordsIn)
	assert.Len(t, got.Values(), 60000)
	total, free, err := c.rm.SlotCounts(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 6, total)
	require.Eventually(t, func() bool {
		_, free, _ = c.rm.SlotCounts(context.Background())
		return free == 6
	}, 10*time.Second, time.Millisecond, "slots are freed when the job ends")
	assert.Len(t, c.ResourceManager().IdleTaskManagers(), 3)
}

func TestFingerprintMismatchRefused(t *testing.T) {
	mine, theirs := NewRegistry(), NewRegistry()
	mine.MustRegister("job", func(env *Env, _ []string) error {
		Collect(Map(FromSlice(env, []int{1}), identity[int]))
		return nil
	})
	theirs.MustRegister("job", func(env *Env, _ []string) error {
		Collect(Filter(FromSlice(env, []int{1}), func(int) (bool, error) { return true, nil }))
		return nil
	})
	g, err := mine.Build("job", nil, DefaultJobConfig())
	require.NoError(t, err)
	tm := newTaskManager("tm", "tm", "rm", 1, ResourceProfile{}, newLocalResolver(), theirs, newGraphStore(), newLocalShuffle(), localEnv(t), nil, discardLogger)
	defer tm.close()
	_, err = tm.jobGraph(TaskDeploymentDescriptor{ID: ExecutionAttemptID{Job: "j"}, Job: g.Spec, Fingerprint: g.Fingerprint})
	require.ErrorIs(t, err, ErrFingerprintMismatch)
	assert.Contains(t, err.Error(), "different binaries")

	tmSame := newTaskManager("tm2", "tm2", "rm", 1, ResourceProfile{}, newLocalResolver(), mine, newGraphStore(), newLocalShuffle(), localEnv(t), nil, discardLogger)
	defer tmSame.close()
	g2, err := tmSame.jobGraph(TaskDeploymentDescriptor{ID: ExecutionAttemptID{Job: "j"}, Job: g.Spec, Fingerprint: g.Fingerprint})
	require.NoError(t, err)
	assert.Equal(t, g.Fingerprint, g2.Fingerprint)
}

func localEnv(t *testing.T) *network.Environment {
	env, err := network.NewEnvironment(network.LocalConfig())
	require.NoError(t, err)
	t.Cleanup(func() { env.Close() })
	return env
}

// TestExecutionGraphAllIn: AllIn answers for every subtask, and allocates
// nothing, since a JobManager asks after every state report of thousands of
// subtasks.
func TestExecutionGraphAllIn(t *testing.T) {
	g, err := controlPlaneJob(50)
	require.NoError(t, err)
	eg := NewExecutionGraph("job", g)
	assert.True(t, eg.AllIn(Created))
	last := eg.Subtasks[1][49]
	for _, ev := range eg.All() {
		if ev != last {
			require.NoError(t, ev.Transition(Canceled))
		}
	}
	assert.False(t, eg.AllIn(Canceled, Failed), "one subtask is still CREATED")
	assert.True(t, eg.AllIn(Canceled, Created))
	require.NoError(t, last.Transition(Failed))
	assert.True(t, eg.AllIn(Canceled, Failed))
	assert.Zero(t, testing.AllocsPerRun(10, func() { eg.AllIn(Canceled, Failed) }))
}
