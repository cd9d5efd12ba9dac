// Package queries builds the Nexmark benchmark's queries q0, q1, q2, q3, q4, q5, q7, q8 and q11
// as flink jobs over the event stream of package gen, read by a parallel, replayable source.
//
// Each QN function adds query N to an Env, reading a stream of events made by Source, and
// returns its result stream. The results are those of the plain reference implementations in
// package ref (the same result types), which the tests check on generated streams:
//
//	env := flink.NewEnv(flink.WithParallelism(2))
//	events := queries.Source(env, gen.DefaultConfig(), 1_000_000)
//	hot := flink.Collect(queries.Q5(events))
//	res, err := env.Execute(ctx)
//
// # Event time
//
// The source stamps every event with its DateTime and emits the generator's exact watermark
// (gen.Generator.Watermark), so no event is ever late and every windowed result is final when
// the watermark passes its window. A bounded source ends with the maximum watermark, which
// fires every window and timer left.
//
// # How the queries are built
//
// The stateless queries (q0, q1, q2) are one function chained to the source. The others key the
// stream and keep keyed state in the runtime's heap backend, so checkpoints cover them:
//
//   - q3 is an incremental join of auctions and people by seller (KeyedCoProcess), both sides
//     kept forever as in Flink's regular join.
//   - q4 joins bids to their auction by auction id (KeyedCoProcess); an auction's winning price
//     is final once the watermark passes its expiry, and a second stage keeps the running
//     average per category and emits it whenever it changes (an upsert stream keyed by
//     category, as Flink's retracting aggregation: the last record per category is the
//     result).
//   - q5 counts bids per auction in sliding windows with the runtime's window operator and
//     picks each window's maxima in a second, keyed-by-window stage.
//   - q7 pre-aggregates each tumbling window's highest bids per key of a spread key and merges
//     them per window; because the SQL's join bound is closed (a bid at exactly the window's
//     end also matches), a window is final only once the watermark reaches its end.
//   - q8 joins people and sellers per tumbling window by person id (KeyedCoProcess).
//   - q11 keeps each bidder's open sessions in keyed state and emits a session when the
//     watermark passes its end.
package queries
