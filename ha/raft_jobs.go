package ha

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// SubmitJob adds a job to the store. It fails with ErrJobExists if the id
// is taken, and like every command of the store with ErrNotLeader on a
// follower, ErrStaleToken if token is not this leader's current one,
// ErrOutcomeUnknown if leadership is lost or ctx ends after the command
// entered the log, and ErrRaftClosed after Shutdown.
func (n *RaftNode) SubmitJob(ctx context.Context, token FencingToken, job JobSpec) error {
	spec := job
	_, err := n.propose(ctx, &command{Type: cmdSubmitJob, Token: token, Job: job.ID, Spec: &spec})
	return err
}

// UpdateJobStatus sets a job's status. It fails with ErrUnknownJob for a
// job the store does not hold; see SubmitJob for the other errors.
func (n *RaftNode) UpdateJobStatus(ctx context.Context, token FencingToken, jobID, status string) error {
	_, err := n.propose(ctx, &command{Type: cmdUpdateJobStatus, Token: token, Job: jobID, Status: status})
	return err
}

// EndJob records a job's final status, when it ended and how often it
// restarted in all (the record keeps the highest count it was given). It
// fails with ErrUnknownJob for a job the store does not hold; see
// SubmitJob for the other errors.
func (n *RaftNode) EndJob(ctx context.Context, token FencingToken, jobID, status string, end time.Time, restarts int64) error {
	_, err := n.propose(ctx, &command{Type: cmdUpdateJobStatus, Token: token, Job: jobID, Status: status,
		EndTime: max(end.UnixMilli(), 0), Restarts: restarts})
	return err
}

// RecordRestarts records that a job has restarted restarts times in all,
// on every leader so far; the record keeps the highest count it was
// given, so a late or repeated command never lowers it. restarts must be
// >= 1. It fails with ErrUnknownJob for a job the store does not hold; see
// SubmitJob for the other errors.
func (n *RaftNode) RecordRestarts(ctx context.Context, token FencingToken, jobID string, restarts int64) error {
	_, err := n.propose(ctx, &command{Type: cmdRecordRestarts, Token: token, Job: jobID, Restarts: restarts})
	return err
}

// RemoveJob removes a job, its checkpoint pointer and its checkpoint id
// counter from the store. It fails with ErrUnknownJob for a job the store
// does not hold; see SubmitJob for the other errors.
func (n *RaftNode) RemoveJob(ctx context.Context, token FencingToken, jobID string) error {
	_, err := n.propose(ctx, &command{Type: cmdRemoveJob, Token: token, Job: jobID})
	return err
}

// CommitCheckpoint makes cp the job's latest completed checkpoint, once the
// checkpoint's metadata is safely in checkpoint storage. It fails with
// ErrCheckpointNotNewer if cp.ID is not greater than the latest committed
// id (so a retried commit that did go through is reported, not applied
// twice) and with ErrUnknownJob for a job the store does not hold; see
// SubmitJob for the other errors. After ErrOutcomeUnknown the checkpoint
// may yet become the latest: do not discard it.
func (n *RaftNode) CommitCheckpoint(ctx context.Context, token FencingToken, jobID string, cp CheckpointPointer) error {
	_, err := n.propose(ctx, &command{Type: cmdCommitCheckpoint, Token: token, Job: jobID, Checkpoint: cp})
	return err
}

// NextCheckpointID reserves and returns the job's next checkpoint id: one
// more than any id reserved or committed before for the job, on any
// leader, starting at 1. It fails with ErrUnknownJob for a job the store
// does not hold; see SubmitJob for the other errors.
func (n *RaftNode) NextCheckpointID(ctx context.Context, token FencingToken, jobID string) (int64, error) {
	res, err := n.propose(ctx, &command{Type: cmdNextCheckpointID, Token: token, Job: jobID})
	return res.checkpointID, err
}

// Jobs returns every job of this node's copy of the store, sorted by id.
// The records are copies, owned by the caller.
func (n *RaftNode) Jobs() []JobRecord { return n.fsm.jobs() }

// Job returns this node's copy of the record of jobID, or an error
// wrapping ErrUnknownJob.
func (n *RaftNode) Job(jobID string) (JobRecord, error) {
	r, ok := n.fsm.job(jobID)
	if !ok {
		return JobRecord{}, fmt.Errorf("%w: %q", ErrUnknownJob, jobID)
	}
	return r, nil
}

// LatestCheckpoint returns the pointer to the job's latest completed
// checkpoint in this node's copy of the store: zero if none was committed,
// an error wrapping ErrUnknownJob for a job the store does not hold.
func (n *RaftNode) LatestCheckpoint(jobID string) (CheckpointPointer, error) {
	r, err := n.Job(jobID)
	return r.Latest, err
}

// propose checks token, appends c to the log and waits until it is
// applied, returning the job store's result.
func (n *RaftNode) propose(ctx context.Context, c *command) (applyResult, error) {
	if err := n.checkOpen(); err != nil {
		return applyResult{}, err
	}
	if n.raft.State() != raft.Leader {
		return applyResult{}, n.notLeaderError(fmt.Sprintf("%v for job %q", c.Type, c.Job))
	}
	if c.Token.Leader != n.cfg.NodeID {
		return applyResult{}, fmt.Errorf("%w: %v for job %q carries the token of %v, this node is %q",
			ErrStaleToken, c.Type, c.Job, c.Token, n.cfg.NodeID)
	}
	if term := n.raft.CurrentTerm(); c.Token.Term != term {
		return applyResult{}, fmt.Errorf("%w: %v for job %q carries the token of %v, the current term is %d",
			ErrStaleToken, c.Type, c.Job, c.Token, term)
	}
	data, err := encodeCommand(c)
	if err != nil {
		return applyResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return applyResult{}, fmt.Errorf("ha: %v for job %q: %w", c.Type, c.Job, err)
	}
	f := n.raft.Apply(data, enqueueTimeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		if errors.Is(err, raft.ErrEnqueueTimeout) { // never reached the log
			return applyResult{}, fmt.Errorf("ha: %v for job %q: raft did not accept it before the deadline: %w",
				c.Type, c.Job, context.DeadlineExceeded)
		}
		return applyResult{}, n.leaderOpError(fmt.Sprintf("%v for job %q", c.Type, c.Job), err)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return applyResult{}, fmt.Errorf("ha: %v for job %q: unexpected result %T from the job store", c.Type, c.Job, f.Response())
	}
	return res, res.err
}

// RaftStatus is a point-in-time view of a RaftNode, for logs, metrics and
// the REST API.
type RaftStatus struct {
	// NodeID is this node's id.
	NodeID string
	// State is raft's state: "Follower", "Candidate", "Leader" or
	// "Shutdown".
	State string
	// Term is the current term.
	Term uint64
	// LeaderID is the id of the known leader; empty if none.
	LeaderID string
	// LeaderAddr is the transport address of the known leader.
	LeaderAddr string
	// Token is this node's fencing token if it leads; zero otherwise.
	Token FencingToken
	// LastContact is when this follower last heard from the leader; zero
	// on the leader and before any contact.
	LastContact time.Time
	// LastIndex, CommitIndex and AppliedIndex are the indexes of the last
	// log entry, the last committed one and the last one applied to the
	// job store.
	LastIndex, CommitIndex, AppliedIndex uint64
	// Voters is the number of voters in the latest configuration.
	Voters int
}

// Status returns the node's current status. It does not block.
func (n *RaftNode) Status() RaftStatus {
	id, addr := n.Leader()
	s := RaftStatus{
		NodeID:       n.cfg.NodeID,
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		LeaderID:     id,
		LeaderAddr:   addr,
		Token:        n.Token(),
		LastIndex:    n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
	}
	if n.raft.State() != raft.Leader {
		s.LastContact = n.raft.LastContact()
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			if srv.Suffrage == raft.Voter {
				s.Voters++
			}
		}
	}
	return s
}

// Health reports whether the group can commit commands from this node: nil
// if this node is a leader that a quorum acknowledges (checked with a
// round of heartbeats, bounded by ctx) or a follower that knows a leader,
// and an error wrapping ErrNoQuorum otherwise, saying why: the runtime
// reports it as "checkpoint commits stopped: no quorum". A leader cut off
// from the quorum steps down within LeaderLeaseTimeout to twice that; a
// follower notices a lost leader after HeartbeatTimeout.
func (n *RaftNode) Health(ctx context.Context) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	switch st := n.raft.State(); st {
	case raft.Leader:
		err := n.wait(ctx, n.raft.VerifyLeader())
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: node %q leads term %d, but no quorum acknowledged it before the deadline: %w",
				ErrNoQuorum, n.cfg.NodeID, n.raft.CurrentTerm(), err)
		}
		return fmt.Errorf("%w: node %q lost leadership of term %d: no quorum acknowledged it: %w",
			ErrNoQuorum, n.cfg.NodeID, n.raft.CurrentTerm(), err)
	case raft.Shutdown:
		return ErrRaftClosed
	default:
		if id, _ := n.Leader(); id != "" {
			return nil
		}
		since := "never"
		if lc := n.raft.LastContact(); !lc.IsZero() {
			since = time.Since(lc).Round(time.Millisecond).String() + " ago"
		}
		return fmt.Errorf("%w: node %q is a %s in term %d and knows no leader (last contact with a leader: %s)",
			ErrNoQuorum, n.cfg.NodeID, st, n.raft.CurrentTerm(), since)
	}
}
