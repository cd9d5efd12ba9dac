package window

import (
	"errors"
	"fmt"
)

// ErrWatermarkRegressed is returned when an input's watermark goes backwards, which a correct
// generator never does.
var ErrWatermarkRegressed = errors.New("window: watermark went backwards")

// ErrUnknownInput is returned for an input index the Combiner does not have.
var ErrUnknownInput = errors.New("window: unknown combiner input")

// Change is what one Combiner call changed at its output. Forward Watermark downstream if
// Advanced, and the idle status if StatusChanged.
type Change struct {
	// Watermark is the combined watermark after the call.
	Watermark int64
	// Advanced reports that Watermark is higher than before the call.
	Advanced bool
	// Idle is the combined idle status after the call: every input is idle (or there is none).
	Idle bool
	// StatusChanged reports that Idle flipped.
	StatusChanged bool
}

type combinerInput struct {
	wm      int64
	idle    bool
	aligned bool // takes part in the minimum: active and caught up with the output
	removed bool
}

// CombinerMode selects which of Flink's two watermark combiners a Combiner follows. They differ
// only in how idleness ends and what happens when every input is idle.
type CombinerMode uint8

const (
	// ChannelMode follows Flink's StatusWatermarkValve, which combines the input channels of
	// an operator: an input that becomes active again rejoins the minimum only once its
	// watermark catches up with the output ("aligned"), so a lagging input does not stall the
	// others; and when the last active input goes idle, the output is flushed to the highest
	// watermark of all inputs, since nothing can hold it back any more.
	ChannelMode CombinerMode = iota
	// SplitMode follows Flink's WatermarkOutputMultiplexer, which combines the splits of a
	// source subtask: an input that becomes active again (or is added) holds the output back
	// until it catches up, so its events are not late; when every input is idle the output
	// goes idle without flushing.
	SplitMode
)

// Combiner combines the watermarks of several inputs into one: the minimum over the active
// inputs, never decreasing. Idle inputs do not hold the output back; when every input is idle
// (or there is none) the output is idle. The mode says how an input rejoins after idleness.
// A watermark from an idle input marks it active first, as a source split's output does.
//
// An input's watermark going backwards is an error (ErrWatermarkRegressed) rather than being
// ignored as in Flink: only a faulty custom generator produces it, and hiding it would hide
// late data.
//
// A Combiner is a deterministic state machine with no goroutines and is not safe for concurrent
// use. Inputs are numbered from 0 in the order they are added; removed numbers are not reused.
type Combiner struct {
	mode   CombinerMode
	inputs []combinerInput
	wm     int64
	idle   bool
}

// NewCombiner returns a combiner in the given mode with n active inputs (numbered 0 to n-1) at
// MinWatermark. With no inputs it is idle.
func NewCombiner(mode CombinerMode, n int) *Combiner {
	c := &Combiner{mode: mode, wm: MinWatermark, idle: n == 0}
	for range n {
		c.inputs = append(c.inputs, combinerInput{wm: MinWatermark, aligned: true})
	}
	return c
}

// Watermark returns the current combined watermark.
func (c *Combiner) Watermark() int64 { return c.wm }

// Idle reports whether the output is idle.
func (c *Combiner) Idle() bool { return c.idle }

// InputWatermark returns input i's latest watermark.
func (c *Combiner) InputWatermark(i int) (int64, error) {
	in, err := c.input(i)
	if err != nil {
		return 0, err
	}
	return in.wm, nil
}

func (c *Combiner) input(i int) (*combinerInput, error) {
	if i < 0 || i >= len(c.inputs) || c.inputs[i].removed {
		return nil, fmt.Errorf("%w: %d", ErrUnknownInput, i)
	}
	return &c.inputs[i], nil
}

func (c *Combiner) change(wm int64, idle bool) Change {
	return Change{Watermark: c.wm, Advanced: c.wm > wm, Idle: c.idle, StatusChanged: c.idle != idle}
}

// AddInput adds an active input (a new split) at MinWatermark and returns its number. In both
// modes it holds the output back until its watermark passes the output's. If the output was
// idle it becomes active.
func (c *Combiner) AddInput() (int, Change) {
	wm, idle := c.wm, c.idle
	c.inputs = append(c.inputs, combinerInput{wm: MinWatermark, aligned: true})
	c.idle = false
	return len(c.inputs) - 1, c.change(wm, idle)
}

// RemoveInput removes input i (a finished split). The output may advance, since i no longer
// holds it back; if no active input remains, the output goes idle as when the last active
// input goes idle.
func (c *Combiner) RemoveInput(i int) (Change, error) {
	in, err := c.input(i)
	if err != nil {
		return Change{}, err
	}
	wm, idle := c.wm, c.idle
	last := in.wm
	*in = combinerInput{removed: true}
	c.afterDeactivation(last)
	return c.change(wm, idle), nil
}

// Update records watermark wm from input i and returns the change at the output. An idle input
// becomes active first. A watermark below the input's previous one fails with
// ErrWatermarkRegressed and changes nothing; an equal one changes nothing but the status.
func (c *Combiner) Update(i int, wm int64) (Change, error) {
	in, err := c.input(i)
	if err != nil {
		return Change{}, err
	}
	if wm < in.wm {
		return c.change(c.wm, c.idle), fmt.Errorf("%w: input %d emitted %d after %d", ErrWatermarkRegressed, i, wm, in.wm)
	}
	oldWm, oldIdle := c.wm, c.idle
	c.activate(in)
	if wm > in.wm {
		in.wm = wm
		if !in.aligned && wm >= c.wm {
			in.aligned = true
		}
		c.advanceToMinAligned()
	}
	return c.change(oldWm, oldIdle), nil
}

// MarkIdle marks input i idle and returns the change at the output.
func (c *Combiner) MarkIdle(i int) (Change, error) {
	in, err := c.input(i)
	if err != nil {
		return Change{}, err
	}
	wm, idle := c.wm, c.idle
	if !in.idle {
		in.idle, in.aligned = true, false
		c.afterDeactivation(in.wm)
	}
	return c.change(wm, idle), nil
}

// MarkActive marks input i active and returns the change at the output.
func (c *Combiner) MarkActive(i int) (Change, error) {
	in, err := c.input(i)
	if err != nil {
		return Change{}, err
	}
	wm, idle := c.wm, c.idle
	c.activate(in)
	return c.change(wm, idle), nil
}

func (c *Combiner) activate(in *combinerInput) {
	if !in.idle {
		return
	}
	in.idle = false
	// ChannelMode: it rejoins the minimum once it catches up (its watermark from before it
	// went idle may already have). SplitMode: it holds the output back at once.
	in.aligned = c.mode == SplitMode || in.wm >= c.wm
	c.idle = false
}

// afterDeactivation updates the output after an input whose watermark was last went idle or
// was removed.
func (c *Combiner) afterDeactivation(last int64) {
	active := false
	for _, in := range c.inputs {
		if !in.removed && !in.idle {
			active = true
			break
		}
	}
	if active {
		c.advanceToMinAligned()
		return
	}
	// ChannelMode: nothing can hold the output back any more, so flush it to the highest
	// watermark of all inputs. As in Flink's valve, only when the input that went was holding
	// the output (its watermark is the output's); otherwise the minimum already moved on.
	if c.mode == ChannelMode && last == c.wm {
		for _, in := range c.inputs {
			if !in.removed {
				c.wm = max(c.wm, in.wm)
			}
		}
	}
	c.idle = true
}

// advanceToMinAligned moves the output to the minimum over the aligned inputs, if higher.
func (c *Combiner) advanceToMinAligned() {
	first, lowest := true, int64(0)
	for _, in := range c.inputs {
		if in.aligned && !in.removed {
			if first || in.wm < lowest {
				lowest = in.wm
			}
			first = false
		}
	}
	if !first && lowest > c.wm {
		c.wm = lowest
	}
}
