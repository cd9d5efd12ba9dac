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
	"github.com/flinkgo/flink/rest"
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

func restMillis(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

func restCheckpoint(c *checkpoint.CheckpointStats) *rest.CheckpointDetails {
	if c == nil {
		return nil
	}
	typ := "CHECKPOINT"
	if c.IsSavepoint {
		typ = "SAVEPOINT"
	}
	return &rest.CheckpointDetails{
		ID: c.ID, Status: c.Status.String(), IsSavepoint: c.IsSavepoint, CheckpointType: typ,
		TriggerTimestamp: restMillis(c.TriggerTime), LatestAckTimestamp: restMillis(c.LatestAckTime),
		EndTimestamp: restMillis(c.EndTime), EndToEndDuration: c.Duration.Milliseconds(),
		StateSize: c.StateSize, AlignmentBuffered: c.MaxAlignment.Milliseconds(),
		NumSubtasks: c.NumTasks, NumAcknowledgedSubtask: c.NumAcknowledged,
		ExternalPath: c.ExternalPath, FailureMessage: c.FailureReason,
	}
}

func restMMA(m checkpoint.MinMaxAvg, scale int64) rest.MinMaxAvg {
	return rest.MinMaxAvg{Min: m.Min / scale, Max: m.Max / scale, Avg: m.Avg / scale}
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
	body := rest.Checkpoints{
		Counts: rest.CheckpointCounts{Restored: st.Counts.Restored, Total: st.Counts.Triggered,
			InProgress: st.Counts.InProgress, Completed: st.Counts.Completed, Failed: st.Counts.Failed},
		Summary: rest.CheckpointSummary{StateSize: restMMA(st.Summary.StateSize, 1),
			EndToEndDuration: restMMA(st.Summary.Duration, 1), AlignmentBuffered: restMMA(st.Summary.Alignment, 1)},
		Latest: rest.LatestCheckpoints{Completed: restCheckpoint(st.LatestCompleted),
			Savepoint: restCheckpoint(st.LatestSavepoint), Failed: restCheckpoint(st.LatestFailed)},
		History: []rest.CheckpointDetails{},
	}
	if lr := st.LatestRestored; lr != nil {
		body.Latest.Restored = &rest.RestoredCheckpoint{ID: lr.ID, RestoreTimestamp: restMillis(lr.RestoreTime), ExternalPath: lr.ExternalPath}
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
		writeJSON(w, http.StatusAccepted, rest.TriggerResponse{RequestID: trigger})
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
	body := rest.SavepointStatus{Status: rest.QueueStatus{ID: "IN_PROGRESS"}}
	if op.Done {
		body.Status.ID = "COMPLETED"
		body.Operation = &rest.SavepointOperation{Location: op.Location}
		if op.Err != nil {
			body.Operation = &rest.SavepointOperation{FailureCause: &rest.FailureCause{Class: "SavepointException", StackTrace: op.Err.Error()}}
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
