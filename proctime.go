package flink

import (
	"container/heap"
	"sync"
	"time"
)

// procTimers is a task's processing-time service: callbacks due at a
// time of the task's clock in Unix milliseconds. A goroutine waits for the
// earliest; once it is due, a mail runs the due callbacks as the chain's
// owner, so that they never race with record processing or checkpoints. It
// drives periodic watermarks and processing-time timers.
type procTimers struct {
	t       *task
	mu      sync.Mutex
	q       procQueue
	seq     uint64
	firing  bool // a mail to run the due callbacks is queued
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	started bool
	stopped bool
}

type procTimer struct {
	at  int64 // Unix milliseconds
	seq uint64
	f   func(now int64) error
}

type procQueue []procTimer

func (q procQueue) Len() int { return len(q) }
func (q procQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q procQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *procQueue) Push(x any)   { *q = append(*q, x.(procTimer)) }
func (q *procQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

func newProcTimers(t *task) *procTimers {
	return &procTimers{t: t, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// now is the processing time: the task's clock in Unix milliseconds.
func (p *procTimers) now() int64 { return millisOf(p.t.clock) }

// register asks for f(now) at processing time at (Unix ms) or soon after.
// It may be called by the chain's owner or from another goroutine. Callbacks registered
// after the service stopped never run.
func (p *procTimers) register(at int64, f func(now int64) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.seq++
	heap.Push(&p.q, procTimer{at: at, seq: p.seq, f: f})
	if !p.started {
		p.started = true
		p.wg.Add(1)
		go p.run()
	}
	p.poke()
}

func (p *procTimers) run() {
	defer p.wg.Done()
	timer := p.t.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		wait := time.Hour
		due := false
		if len(p.q) > 0 && !p.firing {
			now := millisOf(p.t.clock)
			if due = p.q[0].at <= now; due {
				p.firing = true
			} else {
				wait = time.Duration(p.q[0].at-now) * time.Millisecond
			}
		}
		p.mu.Unlock()
		if due {
			if !p.t.post("processing-time timers", p.fire, nil) {
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C():
		case <-p.wake:
			if !timer.Stop() {
				select {
				case <-timer.C():
				default:
				}
			}
		case <-p.done:
			return
		case <-p.t.ctx.Done():
			return
		}
	}
}

// fire runs the callbacks due now, as the chain's owner.
func (p *procTimers) fire() error {
	now := millisOf(p.t.clock)
	p.mu.Lock()
	var due []procTimer
	for len(p.q) > 0 && p.q[0].at <= now {
		due = append(due, heap.Pop(&p.q).(procTimer))
	}
	p.firing = false
	stopped := p.stopped
	p.mu.Unlock()
	defer p.poke()
	if stopped {
		return nil
	}
	for _, d := range due {
		if err := d.f(now); err != nil {
			return err
		}
	}
	return nil
}

// poke wakes the goroutine to look at the queue again.
func (p *procTimers) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// stop ends the service and waits for its goroutine; callbacks not run
// yet never run.
func (p *procTimers) stop() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.done)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
