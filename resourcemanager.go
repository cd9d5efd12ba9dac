package flink

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ResourceManager manages the cluster's slots: TaskManagers register their
// slots with it, and it matches the JobManagers' slot requests to free
// slots, telling each chosen TaskManager to offer its slot to the
// requesting JobManager. Requests it cannot serve yet wait for TaskManagers
// to register.
type ResourceManager struct {
	addr string
	rpc  resolver
	log  *slog.Logger

	mu struct {
		sync.Mutex
		slots   *slotManager
		addrs   map[ResourceID]string
		pending []SlotRequest
		seen    map[ResourceID]time.Time        // last heartbeat or registration
		stats   map[ResourceID]TaskManagerStats // sent with the last heartbeat
		jms     map[JobID]string                // JobManager address per job with slots
		// failing holds TaskManagers whose slot request just failed: they are
		// passed over until failingBackoff has passed or they register again.
		failing map[ResourceID]time.Time
		// starting counts TaskManagers asked of the provider that have not
		// registered yet; started holds those the provider started.
		starting map[ResourceID]bool
		started  map[ResourceID]bool
		stopping map[ResourceID]bool // being stopped: may not register again
		// instances are the registered TaskManagers' instances.
		instances map[ResourceID]string
		idleSince map[ResourceID]time.Time
	}
	provider    ResourceProvider
	idleTimeout time.Duration
	// heartbeatTimeout, when set, is the heartbeat timeout of monitor: a
	// TaskManager silent for longer is not live, and a registration under
	// its id takes it over without asking it.
	heartbeatTimeout time.Duration
	// fingerprint is the registry fingerprint TaskManagers must match;
	// empty accepts any (one process, one registry).
	fingerprint string
	wg          sync.WaitGroup
}

func newResourceManager(addr string, rpc resolver, log *slog.Logger) *ResourceManager {
	rm := &ResourceManager{addr: addr, rpc: rpc, log: log.With("role", "resourcemanager")}
	rm.mu.slots = newSlotManager()
	rm.mu.addrs = make(map[ResourceID]string)
	rm.mu.seen = make(map[ResourceID]time.Time)
	rm.mu.stats = make(map[ResourceID]TaskManagerStats)
	rm.mu.jms = make(map[JobID]string)
	rm.mu.failing = make(map[ResourceID]time.Time)
	rm.mu.starting = make(map[ResourceID]bool)
	rm.mu.started = make(map[ResourceID]bool)
	rm.mu.stopping = make(map[ResourceID]bool)
	rm.mu.instances = make(map[ResourceID]string)
	rm.mu.idleSince = make(map[ResourceID]time.Time)
	return rm
}

// RegisterTaskManager implements ResourceManagerGateway.
//
// A registration under the id of a registered TaskManager with another
// instance is either that TaskManager restarted (what the previous process
// ran is lost, at once) or a second process started with the same id. The
// ResourceManager asks the registered one at its address which instance it
// is (see probeInstance, never under rm.mu): if it answers with the
// registered instance, the registration is refused with
// ErrTaskManagerIDInUse; if it does not answer, or answers with another
// instance (a restart at the same address), it is lost and the new one
// registers. The probe is made even when the new registration names the
// same address: the address is the sender's word.
func (rm *ResourceManager) RegisterTaskManager(ctx context.Context, reg TaskManagerRegistration) error {
	if rm.fingerprint != "" && reg.Fingerprint != rm.fingerprint {
		rm.log.Warn("task manager refused: different binary", "tm", reg.ID)
		return fmt.Errorf("%w: task manager %s runs a job registry with fingerprint %.12s, this job manager's is %.12s: the processes run different binaries",
			ErrFingerprintMismatch, reg.ID, reg.Fingerprint, rm.fingerprint)
	}
	probed := "" // the registered instance found not answering
	for {
		rm.mu.Lock()
		prev, known := rm.mu.instances[reg.ID]
		prevAddr, registered := rm.mu.addrs[reg.ID]
		if !known || !registered || prev == reg.Instance {
			break // with rm.mu held
		}
		live := rm.heartbeatTimeout <= 0 || time.Since(rm.mu.seen[reg.ID]) <= rm.heartbeatTimeout
		if !live || probed == prev {
			// The process behind this ID was replaced before it missed its
			// heartbeats: what the previous one ran is lost, now.
			rm.lose(reg.ID, prev, fmt.Errorf("flink: task manager %s was restarted", reg.ID))
			continue
		}
		rm.mu.Unlock()
		alive, err := rm.probeInstance(ctx, prevAddr, prev)
		if err != nil {
			return err
		}
		if alive {
			rm.log.Warn("task manager refused: its id is in use by a live task manager", "tm", reg.ID,
				"address", reg.Address, "registered_address", prevAddr)
			return fmt.Errorf("%w: %q is registered by a live task manager at %s; start this one with another id, or stop that one",
				ErrTaskManagerIDInUse, reg.ID, prevAddr)
		}
		probed = prev // and look again: the registration may have changed meanwhile
	}
	if rm.mu.stopping[reg.ID] {
		rm.mu.Unlock()
		return fmt.Errorf("flink: task manager %s is being stopped as idle", reg.ID)
	}
	rm.mu.instances[reg.ID] = reg.Instance
	rm.mu.slots.register(reg.ID, reg.Slots)
	rm.mu.addrs[reg.ID] = reg.Address
	rm.mu.seen[reg.ID] = time.Now()
	delete(rm.mu.failing, reg.ID)
	if rm.mu.starting[reg.ID] {
		delete(rm.mu.starting, reg.ID)
		rm.mu.started[reg.ID] = true
	}
	work := rm.servePendingLocked()
	rm.mu.Unlock()
	rm.log.Info("task manager registered", "tm", reg.ID, "slots", len(reg.Slots))
	rm.dispatch(work)
	return nil
}

// identityProbeTimeout bounds asking a registered TaskManager which
// instance it is: one that cannot answer within it is taken for dead, and
// its id is free for the process registering under it.
const identityProbeTimeout = time.Second

// probeInstance asks the TaskManager at addr whether it is still instance.
// It reports false when it answers with another instance or does not
// answer within identityProbeTimeout (dead, refused, or wedged); it fails
// only when ctx ends first, so that a caller giving up never frees the
// id. It must not be called with rm.mu held.
func (rm *ResourceManager) probeInstance(ctx context.Context, addr, instance string) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, identityProbeTimeout)
	defer cancel()
	tm, err := rm.rpc.taskManager(addr)
	var got string
	if err == nil {
		got, err = tm.Instance(pctx)
	}
	if err != nil && ctx.Err() != nil {
		return false, fmt.Errorf("flink: asking the task manager at %s for its instance: %w", addr, ctx.Err())
	}
	if err != nil {
		rm.log.Info("registered task manager does not answer: taken for dead", "address", addr, "err", err)
		return false, nil
	}
	return got == instance, nil
}

// RequestSlots implements ResourceManagerGateway.
func (rm *ResourceManager) RequestSlots(ctx context.Context, req SlotRequest) error {
	rm.mu.Lock()
	rm.mu.jms[req.Job] = req.JobManager
	rm.mu.pending = append(rm.mu.pending, req)
	work := rm.servePendingLocked()
	rm.mu.Unlock()
	rm.dispatch(work)
	return nil
}

// CancelSlotRequests implements ResourceManagerGateway.
func (rm *ResourceManager) CancelSlotRequests(ctx context.Context, job JobID) error {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	keep := rm.mu.pending[:0]
	for _, r := range rm.mu.pending {
		if r.Job != job {
			keep = append(keep, r)
		}
	}
	rm.mu.pending = keep
	return nil
}

// NotifySlotFree implements ResourceManagerGateway.
func (rm *ResourceManager) NotifySlotFree(ctx context.Context, tm ResourceID, alloc AllocationID) error {
	rm.mu.Lock()
	rm.mu.slots.free(alloc)
	work := rm.servePendingLocked()
	rm.mu.Unlock()
	rm.dispatch(work)
	return nil
}

// SlotCounts implements ResourceManagerGateway.
func (rm *ResourceManager) SlotCounts(ctx context.Context) (total, free int, err error) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	total, free = rm.mu.slots.total()
	return total, free, nil
}

// TaskManagerInfo describes a registered TaskManager.
type TaskManagerInfo struct {
	ID         ResourceID
	Address    string
	SlotsTotal int
	SlotsFree  int
	Slots      []SlotStatus
	// LastHeartbeat is when the TaskManager last sent a heartbeat, or
	// registered.
	LastHeartbeat time.Time
	// Stats are the memory and network buffer figures of its last
	// heartbeat; zero before its first heartbeat.
	Stats TaskManagerStats
}

// TaskManagers describes every registered TaskManager, in registration
// order.
func (rm *ResourceManager) TaskManagers() []TaskManagerInfo {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	out := make([]TaskManagerInfo, 0, len(rm.mu.slots.order))
	for _, id := range rm.mu.slots.order {
		slots := rm.mu.slots.tms[id]
		info := TaskManagerInfo{ID: id, Address: rm.mu.addrs[id], SlotsTotal: len(slots), Slots: append([]SlotStatus(nil), slots...),
			LastHeartbeat: rm.mu.seen[id], Stats: rm.mu.stats[id]}
		for _, s := range slots {
			if s.Allocation == "" {
				info.SlotsFree++
			}
		}
		out = append(out, info)
	}
	return out
}

// IdleTaskManagers returns the registered TaskManagers that hold no
// allocated slot, in registration order: those a resource provider may stop.
func (rm *ResourceManager) IdleTaskManagers() []ResourceID {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.mu.slots.idle()
}

// Heartbeat implements ResourceManagerGateway.
func (rm *ResourceManager) Heartbeat(ctx context.Context, hb TaskManagerHeartbeat) error {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if _, ok := rm.mu.addrs[hb.ID]; !ok {
		return fmt.Errorf("flink: heartbeat from unregistered task manager %s: register first", hb.ID)
	}
	if inst := rm.mu.instances[hb.ID]; hb.Instance != "" && hb.Instance != inst {
		return fmt.Errorf("flink: heartbeat from task manager %s instance %s, but instance %s is registered under its id: register first",
			hb.ID, hb.Instance, inst)
	}
	rm.mu.seen[hb.ID] = time.Now()
	rm.mu.stats[hb.ID] = hb.Stats
	return nil
}

// monitor declares TaskManagers lost when they miss heartbeats for timeout,
// checking every interval, until ctx ends.
func (rm *ResourceManager) monitor(ctx context.Context, interval, timeout time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			rm.mu.Lock()
			work := rm.servePendingLocked()
			var lost []ResourceID
			for id, seen := range rm.mu.seen {
				if now.Sub(seen) > timeout {
					lost = append(lost, id)
				}
			}
			rm.mu.Unlock()
			rm.dispatch(work)
			rm.provision(ctx, now)
			for _, id := range lost {
				rm.TaskManagerLost(id, fmt.Errorf("no heartbeat for %v", timeout))
			}
		}
	}
}

// TaskManagerLost forgets a TaskManager (it died, missed heartbeats or left
// the membership) and tells the JobManagers that held slots on it.
func (rm *ResourceManager) TaskManagerLost(id ResourceID, cause error) {
	rm.mu.Lock()
	rm.lose(id, "", cause)
}

// lose is TaskManagerLost, called with rm.mu held, which it releases. With
// instance set it forgets the TaskManager only if that instance is the
// registered one.
func (rm *ResourceManager) lose(id ResourceID, instance string, cause error) {
	if _, ok := rm.mu.addrs[id]; !ok || (instance != "" && rm.mu.instances[id] != instance) {
		rm.mu.Unlock()
		return
	}
	jobs := make(map[JobID]string)
	for _, s := range rm.mu.slots.tms[id] {
		if s.Job != "" {
			jobs[s.Job] = rm.mu.jms[s.Job]
		}
	}
	rm.mu.slots.unregister(id)
	delete(rm.mu.addrs, id)
	delete(rm.mu.seen, id)
	delete(rm.mu.stats, id)
	delete(rm.mu.instances, id)
	rm.mu.Unlock()
	rm.log.Warn("task manager lost", "tm", id, "cause", cause)
	for job, addr := range jobs {
		rm.wg.Add(1)
		go func() {
			defer rm.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), defaultCallTimeout)
			defer cancel()
			jm, err := rm.rpc.jobManager(addr)
			if err == nil {
				err = jm.NotifyTaskManagerLost(ctx, id, cause)
			}
			if err != nil {
				rm.log.Warn("telling job manager of a lost task manager failed", "job", job, "err", err)
			}
		}()
	}
}

// provision asks the resource provider for TaskManagers when pending slot
// requests exceed what is free and starting, and stops provider-started
// TaskManagers idle for longer than the idle timeout.
func (rm *ResourceManager) provision(ctx context.Context, now time.Time) {
	if rm.provider == nil {
		return
	}
	per := max(rm.provider.SlotsPerTaskManager(), 1)
	rm.mu.Lock()
	wanted := 0
	for _, r := range rm.mu.pending {
		wanted += r.Count
	}
	toStart := (wanted+per-1)/per - len(rm.mu.starting)
	var ids []ResourceID
	for range max(toStart, 0) {
		id := ResourceID("tm-" + randomHex(4))
		rm.mu.starting[id] = true
		ids = append(ids, id)
	}
	idle := make(map[ResourceID]bool)
	for _, id := range rm.mu.slots.idle() {
		idle[id] = true
	}
	var stop []ResourceID
	for id := range rm.mu.started {
		if !idle[id] || len(rm.mu.pending) > 0 {
			delete(rm.mu.idleSince, id)
			continue
		}
		since, ok := rm.mu.idleSince[id]
		if !ok {
			rm.mu.idleSince[id] = now
		} else if now.Sub(since) >= rm.idleTimeout {
			stop = append(stop, id)
		}
	}
	rm.mu.Unlock()
	for _, id := range ids {
		rm.log.Info("starting task manager", "tm", id, "pending slots", wanted)
		if err := rm.provider.StartTaskManager(ctx, id); err != nil {
			rm.log.Warn("starting task manager failed", "tm", id, "err", err)
			rm.mu.Lock()
			delete(rm.mu.starting, id)
			rm.mu.Unlock()
		}
	}
	for _, id := range stop {
		rm.log.Info("stopping idle task manager", "tm", id, "idle", rm.idleTimeout)
		rm.mu.Lock()
		rm.mu.stopping[id] = true
		delete(rm.mu.started, id)
		delete(rm.mu.idleSince, id)
		rm.mu.slots.unregister(id)
		delete(rm.mu.addrs, id)
		delete(rm.mu.seen, id)
		delete(rm.mu.stats, id)
		rm.mu.Unlock()
		if err := rm.provider.StopTaskManager(ctx, id); err != nil {
			rm.log.Warn("stopping task manager failed", "tm", id, "err", err)
		}
		rm.mu.Lock()
		delete(rm.mu.stopping, id)
		rm.mu.Unlock()
	}
}

// slotRequestCallTimeout bounds telling a TaskManager about a slot.
const slotRequestCallTimeout = time.Second

// failingBackoff is how long a TaskManager whose slot request failed is
// passed over.
const failingBackoff = time.Second

// slotAssignment tells one TaskManager to offer one slot.
type slotAssignment struct {
	tmAddr string
	slot   SlotStatus
	req    SlotRequest
}

// servePendingLocked allocates free slots to pending requests in arrival
// order and returns the TaskManager calls to make once the lock is dropped.
func (rm *ResourceManager) servePendingLocked() []slotAssignment {
	var work []slotAssignment
	keep := rm.mu.pending[:0]
	skip := make(map[ResourceID]bool)
	for id, since := range rm.mu.failing {
		if time.Since(since) < failingBackoff {
			skip[id] = true
		} else {
			delete(rm.mu.failing, id)
		}
	}
	for _, req := range rm.mu.pending {
		got := rm.mu.slots.allocate(req.Job, req.Count, req.Profile, skip)
		for _, s := range got {
			work = append(work, slotAssignment{tmAddr: rm.mu.addrs[s.ID.TaskManager], slot: s, req: req})
		}
		if req.Count -= len(got); req.Count > 0 {
			keep = append(keep, req)
		}
	}
	rm.mu.pending = keep
	return work
}

// dispatch tells TaskManagers about their allocations, off the caller's
// goroutine: a TaskManager calls back into JobManagers, which may be
// calling us.
func (rm *ResourceManager) dispatch(work []slotAssignment) {
	for _, a := range work {
		rm.wg.Add(1)
		go func() {
			defer rm.wg.Done()
			// A short deadline: a TaskManager that cannot take a slot request
			// promptly is likely dead, and the request is better served
			// elsewhere.
			ctx, cancel := context.WithTimeout(context.Background(), slotRequestCallTimeout)
			defer cancel()
			tm, err := rm.rpc.taskManager(a.tmAddr)
			if err == nil {
				err = tm.RequestSlot(ctx, a.slot.ID, a.req.Job, a.slot.Allocation, a.req.JobManager)
			}
			if err != nil {
				// Free the slot and ask again elsewhere; the TaskManager is
				// passed over for a while, as it may be dead.
				rm.log.Warn("slot request failed", "slot", a.slot.ID, "err", err)
				rm.mu.Lock()
				rm.mu.slots.free(a.slot.Allocation)
				rm.mu.failing[a.slot.ID.TaskManager] = time.Now()
				req := a.req
				req.Count = 1
				rm.mu.pending = append(rm.mu.pending, req)
				rm.mu.Unlock()
			}
		}()
	}
}

// close waits for calls in flight.
func (rm *ResourceManager) close() { rm.wg.Wait() }
