package flink

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// perSubtaskCounter keeps a plain, unlocked count per subtask: each subtask
// has its own copy, opened and closed there.
type perSubtaskCounter struct {
	mu     *sync.Mutex    // shared with the test, which holds the original
	closed map[int]int    // subtask -> its count at Close; shared
	opened *[]int         // subtasks opened; shared
	sub    int            // this instance's subtask
	n      int            // records this instance saw, unlocked
	seen   map[int64]bool // made in Open: the instance's own
}

func (c *perSubtaskCounter) Open(rc *RuntimeContext) error {
	c.sub, c.seen = rc.SubtaskIndex(), make(map[int64]bool)
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.opened = append(*c.opened, c.sub)
	return nil
}

func (c *perSubtaskCounter) ProcessElement(ctx *KeyedContext[int64], v int64, out Collector[int]) error {
	c.n++
	c.seen[ctx.CurrentKey()] = true
	out.Collect(c.sub)
	return nil
}

func (c *perSubtaskCounter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed[c.sub] = c.n
	return nil
}

// TestRichFunctionPerSubtask: a keyed process function held by pointer is
// copied for each subtask, opened there before its records and closed at
// the end; the original is never used.
func TestRichFunctionPerSubtask(t *testing.T) {
	const n, par = 1000, 3
	var mu sync.Mutex
	var opened []int
	orig := &perSubtaskCounter{mu: &mu, closed: map[int]int{}, opened: &opened}
	env := NewEnv(WithParallelism(par))
	src := Generate(env, n, func(i int64) (int64, error) { return i, nil })
	got := Collect(KeyedProcess(KeyBy(src, func(v int64) int64 { return v % 17 }), orig))
	_, err := env.Execute(context.Background())
	require.NoError(t, err)

	assert.ElementsMatch(t, []int{0, 1, 2}, opened, "each subtask opens its own instance")
	total := 0
	for sub := range par {
		total += orig.closed[sub]
	}
	assert.Equal(t, n, total, "the instances' own counts add up: %v", orig.closed)
	perSub := map[int]int{}
	for _, sub := range got.Values() {
		perSub[sub]++
	}
	for sub := range par {
		assert.Equal(t, orig.closed[sub], perSub[sub], "subtask %d counted its own records", sub)
	}
	assert.Zero(t, orig.n, "the original is a template")
	assert.Nil(t, orig.seen)
}

// failingOpen fails in Open.
type failingOpen struct{ closed *bool }

func (f *failingOpen) Open(*RuntimeContext) error { return assert.AnError }
func (f *failingOpen) Close() error               { *f.closed = true; return nil }
func (f *failingOpen) ProcessElement(*KeyedContext[int], int, Collector[int]) error {
	return nil
}

// TestRichFunctionOpenFails: an error from Open fails the job, naming it;
// Close is not called for an instance whose Open failed.
func TestRichFunctionOpenFails(t *testing.T) {
	var closed bool
	env := NewEnv(WithParallelism(1))
	Collect(KeyedProcess(KeyBy(FromSlice(env, []int{1}), func(v int) int { return v }), &failingOpen{closed: &closed}))
	_, err := env.Execute(context.Background())
	require.ErrorIs(t, err, assert.AnError)
	assert.ErrorContains(t, err, "opening *flink.failingOpen")
	assert.False(t, closed)
}

func TestPerSubtask(t *testing.T) {
	type s struct{ n int }
	p := &s{n: 1}
	q := perSubtask(p)
	assert.NotSame(t, p, q)
	assert.Equal(t, 1, q.n)
	var f any = func() {}
	assert.NotNil(t, perSubtask(f), "a func is shared")
	var nilPtr *s
	assert.Nil(t, perSubtask(nilPtr))
	assert.Equal(t, s{2}, perSubtask(s{2}), "a struct value is shared (Go copies it at every call)")
}
