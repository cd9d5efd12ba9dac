package flink

import (
	"fmt"
	"reflect"
	"sync"
	"time"
)

// The in-process exchange hands batches of typed Go values from producer
// subtasks to consumer subtasks, with Flink's buffer accounting: each input
// channel owns a fixed number of buffers (its credit). A producer fills a
// buffer it took from the channel, ships it into the consumer's input gate,
// and the consumer returns it once processed. A producer with no free buffer
// waits — that wait is backpressure, and it is measured.

// buffersPerChannel is each input channel's credit: how many buffers may be
// in flight between one producer subtask and one consumer subtask.
const buffersPerChannel = 4

// localBuffer is one buffer in flight: a batch of records or an event.
type localBuffer[T any] struct {
	records []T
	ts      tsBuf              // the records' timestamps
	channel int                // the input channel it arrived on
	eop     bool               // end of partition: the producer sends nothing more
	barrier *CheckpointBarrier // a checkpoint barrier instead of records
	event   timeEvent          // a watermark or watermark status instead of records
	wm      int64              // the watermark, for evWatermark
}

// localGate is the input gate of one consumer subtask: every input channel
// feeds its queue, which is sized to hold every channel's buffers, so a
// producer only ever waits for credit, never for the queue.
type localGate[T any] struct {
	queue    chan *localBuffer[T]
	channels []chan *localBuffer[T] // free buffers per channel: the credit
}

func newLocalGate[T any](numChannels int) *localGate[T] {
	g := &localGate[T]{
		queue:    make(chan *localBuffer[T], numChannels*buffersPerChannel),
		channels: make([]chan *localBuffer[T], numChannels),
	}
	for i := range g.channels {
		free := make(chan *localBuffer[T], buffersPerChannel)
		for range buffersPerChannel {
			free <- &localBuffer[T]{records: make([]T, 0, batchSize), channel: i}
		}
		g.channels[i] = free
	}
	return g
}

// recycle returns a processed buffer to its channel's credit.
func (g *localGate[T]) recycle(b *localBuffer[T]) {
	b.records = b.records[:0]
	b.ts.reset()
	b.eop = false
	b.barrier = nil
	b.event = evNone
	g.channels[b.channel] <- b
}

// gateKey names the input gate of one attempt of one consumer subtask.
type gateKey struct {
	job     JobID
	attempt int
	vertex  int
	subtask int
}

// localShuffle connects producers and consumers in one process. Either side
// may create a gate first; the job's gates are dropped when it ends.
type localShuffle struct {
	id    string // tells TaskManagers sharing this exchange apart from others
	mu    sync.Mutex
	gates map[gateKey]any
}

func newLocalShuffle() *localShuffle {
	return &localShuffle{id: randomHex(8), gates: make(map[gateKey]any)}
}

func gateFor[T any](s *localShuffle, k gateKey, numChannels int) (*localGate[T], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.gates[k]; ok {
		lg, ok := g.(*localGate[T])
		if !ok || len(lg.channels) != numChannels {
			return nil, fmt.Errorf("flink: input gate %v exists with another type or width", k)
		}
		return lg, nil
	}
	g := newLocalGate[T](numChannels)
	s.gates[k] = g
	return g, nil
}

// releaseJob drops every gate of job attempts up to and including attempt.
func (s *localShuffle) releaseJob(job JobID, attempt int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.gates {
		if k.job == job && k.attempt <= attempt {
			delete(s.gates, k)
		}
	}
}

// streamType is what the runtime needs to know about a record type T to
// wire operators and exchanges without knowing T.
type streamType interface {
	String() string
	// fanout combines consumer[T]s into one.
	fanout(outs []any) any
	// newWriter returns the consumer[T] that writes edge e of subtask tk
	// into the consumers' gates.
	newWriter(tk *task, e *JobEdge) (any, error)
	// runInput reads subtask tk's input gate and pushes into head, a
	// consumer[T], until every channel ended.
	runInput(tk *task, head any) error
}

type typeInfo[T any] struct{}

func typeOf[T any]() streamType { return typeInfo[T]{} }

func (typeInfo[T]) String() string { return reflect.TypeFor[T]().String() }

func (typeInfo[T]) fanout(outs []any) any {
	switch len(outs) {
	case 0:
		return discard[T]{}
	case 1:
		return outs[0]
	}
	f := make(fanout[T], len(outs))
	for i, o := range outs {
		f[i] = o.(consumer[T])
	}
	return f
}

type discard[T any] struct{}

func (discard[T]) push([]T, []int64) error { return nil }
func (discard[T]) watermark(int64) error   { return nil }
func (discard[T]) endInput() error         { return nil }

func (typeInfo[T]) newWriter(tk *task, e *JobEdge) (any, error) {
	if tk.exchange.Network {
		return newNetWriter[T](tk, e)
	}
	g := tk.graph
	target := g.Vertices[e.Target]
	// The producer's channel index in each consumer gate: after the channels
	// of the target's earlier input edges.
	offset := 0
	for _, in := range target.Inputs {
		if in == e.ID {
			break
		}
		offset += g.Vertices[g.Edges[in].Source].Parallelism
	}
	w := &localWriter[T]{
		tk:      tk,
		sel:     newChannelSelector[T](tk, e),
		gates:   make([]*localGate[T], target.Parallelism),
		pending: make([]*localBuffer[T], target.Parallelism),
		channel: offset + tk.id.Subtask,
	}
	width := gateWidth(g, target)
	for j := range w.gates {
		gt, err := gateFor[T](tk.shuffle, gateKey{tk.id.Job, tk.id.Attempt, target.ID, j}, width)
		if err != nil {
			return nil, err
		}
		w.gates[j] = gt
	}
	tk.addFlusher(w.flush)
	tk.addBarrierWriter(w.emitBarrier)
	tk.addStatusWriter(w.emitStatus)
	return w, nil
}

// gateWidth is the number of input channels of a subtask of v.
func gateWidth(g *JobGraph, v *JobVertex) int {
	n := 0
	for _, in := range v.Inputs {
		n += g.Vertices[g.Edges[in].Source].Parallelism
	}
	return n
}

func (typeInfo[T]) runInput(tk *task, head any) error {
	h := head.(consumer[T])
	if tk.exchange.Network {
		return runNetInput(tk, h)
	}
	v := tk.graph.Vertices[tk.id.Vertex]
	g, err := gateFor[T](tk.shuffle, gateKey{tk.id.Job, tk.id.Attempt, v.ID, tk.id.Subtask}, gateWidth(tk.graph, v))
	if err != nil {
		return err
	}
	// Buffers of channels blocked for barrier alignment wait in parked,
	// holding their credit, and are replayed in order once released.
	n := len(g.channels)
	blocked := make([]bool, n)
	parked := make([][]*localBuffer[T], n)
	var replay []*localBuffer[T]
	in := tk.newInputEvents(n, h.watermark)
	in.aligner.block = func(ch int) { blocked[ch] = true }
	in.aligner.resumeAll = func() {
		for ch := range blocked {
			if blocked[ch] {
				blocked[ch] = false
				replay = append(replay, parked[ch]...)
				parked[ch] = nil
			}
		}
	}
	open := n
	for open > 0 {
		var b *localBuffer[T]
		if len(replay) > 0 {
			b, replay = replay[0], replay[1:]
		} else {
			select {
			case b = <-g.queue:
			default:
				// Waiting for input, the task runs its mails.
				start := time.Now()
				for b == nil {
					select {
					case b = <-g.queue:
					case <-tk.mailbox.signal:
						if err := tk.processMail(); err != nil {
							return err
						}
					case <-tk.ctx.Done():
						return tk.ctx.Err()
					}
				}
				tk.idleNanos.Add(int64(time.Since(start)))
			}
		}
		ch := b.channel
		switch {
		case blocked[ch]:
			parked[ch] = append(parked[ch], b)
			continue
		case b.barrier != nil:
			bar := *b.barrier
			g.recycle(b)
			if err := in.onBarrier(ch, bar); err != nil {
				return err
			}
			continue
		case b.event != evNone:
			ev, wm := b.event, b.wm
			g.recycle(b)
			if err := in.onTimeEvent(ch, ev, wm); err != nil {
				return err
			}
			continue
		case b.eop:
			open--
			g.recycle(b)
			if err := in.onEnd(ch); err != nil {
				return err
			}
			continue
		}
		err := tk.emit(func() error { return h.push(b.records, b.ts.get()) })
		g.recycle(b)
		if err != nil {
			return err
		}
	}
	return tk.endInput(h.endInput)
}

// localWriter partitions a producer subtask's records over the consumer
// subtasks' gates: Flink's RecordWriter with its ChannelSelector.
type localWriter[T any] struct {
	tk      *task
	sel     channelSelector[T]
	gates   []*localGate[T]
	pending []*localBuffer[T] // the buffer being filled per consumer
	channel int               // this producer's channel index in every gate
	out     outputProgress
}

func (w *localWriter[T]) push(b []T, ts []int64) error {
	switch w.sel.part {
	case partForward:
		return w.appendAll(w.sel.self, b, ts)
	case partBroadcast:
		for j := range w.gates {
			if err := w.appendAll(j, b, ts); err != nil {
				return err
			}
		}
		return nil
	}
	for i, v := range b {
		if err := w.append(w.sel.channel(v), v, tsAt(ts, i)); err != nil {
			return err
		}
	}
	return nil
}

// appendAll copies a batch into consumer j's buffers.
func (w *localWriter[T]) appendAll(j int, b []T, ts []int64) error {
	for len(b) > 0 {
		buf, err := w.buffer(j)
		if err != nil {
			return err
		}
		k := min(len(b), batchSize-len(buf.records))
		var kts []int64
		if ts != nil {
			kts, ts = ts[:k], ts[k:]
		}
		buf.ts.addAll(len(buf.records), k, kts)
		buf.records = append(buf.records, b[:k]...)
		b = b[k:]
		if len(buf.records) >= batchSize {
			w.ship(j)
		}
	}
	return nil
}

func (w *localWriter[T]) append(j int, v T, ts int64) error {
	buf, err := w.buffer(j)
	if err != nil {
		return err
	}
	buf.ts.add(len(buf.records), ts)
	buf.records = append(buf.records, v)
	if len(buf.records) >= batchSize {
		w.ship(j)
	}
	return nil
}

// buffer returns the buffer being filled for consumer j, taking a free one
// (waiting for credit) when there is none.
func (w *localWriter[T]) buffer(j int) (*localBuffer[T], error) {
	if b := w.pending[j]; b != nil {
		return b, nil
	}
	free := w.gates[j].channels[w.channel]
	var b *localBuffer[T]
	select {
	case b = <-free:
	default:
		start := time.Now()
		select {
		case b = <-free:
		case <-w.tk.ctx.Done():
			return nil, w.tk.ctx.Err()
		}
		w.tk.backPressuredNanos.Add(int64(time.Since(start)))
	}
	w.pending[j] = b
	return b, nil
}

// ship hands consumer j's pending buffer to its gate. The gate's queue has
// room for every buffer, so this never waits.
func (w *localWriter[T]) ship(j int) {
	b := w.pending[j]
	w.pending[j] = nil
	w.gates[j].queue <- b
}

func (w *localWriter[T]) flush() error {
	for j, b := range w.pending {
		if b != nil && len(b.records) > 0 {
			w.ship(j)
		}
	}
	return nil
}

// emitBarrier sends a checkpoint barrier to every consumer, behind the
// records written before it.
func (w *localWriter[T]) emitBarrier(b CheckpointBarrier) error {
	w.flush()
	for j := range w.gates {
		buf, err := w.buffer(j)
		if err != nil {
			return err
		}
		buf.barrier = &b
		w.ship(j)
	}
	return nil
}

// watermark sends a watermark to every consumer, behind the records
// written before it.
func (w *localWriter[T]) watermark(wm int64) error {
	if !w.out.advance(wm) {
		return nil
	}
	w.tk.outputWM.Store(wm)
	return w.emitEvent(evWatermark, wm)
}

// emitStatus sends a watermark status change to every consumer.
func (w *localWriter[T]) emitStatus(idle bool) error {
	ev, ok := w.out.status(idle)
	if !ok {
		return nil
	}
	return w.emitEvent(ev, 0)
}

func (w *localWriter[T]) emitEvent(ev timeEvent, wm int64) error {
	w.flush()
	for j := range w.gates {
		buf, err := w.buffer(j)
		if err != nil {
			return err
		}
		buf.event, buf.wm = ev, wm
		w.ship(j)
	}
	return nil
}

func (w *localWriter[T]) endInput() error {
	w.flush()
	for j := range w.gates {
		b, err := w.buffer(j)
		if err != nil {
			return err
		}
		b.eop = true
		w.ship(j)
	}
	return nil
}
