package flink

import (
	"context"
	"fmt"
	"sync"

	"github.com/flinkgo/flink/checkpoint"
)

// The roles talk only through these gateways, by address, as Flink's
// RpcGateways: in one process a gateway is the role itself; across
// processes it is an RPC stub. Every method may block until ctx is done and
// may be called concurrently.

// ResourceManagerGateway is the ResourceManager as other roles see it.
type ResourceManagerGateway interface {
	// RegisterTaskManager adds a TaskManager and its slots, or refreshes
	// them when it registers again. A registration under the id of another
	// TaskManager instance that still answers at its address fails with
	// ErrTaskManagerIDInUse.
	RegisterTaskManager(ctx context.Context, reg TaskManagerRegistration) error
	// RequestSlots asks for req.Count slots for a job. Slots arrive
	// asynchronously: TaskManagers offer them to req.JobManager. Slots that
	// are not free now are allocated as TaskManagers register, until the
	// request is cancelled.
	RequestSlots(ctx context.Context, req SlotRequest) error
	// CancelSlotRequests drops the job's pending slot requests.
	CancelSlotRequests(ctx context.Context, job JobID) error
	// NotifySlotFree tells the ResourceManager a TaskManager freed a slot.
	NotifySlotFree(ctx context.Context, tm ResourceID, alloc AllocationID) error
	// SlotCounts returns the cluster's total and free slots.
	SlotCounts(ctx context.Context) (total, free int, err error)
	// Heartbeat tells the ResourceManager a TaskManager is alive, with its
	// slots and figures. A TaskManager that misses heartbeats for the
	// heartbeat timeout is declared lost.
	Heartbeat(ctx context.Context, hb TaskManagerHeartbeat) error
}

// TaskManagerHeartbeat is what a TaskManager sends with every heartbeat.
type TaskManagerHeartbeat struct {
	ID ResourceID
	// Instance is the TaskManager's, as registered: a heartbeat of another
	// instance than the registered one under the same ID is refused, and
	// its sender asked to register (see RegisterTaskManager).
	Instance string
	Slots    []SlotStatus
	// Stats are its memory and network buffer figures, sampled for the
	// heartbeat.
	Stats TaskManagerStats
}

// TaskManagerRegistration is a TaskManager introducing itself.
type TaskManagerRegistration struct {
	ID      ResourceID
	Address string
	Slots   []SlotStatus
	// Fingerprint is the TaskManager's Registry.Fingerprint; a
	// ResourceManager with a different one refuses it.
	Fingerprint string
	// Instance is random per TaskManager process (per TaskManager value):
	// a registration under a known ID with another instance is a restarted
	// TaskManager, and what the previous one ran is lost.
	Instance string
}

// SlotRequest asks the ResourceManager for slots.
type SlotRequest struct {
	Job        JobID
	JobManager string // address the slots are offered to
	Count      int
	Profile    ResourceProfile
}

// TaskManagerGateway is a TaskManager as other roles see it.
type TaskManagerGateway interface {
	// RequestSlot allocates a slot to a job; the TaskManager then offers it
	// to the job's JobManager. Idempotent for the same allocation.
	RequestSlot(ctx context.Context, slot SlotID, job JobID, alloc AllocationID, jobManager string) error
	// SubmitTask deploys a subtask into a slot the job holds.
	SubmitTask(ctx context.Context, tdd TaskDeploymentDescriptor) error
	// CancelTask stops a running subtask; its final state is reported to
	// its JobManager. Cancelling an unknown attempt is not an error.
	CancelTask(ctx context.Context, id ExecutionAttemptID) error
	// FreeSlot releases an allocation and tells the ResourceManager.
	FreeSlot(ctx context.Context, alloc AllocationID) error
	// ReleasePartitions drops the data exchanges of a job's attempts up to
	// and including attempt.
	ReleasePartitions(ctx context.Context, job JobID, attempt int) error
	// TriggerCheckpoint tells a source subtask to take checkpoint b and
	// emit its barrier.
	TriggerCheckpoint(ctx context.Context, id ExecutionAttemptID, b CheckpointBarrier) error
	// NotifyCheckpointComplete tells a subtask that a checkpoint completed:
	// transactional sinks commit what it covers.
	NotifyCheckpointComplete(ctx context.Context, id ExecutionAttemptID, checkpointID int64) error
	// NotifyCheckpointAborted tells a subtask that a checkpoint was aborted.
	NotifyCheckpointAborted(ctx context.Context, id ExecutionAttemptID, checkpointID int64) error
	// DeploymentReport returns the states of a job's subtasks on the
	// TaskManager: RUNNING for those it runs, the final state of those of
	// attempt sinceAttempt or later that ended lately (kept for
	// endedRetention). The JobManager asks for
	// it every heartbeat interval and reconciles its view with it, as
	// Flink's JobManager does with the execution deployment report of its
	// TaskManager heartbeats: a final state whose report was lost still
	// arrives, and a subtask the TaskManager does not know ends.
	DeploymentReport(ctx context.Context, job JobID, sinceAttempt int) ([]TaskExecutionState, error)
	// Instance returns the TaskManager's instance, as sent with its
	// registration. The ResourceManager asks it when another process
	// registers under the TaskManager's id, to tell a live TaskManager
	// from a dead one.
	Instance(ctx context.Context) (string, error)
}

// JobManagerGateway is a JobManager as other roles see it.
type JobManagerGateway interface {
	// OfferSlots offers slots of a TaskManager and returns those accepted;
	// the TaskManager frees the others.
	OfferSlots(ctx context.Context, tm TaskManagerLocation, offers []SlotOffer) ([]SlotOffer, error)
	// UpdateTaskExecutionState reports a subtask's state change.
	UpdateTaskExecutionState(ctx context.Context, s TaskExecutionState) error
	// NotifyTaskManagerLost tells the JobManager a TaskManager holding its
	// slots is gone: its subtasks there failed and its slots are lost.
	NotifyTaskManagerLost(ctx context.Context, tm ResourceID, cause error) error
	// AcknowledgeCheckpoint reports that a subtask wrote its state for a
	// checkpoint, with the handles of what it wrote.
	AcknowledgeCheckpoint(ctx context.Context, id ExecutionAttemptID, checkpointID int64, ack checkpoint.TaskAck) error
	// DeclineCheckpoint reports that a subtask could not take a checkpoint.
	DeclineCheckpoint(ctx context.Context, id ExecutionAttemptID, checkpointID int64, reason error) error
}

// TaskManagerLocation says where a TaskManager is reached.
type TaskManagerLocation struct {
	ID ResourceID
	// Address is its RPC address.
	Address string
	// DataAddress is the address of its network data plane; empty when it
	// does not listen (every exchange stays in its process).
	DataAddress string
	// ShuffleID identifies the in-process exchange it shares with the other
	// TaskManagers of its process: subtasks on TaskManagers with the same
	// ShuffleID hand records over as Go values, others over the network.
	ShuffleID string
	// CheckpointStorage says whether it has checkpoint storage, where its
	// subtasks write their state (NodeConfig.CheckpointDir,
	// FLINK_CHECKPOINT_DIR). A JobManager does not deploy a job that takes
	// checkpoints or restores state to a TaskManager without.
	CheckpointStorage bool
}

// resolver finds the gateway at an address.
type resolver interface {
	resourceManager(addr string) (ResourceManagerGateway, error)
	taskManager(addr string) (TaskManagerGateway, error)
	jobManager(addr string) (JobManagerGateway, error)
}

// localResolver connects roles living in one process.
type localResolver struct {
	mu        sync.RWMutex
	endpoints map[string]any
}

func newLocalResolver() *localResolver { return &localResolver{endpoints: make(map[string]any)} }

func (r *localResolver) bind(addr string, endpoint any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endpoints[addr] = endpoint
}

func (r *localResolver) unbind(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.endpoints, addr)
}

func lookup[G any](r *localResolver, addr, role string) (G, error) {
	r.mu.RLock()
	e, ok := r.endpoints[addr]
	r.mu.RUnlock()
	g, isG := e.(G)
	if !ok || !isG {
		var zero G
		return zero, fmt.Errorf("flink: no %s at %q", role, addr)
	}
	return g, nil
}

func (r *localResolver) resourceManager(addr string) (ResourceManagerGateway, error) {
	return lookup[ResourceManagerGateway](r, addr, "resource manager")
}

func (r *localResolver) taskManager(addr string) (TaskManagerGateway, error) {
	return lookup[TaskManagerGateway](r, addr, "task manager")
}

func (r *localResolver) jobManager(addr string) (JobManagerGateway, error) {
	return lookup[JobManagerGateway](r, addr, "job manager")
}
