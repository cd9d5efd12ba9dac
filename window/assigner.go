package window

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidAssigner is wrapped by the errors the assigner constructors return for bad sizes,
// slides, gaps or offsets.
var ErrInvalidAssigner = errors.New("window: invalid window assigner")

// Domain is the notion of time an assigner (and its default trigger) works in.
type Domain uint8

const (
	// EventTime windows by the elements' timestamps; windows fire as the watermark passes them.
	EventTime Domain = iota
	// ProcessingTime windows by the wall-clock time at which elements are processed.
	ProcessingTime
)

// String returns "event time" or "processing time".
func (d Domain) String() string {
	if d == ProcessingTime {
		return "processing time"
	}
	return "event time"
}

// Assigner assigns an element to the windows it belongs to: Flink's WindowAssigner over
// TimeWindows. Implementations are immutable and safe for concurrent use.
type Assigner interface {
	// AssignWindows appends to dst the windows an element belongs to and returns the extended
	// slice, so that a caller can reuse one buffer (pass buf[:0]). ts is the element's
	// timestamp for event-time assigners and the current processing time for processing-time
	// ones. It fails with ErrTimestampOutOfRange outside [MinTimestamp, MaxTimestamp].
	AssignWindows(dst []TimeWindow, ts int64) ([]TimeWindow, error)
	// IsEventTime reports whether the assigner works in event time.
	IsEventTime() bool
	// IsMerging reports whether windows merge (the assigner is then a MergingAssigner).
	IsMerging() bool
	// DefaultTrigger returns the trigger used when the window definition names none:
	// EventTimeTrigger or ProcessingTimeTrigger.
	DefaultTrigger() Trigger
	// String describes the assigner, e.g. "Tumbling(10s, offset 0s, event time)".
	String() string
}

// MergingAssigner is an Assigner whose windows merge, like session windows.
type MergingAssigner interface {
	Assigner
	// MergeWindows calls merge for every group of windows that must become one; windows may be
	// reordered. merged is only valid during the call.
	MergeWindows(windows []TimeWindow, merge func(result TimeWindow, merged []TimeWindow))
}

func millis(what string, d time.Duration) (int64, error) {
	if d%time.Millisecond != 0 {
		return 0, fmt.Errorf("%w: %s %v is not a whole number of milliseconds", ErrInvalidAssigner, what, d)
	}
	return int64(d / time.Millisecond), nil
}

func defaultTrigger(d Domain) Trigger {
	if d == ProcessingTime {
		return ProcessingTimeTrigger{}
	}
	return EventTimeTrigger{}
}

// TumblingWindows assigns each element to the one window of fixed size holding it: Flink's
// TumblingEventTimeWindows and TumblingProcessingTimeWindows.
type TumblingWindows struct {
	domain       Domain
	size, offset int64
}

// Tumbling returns tumbling windows of the given size. Windows are aligned to the epoch shifted
// by offset: with size 1h and offset 15m, windows start at 0:15, 1:15, .... size must be a
// positive whole number of milliseconds and |offset| < size, as Flink requires.
func Tumbling(domain Domain, size, offset time.Duration) (*TumblingWindows, error) {
	s, err := millis("size", size)
	if err != nil {
		return nil, err
	}
	o, err := millis("offset", offset)
	if err != nil {
		return nil, err
	}
	if s <= 0 {
		return nil, fmt.Errorf("%w: tumbling window size must be positive, got %v", ErrInvalidAssigner, size)
	}
	if o <= -s || o >= s {
		return nil, fmt.Errorf("%w: tumbling windows must satisfy |offset| < size, got offset %v and size %v",
			ErrInvalidAssigner, offset, size)
	}
	return &TumblingWindows{domain: domain, size: s, offset: o}, nil
}

// AssignWindows implements Assigner: one window.
func (t *TumblingWindows) AssignWindows(dst []TimeWindow, ts int64) ([]TimeWindow, error) {
	if err := checkTimestamp(ts); err != nil {
		return dst, err
	}
	start := WindowStart(ts, t.offset, t.size)
	return append(dst, TimeWindow{Start: start, End: start + t.size}), nil
}

// IsEventTime implements Assigner.
func (t *TumblingWindows) IsEventTime() bool { return t.domain == EventTime }

// IsMerging implements Assigner: false.
func (t *TumblingWindows) IsMerging() bool { return false }

// DefaultTrigger implements Assigner.
func (t *TumblingWindows) DefaultTrigger() Trigger { return defaultTrigger(t.domain) }

// Size returns the window size in milliseconds.
func (t *TumblingWindows) Size() int64 { return t.size }

// String implements Assigner.
func (t *TumblingWindows) String() string {
	return fmt.Sprintf("Tumbling(%v, offset %v, %v)", ms(t.size), ms(t.offset), t.domain)
}

// SlidingWindows assigns each element to the overlapping windows of fixed size, one starting
// every slide, that hold it: Flink's SlidingEventTimeWindows and SlidingProcessingTimeWindows.
// When slide divides size, every element is in size/slide windows.
type SlidingWindows struct {
	domain              Domain
	size, slide, offset int64
}

// MaxWindowsPerElement bounds size/slide for sliding windows, so that one element cannot
// exhaust memory.
const MaxWindowsPerElement = 1 << 16

// Sliding returns sliding windows of the given size starting every slide, aligned to the epoch
// shifted by offset. size and slide must be positive whole numbers of milliseconds and
// |offset| < slide, as Flink requires. A slide larger than size is allowed (hopping windows
// that sample): elements between windows are then in none.
func Sliding(domain Domain, size, slide, offset time.Duration) (*SlidingWindows, error) {
	s, err := millis("size", size)
	if err != nil {
		return nil, err
	}
	sl, err := millis("slide", slide)
	if err != nil {
		return nil, err
	}
	o, err := millis("offset", offset)
	if err != nil {
		return nil, err
	}
	if s <= 0 || sl <= 0 {
		return nil, fmt.Errorf("%w: sliding window size and slide must be positive, got size %v and slide %v",
			ErrInvalidAssigner, size, slide)
	}
	if o <= -sl || o >= sl {
		return nil, fmt.Errorf("%w: sliding windows must satisfy |offset| < slide, got offset %v and slide %v",
			ErrInvalidAssigner, offset, slide)
	}
	if n := (s + sl - 1) / sl; n > MaxWindowsPerElement {
		return nil, fmt.Errorf("%w: sliding windows of size %v and slide %v put each element in %d windows, more than %d",
			ErrInvalidAssigner, size, slide, n, MaxWindowsPerElement)
	}
	return &SlidingWindows{domain: domain, size: s, slide: sl, offset: o}, nil
}

// AssignWindows implements Assigner: the windows holding ts, latest start first (Flink's
// order).
func (s *SlidingWindows) AssignWindows(dst []TimeWindow, ts int64) ([]TimeWindow, error) {
	if err := checkTimestamp(ts); err != nil {
		return dst, err
	}
	for start := WindowStart(ts, s.offset, s.slide); start > ts-s.size; start -= s.slide {
		dst = append(dst, TimeWindow{Start: start, End: start + s.size})
	}
	return dst, nil
}

// IsEventTime implements Assigner.
func (s *SlidingWindows) IsEventTime() bool { return s.domain == EventTime }

// IsMerging implements Assigner: false.
func (s *SlidingWindows) IsMerging() bool { return false }

// DefaultTrigger implements Assigner.
func (s *SlidingWindows) DefaultTrigger() Trigger { return defaultTrigger(s.domain) }

// Size returns the window size in milliseconds.
func (s *SlidingWindows) Size() int64 { return s.size }

// Slide returns the slide in milliseconds.
func (s *SlidingWindows) Slide() int64 { return s.slide }

// String implements Assigner.
func (s *SlidingWindows) String() string {
	return fmt.Sprintf("Sliding(%v, slide %v, offset %v, %v)", ms(s.size), ms(s.slide), ms(s.offset), s.domain)
}

// SessionWindows puts each element in the window [ts, ts+gap) and merges windows that
// intersect, so a session ends after gap without elements: Flink's EventTimeSessionWindows and
// ProcessingTimeSessionWindows. Per key, a MergingWindowSet tracks the sessions in flight.
type SessionWindows struct {
	domain Domain
	gap    int64
}

// Session returns session windows with the given gap, a positive whole number of milliseconds.
func Session(domain Domain, gap time.Duration) (*SessionWindows, error) {
	g, err := millis("gap", gap)
	if err != nil {
		return nil, err
	}
	if g <= 0 {
		return nil, fmt.Errorf("%w: session gap must be positive, got %v", ErrInvalidAssigner, gap)
	}
	return &SessionWindows{domain: domain, gap: g}, nil
}

// AssignWindows implements Assigner: the window [ts, ts+gap).
func (s *SessionWindows) AssignWindows(dst []TimeWindow, ts int64) ([]TimeWindow, error) {
	if err := checkTimestamp(ts); err != nil {
		return dst, err
	}
	return append(dst, TimeWindow{Start: ts, End: ts + s.gap}), nil
}

// MergeWindows implements MergingAssigner with MergeWindows (the package function).
func (s *SessionWindows) MergeWindows(windows []TimeWindow, merge func(result TimeWindow, merged []TimeWindow)) {
	MergeWindows(windows, merge)
}

// IsEventTime implements Assigner.
func (s *SessionWindows) IsEventTime() bool { return s.domain == EventTime }

// IsMerging implements Assigner: true.
func (s *SessionWindows) IsMerging() bool { return true }

// DefaultTrigger implements Assigner.
func (s *SessionWindows) DefaultTrigger() Trigger { return defaultTrigger(s.domain) }

// Gap returns the session gap in milliseconds.
func (s *SessionWindows) Gap() int64 { return s.gap }

// String implements Assigner.
func (s *SessionWindows) String() string {
	return fmt.Sprintf("Session(gap %v, %v)", ms(s.gap), s.domain)
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
