package rest

// Checkpoints is the body of GET /jobs/{jobid}/checkpoints, as Flink's
// CheckpointingStatistics.
type Checkpoints struct {
	Counts  CheckpointCounts    `json:"counts"`
	Summary CheckpointSummary   `json:"summary"`
	Latest  LatestCheckpoints   `json:"latest"`
	History []CheckpointDetails `json:"history"`
}

// CheckpointCounts counts a job's checkpoints.
type CheckpointCounts struct {
	Restored   uint64 `json:"restored"`
	Total      uint64 `json:"total"`
	InProgress int    `json:"in_progress"`
	Completed  uint64 `json:"completed"`
	Failed     uint64 `json:"failed"`
}

// CheckpointSummary summarizes the completed checkpoints of the
// history: durations in milliseconds, sizes in bytes.
type CheckpointSummary struct {
	StateSize         MinMaxAvg `json:"state_size"`
	EndToEndDuration  MinMaxAvg `json:"end_to_end_duration"`
	AlignmentBuffered MinMaxAvg `json:"alignment_buffered"`
}

// MinMaxAvg is a minimum, maximum and average.
type MinMaxAvg struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
	Avg int64 `json:"avg"`
}

// LatestCheckpoints are the newest checkpoints of each outcome.
type LatestCheckpoints struct {
	Completed *CheckpointDetails  `json:"completed"`
	Savepoint *CheckpointDetails  `json:"savepoint"`
	Failed    *CheckpointDetails  `json:"failed"`
	Restored  *RestoredCheckpoint `json:"restored"`
}

// RestoredCheckpoint is the checkpoint the job last restored.
type RestoredCheckpoint struct {
	ID               int64  `json:"id"`
	RestoreTimestamp int64  `json:"restore_timestamp"`
	ExternalPath     string `json:"external_path"`
}

// CheckpointDetails describes one checkpoint, as Flink's
// CheckpointStatistics: times in milliseconds since the epoch (-1 for not
// yet), durations in milliseconds.
type CheckpointDetails struct {
	ID                     int64  `json:"id"`
	Status                 string `json:"status"`
	IsSavepoint            bool   `json:"is_savepoint"`
	CheckpointType         string `json:"checkpoint_type"`
	TriggerTimestamp       int64  `json:"trigger_timestamp"`
	LatestAckTimestamp     int64  `json:"latest_ack_timestamp"`
	EndTimestamp           int64  `json:"end_timestamp"`
	EndToEndDuration       int64  `json:"end_to_end_duration"`
	StateSize              int64  `json:"state_size"`
	AlignmentBuffered      int64  `json:"alignment_buffered"`
	NumSubtasks            int    `json:"num_subtasks"`
	NumAcknowledgedSubtask int    `json:"num_acknowledged_subtasks"`
	ExternalPath           string `json:"external_path,omitempty"`
	FailureMessage         string `json:"failure_message,omitempty"`
}

// TriggerResponse is the answer to an asynchronous trigger.
type TriggerResponse struct {
	RequestID string `json:"request-id"`
}

// SavepointStatus is the body of GET /jobs/{jobid}/savepoints/{triggerid}.
type SavepointStatus struct {
	Status    QueueStatus         `json:"status"`
	Operation *SavepointOperation `json:"operation,omitempty"`
}

// QueueStatus is IN_PROGRESS or COMPLETED, as Flink's QueueStatus.
type QueueStatus struct {
	ID string `json:"id"`
}

// SavepointOperation is the outcome of a savepoint: its location, or
// why it failed.
type SavepointOperation struct {
	Location     string        `json:"location,omitempty"`
	FailureCause *FailureCause `json:"failure-cause,omitempty"`
}

// FailureCause describes a failure.
type FailureCause struct {
	Class      string `json:"class"`
	StackTrace string `json:"stack-trace"`
}
