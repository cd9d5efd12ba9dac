package flink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/ha"
)

// The Dispatcher's side of HA: registered jobs are replicated in the Raft
// job store before they start, their end is recorded there, completed
// checkpoints commit their pointer there before they are announced, and a
// new leader restarts every job the store holds as running from the
// checkpoint its pointer names.

// jobStore is where a leader's Dispatcher records its jobs. Every method
// may block until ctx ends and is safe for concurrent use.
type jobStore interface {
	// submit adds a job, submitted at start, before it starts.
	submit(ctx context.Context, id JobID, s JobSubmission, start time.Time) error
	// end records a job's final status, when it ended and its restarts
	// in all.
	end(ctx context.Context, id JobID, st JobStatus, at time.Time, restarts int) error
	// restarted records that a job has restarted restarts times in all.
	restarted(ctx context.Context, id JobID, restarts int) error
	// commitCheckpoint makes checkpoint checkpointID at location the
	// job's latest completed checkpoint.
	commitCheckpoint(ctx context.Context, id JobID, checkpointID int64, location string) error
	// outcomeUnknown reports whether err, returned by a method above,
	// leaves open whether the change took effect.
	outcomeUnknown(err error) bool
}

// raftJobStore is the jobStore of a Raft leader, whose commands carry the
// token of its leadership: once it is deposed they are all refused.
type raftJobStore struct {
	node *ha.RaftNode
	tok  ha.FencingToken
}

// jobConfig is what a replicated job record keeps of a submission besides
// its name and arguments.
type jobConfig struct {
	Parallelism           int    `msgpack:"p,omitempty"`
	SavepointPath         string `msgpack:"sp,omitempty"`
	AllowNonRestoredState bool   `msgpack:"anr,omitempty"`
}

func (s raftJobStore) submit(ctx context.Context, id JobID, sub JobSubmission, start time.Time) error {
	cfg, err := msgpack.Marshal(jobConfig{Parallelism: sub.Parallelism, SavepointPath: sub.SavepointPath, AllowNonRestoredState: sub.AllowNonRestoredState})
	if err != nil {
		return err
	}
	spec := ha.JobSpec{ID: string(id), Name: sub.Name, Args: sub.Args, Config: cfg, Status: string(JobRunning), StartTime: max(start.UnixMilli(), 0)}
	return fenceErr(s.node.SubmitJob(ctx, s.tok, spec))
}

func (s raftJobStore) end(ctx context.Context, id JobID, st JobStatus, at time.Time, restarts int) error {
	return fenceErr(s.node.EndJob(ctx, s.tok, string(id), string(st), at, int64(restarts)))
}

func (s raftJobStore) restarted(ctx context.Context, id JobID, restarts int) error {
	return fenceErr(s.node.RecordRestarts(ctx, s.tok, string(id), int64(restarts)))
}

func (s raftJobStore) commitCheckpoint(ctx context.Context, id JobID, checkpointID int64, location string) error {
	return fenceErr(s.node.CommitCheckpoint(ctx, s.tok, string(id), ha.CheckpointPointer{ID: checkpointID, Location: location}))
}

func (raftJobStore) outcomeUnknown(err error) bool { return errors.Is(err, ha.ErrOutcomeUnknown) }

// fenceErr marks the job store's refusals of a deposed leader with
// ErrStaleLeader.
func fenceErr(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range []error{ha.ErrNotLeader, ha.ErrStaleToken, ha.ErrRaftClosed} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", ErrStaleLeader, err)
		}
	}
	return err
}

// submissionOf decodes the submission a job record was made from.
func submissionOf(rec ha.JobRecord) (JobSubmission, error) {
	var cfg jobConfig
	if len(rec.Config) > 0 {
		if err := msgpack.Unmarshal(rec.Config, &cfg); err != nil {
			return JobSubmission{}, fmt.Errorf("flink: job %s in the job store: config: %w", rec.ID, err)
		}
	}
	return JobSubmission{Name: rec.Name, Args: rec.Args, Parallelism: cfg.Parallelism,
		SavepointPath: cfg.SavepointPath, AllowNonRestoredState: cfg.AllowNonRestoredState}, nil
}

// recoveredJob is a job a new leader takes over.
type recoveredJob struct {
	id JobID
	// start is when the job was submitted; zero if the store did not
	// keep it.
	start time.Time
	// restarts counts its restarts under earlier leaders and this
	// takeover.
	restarts int
	// latest points to its latest completed checkpoint; zero for none.
	latest ha.CheckpointPointer
	// counter is the highest checkpoint id used for it so far.
	counter int64
}

// recoveredRestore returns the state a recovered job resumes from: its
// latest completed checkpoint, which is the one the job store's pointer
// names, or a newer one whose commit's outcome was unknown to the leader
// that took it (its metadata is complete in checkpoint storage, and no
// sink committed anything after it, since sinks commit only once the
// pointer is committed, so resuming from it is exact too; the checkpoint
// store, just opened, keeps only the newest). Checkpoint storage that
// holds nothing as new as the pointer is an error, never an empty start.
// Without a pointer or checkpoint the job starts as submitted (from its
// savepoint, if any).
func (d *Dispatcher) recoveredRestore(ctx context.Context, g *JobGraph, rec *recoveredJob, jm *JobManager) (*TaskRestore, error) {
	var latest checkpoint.CompletedCheckpoint
	var ok bool
	if jm.ckpt != nil {
		latest, ok = jm.ckpt.coord.Store().Latest() // the store is safe for concurrent use
	}
	switch {
	case ok && latest.ID >= rec.latest.ID:
		if latest.ID > rec.latest.ID {
			d.log.Info("resuming from a checkpoint newer than the job store's pointer: its commit's outcome was unknown",
				"job", rec.id, "checkpoint", latest.ID, "pointer", rec.latest.ID)
		}
		return restoreFromMetadata(g, latest.Metadata, false)
	case rec.latest.IsZero():
		return d.savepointRestore(ctx, g)
	case jm.ckpt == nil:
		return nil, fmt.Errorf("%w: job %q resumes from checkpoint %d (%s)", ErrNoCheckpointStorage, g.Name, rec.latest.ID, rec.latest.Location)
	}
	found := "none"
	if ok {
		found = fmt.Sprintf("checkpoint %d", latest.ID)
	}
	return nil, fmt.Errorf("%w: job %q (%s): the job store names checkpoint %d (%s) as its latest completed one, but checkpoint storage holds %s as its latest",
		checkpoint.ErrRestore, g.Name, rec.id, rec.latest.ID, rec.latest.Location, found)
}

// recoverJobs restarts every job of the store that has not ended, each
// from its latest completed checkpoint. A job that cannot be restarted is
// recorded as FAILED; the others go on.
func (d *Dispatcher) recoverJobs(ctx context.Context, recs []ha.JobRecord) {
	for _, rec := range recs {
		if JobStatus(rec.Status).IsTerminal() {
			continue
		}
		id := JobID(rec.ID)
		err := d.recoverJob(ctx, rec)
		if err == nil {
			d.log.Info("job recovered", "job", id, "name", rec.Name, "checkpoint", rec.Latest.ID)
			continue
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrStaleLeader) {
			return // deposed meanwhile: the next leader recovers them
		}
		d.log.Error("job cannot be recovered", "job", id, "name", rec.Name, "err", err)
		d.recordEnd(id, JobFailed, d.cfg.now(), int(rec.Restarts))
	}
}

// recoverJob restarts a job of the store under this leader. The takeover
// restarts the job, so it counts as a restart, as in Flink; the count is
// in the store before the job runs again.
func (d *Dispatcher) recoverJob(ctx context.Context, rec ha.JobRecord) error {
	sub, err := submissionOf(rec)
	if err != nil {
		return err
	}
	g, err := d.buildSubmission(sub)
	if err != nil {
		return err
	}
	restarts := int(rec.Restarts) + 1
	if err := d.store.restarted(ctx, JobID(rec.ID), restarts); err != nil {
		return fmt.Errorf("flink: job %q (%s): recording the takeover's restart: %w", rec.Name, rec.ID, err)
	}
	_, err = d.start(ctx, g, startOptions{sub: &sub, recovered: &recoveredJob{id: JobID(rec.ID), start: unixMillis(rec.StartTime),
		restarts: restarts, latest: rec.Latest, counter: rec.CheckpointCounter}})
	return err
}

// unixMillis returns the time of ms Unix milliseconds; zero for 0.
func unixMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// recordEndTimeout bounds recording a job's end or restarts in the job
// store.
const recordEndTimeout = 10 * time.Second

// recordEnd records a job's final status, end time and restarts in the job
// store; a deposed leader's record is refused, which is right: the job
// goes on elsewhere.
func (d *Dispatcher) recordEnd(id JobID, st JobStatus, at time.Time, restarts int) {
	ctx, cancel := context.WithTimeout(context.Background(), recordEndTimeout)
	defer cancel()
	if err := d.store.end(ctx, id, st, at, restarts); err != nil {
		d.log.Warn("recording the job's end in the job store failed", "job", id, "status", st, "err", err)
	}
}

// recordRestarts returns the function a replicated job's JobManager calls
// when the job restarts, which records its restarts in all in the job
// store, so that a later leader reports them. A failure is logged: a
// deposed leader's record is refused, and the next leader counts its
// takeover anyway.
func (d *Dispatcher) recordRestarts(id JobID) func(restarts int) {
	return func(restarts int) {
		ctx, cancel := context.WithTimeout(context.Background(), recordEndTimeout)
		defer cancel()
		if err := d.store.restarted(ctx, id, restarts); err != nil {
			d.log.Warn("recording the job's restart in the job store failed", "job", id, "restarts", restarts, "err", err)
		}
	}
}

// archiveJobs lists the jobs of the store that ended before this leader
// took over, so that the REST API and JobResult still answer for them.
// Their name, arguments, status, start and end times and restarts are
// replicated; their record counts are unknown. The times of a record
// written by a binary that did not keep them are the takeover's.
func (d *Dispatcher) archiveJobs(recs []ha.JobRecord) {
	now := d.cfg.now()
	orNow := func(t time.Time) time.Time {
		if t.IsZero() {
			return now
		}
		return t
	}
	for _, rec := range recs {
		st := JobStatus(rec.Status)
		if !st.IsTerminal() {
			continue
		}
		sub, err := submissionOf(rec)
		if err != nil {
			continue
		}
		g, err := d.buildSubmission(sub)
		if err != nil {
			continue
		}
		id := JobID(rec.ID)
		jm := newJobManager(id, "", g, d.rmAddr, d.rpc, d.cfg, d.base)
		jm.mu.status = st
		start, end := orNow(unixMillis(rec.StartTime)), orNow(unixMillis(rec.EndTime))
		res := &JobResult{ID: id, Name: g.Name, Status: st, Restarts: int(rec.Restarts), Duration: end.Sub(start)}
		if st != JobFinished {
			res.Err = fmt.Errorf("flink: job %q ended %s under an earlier leader", g.Name, st)
		}
		done := make(chan struct{})
		close(done)
		d.mu.Lock()
		if _, ok := d.mu.jobs[id]; !ok && !d.mu.closed {
			d.mu.jobs[id] = &dispatchedJob{jm: jm, start: start, end: end, done: done, result: res}
		}
		d.mu.Unlock()
	}
}
