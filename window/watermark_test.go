package window

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recorder is an Output that records what a generator emits.
type recorder struct{ log []string }

func (r *recorder) EmitWatermark(wm int64) { r.log = append(r.log, "wm "+itoa(wm)) }
func (r *recorder) MarkIdle()              { r.log = append(r.log, "idle") }
func (r *recorder) MarkActive()            { r.log = append(r.log, "active") }

func (r *recorder) take() []string {
	out := r.log
	r.log = nil
	return out
}

func itoa(v int64) string {
	if v == MinWatermark {
		return "min"
	}
	return strconv.FormatInt(v, 10)
}

func newGenerator(t *testing.T, s Strategy) Generator {
	t.Helper()
	g, err := s.NewGenerator()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestBoundedOutOfOrderness(t *testing.T) {
	g := newGenerator(t, BoundedOutOfOrderness(4*time.Second))
	var out recorder
	g.OnPeriodicEmit(&out)
	for _, ts := range []int64{10000, 9000, 12000, 5000} {
		g.OnEvent(ts, &out)
		g.OnPeriodicEmit(&out)
	}
	want := []string{"wm min", "wm 5999", "wm 5999", "wm 7999", "wm 7999"}
	if got := out.take(); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	m := newGenerator(t, Monotonous())
	m.OnEvent(10, &out)
	m.OnPeriodicEmit(&out)
	if got := out.take(); !slices.Equal(got, []string{"wm 9"}) {
		t.Fatalf("monotonous: %v", got)
	}
	if _, err := NewBoundedOutOfOrdernessGenerator(-1); !errors.Is(err, ErrInvalidStrategy) {
		t.Fatalf("negative bound: %v", err)
	}
}

// punctuated emits a watermark on every event with an even timestamp.
type punctuated struct{}

func (punctuated) OnEvent(ts int64, out Output) {
	if ts%2 == 0 {
		out.EmitWatermark(ts)
	}
}
func (punctuated) OnPeriodicEmit(Output) {}

func TestCustomStrategy(t *testing.T) {
	g := newGenerator(t, Custom(func() Generator { return punctuated{} }))
	var out recorder
	for _, ts := range []int64{1, 2, 3, 4} {
		g.OnEvent(ts, &out)
		g.OnPeriodicEmit(&out)
	}
	if got := out.take(); !slices.Equal(got, []string{"wm 2", "wm 4"}) {
		t.Fatalf("got %v", got)
	}
}

func TestStrategyValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Strategy
		want string
	}{
		{"negative bound", BoundedOutOfOrderness(-time.Second), "negative"},
		{"sub-ms bound", BoundedOutOfOrderness(time.Microsecond), "whole number"},
		{"negative idleness", Monotonous().WithIdleness(-time.Second), "idle timeout"},
		{"nil generator", Custom(func() Generator { return nil }), "returned nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.NewGenerator()
			if !errors.Is(err, ErrInvalidStrategy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalidStrategy mentioning %q", err, tc.want)
			}
		})
	}
	// A custom strategy ignores MaxOutOfOrderness.
	s := Custom(func() Generator { return punctuated{} })
	s.MaxOutOfOrderness = -1
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

// fakeClock is a manually advanced clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestIdleness(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	s := BoundedOutOfOrderness(0).WithIdleness(time.Second)
	s.Now = clock.now
	g := newGenerator(t, s)
	var out recorder
	step := func(d time.Duration, events ...int64) []string {
		clock.advance(d)
		for _, ts := range events {
			g.OnEvent(ts, &out)
		}
		g.OnPeriodicEmit(&out)
		return out.take()
	}
	for i, tc := range []struct {
		after  time.Duration
		events []int64
		want   []string
	}{
		{0, []int64{100}, []string{"wm 99"}},
		{200 * time.Millisecond, nil, []string{"wm 99"}}, // first quiet period: the clock starts
		{500 * time.Millisecond, nil, []string{"wm 99"}},
		{500 * time.Millisecond, nil, []string{"wm 99"}}, // exactly the timeout: not yet
		{time.Millisecond, nil, []string{"idle"}},        // past it
		{time.Hour, nil, []string{"idle"}},
		{time.Millisecond, []int64{200}, []string{"wm 199"}}, // an event ends idleness
		{200 * time.Millisecond, nil, []string{"wm 199"}},
		{1100 * time.Millisecond, nil, []string{"idle"}},
	} {
		if got := step(tc.after, tc.events...); !slices.Equal(got, tc.want) {
			t.Fatalf("step %d: got %v, want %v", i, got, tc.want)
		}
	}
}
