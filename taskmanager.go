package flink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/internal/rpc"
	"github.com/flinkgo/flink/network"
)

// TaskManager offers slots and runs subtasks in them, each on its own
// goroutine. It registers its slots with the ResourceManager, offers slots
// to JobManagers when told to, runs the subtasks JobManagers deploy, and
// reports their state changes back.
type TaskManager struct {
	id       ResourceID
	addr     string
	rpc      resolver
	registry *Registry
	graphs   *graphStore
	shuffle  *localShuffle
	net      *netContext
	log      *slog.Logger
	// fingerprint is sent at registration; set by Node.
	fingerprint string
	// instance tells this TaskManager from an earlier one with its ID.
	instance string
	// storage is where tasks write checkpoints; nil without checkpoints.
	storage checkpoint.Storage
	// onHeartbeatFailure, set by an HA Node before heartbeats start, looks
	// for the leading ResourceManager when none is known or a heartbeat
	// failed.
	onHeartbeatFailure func()
	// hbMu guards the cancellation of the heartbeat in flight, which
	// following a new ResourceManager calls.
	hbMu struct {
		sync.Mutex
		cancel context.CancelFunc
	}

	// dropReport, set by tests before any job runs, loses the state
	// reports it returns true for.
	dropReport func(TaskExecutionState) bool
	// clock is its tasks' processing time and the cancellation watchdog's;
	// tests drive a fake one.
	clock clock
	// stuckMu guards what the cancellation watchdog found last.
	stuckMu struct {
		sync.Mutex
		tasks []StuckTask
	}

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		slots *SlotTable
		jms   map[AllocationID]string // allocation -> JobManager address
		tasks map[ExecutionAttemptID]*task
		// ended holds the final states of subtasks that ended lately, for
		// the deployment reports; see DeploymentReport.
		ended map[ExecutionAttemptID]endedTask
		// graphs are the graphs this TaskManager rebuilt, one per job it
		// holds slots of; see jobGraph.
		graphs map[JobID]*JobGraph
		closed bool
		// leader is the newest leader's fencing token seen (HA mode; see
		// fencing.go), allocTerms the term each allocation was made in.
		leader     rpc.Token
		allocTerms map[AllocationID]uint64
		// rmAddr is the ResourceManager's address.
		rmAddr string
	}
}

func newTaskManager(id ResourceID, addr, rmAddr string, slots int, profile ResourceProfile, rpc resolver, reg *Registry, graphs *graphStore, sh *localShuffle, env *network.Environment, codecs *network.Codecs, log *slog.Logger) *TaskManager {
	if codecs == nil {
		codecs = network.NewCodecs()
	}
	tm := &TaskManager{id: id, addr: addr, rpc: rpc, registry: reg, graphs: graphs, shuffle: sh,
		net: &netContext{tm: id, env: env, codecs: codecs},
		log: log.With("role", "taskmanager", "tm", id), instance: randomHex(8), clock: realClock{}}
	tm.ctx, tm.cancel = context.WithCancel(context.Background())
	tm.mu.slots = NewSlotTable(id, slots, profile)
	tm.mu.jms = make(map[AllocationID]string)
	tm.mu.tasks = make(map[ExecutionAttemptID]*task)
	tm.mu.ended = make(map[ExecutionAttemptID]endedTask)
	tm.mu.graphs = make(map[JobID]*JobGraph)
	tm.mu.allocTerms = make(map[AllocationID]uint64)
	tm.mu.rmAddr = rmAddr
	return tm
}

// resourceManagerAddr returns the address of the ResourceManager the
// TaskManager registers with.
func (tm *TaskManager) resourceManagerAddr() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.mu.rmAddr
}

// setResourceManagerAddr changes the ResourceManager the TaskManager
// registers with: another JobManager node, or a new leader.
func (tm *TaskManager) setResourceManagerAddr(addr string) {
	tm.mu.Lock()
	changed := tm.mu.rmAddr != addr
	tm.mu.rmAddr = addr
	tm.mu.Unlock()
	if changed {
		// A heartbeat hanging on the previous leader must not delay the
		// next one to this leader beyond its heartbeat timeout.
		tm.hbMu.Lock()
		if tm.hbMu.cancel != nil {
			tm.hbMu.cancel()
		}
		tm.hbMu.Unlock()
	}
}

// register announces the TaskManager's slots to the ResourceManager.
func (tm *TaskManager) register(ctx context.Context) error {
	rm, err := tm.rpc.resourceManager(tm.resourceManagerAddr())
	if err != nil {
		return err
	}
	tm.mu.Lock()
	slots := tm.mu.slots.Report()
	tm.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, defaultCallTimeout)
	defer cancel()
	return rm.RegisterTaskManager(ctx, TaskManagerRegistration{ID: tm.id, Address: tm.addr, Slots: slots, Fingerprint: tm.fingerprint, Instance: tm.instance})
}

// RequestSlot implements TaskManagerGateway.
func (tm *TaskManager) RequestSlot(ctx context.Context, slot SlotID, job JobID, alloc AllocationID, jobManager string) error {
	tok := rpc.TokenFrom(ctx)
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.mu.closed {
		return ErrClosed
	}
	if !tok.IsZero() {
		if err := tm.fenceLocked(tok, "a slot request"); err != nil {
			return err
		}
	}
	if slot.TaskManager != tm.id {
		return fmt.Errorf("flink: slot %s requested from task manager %s", slot, tm.id)
	}
	if err := tm.mu.slots.Allocate(slot.Index, job, alloc); err != nil {
		return err
	}
	tm.mu.jms[alloc] = jobManager
	tm.mu.allocTerms[alloc] = tok.Term
	s, _ := tm.mu.slots.Lookup(alloc)
	offer := SlotOffer{Allocation: alloc, Slot: s.ID, Profile: s.Profile}
	tm.wg.Add(1)
	go tm.offer(jobManager, offer)
	return nil
}

// offer offers a slot to a JobManager and frees it if refused.
func (tm *TaskManager) offer(jmAddr string, o SlotOffer) {
	defer tm.wg.Done()
	ctx, cancel := context.WithTimeout(tm.ctx, defaultCallTimeout)
	defer cancel()
	jm, err := tm.rpc.jobManager(jmAddr)
	var accepted []SlotOffer
	if err == nil {
		accepted, err = jm.OfferSlots(ctx, tm.location(), []SlotOffer{o})
	}
	if err != nil || len(accepted) == 0 {
		tm.log.Debug("slot offer refused", "slot", o.Slot, "err", err)
		fctx, cancel := context.WithTimeout(tm.ctx, defaultCallTimeout)
		defer cancel()
		tm.FreeSlot(fctx, o.Allocation)
	}
}

// reofferSlots offers every allocated slot again to its JobManager, after
// the ResourceManager forgot the TaskManager (it missed its heartbeats:
// paused, cut off or slow) and the TaskManager registered again. Declared
// lost, it lost its slots in the JobManagers' pools, while it kept them
// allocated and reported them so to the ResourceManager: without the new
// offer nobody would use or free them, and after a few such pauses a job
// waited for ever for slots with every slot of the cluster allocated (a
// chaos run's job stalled in RESTARTING). A JobManager that still runs
// takes them back; one that ended refuses them, and the TaskManager frees
// them.
func (tm *TaskManager) reofferSlots() {
	type offer struct {
		jm string
		o  SlotOffer
	}
	var offers []offer
	tm.mu.Lock()
	for _, s := range tm.mu.slots.Report() {
		if s.Allocation != "" {
			offers = append(offers, offer{tm.mu.jms[s.Allocation], SlotOffer{Allocation: s.Allocation, Slot: s.ID, Profile: s.Profile}})
		}
	}
	tm.wg.Add(len(offers))
	tm.mu.Unlock()
	for _, o := range offers {
		go tm.offer(o.jm, o.o)
	}
}

// location says where the TaskManager is reached.
func (tm *TaskManager) location() TaskManagerLocation {
	return TaskManagerLocation{ID: tm.id, Address: tm.addr, DataAddress: tm.net.env.Addr(), ShuffleID: tm.shuffle.id,
		CheckpointStorage: tm.storage != nil}
}

// FreeSlot implements TaskManagerGateway.
func (tm *TaskManager) FreeSlot(ctx context.Context, alloc AllocationID) error {
	tm.mu.Lock()
	s, held := tm.mu.slots.Lookup(alloc)
	_, ok := tm.mu.slots.Free(alloc)
	if held && len(tm.mu.slots.AllocatedTo(s.Job)) == 0 {
		delete(tm.mu.graphs, s.Job)
	}
	delete(tm.mu.jms, alloc)
	delete(tm.mu.allocTerms, alloc)
	var stop []*task
	for _, t := range tm.mu.tasks {
		if t.alloc == alloc {
			stop = append(stop, t)
		}
	}
	tm.mu.Unlock()
	for _, t := range stop { // outside tm.mu: a stopping task must not block other RPCs
		t.stop()
	}
	if !ok {
		return nil
	}
	rm, err := tm.rpc.resourceManager(tm.resourceManagerAddr())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, defaultCallTimeout)
	defer cancel()
	return rm.NotifySlotFree(ctx, tm.id, alloc)
}

// ReleasePartitions implements TaskManagerGateway.
func (tm *TaskManager) ReleasePartitions(ctx context.Context, job JobID, attempt int) error {
	tm.shuffle.releaseJob(job, attempt)
	return nil
}

// SubmitTask implements TaskManagerGateway.
func (tm *TaskManager) SubmitTask(ctx context.Context, tdd TaskDeploymentDescriptor) error {
	g, err := tm.jobGraph(tdd)
	if err != nil {
		return err
	}
	if tdd.ID.Vertex < 0 || tdd.ID.Vertex >= len(g.Vertices) || tdd.ID.Subtask >= g.Vertices[tdd.ID.Vertex].Parallelism {
		return fmt.Errorf("flink: job %s has no subtask %s", tdd.ID.Job, tdd.ID)
	}
	jm, err := tm.rpc.jobManager(tdd.JobManager)
	if err != nil {
		return err
	}
	tok := rpc.TokenFrom(ctx)
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.mu.closed {
		return ErrClosed
	}
	if !tok.IsZero() {
		if err := tm.fenceLocked(tok, "a deployment"); err != nil {
			return err
		}
	}
	if s, ok := tm.mu.slots.Lookup(tdd.AllocationID); !ok || s.Job != tdd.ID.Job {
		return fmt.Errorf("flink: task manager %s holds no slot of job %s under allocation %s", tm.id, tdd.ID.Job, tdd.AllocationID)
	}
	if _, dup := tm.mu.tasks[tdd.ID]; dup {
		return fmt.Errorf("flink: task %s already deployed", tdd.ID)
	}
	if tdd.Exchange.Network && !validDataAddrs(g, g.Vertices[tdd.ID.Vertex], tdd.Exchange.DataAddrs) {
		return fmt.Errorf("flink: deployment of %s has no data address for every subtask", tdd.ID)
	}
	t := newTask(tm.ctx, tdd.ID, g, tm.shuffle, tm.clock, tm.log)
	t.alloc, t.net, t.exchange, t.jm = tdd.AllocationID, tm.net, tdd.Exchange, jm
	t.checkpointing, t.restore, t.storage = tdd.Checkpointing, tdd.Restore, tm.storage
	t.term = tok.Term
	tm.mu.tasks[tdd.ID] = t
	tm.wg.Add(1)
	go tm.runTask(t, jm)
	return nil
}

// runTask runs a subtask and reports its states to its JobManager.
func (tm *TaskManager) runTask(t *task, jm JobManagerGateway) {
	defer tm.wg.Done()
	report := func(s TaskExecutionState) {
		if tm.dropReport != nil && tm.dropReport(s) {
			return // a test loses it
		}
		// Reports outlive the task's own context: its final state must
		// reach the JobManager even when it was cancelled.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(tm.ctx), defaultCallTimeout)
		defer cancel()
		if err := jm.UpdateTaskExecutionState(ctx, s); err != nil {
			// The JobManager's next deployment report brings it.
			tm.log.Warn("state report failed", "task", t.id, "state", s.State, "err", err)
		}
	}
	report(TaskExecutionState{ID: t.id, State: Running})
	err := t.run()
	if ferr := t.asyncFailure(); ferr != nil {
		err = ferr
	}
	final := TaskExecutionState{ID: t.id, State: Finished, Metrics: t.metrics()}
	switch {
	case err == nil:
	case t.stoppedBeforeEnd && isCancellation(err):
		final.State = Canceled
	default:
		final.State = Failed
		final.Err = newTaskError(t.graph.Vertices[t.id.Vertex].Name, t.id.Subtask, t.id.Attempt, err)
	}
	tm.mu.Lock()
	if tm.mu.tasks[t.id] == t {
		delete(tm.mu.tasks, t.id)
	}
	tm.rememberEndedLocked(final, time.Now())
	tm.mu.Unlock()
	t.cancel()
	report(final)
}

// endedRetention is how long a TaskManager keeps the final state of an
// ended subtask for the deployment reports, and maxEnded how many.
const (
	endedRetention = 10 * time.Minute
	maxEnded       = 10_000
)

// endedTask is the final state of a subtask that ended, and when.
type endedTask struct {
	state TaskExecutionState
	at    time.Time
}

// rememberEndedLocked keeps a subtask's final state for the deployment
// reports and forgets those older than endedRetention, or the oldest
// beyond maxEnded.
func (tm *TaskManager) rememberEndedLocked(s TaskExecutionState, now time.Time) {
	for id, e := range tm.mu.ended {
		if now.Sub(e.at) > endedRetention {
			delete(tm.mu.ended, id)
		}
	}
	if len(tm.mu.ended) >= maxEnded {
		var oldest ExecutionAttemptID
		first := true
		for id, e := range tm.mu.ended {
			if first || e.at.Before(tm.mu.ended[oldest].at) {
				oldest, first = id, false
			}
		}
		delete(tm.mu.ended, oldest)
	}
	tm.mu.ended[s.ID] = endedTask{state: s, at: now}
}

// DeploymentReport implements TaskManagerGateway.
func (tm *TaskManager) DeploymentReport(ctx context.Context, job JobID, sinceAttempt int) ([]TaskExecutionState, error) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	var states []TaskExecutionState
	for id := range tm.mu.tasks {
		if id.Job == job {
			states = append(states, TaskExecutionState{ID: id, State: Running})
		}
	}
	for id, e := range tm.mu.ended {
		if id.Job == job && id.Attempt >= sinceAttempt {
			states = append(states, e.state)
		}
	}
	return states, nil
}

// Instance implements TaskManagerGateway. A closed TaskManager answers
// ErrClosed: its id is free.
func (tm *TaskManager) Instance(ctx context.Context) (string, error) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.mu.closed {
		return "", ErrClosed
	}
	return tm.instance, nil
}

// reportMetrics sends the counters of every running task to its
// JobManager every interval, until the TaskManager closes, so that running
// jobs show their progress and backpressure.
func (tm *TaskManager) reportMetrics(interval time.Duration) {
	defer tm.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tm.ctx.Done():
			return
		case <-tick.C:
		}
		tm.mu.Lock()
		tasks := make([]*task, 0, len(tm.mu.tasks))
		for _, t := range tm.mu.tasks {
			tasks = append(tasks, t)
		}
		tm.mu.Unlock()
		for _, t := range tasks {
			ctx, cancel := context.WithTimeout(tm.ctx, interval)
			t.jm.UpdateTaskExecutionState(ctx, TaskExecutionState{ID: t.id, State: Running, Metrics: t.metrics()})
			cancel()
		}
	}
}

// heartbeats tells the ResourceManager every interval that the
// TaskManager is alive, with its slots and figures (the first at once, so
// that they show soon after registration), and registers again when the
// ResourceManager forgot it; until the TaskManager closes. Each heartbeat
// waits at most timeout. A registration refused because another live
// TaskManager took the id meanwhile (ErrTaskManagerIDInUse) is logged as
// an error and tried again each interval, in case that one ends.
func (tm *TaskManager) heartbeats(interval, timeout time.Duration) {
	defer tm.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	refused := false // the last registration was refused: the id is in use
	for {
		addr := tm.resourceManagerAddr()
		if addr == "" && tm.onHeartbeatFailure != nil {
			tm.onHeartbeatFailure() // no leader known yet
		} else if rm, err := tm.rpc.resourceManager(addr); err == nil {
			ctx, cancel := context.WithTimeout(tm.ctx, timeout)
			tm.hbMu.Lock()
			tm.hbMu.cancel = cancel
			tm.hbMu.Unlock()
			tm.mu.Lock()
			hb := TaskManagerHeartbeat{ID: tm.id, Instance: tm.instance, Slots: tm.mu.slots.Report()}
			tm.mu.Unlock()
			hb.Stats = tm.stats()
			err = rm.Heartbeat(ctx, hb)
			if err != nil && strings.Contains(err.Error(), "register first") {
				err = tm.register(ctx)
				inUse := errors.Is(err, ErrTaskManagerIDInUse)
				switch {
				case inUse && !refused:
					tm.log.Error("registration refused: another live task manager registered under this id; this one gets no slots until the id is free", "err", err)
				case err == nil && refused:
					tm.log.Info("registered again: the task manager id is free")
				}
				refused = inUse
				if err == nil {
					tm.reofferSlots()
				}
			}
			cancel()
			switch {
			case err == nil || tm.ctx.Err() != nil:
			case errors.Is(err, ErrTaskManagerIDInUse):
				// Looking for another leader would not help.
			case tm.resourceManagerAddr() != addr:
				// It follows a new leader meanwhile: beat there next.
				tm.log.Debug("heartbeat to the previous ResourceManager failed", "err", err)
			default:
				tm.log.Debug("heartbeat failed", "err", err)
				if tm.onHeartbeatFailure != nil {
					tm.onHeartbeatFailure()
				}
			}
		}
		select {
		case <-tm.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// startHeartbeats starts heartbeats; close stops it.
func (tm *TaskManager) startHeartbeats(interval, timeout time.Duration) {
	tm.wg.Add(1)
	go tm.heartbeats(interval, timeout)
}

// startCancellationWatchdog starts watchCancellations; close stops it.
func (tm *TaskManager) startCancellationWatchdog(interval time.Duration) {
	if interval <= 0 {
		interval = DefaultTaskCancellationInterval
	}
	// The timer starts now, not when the goroutine runs: a test that
	// advances the clock must find it armed.
	timer := tm.clock.NewTimer(interval)
	tm.wg.Add(1)
	go tm.watchCancellations(interval, timer)
}

// startMetricsReporter starts reportMetrics; close stops it.
func (tm *TaskManager) startMetricsReporter(interval time.Duration) {
	tm.wg.Add(1)
	go tm.reportMetrics(interval)
}

// CancelTask implements TaskManagerGateway.
func (tm *TaskManager) CancelTask(ctx context.Context, id ExecutionAttemptID) error {
	tm.mu.Lock()
	t := tm.mu.tasks[id]
	tm.mu.Unlock()
	if t != nil {
		t.stop()
	}
	return nil
}

// runningTask returns the running attempt id, or an error.
func (tm *TaskManager) runningTask(id ExecutionAttemptID) (*task, error) {
	tm.mu.Lock()
	t := tm.mu.tasks[id]
	tm.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("flink: task %s is not running on task manager %s", id, tm.id)
	}
	return t, nil
}

// TriggerCheckpoint implements TaskManagerGateway.
func (tm *TaskManager) TriggerCheckpoint(ctx context.Context, id ExecutionAttemptID, b CheckpointBarrier) error {
	if err := tm.fence(ctx, "a checkpoint trigger"); err != nil {
		return err
	}
	t, err := tm.runningTask(id)
	if err != nil {
		return err
	}
	return t.triggerCheckpoint(ctx, b)
}

// NotifyCheckpointComplete implements TaskManagerGateway.
func (tm *TaskManager) NotifyCheckpointComplete(ctx context.Context, id ExecutionAttemptID, checkpointID int64) error {
	// A deposed leader must not make sinks commit.
	if err := tm.fence(ctx, "a checkpoint commit notification"); err != nil {
		return err
	}
	t, err := tm.runningTask(id)
	if err != nil {
		return nil // finished or cancelled: nothing left to commit
	}
	t.notifyCheckpointComplete(checkpointID)
	return nil
}

// NotifyCheckpointAborted implements TaskManagerGateway.
func (tm *TaskManager) NotifyCheckpointAborted(ctx context.Context, id ExecutionAttemptID, checkpointID int64) error {
	if t, err := tm.runningTask(id); err == nil {
		t.notifyCheckpointAborted(checkpointID)
	}
	return nil
}

// jobGraph finds the graph a deployment refers to: in this process's store,
// or rebuilt from the registry and checked against the fingerprint.
//
// A rebuilt graph holds the closures its job function made from the
// submission's arguments, so it serves only deployments of the same
// submission: the same job id, name, arguments and configuration. The
// fingerprint covers only the graph's shape, which two submissions with
// different arguments often share. The graph is dropped when the
// TaskManager frees the job's last slot.
func (tm *TaskManager) jobGraph(tdd TaskDeploymentDescriptor) (*JobGraph, error) {
	if g, ok := tm.graphs.get(tdd.ID.Job); ok && g.Fingerprint == tdd.Fingerprint {
		return g, nil
	}
	tm.mu.Lock()
	g, ok := tm.mu.graphs[tdd.ID.Job]
	tm.mu.Unlock()
	if ok && g.Fingerprint == tdd.Fingerprint && g.Spec.equal(tdd.Job) {
		return g, nil
	}
	if tdd.Job.Name == "" {
		return nil, fmt.Errorf("%w: job %s is not registered and its graph is not in this process", ErrUnknownJob, tdd.ID.Job)
	}
	cfg := DefaultJobConfig()
	cfg.Parallelism, cfg.MaxParallelism = tdd.Job.Parallelism, tdd.Job.MaxParallelism
	g, err := tm.registry.Build(tdd.Job.Name, tdd.Job.Args, cfg)
	if err != nil {
		return nil, err
	}
	if g.Fingerprint != tdd.Fingerprint {
		return nil, fmt.Errorf("%w: job %q on task manager %s has fingerprint %.12s, the job manager's is %.12s: the processes run different binaries",
			ErrFingerprintMismatch, tdd.Job.Name, tm.id, g.Fingerprint, tdd.Fingerprint)
	}
	tm.mu.Lock()
	if len(tm.mu.slots.AllocatedTo(tdd.ID.Job)) > 0 {
		// Kept while the job holds slots here; FreeSlot drops it.
		tm.mu.graphs[tdd.ID.Job] = g
	}
	tm.mu.Unlock()
	return g, nil
}

// close stops every task and waits for them.
func (tm *TaskManager) close() {
	tm.mu.Lock()
	tm.mu.closed = true
	tasks := slices.Collect(maps.Values(tm.mu.tasks))
	tm.mu.Unlock()
	for _, t := range tasks {
		t.stop()
	}
	tm.cancel()
	tm.wg.Wait()
}

// graphStore holds the JobGraphs of jobs submitted in this process, so that
// local TaskManagers need not rebuild them.
type graphStore struct {
	mu     sync.RWMutex
	graphs map[JobID]*JobGraph
}

func newGraphStore() *graphStore { return &graphStore{graphs: make(map[JobID]*JobGraph)} }

func (s *graphStore) put(id JobID, g *JobGraph) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.graphs[id] = g
}

func (s *graphStore) get(id JobID) (*JobGraph, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, ok := s.graphs[id]
	return g, ok
}

func (s *graphStore) remove(id JobID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.graphs, id)
}
