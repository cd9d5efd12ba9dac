package network

import (
	"fmt"
	"sync"
)

// ResultPartitionManager is the registry of the result partitions produced in one TaskManager. Local
// input channels and the connection manager's server side request subpartition views from it.
// All methods are safe for concurrent use.
type ResultPartitionManager struct {
	mu struct {
		sync.Mutex
		partitions map[ResultPartitionID]*ResultPartition
		changed    chan struct{} // closed at the next registration
		closed     bool
	}
}

// NewResultPartitionManager returns an empty manager.
func NewResultPartitionManager() *ResultPartitionManager {
	m := &ResultPartitionManager{}
	m.mu.partitions = make(map[ResultPartitionID]*ResultPartition)
	return m
}

// Register makes p available to consumers. It fails with ErrDuplicatePartition when the id is
// already registered and with ErrClosed after Close. The partition unregisters itself when
// released or fully consumed.
func (m *ResultPartitionManager) Register(p *ResultPartition) error {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return fmt.Errorf("%w: result partition manager", ErrClosed)
	}
	if _, ok := m.mu.partitions[p.id]; ok {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrDuplicatePartition, p.id)
	}
	m.mu.partitions[p.id] = p
	p.manager.Store(m)
	ch := m.mu.changed
	m.mu.changed = nil
	m.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	return nil
}

// Partition returns the registered partition with the given id, if any.
func (m *ResultPartitionManager) Partition(id ResultPartitionID) (*ResultPartition, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.mu.partitions[id]
	return p, ok
}

// Len returns the number of registered partitions.
func (m *ResultPartitionManager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.mu.partitions)
}

// Close releases every registered partition with ErrClosed and refuses new registrations.
func (m *ResultPartitionManager) Close() {
	m.mu.Lock()
	m.mu.closed = true
	parts := make([]*ResultPartition, 0, len(m.mu.partitions))
	for _, p := range m.mu.partitions {
		parts = append(parts, p)
	}
	ch := m.mu.changed
	m.mu.changed = nil
	m.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	for _, p := range parts {
		p.Release(ErrClosed)
	}
}

// remove unregisters p (if it is still the registered partition for its id).
func (m *ResultPartitionManager) remove(p *ResultPartition) {
	m.mu.Lock()
	if m.mu.partitions[p.id] == p {
		delete(m.mu.partitions, p.id)
	}
	m.mu.Unlock()
}

// registrationChanged returns a channel closed at the next registration (or Close).
func (m *ResultPartitionManager) registrationChanged() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.changed == nil {
		m.mu.changed = make(chan struct{})
	}
	return m.mu.changed
}

// createView returns the reader of subpartition sub of partition id. It fails with an error
// wrapping ErrPartitionNotFound (retriable) when the partition is not registered.
func (m *ResultPartitionManager) createView(id ResultPartitionID, sub int, listener func()) (*subpartitionView, error) {
	m.mu.Lock()
	p, ok := m.mu.partitions[id]
	closed := m.mu.closed
	m.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: result partition manager", ErrClosed)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrPartitionNotFound, id)
	}
	if sub < 0 || sub >= len(p.subs) {
		return nil, fmt.Errorf("network: partition %s: subpartition %d out of range [0, %d)", id, sub, len(p.subs))
	}
	return p.subs[sub].createView(listener)
}
