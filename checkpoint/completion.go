package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Completing a checkpoint takes three steps, as in Flink's
// CheckpointCoordinator, so that the coordinator's owner holds no lock
// across storage or Raft I/O:
//
//  1. BeginComplete (no I/O) takes the fully acknowledged checkpoint out of
//     the pending set; it still counts towards MaxConcurrent.
//  2. Finalize (I/O, bounded by its context) writes the metadata, calls
//     BeforeCommit and adds the checkpoint to the store. It touches no
//     state of the coordinator but the store, so the owner may go on
//     triggering, acknowledging, declining and expiring meanwhile.
//  3. EndComplete (no I/O) publishes the outcome: the checkpoint completed
//     (older pending checkpoints are subsumed) or failed (it is aborted and
//     counted as a failure).
//
// Complete does all three in one call.

// cleanupTimeout bounds deleting the metadata of a checkpoint whose commit
// failed, once the context Finalize was given has ended.
const cleanupTimeout = 30 * time.Second

// Finalization is a fully acknowledged checkpoint on its way to completion:
// BeginComplete returns it, Finalize writes and commits it, EndComplete
// publishes the outcome. It belongs to the goroutine that called
// BeginComplete, which hands it on to the others.
type Finalization struct {
	// ID is the checkpoint's id.
	ID int64
	// IsSavepoint marks a savepoint.
	IsSavepoint bool
	// Location is where its metadata is written.
	Location Location

	p         *pendingCheckpoint
	m         *Metadata
	err       error // Finalize's outcome
	finalized bool
}

// BeginComplete takes checkpoint id, which every task acknowledged, out of
// the pending set, so that it neither expires nor is aborted while it is
// finalized; it still counts towards MaxConcurrent until EndComplete. It
// does no I/O. The error wraps ErrUnknownCheckpoint or ErrNotAcknowledged
// for a checkpoint that cannot be completed, which changes nothing.
func (c *Coordinator) BeginComplete(id int64) (*Finalization, error) {
	p, ok := c.pending[id]
	if !ok {
		return nil, fmt.Errorf("%w: checkpoint %d of job %q is not pending", ErrUnknownCheckpoint, id, c.job.ID)
	}
	if !p.fullyAcknowledged() {
		return nil, fmt.Errorf("%w: checkpoint %d has %d of %d acknowledgements",
			ErrNotAcknowledged, id, len(p.acks), len(c.tasks))
	}
	delete(c.pending, id)
	c.completing[id] = p
	return &Finalization{ID: id, IsSavepoint: p.savepoint, Location: p.loc, p: p, m: p.metadata(&c.job)}, nil
}

// Finalize writes f's metadata atomically through Storage, calls
// BeforeCommit and adds the checkpoint to the store (which deletes the
// checkpoints it no longer retains); a savepoint is written to its target
// and neither committed nor added to the store. It blocks on storage and
// BeforeCommit, bounded by ctx; when ctx ends first the error names
// context.Cause(ctx). If the commit fails after the metadata was written,
// the metadata is deleted again (best effort, even after ctx ended),
// unless the error wraps ErrCommitOutcomeUnknown.
//
// Finalize may run concurrently with the coordinator's other methods, but
// not with another Finalize: finalize checkpoints one at a time, in the
// order BeginComplete returned them, so that the store receives them in
// order. Its error is also recorded in f for EndComplete.
func (c *Coordinator) Finalize(ctx context.Context, f *Finalization) error {
	if f.finalized {
		return f.err
	}
	f.err = c.finalize(ctx, f.p, f.m)
	f.finalized = true
	return f.err
}

// finalize writes m and commits it. On a failure after the metadata was
// written, it deletes the checkpoint again (best effort).
func (c *Coordinator) finalize(ctx context.Context, p *pendingCheckpoint, m *Metadata) error {
	err := c.writeAndCommit(ctx, p, m)
	if err != nil && ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
	}
	return err
}

func (c *Coordinator) writeAndCommit(ctx context.Context, p *pendingCheckpoint, m *Metadata) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := c.storage.WriteMetadata(ctx, p.loc, m); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	if p.savepoint {
		return nil
	}
	var err error
	if c.cfg.BeforeCommit != nil {
		if err = c.cfg.BeforeCommit(ctx, m); err != nil {
			err = fmt.Errorf("commit: %w", err)
		}
	}
	if err == nil {
		if err = c.store.Add(ctx, m); err != nil {
			err = fmt.Errorf("add to store: %w", err)
		}
	}
	if err != nil && !errors.Is(err, ErrCommitOutcomeUnknown) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := c.storage.Delete(dctx, p.loc); derr != nil {
			c.cfg.Logger.Warn("checkpoint: could not delete uncommitted checkpoint", "job", c.job.ID,
				"checkpoint", p.id, "error", derr)
		}
	}
	return err
}

// EndComplete publishes the outcome of Finalize at now. It does no I/O.
//
// If Finalize succeeded, the checkpoint completed: the result's Completed
// says which tasks to notify, and the older pending checkpoints it
// subsumes are aborted (Subsumed). If Finalize failed, the checkpoint is
// aborted and counted as a failure (not after Shutdown): the result's
// Failed says what to notify and discard (metadata written before a
// BeforeCommit failure is deleted already), and the error wraps
// ErrTooManyFailures when the job must fail over. The error wraps
// ErrUnknownCheckpoint if f is not being completed by this coordinator
// (ended already, or never begun) or Finalize has not returned; nothing
// changes then.
func (c *Coordinator) EndComplete(now time.Time, f *Finalization) (CompleteResult, error) {
	if f == nil || c.completing[f.ID] != f.p || f.p == nil {
		id := int64(0)
		if f != nil {
			id = f.ID
		}
		return CompleteResult{}, fmt.Errorf("%w: checkpoint %d of job %q is not being completed", ErrUnknownCheckpoint, id, c.job.ID)
	}
	if !f.finalized {
		return CompleteResult{}, fmt.Errorf("%w: checkpoint %d is being completed, but Finalize has not returned", ErrUnknownCheckpoint, f.ID)
	}
	delete(c.completing, f.ID)
	p := f.p
	if err := f.err; err != nil {
		discard := !errors.Is(err, ErrExists) && !errors.Is(err, ErrCommitOutcomeUnknown)
		why := fmt.Errorf("%w: checkpoint %d: %w", ErrFinalize, f.ID, err)
		a := c.abort(now, p, why, discard)
		if c.stopped {
			return CompleteResult{Failed: &a}, nil
		}
		return CompleteResult{Failed: &a}, c.countFailure(p, why)
	}
	c.failures, c.firstFailure = 0, failedCheckpoint{}
	c.lastCompletion = now
	c.stats.ended(f.ID, now, nil)
	res := CompleteResult{Completed: &Completion{
		ID: f.ID, IsSavepoint: p.savepoint, Location: p.loc, Metadata: f.m, Notify: slices.Clone(c.tasks),
	}}
	if !p.savepoint {
		for _, older := range c.Pending() {
			if q := c.pending[older]; older < f.ID && !q.savepoint {
				res.Subsumed = append(res.Subsumed, c.abort(now, q, fmt.Errorf("%w: checkpoint %d completed", ErrSubsumed, f.ID), true))
			}
		}
	}
	return res, nil
}

// Complete finalizes checkpoint id once every task acknowledged:
// BeginComplete, Finalize with ctx and EndComplete at now in one call,
// blocking on storage. It writes the metadata atomically through Storage,
// calls BeforeCommit, adds the checkpoint to the store (which deletes the
// checkpoints it no longer retains), aborts the older pending checkpoints
// it subsumes and returns the tasks to notify. A savepoint is written to
// its target and neither committed nor added to the store.
//
// If finalizing fails (including because ctx is done), the checkpoint is
// aborted and counted as a failure: the result's Failed says what to
// notify and discard (metadata written before a BeforeCommit failure is
// deleted here already). The error wraps ErrUnknownCheckpoint or
// ErrNotAcknowledged for a checkpoint that cannot be completed (nothing
// changes), or ErrTooManyFailures when the failure means the job must fail
// over.
func (c *Coordinator) Complete(ctx context.Context, now time.Time, id int64) (CompleteResult, error) {
	f, err := c.BeginComplete(id)
	if err != nil {
		return CompleteResult{}, err
	}
	c.Finalize(ctx, f) // its error is kept in f for EndComplete
	return c.EndComplete(now, f)
}
