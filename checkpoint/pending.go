package checkpoint

import (
	"fmt"
	"slices"
	"time"

	"github.com/flinkgo/flink/state"
)

// TaskID identifies one parallel subtask of a job: the index of its vertex in
// JobInfo.Vertices and its subtask index.
type TaskID struct {
	// Vertex is the index of the task's vertex in JobInfo.Vertices.
	Vertex int
	// Subtask is the subtask index, in [0, parallelism).
	Subtask int
}

// String returns "v<vertex>/s<subtask>".
func (t TaskID) String() string { return fmt.Sprintf("v%d/s%d", t.Vertex, t.Subtask) }

// JobInfo describes the job a Coordinator checkpoints: every subtask of
// every vertex must acknowledge a checkpoint, and the subtasks of source
// vertices receive the trigger.
type JobInfo struct {
	// ID is the job id; checkpoints live under "<ID>/chk-<n>/". Required.
	ID string
	// Name is the job's name, recorded in the metadata.
	Name string
	// Vertices are the job's (chained) vertices; TaskID.Vertex indexes them.
	Vertices []VertexInfo
}

// VertexInfo describes one vertex of a job: a chain of operators run by
// Parallelism subtasks.
type VertexInfo struct {
	// Name is for messages.
	Name string
	// Parallelism is the number of subtasks, >= 1.
	Parallelism int
	// MaxParallelism is the number of key groups; 0 means
	// state.DefaultMaxParallelism.
	MaxParallelism int
	// Source marks a vertex whose subtasks are sent the trigger: they record
	// their positions and emit the barrier.
	Source bool
	// Operators are the operators chained in the vertex. Their ids are
	// unique in the job; a subtask acknowledges state per operator id.
	Operators []OperatorInfo
}

// OperatorInfo identifies one operator of a vertex.
type OperatorInfo struct {
	// ID is the operator id state is matched by on restore. Required.
	ID string
	// UID is the user-given uid the id was derived from, if any.
	UID string
}

// Validate checks the job description.
func (j *JobInfo) Validate() error {
	if err := validName("job id", j.ID); err != nil {
		return err
	}
	if len(j.Vertices) == 0 {
		return fmt.Errorf("%w: job %q has no vertices", ErrInvalidConfig, j.ID)
	}
	ops := make(map[string]bool)
	sources := 0
	for i, v := range j.Vertices {
		maxPar := v.MaxParallelism
		if maxPar == 0 {
			maxPar = state.DefaultMaxParallelism
		}
		if v.Parallelism < 1 || maxPar < v.Parallelism || maxPar > state.UpperBoundMaxParallelism {
			return fmt.Errorf("%w: vertex %d (%s): expected 1 <= parallelism <= max parallelism <= %d, found %d and %d",
				ErrInvalidConfig, i, v.Name, state.UpperBoundMaxParallelism, v.Parallelism, v.MaxParallelism)
		}
		if v.Source {
			sources++
		}
		for _, op := range v.Operators {
			if op.ID == "" {
				return fmt.Errorf("%w: vertex %d (%s) has an operator with an empty id", ErrInvalidConfig, i, v.Name)
			}
			if ops[op.ID] {
				return fmt.Errorf("%w: operator id %q appears twice", ErrInvalidConfig, op.ID)
			}
			ops[op.ID] = true
		}
	}
	if sources == 0 {
		return fmt.Errorf("%w: job %q has no source vertex to trigger", ErrInvalidConfig, j.ID)
	}
	return nil
}

// maxParallelism returns v's max parallelism with the default applied.
func (v *VertexInfo) maxParallelism() int {
	if v.MaxParallelism == 0 {
		return state.DefaultMaxParallelism
	}
	return v.MaxParallelism
}

// tasks returns every subtask of the job, in vertex then subtask order, and
// those of source vertices.
func (j *JobInfo) tasks() (all, sources []TaskID) {
	for v, vi := range j.Vertices {
		for s := range vi.Parallelism {
			all = append(all, TaskID{Vertex: v, Subtask: s})
			if vi.Source {
				sources = append(sources, TaskID{Vertex: v, Subtask: s})
			}
		}
	}
	return all, sources
}

// hasTask reports whether t is a subtask of the job.
func (j *JobInfo) hasTask(t TaskID) bool {
	return t.Vertex >= 0 && t.Vertex < len(j.Vertices) && t.Subtask >= 0 && t.Subtask < j.Vertices[t.Vertex].Parallelism
}

// TaskAck is what a subtask sends when it has written its state for a
// checkpoint (Flink's AcknowledgeCheckpoint).
type TaskAck struct {
	// States maps the id of each operator of the subtask's vertex to the
	// state the subtask wrote for it. Operators without state may be
	// omitted. The coordinator keeps the map: do not modify it afterwards.
	States map[string]SubtaskState
	// Alignment is how long the subtask aligned barriers.
	Alignment time.Duration
	// Bytes is the size of the state the subtask persisted.
	Bytes int64
}

// validateAck checks that ack only holds state of the operators of task's
// vertex, with valid handles.
func (j *JobInfo) validateAck(task TaskID, ack TaskAck) error {
	v := &j.Vertices[task.Vertex]
	for id, st := range ack.States {
		i := slices.IndexFunc(v.Operators, func(o OperatorInfo) bool { return o.ID == id })
		if i < 0 {
			return fmt.Errorf("%w: task %s sent state for operator %q, expected one of the operators of vertex %d (%s)",
				ErrInvalidAck, task, id, task.Vertex, v.Name)
		}
		op := OperatorState{OperatorID: id, Parallelism: v.Parallelism, MaxParallelism: v.maxParallelism(),
			Subtasks: make([]SubtaskState, task.Subtask+1)}
		op.Subtasks[task.Subtask] = st
		if err := op.validate(); err != nil {
			return fmt.Errorf("%w: task %s, operator %q: %w", ErrInvalidAck, task, id, err)
		}
	}
	if ack.Bytes < 0 || ack.Alignment < 0 {
		return fmt.Errorf("%w: task %s reported %d bytes and alignment %v, expected non-negative values",
			ErrInvalidAck, task, ack.Bytes, ack.Alignment)
	}
	return nil
}

// pendingCheckpoint is a triggered checkpoint waiting for acknowledgements,
// as Flink's PendingCheckpoint.
type pendingCheckpoint struct {
	id        int64
	savepoint bool
	loc       Location
	trigger   time.Time
	deadline  time.Time
	waiting   map[TaskID]bool // tasks that have not acknowledged yet
	acks      map[TaskID]TaskAck
}

func newPending(id int64, savepoint bool, loc Location, now, deadline time.Time, tasks []TaskID) *pendingCheckpoint {
	p := &pendingCheckpoint{
		id: id, savepoint: savepoint, loc: loc, trigger: now, deadline: deadline,
		waiting: make(map[TaskID]bool, len(tasks)), acks: make(map[TaskID]TaskAck, len(tasks)),
	}
	for _, t := range tasks {
		p.waiting[t] = true
	}
	return p
}

// fullyAcknowledged reports whether every task acknowledged.
func (p *pendingCheckpoint) fullyAcknowledged() bool { return len(p.waiting) == 0 }

// metadata builds the checkpoint's metadata from the acknowledgements. It
// lists the operators that have state, in vertex and chain order.
func (p *pendingCheckpoint) metadata(job *JobInfo) *Metadata {
	m := &Metadata{
		JobID: job.ID, JobName: job.Name, CheckpointID: p.id,
		Timestamp: p.trigger.UTC(), IsSavepoint: p.savepoint,
	}
	for vi := range job.Vertices {
		v := &job.Vertices[vi]
		for _, o := range v.Operators {
			op := OperatorState{OperatorID: o.ID, UID: o.UID, Parallelism: v.Parallelism, MaxParallelism: v.maxParallelism()}
			subtasks := make([]SubtaskState, v.Parallelism)
			last := -1
			for s := range v.Parallelism {
				st := p.acks[TaskID{Vertex: vi, Subtask: s}].States[o.ID]
				if len(st.Keyed) > 0 || len(st.Operator) > 0 || len(st.Raw) > 0 {
					subtasks[s] = st
					last = s
				}
			}
			if last < 0 {
				continue
			}
			op.Subtasks = subtasks[:last+1]
			m.Operators = append(m.Operators, op)
		}
	}
	return m
}
