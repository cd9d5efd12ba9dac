package flink

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// JobGraph is the parallel dataflow a job describes, after operator
// chaining: vertices of chained operators and the edges between them, with
// their partitioners. Every process that builds a job from the same binary,
// name and arguments builds the same JobGraph, with the same Fingerprint.
type JobGraph struct {
	// Name is the job's name.
	Name string
	// Config is the job's configuration.
	Config JobConfig
	// Vertices are in topological order; a vertex's ID is its index.
	Vertices []*JobVertex
	// Edges connect vertices; an edge's ID is its index.
	Edges []*JobEdge
	// Fingerprint is a hash of the graph's structure: vertices, chained
	// operators with their types, parallelism and edges.
	Fingerprint string
	// Spec says how to rebuild the graph from a registry; empty for a graph
	// described directly on an Env.
	Spec JobSpec
}

// JobSpec names a registered job, its arguments and the parallelism
// settings it was built with: what another process needs to rebuild the
// same JobGraph from its own registry.
type JobSpec struct {
	Name           string
	Args           []string
	Parallelism    int
	MaxParallelism int
}

// equal reports whether s and o describe the same submission: a graph
// built for one holds the closures of its arguments and must not serve the
// other.
func (s JobSpec) equal(o JobSpec) bool {
	return s.Name == o.Name && slices.Equal(s.Args, o.Args) &&
		s.Parallelism == o.Parallelism && s.MaxParallelism == o.MaxParallelism
}

// JobVertex is one task of the JobGraph: a chain of operators that runs as
// one subtask per degree of parallelism.
type JobVertex struct {
	ID          int
	Name        string
	Parallelism int
	// MaxParallelism is the job's number of key groups.
	MaxParallelism   int
	SlotSharingGroup string
	// Operators are the chained operators, head first.
	Operators []OperatorInfo
	// Inputs and Outputs are the IDs of the vertex's edges.
	Inputs  []int
	Outputs []int

	ops []*transformation
}

// IsSource reports whether the vertex starts with a source.
func (v *JobVertex) IsSource() bool { return v.ops[0].kind == kindSource }

// OperatorInfo describes one operator of a chain.
type OperatorInfo struct {
	// ID identifies the operator's state in checkpoints and savepoints: a
	// hash of its UID when it has one, else of its position in the job and
	// its type. Set UIDs on stateful operators so that savepoints survive
	// changes to the job's shape, as in Flink.
	ID   string
	Name string
	UID  string
	Type string
}

// operatorID derives an operator's state id.
func operatorID(t *transformation) string {
	var key string
	if t.uid != "" {
		key = "uid:" + t.uid
	} else {
		key = fmt.Sprintf("auto:%d:%s", t.id, t.opType)
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// JobEdge carries records from one vertex to another.
type JobEdge struct {
	ID          int
	Source      int
	Target      int
	Partitioner string

	part       partitionKind
	from, to   *transformation
	keyGroupOf any
	tag        string // the side output of from it reads; "" for the main output
}

// recordType is the type of the records the edge carries.
func (e *JobEdge) recordType() streamType { return e.from.outputType(e.tag) }

// SlotsNeeded returns the number of slots the job needs: with slot sharing
// one slot runs one parallel slice of every vertex of a slot sharing group,
// so each group needs as many slots as its largest parallelism.
func (g *JobGraph) SlotsNeeded() int {
	n := 0
	for _, p := range g.slotGroups() {
		n += p
	}
	return n
}

// slotGroups returns each slot sharing group's largest parallelism.
func (g *JobGraph) slotGroups() map[string]int {
	m := make(map[string]int)
	for _, v := range g.Vertices {
		m[v.SlotSharingGroup] = max(m[v.SlotSharingGroup], v.Parallelism)
	}
	return m
}

// String renders the graph for humans: one line per vertex and edge.
func (g *JobGraph) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "JobGraph %q (fingerprint %.12s)\n", g.Name, g.Fingerprint)
	for _, v := range g.Vertices {
		fmt.Fprintf(&b, "  vertex %d %q parallelism %d group %s\n", v.ID, v.Name, v.Parallelism, v.SlotSharingGroup)
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  edge %d: %d -> %d %s\n", e.ID, e.Source, e.Target, e.Partitioner)
	}
	return b.String()
}

// buildJobGraph chains transformations into vertices. Creation order is a
// topological order, since an operator's inputs exist before it.
func buildJobGraph(cfg JobConfig, ts []*transformation) (*JobGraph, error) {
	g := &JobGraph{Name: cfg.Name, Config: cfg}
	uids := make(map[string]string, len(ts))
	for _, t := range ts {
		if t.uid == "" {
			continue
		}
		if other, dup := uids[t.uid]; dup {
			return nil, fmt.Errorf("%w: operators %q and %q share the uid %q; uids must be unique", ErrInvalidConfig, other, t.name, t.uid)
		}
		uids[t.uid] = t.name
	}
	par := make(map[*transformation]int, len(ts))
	vertexOf := make(map[*transformation]*JobVertex, len(ts))
	hasSink := false
	for _, t := range ts {
		p := t.parallelism
		if p == 0 {
			p = cfg.Parallelism
			if t.maxPar > 0 {
				p = min(p, t.maxPar)
			}
		}
		if t.maxPar > 0 && p > t.maxPar {
			return nil, fmt.Errorf("%w: operator %q is not parallel: parallelism %d, at most %d", ErrInvalidConfig, t.name, p, t.maxPar)
		}
		if p > cfg.MaxParallelism {
			return nil, fmt.Errorf("%w: operator %q: parallelism %d exceeds max parallelism %d", ErrInvalidConfig, t.name, p, cfg.MaxParallelism)
		}
		par[t] = p
		if t.kind == kindSink {
			hasSink = true
		}

		parts := make([]partitionKind, len(t.inputs))
		for i, in := range t.inputs {
			switch {
			case in.from.kind == kindSink:
				return nil, fmt.Errorf("flink: operator %q reads from sink %q", t.name, in.from.name)
			case in.part == partDefault && par[in.from] == p:
				parts[i] = partForward
			case in.part == partDefault:
				parts[i] = partRebalance
			case in.part == partForward && par[in.from] != p:
				return nil, fmt.Errorf("%w: forward partitioning from %q (parallelism %d) to %q (parallelism %d) needs equal parallelism",
					ErrInvalidConfig, in.from.name, par[in.from], t.name, p)
			default:
				parts[i] = in.part
			}
		}

		if len(t.inputs) == 1 && chainable(cfg, t, t.inputs[0].from, parts[0], par) {
			v := vertexOf[t.inputs[0].from]
			v.ops = append(v.ops, t)
			vertexOf[t] = v
			continue
		}
		v := &JobVertex{ID: len(g.Vertices), Parallelism: p, MaxParallelism: cfg.MaxParallelism, SlotSharingGroup: t.slotGroup, ops: []*transformation{t}}
		g.Vertices = append(g.Vertices, v)
		vertexOf[t] = v
		for i, in := range t.inputs {
			src := vertexOf[in.from]
			e := &JobEdge{ID: len(g.Edges), Source: src.ID, Target: v.ID, Partitioner: parts[i].String(),
				part: parts[i], from: in.from, to: t, keyGroupOf: in.keyGroupOf, tag: in.tag}
			g.Edges = append(g.Edges, e)
			src.Outputs = append(src.Outputs, e.ID)
			v.Inputs = append(v.Inputs, e.ID)
		}
	}
	if !hasSink {
		return nil, fmt.Errorf("%w: the job has no sink", ErrInvalidConfig)
	}
	for _, v := range g.Vertices {
		names := make([]string, len(v.ops))
		for i, t := range v.ops {
			names[i] = t.name
			v.Operators = append(v.Operators, OperatorInfo{ID: operatorID(t), Name: t.name, UID: t.uid, Type: t.opType})
		}
		v.Name = strings.Join(names, " -> ")
		if v.IsSource() {
			v.Name = "Source: " + v.Name
		}
	}
	g.Fingerprint = fingerprint(g)
	return g, nil
}

// chainable reports whether t runs in the same subtask as its single input
// from, as plain function calls: Flink's StreamingJobGraphGenerator.isChainable.
func chainable(cfg JobConfig, t, from *transformation, part partitionKind, par map[*transformation]int) bool {
	return !cfg.DisableChaining &&
		part == partForward &&
		par[t] == par[from] &&
		t.slotGroup == from.slotGroup &&
		t.chaining == chainAlways &&
		from.chaining != chainNever
}

// fingerprint hashes what must agree between processes running one job.
func fingerprint(g *JobGraph) string {
	h := sha256.New()
	fmt.Fprintf(h, "maxpar=%d\n", g.Config.MaxParallelism)
	for _, v := range g.Vertices {
		fmt.Fprintf(h, "v%d p=%d g=%q\n", v.ID, v.Parallelism, v.SlotSharingGroup)
		for _, t := range v.ops {
			out := "-"
			if t.outType != nil {
				out = t.outType.String()
			}
			fmt.Fprintf(h, "  op %s %q uid=%q out=%s\n", t.opType, t.name, t.uid, out)
		}
	}
	for _, e := range g.Edges {
		fmt.Fprintf(h, "e %d->%d %s from=%d to=%d\n", e.Source, e.Target, e.Partitioner, e.from.id, e.to.id)
		if e.tag != "" {
			fmt.Fprintf(h, "  side %q %s\n", e.tag, e.recordType())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ExecutionState is the state of one execution attempt of a subtask, as
// Flink's ExecutionState.
type ExecutionState uint8

// The execution states. Only the transitions in legalTransitions happen.
const (
	Created ExecutionState = iota
	Scheduled
	Deploying
	Running
	Finished
	Canceling
	Canceled
	Failed
)

var stateNames = [...]string{"CREATED", "SCHEDULED", "DEPLOYING", "RUNNING", "FINISHED", "CANCELING", "CANCELED", "FAILED"}

func (s ExecutionState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("ExecutionState(%d)", s)
}

// IsTerminal reports whether no transition leaves s.
func (s ExecutionState) IsTerminal() bool { return s == Finished || s == Canceled || s == Failed }

// legalTransitions lists, for each state, the states it may move to.
var legalTransitions = [...][]ExecutionState{
	Created:   {Scheduled, Canceled, Failed},
	Scheduled: {Deploying, Canceled, Failed},
	Deploying: {Running, Canceling, Canceled, Failed},
	Running:   {Finished, Canceling, Failed},
	Canceling: {Canceled, Finished, Failed},
}

// CanTransition reports whether an execution may move from s to to.
func (s ExecutionState) CanTransition(to ExecutionState) bool {
	if int(s) >= len(legalTransitions) {
		return false
	}
	for _, t := range legalTransitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// ExecutionAttemptID identifies one attempt of one subtask of a job.
type ExecutionAttemptID struct {
	Job     JobID
	Vertex  int
	Subtask int
	Attempt int
}

func (id ExecutionAttemptID) String() string {
	return fmt.Sprintf("%s/v%d/s%d/a%d", id.Job, id.Vertex, id.Subtask, id.Attempt)
}

// ExecutionGraph is the JobGraph expanded to subtasks: one ExecutionVertex
// per vertex and degree of parallelism, each with its current attempt. It is
// owned by one JobManager goroutine and not safe for concurrent use.
type ExecutionGraph struct {
	JobID JobID
	Graph *JobGraph
	// Attempt counts restarts of the whole job.
	Attempt int
	// Subtasks[v][i] is subtask i of vertex v.
	Subtasks [][]*ExecutionVertex
}

// ExecutionVertex is one parallel subtask of a JobVertex.
type ExecutionVertex struct {
	Vertex  *JobVertex
	Subtask int
	// ID is the current attempt's id.
	ID    ExecutionAttemptID
	State ExecutionState
	// Location is the TaskManager the attempt is deployed to.
	Location ResourceID
	// Failure is why the attempt failed, for a FAILED attempt.
	Failure error
}

// TaskName names the subtask as Flink does: "name (2/4)#0".
func (ev *ExecutionVertex) TaskName() string {
	return fmt.Sprintf("%s (%d/%d)#%d", ev.Vertex.Name, ev.Subtask+1, ev.Vertex.Parallelism, ev.ID.Attempt)
}

// NewExecutionGraph expands g for job id.
func NewExecutionGraph(id JobID, g *JobGraph) *ExecutionGraph {
	eg := &ExecutionGraph{JobID: id, Graph: g, Subtasks: make([][]*ExecutionVertex, len(g.Vertices))}
	for _, v := range g.Vertices {
		subs := make([]*ExecutionVertex, v.Parallelism)
		for i := range subs {
			subs[i] = &ExecutionVertex{Vertex: v, Subtask: i, ID: ExecutionAttemptID{Job: id, Vertex: v.ID, Subtask: i}}
		}
		eg.Subtasks[v.ID] = subs
	}
	return eg
}

// All returns every execution vertex, vertex by vertex.
func (eg *ExecutionGraph) All() []*ExecutionVertex {
	var all []*ExecutionVertex
	for _, subs := range eg.Subtasks {
		all = append(all, subs...)
	}
	return all
}

// Lookup returns the execution vertex whose current attempt is id, or nil
// for an unknown or outdated attempt.
func (eg *ExecutionGraph) Lookup(id ExecutionAttemptID) *ExecutionVertex {
	if id.Job != eg.JobID || id.Vertex < 0 || id.Vertex >= len(eg.Subtasks) {
		return nil
	}
	subs := eg.Subtasks[id.Vertex]
	if id.Subtask < 0 || id.Subtask >= len(subs) || subs[id.Subtask].ID != id {
		return nil
	}
	return subs[id.Subtask]
}

// Transition moves ev to state to, or returns ErrIllegalTransition.
func (ev *ExecutionVertex) Transition(to ExecutionState) error {
	if !ev.State.CanTransition(to) {
		return fmt.Errorf("%w: %s of %s from %s to %s", ErrIllegalTransition, ev.ID, ev.TaskName(), ev.State, to)
	}
	ev.State = to
	return nil
}

// Reset starts a new attempt of every subtask, for a restart of the whole
// job. Every current attempt must be terminal.
func (eg *ExecutionGraph) Reset() error {
	for _, ev := range eg.All() {
		if !ev.State.IsTerminal() && ev.State != Created {
			return fmt.Errorf("%w: restarting while %s is %s", ErrIllegalTransition, ev.ID, ev.State)
		}
	}
	eg.Attempt++
	for _, ev := range eg.All() {
		ev.ID.Attempt = eg.Attempt
		ev.State, ev.Location, ev.Failure = Created, "", nil
	}
	return nil
}

// AllIn reports whether every subtask is in one of states. It allocates
// nothing: a JobManager asks after every state report.
func (eg *ExecutionGraph) AllIn(states ...ExecutionState) bool {
	for _, subs := range eg.Subtasks {
		for _, ev := range subs {
			if !slices.Contains(states, ev.State) {
				return false
			}
		}
	}
	return true
}
