package window

import (
	"errors"
	"testing"
	"time"
)

type combinerStep struct {
	op   string // "wm", "idle", "active", "add", "remove"
	in   int
	wm   int64
	want Change
	err  error
}

func runCombiner(t *testing.T, c *Combiner, steps []combinerStep) {
	t.Helper()
	for i, st := range steps {
		var got Change
		var err error
		switch st.op {
		case "wm":
			got, err = c.Update(st.in, st.wm)
		case "idle":
			got, err = c.MarkIdle(st.in)
		case "active":
			got, err = c.MarkActive(st.in)
		case "add":
			var n int
			n, got = c.AddInput()
			if n != st.in {
				t.Fatalf("step %d: AddInput = %d, want %d", i, n, st.in)
			}
		case "remove":
			got, err = c.RemoveInput(st.in)
		}
		if !errors.Is(err, st.err) || (st.err == nil && err != nil) {
			t.Fatalf("step %d (%s %d %d): error %v, want %v", i, st.op, st.in, st.wm, err, st.err)
		}
		if err == nil && got != st.want {
			t.Fatalf("step %d (%s %d %d): got %+v, want %+v", i, st.op, st.in, st.wm, got, st.want)
		}
		if err == nil && (c.Watermark() != got.Watermark || c.Idle() != got.Idle) {
			t.Fatalf("step %d: accessors disagree with the change", i)
		}
	}
}

func at(wm int64) Change        { return Change{Watermark: wm} }
func advanced(wm int64) Change  { return Change{Watermark: wm, Advanced: true} }
func nowIdle(wm int64) Change   { return Change{Watermark: wm, Idle: true, StatusChanged: true} }
func nowActive(wm int64) Change { return Change{Watermark: wm, StatusChanged: true} }
func flushedIdle(wm int64) Change {
	return Change{Watermark: wm, Advanced: true, Idle: true, StatusChanged: true}
}

func TestCombinerChannelMode(t *testing.T) {
	runCombiner(t, NewCombiner(ChannelMode, 2), []combinerStep{
		{op: "wm", in: 0, wm: 5, want: at(MinWatermark)}, // input 1 holds it back
		{op: "wm", in: 1, wm: 3, want: advanced(3)},
		{op: "wm", in: 1, wm: 10, want: advanced(5)},
		{op: "wm", in: 1, wm: 10, want: at(5)},  // equal: nothing
		{op: "idle", in: 0, want: advanced(10)}, // 0 held the minimum; it no longer counts
		{op: "idle", in: 0, want: at(10)},       // idempotent
		{op: "wm", in: 0, wm: 7, want: at(10)},  // active again but behind: not aligned
		{op: "wm", in: 1, wm: 20, want: advanced(20)},
		{op: "wm", in: 0, wm: 25, want: at(20)}, // caught up: aligned again
		{op: "wm", in: 1, wm: 30, want: advanced(25)},
		{op: "idle", in: 1, want: at(25)},
		{op: "idle", in: 0, want: flushedIdle(30)}, // last active goes idle: flush to the max
		{op: "active", in: 1, want: nowActive(30)},
		{op: "wm", in: 1, wm: 29, err: ErrWatermarkRegressed},
		{op: "wm", in: 1, wm: 40, want: advanced(40)},
		{op: "wm", in: 2, wm: 40, err: ErrUnknownInput},
		{op: "idle", in: -1, err: ErrUnknownInput},
		{op: "active", in: 9, err: ErrUnknownInput},
	})
}

func TestCombinerSplitMode(t *testing.T) {
	runCombiner(t, NewCombiner(SplitMode, 2), []combinerStep{
		{op: "wm", in: 0, wm: 5, want: at(MinWatermark)},
		{op: "wm", in: 1, wm: 3, want: advanced(3)},
		{op: "wm", in: 1, wm: 10, want: advanced(5)},
		{op: "idle", in: 0, want: advanced(10)},
		{op: "wm", in: 0, wm: 7, want: at(10)},  // active again: holds the output back
		{op: "wm", in: 1, wm: 20, want: at(10)}, // held back by input 0
		{op: "wm", in: 0, wm: 25, want: advanced(20)},
		{op: "wm", in: 1, wm: 30, want: advanced(25)},
		{op: "idle", in: 1, want: at(25)},
		{op: "idle", in: 0, want: nowIdle(25)}, // no flush
		{op: "wm", in: 1, wm: 29, err: ErrWatermarkRegressed},
		{op: "wm", in: 1, wm: 30, want: nowActive(25)}, // a watermark marks the input active
		{op: "wm", in: 1, wm: 40, want: advanced(40)},
	})
}

func TestCombinerFlushOnlyWhenHolding(t *testing.T) {
	// ChannelMode flushes when the last active input held the output.
	runCombiner(t, NewCombiner(ChannelMode, 2), []combinerStep{
		{op: "wm", in: 0, wm: 5, want: at(MinWatermark)},
		{op: "wm", in: 1, wm: 10, want: advanced(5)},
		{op: "idle", in: 1, want: at(5)},
		{op: "idle", in: 0, want: flushedIdle(10)},
	})
	// A lagging (unaligned) last input going idle does not flush, as in Flink's valve.
	runCombiner(t, NewCombiner(ChannelMode, 2), []combinerStep{
		{op: "wm", in: 0, wm: 5, want: at(MinWatermark)},
		{op: "wm", in: 1, wm: 10, want: advanced(5)},
		{op: "idle", in: 0, want: advanced(10)},
		{op: "wm", in: 0, wm: 6, want: at(10)}, // active, behind
		{op: "wm", in: 1, wm: 12, want: advanced(12)},
		{op: "idle", in: 1, want: at(12)},
		{op: "idle", in: 0, want: nowIdle(12)},
	})
}

func TestCombinerSplits(t *testing.T) {
	c := NewCombiner(SplitMode, 0)
	if !c.Idle() || c.Watermark() != MinWatermark {
		t.Fatalf("no inputs: idle %v, watermark %d", c.Idle(), c.Watermark())
	}
	runCombiner(t, c, []combinerStep{
		{op: "add", in: 0, want: nowActive(MinWatermark)},
		{op: "wm", in: 0, wm: 100, want: advanced(100)},
		{op: "add", in: 1, want: at(100)},         // a new split holds the output back...
		{op: "wm", in: 0, wm: 200, want: at(100)}, // ...
		{op: "wm", in: 1, wm: 150, want: advanced(150)},
		{op: "remove", in: 1, want: advanced(200)}, // finished: no longer holds it back
		{op: "remove", in: 1, err: ErrUnknownInput},
		{op: "wm", in: 1, wm: 300, err: ErrUnknownInput},
		{op: "remove", in: 0, want: nowIdle(200)},
		{op: "add", in: 2, want: nowActive(200)}, // numbers are not reused
		{op: "wm", in: 2, wm: 250, want: advanced(250)},
	})
	if wm, err := c.InputWatermark(2); err != nil || wm != 250 {
		t.Fatalf("InputWatermark(2) = %d, %v", wm, err)
	}
	if _, err := c.InputWatermark(0); !errors.Is(err, ErrUnknownInput) {
		t.Fatalf("InputWatermark(0) = %v", err)
	}
}

// Random operations: the output never decreases, and while every input is active and none ever
// was idle, it is the minimum of the inputs.
func TestCombinerRandom(t *testing.T) {
	r := uint64(7)
	next := func(n int) int { r = r*6364136223846793005 + 1442695040888963407; return int((r >> 33) % uint64(n)) }
	for _, mode := range []CombinerMode{ChannelMode, SplitMode} {
		for round := range 100 {
			const n = 4
			c := NewCombiner(mode, n)
			wms := make([]int64, n)
			for i := range wms {
				wms[i] = MinWatermark
			}
			everIdle := false
			last := c.Watermark()
			for range 200 {
				i := next(n)
				switch next(5) {
				case 0:
					if _, err := c.MarkIdle(i); err != nil {
						t.Fatal(err)
					}
					everIdle = true
				case 1:
					if _, err := c.MarkActive(i); err != nil {
						t.Fatal(err)
					}
				default:
					wm := max(wms[i], 0) + int64(next(10))
					if _, err := c.Update(i, wm); err != nil {
						t.Fatal(err)
					}
					wms[i] = wm
				}
				if c.Watermark() < last {
					t.Fatalf("mode %d round %d: output went from %d to %d", mode, round, last, c.Watermark())
				}
				last = c.Watermark()
				if !everIdle && c.Watermark() != min(wms[0], wms[1], wms[2], wms[3]) {
					t.Fatalf("mode %d round %d: output %d, inputs %v", mode, round, c.Watermark(), wms)
				}
			}
		}
	}
}

// combinerOutput feeds a generator's output into one combiner input, as the runtime will.
type combinerOutput struct {
	c   *Combiner
	in  int
	log *[]Change
	err error
}

func (o *combinerOutput) record(ch Change, err error) {
	if err != nil && o.err == nil {
		o.err = err
	}
	if ch.Advanced || ch.StatusChanged {
		*o.log = append(*o.log, ch)
	}
}
func (o *combinerOutput) EmitWatermark(wm int64) { o.record(o.c.Update(o.in, wm)) }
func (o *combinerOutput) MarkIdle()              { o.record(o.c.MarkIdle(o.in)) }
func (o *combinerOutput) MarkActive()            { o.record(o.c.MarkActive(o.in)) }

// regressing is a faulty custom generator whose watermark goes backwards.
type regressing struct{ n int64 }

func (g *regressing) OnEvent(int64, Output) {}
func (g *regressing) OnPeriodicEmit(out Output) {
	g.n++
	out.EmitWatermark(100 - g.n*10)
}

func TestGeneratorsIntoCombiner(t *testing.T) {
	clock := &fakeClock{}
	s := BoundedOutOfOrderness(0).WithIdleness(100 * time.Millisecond)
	s.Now = clock.now
	c := NewCombiner(SplitMode, 2)
	var log []Change
	outs := []*combinerOutput{{c: c, in: 0, log: &log}, {c: c, in: 1, log: &log}}
	gens := []Generator{newGenerator(t, s), newGenerator(t, s)}
	tick := func() {
		clock.advance(60 * time.Millisecond)
		for i, g := range gens {
			g.OnPeriodicEmit(outs[i])
		}
	}
	gens[0].OnEvent(1000, outs[0])
	gens[1].OnEvent(500, outs[1])
	tick() // 999 and 499: output 499
	gens[0].OnEvent(2000, outs[0])
	tick() // input 1 quiet: its clock starts
	gens[0].OnEvent(3000, outs[0])
	tick() // 60 ms quiet: not idle yet
	gens[0].OnEvent(4000, outs[0])
	tick() // 120 ms: input 1 idle, output jumps to input 0's 3999
	want := []Change{advanced(499), advanced(3999)}
	if len(log) != len(want) || log[0] != want[0] || log[1] != want[1] {
		t.Fatalf("changes %+v, want %+v", log, want)
	}

	// A custom generator going backwards surfaces as an error.
	bad := newGenerator(t, Custom(func() Generator { return &regressing{} }))
	c2 := NewCombiner(SplitMode, 1)
	out := &combinerOutput{c: c2, in: 0, log: &log}
	bad.OnPeriodicEmit(out)
	bad.OnPeriodicEmit(out)
	if !errors.Is(out.err, ErrWatermarkRegressed) {
		t.Fatalf("regressing generator: %v", out.err)
	}
}
