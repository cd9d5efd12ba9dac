package checkpoint_test

import (
	"context"
	"fmt"
	"time"

	"github.com/flinkgo/flink/checkpoint"
)

// A coordinator driven by hand with a fake clock: one periodic checkpoint
// from trigger to completion. A real driver calls ShouldTrigger and
// CheckTimeouts when NextDeadline passes, sends the trigger to the sources
// and feeds acknowledgements in as tasks report them.
func ExampleCoordinator() {
	ctx := context.Background()
	storage := checkpoint.NewMemStorage()
	job := checkpoint.JobInfo{ID: "job-1", Name: "example", Vertices: []checkpoint.VertexInfo{
		{Name: "source", Parallelism: 1, Source: true, Operators: []checkpoint.OperatorInfo{{ID: "src"}}},
		{Name: "sink", Parallelism: 1},
	}}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := checkpoint.NewCoordinator(ctx, checkpoint.CoordinatorConfig{Interval: 10 * time.Second}, job, storage, start)
	if err != nil {
		panic(err)
	}

	next, _ := c.NextDeadline(start)
	fmt.Println("first checkpoint due after", next.Sub(start))
	tr, err := c.Trigger(next, false, "")
	if err != nil {
		panic(err)
	}
	fmt.Println("triggered", tr.ID, "at sources", tr.Sources)

	srcAck := checkpoint.TaskAck{States: map[string]checkpoint.SubtaskState{"src": {Raw: map[string][]byte{"offset": {42}}}}, Bytes: 1}
	for _, task := range []checkpoint.TaskID{{Vertex: 0, Subtask: 0}, {Vertex: 1, Subtask: 0}} {
		ack := checkpoint.TaskAck{}
		if task.Vertex == 0 {
			ack = srcAck
		}
		res, err := c.Acknowledge(next.Add(time.Second), tr.ID, task, ack)
		if err != nil {
			panic(err)
		}
		fmt.Println("ack from", task, res.Outcome)
	}
	res, err := c.Complete(ctx, next.Add(2*time.Second), tr.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("completed", res.Completed.ID, "notify", res.Completed.Notify)

	m, ok, err := c.LatestForRestore(ctx, next.Add(time.Minute))
	if err != nil || !ok {
		panic(err)
	}
	fmt.Println("restore from", m.CheckpointID, "offset", m.Operators[0].Subtasks[0].Raw["offset"])
	st := c.Stats()
	fmt.Println(st.LatestCompleted.Status, st.LatestCompleted.Duration, st.LatestCompleted.StateSize, "bytes")
	// Output:
	// first checkpoint due after 10s
	// triggered 1 at sources [v0/s0]
	// ack from v0/s0 recorded
	// ack from v1/s0 complete
	// completed 1 notify [v0/s0 v1/s0]
	// restore from 1 offset [42]
	// COMPLETED 2s 1 bytes
}
