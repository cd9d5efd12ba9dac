package ha

import (
	"errors"
	"fmt"
	"slices"
)

// Errors of the replicated job store. A command rejected with one of them
// left the store unchanged, on every node.
var (
	// ErrStaleToken is wrapped when a command carries a fencing token that
	// is not the current one: its term differs from the term of the Raft
	// log entry it was appended in (the proposer lost, and maybe regained,
	// leadership since it took the token), or it names another leader.
	ErrStaleToken = errors.New("ha: stale fencing token")

	// ErrCheckpointNotNewer is wrapped when a checkpoint commit's id is not
	// greater than the job's latest committed checkpoint: no checkpoint is
	// committed twice, and the pointer never moves back.
	ErrCheckpointNotNewer = errors.New("ha: checkpoint not newer than the latest committed one")

	// ErrUnknownJob is wrapped when a command or a read names a job the
	// store does not hold.
	ErrUnknownJob = errors.New("ha: unknown job")

	// ErrJobExists is wrapped when a job is submitted under an id the store
	// already holds.
	ErrJobExists = errors.New("ha: job already exists")

	// ErrInvalidJob is wrapped when a job spec, status or checkpoint
	// pointer fails validation.
	ErrInvalidJob = errors.New("ha: invalid job")

	// ErrMalformedCommand is wrapped when a replicated command cannot be
	// decoded: truncated, bad checksum, unknown type or bad msgpack.
	ErrMalformedCommand = errors.New("ha: malformed job store command")

	// ErrCorruptSnapshot is wrapped when a job store snapshot cannot be
	// decoded (bad magic, unsupported version, bad checksum, truncated) or
	// a snapshot file on disk is damaged.
	ErrCorruptSnapshot = errors.New("ha: corrupt job store snapshot")
)

// FencingToken identifies one leadership of the Raft group: the term in
// which a node became leader, and that node's id. Every command that
// changes the job store carries the token of the leader that proposes it,
// and every call the runtime makes on a leader's behalf should carry it
// too, so that a deposed leader can change nothing: the job store rejects
// a command whose token term differs from the term of the log entry that
// holds it.
//
// The zero FencingToken is held by no leader.
type FencingToken struct {
	// Term is the Raft term of the leadership.
	Term uint64 `msgpack:"t"`
	// Leader is the leader's node id.
	Leader string `msgpack:"l"`
}

// IsZero reports whether t is the zero token, which no leader holds.
func (t FencingToken) IsZero() bool { return t == FencingToken{} }

// String returns "term 7 leader jm-1", or "none" for the zero token.
func (t FencingToken) String() string {
	if t.IsZero() {
		return "none"
	}
	return fmt.Sprintf("term %d leader %s", t.Term, t.Leader)
}

// JobSpec is what a job is submitted with: everything another node needs
// to build the same JobGraph from its own job registry.
type JobSpec struct {
	// ID is the job's id, unique in the store. Required.
	ID string `msgpack:"id"`
	// Name is the job's name in the job registry. Required.
	Name string `msgpack:"name"`
	// Args are the arguments the job function is called with.
	Args []string `msgpack:"args,omitempty"`
	// Config is the job's parallelism and configuration, encoded by the
	// runtime (msgpack). The job store does not interpret it.
	Config []byte `msgpack:"cfg,omitempty"`
	// Status is the job's initial status (for example "CREATED"). Required;
	// the runtime owns the set of statuses.
	Status string `msgpack:"st"`
	// StartTime is when the job was submitted, in Unix milliseconds, so
	// that every later leader reports the same start; zero when unknown
	// (records written by binaries that did not keep it).
	StartTime int64 `msgpack:"t0,omitempty"`
}

// Validate reports whether s can be submitted: ID, Name and Status set.
func (s *JobSpec) Validate() error {
	switch {
	case s.ID == "":
		return fmt.Errorf("%w: empty job id", ErrInvalidJob)
	case s.Name == "":
		return fmt.Errorf("%w: job %q: empty registered name", ErrInvalidJob, s.ID)
	case s.Status == "":
		return fmt.Errorf("%w: job %q: empty status", ErrInvalidJob, s.ID)
	case s.StartTime < 0:
		return fmt.Errorf("%w: job %q: start time %d, expected Unix milliseconds >= 0", ErrInvalidJob, s.ID, s.StartTime)
	}
	return nil
}

// CheckpointPointer locates a job's completed checkpoint in checkpoint
// storage. The checkpoint's metadata and state stay in checkpoint storage;
// the job store holds only this pointer, as Flink's HA services keep
// pointers in ZooKeeper.
type CheckpointPointer struct {
	// ID is the checkpoint's id, >= 1. Zero means no checkpoint.
	ID int64 `msgpack:"id"`
	// Location is where the checkpoint's metadata is, in the terms of the
	// checkpoint storage (a directory, an object store prefix).
	Location string `msgpack:"loc"`
}

// IsZero reports whether p points to no checkpoint.
func (p CheckpointPointer) IsZero() bool { return p == CheckpointPointer{} }

// validate reports whether p can be committed.
func (p CheckpointPointer) validate(job string) error {
	if p.ID < 1 {
		return fmt.Errorf("%w: job %q: checkpoint id %d, expected >= 1", ErrInvalidJob, job, p.ID)
	}
	if p.Location == "" {
		return fmt.Errorf("%w: job %q: checkpoint %d has an empty location", ErrInvalidJob, job, p.ID)
	}
	return nil
}

// JobRecord is the job store's record of one job.
type JobRecord struct {
	JobSpec `msgpack:",inline"`
	// Latest points to the job's latest completed checkpoint; zero when
	// none has been committed.
	Latest CheckpointPointer `msgpack:"latest,omitempty"`
	// CheckpointCounter is the highest checkpoint id handed out by
	// NextCheckpointID or committed; the next id is one more. It is never
	// below Latest.ID.
	CheckpointCounter int64 `msgpack:"ctr,omitempty"`
	// Restarts counts the job's restarts so far, on every leader: its
	// restart strategy's and each takeover by a new leader that restarted
	// it. It never decreases.
	Restarts int64 `msgpack:"rst,omitempty"`
	// EndTime is when the job ended, in Unix milliseconds, as recorded
	// with its final status; zero while it runs or when unknown.
	EndTime int64 `msgpack:"end,omitempty"`
	// Revision is the index of the Raft log entry that last changed the
	// record.
	Revision uint64 `msgpack:"rev"`
}

// clone returns a deep copy of r that shares no memory with it.
func (r JobRecord) clone() JobRecord {
	r.Args = slices.Clone(r.Args)
	r.Config = slices.Clone(r.Config)
	return r
}

// validate reports whether r is consistent, as a decoded snapshot must be.
func (r *JobRecord) validate() error {
	if err := r.JobSpec.Validate(); err != nil {
		return err
	}
	if !r.Latest.IsZero() {
		if err := r.Latest.validate(r.ID); err != nil {
			return err
		}
	}
	if r.Restarts < 0 {
		return fmt.Errorf("%w: job %q: %d restarts, expected >= 0", ErrInvalidJob, r.ID, r.Restarts)
	}
	if r.EndTime < 0 {
		return fmt.Errorf("%w: job %q: end time %d, expected Unix milliseconds >= 0", ErrInvalidJob, r.ID, r.EndTime)
	}
	if r.CheckpointCounter < r.Latest.ID {
		return fmt.Errorf("%w: job %q: checkpoint counter %d below latest checkpoint %d",
			ErrInvalidJob, r.ID, r.CheckpointCounter, r.Latest.ID)
	}
	return nil
}
