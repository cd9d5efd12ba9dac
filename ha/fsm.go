package ha

import (
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// jobStoreFSM is the job store's replicated state machine: the jobs, and
// per job the pointer to its latest completed checkpoint, its checkpoint
// id counter, its restart count and its start and end times.
//
// Apply, Snapshot and Restore are called by raft from its FSM goroutine,
// one at a time, and are deterministic: the same log gives the same state
// and the same results on every node. The read methods may be called
// concurrently with them from any goroutine.
type jobStoreFSM struct {
	mu struct {
		sync.RWMutex
		jobs map[string]*JobRecord
	}
}

var _ raft.FSM = (*jobStoreFSM)(nil)

// newJobStoreFSM returns an empty job store.
func newJobStoreFSM() *jobStoreFSM {
	f := &jobStoreFSM{}
	f.mu.jobs = make(map[string]*JobRecord)
	return f
}

// applyResult is what Apply returns for every command; raft hands it to
// the proposer through ApplyFuture.Response.
type applyResult struct {
	// checkpointID is the id handed out by a next-checkpoint-id command.
	checkpointID int64
	// err is why the command was rejected; the store is unchanged then.
	err error
}

// Apply applies one committed log entry and returns an applyResult. A
// malformed or rejected command leaves the store unchanged; its error is
// returned to the proposer (and dropped on the other nodes, which reject it
// the same way).
func (f *jobStoreFSM) Apply(l *raft.Log) any {
	c, err := decodeCommand(l.Data)
	if err != nil {
		return applyResult{err: fmt.Errorf("%w (log entry %d)", err, l.Index)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applyLocked(l.Index, l.Term, &c)
}

// applyLocked applies c, appended at index in term. f.mu is held.
func (f *jobStoreFSM) applyLocked(index, term uint64, c *command) applyResult {
	if c.Token.Term != term {
		return applyResult{err: fmt.Errorf("%w: %v for job %q carries the token of %v, but was appended in term %d",
			ErrStaleToken, c.Type, c.Job, c.Token, term)}
	}
	rec := f.mu.jobs[c.Job]
	if c.Type == cmdSubmitJob {
		if rec != nil {
			return applyResult{err: fmt.Errorf("%w: %q (registered name %q, status %s)", ErrJobExists, c.Job, rec.Name, rec.Status)}
		}
		r := JobRecord{JobSpec: *c.Spec, Revision: index}
		r = r.clone()
		f.mu.jobs[c.Job] = &r
		return applyResult{}
	}
	if rec == nil {
		return applyResult{err: fmt.Errorf("%w: %v: no job %q", ErrUnknownJob, c.Type, c.Job)}
	}
	switch c.Type {
	case cmdUpdateJobStatus:
		rec.Status = c.Status
		rec.Restarts = max(rec.Restarts, c.Restarts)
		if c.EndTime != 0 {
			rec.EndTime = c.EndTime
		}
	case cmdRecordRestarts:
		rec.Restarts = max(rec.Restarts, c.Restarts)
	case cmdRemoveJob:
		delete(f.mu.jobs, c.Job)
		return applyResult{}
	case cmdCommitCheckpoint:
		if c.Checkpoint.ID <= rec.Latest.ID {
			return applyResult{err: fmt.Errorf("%w: job %q: checkpoint %d at %q, the latest committed is %d at %q",
				ErrCheckpointNotNewer, c.Job, c.Checkpoint.ID, c.Checkpoint.Location, rec.Latest.ID, rec.Latest.Location)}
		}
		rec.Latest = c.Checkpoint
		rec.CheckpointCounter = max(rec.CheckpointCounter, c.Checkpoint.ID)
	case cmdNextCheckpointID:
		rec.CheckpointCounter++
		rec.Revision = index
		return applyResult{checkpointID: rec.CheckpointCounter}
	default: // decodeCommand lets no other type through
		return applyResult{err: fmt.Errorf("%w: unknown %v", ErrMalformedCommand, c.Type)}
	}
	rec.Revision = index
	return applyResult{}
}

// Snapshot returns a copy of the store for raft to persist. It is called
// on raft's FSM goroutine, so no Apply runs concurrently; the copy lets
// Apply continue while the snapshot is written.
func (f *jobStoreFSM) Snapshot() (raft.FSMSnapshot, error) {
	return &jobStoreSnapshot{jobs: f.jobs()}, nil
}

// Restore replaces the store with the snapshot read from rc, and closes
// rc. If the snapshot cannot be read or decoded the store is unchanged and
// the error wraps ErrCorruptSnapshot.
func (f *jobStoreFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	jobs, err := decodeSnapshot(rc)
	if err != nil {
		return err
	}
	m := make(map[string]*JobRecord, len(jobs))
	for i := range jobs {
		m[jobs[i].ID] = &jobs[i]
	}
	f.mu.Lock()
	f.mu.jobs = m
	f.mu.Unlock()
	return nil
}

// jobs returns deep copies of every record, sorted by id.
func (f *jobStoreFSM) jobs() []JobRecord {
	f.mu.RLock()
	out := make([]JobRecord, 0, len(f.mu.jobs))
	for _, r := range f.mu.jobs {
		out = append(out, r.clone())
	}
	f.mu.RUnlock()
	sortJobs(out)
	return out
}

// job returns a deep copy of the record of id.
func (f *jobStoreFSM) job(id string) (JobRecord, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.mu.jobs[id]
	if !ok {
		return JobRecord{}, false
	}
	return r.clone(), true
}

// jobStoreSnapshot is a point-in-time copy of the store that raft writes
// to the snapshot store, possibly concurrently with Apply.
type jobStoreSnapshot struct {
	jobs []JobRecord // sorted by id, shared with no one
}

// Persist writes the snapshot to sink and closes it, or cancels it on
// error.
func (s *jobStoreSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := encodeSnapshot(sink, s.jobs); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds only its own copy.
func (s *jobStoreSnapshot) Release() {}
