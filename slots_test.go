package flink

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSlotTable(t *testing.T) {
	st := NewSlotTable("tm", 2, ResourceProfile{CPUCores: 1})
	require.NoError(t, st.Allocate(0, "job", "a1"))
	require.NoError(t, st.Allocate(0, "job", "a1"), "idempotent for the same allocation")
	require.ErrorContains(t, st.Allocate(0, "other", "a2"), "allocated to job job")
	require.ErrorContains(t, st.Allocate(5, "job", "a3"), "has no slot 5")
	assert.Equal(t, []AllocationID{"a1"}, st.AllocatedTo("job"))
	id, ok := st.Free("a1")
	require.True(t, ok)
	assert.Equal(t, SlotID{"tm", 0}, id)
	_, ok = st.Free("a1")
	assert.False(t, ok)
}

func TestSlotPool(t *testing.T) {
	p := NewSlotPool()
	offers := []SlotOffer{{Allocation: "a", Slot: SlotID{"tm1", 0}}, {Allocation: "b", Slot: SlotID{"tm2", 0}}}
	assert.Len(t, p.Offer(offers), 2)
	assert.Equal(t, offers[:1], p.Offer(offers[:1]), "a slot offered again is still accepted (a TaskManager re-offers after it re-registered)")
	assert.Equal(t, 2, p.Len(), "and held once")
	assert.Equal(t, 1, p.RemoveTaskManager("tm1"))
	assert.Equal(t, []SlotOffer{offers[1]}, p.Slots())
	assert.Len(t, p.Clear(), 1)
	assert.Zero(t, p.Len())
}

func TestSlotManagerMatchesProfilesAndSpreads(t *testing.T) {
	m := newSlotManager()
	m.register("small", NewSlotTable("small", 2, ResourceProfile{CPUCores: 1, MemoryMiB: 512}).Report())
	m.register("big", NewSlotTable("big", 2, ResourceProfile{CPUCores: 4, MemoryMiB: 4096}).Report())
	got := m.allocate("job", 3, ResourceProfile{MemoryMiB: 1024}, nil)
	require.Len(t, got, 2, "only the big TaskManager's slots have the memory")
	for _, s := range got {
		assert.Equal(t, ResourceID("big"), s.ID.TaskManager)
	}
	total, free := m.total()
	assert.Equal(t, [2]int{4, 2}, [2]int{total, free})
	assert.Equal(t, []ResourceID{"small"}, m.idle())
	m.free(got[0].Allocation)
	_, free = m.total()
	assert.Equal(t, 3, free)
	m.unregister("small")
	total, _ = m.total()
	assert.Equal(t, 2, total)
}

func TestAssignSlotsWithSharing(t *testing.T) {
	env := NewEnv(WithParallelism(2))
	src := Generate(env, 1, func(i int64) (int64, error) { return i, nil })
	heavy := Map(src, identity[int64]).SetParallelism(3).SlotSharingGroup("heavy")
	Collect(heavy.Rebalance())
	g, err := env.JobGraph()
	require.NoError(t, err)
	require.Equal(t, 5, g.SlotsNeeded())
	var slots []SlotOffer
	for i := range 5 {
		slots = append(slots, SlotOffer{Allocation: AllocationID(rune('a' + i)), Slot: SlotID{"tm", i}})
	}
	_, err = AssignSlots(g, slots[:4])
	require.ErrorIs(t, err, ErrNotEnoughSlots)
	a, err := AssignSlots(g, slots)
	require.NoError(t, err)
	// "default" sorts before "heavy": the source and sink share slots 0-1,
	// the map uses 2-4.
	assert.Equal(t, 0, a[[2]int{0, 0}].Slot.Index)
	assert.Equal(t, 1, a[[2]int{2, 1}].Slot.Index, "subtask 1 of the sink shares slot 1 with subtask 1 of the source")
	assert.Equal(t, 4, a[[2]int{1, 2}].Slot.Index)
}
