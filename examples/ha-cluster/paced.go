package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/state"
)

// pacedBatch is the most records a paced source emits per hold of the
// checkpoint lock.
const pacedBatch = 256

// stopPollInterval is how often a paced source looks for its stop file.
const stopPollInterval = 100 * time.Millisecond

// pacedSource emits the sequence 0, 1, 2, ... without end, at a steady rate,
// until a stop file appears: subtask k of p emits the indexes k, k+p, k+2p,
// ... at rate indexes per second. The stop file holds one number, the end
// E: once a subtask has read it, it emits its remaining indexes below E as
// fast as it can and ends, so the job emits exactly the indexes [0, E)
// whatever failures it met. The source is replayable: each subtask keeps
// its next index in operator state.
//
// The pacing is strict (a subtask never emits more than rate × the seconds
// since its attempt started), so a subtask's next index never exceeds
// k + p × rate × (seconds since the job was submitted): whoever writes the
// stop file can choose an end no subtask has passed yet. A subtask restored
// past the end fails with an error that says so.
type pacedSource struct {
	rate     int64
	stopFile string

	next, step int64
	pos        state.ListState[int64]
	cancelled  atomic.Bool
}

var _ flink.CheckpointedFunction = (*pacedSource)(nil)

// newPacedSource adds a paced source of the given rate per subtask that
// stops at the end written into stopFile.
func newPacedSource(env *flink.Env, rate int64, stopFile string) *flink.DataStream[int64] {
	return flink.FromSource(env, "Paced", func() flink.Source[int64] {
		return &pacedSource{rate: rate, stopFile: stopFile}
	}).UID("paced-source")
}

// InitializeState implements flink.CheckpointedFunction: it restores the
// next index.
func (s *pacedSource) InitializeState(ctx *flink.StateInitContext) error {
	var err error
	if s.pos, err = state.GetOperatorListState(ctx.OperatorState(), state.ListStateDescriptor[int64]{Name: "next-index"}); err != nil {
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
		return fmt.Errorf("paced source: subtask %d of %d restored positions %v, want one position of this subtask (restore at the parallelism of the checkpoint)",
			rc.SubtaskIndex(), rc.Parallelism(), restored)
	}
	s.next = restored[0]
	return nil
}

// SnapshotState implements flink.CheckpointedFunction.
func (s *pacedSource) SnapshotState(int64) error { return s.pos.Update([]int64{s.next}) }

// Run emits the subtask's indexes, paced until the stop file appears, then
// the rest below the end at full speed.
func (s *pacedSource) Run(ctx context.Context, out *flink.SourceContext[int64]) error {
	done := ctx.Done()
	start := time.Now()
	var emitted int64 // in this attempt
	end := int64(-1)  // from the stop file; -1 until it appears
	var lastPoll time.Time
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.cancelled.Load() {
			return nil
		}
		if end < 0 && time.Since(lastPoll) >= stopPollInterval {
			lastPoll = time.Now()
			e, err := readStopFile(s.stopFile)
			if err != nil {
				return err
			}
			if e >= 0 {
				end = e
				if last := s.next - s.step; last >= end {
					return fmt.Errorf("paced source: subtask emitted index %d, past the end %d in %s: the end was chosen too small", last, end, s.stopFile)
				}
			}
		}
		n := int64(pacedBatch)
		if end >= 0 {
			if s.next >= end {
				return nil
			}
		} else if allowed := int64(time.Since(start).Seconds()*float64(s.rate)) - emitted; allowed < n {
			n = allowed
		}
		if n <= 0 {
			select {
			case <-done:
				return ctx.Err()
			case <-tick.C:
			}
			continue
		}
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		err := out.WithCheckpointLock(func(out flink.SourceCollector[int64]) error {
			for range n {
				if end >= 0 && s.next >= end {
					break
				}
				out.Collect(s.next)
				s.next += s.step
				emitted++
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}

// Cancel implements flink.Source.
func (s *pacedSource) Cancel() { s.cancelled.Store(true) }

// readStopFile returns the end written in the stop file, or -1 while there
// is none.
func readStopFile(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("paced source: reading the stop file: %w", err)
	}
	end, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || end < 0 {
		return 0, fmt.Errorf("paced source: stop file %s holds %q, want the end index (an integer >= 0)", path, b)
	}
	return end, nil
}
