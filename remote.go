package flink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/internal/rpc"
	"github.com/flinkgo/flink/security"
)

// Roles in different processes reach each other through RPC stubs that
// implement the same gateways as the roles themselves. An address is
// "host:port/path": the RPC endpoint of the node and the role on it, such
// as "10.0.0.5:6123/resourcemanager", ".../taskmanager/tm-1" or
// ".../jobmanager/<job id>".

// defaultCallTimeout bounds a call whose context has no deadline, so that a
// silent peer cannot hang a role.
const defaultCallTimeout = 10 * time.Second

// rpcCodes lets well-known errors keep their identity across processes.
var rpcCodes = rpc.Codes{
	"flink.unknown_job":          ErrUnknownJob,
	"flink.not_enough_slots":     ErrNotEnoughSlots,
	"flink.fingerprint_mismatch": ErrFingerprintMismatch,
	"flink.closed":               ErrClosed,
	"flink.illegal_transition":   ErrIllegalTransition,
	"flink.stale_leader":         ErrStaleLeader,
	"flink.identity_mismatch":    ErrIdentityMismatch,
	"flink.task_manager_id_used": ErrTaskManagerIDInUse,
}

// splitAddr splits "host:port/path" into the endpoint and the path.
func splitAddr(addr string) (endpoint, path string, err error) {
	endpoint, path, ok := strings.Cut(addr, "/")
	if !ok || endpoint == "" || path == "" {
		return "", "", fmt.Errorf("flink: address %q is not host:port/role", addr)
	}
	return endpoint, path, nil
}

// remoteResolver finds roles of this process first and reaches the others
// over RPC, with one client per remote node.
type remoteResolver struct {
	local *localResolver
	tls   *tls.Config // nil: plaintext; set before first use
	mu    sync.Mutex
	conns map[string]*rpc.Client
}

func newRemoteResolver(local *localResolver) *remoteResolver {
	return &remoteResolver{local: local, conns: make(map[string]*rpc.Client)}
}

func (r *remoteResolver) client(endpoint string) *rpc.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.conns[endpoint]
	if !ok {
		c = rpc.NewClient(endpoint, rpcCodes, r.tls)
		r.conns[endpoint] = c
	}
	return c
}

func (r *remoteResolver) close() {
	r.mu.Lock()
	conns := r.conns
	r.conns = make(map[string]*rpc.Client)
	r.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (r *remoteResolver) resourceManager(addr string) (ResourceManagerGateway, error) {
	if g, err := r.local.resourceManager(addr); err == nil {
		return g, nil
	}
	ep, _, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	return rmStub{r.client(ep)}, nil
}

func (r *remoteResolver) taskManager(addr string) (TaskManagerGateway, error) {
	if g, err := r.local.taskManager(addr); err == nil {
		return g, nil
	}
	ep, path, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	return tmStub{c: r.client(ep), id: ResourceID(strings.TrimPrefix(path, "taskmanager/"))}, nil
}

func (r *remoteResolver) jobManager(addr string) (JobManagerGateway, error) {
	if g, err := r.local.jobManager(addr); err == nil {
		return g, nil
	}
	ep, path, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	return jmStub{c: r.client(ep), job: JobID(strings.TrimPrefix(path, "jobmanager/"))}, nil
}

// call is rpc.Call with the default timeout.
func call[Req, Resp any](ctx context.Context, c *rpc.Client, method string, req Req, opts ...rpc.CallOption) (Resp, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultCallTimeout)
		defer cancel()
	}
	return rpc.Call[Req, Resp](ctx, c, method, req, opts...)
}

type empty struct{}

// Wire forms of requests.
type (
	slotCountsResp struct{ Total, Free int }
	notifySlotReq  struct {
		TM    ResourceID
		Alloc AllocationID
	}
	requestSlotReq struct {
		TM         ResourceID
		Slot       SlotID
		Job        JobID
		Alloc      AllocationID
		JobManager string
	}
	submitTaskReq struct {
		TM  ResourceID
		TDD TaskDeploymentDescriptor
	}
	cancelTaskReq struct {
		TM ResourceID
		ID ExecutionAttemptID
	}
	freeSlotReq struct {
		TM    ResourceID
		Alloc AllocationID
	}
	releaseReq struct {
		TM      ResourceID
		Job     JobID
		Attempt int
	}
	offerSlotsReq struct {
		Job    JobID
		TM     TaskManagerLocation
		Offers []SlotOffer
	}
	taskStateReq struct {
		Job       JobID
		ID        ExecutionAttemptID
		State     ExecutionState
		Err       *wireError
		Metrics   *TaskMetrics
		EndOfData bool
	}
	deploymentReportReq struct {
		TM           ResourceID
		Job          JobID
		SinceAttempt int
	}
	tmLostReq struct {
		Job   JobID
		TM    ResourceID
		Cause string
	}
	triggerReq struct {
		TM      ResourceID
		ID      ExecutionAttemptID
		Barrier CheckpointBarrier
	}
	notifyCheckpointReq struct {
		TM         ResourceID
		ID         ExecutionAttemptID
		Checkpoint int64
	}
	ackReq struct {
		ID         ExecutionAttemptID
		Checkpoint int64
		Ack        checkpoint.TaskAck
	}
	declineReq struct {
		ID         ExecutionAttemptID
		Checkpoint int64
		Reason     string
		// Kind keeps the reason's identity: "not-ready" or "subsumed".
		Kind string
	}
)

// wireError carries a task's failure between processes: its message and,
// for a TaskError, where it happened.
type wireError struct {
	Task     string
	Operator string
	Subtask  int
	Attempt  int
	Msg      string
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	var te *TaskError
	if errors.As(err, &te) {
		return &wireError{Task: te.Task, Operator: te.Operator, Subtask: te.Subtask, Attempt: te.Attempt, Msg: te.Err.Error()}
	}
	return &wireError{Msg: err.Error()}
}

func fromWire(w *wireError) error {
	if w == nil {
		return nil
	}
	if w.Task == "" {
		return errors.New(w.Msg)
	}
	return &TaskError{Task: w.Task, Operator: w.Operator, Subtask: w.Subtask, Attempt: w.Attempt, Err: errors.New(w.Msg)}
}

type rmStub struct{ c *rpc.Client }

func (s rmStub) RegisterTaskManager(ctx context.Context, reg TaskManagerRegistration) error {
	_, err := call[TaskManagerRegistration, empty](ctx, s.c, "rm.RegisterTaskManager", reg, rpc.Idempotent())
	return err
}

func (s rmStub) RequestSlots(ctx context.Context, req SlotRequest) error {
	_, err := call[SlotRequest, empty](ctx, s.c, "rm.RequestSlots", req)
	return err
}

func (s rmStub) CancelSlotRequests(ctx context.Context, job JobID) error {
	_, err := call[JobID, empty](ctx, s.c, "rm.CancelSlotRequests", job, rpc.Idempotent())
	return err
}

func (s rmStub) NotifySlotFree(ctx context.Context, tm ResourceID, alloc AllocationID) error {
	_, err := call[notifySlotReq, empty](ctx, s.c, "rm.NotifySlotFree", notifySlotReq{tm, alloc}, rpc.Idempotent())
	return err
}

func (s rmStub) SlotCounts(ctx context.Context) (int, int, error) {
	r, err := call[empty, slotCountsResp](ctx, s.c, "rm.SlotCounts", empty{}, rpc.Idempotent())
	return r.Total, r.Free, err
}

func (s rmStub) Heartbeat(ctx context.Context, hb TaskManagerHeartbeat) error {
	_, err := call[TaskManagerHeartbeat, empty](ctx, s.c, "rm.Heartbeat", hb)
	return err
}

type tmStub struct {
	c  *rpc.Client
	id ResourceID
}

func (s tmStub) RequestSlot(ctx context.Context, slot SlotID, job JobID, alloc AllocationID, jobManager string) error {
	_, err := call[requestSlotReq, empty](ctx, s.c, "tm.RequestSlot", requestSlotReq{s.id, slot, job, alloc, jobManager}, rpc.Idempotent())
	return err
}

func (s tmStub) SubmitTask(ctx context.Context, tdd TaskDeploymentDescriptor) error {
	_, err := call[submitTaskReq, empty](ctx, s.c, "tm.SubmitTask", submitTaskReq{s.id, tdd})
	return err
}

func (s tmStub) CancelTask(ctx context.Context, id ExecutionAttemptID) error {
	_, err := call[cancelTaskReq, empty](ctx, s.c, "tm.CancelTask", cancelTaskReq{s.id, id}, rpc.Idempotent())
	return err
}

func (s tmStub) FreeSlot(ctx context.Context, alloc AllocationID) error {
	_, err := call[freeSlotReq, empty](ctx, s.c, "tm.FreeSlot", freeSlotReq{s.id, alloc}, rpc.Idempotent())
	return err
}

func (s tmStub) ReleasePartitions(ctx context.Context, job JobID, attempt int) error {
	_, err := call[releaseReq, empty](ctx, s.c, "tm.ReleasePartitions", releaseReq{s.id, job, attempt}, rpc.Idempotent())
	return err
}

func (s tmStub) TriggerCheckpoint(ctx context.Context, id ExecutionAttemptID, b CheckpointBarrier) error {
	_, err := call[triggerReq, empty](ctx, s.c, "tm.TriggerCheckpoint", triggerReq{s.id, id, b})
	return err
}

func (s tmStub) NotifyCheckpointComplete(ctx context.Context, id ExecutionAttemptID, checkpointID int64) error {
	_, err := call[notifyCheckpointReq, empty](ctx, s.c, "tm.NotifyCheckpointComplete", notifyCheckpointReq{s.id, id, checkpointID}, rpc.Idempotent())
	return err
}

func (s tmStub) NotifyCheckpointAborted(ctx context.Context, id ExecutionAttemptID, checkpointID int64) error {
	_, err := call[notifyCheckpointReq, empty](ctx, s.c, "tm.NotifyCheckpointAborted", notifyCheckpointReq{s.id, id, checkpointID}, rpc.Idempotent())
	return err
}

func (s tmStub) DeploymentReport(ctx context.Context, job JobID, sinceAttempt int) ([]TaskExecutionState, error) {
	resp, err := call[deploymentReportReq, []taskStateReq](ctx, s.c, "tm.DeploymentReport", deploymentReportReq{s.id, job, sinceAttempt}, rpc.Idempotent())
	if err != nil {
		return nil, err
	}
	states := make([]TaskExecutionState, len(resp))
	for i, r := range resp {
		states[i] = TaskExecutionState{ID: r.ID, State: r.State, Err: fromWire(r.Err), Metrics: r.Metrics}
	}
	return states, nil
}

// Instance is tried twice at most, not until ctx ends as idempotent calls
// are: a connection that broke since the last call gets one fresh dial,
// and a dead TaskManager's refused dial answers at once.
func (s tmStub) Instance(ctx context.Context) (string, error) {
	inst, err := call[ResourceID, string](ctx, s.c, "tm.Instance", s.id)
	if errors.Is(err, rpc.ErrConnectionLost) && ctx.Err() == nil {
		inst, err = call[ResourceID, string](ctx, s.c, "tm.Instance", s.id)
	}
	return inst, err
}

type jmStub struct {
	c   *rpc.Client
	job JobID
}

func (s jmStub) OfferSlots(ctx context.Context, tm TaskManagerLocation, offers []SlotOffer) ([]SlotOffer, error) {
	return call[offerSlotsReq, []SlotOffer](ctx, s.c, "jm.OfferSlots", offerSlotsReq{s.job, tm, offers})
}

func (s jmStub) UpdateTaskExecutionState(ctx context.Context, st TaskExecutionState) error {
	_, err := call[taskStateReq, empty](ctx, s.c, "jm.UpdateTaskExecutionState",
		taskStateReq{Job: s.job, ID: st.ID, State: st.State, Err: toWire(st.Err), Metrics: st.Metrics, EndOfData: st.EndOfData}, rpc.Idempotent())
	return err
}

func (s jmStub) NotifyTaskManagerLost(ctx context.Context, tm ResourceID, cause error) error {
	_, err := call[tmLostReq, empty](ctx, s.c, "jm.NotifyTaskManagerLost", tmLostReq{Job: s.job, TM: tm, Cause: cause.Error()}, rpc.Idempotent())
	return err
}

func (s jmStub) AcknowledgeCheckpoint(ctx context.Context, id ExecutionAttemptID, checkpointID int64, ack checkpoint.TaskAck) error {
	_, err := call[ackReq, empty](ctx, s.c, "jm.AcknowledgeCheckpoint", ackReq{id, checkpointID, ack}, rpc.Idempotent())
	return err
}

func (s jmStub) DeclineCheckpoint(ctx context.Context, id ExecutionAttemptID, checkpointID int64, reason error) error {
	_, err := call[declineReq, empty](ctx, s.c, "jm.DeclineCheckpoint", declineReq{id, checkpointID, reason.Error(), declineKind(reason)}, rpc.Idempotent())
	return err
}

// declineKind names the kinds of decline reasons the coordinator treats
// apart, for the wire.
func declineKind(reason error) string {
	switch {
	case errors.Is(reason, ErrJobEnding):
		return "ending"
	case errors.Is(reason, checkpoint.ErrTaskNotReady):
		return "not-ready"
	case errors.Is(reason, checkpoint.ErrSubsumed):
		return "subsumed"
	}
	return ""
}

// remoteError is an error received over RPC: its text as the sender wrote
// it, matching with errors.Is the sentinels the sender's error wrapped.
type remoteError struct {
	msg   string
	kinds []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.kinds }

// checkPeerIdentity refuses a call that acts as TaskManager id from a peer
// whose certificate does not carry that name. Without TLS there is no
// certificate and nothing to check here.
func checkPeerIdentity(ctx context.Context, id ResourceID) error {
	cert := rpc.PeerCertificate(ctx)
	if cert == nil || security.HasName(cert, string(id)) {
		return nil
	}
	return fmt.Errorf("%w: a peer with the certificate of %q acted as task manager %q",
		ErrIdentityMismatch, strings.Join(security.Names(cert), ","), id)
}

// serveResourceManager exposes the ResourceManager get returns on s; in
// HA mode that is the current leader's, and get fails on a follower.
func serveResourceManager(s *rpc.Server, get func() (*ResourceManager, error)) {
	rpc.Handle(s, "rm.RegisterTaskManager", func(ctx context.Context, r TaskManagerRegistration) (empty, error) {
		if err := checkPeerIdentity(ctx, r.ID); err != nil {
			return empty{}, err
		}
		rm, err := get()
		if err != nil {
			return empty{}, err
		}
		return empty{}, rm.RegisterTaskManager(ctx, r)
	})
	rpc.Handle(s, "rm.RequestSlots", func(ctx context.Context, r SlotRequest) (empty, error) {
		rm, err := get()
		if err != nil {
			return empty{}, err
		}
		return empty{}, rm.RequestSlots(ctx, r)
	})
	rpc.Handle(s, "rm.CancelSlotRequests", func(ctx context.Context, job JobID) (empty, error) {
		rm, err := get()
		if err != nil {
			return empty{}, err
		}
		return empty{}, rm.CancelSlotRequests(ctx, job)
	})
	rpc.Handle(s, "rm.NotifySlotFree", func(ctx context.Context, r notifySlotReq) (empty, error) {
		if err := checkPeerIdentity(ctx, r.TM); err != nil {
			return empty{}, err
		}
		rm, err := get()
		if err != nil {
			return empty{}, err
		}
		return empty{}, rm.NotifySlotFree(ctx, r.TM, r.Alloc)
	})
	rpc.Handle(s, "rm.SlotCounts", func(ctx context.Context, _ empty) (slotCountsResp, error) {
		rm, err := get()
		if err != nil {
			return slotCountsResp{}, err
		}
		t, f, err := rm.SlotCounts(ctx)
		return slotCountsResp{t, f}, err
	})
	rpc.Handle(s, "rm.Heartbeat", func(ctx context.Context, hb TaskManagerHeartbeat) (empty, error) {
		if err := checkPeerIdentity(ctx, hb.ID); err != nil {
			return empty{}, err
		}
		rm, err := get()
		if err != nil {
			return empty{}, err
		}
		return empty{}, rm.Heartbeat(ctx, hb)
	})
}

// serveTaskManager exposes tm on s.
func serveTaskManager(s *rpc.Server, tm *TaskManager) {
	check := func(id ResourceID) error {
		if id != tm.id {
			return fmt.Errorf("flink: call for task manager %s reached %s", id, tm.id)
		}
		return nil
	}
	rpc.Handle(s, "tm.RequestSlot", func(ctx context.Context, r requestSlotReq) (empty, error) {
		if err := check(r.TM); err != nil {
			return empty{}, err
		}
		return empty{}, tm.RequestSlot(ctx, r.Slot, r.Job, r.Alloc, r.JobManager)
	})
	rpc.Handle(s, "tm.SubmitTask", func(ctx context.Context, r submitTaskReq) (empty, error) {
		if err := check(r.TM); err != nil {
			return empty{}, err
		}
		return empty{}, tm.SubmitTask(ctx, r.TDD)
	})
	rpc.Handle(s, "tm.CancelTask", func(ctx context.Context, r cancelTaskReq) (empty, error) {
		if err := check(r.TM); err != nil {
			return empty{}, err
		}
		return empty{}, tm.CancelTask(ctx, r.ID)
	})
	rpc.Handle(s, "tm.FreeSlot", func(ctx context.Context, r freeSlotReq) (empty, error) {
		if err := check(r.TM); err != nil {
			return empty{}, err
		}
		return empty{}, tm.FreeSlot(ctx, r.Alloc)
	})
	rpc.Handle(s, "tm.ReleasePartitions", func(ctx context.Context, r releaseReq) (empty, error) {
		if err := check(r.TM); err != nil {
			return empty{}, err
		}
		return empty{}, tm.ReleasePartitions(ctx, r.Job, r.Attempt)
	})
	rpc.Handle(s, "tm.TriggerCheckpoint", func(ctx context.Context, r triggerReq) (empty, error) {
		if err := check(r.TM); err != nil {
			return empty{}, err
		}
		return empty{}, tm.TriggerCheckpoint(ctx, r.ID, r.Barrier)
	})
	rpc.Handle(s, "tm.NotifyCheckpointComplete", func(ctx context.Context, r notifyCheckpointReq) (empty, error) {
		if err := check(r.TM); err != nil {
			return empty{}, err
		}
		return empty{}, tm.NotifyCheckpointComplete(ctx, r.ID, r.Checkpoint)
	})
	rpc.Handle(s, "tm.NotifyCheckpointAborted", func(ctx context.Context, r notifyCheckpointReq) (empty, error) {
		if err := check(r.TM); err != nil {
			return empty{}, err
		}
		return empty{}, tm.NotifyCheckpointAborted(ctx, r.ID, r.Checkpoint)
	})
	rpc.Handle(s, "tm.Instance", func(ctx context.Context, id ResourceID) (string, error) {
		if err := check(id); err != nil {
			return "", err
		}
		return tm.Instance(ctx)
	})
	rpc.Handle(s, "tm.DeploymentReport", func(ctx context.Context, r deploymentReportReq) ([]taskStateReq, error) {
		if err := check(r.TM); err != nil {
			return nil, err
		}
		states, err := tm.DeploymentReport(ctx, r.Job, r.SinceAttempt)
		if err != nil {
			return nil, err
		}
		resp := make([]taskStateReq, len(states))
		for i, st := range states {
			resp[i] = taskStateReq{Job: r.Job, ID: st.ID, State: st.State, Err: toWire(st.Err), Metrics: st.Metrics}
		}
		return resp, nil
	})
}

// serveJobManagers exposes the JobManagers of the dispatcher get returns
// on s, found by job; in HA mode that is the current leader's.
func serveJobManagers(s *rpc.Server, get func() (*Dispatcher, error)) {
	jm := func(id JobID) (*JobManager, error) {
		d, err := get()
		if err != nil {
			return nil, err
		}
		j, err := d.job(id)
		if err != nil {
			return nil, err
		}
		return j.jm, nil
	}
	rpc.Handle(s, "jm.OfferSlots", func(ctx context.Context, r offerSlotsReq) ([]SlotOffer, error) {
		m, err := jm(r.Job)
		if err != nil {
			return nil, err
		}
		return m.OfferSlots(ctx, r.TM, r.Offers)
	})
	rpc.Handle(s, "jm.UpdateTaskExecutionState", func(ctx context.Context, r taskStateReq) (empty, error) {
		m, err := jm(r.Job)
		if err != nil {
			return empty{}, err
		}
		return empty{}, m.UpdateTaskExecutionState(ctx, TaskExecutionState{ID: r.ID, State: r.State, Err: fromWire(r.Err), Metrics: r.Metrics, EndOfData: r.EndOfData})
	})
	rpc.Handle(s, "jm.NotifyTaskManagerLost", func(ctx context.Context, r tmLostReq) (empty, error) {
		m, err := jm(r.Job)
		if err != nil {
			return empty{}, err
		}
		return empty{}, m.NotifyTaskManagerLost(ctx, r.TM, errors.New(r.Cause))
	})
	rpc.Handle(s, "jm.AcknowledgeCheckpoint", func(ctx context.Context, r ackReq) (empty, error) {
		m, err := jm(r.ID.Job)
		if err != nil {
			return empty{}, err
		}
		return empty{}, m.AcknowledgeCheckpoint(ctx, r.ID, r.Checkpoint, r.Ack)
	})
	rpc.Handle(s, "jm.DeclineCheckpoint", func(ctx context.Context, r declineReq) (empty, error) {
		m, err := jm(r.ID.Job)
		if err != nil {
			return empty{}, err
		}
		reason := errors.New(r.Reason)
		switch r.Kind {
		case "ending":
			reason = &remoteError{msg: r.Reason, kinds: []error{ErrJobEnding, checkpoint.ErrTaskNotReady}}
		case "not-ready":
			reason = fmt.Errorf("%w: %s", checkpoint.ErrTaskNotReady, r.Reason)
		case "subsumed":
			reason = fmt.Errorf("%w: %s", checkpoint.ErrSubsumed, r.Reason)
		}
		return empty{}, m.DeclineCheckpoint(ctx, r.ID, r.Checkpoint, reason)
	})
}
