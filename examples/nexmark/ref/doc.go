// Package ref holds plain, single-threaded reference implementations of the Nexmark queries
// q0, q1, q2, q3, q4, q5, q7, q8 and q11 over a slice of events from package gen. The streaming
// jobs that implement the same queries on the flink runtime are checked against them: run the
// job on a bounded stream, collect its output, sort both with the Compare functions and compare.
//
// Each function follows the Flink Nexmark benchmark's SQL (queries/qN.sql under
// nexmark-flink/src/main/resources in github.com/nexmark/nexmark); its doc comment restates the
// SQL's exact semantics, including edge cases. The implementations favour being obviously correct over being
// fast: they materialize everything in maps and sort.
//
// # Time and windows
//
// Timestamps are event time in milliseconds since the Unix epoch (the events' DateTime).
// Windows are half-open, [start, end), and aligned to the epoch: a tumbling window of size s
// holding t starts at floor(t/s)*s, also for negative t. A streaming job emits a window's result
// when the watermark passes end-1; the reference computes each window's final result over the
// whole input, which equals the streaming result when no event is late (true of gen's output
// under a bounded-out-of-orderness watermark of the generator's MaxOutOfOrderness). Windows
// that receive no events produce nothing.
//
// # Output order
//
// Results are returned sorted by their Compare function (q0 and q1 keep input order); a
// streaming job's output, whose order depends on parallelism, should be sorted the same way
// before comparing. The result types are plain structs with exported fields and encode with
// msgpack.
package ref
