package flink

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestNoRestart(t *testing.T) {
	r := newRestartTracker(NoRestart(), nil)
	_, ok := r.onFailure(t0)
	assert.False(t, ok)
}

func TestFixedDelayRestart(t *testing.T) {
	r := newRestartTracker(FixedDelayRestart(2, 3*time.Second), nil)
	for range 2 {
		d, ok := r.onFailure(t0)
		require.True(t, ok)
		assert.Equal(t, 3*time.Second, d)
	}
	_, ok := r.onFailure(t0)
	assert.False(t, ok, "a third failure exhausts two attempts")
}

func TestExponentialDelayRestart(t *testing.T) {
	s := ExponentialDelayRestart()
	require.NoError(t, s.Validate())
	assert.Equal(t, time.Second, s.InitialBackoff)
	assert.Equal(t, time.Minute, s.MaxBackoff)
	assert.Equal(t, 1.5, s.Multiplier)
	assert.Equal(t, 0.1, s.Jitter)

	noJitter := s
	noJitter.Jitter = 0
	r := newRestartTracker(noJitter, nil)
	now := t0
	var got []time.Duration
	for range 12 {
		d, ok := r.onFailure(now)
		require.True(t, ok)
		got = append(got, d)
		now = now.Add(d + time.Second)
	}
	assert.Equal(t, []time.Duration{
		1 * time.Second, 1500 * time.Millisecond, 2250 * time.Millisecond, 3375 * time.Millisecond,
		5062500 * time.Microsecond, 7593750 * time.Microsecond, 11390625 * time.Microsecond,
		17085937500 * time.Nanosecond, 25628906250 * time.Nanosecond, 38443359375 * time.Nanosecond,
		57665039062 * time.Nanosecond, time.Minute,
	}, got)

	// A long quiet period resets the backoff.
	d, _ := r.onFailure(now.Add(2 * time.Hour))
	assert.Equal(t, time.Second, d)

	// Jitter moves the delay by at most ±10%.
	for _, rnd := range []float64{0, 0.5, 0.999} {
		r := newRestartTracker(s, func() float64 { return rnd })
		d, _ := r.onFailure(t0)
		assert.InDelta(t, float64(time.Second), float64(d), 0.1*float64(time.Second))
	}
	lo, _ := newRestartTracker(s, func() float64 { return 0 }).onFailure(t0)
	assert.Equal(t, 900*time.Millisecond, lo)
}

func TestFailureRateRestart(t *testing.T) {
	r := newRestartTracker(FailureRateRestart(2, time.Minute, time.Second), nil)
	d, ok := r.onFailure(t0)
	require.True(t, ok)
	assert.Equal(t, time.Second, d)
	_, ok = r.onFailure(t0.Add(30 * time.Second))
	require.True(t, ok)
	_, ok = r.onFailure(t0.Add(50 * time.Second))
	assert.False(t, ok, "three failures within a minute")

	r = newRestartTracker(FailureRateRestart(2, time.Minute, time.Second), nil)
	for i := range 10 {
		_, ok := r.onFailure(t0.Add(time.Duration(i) * 40 * time.Second))
		require.True(t, ok, "failure %d: at most two per minute", i)
	}
}

func TestRestartStrategyValidate(t *testing.T) {
	for _, s := range []RestartStrategy{
		FixedDelayRestart(-1, 0),
		FailureRateRestart(1, 0, 0),
		{Kind: RestartExponentialDelay},
		{Kind: 99},
	} {
		assert.ErrorIs(t, s.Validate(), ErrInvalidConfig, s.String())
	}
}

func TestJobRestartsAfterFailure(t *testing.T) {
	var attempts atomic.Int32
	env := NewEnv(WithParallelism(2), WithRestartStrategy(FixedDelayRestart(3, time.Millisecond)))
	src := Generate(env, 1000, func(i int64) (int64, error) { return i, nil })
	m := Process(src, func(rc *RuntimeContext, v int64, out Collector[int64]) error {
		if v == 10 && rc.Attempt() < 2 {
			attempts.Add(1)
			return errors.New("transient")
		}
		out.Collect(v)
		return nil
	})
	got := Collect(m)
	res, err := env.Execute(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, res.Restarts)
	assert.EqualValues(t, 2, attempts.Load())
	assert.Len(t, got.Values(), 1000, "only the last attempt's output is kept")
	op, _ := res.Operator("Process")
	assert.EqualValues(t, 1000, op.RecordsIn, "counts are the last attempt's")
}

func TestJobFailsWhenRestartsExhausted(t *testing.T) {
	env := NewEnv(WithParallelism(1), WithRestartStrategy(FixedDelayRestart(1, time.Millisecond)))
	Collect(Map(FromSlice(env, []int{1}), func(int) (int, error) { return 0, errors.New("always") }))
	res, err := env.Execute(context.Background())
	require.ErrorContains(t, err, "always")
	assert.Equal(t, 1, res.Restarts)
	assert.Equal(t, JobFailed, res.Status)
}

// TestRestartSetDirectly: a strategy set on the JobConfig's field, not
// through WithRestartStrategy, is the one the job restarts with; only the
// unset zero value takes Flink's default for the job's checkpointing.
func TestRestartSetDirectly(t *testing.T) {
	checkpointing := CheckpointConfig{Interval: time.Second}
	for _, tc := range []struct {
		name string
		cfg  JobConfig
		want RestartStrategy
	}{
		{"unset, no checkpointing", JobConfig{}, NoRestart()},
		{"unset, checkpointing", JobConfig{Checkpointing: checkpointing}, ExponentialDelayRestart()},
		{"default config, checkpointing", func() JobConfig {
			c := DefaultJobConfig()
			c.Checkpointing = checkpointing
			return c
		}(), ExponentialDelayRestart()},
		{"literal none, checkpointing", JobConfig{Checkpointing: checkpointing, Restart: NoRestart()}, NoRestart()},
		{"literal fixed delay", JobConfig{Restart: FixedDelayRestart(3, time.Second)}, FixedDelayRestart(3, time.Second)},
		{"field set on the default config", func() JobConfig {
			c := DefaultJobConfig()
			c.Checkpointing, c.Restart = checkpointing, NoRestart()
			return c
		}(), NoRestart()},
		{"option", func() JobConfig {
			c := DefaultJobConfig()
			WithCheckpointing(time.Second)(&c)
			WithRestartStrategy(NoRestart())(&c)
			return c
		}(), NoRestart()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.cfg.restartStrategy())
		})
	}
}

// TestJobHonoursRestartField: a checkpointed job whose configuration sets
// Restart to NoRestart directly fails at its first failure instead of
// restarting with exponential delay.
func TestJobHonoursRestartField(t *testing.T) {
	env := NewEnv(WithParallelism(1), WithCheckpointing(time.Hour), func(c *JobConfig) { c.Restart = NoRestart() })
	Collect(Map(FromSlice(env, []int{1}), func(int) (int, error) { return 0, errors.New("always") }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := env.Execute(ctx)
	require.ErrorContains(t, err, "always")
	assert.Equal(t, 0, res.Restarts)
	assert.Equal(t, JobFailed, res.Status)
}
