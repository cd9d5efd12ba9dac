package flink

import (
	"bytes"
	"runtime"
	"slices"
	"strconv"
	"time"
)

// DefaultTaskCancellationInterval is how long a TaskManager waits for a
// cancelled subtask to end before it reports it as stuck, and how often it
// reports it again: Flink's task.cancellation.interval.
const DefaultTaskCancellationInterval = 30 * time.Second

// StuckTask is a subtask that was cancelled but has not ended after the
// TaskManager's cancellation interval: its user code ignores cancellation
// (a function that does not return, a Source whose Run ignores its context
// and Cancel). The TaskManager stays responsive and keeps reporting it;
// Flink would kill the TaskManager's process after
// task.cancellation.timeout, which an embedded library must not do.
type StuckTask struct {
	Task ExecutionAttemptID
	Name string
	// Since is when the subtask was asked to stop.
	Since time.Time
	// Stack is the stack of the goroutines running its user code.
	Stack string
}

// watchCancellations reports, each time timer fires (then every interval), the subtasks that were
// asked to stop at least an interval ago and still run: logged with their
// stacks, and kept for StuckTasks. It returns when the TaskManager closes.
func (tm *TaskManager) watchCancellations(interval time.Duration, timer clockTimer) {
	defer tm.wg.Done()
	defer timer.Stop()
	for {
		select {
		case <-tm.ctx.Done():
			return
		case <-timer.C():
		}
		now := tm.clock.Now()
		tm.mu.Lock()
		var stuck []*task
		for _, t := range tm.mu.tasks {
			if at := t.stopAt.Load(); at != 0 && now.Sub(time.Unix(0, at)) >= interval {
				stuck = append(stuck, t)
			}
		}
		tm.mu.Unlock()
		var reports []StuckTask
		for _, t := range stuck {
			r := StuckTask{Task: t.id, Name: t.graph.Vertices[t.id.Vertex].Name, Since: time.Unix(0, t.stopAt.Load()),
				Stack: goroutineStacks(t.goroutine.Load(), t.sourceGoroutine.Load(), t.cancelGoroutine.Load())}
			tm.log.Error("a cancelled subtask does not end: its user code ignores cancellation", "task", t.id, "name", r.Name,
				"since", r.Since, "stack", r.Stack)
			reports = append(reports, r)
		}
		slices.SortFunc(reports, func(a, b StuckTask) int { return a.Since.Compare(b.Since) })
		tm.stuckMu.Lock()
		tm.stuckMu.tasks = reports
		tm.stuckMu.Unlock()
		timer.Reset(interval)
	}
}

// StuckTasks returns the subtasks the cancellation watchdog found stuck at
// its last look, longest stuck first.
func (tm *TaskManager) StuckTasks() []StuckTask {
	tm.stuckMu.Lock()
	defer tm.stuckMu.Unlock()
	return slices.Clone(tm.stuckMu.tasks)
}

// goroutineID returns the id of the calling goroutine, from its stack's
// first line ("goroutine 42 [running]:"). It is only for diagnostics.
func goroutineID() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		id, _ := strconv.ParseInt(string(b[:i]), 10, 64)
		return id
	}
	return 0
}

// goroutineStacks returns the stacks of the goroutines with the given ids
// (0s are skipped), from a dump of all goroutines.
func goroutineStacks(ids ...int64) string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out bytes.Buffer
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		for _, id := range ids {
			if id != 0 && bytes.HasPrefix(g, []byte("goroutine "+strconv.FormatInt(id, 10)+" [")) {
				out.Write(g)
				out.WriteString("\n\n")
			}
		}
	}
	return out.String()
}
