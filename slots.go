package flink

import (
	"fmt"
	"sort"
)

// ResourceProfile describes what a slot offers or a request needs. A zero
// field means "unspecified": a request with it matches any slot, as Flink's
// ResourceProfile.UNKNOWN.
type ResourceProfile struct {
	CPUCores  float64
	MemoryMiB int
}

// Matches reports whether a slot with profile p can serve a request for req.
func (p ResourceProfile) Matches(req ResourceProfile) bool {
	return (req.CPUCores == 0 || req.CPUCores <= p.CPUCores) &&
		(req.MemoryMiB == 0 || req.MemoryMiB <= p.MemoryMiB)
}

// SlotID identifies a slot: a TaskManager and the slot's index on it.
type SlotID struct {
	TaskManager ResourceID
	Index       int
}

func (s SlotID) String() string { return fmt.Sprintf("%s#%d", s.TaskManager, s.Index) }

// SlotStatus is one slot as a TaskManager reports it to the
// ResourceManager.
type SlotStatus struct {
	ID      SlotID
	Profile ResourceProfile
	// Job and Allocation are set while the slot is allocated.
	Job        JobID
	Allocation AllocationID
}

// SlotOffer is a slot a TaskManager offers to a JobManager.
type SlotOffer struct {
	Allocation AllocationID
	Slot       SlotID
	Profile    ResourceProfile
}

// SlotTable is a TaskManager's bookkeeping of its slots: which are free and
// which job each allocated one belongs to. It is a plain state machine, not
// safe for concurrent use; the TaskManager guards it.
type SlotTable struct {
	tm    ResourceID
	slots []SlotStatus
}

// NewSlotTable returns a table of n free slots with the given profile.
func NewSlotTable(tm ResourceID, n int, profile ResourceProfile) *SlotTable {
	t := &SlotTable{tm: tm, slots: make([]SlotStatus, n)}
	for i := range t.slots {
		t.slots[i] = SlotStatus{ID: SlotID{TaskManager: tm, Index: i}, Profile: profile}
	}
	return t
}

// Allocate assigns slot index to job under allocation id. Allocating an
// allocated slot again under the same id is a no-op, so the request can be
// retried.
func (t *SlotTable) Allocate(index int, job JobID, id AllocationID) error {
	if index < 0 || index >= len(t.slots) {
		return fmt.Errorf("flink: task manager %s has no slot %d (it has %d)", t.tm, index, len(t.slots))
	}
	s := &t.slots[index]
	switch {
	case s.Allocation == id:
		return nil
	case s.Allocation != "":
		return fmt.Errorf("flink: slot %s is allocated to job %s (allocation %s)", s.ID, s.Job, s.Allocation)
	}
	s.Job, s.Allocation = job, id
	return nil
}

// Free releases the slot of allocation id and returns it; ok is false if no
// slot has that allocation.
func (t *SlotTable) Free(id AllocationID) (SlotID, bool) {
	for i := range t.slots {
		if t.slots[i].Allocation == id {
			t.slots[i].Job, t.slots[i].Allocation = "", ""
			return t.slots[i].ID, true
		}
	}
	return SlotID{}, false
}

// Lookup returns the slot of allocation id.
func (t *SlotTable) Lookup(id AllocationID) (SlotStatus, bool) {
	for _, s := range t.slots {
		if s.Allocation == id {
			return s, true
		}
	}
	return SlotStatus{}, false
}

// Report returns every slot's status.
func (t *SlotTable) Report() []SlotStatus { return append([]SlotStatus(nil), t.slots...) }

// AllocatedTo returns the allocations held by job.
func (t *SlotTable) AllocatedTo(job JobID) []AllocationID {
	var ids []AllocationID
	for _, s := range t.slots {
		if s.Job == job {
			ids = append(ids, s.Allocation)
		}
	}
	return ids
}

// SlotPool is a JobManager's set of slots offered to it, as Flink's
// SlotPool. Not safe for concurrent use; the JobManager's goroutine owns it.
type SlotPool struct {
	slots map[AllocationID]SlotOffer
	order []AllocationID // acceptance order, for deterministic assignment
}

// NewSlotPool returns an empty pool.
func NewSlotPool() *SlotPool { return &SlotPool{slots: make(map[AllocationID]SlotOffer)} }

// Offer adds the offered slots the pool does not hold yet and returns the
// accepted ones: all of them, those it held already included.
func (p *SlotPool) Offer(offers []SlotOffer) []SlotOffer {
	var accepted []SlotOffer
	for _, o := range offers {
		if _, ok := p.slots[o.Allocation]; ok {
			accepted = append(accepted, o) // offered again: still ours
			continue
		}
		p.slots[o.Allocation] = o
		p.order = append(p.order, o.Allocation)
		accepted = append(accepted, o)
	}
	return accepted
}

// Len returns the number of slots in the pool.
func (p *SlotPool) Len() int { return len(p.slots) }

// Slots returns the pooled slots in the order they were accepted.
func (p *SlotPool) Slots() []SlotOffer {
	out := make([]SlotOffer, 0, len(p.order))
	for _, id := range p.order {
		out = append(out, p.slots[id])
	}
	return out
}

// RemoveTaskManager drops every slot of tm (when it is lost) and returns
// how many were dropped.
func (p *SlotPool) RemoveTaskManager(tm ResourceID) int {
	n := 0
	order := p.order[:0]
	for _, id := range p.order {
		if p.slots[id].Slot.TaskManager == tm {
			delete(p.slots, id)
			n++
			continue
		}
		order = append(order, id)
	}
	p.order = order
	return n
}

// Clear empties the pool and returns what it held.
func (p *SlotPool) Clear() []SlotOffer {
	out := p.Slots()
	p.slots = make(map[AllocationID]SlotOffer)
	p.order = nil
	return out
}

// AssignSlots maps every subtask of g to one of slots with slot sharing:
// each slot sharing group takes as many slots as its largest parallelism,
// and subtask i of every vertex in a group runs in the group's slot i, so
// one slot holds one parallel slice of the pipeline. It fails when slots
// are too few.
func AssignSlots(g *JobGraph, slots []SlotOffer) (map[[2]int]SlotOffer, error) {
	need := g.SlotsNeeded()
	if len(slots) < need {
		return nil, fmt.Errorf("%w: the job needs %d slots, %d are available", ErrNotEnoughSlots, need, len(slots))
	}
	groups := g.slotGroups()
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	first := make(map[string]int, len(names))
	next := 0
	for _, n := range names {
		first[n] = next
		next += groups[n]
	}
	out := make(map[[2]int]SlotOffer)
	for _, v := range g.Vertices {
		for i := range v.Parallelism {
			out[[2]int{v.ID, i}] = slots[first[v.SlotSharingGroup]+i]
		}
	}
	return out, nil
}

// slotManager is the ResourceManager's view of every TaskManager's slots:
// which are free, and which allocation holds the others. It matches slot
// requests to free slots. A plain state machine; the ResourceManager guards
// it.
type slotManager struct {
	tms   map[ResourceID][]SlotStatus
	order []ResourceID // registration order
}

func newSlotManager() *slotManager { return &slotManager{tms: make(map[ResourceID][]SlotStatus)} }

func (m *slotManager) register(tm ResourceID, slots []SlotStatus) {
	if _, ok := m.tms[tm]; !ok {
		m.order = append(m.order, tm)
	}
	m.tms[tm] = append([]SlotStatus(nil), slots...)
}

func (m *slotManager) unregister(tm ResourceID) {
	delete(m.tms, tm)
	for i, id := range m.order {
		if id == tm {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
}

// total and free count the slots.
func (m *slotManager) total() (total, free int) {
	for _, slots := range m.tms {
		for _, s := range slots {
			total++
			if s.Allocation == "" {
				free++
			}
		}
	}
	return total, free
}

// allocate reserves up to n free slots matching profile for job, on
// TaskManagers in registration order except those in skip, and returns them.
func (m *slotManager) allocate(job JobID, n int, profile ResourceProfile, skip map[ResourceID]bool) []SlotStatus {
	var out []SlotStatus
	for _, tm := range m.order {
		if skip[tm] {
			continue
		}
		slots := m.tms[tm]
		for i := range slots {
			if len(out) == n {
				return out
			}
			if slots[i].Allocation == "" && slots[i].Profile.Matches(profile) {
				slots[i].Job = job
				slots[i].Allocation = AllocationID(randomHex(8))
				out = append(out, slots[i])
			}
		}
	}
	return out
}

// free marks the slot of allocation id free.
func (m *slotManager) free(id AllocationID) {
	for _, slots := range m.tms {
		for i := range slots {
			if slots[i].Allocation == id {
				slots[i].Job, slots[i].Allocation = "", ""
			}
		}
	}
}

// idle returns the TaskManagers with no allocated slot.
func (m *slotManager) idle() []ResourceID {
	var out []ResourceID
	for _, tm := range m.order {
		busy := false
		for _, s := range m.tms[tm] {
			busy = busy || s.Allocation != ""
		}
		if !busy {
			out = append(out, tm)
		}
	}
	return out
}
