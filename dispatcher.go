package flink

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/flinkgo/flink/checkpoint"
)

// JobSubmission asks the Dispatcher to run a registered job.
type JobSubmission struct {
	// Name is the registered job name.
	Name string
	// Args are passed to the job function.
	Args []string
	// Parallelism overrides the job's default parallelism when above 0.
	Parallelism int
	// SavepointPath starts the job from a savepoint; see
	// JobConfig.SavepointPath.
	SavepointPath string
	// AllowNonRestoredState skips savepoint state of operators the job does
	// not have.
	AllowNonRestoredState bool
}

// JobDetails describes a submitted job.
type JobDetails struct {
	ID     JobID
	Name   string
	Status JobStatus
	Start  time.Time
	// End is zero while the job runs.
	End time.Time
	// Vertices lists the job's tasks.
	Vertices []VertexDetails
}

// VertexDetails describes one vertex of a job.
type VertexDetails struct {
	ID          int
	Name        string
	Parallelism int
	// Subtasks are the current attempts of the vertex's subtasks.
	Subtasks []SubtaskDetails
}

// SubtaskDetails describes the current attempt of one subtask.
type SubtaskDetails struct {
	Subtask     int
	Attempt     int
	State       ExecutionState
	TaskManager ResourceID
}

// Dispatcher accepts jobs, starts a JobManager for each, and answers
// questions about them. It is the cluster's entry point.
type Dispatcher struct {
	registry *Registry
	graphs   *graphStore
	rmAddr   string
	// addrPrefix makes JobManager addresses reachable from other processes:
	// "host:port/" on a node, empty in a local cluster.
	addrPrefix string
	bind       *localResolver
	rpc        resolver
	cfg        jobManagerConfig
	log        *slog.Logger
	base       *slog.Logger // without the dispatcher's attributes, for JobManagers
	// store replicates the registered jobs and their checkpoint pointers
	// in HA mode (the Raft job store, with this leader's token); nil
	// without HA.
	store jobStore
	// attemptBase is the first attempt number of the jobs this dispatcher
	// starts: in HA mode it grows with the leader's term, so that attempts
	// of a new leader never collide with those of a deposed one that are
	// still winding down on TaskManagers.
	attemptBase int

	wg sync.WaitGroup
	mu struct {
		sync.Mutex
		jobs   map[JobID]*dispatchedJob
		closed bool
		// savepoints are the asynchronous savepoint requests, by
		// "<job>/<trigger id>".
		savepoints map[string]*SavepointOperation
	}
}

type dispatchedJob struct {
	jm     *JobManager
	start  time.Time
	end    time.Time
	done   chan struct{}
	result *JobResult
}

func newDispatcher(reg *Registry, graphs *graphStore, rmAddr, addrPrefix string, bind *localResolver, rpc resolver, cfg jobManagerConfig, log *slog.Logger) *Dispatcher {
	d := &Dispatcher{registry: reg, graphs: graphs, rmAddr: rmAddr, addrPrefix: addrPrefix, bind: bind, rpc: rpc, cfg: cfg, log: log.With("role", "dispatcher"), base: log}
	d.mu.jobs = make(map[JobID]*dispatchedJob)
	return d
}

// SubmitJob builds a registered job and starts it; it returns as soon as
// the job's JobManager runs.
func (d *Dispatcher) SubmitJob(ctx context.Context, s JobSubmission) (JobID, error) {
	g, err := d.buildSubmission(s)
	if err != nil {
		return "", err
	}
	return d.start(ctx, g, startOptions{sub: &s})
}

// startOptions says how a job starts.
type startOptions struct {
	// sub is the registered submission the graph was built from; nil for
	// a graph described on an Env.
	sub *JobSubmission
	// local: only TaskManagers of this process can run the job.
	local bool
	// recovered is set for a job a new leader takes over from the job
	// store: it keeps its id and restores from its latest checkpoint.
	recovered *recoveredJob
}

// buildSubmission builds the JobGraph of a registered job as submitted.
func (d *Dispatcher) buildSubmission(s JobSubmission) (*JobGraph, error) {
	if d.registry == nil {
		return nil, fmt.Errorf("%w: %q: the cluster has no job registry", ErrUnknownJob, s.Name)
	}
	if s.Parallelism < 0 {
		return nil, fmt.Errorf("%w: parallelism %d", ErrInvalidConfig, s.Parallelism)
	}
	cfg := DefaultJobConfig()
	if s.Parallelism > 0 {
		cfg.Parallelism = s.Parallelism
	}
	g, err := d.registry.Build(s.Name, s.Args, cfg)
	if err != nil {
		return nil, err
	}
	if s.SavepointPath != "" {
		g.Config.SavepointPath, g.Config.AllowNonRestoredState = s.SavepointPath, s.AllowNonRestoredState
	}
	return g, nil
}

// submitGraph starts a job described directly on an Env; only TaskManagers
// of this process can run it.
func (d *Dispatcher) submitGraph(ctx context.Context, g *JobGraph) (JobID, error) {
	return d.start(ctx, g, startOptions{local: true})
}

func (d *Dispatcher) start(ctx context.Context, g *JobGraph, opts startOptions) (JobID, error) {
	id := NewJobID()
	var restore *TaskRestore
	var err error
	var firstCheckpoint int64
	start := d.cfg.now()
	if rec := opts.recovered; rec != nil {
		id = rec.id
		firstCheckpoint = max(rec.counter, rec.latest.ID) + 1
		if !rec.start.IsZero() {
			start = rec.start
		}
	} else if restore, err = d.savepointRestore(ctx, g); err != nil {
		return "", err
	}
	addr := d.addrPrefix + "jobmanager/" + string(id)
	jm := newJobManager(id, addr, g, d.rmAddr, d.rpc, d.cfg, d.base)
	jm.initialRestore, jm.firstCheckpointID = restore, firstCheckpoint
	jm.setAttemptBase(d.attemptBase)
	jm.startTime = start
	if rec := opts.recovered; rec != nil {
		jm.restartBase = rec.restarts
	}
	replicated := d.store != nil && opts.sub != nil
	if replicated {
		jm.commit = commitFence(d.store, id)
		jm.onRestart = d.recordRestarts(id)
	}
	if err := jm.initCheckpoints(ctx); err != nil {
		return "", err
	}
	if rec := opts.recovered; rec != nil {
		// The checkpoint store is open: it tells what storage holds.
		if jm.initialRestore, err = d.recoveredRestore(ctx, g, rec, jm); err != nil {
			return "", err
		}
	}
	if replicated && opts.recovered == nil {
		// The job exists once the group has it: a leader that fails from
		// here on leaves it to the next one.
		if err := d.store.submit(ctx, id, *opts.sub, start); err != nil {
			return "", fmt.Errorf("flink: submitting job %q: %w", g.Name, err)
		}
	}
	j := &dispatchedJob{jm: jm, start: start, done: make(chan struct{})}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.closed {
		return "", ErrClosed
	}
	d.mu.jobs[id] = j
	if opts.local {
		d.graphs.put(id, g)
	}
	d.bind.bind(addr, jm)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		r := jm.run(context.Background())
		end := d.cfg.now()
		if replicated && !jm.deposed.Load() {
			d.recordEnd(id, r.Status, end, r.Restarts)
		}
		d.bind.unbind(addr)
		d.graphs.remove(id)
		d.mu.Lock()
		j.result, j.end = r, end
		d.mu.Unlock()
		close(j.done)
	}()
	return id, nil
}

// savepointRestore reads the savepoint a job starts from and matches it to
// the job's operators; nil when the job starts empty.
func (d *Dispatcher) savepointRestore(ctx context.Context, g *JobGraph) (*TaskRestore, error) {
	path := g.Config.SavepointPath
	if path == "" {
		return nil, nil
	}
	if d.cfg.storage == nil {
		return nil, fmt.Errorf("%w: job %q starts from savepoint %q", ErrNoCheckpointStorage, g.Name, path)
	}
	m, err := d.cfg.storage.ReadMetadata(ctx, checkpoint.SavepointLocation(path))
	if err != nil {
		return nil, fmt.Errorf("flink: job %q: reading savepoint %q: %w", g.Name, path, err)
	}
	return restoreFromMetadata(g, m, g.Config.AllowNonRestoredState)
}

// TriggerSavepoint takes a savepoint of a running job in a fresh directory
// inside target ("<target>/savepoint-<job>-<random>"; an empty target is
// the storage's default savepoint directory) and returns that directory.
// A target outside the storage's savepoint roots fails with
// checkpoint.ErrInvalidName. With stop, the job then ends as FINISHED.
func (d *Dispatcher) TriggerSavepoint(ctx context.Context, id JobID, target string, stop bool) (string, error) {
	j, err := d.job(id)
	if err != nil {
		return "", err
	}
	return j.jm.TriggerSavepoint(ctx, target, stop)
}

// CheckpointStats returns a job's checkpoint statistics; false when the
// cluster keeps no checkpoints.
func (d *Dispatcher) CheckpointStats(id JobID) (checkpoint.Stats, bool, error) {
	j, err := d.job(id)
	if err != nil {
		return checkpoint.Stats{}, false, err
	}
	st, ok := j.jm.CheckpointStats()
	return st, ok, nil
}

func (d *Dispatcher) job(id JobID) (*dispatchedJob, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	j, ok := d.mu.jobs[id]
	if !ok {
		return nil, fmt.Errorf("%w: no job with id %s", ErrUnknownJob, id)
	}
	return j, nil
}

// CancelJob cancels a running job. Cancelling a finished job is a no-op.
func (d *Dispatcher) CancelJob(ctx context.Context, id JobID) error {
	j, err := d.job(id)
	if err != nil {
		return err
	}
	j.jm.cancel()
	return nil
}

// JobResult waits for the job to end and returns its result.
func (d *Dispatcher) JobResult(ctx context.Context, id JobID) (*JobResult, error) {
	j, err := d.job(id)
	if err != nil {
		return nil, err
	}
	select {
	case <-j.done:
		return j.result, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// JobDetails describes one job.
func (d *Dispatcher) JobDetails(ctx context.Context, id JobID) (JobDetails, error) {
	j, err := d.job(id)
	if err != nil {
		return JobDetails{}, err
	}
	return d.details(id, j), nil
}

func (d *Dispatcher) details(id JobID, j *dispatchedJob) JobDetails {
	d.mu.Lock()
	end := j.end
	d.mu.Unlock()
	jd := JobDetails{ID: id, Name: j.jm.graph.Name, Status: j.jm.Status(), Start: j.start, End: end}
	j.jm.mu.Lock()
	defer j.jm.mu.Unlock()
	for _, v := range j.jm.graph.Vertices {
		vd := VertexDetails{ID: v.ID, Name: v.Name, Parallelism: v.Parallelism}
		for _, ev := range j.jm.mu.eg.Subtasks[v.ID] {
			vd.Subtasks = append(vd.Subtasks, SubtaskDetails{Subtask: ev.Subtask, Attempt: ev.ID.Attempt, State: ev.State, TaskManager: ev.Location})
		}
		jd.Vertices = append(jd.Vertices, vd)
	}
	return jd
}

// ListJobs describes every job, oldest first.
func (d *Dispatcher) ListJobs(ctx context.Context) ([]JobDetails, error) {
	d.mu.Lock()
	ids := make([]JobID, 0, len(d.mu.jobs))
	jobs := make(map[JobID]*dispatchedJob, len(d.mu.jobs))
	for id, j := range d.mu.jobs {
		ids = append(ids, id)
		jobs[id] = j
	}
	d.mu.Unlock()
	out := make([]JobDetails, 0, len(ids))
	for _, id := range ids {
		out = append(out, d.details(id, jobs[id]))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Start.Before(out[b].Start) })
	return out, nil
}

// depose stops every JobManager at once, as a leader that lost its
// leadership must: the jobs are not cancelled (the job store keeps them
// running for the next leader), their tasks are told to stop on a best
// effort basis, and nothing is recorded. It waits for the JobManagers.
func (d *Dispatcher) depose() {
	d.mu.Lock()
	d.mu.closed = true
	for _, j := range d.mu.jobs {
		j.jm.depose()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// close cancels every job and waits for their JobManagers.
func (d *Dispatcher) close() {
	d.mu.Lock()
	d.mu.closed = true
	for _, j := range d.mu.jobs {
		j.jm.cancel()
	}
	d.mu.Unlock()
	d.wg.Wait()
}
