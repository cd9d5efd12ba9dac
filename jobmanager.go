package flink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/rest"
)

// JobStatus is the status of a job, as Flink's JobStatus: the REST API's
// type, so that the two cannot drift apart.
type JobStatus = rest.JobStatus

// The job statuses.
const (
	JobCreated    = rest.JobCreated
	JobRunning    = rest.JobRunning
	JobFailing    = rest.JobFailing
	JobFailed     = rest.JobFailed
	JobCancelling = rest.JobCancelling
	JobCanceled   = rest.JobCanceled
	JobFinished   = rest.JobFinished
	JobRestarting = rest.JobRestarting
	// JobSuspended: the JobManager stopped because its node lost the
	// leadership (HA mode); the job goes on under the next leader.
	JobSuspended = rest.JobSuspended
)

// JobResult is what a finished, failed or cancelled job leaves behind.
type JobResult struct {
	ID       JobID
	Name     string
	Status   JobStatus
	Duration time.Duration
	// Restarts counts restarts of the whole job.
	Restarts int
	// Operators holds every operator's record counts summed over its
	// subtasks, in topological order.
	Operators []OperatorResult
	// Vertices holds every vertex's input and output summed over its
	// subtasks, in topological order.
	Vertices []VertexResult
	// Checkpoints counts the job's checkpoints and savepoints over all its
	// attempts; zero without checkpoint storage, and for a job that ended
	// under an earlier leader.
	Checkpoints CheckpointCounts
	// Err is why the job failed or was cancelled; nil when it finished.
	Err error
}

// CheckpointCounts are a job's checkpoint totals, as the counts and the
// latest completed checkpoint of Flink's checkpoint statistics
// (/jobs/:id/checkpoints). Savepoints count with checkpoints.
type CheckpointCounts struct {
	// Triggered counts checkpoints and savepoints triggered.
	Triggered int
	// Completed counts those completed: metadata written and committed.
	Completed int
	// Failed counts those declined, expired, aborted or failed to
	// complete.
	Failed int
	// Restored counts the job's restores from a checkpoint.
	Restored int
	// LatestCompletedID is the id of the newest completed checkpoint (not
	// savepoint); 0 when none completed.
	LatestCompletedID int64
	// LatestCompletedPath is where the checkpoint storage keeps it: for a
	// file storage, the directory a job can start from (WithSavepoint)
	// while the checkpoint is retained.
	LatestCompletedPath string
}

// checkpointCounts summarizes a coordinator's statistics.
func checkpointCounts(s checkpoint.Stats) CheckpointCounts {
	c := CheckpointCounts{Triggered: int(s.Counts.Triggered), Completed: int(s.Counts.Completed),
		Failed: int(s.Counts.Failed), Restored: int(s.Counts.Restored)}
	if l := s.LatestCompleted; l != nil {
		c.LatestCompletedID, c.LatestCompletedPath = l.ID, l.ExternalPath
	}
	return c
}

// OperatorResult is one operator's record counts over all its subtasks.
type OperatorResult struct {
	Vertex      int
	Name        string
	Parallelism int
	RecordsIn   int64
	RecordsOut  int64
}

// VertexResult is one vertex's input and output over all its subtasks.
type VertexResult struct {
	Vertex      int
	Name        string
	Parallelism int
	// RecordsIn are the records read by the chain's head and RecordsOut
	// those written by its tail; a source head reads what it emits and a
	// sink tail writes what it receives, as Flink counts them.
	RecordsIn, RecordsOut int64
	// BytesIn and BytesOut are the serialized bytes read and written over
	// the network exchange; 0 over the in-process exchange, which passes
	// Go values.
	BytesIn, BytesOut int64
	// BackPressured and Idle are the subtasks' times waiting for output
	// buffers and for input, summed.
	BackPressured, Idle time.Duration
}

// Operator returns the counts of the first operator named name.
func (r *JobResult) Operator(name string) (OperatorResult, bool) {
	for _, o := range r.Operators {
		if o.Name == name {
			return o, true
		}
	}
	return OperatorResult{}, false
}

// cancelCallTimeout bounds one cancellation call to a TaskManager.
const cancelCallTimeout = 2 * time.Second

// jobManagerConfig holds what a JobManager needs besides its graph.
type jobManagerConfig struct {
	slotRequestTimeout time.Duration
	// heartbeatInterval is how often the JobManager asks the TaskManagers
	// running its subtasks for their deployment reports, and
	// heartbeatTimeout how long one may go unanswered before the
	// JobManager gives the TaskManager up as lost; zero means 1 s and 10 s.
	heartbeatInterval, heartbeatTimeout time.Duration
	// storage holds checkpoints and savepoints; nil disables them.
	storage checkpoint.Storage
	now     func() time.Time
	rnd     func() float64
}

// JobManager runs one job: it expands the JobGraph into an ExecutionGraph,
// gets slots through the ResourceManager, deploys subtasks to
// TaskManagers, tracks their states, cancels the rest when one fails, and
// restarts the job as its restart strategy allows.
type JobManager struct {
	id     JobID
	addr   string
	graph  *JobGraph
	rmAddr string
	rpc    resolver
	cfg    jobManagerConfig
	log    *slog.Logger

	calls    sync.WaitGroup // calls in flight to TaskManagers
	changed  chan struct{}  // signalled on every state change
	cancelCh chan struct{}
	cancelMu sync.Once

	// ckpt drives checkpoints; nil when the cluster has no storage.
	ckpt *checkpointDriver
	// initialRestore is the savepoint the job starts from, if any.
	initialRestore *TaskRestore
	// firstCheckpointID is the least id of the job's next checkpoint; 0
	// lets the checkpoint store decide.
	firstCheckpointID int64
	// commit, if set, commits a completed checkpoint's pointer to the job
	// store before the checkpoint is announced (HA mode).
	commit func(ctx context.Context, m *checkpoint.Metadata) error
	// deposed is set (and deposedCh closed) when the leader that runs the
	// JobManager lost its leadership: the JobManager stops at once and
	// records nothing.
	deposed     atomic.Bool
	deposedCh   chan struct{}
	deposedOnce sync.Once

	// startTime, if set, is when the job was submitted; a job a new leader
	// took over keeps its first start. Zero means when run starts.
	startTime time.Time
	// restartBase counts the job's restarts before this JobManager: under
	// earlier leaders, and the takeover that started it.
	restartBase int
	// onRestart, if set, is called with the job's restarts in all
	// (restartBase included) each time the job restarts, before it is
	// deployed again; in HA mode it records them in the job store.
	onRestart func(restarts int)

	mu struct {
		sync.Mutex
		eg       *ExecutionGraph
		pool     *SlotPool
		tms      map[ResourceID]TaskManagerLocation
		status   JobStatus
		failure  error // the first failure of the current attempt
		metrics  map[ExecutionAttemptID]*TaskMetrics
		restarts int
		started  time.Time
		// slotsLost is set when a TaskManager is lost, so that a pending
		// slot request is made again.
		slotsLost bool
		done      bool
		// restore is the state the next deployment starts from.
		restore *TaskRestore
		// stopped is set by stop-with-savepoint: the cancellation that
		// follows ends the job as FINISHED.
		stopped bool
	}
}

func newJobManager(id JobID, addr string, g *JobGraph, rmAddr string, rpc resolver, cfg jobManagerConfig, log *slog.Logger) *JobManager {
	jm := &JobManager{id: id, addr: addr, graph: g, rmAddr: rmAddr, rpc: rpc, cfg: cfg,
		log:     log.With("role", "jobmanager", "job", id, "name", g.Name),
		changed: make(chan struct{}, 1), cancelCh: make(chan struct{}), deposedCh: make(chan struct{})}
	jm.mu.eg = NewExecutionGraph(id, g)
	jm.mu.pool = NewSlotPool()
	jm.mu.tms = make(map[ResourceID]TaskManagerLocation)
	jm.mu.metrics = make(map[ExecutionAttemptID]*TaskMetrics)
	jm.mu.status = JobCreated
	return jm
}

func (jm *JobManager) signal() {
	select {
	case jm.changed <- struct{}{}:
	default:
	}
}

// cancel asks the job to stop; run then returns ErrJobCanceled.
func (jm *JobManager) cancel() { jm.cancelMu.Do(func() { close(jm.cancelCh) }) }

// depose stops the JobManager of a leader that lost its leadership: it
// deploys and completes nothing more, tells its tasks to stop without
// waiting for them, and frees nothing (the TaskManagers free the slots of
// superseded leaders themselves).
func (jm *JobManager) depose() {
	jm.deposed.Store(true)
	jm.deposedOnce.Do(func() { close(jm.deposedCh) })
	jm.cancel()
}

// setAttemptBase numbers the job's first attempt base (see
// Dispatcher.attemptBase). Called before run.
func (jm *JobManager) setAttemptBase(base int) {
	if base == 0 {
		return
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	jm.mu.eg.Attempt = base
	for _, ev := range jm.mu.eg.All() {
		ev.ID.Attempt = base
	}
}

// Status returns the job's current status.
func (jm *JobManager) Status() JobStatus {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	return jm.mu.status
}

func (jm *JobManager) setStatus(s JobStatus) {
	jm.mu.Lock()
	jm.mu.status = s
	jm.mu.Unlock()
	jm.log.Info("job status", "status", s)
}

// OfferSlots implements JobManagerGateway.
func (jm *JobManager) OfferSlots(ctx context.Context, tm TaskManagerLocation, offers []SlotOffer) ([]SlotOffer, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if jm.mu.done {
		return nil, nil
	}
	jm.mu.tms[tm.ID] = tm
	accepted := jm.mu.pool.Offer(offers)
	jm.signal()
	return accepted, nil
}

// UpdateTaskExecutionState implements JobManagerGateway.
func (jm *JobManager) UpdateTaskExecutionState(ctx context.Context, s TaskExecutionState) error {
	if s.EndOfData {
		jm.mu.Lock()
		ev := jm.mu.eg.Lookup(s.ID)
		current := ev != nil && ev.State == Running
		jm.mu.Unlock()
		if current && jm.ckpt != nil {
			jm.ckpt.sourceEnded(s.ID)
		}
		return nil
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	ev := jm.mu.eg.Lookup(s.ID)
	if ev == nil {
		return nil // an attempt of an earlier restart
	}
	if s.State == Running && ev.State != Deploying {
		// A periodic metrics report; one that crossed the task's
		// cancellation or end changes nothing.
		if s.Metrics != nil && (ev.State == Running || ev.State == Canceling) {
			jm.mu.metrics[s.ID] = s.Metrics
		}
		return nil
	}
	if s.Metrics != nil {
		jm.mu.metrics[s.ID] = s.Metrics
	}
	if ev.State == s.State {
		return nil
	}
	if err := ev.Transition(s.State); err != nil {
		jm.log.Warn("state report refused", "err", err)
		return err
	}
	if s.State == Failed {
		ev.Failure = s.Err
		if ev.Failure == nil {
			ev.Failure = fmt.Errorf("flink: task %s failed without an error", ev.TaskName())
		}
		if jm.mu.failure == nil {
			jm.mu.failure = ev.Failure
		}
	}
	if s.State == Running && jm.ckpt != nil {
		// The checkpoint driver triggers only while every subtask runs: a
		// final checkpoint that its exhausted sources asked for before this
		// subtask ran is due now, not at the next periodic trigger.
		jm.ckpt.signal()
	}
	jm.signal()
	return nil
}

// NotifyTaskManagerLost implements JobManagerGateway: the subtasks on tm
// fail, and its slots leave the pool.
func (jm *JobManager) NotifyTaskManagerLost(ctx context.Context, tm ResourceID, cause error) error {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	jm.mu.pool.RemoveTaskManager(tm)
	delete(jm.mu.tms, tm)
	jm.mu.slotsLost = true
	for _, ev := range jm.mu.eg.All() {
		if ev.Location != tm || ev.State.IsTerminal() || ev.State == Created {
			continue
		}
		err := newTaskError(ev.Vertex.Name, ev.Subtask, ev.ID.Attempt, fmt.Errorf("task manager %s lost: %w", tm, cause))
		if ev.Transition(Failed) == nil {
			ev.Failure = err
			jm.mu.failure = firstErr(jm.mu.failure, err)
		}
	}
	jm.signal()
	return nil
}

// AcknowledgeCheckpoint implements JobManagerGateway.
func (jm *JobManager) AcknowledgeCheckpoint(ctx context.Context, id ExecutionAttemptID, checkpointID int64, ack checkpoint.TaskAck) error {
	if jm.ckpt == nil || !jm.isCurrent(id) {
		return nil // an attempt that was replaced: its state is discarded with the checkpoint
	}
	return jm.ckpt.acknowledge(id, checkpointID, ack)
}

// DeclineCheckpoint implements JobManagerGateway.
func (jm *JobManager) DeclineCheckpoint(ctx context.Context, id ExecutionAttemptID, checkpointID int64, reason error) error {
	if jm.ckpt == nil || !jm.isCurrent(id) {
		return nil
	}
	jm.ckpt.decline(id, checkpointID, reason)
	return nil
}

// isCurrent reports whether id is the current attempt of its subtask.
func (jm *JobManager) isCurrent(id ExecutionAttemptID) bool {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	ev := jm.mu.eg.Lookup(id)
	return ev != nil && ev.ID == id
}

// allRunning reports whether every subtask of the current attempt runs.
func (jm *JobManager) allRunning() bool {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	return jm.mu.status == JobRunning && jm.mu.failure == nil && jm.mu.eg.AllIn(Running)
}

// savepointBlocker says why no savepoint can be taken of the job now:
// ErrJobEnding once every source subtask of the running attempt read all
// its input or a subtask finished (the job ends by itself; asking again
// cannot succeed), ErrJobNotRunning while the job is not running
// (deploying or restarting: ask again; or ended). Nil when every subtask
// runs.
func (jm *JobManager) savepointBlocker() error {
	jm.mu.Lock()
	status, failing, running, finished := jm.mu.status, jm.mu.failure != nil, 0, 0
	all := jm.mu.eg.All()
	for _, ev := range all {
		switch ev.State {
		case Running:
			running++
		case Finished:
			finished++
		}
	}
	jm.mu.Unlock()
	var ending error
	if jm.ckpt != nil {
		ending = jm.ckpt.ending()
	}
	switch {
	case status == JobRunning && !failing && ending != nil:
		return ending
	case status == JobRunning && !failing && finished > 0:
		return fmt.Errorf("%w: job %q: %d of its %d subtasks finished; a savepoint cannot cover them",
			ErrJobEnding, jm.graph.Name, finished, len(all))
	case status != JobRunning || failing || running < len(all):
		if failing && status == JobRunning {
			status = JobFailing
		}
		return fmt.Errorf("%w: job %q is %s with %d of %d subtasks running; savepoints need every subtask running",
			ErrJobNotRunning, jm.graph.Name, status, running, len(all))
	}
	return nil
}

// failJob fails the current attempt with err; the job restarts as its
// strategy allows.
func (jm *JobManager) failJob(err error) {
	jm.mu.Lock()
	jm.mu.failure = firstErr(jm.mu.failure, err)
	jm.mu.Unlock()
	jm.signal()
}

// taskTarget is the current attempt of a subtask and its TaskManager's
// address.
type taskTarget struct {
	id   ExecutionAttemptID
	addr string
}

// taskTargets finds the current attempts of subtasks ts.
func (jm *JobManager) taskTargets(ts []checkpoint.TaskID) []taskTarget {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	out := make([]taskTarget, 0, len(ts))
	for _, t := range ts {
		if t.Vertex < 0 || t.Vertex >= len(jm.mu.eg.Subtasks) || t.Subtask < 0 || t.Subtask >= len(jm.mu.eg.Subtasks[t.Vertex]) {
			continue
		}
		ev := jm.mu.eg.Subtasks[t.Vertex][t.Subtask]
		out = append(out, taskTarget{ev.ID, jm.mu.tms[ev.Location].Address})
	}
	return out
}

// callTask calls the current attempt of subtask t on its TaskManager, in
// the background.
func (jm *JobManager) callTask(t checkpoint.TaskID, f func(ctx context.Context, tm TaskManagerGateway, id ExecutionAttemptID) error) {
	jm.mu.Lock()
	if t.Vertex < 0 || t.Vertex >= len(jm.mu.eg.Subtasks) || t.Subtask < 0 || t.Subtask >= len(jm.mu.eg.Subtasks[t.Vertex]) {
		jm.mu.Unlock()
		return
	}
	ev := jm.mu.eg.Subtasks[t.Vertex][t.Subtask]
	id, addr := ev.ID, jm.mu.tms[ev.Location].Address
	jm.mu.Unlock()
	jm.calls.Add(1)
	go func() {
		defer jm.calls.Done()
		ctx, cancel := context.WithTimeout(context.Background(), defaultCallTimeout)
		defer cancel()
		tm, err := jm.rpc.taskManager(addr)
		if err == nil {
			err = f(ctx, tm, id)
		}
		if err != nil {
			jm.log.Debug("call to task failed", "task", id, "err", err)
		}
	}()
}

// TriggerSavepoint takes a savepoint of the running job in a fresh
// directory inside target, "<target>/savepoint-<job>-<random>" as Flink
// names it, and returns that directory. An empty target is the checkpoint
// storage's default savepoint directory; one outside the storage's
// savepoint roots fails with checkpoint.ErrInvalidName. With stop, the job
// then ends, FINISHED, as Flink's stop-with-savepoint.
func (jm *JobManager) TriggerSavepoint(ctx context.Context, target string, stop bool) (string, error) {
	loc, err := jm.prepareSavepoint(ctx, target)
	if err != nil {
		return "", err
	}
	return jm.takeSavepoint(ctx, loc, stop)
}

// prepareSavepoint checks that the job can take a savepoint now and makes
// the savepoint's fresh directory in target.
func (jm *JobManager) prepareSavepoint(ctx context.Context, target string) (checkpoint.Location, error) {
	if jm.ckpt == nil {
		return checkpoint.Location{}, fmt.Errorf("%w: cannot take a savepoint of job %q", ErrNoCheckpointStorage, jm.graph.Name)
	}
	if err := jm.savepointBlocker(); err != nil {
		return checkpoint.Location{}, err
	}
	return jm.ckpt.initSavepoint(ctx, target)
}

// takeSavepoint takes the savepoint prepared at loc and waits for it.
func (jm *JobManager) takeSavepoint(ctx context.Context, loc checkpoint.Location, stop bool) (string, error) {
	path, err := jm.ckpt.triggerSavepoint(ctx, loc, stop)
	if err != nil {
		return "", err
	}
	if stop {
		jm.mu.Lock()
		jm.mu.stopped = true
		jm.mu.Unlock()
		jm.cancel()
	}
	return path, nil
}

// CheckpointStats returns the job's checkpoint statistics; false when the
// cluster keeps no checkpoints.
func (jm *JobManager) CheckpointStats() (checkpoint.Stats, bool) {
	if jm.ckpt == nil {
		return checkpoint.Stats{}, false
	}
	return jm.ckpt.stats(), true
}

// run executes the job to its end and returns its result; the error is the
// job's failure (or ErrJobCanceled), also in the result.
func (jm *JobManager) run(ctx context.Context) *JobResult {
	jm.mu.Lock()
	jm.mu.started = jm.startTime
	if jm.mu.started.IsZero() {
		jm.mu.started = jm.cfg.now()
	}
	jm.mu.restore = jm.initialRestore
	jm.mu.Unlock()
	jm.setStatus(JobRunning)
	if jm.ckpt != nil {
		go jm.ckpt.run()
	}
	hbCtx, stopHeartbeats := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		jm.heartbeatTaskManagers(hbCtx)
	}()
	status, err := jm.execute(ctx)
	stopHeartbeats()
	<-hbDone
	if jm.deposed.Load() && status != JobFinished {
		status = JobSuspended
		err = fmt.Errorf("%w: job %q suspended: this node lost its leadership", ErrStaleLeader, jm.graph.Name)
	}
	if jm.ckpt != nil {
		jm.ckpt.close()
	}
	jm.calls.Wait()
	if !jm.deposed.Load() {
		jm.release()
	}
	jm.setStatus(status)
	return jm.result(status, err)
}

// initCheckpoints opens the job's checkpoint store when the cluster has
// checkpoint storage; run then starts triggering checkpoints. It is called
// before run, so that a job whose checkpoints cannot work is refused.
func (jm *JobManager) initCheckpoints(ctx context.Context) error {
	if jm.cfg.storage == nil {
		if jm.graph.Config.Checkpointing.Enabled() {
			return fmt.Errorf("%w: job %q takes checkpoints every %v", ErrNoCheckpointStorage, jm.graph.Name, jm.graph.Config.Checkpointing.Interval)
		}
		return nil
	}
	d, err := newCheckpointDriver(ctx, jm, jm.cfg.storage)
	if err != nil {
		return err
	}
	jm.ckpt = d
	return nil
}

func (jm *JobManager) execute(ctx context.Context) (JobStatus, error) {
	tracker := newRestartTracker(jm.graph.Config.restartStrategy(), jm.cfg.rnd)
	if err := jm.acquireSlots(ctx); err != nil {
		if errors.Is(err, ErrJobCanceled) {
			return JobCanceled, err
		}
		return JobFailed, err
	}
	for {
		if err := jm.checkStorage(); err != nil {
			// A setting is missing: restarting would only fail again.
			return JobFailed, err
		}
		jm.deploy(ctx)
		outcome, err := jm.awaitEnd(ctx)
		switch outcome {
		case Finished:
			return JobFinished, nil
		case Canceled:
			if jm.deposed.Load() {
				jm.cancelAll(ctx) // best effort: TaskManagers stop them anyway once they follow the new leader
				return JobSuspended, fmt.Errorf("%w: job %q suspended: this node lost its leadership", ErrStaleLeader, jm.graph.Name)
			}
			jm.setStatus(JobCancelling)
			jm.cancelAll(ctx)
			jm.awaitTerminal()
			jm.mu.Lock()
			stopped := jm.mu.stopped
			jm.mu.Unlock()
			if stopped {
				return JobFinished, nil
			}
			return JobCanceled, ErrJobCanceled
		}
		jm.setStatus(JobFailing)
		jm.cancelAll(ctx)
		jm.awaitTerminal()
		delay, ok := tracker.onFailure(jm.cfg.now())
		if !ok {
			return JobFailed, err
		}
		jm.log.Info("restarting job", "delay", delay, "cause", err, "strategy", jm.graph.Config.restartStrategy())
		jm.setStatus(JobRestarting)
		if !jm.wait(ctx, delay) {
			return JobCanceled, ErrJobCanceled
		}
		jm.mu.Lock()
		prev := jm.mu.eg.Attempt
		if err := jm.mu.eg.Reset(); err != nil {
			jm.mu.Unlock()
			return JobFailed, err
		}
		jm.mu.failure = nil
		jm.mu.restarts++
		restarts := jm.restartBase + jm.mu.restarts
		jm.mu.Unlock()
		if jm.onRestart != nil {
			jm.onRestart(restarts)
		}
		jm.releasePartitions(prev)
		if jm.ckpt != nil {
			jm.ckpt.onRestart(err)
			restore, rerr := jm.ckpt.latest(ctx)
			if rerr != nil {
				return JobFailed, rerr
			}
			jm.mu.Lock()
			if restore != nil {
				jm.mu.restore = restore
			}
			jm.mu.Unlock()
		}
		if err := jm.acquireSlots(ctx); err != nil {
			if errors.Is(err, ErrJobCanceled) {
				return JobCanceled, err
			}
			return JobFailed, err
		}
		jm.setStatus(JobRunning)
	}
}

// wait sleeps for d unless the job is cancelled first.
func (jm *JobManager) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-jm.cancelCh:
	case <-ctx.Done():
	}
	return false
}

// acquireSlots asks the ResourceManager for the slots the job needs and
// waits for them to be offered, up to the slot request timeout.
func (jm *JobManager) acquireSlots(ctx context.Context) error {
	need := jm.graph.SlotsNeeded()
	jm.mu.Lock()
	missing := need - jm.mu.pool.Len()
	jm.mu.Unlock()
	if missing <= 0 {
		return nil
	}
	rm, err := jm.rpc.resourceManager(jm.rmAddr)
	if err != nil {
		return err
	}
	request := func(n int) error {
		ctx, cancel := context.WithTimeout(ctx, defaultCallTimeout)
		defer cancel()
		if err := rm.RequestSlots(ctx, SlotRequest{Job: jm.id, JobManager: jm.addr, Count: n}); err != nil {
			return fmt.Errorf("flink: requesting slots: %w", err)
		}
		return nil
	}
	jm.mu.Lock()
	jm.mu.slotsLost = false
	jm.mu.Unlock()
	if err := request(missing); err != nil {
		return err
	}
	timeout := time.NewTimer(jm.cfg.slotRequestTimeout)
	defer timeout.Stop()
	for {
		jm.mu.Lock()
		have, lost := jm.mu.pool.Len(), jm.mu.slotsLost
		jm.mu.slotsLost = false
		jm.mu.Unlock()
		if have >= need {
			return nil
		}
		if lost {
			// A TaskManager died with slots promised to us: ask anew for
			// what is still missing.
			cctx, cancel := context.WithTimeout(ctx, defaultCallTimeout)
			rm.CancelSlotRequests(cctx, jm.id)
			cancel()
			if err := request(need - have); err != nil {
				return err
			}
		}
		select {
		case <-jm.changed:
		case <-timeout.C:
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultCallTimeout)
			rm.CancelSlotRequests(cctx, jm.id)
			total, free, _ := rm.SlotCounts(cctx)
			cancel()
			return fmt.Errorf("%w: job %q needs %d slots; after %v it holds %d, and the cluster has %d slots (%d free)",
				ErrNotEnoughSlots, jm.graph.Name, need, jm.cfg.slotRequestTimeout, have, total, free)
		case <-jm.cancelCh:
			return ErrJobCanceled
		case <-ctx.Done():
			return ErrJobCanceled
		}
	}
}

// deploy schedules every subtask of the current attempt into its slot.
func (jm *JobManager) deploy(ctx context.Context) {
	if jm.deposed.Load() {
		return
	}
	jm.mu.Lock()
	ds := jm.deploymentsLocked()
	jm.mu.Unlock()
	for _, d := range ds {
		tm, err := jm.rpc.taskManager(d.addr)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, defaultCallTimeout)
			err = tm.SubmitTask(cctx, d.tdd)
			cancel()
		}
		if err != nil {
			jm.UpdateTaskExecutionState(ctx, TaskExecutionState{ID: d.tdd.ID, State: Failed,
				Err: newTaskError(d.ev.Vertex.Name, d.ev.Subtask, d.tdd.ID.Attempt, fmt.Errorf("deploying to task manager %s: %w", d.ev.Location, err))})
		}
	}
}

// deployment is one subtask's descriptor and the RPC address of the
// TaskManager it goes to.
type deployment struct {
	ev   *ExecutionVertex
	addr string
	tdd  TaskDeploymentDescriptor
}

// deploymentsLocked assigns every subtask of the current attempt a slot,
// moves it to DEPLOYING and returns its descriptor; when the slots do not
// suffice, every subtask fails instead. It does no I/O.
func (jm *JobManager) deploymentsLocked() []deployment {
	assign, err := AssignSlots(jm.graph, jm.mu.pool.Slots())
	if err != nil {
		for _, ev := range jm.mu.eg.All() {
			ev.Transition(Failed)
			ev.Failure = err
			jm.mu.failure = firstErr(jm.mu.failure, err)
		}
		return nil
	}
	exchanges := jm.exchangeLocked(assign)
	ds := make([]deployment, 0, len(assign))
	for _, subs := range jm.mu.eg.Subtasks {
		if len(subs) == 0 {
			continue
		}
		v := subs[0].Vertex
		// Read only, and shared by the vertex's subtasks.
		restore, exchange := jm.mu.restore.forVertex(v), exchanges[v.ID]
		for _, ev := range subs {
			slot := assign[[2]int{v.ID, ev.Subtask}]
			ev.Transition(Scheduled)
			ev.Transition(Deploying)
			ev.Location = slot.Slot.TaskManager
			ds = append(ds, deployment{ev: ev, addr: jm.mu.tms[slot.Slot.TaskManager].Address, tdd: TaskDeploymentDescriptor{
				ID: ev.ID, Job: jm.graph.Spec, Fingerprint: jm.graph.Fingerprint, AllocationID: slot.Allocation, JobManager: jm.addr,
				Exchange: exchange, Checkpointing: jm.graph.Config.Checkpointing.Enabled(), Restore: restore,
			}})
		}
	}
	return ds
}

// checkStorage refuses to deploy a job that takes checkpoints, or restores
// state, to TaskManagers without checkpoint storage: every checkpoint would
// be declined, and the job would fail over until its restart strategy gave
// up. The error names those TaskManagers and the setting they lack.
func (jm *JobManager) checkStorage() error {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	var why string
	switch {
	case jm.graph.Config.Checkpointing.Enabled():
		why = fmt.Sprintf("takes checkpoints every %v", jm.graph.Config.Checkpointing.Interval)
	case jm.mu.restore != nil:
		why = fmt.Sprintf("restores the state of checkpoint %d", jm.mu.restore.CheckpointID)
	default:
		return nil
	}
	var without []string
	for _, s := range jm.mu.pool.Slots() {
		if tm, ok := jm.mu.tms[s.Slot.TaskManager]; ok && !tm.CheckpointStorage {
			without = append(without, strconv.Quote(string(tm.ID)))
		}
	}
	if len(without) == 0 {
		return nil
	}
	slices.Sort(without)
	without = slices.Compact(without)
	what := "task manager " + without[0] + " has"
	if len(without) > 1 {
		what = "task managers " + strings.Join(without, ", ") + " have"
	}
	return fmt.Errorf("%w: job %q %s, but %s none: set FLINK_CHECKPOINT_DIR (NodeConfig.CheckpointDir) on every TaskManager to the checkpoint directory the cluster shares",
		ErrNoCheckpointStorage, jm.graph.Name, why, what)
}

// exchangeLocked decides how the subtasks placed by assign exchange
// records, and returns each vertex's ExchangeSpec: as Go values when every
// TaskManager shares one process's exchange, else over the network, with
// the data address of each subtask the vertex's subtasks read.
func (jm *JobManager) exchangeLocked(assign map[[2]int]SlotOffer) []ExchangeSpec {
	shuffles := make(map[string]bool)
	for _, s := range assign {
		shuffles[jm.mu.tms[s.Slot.TaskManager].ShuffleID] = true
	}
	if len(shuffles) <= 1 {
		return make([]ExchangeSpec, len(jm.graph.Vertices))
	}
	rows := make([][]string, len(jm.graph.Vertices))
	for _, v := range jm.graph.Vertices {
		rows[v.ID] = make([]string, v.Parallelism)
		for i := range v.Parallelism {
			rows[v.ID][i] = jm.mu.tms[assign[[2]int{v.ID, i}].Slot.TaskManager].DataAddress
		}
	}
	return exchangeSpecs(jm.graph, rows)
}

func firstErr(cur, err error) error {
	if cur != nil {
		return cur
	}
	return err
}

// awaitEnd waits until every subtask finished (Finished), one failed
// (Failed, with its error), or the job is cancelled (Canceled).
func (jm *JobManager) awaitEnd(ctx context.Context) (ExecutionState, error) {
	for {
		jm.mu.Lock()
		failure, finished := jm.mu.failure, jm.mu.eg.AllIn(Finished)
		jm.mu.Unlock()
		switch {
		case failure != nil:
			return Failed, failure
		case finished:
			return Finished, nil
		}
		select {
		case <-jm.changed:
		case <-jm.cancelCh:
			return Canceled, nil
		case <-ctx.Done():
			return Canceled, nil
		}
	}
}

// cancelAll cancels every subtask that has not ended.
func (jm *JobManager) cancelAll(ctx context.Context) {
	type target struct {
		addr string
		id   ExecutionAttemptID
	}
	var ts []target
	jm.mu.Lock()
	for _, ev := range jm.mu.eg.All() {
		switch ev.State {
		case Created, Scheduled:
			ev.Transition(Canceled)
		case Deploying, Running:
			ev.Transition(Canceling)
			ts = append(ts, target{jm.mu.tms[ev.Location].Address, ev.ID})
		}
	}
	jm.mu.Unlock()
	// Cancel concurrently: a dead TaskManager must not delay the others;
	// its subtasks end when it is declared lost.
	for _, t := range ts {
		jm.calls.Add(1)
		go func() {
			defer jm.calls.Done()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelCallTimeout)
			defer cancel()
			if tm, err := jm.rpc.taskManager(t.addr); err == nil {
				tm.CancelTask(ctx, t.id)
			}
		}()
	}
	jm.signal()
}

// awaitTerminal waits until every subtask of the current attempt ended.
// Task managers always report a cancelled task's end. A deposed
// JobManager waits no longer: the lost TaskManagers it may be waiting for
// are declared lost by nobody now.
func (jm *JobManager) awaitTerminal() {
	for {
		jm.mu.Lock()
		done := jm.mu.eg.AllIn(Finished, Canceled, Failed)
		jm.mu.Unlock()
		if done {
			return
		}
		select {
		case <-jm.changed:
		case <-jm.deposedCh:
			return
		}
	}
}

// release gives every slot back and drops the job's data exchanges.
func (jm *JobManager) release() {
	jm.mu.Lock()
	jm.mu.done = true
	slots := jm.mu.pool.Clear()
	tms := maps.Clone(jm.mu.tms)
	attempt := jm.mu.eg.Attempt
	jm.mu.Unlock()
	if rm, err := jm.rpc.resourceManager(jm.rmAddr); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), defaultCallTimeout)
		rm.CancelSlotRequests(ctx, jm.id)
		cancel()
	}
	for _, s := range slots {
		if tm, err := jm.rpc.taskManager(tms[s.Slot.TaskManager].Address); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), defaultCallTimeout)
			tm.FreeSlot(ctx, s.Allocation)
			cancel()
		}
	}
	jm.releasePartitions(attempt)
}

func (jm *JobManager) releasePartitions(attempt int) {
	jm.mu.Lock()
	addrs := make([]string, 0, len(jm.mu.tms))
	for _, tm := range jm.mu.tms {
		addrs = append(addrs, tm.Address)
	}
	jm.mu.Unlock()
	for _, a := range addrs {
		if tm, err := jm.rpc.taskManager(a); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), defaultCallTimeout)
			tm.ReleasePartitions(ctx, jm.id, attempt)
			cancel()
		}
	}
}

// chainRecords returns the records a subtask of v read and wrote, from
// the counts of its chained operators (head first), as Flink's task
// numRecordsIn and numRecordsOut: the head's input and the tail's output.
// As in Flink, a source head reads the records it emits and a sink tail
// writes the records it receives, so that a source→sink chain shows its
// traffic.
func (v *JobVertex) chainRecords(ops []OperatorCounts) (in, out int64) {
	n := len(ops)
	if n == 0 {
		return 0, 0
	}
	in, out = ops[0].RecordsIn, ops[n-1].RecordsOut
	if len(v.ops) == n && v.ops[0].kind == kindSource {
		in = ops[0].RecordsOut
	}
	if len(v.ops) == n && v.ops[n-1].kind == kindSink {
		out = ops[n-1].RecordsIn
	}
	return in, out
}

// result sums the counters of the last attempt per operator, and counts
// the job's checkpoints.
func (jm *JobManager) result(status JobStatus, err error) *JobResult {
	var ckpts CheckpointCounts
	if s, ok := jm.CheckpointStats(); ok {
		ckpts = checkpointCounts(s)
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	r := &JobResult{ID: jm.id, Name: jm.graph.Name, Status: status, Err: err, Checkpoints: ckpts,
		Restarts: jm.restartBase + jm.mu.restarts, Duration: jm.cfg.now().Sub(jm.mu.started)}
	for _, v := range jm.graph.Vertices {
		ops := make([]OperatorResult, len(v.Operators))
		for i, o := range v.Operators {
			ops[i] = OperatorResult{Vertex: v.ID, Name: o.Name, Parallelism: v.Parallelism}
		}
		vr := VertexResult{Vertex: v.ID, Name: v.Name, Parallelism: v.Parallelism}
		for _, ev := range jm.mu.eg.Subtasks[v.ID] {
			m := jm.mu.metrics[ev.ID]
			if m == nil {
				continue
			}
			for i, c := range m.Operators {
				if i < len(ops) {
					ops[i].RecordsIn += c.RecordsIn
					ops[i].RecordsOut += c.RecordsOut
				}
			}
			in, out := v.chainRecords(m.Operators)
			vr.RecordsIn += in
			vr.RecordsOut += out
			vr.BytesIn += m.BytesIn
			vr.BytesOut += m.BytesOut
			vr.BackPressured += m.BackPressured
			vr.Idle += m.Idle
		}
		r.Operators = append(r.Operators, ops...)
		r.Vertices = append(r.Vertices, vr)
	}
	return r
}
