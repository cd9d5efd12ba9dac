package window

import (
	"errors"
	"fmt"
)

// ErrInvalidTrigger is wrapped by the errors the trigger constructors return.
var ErrInvalidTrigger = errors.New("window: invalid trigger")

// ErrTriggerCannotMerge is returned by OnMerge of a trigger that does not support merging
// windows.
var ErrTriggerCannotMerge = errors.New("window: trigger does not support merging windows")

// TriggerResult says what to do with a window after a trigger call: Flink's TriggerResult.
type TriggerResult uint8

const (
	// Continue does nothing.
	Continue TriggerResult = iota
	// Fire evaluates the window function over the window's contents and emits the result; the
	// contents are kept.
	Fire
	// Purge clears the window's contents without emitting (the window and its trigger state
	// stay until cleanup).
	Purge
	// FirePurge fires, then purges.
	FirePurge
)

// IsFire reports whether r is Fire or FirePurge.
func (r TriggerResult) IsFire() bool { return r == Fire || r == FirePurge }

// IsPurge reports whether r is Purge or FirePurge.
func (r TriggerResult) IsPurge() bool { return r == Purge || r == FirePurge }

// String returns "CONTINUE", "FIRE", "PURGE" or "FIRE_AND_PURGE", Flink's names.
func (r TriggerResult) String() string {
	switch r {
	case Continue:
		return "CONTINUE"
	case Fire:
		return "FIRE"
	case Purge:
		return "PURGE"
	case FirePurge:
		return "FIRE_AND_PURGE"
	}
	return fmt.Sprintf("TriggerResult(%d)", uint8(r))
}

// TriggerContext is what a trigger may use while handling one window of one key: timers, the
// current times, and small int64 values of per-window trigger state. The window operator
// implements it; a call is only valid during the trigger method it was passed to. Methods do
// not block.
type TriggerContext interface {
	// CurrentWatermark returns the operator's current event-time watermark.
	CurrentWatermark() int64
	// CurrentProcessingTime returns the current processing time in milliseconds.
	CurrentProcessingTime() int64
	// RegisterEventTimeTimer asks for OnEventTime(t) for this key and window once the
	// watermark reaches t. Registering the same timer twice registers it once.
	RegisterEventTimeTimer(t int64)
	// DeleteEventTimeTimer removes a timer registered with RegisterEventTimeTimer, if any.
	DeleteEventTimeTimer(t int64)
	// RegisterProcessingTimeTimer asks for OnProcessingTime(t) once processing time reaches t.
	RegisterProcessingTimeTimer(t int64)
	// DeleteProcessingTimeTimer removes a processing-time timer, if any.
	DeleteProcessingTimeTimer(t int64)
	// TriggerState returns this window's trigger state named name, and whether it is set.
	TriggerState(name string) (int64, bool)
	// SetTriggerState sets this window's trigger state named name.
	SetTriggerState(name string, v int64)
	// ClearTriggerState removes this window's trigger state named name.
	ClearTriggerState(name string)
}

// OnMergeContext is the TriggerContext passed to Trigger.OnMerge, for the merged window.
type OnMergeContext interface {
	TriggerContext
	// MergeTriggerState combines the trigger state named name of the windows being merged
	// into the merged window's state, folding the values that are set with reduce (Flink's
	// mergePartitionedState over a reducing state).
	MergeTriggerState(name string, reduce func(a, b int64) int64)
}

// Trigger decides when a window fires and purges: Flink's Trigger. Each method is called for
// one key and one window, never concurrently for the same window; implementations keep their
// per-window data in the context's trigger state and timers, not in fields, so one Trigger
// value serves every key and window. An error fails the task.
type Trigger interface {
	// OnElement is called for every element added to window w; ts is the element's timestamp.
	OnElement(ts int64, w TimeWindow, ctx TriggerContext) (TriggerResult, error)
	// OnEventTime is called when an event-time timer registered for w fires at time t.
	OnEventTime(t int64, w TimeWindow, ctx TriggerContext) (TriggerResult, error)
	// OnProcessingTime is called when a processing-time timer registered for w fires at t.
	OnProcessingTime(t int64, w TimeWindow, ctx TriggerContext) (TriggerResult, error)
	// CanMerge reports whether the trigger supports merging windows (OnMerge).
	CanMerge() bool
	// OnMerge is called when windows merged into w; it must merge its state (MergeTriggerState)
	// and re-register the timers w needs. The merged windows' Clear is called separately.
	OnMerge(w TimeWindow, ctx OnMergeContext) error
	// Clear removes the trigger's state and timers for w when the window is cleaned up.
	Clear(w TimeWindow, ctx TriggerContext) error
}

// EventTimeTrigger fires once the watermark passes the end of the window (reaches its
// MaxTimestamp), and again for every late element within the allowed lateness: Flink's
// EventTimeTrigger, the default for event-time assigners.
type EventTimeTrigger struct{}

// OnElement implements Trigger: fire at once if the watermark already passed the window (a
// late element within the allowed lateness), else register a timer at its MaxTimestamp.
func (EventTimeTrigger) OnElement(_ int64, w TimeWindow, ctx TriggerContext) (TriggerResult, error) {
	if w.MaxTimestamp() <= ctx.CurrentWatermark() {
		return Fire, nil
	}
	ctx.RegisterEventTimeTimer(w.MaxTimestamp())
	return Continue, nil
}

// OnEventTime implements Trigger: fire for the window's own timer.
func (EventTimeTrigger) OnEventTime(t int64, w TimeWindow, _ TriggerContext) (TriggerResult, error) {
	if t == w.MaxTimestamp() {
		return Fire, nil
	}
	return Continue, nil
}

// OnProcessingTime implements Trigger: Continue.
func (EventTimeTrigger) OnProcessingTime(int64, TimeWindow, TriggerContext) (TriggerResult, error) {
	return Continue, nil
}

// CanMerge implements Trigger: true.
func (EventTimeTrigger) CanMerge() bool { return true }

// OnMerge implements Trigger: register the merged window's timer unless the watermark already
// passed it (Flink's rule: the merged window then fires with the next element or not at all).
func (EventTimeTrigger) OnMerge(w TimeWindow, ctx OnMergeContext) error {
	if w.MaxTimestamp() > ctx.CurrentWatermark() {
		ctx.RegisterEventTimeTimer(w.MaxTimestamp())
	}
	return nil
}

// Clear implements Trigger: delete the window's timer.
func (EventTimeTrigger) Clear(w TimeWindow, ctx TriggerContext) error {
	ctx.DeleteEventTimeTimer(w.MaxTimestamp())
	return nil
}

// String returns "EventTimeTrigger()".
func (EventTimeTrigger) String() string { return "EventTimeTrigger()" }

// ProcessingTimeTrigger fires when processing time passes the end of the window: Flink's
// ProcessingTimeTrigger, the default for processing-time assigners.
type ProcessingTimeTrigger struct{}

// OnElement implements Trigger: register a processing-time timer at the window's MaxTimestamp.
func (ProcessingTimeTrigger) OnElement(_ int64, w TimeWindow, ctx TriggerContext) (TriggerResult, error) {
	ctx.RegisterProcessingTimeTimer(w.MaxTimestamp())
	return Continue, nil
}

// OnEventTime implements Trigger: Continue.
func (ProcessingTimeTrigger) OnEventTime(int64, TimeWindow, TriggerContext) (TriggerResult, error) {
	return Continue, nil
}

// OnProcessingTime implements Trigger: Fire.
func (ProcessingTimeTrigger) OnProcessingTime(int64, TimeWindow, TriggerContext) (TriggerResult, error) {
	return Fire, nil
}

// CanMerge implements Trigger: true.
func (ProcessingTimeTrigger) CanMerge() bool { return true }

// OnMerge implements Trigger: register the merged window's timer unless processing time
// already passed it.
func (ProcessingTimeTrigger) OnMerge(w TimeWindow, ctx OnMergeContext) error {
	if w.MaxTimestamp() > ctx.CurrentProcessingTime() {
		ctx.RegisterProcessingTimeTimer(w.MaxTimestamp())
	}
	return nil
}

// Clear implements Trigger: delete the window's timer.
func (ProcessingTimeTrigger) Clear(w TimeWindow, ctx TriggerContext) error {
	ctx.DeleteProcessingTimeTimer(w.MaxTimestamp())
	return nil
}

// String returns "ProcessingTimeTrigger()".
func (ProcessingTimeTrigger) String() string { return "ProcessingTimeTrigger()" }

// CountTriggerState is the name of the trigger state in which CountTrigger keeps its count.
const CountTriggerState = "count"

// CountTrigger fires every time a window has received n more elements: Flink's CountTrigger.
// It does not purge; wrap it with Purging to start each count from an empty window.
type CountTrigger struct {
	n int64
}

// Count returns a trigger firing every n elements; n must be positive.
func Count(n int64) (*CountTrigger, error) {
	if n <= 0 {
		return nil, fmt.Errorf("%w: count must be positive, got %d", ErrInvalidTrigger, n)
	}
	return &CountTrigger{n: n}, nil
}

// OnElement implements Trigger: count, and fire and reset the count on reaching n.
func (c *CountTrigger) OnElement(_ int64, _ TimeWindow, ctx TriggerContext) (TriggerResult, error) {
	count, _ := ctx.TriggerState(CountTriggerState)
	count++
	if count >= c.n {
		ctx.ClearTriggerState(CountTriggerState)
		return Fire, nil
	}
	ctx.SetTriggerState(CountTriggerState, count)
	return Continue, nil
}

// OnEventTime implements Trigger: Continue.
func (c *CountTrigger) OnEventTime(int64, TimeWindow, TriggerContext) (TriggerResult, error) {
	return Continue, nil
}

// OnProcessingTime implements Trigger: Continue.
func (c *CountTrigger) OnProcessingTime(int64, TimeWindow, TriggerContext) (TriggerResult, error) {
	return Continue, nil
}

// CanMerge implements Trigger: true.
func (c *CountTrigger) CanMerge() bool { return true }

// OnMerge implements Trigger: the merged window's count is the sum of the merged counts. As in
// Flink, a merged count at or above n fires with the next element.
func (c *CountTrigger) OnMerge(_ TimeWindow, ctx OnMergeContext) error {
	ctx.MergeTriggerState(CountTriggerState, func(a, b int64) int64 { return a + b })
	return nil
}

// Clear implements Trigger: drop the count.
func (c *CountTrigger) Clear(_ TimeWindow, ctx TriggerContext) error {
	ctx.ClearTriggerState(CountTriggerState)
	return nil
}

// String returns "CountTrigger(n)".
func (c *CountTrigger) String() string { return fmt.Sprintf("CountTrigger(%d)", c.n) }

// PurgingTrigger turns every Fire of the trigger it wraps into FirePurge: Flink's
// PurgingTrigger.
type PurgingTrigger struct {
	nested Trigger
}

// Purging wraps t; t must not be nil.
func Purging(t Trigger) (*PurgingTrigger, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: Purging needs a trigger to wrap", ErrInvalidTrigger)
	}
	return &PurgingTrigger{nested: t}, nil
}

func purge(r TriggerResult, err error) (TriggerResult, error) {
	if err == nil && r.IsFire() {
		return FirePurge, nil
	}
	return r, err
}

// OnElement implements Trigger.
func (p *PurgingTrigger) OnElement(ts int64, w TimeWindow, ctx TriggerContext) (TriggerResult, error) {
	return purge(p.nested.OnElement(ts, w, ctx))
}

// OnEventTime implements Trigger.
func (p *PurgingTrigger) OnEventTime(t int64, w TimeWindow, ctx TriggerContext) (TriggerResult, error) {
	return purge(p.nested.OnEventTime(t, w, ctx))
}

// OnProcessingTime implements Trigger.
func (p *PurgingTrigger) OnProcessingTime(t int64, w TimeWindow, ctx TriggerContext) (TriggerResult, error) {
	return purge(p.nested.OnProcessingTime(t, w, ctx))
}

// CanMerge implements Trigger: as the wrapped trigger.
func (p *PurgingTrigger) CanMerge() bool { return p.nested.CanMerge() }

// OnMerge implements Trigger: delegates to the wrapped trigger.
func (p *PurgingTrigger) OnMerge(w TimeWindow, ctx OnMergeContext) error {
	if !p.nested.CanMerge() {
		return fmt.Errorf("%w: %v", ErrTriggerCannotMerge, p)
	}
	return p.nested.OnMerge(w, ctx)
}

// Clear implements Trigger: delegates to the wrapped trigger.
func (p *PurgingTrigger) Clear(w TimeWindow, ctx TriggerContext) error { return p.nested.Clear(w, ctx) }

// String returns "PurgingTrigger(nested)".
func (p *PurgingTrigger) String() string { return fmt.Sprintf("PurgingTrigger(%v)", p.nested) }
