package flink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flinkgo/flink/checkpoint"
)

// The REST API's checkpoint and savepoint endpoints, in Flink's shapes:
//
//	GET   /jobs/{jobid}/checkpoints                     counts, summary, latest, history
//	GET   /jobs/{jobid}/checkpoints/details/{id}        one checkpoint of the history
//	POST  /jobs/{jobid}/savepoints                      trigger: {"target-directory", "cancel-job"} -> {"request-id"}
//	GET   /jobs/{jobid}/savepoints/{triggerid}          {"status": {"id": IN_PROGRESS|COMPLETED}, "operation": {...}}
//	POST  /jobs/{jobid}/stop                            stop with savepoint: {"targetDirectory"} -> {"request-id"}
//
// A savepoint goes into a fresh savepoint-<job>-<random> directory inside
// its target directory, its "location"; a target outside the storage's
// savepoint roots is a 400.

// SavepointOperation is the state of an asynchronous savepoint request.
type SavepointOperation struct {
	// Done is false while the savepoint is being taken.
	Done bool
	// Location is where the completed savepoint is: pass it as
	// JobSubmission.SavepointPath.
	Location string
	// Err is why it failed.
	Err error
}

// StartSavepoint triggers a savepoint of a running job, as TriggerSavepoint,
// without waiting for it: it checks the job and target and makes the
// savepoint's fresh directory (ctx bounds that), then returns a request id
// for SavepointStatus. A target outside the checkpoint storage's savepoint
// roots fails at once with checkpoint.ErrInvalidName.
func (d *Dispatcher) StartSavepoint(ctx context.Context, id JobID, target string, stop bool) (string, error) {
	j, err := d.job(id)
	if err != nil {
		return "", err
	}
	loc, err := j.jm.prepareSavepoint(ctx, target)
	if err != nil {
		return "", err
	}
	trigger := randomHex(16)
	d.mu.Lock()
	if d.mu.closed {
		d.mu.Unlock()
		j.jm.ckpt.dropSavepoint(loc)
		return "", ErrClosed
	}
	if d.mu.savepoints == nil {
		d.mu.savepoints = make(map[string]*SavepointOperation)
	}
	op := &SavepointOperation{}
	d.mu.savepoints[string(id)+"/"+trigger] = op
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		// The wait ends when the savepoint completes or fails, or the job ends.
		path, err := j.jm.takeSavepoint(context.Background(), loc, stop)
		d.mu.Lock()
		op.Done, op.Location, op.Err = true, path, err
		d.mu.Unlock()
	}()
	return trigger, nil
}

// SavepointStatus returns the state of a savepoint request.
func (d *Dispatcher) SavepointStatus(id JobID, trigger string) (SavepointOperation, error) {
	if _, err := d.job(id); err != nil {
		return SavepointOperation{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	op, ok := d.mu.savepoints[string(id)+"/"+trigger]
	if !ok {
		return SavepointOperation{}, fmt.Errorf("%w: job %s has no savepoint request %q", ErrUnknownJob, id, trigger)
	}
	return *op, nil
}

// RESTCheckpoints is the body of GET /jobs/{jobid}/checkpoints, as Flink's
// CheckpointingStatistics.
type RESTCheckpoints struct {
	Counts  RESTCheckpointCounts    `json:"counts"`
	Summary RESTCheckpointSummary   `json:"summary"`
	Latest  RESTLatestCheckpoints   `json:"latest"`
	History []RESTCheckpointDetails `json:"history"`
}

// RESTCheckpointCounts counts a job's checkpoints.
type RESTCheckpointCounts struct {
	Restored   uint64 `json:"restored"`
	Total      uint64 `json:"total"`
	InProgress int    `json:"in_progress"`
	Completed  uint64 `json:"completed"`
	Failed     uint64 `json:"failed"`
}

// RESTCheckpointSummary summarizes the completed checkpoints of the
// history: durations in milliseconds, sizes in bytes.
type RESTCheckpointSummary struct {
	StateSize         RESTMinMaxAvg `json:"state_size"`
	EndToEndDuration  RESTMinMaxAvg `json:"end_to_end_duration"`
	AlignmentBuffered RESTMinMaxAvg `json:"alignment_buffered"`
}

// RESTMinMaxAvg is a minimum, maximum and average.
type RESTMinMaxAvg struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
	Avg int64 `json:"avg"`
}

// RESTLatestCheckpoints are the newest checkpoints of each outcome.
type RESTLatestCheckpoints struct {
	Completed *RESTCheckpointDetails  `json:"completed"`
	Savepoint *RESTCheckpointDetails  `json:"savepoint"`
	Failed    *RESTCheckpointDetails  `json:"failed"`
	Restored  *RESTRestoredCheckpoint `json:"restored"`
}

// RESTRestoredCheckpoint is the checkpoint the job last restored.
type RESTRestoredCheckpoint struct {
	ID               int64  `json:"id"`
	RestoreTimestamp int64  `json:"restore_timestamp"`
	ExternalPath     string `json:"external_path"`
}

// RESTCheckpointDetails describes one checkpoint, as Flink's
// CheckpointStatistics: times in milliseconds since the epoch (-1 for not
// yet), durations in milliseconds.
type RESTCheckpointDetails struct {
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

func restMillis(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

func restCheckpoint(c *checkpoint.CheckpointStats) *RESTCheckpointDetails {
	if c == nil {
		return nil
	}
	typ := "CHECKPOINT"
	if c.IsSavepoint {
		typ = "SAVEPOINT"
	}
	return &RESTCheckpointDetails{
		ID: c.ID, Status: c.Status.String(), IsSavepoint: c.IsSavepoint, CheckpointType: typ,
		TriggerTimestamp: restMillis(c.TriggerTime), LatestAckTimestamp: restMillis(c.LatestAckTime),
		EndTimestamp: restMillis(c.EndTime), EndToEndDuration: c.Duration.Milliseconds(),
		StateSize: c.StateSize, AlignmentBuffered: c.MaxAlignment.Milliseconds(),
		NumSubtasks: c.NumTasks, NumAcknowledgedSubtask: c.NumAcknowledged,
		ExternalPath: c.ExternalPath, FailureMessage: c.FailureReason,
	}
}

func restMMA(m checkpoint.MinMaxAvg, scale int64) RESTMinMaxAvg {
	return RESTMinMaxAvg{Min: m.Min / scale, Max: m.Max / scale, Avg: m.Avg / scale}
}

// checkpointStats answers 404 for an unknown job and for a cluster without
// checkpoint storage.
func (s *RESTServer) checkpointStats(w http.ResponseWriter, r *http.Request) (checkpoint.Stats, bool) {
	id, ok := parseJobID(w, r)
	if !ok {
		return checkpoint.Stats{}, false
	}
	st, ok, err := s.d.CheckpointStats(id)
	switch {
	case err != nil:
		writeError(w, http.StatusNotFound, fmt.Sprintf("job %s not found", id))
		return st, false
	case !ok:
		writeError(w, http.StatusNotFound, "checkpointing is not enabled: the cluster has no checkpoint storage")
		return st, false
	}
	return st, true
}

func (s *RESTServer) getCheckpoints(w http.ResponseWriter, r *http.Request) {
	st, ok := s.checkpointStats(w, r)
	if !ok {
		return
	}
	body := RESTCheckpoints{
		Counts: RESTCheckpointCounts{Restored: st.Counts.Restored, Total: st.Counts.Triggered,
			InProgress: st.Counts.InProgress, Completed: st.Counts.Completed, Failed: st.Counts.Failed},
		Summary: RESTCheckpointSummary{StateSize: restMMA(st.Summary.StateSize, 1),
			EndToEndDuration: restMMA(st.Summary.Duration, 1), AlignmentBuffered: restMMA(st.Summary.Alignment, 1)},
		Latest: RESTLatestCheckpoints{Completed: restCheckpoint(st.LatestCompleted),
			Savepoint: restCheckpoint(st.LatestSavepoint), Failed: restCheckpoint(st.LatestFailed)},
		History: []RESTCheckpointDetails{},
	}
	if lr := st.LatestRestored; lr != nil {
		body.Latest.Restored = &RESTRestoredCheckpoint{ID: lr.ID, RestoreTimestamp: restMillis(lr.RestoreTime), ExternalPath: lr.ExternalPath}
	}
	for i := range st.History {
		body.History = append(body.History, *restCheckpoint(&st.History[i]))
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *RESTServer) getCheckpointDetails(w http.ResponseWriter, r *http.Request) {
	st, ok := s.checkpointStats(w, r)
	if !ok {
		return
	}
	cid, err := strconv.ParseInt(r.PathValue("checkpointid"), 10, 64)
	if err != nil || cid < 1 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid checkpoint id %q", r.PathValue("checkpointid")))
		return
	}
	c, ok := st.Checkpoint(cid)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("checkpoint %d is not in the job's checkpoint history", cid))
		return
	}
	writeJSON(w, http.StatusOK, restCheckpoint(&c))
}

// RESTTriggerResponse is the answer to an asynchronous trigger.
type RESTTriggerResponse struct {
	RequestID string `json:"request-id"`
}

// RESTSavepointStatus is the body of GET /jobs/{jobid}/savepoints/{triggerid}.
type RESTSavepointStatus struct {
	Status    RESTQueueStatus         `json:"status"`
	Operation *RESTSavepointOperation `json:"operation,omitempty"`
}

// RESTQueueStatus is IN_PROGRESS or COMPLETED, as Flink's QueueStatus.
type RESTQueueStatus struct {
	ID string `json:"id"`
}

// RESTSavepointOperation is the outcome of a savepoint: its location, or
// why it failed.
type RESTSavepointOperation struct {
	Location     string            `json:"location,omitempty"`
	FailureCause *RESTFailureCause `json:"failure-cause,omitempty"`
}

// RESTFailureCause describes a failure.
type RESTFailureCause struct {
	Class      string `json:"class"`
	StackTrace string `json:"stack-trace"`
}

func (s *RESTServer) postSavepoint(w http.ResponseWriter, r *http.Request, stop bool) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	var req struct {
		TargetDirectory  string `json:"target-directory"`
		TargetDirectory2 string `json:"targetDirectory"` // /stop's spelling
		CancelJob        bool   `json:"cancel-job"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRESTBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	target := req.TargetDirectory
	if target == "" {
		target = req.TargetDirectory2
	}
	trigger, err := s.d.StartSavepoint(r.Context(), id, target, stop || req.CancelJob)
	switch {
	case errors.Is(err, ErrUnknownJob):
		writeError(w, http.StatusNotFound, fmt.Sprintf("job %s not found", id))
	case errors.Is(err, checkpoint.ErrInvalidName):
		writeError(w, http.StatusBadRequest, "invalid savepoint target: "+invalidNameDetail(err))
	case errors.Is(err, ErrJobNotRunning), errors.Is(err, ErrJobEnding), errors.Is(err, ErrNoCheckpointStorage):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		s.log.Info("savepoint requested", "job", id, "stop", stop, "request", trigger)
		writeJSON(w, http.StatusAccepted, RESTTriggerResponse{RequestID: trigger})
	}
}

func (s *RESTServer) getSavepoint(w http.ResponseWriter, r *http.Request) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	op, err := s.d.SavepointStatus(id, r.PathValue("triggerid"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	body := RESTSavepointStatus{Status: RESTQueueStatus{ID: "IN_PROGRESS"}}
	if op.Done {
		body.Status.ID = "COMPLETED"
		body.Operation = &RESTSavepointOperation{Location: op.Location}
		if op.Err != nil {
			body.Operation = &RESTSavepointOperation{FailureCause: &RESTFailureCause{Class: "SavepointException", StackTrace: op.Err.Error()}}
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// mountCheckpoints adds the checkpoint and savepoint endpoints.
func (s *RESTServer) mountCheckpoints(mux *http.ServeMux) {
	mux.HandleFunc("GET /jobs/{jobid}/checkpoints", s.getCheckpoints)
	mux.HandleFunc("GET /jobs/{jobid}/checkpoints/details/{checkpointid}", s.getCheckpointDetails)
	mux.HandleFunc("POST /jobs/{jobid}/savepoints", func(w http.ResponseWriter, r *http.Request) { s.postSavepoint(w, r, false) })
	mux.HandleFunc("GET /jobs/{jobid}/savepoints/{triggerid}", s.getSavepoint)
	mux.HandleFunc("POST /jobs/{jobid}/stop", func(w http.ResponseWriter, r *http.Request) { s.postSavepoint(w, r, true) })
}

// invalidNameDetail returns what err, which wraps checkpoint.ErrInvalidName,
// says after it (the path and why it is refused), without the context the
// wrappers add.
func invalidNameDetail(err error) string {
	msg := err.Error()
	if _, detail, ok := strings.Cut(msg, checkpoint.ErrInvalidName.Error()+": "); ok {
		return detail
	}
	return msg
}
