package network

import (
	"errors"
	"sync"
)

// LocalInputChannel reads a subpartition produced in the same process: it takes the producer's
// buffers directly from the subpartition's queue (no socket, no copy). Recycling such a buffer
// returns it to the producer's pool, which is how a slow local consumer back-pressures its
// producer.
type LocalInputChannel struct {
	gate  *InputGate
	index int
	spec  InputChannelSpec

	mu struct {
		sync.Mutex
		view     *subpartitionView
		released bool
	}
}

// Index implements InputChannel.
func (c *LocalInputChannel) Index() int { return c.index }

// Spec implements InputChannel.
func (c *LocalInputChannel) Spec() InputChannelSpec { return c.spec }

// tryRequest creates the subpartition view. It reports false (and no error) when the partition
// is not registered yet.
func (c *LocalInputChannel) tryRequest() (bool, error) {
	c.mu.Lock()
	if c.mu.released || c.mu.view != nil {
		c.mu.Unlock()
		return true, nil
	}
	view, err := c.gate.cfg.Partitions.createView(c.spec.Partition, c.spec.Subpartition, func() { c.gate.notify(c.index) })
	if err != nil {
		c.mu.Unlock()
		if errors.Is(err, ErrPartitionNotFound) {
			return false, nil
		}
		return false, err
	}
	c.mu.view = view
	c.mu.Unlock()
	// The producer may have queued data (and fired the listener) before the view was stored.
	if view.available(-1) {
		c.gate.notify(c.index)
	}
	return true, nil
}

// poll implements InputChannel.
func (c *LocalInputChannel) poll() (*Buffer, bool, error) {
	c.mu.Lock()
	view := c.mu.view
	c.mu.Unlock()
	if view == nil {
		return nil, false, nil
	}
	res, err := view.poll(-1)
	if err != nil {
		return nil, false, err
	}
	return res.buf, res.more, nil
}

// release implements InputChannel.
func (c *LocalInputChannel) release(bool) {
	c.mu.Lock()
	view := c.mu.view
	c.mu.released = true
	c.mu.view = nil
	c.mu.Unlock()
	if view != nil {
		view.release()
	}
}
