package flink

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// Errors a caller can match with errors.Is.
var (
	// ErrUnknownJob: no job is registered under the name, or no job has the id.
	ErrUnknownJob = errors.New("flink: unknown job")
	// ErrUserPanic wraps a panic raised by user code.
	ErrUserPanic = errors.New("flink: user function panicked")
	// ErrIllegalTransition: an execution was asked to move between states
	// that Flink's state machine does not connect.
	ErrIllegalTransition = errors.New("flink: illegal execution state transition")
	// ErrNotEnoughSlots: the job needed more slots than the cluster offered
	// within the slot request timeout.
	ErrNotEnoughSlots = errors.New("flink: not enough slots")
	// ErrJobCanceled: the job was cancelled before it finished.
	ErrJobCanceled = errors.New("flink: job canceled")
	// ErrClosed: the component was closed.
	ErrClosed = errors.New("flink: closed")
	// ErrFingerprintMismatch: a process built a different JobGraph from the
	// same job name and arguments: a different binary.
	ErrFingerprintMismatch = errors.New("flink: job graph fingerprint mismatch")
	// ErrJobNotRunning: the operation needs a running job. A job that is
	// still deploying or restarting may be asked again.
	ErrJobNotRunning = errors.New("flink: job not running")
	// ErrJobEnding: a savepoint was asked of a bounded job whose sources
	// have read all their input, or whose subtasks are finishing: the job
	// ends by itself, FINISHED, and no savepoint can be taken of it any
	// more. Asking again cannot succeed; wait for the job's result
	// instead (a stop-with-savepoint is then not needed).
	ErrJobEnding = errors.New("flink: job is ending: its sources have read all their input")
	// ErrRestoreMismatch: a checkpoint or savepoint does not fit the job
	// told to start from it.
	ErrRestoreMismatch = errors.New("flink: checkpoint does not match the job")
	// ErrNoCheckpointStorage: checkpoints or savepoints were asked for on a
	// cluster without checkpoint storage.
	ErrNoCheckpointStorage = errors.New("flink: no checkpoint storage configured")
	// ErrStaleLeader: a call was made on behalf of a JobManager leader
	// that has been superseded (its fencing token is older than the
	// newest the receiver has seen), or reached a node that does not
	// lead.
	ErrStaleLeader = errors.New("flink: stale or no leader")
	// ErrIdentityMismatch: with security on, a node acted under an id its
	// certificate does not carry (a TaskManager registering as another).
	ErrIdentityMismatch = errors.New("flink: identity does not match the peer's certificate")
	// ErrTaskManagerIDInUse: a TaskManager registered under the id of
	// another that is registered and still answers at its address (a
	// second process started with the same id): the registration is
	// refused, and the first keeps its slots.
	ErrTaskManagerIDInUse = errors.New("flink: task manager id in use")
)

// errTaskStopping is returned to user code that emits while its task is
// being cancelled or has failed elsewhere.
var errTaskStopping = errors.New("flink: task is stopping")

// operatorError is an error raised by the user code of one operator.
type operatorError struct {
	op  string
	err error
}

func (e *operatorError) Error() string { return fmt.Sprintf("operator %q: %v", e.op, e.err) }
func (e *operatorError) Unwrap() error { return e.err }

// TaskError is the error of a failed subtask: which operator of which
// subtask failed, in which attempt, and why.
type TaskError struct {
	// Task is the chained task's name.
	Task string
	// Operator is the operator whose code failed; empty when the failure
	// was not in user code (a lost TaskManager, a broken exchange).
	Operator string
	Subtask  int
	Attempt  int
	Err      error
}

func (e *TaskError) Error() string {
	if e.Operator != "" {
		return fmt.Sprintf("flink: operator %q of task %q failed in subtask %d, attempt %d: %v", e.Operator, e.Task, e.Subtask, e.Attempt, e.Err)
	}
	return fmt.Sprintf("flink: task %q failed in subtask %d, attempt %d: %v", e.Task, e.Subtask, e.Attempt, e.Err)
}

func (e *TaskError) Unwrap() error { return e.Err }

func newTaskError(taskName string, subtask, attempt int, err error) *TaskError {
	te := &TaskError{Task: taskName, Subtask: subtask, Attempt: attempt, Err: err}
	var opErr *operatorError
	if errors.As(err, &opErr) {
		te.Operator, te.Err = opErr.op, opErr.err
	}
	return te
}

// JobID identifies a submitted job: 32 hex digits, as Flink's JobID.
type JobID string

// NewJobID returns a random JobID.
func NewJobID() JobID { return JobID(randomHex(16)) }

// ResourceID identifies a TaskManager.
type ResourceID string

// AllocationID identifies one allocation of a slot to a job.
type AllocationID string

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("flink: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b)
}
