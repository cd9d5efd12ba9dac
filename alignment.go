package flink

import (
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/flinkgo/flink/checkpoint"
)

// CheckpointBarrier is the marker a source emits into its outputs when a
// checkpoint is triggered: records before it are in the checkpoint's state,
// records after it are not. Barriers travel in band, behind the records
// before them, through both exchanges. The JobManager sends it to source
// subtasks with TaskManagerGateway.TriggerCheckpoint.
type CheckpointBarrier struct {
	// ID is the checkpoint's id, >= 1.
	ID int64
	// Timestamp is when the checkpoint was triggered.
	Timestamp time.Time
	// Location is where subtasks write their state.
	Location checkpoint.Location
	// Savepoint marks a savepoint.
	Savepoint bool
	// AtLeastOnce turns barrier alignment off.
	AtLeastOnce bool
	// Stop marks the savepoint of stop-with-savepoint: sources emit nothing
	// after it (unless it is aborted), so that nothing is committed past
	// the savepoint before the job ends.
	Stop bool
	// Final marks the checkpoint sources take once they are exhausted: they
	// end their input after it, and tasks wait for it to complete so that
	// transactional sinks commit their last records.
	Final bool
}

func encodeBarrier(b CheckpointBarrier) ([]byte, error) { return msgpack.Marshal(&b) }

func decodeBarrier(p []byte) (CheckpointBarrier, error) {
	var b CheckpointBarrier
	if err := msgpack.Unmarshal(p, &b); err != nil {
		return b, fmt.Errorf("flink: malformed checkpoint barrier (%d bytes): %w", len(p), err)
	}
	if b.ID < 1 {
		return b, fmt.Errorf("flink: malformed checkpoint barrier: id %d", b.ID)
	}
	return b, nil
}

// aligner decides when a task with several input channels has received a
// checkpoint's barrier on all of them, as Flink's CheckpointBarrierHandler.
// In exactly-once mode a channel that delivered the barrier is blocked until
// the others deliver it too, so no record after the barrier reaches the
// state before the snapshot; in at-least-once mode nothing is blocked. A
// channel that ended counts as having delivered every barrier.
type aligner struct {
	finished []bool
	open     int

	current  int64 // the checkpoint being aligned, or the last one seen
	aligning bool
	seen     []bool
	count    int
	started  time.Time
	barrier  CheckpointBarrier

	// now is the clock alignment is measured with.
	now       func() time.Time
	block     func(ch int)
	resumeAll func()
	// checkpoint is called once a checkpoint's barriers are aligned, with
	// the time alignment took; channels are resumed after it returns.
	checkpoint func(b CheckpointBarrier, alignment time.Duration) error
	// decline is called for a checkpoint abandoned because a newer barrier
	// arrived before it was aligned.
	decline func(id int64, reason error)
}

func newAligner(numChannels int) *aligner {
	return &aligner{now: time.Now, finished: make([]bool, numChannels), open: numChannels, seen: make([]bool, numChannels)}
}

// onBarrier handles barrier b from channel ch.
func (a *aligner) onBarrier(ch int, b CheckpointBarrier) error {
	switch {
	case b.ID < a.current || (b.ID == a.current && !a.aligning):
		return nil // a barrier of an abandoned or completed checkpoint
	case b.ID > a.current:
		if a.aligning {
			a.decline(a.current, fmt.Errorf("%w: barrier of checkpoint %d arrived before checkpoint %d was aligned", checkpoint.ErrSubsumed, b.ID, a.current))
			a.release()
		}
		a.current, a.aligning, a.barrier, a.count, a.started = b.ID, true, b, 0, a.now()
		clear(a.seen)
	}
	if a.seen[ch] {
		return fmt.Errorf("flink: input channel %d delivered the barrier of checkpoint %d twice", ch, b.ID)
	}
	a.seen[ch] = true
	a.count++
	if !b.AtLeastOnce && a.count < a.open {
		a.block(ch)
	}
	return a.maybeComplete()
}

// onEndOfPartition handles the end of channel ch.
func (a *aligner) onEndOfPartition(ch int) error {
	if a.finished[ch] {
		return nil
	}
	a.finished[ch] = true
	a.open--
	if a.aligning && a.seen[ch] {
		a.count--
	}
	return a.maybeComplete()
}

func (a *aligner) maybeComplete() error {
	if !a.aligning || a.count < a.open {
		return nil
	}
	b, took := a.barrier, a.now().Sub(a.started)
	a.aligning = false
	err := a.checkpoint(b, took)
	a.resumeAll()
	return err
}

// release ends the alignment in progress without a checkpoint.
func (a *aligner) release() {
	a.aligning = false
	a.resumeAll()
}
