package queries

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/state"
)

// Batching of the source: events emitted per checkpoint-lock hold, and how many events a
// subtask emits between watermarks. A watermark flushes the exchange buffers, so it is sent
// only every few thousand events.
const (
	lockBatch      = 256
	watermarkEvery = 16 * lockBatch
)

// Source adds a parallel source of events 0 to count-1 of the generator for cfg: subtask k of
// p emits events k, k+p, k+2p, .... Every event carries its DateTime as timestamp, and each
// subtask emits the generator's exact watermark for the events it has still to emit, so no
// event is late. The source is replayable: each subtask keeps its next event number in
// operator state, so a job restored from a checkpoint emits exactly the events after it.
// An invalid cfg fails the job when it starts.
func Source(env *flink.Env, cfg gen.Config, count int64) *flink.DataStream[gen.Event] {
	return flink.FromSource(env, "Nexmark", func() flink.Source[gen.Event] {
		return &source{cfg: cfg, count: count}
	}).UID("nexmark-source")
}

// source is one subtask of Source.
type source struct {
	cfg   gen.Config
	count int64

	g          *gen.Generator
	next, step int64 // the next event number and the distance to the one after
	pos        state.ListState[int64]
	cancelled  atomic.Bool
}

var _ flink.CheckpointedFunction = (*source)(nil)

// InitializeState implements flink.CheckpointedFunction: it restores the next event number.
func (s *source) InitializeState(ctx *flink.StateInitContext) error {
	g, err := gen.New(s.cfg)
	if err != nil {
		return err
	}
	s.g = g
	if s.pos, err = state.GetOperatorListState(ctx.OperatorState(), state.ListStateDescriptor[int64]{Name: "next-event"}); err != nil {
		return err
	}
	rc := ctx.RuntimeContext()
	s.next, s.step = int64(rc.SubtaskIndex()), int64(rc.Parallelism())
	if !ctx.IsRestored() {
		return nil
	}
	restored, err := s.pos.Get()
	if err != nil {
		return err
	}
	if len(restored) != 1 || restored[0]%s.step != s.next%s.step {
		// The positions are per subtask k of p (k, k+p, ...): they cannot be redistributed.
		return fmt.Errorf("nexmark: source subtask %d of %d restored positions %v, want one position of this subtask (restore at the parallelism of the checkpoint)",
			rc.SubtaskIndex(), rc.Parallelism(), restored)
	}
	s.next = restored[0]
	return nil
}

// SnapshotState implements flink.CheckpointedFunction.
func (s *source) SnapshotState(int64) error { return s.pos.Update([]int64{s.next}) }

// Run emits the subtask's events in batches under the checkpoint lock.
func (s *source) Run(ctx context.Context, out *flink.SourceContext[gen.Event]) error {
	done := ctx.Done()
	var ev gen.Event
	sinceWM := 0
	for s.next < s.count {
		if s.cancelled.Load() {
			return nil
		}
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		err := out.WithCheckpointLock(func(out flink.SourceCollector[gen.Event]) error {
			for range lockBatch {
				if s.next >= s.count {
					break
				}
				if err := s.g.Next(s.next, &ev); err != nil {
					return err
				}
				out.CollectWithTimestamp(ev, ev.Timestamp())
				s.next += s.step
			}
			if sinceWM += lockBatch; sinceWM >= watermarkEvery {
				sinceWM = 0
				out.EmitWatermark(s.g.Watermark(s.next))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Cancel implements flink.Source.
func (s *source) Cancel() { s.cancelled.Store(true) }
