package flink

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// The task mailbox, as Flink's StreamTask mailbox (TaskMailbox and
// MailboxProcessor, FLINK-12477): the operator chain of a subtask and its state belong
// to the task, and everything that touches them from elsewhere arrives as a
// mail that the chain's owner runs between records: checkpoint triggers and
// their completion or abort notifications, processing-time timers, buffer
// flushes. An RPC handler, a timer or another task only queues a mail; it
// never waits for the chain, so no user code, state snapshot or network
// write runs under a lock that anyone outside the task needs.
//
// Who owns the chain: a task that reads an input gate is one goroutine. It
// runs mails between batches of records and while it waits for input. A
// source task has two: the source's Run pushes records on its own
// goroutine (Flink's legacy source thread), and the task goroutine waits
// for mails. The chain token (task.chain) passes between these two only:
// the source holds it while it pushes a record through the chain, and
// runs the mails queued meanwhile before it lets go; the task goroutine
// takes it to run mails while the source waits for its own input.

// mail is an action on a task's chain.
type mail struct {
	what string // names it in errors
	// run does it; it runs with the chain token held. An error fails the
	// task.
	run func() error
	// drop, if set, is called instead of run when the task ends first.
	drop func()
}

// mailbox is a task's queue of mails. put may be called from any
// goroutine; take and close by the task.
type mailbox struct {
	// pending counts the queued mails: the owner checks it between
	// records without taking mu.
	pending atomic.Int32
	// signal holds a token while mails may be queued: the owner selects on
	// it while it waits for input.
	signal chan struct{}

	mu     sync.Mutex
	mails  []mail
	closed bool
}

func newMailbox() *mailbox { return &mailbox{signal: make(chan struct{}, 1)} }

// put queues m. It reports false, without queueing, once the mailbox was
// closed because the task ended.
func (mb *mailbox) put(m mail) bool {
	mb.mu.Lock()
	if mb.closed {
		mb.mu.Unlock()
		return false
	}
	mb.mails = append(mb.mails, m)
	mb.pending.Add(1)
	mb.mu.Unlock()
	select {
	case mb.signal <- struct{}{}:
	default: // a token is there already
	}
	return true
}

// take removes and returns the queued mails, oldest first.
func (mb *mailbox) take() []mail {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	ms := mb.mails
	mb.mails = nil
	mb.pending.Store(0)
	return ms
}

// close refuses further mails and drops the queued ones.
func (mb *mailbox) close() {
	mb.mu.Lock()
	mb.closed = true
	ms := mb.mails
	mb.mails = nil
	mb.pending.Store(0)
	mb.mu.Unlock()
	for _, m := range ms {
		if m.drop != nil {
			m.drop()
		}
	}
}

// post queues a mail for the task's chain. It reports false when the task
// ended: drop was called instead.
func (t *task) post(what string, run func() error, drop func()) bool {
	if t.mailbox.put(mail{what: what, run: run, drop: drop}) {
		return true
	}
	if drop != nil {
		drop()
	}
	return false
}

// runMailsLocked runs the queued mails; the chain token is held. The first
// error stops it and fails the task (failWith); the mails after it are
// dropped.
func (t *task) runMailsLocked() error {
	ms := t.mailbox.take()
	for i, m := range ms {
		if err := m.run(); err != nil {
			for _, rest := range ms[i+1:] {
				if rest.drop != nil {
					rest.drop()
				}
			}
			// The mail may have run inside a source's Collect, whose caller
			// could ignore the error: the task fails whatever it returns.
			err = fmt.Errorf("%s: %w", m.what, err)
			t.failWith(err)
			return err
		}
	}
	if t.flushEach && len(ms) > 0 {
		return t.flushLocked()
	}
	return nil
}

// processMail takes the chain token and runs the queued mails: the owner
// calls it when the mailbox signals while it waits for something else.
func (t *task) processMail() error {
	t.chain.Lock()
	defer t.chain.Unlock()
	if t.mailbox.pending.Load() == 0 {
		return nil
	}
	return t.runMailsLocked()
}

// startFlusher posts a flush of partially filled output buffers every
// buffer timeout, so that records wait at most about that long (Flink's
// OutputFlusher). A flush already queued is not queued again. It returns a
// function that stops it and waits for its goroutine.
func (t *task) startFlusher() (stop func()) {
	d := t.graph.Config.BufferTimeout
	if d <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var queued atomic.Bool
	flush := func() error {
		queued.Store(false)
		return t.flushLocked()
	}
	drop := func() { queued.Store(false) }
	wg.Add(1)
	go func() {
		defer wg.Done()
		timer := t.clock.NewTimer(d)
		defer timer.Stop()
		for {
			select {
			case <-timer.C():
				if queued.CompareAndSwap(false, true) && !t.post("flushing output buffers", flush, drop) {
					return
				}
				timer.Reset(d)
			case <-done:
				return
			case <-t.ctx.Done():
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
