package flink

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/flinkgo/flink/network"
	"github.com/flinkgo/flink/window"
)

// Event time in the runtime. Records carry their timestamps beside them
// (consumer.push's ts), watermarks travel down operator chains as calls
// (consumer.watermark) and between subtasks as in-band events behind the
// records before them, through both exchanges. A task with input channels
// combines the channels' watermarks and idle statuses in a valve, Flink's
// StatusWatermarkValve: its output watermark is the minimum over the active
// channels, and it is idle when every channel is.

// MinWatermark is the watermark before any record: Flink's
// Long.MIN_VALUE.
const MinWatermark = window.MinWatermark

// MaxWatermark is the watermark a source emits when its input ends: every
// event-time timer and window fires.
const MaxWatermark = window.EndOfTime

// ErrNoTimestamp is returned by event-time operators for a record without a
// timestamp: assign timestamps with AssignTimestampsAndWatermarks or
// SourceContext.CollectWithTimestamp first.
var ErrNoTimestamp = errors.New("flink: record has no event-time timestamp; assign timestamps (AssignTimestampsAndWatermarks) before event-time operators")

// timeEvent is an in-band event of event time.
type timeEvent uint8

const (
	evNone      timeEvent = iota
	evWatermark           // a watermark
	evIdle                // the channel is idle: it holds no watermark back
	evActive              // the channel is active again
)

// outputProgress keeps a writer's watermarks increasing and its statuses
// changing: it reports whether a watermark or status is news to consumers.
type outputProgress struct {
	wm      int64
	started bool
	idle    bool
}

func (p *outputProgress) advance(wm int64) bool {
	if p.started && wm <= p.wm {
		return false
	}
	p.wm, p.started = wm, true
	p.idle = false // a watermark marks the channel active at the receiver
	return true
}

func (p *outputProgress) status(idle bool) (timeEvent, bool) {
	if p.idle == idle {
		return evNone, false
	}
	p.idle = idle
	if idle {
		return evIdle, true
	}
	return evActive, true
}

// encodeWatermark returns the payload of a network watermark event.
func encodeWatermark(wm int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(wm)) }

func decodeWatermark(p []byte) (int64, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("flink: malformed watermark event: %d bytes, want 8", len(p))
	}
	return int64(binary.BigEndian.Uint64(p)), nil
}

func decodeWatermarkStatus(p []byte) (timeEvent, error) {
	if len(p) != 1 || (timeEvent(p[0]) != evIdle && timeEvent(p[0]) != evActive) {
		return evNone, fmt.Errorf("flink: malformed watermark status event %x", p)
	}
	return timeEvent(p[0]), nil
}

// stamped is a record with its timestamp, as the network exchange carries
// it.
type stamped[T any] struct {
	ts int64
	v  T
}

// stampedCodec serializes a record's timestamp before it: a flag byte (0:
// none, 1: present) and 8 bytes of timestamp.
type stampedCodec[T any] struct{ inner network.Codec[T] }

func (c stampedCodec[T]) Encode(dst []byte, v *stamped[T]) ([]byte, error) {
	if v.ts == noTimestamp {
		dst = append(dst, 0)
	} else {
		dst = binary.BigEndian.AppendUint64(append(dst, 1), uint64(v.ts))
	}
	return c.inner.Encode(dst, &v.v)
}

func (c stampedCodec[T]) Decode(src []byte, v *stamped[T]) error {
	if len(src) == 0 {
		return fmt.Errorf("%w: empty record", network.ErrCorruptRecord)
	}
	switch src[0] {
	case 0:
		v.ts = noTimestamp
		return c.inner.Decode(src[1:], &v.v)
	case 1:
		if len(src) < 9 {
			return fmt.Errorf("%w: record of %d bytes cut inside its timestamp", network.ErrCorruptRecord, len(src))
		}
		v.ts = int64(binary.BigEndian.Uint64(src[1:9]))
		return c.inner.Decode(src[9:], &v.v)
	}
	return fmt.Errorf("%w: unknown timestamp flag %d", network.ErrCorruptRecord, src[0])
}

// valve combines the watermarks and statuses of a task's input channels
// and passes changes to the head of its chain.
type valve struct {
	t    *task
	c    *window.Combiner
	head func(wm int64) error
}

func (t *task) newValve(numChannels int, head func(wm int64) error) *valve {
	return &valve{t: t, c: window.NewCombiner(window.ChannelMode, numChannels), head: head}
}

// onEvent handles a watermark (evWatermark, with wm) or a status change
// from channel ch.
func (v *valve) onEvent(ch int, ev timeEvent, wm int64) error {
	var chg window.Change
	var err error
	switch ev {
	case evWatermark:
		chg, err = v.c.Update(ch, wm)
	case evIdle:
		chg, err = v.c.MarkIdle(ch)
	case evActive:
		chg, err = v.c.MarkActive(ch)
	}
	if err != nil {
		return fmt.Errorf("flink: input channel %d: %w", ch, err)
	}
	return v.apply(chg)
}

// onEnd removes ended channel ch.
func (v *valve) onEnd(ch int) error {
	chg, err := v.c.RemoveInput(ch)
	if err != nil {
		return fmt.Errorf("flink: input channel %d: %w", ch, err)
	}
	if chg.StatusChanged && chg.Idle {
		// Every channel ended: nothing to report downstream, which ends too.
		chg.StatusChanged = false
	}
	return v.apply(chg)
}

func (v *valve) apply(chg window.Change) error {
	if !chg.Advanced && !chg.StatusChanged {
		return nil
	}
	return v.t.emit(func() error {
		if chg.StatusChanged && !chg.Idle {
			if err := v.t.emitStatusLocked(false); err != nil {
				return err
			}
		}
		if chg.Advanced {
			v.t.inputWM.Store(chg.Watermark)
			if err := v.head(chg.Watermark); err != nil {
				return err
			}
		}
		if chg.StatusChanged && chg.Idle {
			return v.t.emitStatusLocked(true)
		}
		return nil
	})
}

// addStatusWriter registers a function that sends a watermark status
// change to one output's consumers; called during build.
func (t *task) addStatusWriter(f func(idle bool) error) {
	t.statusWriters = append(t.statusWriters, f)
}

// emitStatusLocked tells every consumer of the task whether it is idle;
// the chain token is held.
func (t *task) emitStatusLocked(idle bool) error {
	for _, w := range t.statusWriters {
		if err := w(idle); err != nil {
			return err
		}
	}
	return nil
}

// endInput stops the task's processing-time timers, then ends its chain's
// input with end by the chain's owner.
func (t *task) endInput(end func() error) error {
	t.timers.stop()
	return t.emit(end)
}
