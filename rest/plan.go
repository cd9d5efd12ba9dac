package rest

// JobPlan is the body of GET /jobs/{jobid}/plan, as Flink's JobPlanInfo.
type JobPlan struct {
	Plan Plan `json:"plan"`
}

// Plan is a job's dataflow: its vertices in topological order.
type Plan struct {
	JID   JobID      `json:"jid"`
	Name  string     `json:"name"`
	Type  string     `json:"type"`
	Nodes []PlanNode `json:"nodes"`
}

// PlanNode is one vertex of a plan. ID is the vertex's ID as in
// GET /jobs/{jobid}; Description is its name, the chained operators'
// names joined by " -> ".
type PlanNode struct {
	ID               string      `json:"id"`
	Parallelism      int         `json:"parallelism"`
	Operator         string      `json:"operator"`
	OperatorStrategy string      `json:"operator_strategy"`
	Description      string      `json:"description"`
	Inputs           []PlanInput `json:"inputs,omitempty"`
}

// PlanInput is an edge into a plan node: ID is the producing node and
// ShipStrategy its partitioner (FORWARD, REBALANCE, HASH, BROADCAST).
type PlanInput struct {
	Num          int    `json:"num"`
	ID           string `json:"id"`
	ShipStrategy string `json:"ship_strategy"`
	Exchange     string `json:"exchange"`
}

// BackPressure is the body of GET
// /jobs/{jobid}/vertices/{vertexid}/backpressure, as Flink's
// JobVertexBackPressureInfo. Status is "ok" when every running subtask
// has been measured and "deprecated" while some have not (the first
// request for a subtask starts its measurement, which takes a few
// seconds; Subtasks then lists those measured). Level is the highest
// level of the subtasks.
type BackPressure struct {
	Status       string                `json:"status"`
	Level        string                `json:"backpressureLevel"`
	EndTimestamp int64                 `json:"end-timestamp"`
	Subtasks     []SubtaskBackPressure `json:"subtasks"`
}

// SubtaskBackPressure is one subtask's share of wall-clock time spent
// back-pressured (Ratio: waiting for an output buffer), idle (waiting for
// input) and busy (the rest), over the last few seconds. Level is "ok" up
// to a ratio of 0.1, "low" up to 0.5 and "high" above, as in Flink.
type SubtaskBackPressure struct {
	Subtask   int     `json:"subtask"`
	Attempt   int     `json:"attempt-number"`
	Level     string  `json:"backpressureLevel"`
	Ratio     float64 `json:"ratio"`
	IdleRatio float64 `json:"idleRatio"`
	BusyRatio float64 `json:"busyRatio"`
}

// Metric is one metric's value, as an item of Flink's metric
// collection responses: the value is a string.
type Metric struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}
