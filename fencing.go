package flink

import (
	"context"
	"fmt"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/internal/rpc"
)

// Fencing in HA mode. Every call a leader's ResourceManager or JobManagers
// make to a TaskManager carries the leader's fencing token (the Raft term
// of its leadership and its node id) in the call's context; the RPC layer
// carries it across processes. A TaskManager remembers the newest term it
// has seen: it refuses deployments, slot requests, checkpoint triggers and
// commit notifications of an older term, and when it first sees a newer
// term it stops the tasks and frees the slots of the older leaders, whose
// jobs the new leader restarts from their latest completed checkpoints.
// Calls without a token (a cluster without HA) are not fenced.

// fencedResolver hands out gateways whose calls carry tok.
type fencedResolver struct {
	resolver
	tok rpc.Token
}

func (r fencedResolver) taskManager(addr string) (TaskManagerGateway, error) {
	g, err := r.resolver.taskManager(addr)
	if err != nil {
		return nil, err
	}
	return fencedTM{g: g, tok: r.tok}, nil
}

// fencedTM is a TaskManagerGateway whose calls carry a leader's token.
type fencedTM struct {
	g   TaskManagerGateway
	tok rpc.Token
}

func (f fencedTM) ctx(ctx context.Context) context.Context { return rpc.WithToken(ctx, f.tok) }

func (f fencedTM) RequestSlot(ctx context.Context, slot SlotID, job JobID, alloc AllocationID, jobManager string) error {
	return f.g.RequestSlot(f.ctx(ctx), slot, job, alloc, jobManager)
}

func (f fencedTM) SubmitTask(ctx context.Context, tdd TaskDeploymentDescriptor) error {
	return f.g.SubmitTask(f.ctx(ctx), tdd)
}

func (f fencedTM) CancelTask(ctx context.Context, id ExecutionAttemptID) error {
	return f.g.CancelTask(f.ctx(ctx), id)
}

func (f fencedTM) FreeSlot(ctx context.Context, alloc AllocationID) error {
	return f.g.FreeSlot(f.ctx(ctx), alloc)
}

func (f fencedTM) ReleasePartitions(ctx context.Context, job JobID, attempt int) error {
	return f.g.ReleasePartitions(f.ctx(ctx), job, attempt)
}

func (f fencedTM) TriggerCheckpoint(ctx context.Context, id ExecutionAttemptID, b CheckpointBarrier) error {
	return f.g.TriggerCheckpoint(f.ctx(ctx), id, b)
}

func (f fencedTM) NotifyCheckpointComplete(ctx context.Context, id ExecutionAttemptID, checkpointID int64) error {
	return f.g.NotifyCheckpointComplete(f.ctx(ctx), id, checkpointID)
}

func (f fencedTM) NotifyCheckpointAborted(ctx context.Context, id ExecutionAttemptID, checkpointID int64) error {
	return f.g.NotifyCheckpointAborted(f.ctx(ctx), id, checkpointID)
}

func (f fencedTM) Instance(ctx context.Context) (string, error) { return f.g.Instance(f.ctx(ctx)) }

func (f fencedTM) DeploymentReport(ctx context.Context, job JobID, sinceAttempt int) ([]TaskExecutionState, error) {
	return f.g.DeploymentReport(f.ctx(ctx), job, sinceAttempt)
}

// fence checks the token ctx carries against the newest the TaskManager
// has seen: an older term is refused with ErrStaleLeader, a newer one is
// adopted (see adoptLeaderLocked). A call without a token passes.
func (tm *TaskManager) fence(ctx context.Context, op string) error {
	tok := rpc.TokenFrom(ctx)
	if tok.IsZero() {
		return nil
	}
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.fenceLocked(tok, op)
}

func (tm *TaskManager) fenceLocked(tok rpc.Token, op string) error {
	cur := tm.mu.leader
	switch {
	case tok.Term < cur.Term:
		return fmt.Errorf("%w: task manager %s refuses %s from %s in term %d: %s leads term %d",
			ErrStaleLeader, tm.id, op, tok.Leader, tok.Term, cur.Leader, cur.Term)
	case tok.Term == cur.Term && tok.Leader != cur.Leader:
		return fmt.Errorf("%w: task manager %s refuses %s from %s in term %d: %s leads that term",
			ErrStaleLeader, tm.id, op, tok.Leader, tok.Term, cur.Leader)
	case tok.Term > cur.Term:
		tm.adoptLeaderLocked(tok)
	}
	return nil
}

// adoptLeader makes tok the TaskManager's leader if it is newer than the
// one it follows; it reports whether it was.
func (tm *TaskManager) adoptLeader(tok rpc.Token) bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tok.Term <= tm.mu.leader.Term {
		return false
	}
	tm.adoptLeaderLocked(tok)
	return true
}

// adoptLeaderLocked follows the leader of a newer term: the tasks and
// slots of older leaders are stopped and freed at once, without telling
// their ResourceManager (the new leader's has its own view), so that the
// slots are free for the new leader.
func (tm *TaskManager) adoptLeaderLocked(tok rpc.Token) {
	old := tm.mu.leader
	tm.mu.leader = tok
	stopped, freed := 0, 0
	for _, t := range tm.mu.tasks {
		if t.term < tok.Term {
			t.stop()
			stopped++
		}
	}
	for alloc, term := range tm.mu.allocTerms {
		if term < tok.Term {
			if _, ok := tm.mu.slots.Free(alloc); ok {
				freed++
			}
			delete(tm.mu.jms, alloc)
			delete(tm.mu.allocTerms, alloc)
		}
	}
	tm.log.Info("following a new leader", "leader", tok.Leader, "term", tok.Term,
		"previous", old.Leader, "previous_term", old.Term, "tasks_stopped", stopped, "slots_freed", freed)
}

// leaderToken returns the token of the leader the TaskManager follows;
// zero without HA.
func (tm *TaskManager) leaderToken() rpc.Token {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.mu.leader
}

// commitFence returns the BeforeCommit hook of checkpoints in HA mode:
// commit the checkpoint's pointer to the job store with the leader's
// token. An outcome that may yet take effect keeps the checkpoint's data.
func commitFence(store jobStore, job JobID) func(ctx context.Context, m *checkpoint.Metadata) error {
	return func(ctx context.Context, m *checkpoint.Metadata) error {
		err := store.commitCheckpoint(ctx, job, m.CheckpointID, fmt.Sprintf("%s/chk-%d", job, m.CheckpointID))
		if err != nil && store.outcomeUnknown(err) {
			return fmt.Errorf("%w: %w", checkpoint.ErrCommitOutcomeUnknown, err)
		}
		return err
	}
}
