package flink

import (
	"fmt"
	"time"

	"github.com/flinkgo/flink/window"
)

// WatermarkStrategy says how records of type T get their event-time
// timestamps and how watermarks are generated from them: Flink's
// WatermarkStrategy with its TimestampAssigner. Build one with
// ForBoundedOutOfOrderness, ForMonotonousTimestamps or ForGenerator, then
// set the timestamp assigner.
type WatermarkStrategy[T any] struct {
	strategy window.Strategy
	assign   func(v T, prev int64) int64
}

// ForBoundedOutOfOrderness is the strategy for records at most d out of
// order: the watermark trails the highest timestamp seen by d (and 1 ms).
func ForBoundedOutOfOrderness[T any](d time.Duration) WatermarkStrategy[T] {
	return WatermarkStrategy[T]{strategy: window.BoundedOutOfOrderness(d)}
}

// ForMonotonousTimestamps is the strategy for ascending timestamps.
func ForMonotonousTimestamps[T any]() WatermarkStrategy[T] {
	return WatermarkStrategy[T]{strategy: window.Monotonous()}
}

// ForGenerator is the strategy with a custom watermark generator per
// subtask. Its watermarks must never decrease: a decrease fails the job
// with window.ErrWatermarkRegressed.
func ForGenerator[T any](newGenerator func() window.Generator) WatermarkStrategy[T] {
	return WatermarkStrategy[T]{strategy: window.Custom(newGenerator)}
}

// WithTimestampAssigner returns s with the function that extracts a
// record's timestamp (Unix milliseconds); prev is the timestamp the record
// already has, or MinWatermark.
func (s WatermarkStrategy[T]) WithTimestampAssigner(f func(v T, prev int64) int64) WatermarkStrategy[T] {
	s.assign = f
	return s
}

// WithIdleness returns s with an idle timeout: a subtask that receives no
// records for that long is marked idle, so that downstream watermarks do
// not wait for it.
func (s WatermarkStrategy[T]) WithIdleness(timeout time.Duration) WatermarkStrategy[T] {
	s.strategy = s.strategy.WithIdleness(timeout)
	return s
}

// AssignTimestampsAndWatermarks assigns every record of s its timestamp
// and generates watermarks by ws, in each subtask: Flink's operator of the
// same name. Watermarks from upstream are dropped (except the final one at
// the end of input); the strategy's replace them.
func AssignTimestampsAndWatermarks[T any](s *DataStream[T], ws WatermarkStrategy[T]) *DataStream[T] {
	if err := ws.strategy.Validate(); err != nil {
		s.env.setErr(fmt.Errorf("flink: AssignTimestampsAndWatermarks: %w", err))
	}
	return addOperator(s, "Timestamps/Watermarks", func(oc *opContext, out consumer[T]) (consumer[T], error) {
		gen, err := ws.strategy.NewGenerator()
		if err != nil {
			return nil, oc.fail(err)
		}
		o := &assignOp[T]{oc: oc, out: out, assign: ws.assign, gen: gen, wm: MinWatermark}
		if d := oc.task.graph.Config.watermarkInterval(); d > 0 {
			o.interval = d.Milliseconds()
			oc.task.timers.register(oc.task.timers.now()+o.interval, o.periodic)
		}
		return o, nil
	})
}

// assignOp assigns timestamps and runs a watermark generator. It is the
// generator's window.Output.
type assignOp[T any] struct {
	oc       *opContext
	out      consumer[T]
	assign   func(T, int64) int64
	gen      window.Generator
	ts       []int64
	wm       int64
	idle     bool
	interval int64
	// emitted collects the watermarks the generator emits while a batch is
	// processed; they are passed on after the records before them.
	emitted []int64
	err     error
}

func (o *assignOp[T]) push(b []T, ts []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	if cap(o.ts) < len(b) {
		o.ts = make([]int64, len(b))
	}
	out := o.ts[:len(b)]
	start := 0
	for i, v := range b {
		t := tsAt(ts, i)
		if o.assign != nil {
			prev := t
			if prev == noTimestamp {
				prev = MinWatermark
			}
			t = o.assign(v, prev)
		}
		if t == noTimestamp {
			return o.oc.fail(fmt.Errorf("%w (record %v)", ErrNoTimestamp, v))
		}
		out[i] = t
		o.gen.OnEvent(t, o)
		if len(o.emitted) > 0 || o.err != nil {
			if err := o.pushRange(b, out, start, i+1); err != nil {
				return err
			}
			start = i + 1
			if err := o.passEmitted(); err != nil {
				return err
			}
		}
	}
	if o.idle {
		o.idle = false
		if err := o.oc.task.emitStatusLocked(false); err != nil {
			return err
		}
	}
	return o.pushRange(b, out, start, len(b))
}

func (o *assignOp[T]) pushRange(b []T, ts []int64, from, to int) error {
	if from == to {
		return nil
	}
	o.oc.metrics.RecordsOut.Add(int64(to - from))
	return o.out.push(b[from:to], ts[from:to])
}

// periodic runs the generator's periodic emission, by the chain's owner.
func (o *assignOp[T]) periodic(now int64) error {
	if o.wm == MaxWatermark {
		return nil // the input ended
	}
	o.gen.OnPeriodicEmit(o)
	if err := o.passEmitted(); err != nil {
		return err
	}
	o.oc.task.timers.register(now+o.interval, o.periodic)
	return nil
}

func (o *assignOp[T]) passEmitted() error {
	if o.err != nil {
		return o.oc.fail(o.err)
	}
	for _, wm := range o.emitted {
		if wm <= o.wm {
			continue
		}
		o.wm = wm
		if o.idle {
			o.idle = false
			if err := o.oc.task.emitStatusLocked(false); err != nil {
				return err
			}
		}
		if err := o.out.watermark(wm); err != nil {
			return err
		}
	}
	o.emitted = o.emitted[:0]
	return nil
}

// EmitWatermark implements window.Output.
func (o *assignOp[T]) EmitWatermark(wm int64) {
	if o.wm == MaxWatermark {
		return
	}
	last := o.wm
	if n := len(o.emitted); n > 0 {
		last = o.emitted[n-1]
	}
	if wm < last && o.err == nil {
		o.err = fmt.Errorf("%w: the watermark generator emitted %d after %d", window.ErrWatermarkRegressed, wm, last)
		return
	}
	o.emitted = append(o.emitted, wm)
}

// MarkIdle implements window.Output.
func (o *assignOp[T]) MarkIdle() {
	if !o.idle && o.err == nil {
		o.idle = true
		o.err = o.oc.task.emitStatusLocked(true)
	}
}

// MarkActive implements window.Output.
func (o *assignOp[T]) MarkActive() {
	if o.idle && o.err == nil {
		o.idle = false
		o.err = o.oc.task.emitStatusLocked(false)
	}
}

// watermark passes on only the final watermark of an ended input.
func (o *assignOp[T]) watermark(wm int64) error {
	if wm != MaxWatermark || o.wm == MaxWatermark {
		return nil
	}
	o.wm = wm
	return o.out.watermark(wm)
}

func (o *assignOp[T]) endInput() error { return o.out.endInput() }
