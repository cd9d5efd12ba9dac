package flink

import (
	"container/heap"
	"sync"
	"time"
)

// procTimers is a task's processing-time service: callbacks due at a wall
// clock time in milliseconds, run on one goroutine under the task's emit
// lock, so that they never race with record processing or checkpoints. It
// drives periodic watermarks and processing-time timers.
type procTimers struct {
	t       *task
	mu      sync.Mutex
	q       procQueue
	seq     uint64
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

// nowMillis is the processing time: the wall clock in Unix milliseconds.
func nowMillis() int64 { return time.Now().UnixMilli() }

// register asks for f(now) at processing time at (Unix ms) or soon after.
// It may be called with or without the emit lock held. Callbacks registered
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
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *procTimers) run() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		var wait time.Duration = time.Hour
		var due []procTimer
		now := nowMillis()
		for len(p.q) > 0 && p.q[0].at <= now {
			due = append(due, heap.Pop(&p.q).(procTimer))
		}
		if len(p.q) > 0 {
			wait = time.Duration(p.q[0].at-now) * time.Millisecond
		}
		p.mu.Unlock()
		if len(due) > 0 {
			err := p.t.emit(func() error {
				for _, d := range due {
					if err := d.f(now); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				if !isCancellation(err) {
					p.t.failWith(err)
				}
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-p.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
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

// stop ends the service and waits for a running callback to return; the
// emit lock must not be held.
func (p *procTimers) stop() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.done)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
