// Package window holds the runtime-independent logic of Flink's windowing and event time:
// time windows and the assigners that create them, the bookkeeping of merging (session)
// windows, triggers, allowed lateness, and watermark generation and combination. Everything
// here is a deterministic function or state machine without goroutines, clocks or I/O, so the
// window operator that the runtime builds on top of it can be tested by feeding it events.
//
// # Windows and assigners
//
// A TimeWindow is the half-open interval [Start, End) of milliseconds since the Unix epoch; its
// MaxTimestamp, End-1, is when an event-time window fires. Assigners map an element to its
// windows: Tumbling (one window per element), Sliding (size/slide windows per element) and
// Session (a window [ts, ts+gap) that merges with the windows it touches), each in EventTime or
// ProcessingTime. Windows are aligned to the epoch plus an optional offset, with floor
// semantics for negative timestamps. Constructors validate their arguments and return errors
// wrapping ErrInvalidAssigner, with Flink's rules (positive sizes, |offset| < size for tumbling
// and |offset| < slide for sliding windows).
//
// # The window operator, as the runtime will run it
//
// For each element (key k, timestamp ts), following Flink's WindowOperator:
//
//  1. windows = assigner.AssignWindows(buf[:0], ts) (ts is the current processing time for
//     processing-time assigners).
//  2. For a merging assigner, load k's MergingWindowSet and AddWindow each window; the
//     MergeFunc merges the contents of the merged state windows into the result's state
//     window, calls trigger.OnMerge for the result and Clear for each merged window, and
//     deletes the merged windows' cleanup timers. The element then goes to the state window
//     of the window it ended up in.
//  3. Skip windows for which IsWindowLate(window, watermark, lateness, eventTime) holds (late
//     data, for the side output if any); add the element to the others' contents.
//  4. Call trigger.OnElement; on IsFire emit the window function's result over the contents,
//     on IsPurge clear the contents. Register a cleanup timer at CleanupTime(window, ...).
//
// When a timer fires (event time when the watermark reaches it), call trigger.OnEventTime or
// OnProcessingTime for its window and act on the result the same way; at the window's cleanup
// time clear its contents, trigger state (trigger.Clear) and, for merging assigners, retire it
// from the MergingWindowSet. The TriggerContext the operator passes gives triggers timers and a
// few int64 values of per-window state.
//
// # Watermarks
//
// A watermark t promises that no more elements with timestamps at or below t will come. A
// Strategy (BoundedOutOfOrderness, Monotonous, Custom, optionally WithIdleness) creates one
// Generator per source input; the runtime calls its OnEvent for each element and
// OnPeriodicEmit every DefaultWatermarkInterval, and feeds what it emits through an Output into
// a Combiner: in SplitMode over the splits of a source subtask, in ChannelMode over the input
// channels of every downstream operator. The Combiner keeps the minimum over the active inputs
// and reports a watermark that goes backwards as ErrWatermarkRegressed.
package window
