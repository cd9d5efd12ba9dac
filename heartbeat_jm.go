package flink

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Heartbeats between a JobManager and the TaskManagers that run its
// subtasks. The TaskManagers report every state change of a subtask, but a
// report can be lost (a connection cut at the wrong moment, a JobManager
// busy past the call's timeout), and the ResourceManager's notice of a lost
// TaskManager reaches only the jobs it knows held slots there. Either way
// the JobManager would wait for ever for a cancelled subtask to end: the
// job stayed FAILING with subtasks CANCELING in a chaos run. So, as in
// Flink, the JobManager itself asks each TaskManager that runs its
// subtasks for a deployment report every heartbeat interval, and
// reconciles:
//
//   - a final state in the report that the JobManager missed is applied;
//   - a subtask the JobManager believes RUNNING or CANCELING on that
//     TaskManager that the report leaves out in two reports in a row (the
//     TaskManager neither runs it nor remembers its end) ends: CANCELING
//     becomes CANCELED, RUNNING becomes FAILED, and the job recovers;
//   - a subtask of an earlier attempt that still runs there is cancelled;
//   - a TaskManager that answered no report for the heartbeat timeout is
//     lost to the job, as if the ResourceManager had said so.

// heartbeatTaskManagers runs the JobManager's side of the heartbeats until
// ctx ends.
func (jm *JobManager) heartbeatTaskManagers(ctx context.Context) {
	interval, timeout := jm.cfg.heartbeatInterval, jm.cfg.heartbeatTimeout
	if interval <= 0 {
		interval = time.Second
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	hb := &tmHeartbeats{lastAnswer: map[ResourceID]time.Time{}, missing: map[ExecutionAttemptID]int{}}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		jm.heartbeatRound(ctx, hb, timeout)
	}
}

// tmHeartbeats is what the heartbeats remember between rounds.
type tmHeartbeats struct {
	// lastAnswer is when each TaskManager last answered (or when the
	// JobManager started asking it).
	lastAnswer map[ResourceID]time.Time
	// missing counts, per subtask attempt, the reports in a row that left
	// it out.
	missing map[ExecutionAttemptID]int
}

// heartbeatRound asks every TaskManager that runs subtasks of the job for
// its report, concurrently, and reconciles.
func (jm *JobManager) heartbeatRound(ctx context.Context, hb *tmHeartbeats, timeout time.Duration) {
	type target struct {
		addr     string
		expected []ExecutionAttemptID // RUNNING or CANCELING there
	}
	targets := map[ResourceID]*target{}
	jm.mu.Lock()
	if jm.mu.done {
		jm.mu.Unlock()
		return
	}
	for _, ev := range jm.mu.eg.All() {
		if ev.State != Deploying && ev.State != Running && ev.State != Canceling {
			continue
		}
		loc, ok := jm.mu.tms[ev.Location]
		if !ok {
			continue
		}
		t := targets[ev.Location]
		if t == nil {
			t = &target{addr: loc.Address}
			targets[ev.Location] = t
		}
		if ev.State != Deploying { // a deployment may still be on its way
			t.expected = append(t.expected, ev.ID)
		}
	}
	attempt := jm.mu.eg.Attempt
	jm.mu.Unlock()
	now := jm.cfg.now()
	for id := range hb.lastAnswer {
		if targets[id] == nil {
			delete(hb.lastAnswer, id)
		}
	}
	type answer struct {
		tm     ResourceID
		states []TaskExecutionState
		err    error
	}
	answers := make(chan answer, len(targets))
	var wg sync.WaitGroup
	for id, t := range targets {
		if _, ok := hb.lastAnswer[id]; !ok {
			hb.lastAnswer[id] = now
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			tm, err := jm.rpc.taskManager(t.addr)
			var states []TaskExecutionState
			if err == nil {
				states, err = tm.DeploymentReport(cctx, jm.id, attempt)
			}
			answers <- answer{id, states, err}
		}()
	}
	wg.Wait()
	close(answers)
	if ctx.Err() != nil {
		return
	}
	for a := range answers {
		if a.err != nil {
			if silent := jm.cfg.now().Sub(hb.lastAnswer[a.tm]); silent > timeout {
				jm.log.Warn("task manager lost: no heartbeat answer", "tm", a.tm, "for", silent.Round(time.Millisecond), "err", a.err)
				// Lost to the job: its subtasks fail and its slots leave
				// the pool. Its slots are not freed from here, should it
				// only be slow: a free landing after it offered them again
				// would take a slot from under the pool. If the
				// ResourceManager declared it lost too, it offers them
				// again when it registers anew (TaskManager.reofferSlots).
				jm.NotifyTaskManagerLost(ctx, a.tm, fmt.Errorf("no answer to the JobManager's heartbeats for %v: %w", silent.Round(time.Millisecond), a.err))
				delete(hb.lastAnswer, a.tm)
			}
			continue
		}
		hb.lastAnswer[a.tm] = jm.cfg.now()
		jm.reconcile(ctx, hb, a.tm, targets[a.tm].addr, attempt, targets[a.tm].expected, a.states)
	}
}

// reconcile applies a TaskManager's report: the final states the
// JobManager missed, and the end of subtasks left out twice in a row.
func (jm *JobManager) reconcile(ctx context.Context, hb *tmHeartbeats, tm ResourceID, addr string, attempt int, expected []ExecutionAttemptID, states []TaskExecutionState) {
	reported := make(map[ExecutionAttemptID]bool, len(states))
	for _, s := range states {
		reported[s.ID] = true
		switch {
		case s.State.IsTerminal():
			// Ignored unless it is the current attempt and its end is news.
			jm.UpdateTaskExecutionState(ctx, s)
		case s.ID.Attempt < attempt:
			// A subtask of an earlier attempt of the job still runs there
			// (its TaskManager was declared lost, and came back): stop it.
			jm.log.Warn("cancelling a subtask of an earlier attempt", "task", s.ID, "tm", tm)
			jm.calls.Add(1)
			go func() {
				defer jm.calls.Done()
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelCallTimeout)
				defer cancel()
				if g, err := jm.rpc.taskManager(addr); err == nil {
					g.CancelTask(cctx, s.ID)
				}
			}()
		}
	}
	for _, id := range expected {
		if reported[id] {
			delete(hb.missing, id)
			continue
		}
		hb.missing[id]++
		if hb.missing[id] < 2 {
			continue
		}
		delete(hb.missing, id)
		jm.mu.Lock()
		ev := jm.mu.eg.Lookup(id)
		switch {
		case ev == nil || ev.Location != tm:
		case ev.State == Canceling:
			if ev.Transition(Canceled) == nil {
				jm.log.Warn("subtask ended unreported: its task manager no longer runs it", "task", id, "tm", tm)
			}
		case ev.State == Running:
			err := newTaskError(ev.Vertex.Name, ev.Subtask, id.Attempt, fmt.Errorf("task manager %s no longer runs it, and its end was not reported", tm))
			if ev.Transition(Failed) == nil {
				jm.log.Warn("subtask ended unreported: its task manager no longer runs it", "task", id, "tm", tm)
				ev.Failure = err
				jm.mu.failure = firstErr(jm.mu.failure, err)
			}
		}
		jm.mu.Unlock()
		jm.signal()
	}
	for id := range hb.missing {
		if !jm.isCurrent(id) {
			delete(hb.missing, id)
		}
	}
}
