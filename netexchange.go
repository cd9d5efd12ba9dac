package flink

import (
	"errors"
	"fmt"
	"io"

	"github.com/flinkgo/flink/network"
)

// The network exchange: when a job's subtasks run in more than one process,
// every edge goes through the network stack. A producer subtask writes a
// result partition with one subpartition per consumer subtask; a consumer
// reads an input gate with one channel per producer subtask, local channels
// for producers on its own TaskManager and TCP channels for the others.

// netContext is a TaskManager's data plane as its tasks see it.
type netContext struct {
	tm     ResourceID
	env    *network.Environment
	codecs *network.Codecs
}

// partitionID names the partition subtask tk writes for edge e.
func partitionID(id ExecutionAttemptID, edge int) network.ResultPartitionID {
	return network.ResultPartitionID{
		JobID:      string(id.Job),
		ProducerID: fmt.Sprintf("a%d/v%d/s%d", id.Attempt, id.Vertex, id.Subtask),
		Partition:  edge,
	}
}

// netWriter partitions records over the subpartitions of a result
// partition: the network form of localWriter.
type netWriter[T any] struct {
	tk       *task
	sel      channelSelector[T]
	p        *network.ResultPartition
	w        *network.RecordWriter[stamped[T]]
	finished bool
	out      outputProgress
}

func newNetWriter[T any](tk *task, e *JobEdge) (*netWriter[T], error) {
	target := tk.graph.Vertices[e.Target]
	p, err := tk.net.env.NewResultPartition(partitionID(tk.id, e.ID), target.Parallelism)
	if err != nil {
		return nil, fmt.Errorf("task manager %s: result partition of %s: %w", tk.net.tm, tk.id, err)
	}
	cfg := network.DefaultRecordWriterConfig()
	cfg.BufferTimeout = tk.graph.Config.BufferTimeout
	w := &netWriter[T]{
		tk: tk, sel: newChannelSelector[T](tk, e),
		p: p, w: network.NewRecordWriter[stamped[T]](p, stampedCodec[T]{network.CodecFor[T](tk.net.codecs)}, cfg),
	}
	tk.addFlusher(w.flush)
	tk.addBarrierWriter(w.emitBarrier)
	tk.addStatusWriter(w.emitStatus)
	tk.addCloser(w.close)
	tk.addNetMetrics(func(m *TaskMetrics) {
		pm := p.Metrics()
		m.BackPressured += durationOf(pm.BackPressuredNanos)
		m.BytesOut += pm.Bytes
		m.OutPoolUsed += pm.PoolUsed
		m.OutPoolSize += pm.PoolSize
	})
	return w, nil
}

func (w *netWriter[T]) push(b []T, ts []int64) error {
	ctx := w.tk.ctx
	for i, r := range b {
		v := stamped[T]{ts: tsAt(ts, i), v: r}
		var err error
		if w.sel.part == partBroadcast {
			err = w.w.Broadcast(ctx, v)
		} else {
			err = w.w.Emit(ctx, w.sel.channel(r), v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *netWriter[T]) flush() error {
	if !w.finished {
		w.w.Flush()
	}
	return nil
}

// emitBarrier sends a checkpoint barrier to every consumer, behind the
// records written before it.
func (w *netWriter[T]) emitBarrier(b CheckpointBarrier) error {
	p, err := encodeBarrier(b)
	if err != nil {
		return err
	}
	return w.w.BroadcastEvent(network.Event{Kind: network.EventCheckpointBarrier, Payload: p})
}

// watermark sends a watermark to every consumer, behind the records
// written before it.
func (w *netWriter[T]) watermark(wm int64) error {
	if !w.out.advance(wm) {
		return nil
	}
	w.tk.outputWM.Store(wm)
	return w.w.BroadcastEvent(network.Event{Kind: network.EventWatermark, Payload: encodeWatermark(wm)})
}

// emitStatus sends a watermark status change to every consumer.
func (w *netWriter[T]) emitStatus(idle bool) error {
	ev, ok := w.out.status(idle)
	if !ok {
		return nil
	}
	return w.w.BroadcastEvent(network.Event{Kind: network.EventWatermarkStatus, Payload: []byte{byte(ev)}})
}

// endInput ships what is buffered and ends the partition.
func (w *netWriter[T]) endInput() error {
	if err := w.w.Close(); err != nil {
		return err
	}
	w.finished = true
	return w.p.Finish()
}

// close releases the partition of a task that did not finish, so its
// consumers fail instead of waiting.
func (w *netWriter[T]) close() error {
	if !w.finished {
		w.w.Close()
		w.p.Release(errTaskStopping)
	}
	return nil
}

// runNetInput reads the task's input gate and pushes batches into head.
func runNetInput[T any](tk *task, h consumer[T]) error {
	g, v := tk.graph, tk.graph.Vertices[tk.id.Vertex]
	var specs []network.InputChannelSpec
	own := tk.exchange.DataAddrs[v.ID][tk.id.Subtask]
	for _, eid := range v.Inputs {
		e := g.Edges[eid]
		for p := range g.Vertices[e.Source].Parallelism {
			producer := ExecutionAttemptID{Job: tk.id.Job, Vertex: e.Source, Subtask: p, Attempt: tk.id.Attempt}
			addr := tk.exchange.DataAddrs[e.Source][p]
			if addr == own {
				addr = "" // same TaskManager: a local channel
			}
			specs = append(specs, network.InputChannelSpec{Partition: partitionID(producer, eid), Subpartition: tk.id.Subtask, ProducerAddr: addr})
		}
	}
	gate, err := tk.net.env.NewInputGate(specs)
	if err != nil {
		return fmt.Errorf("task manager %s: input gate of %s: %w", tk.net.tm, tk.id, err)
	}
	defer gate.Close()
	tk.addNetMetrics(func(m *TaskMetrics) {
		gm := gate.Metrics()
		m.Idle += durationOf(gm.IdleNanos)
		m.BytesIn += gm.Bytes
		m.InPoolUsed += gm.PoolUsed
		m.InPoolSize += gm.PoolSize
	})
	if err := gate.RequestPartitions(tk.ctx); err != nil {
		return err
	}
	r := network.NewRecordReader[stamped[T]](gate, stampedCodec[T]{network.CodecFor[T](tk.net.codecs)}, 0)
	defer r.Close()
	in := tk.newInputEvents(gate.NumChannels(), h.watermark)
	var blocked []int
	in.aligner.block = func(ch int) {
		gate.BlockChannel(ch)
		blocked = append(blocked, ch)
	}
	in.aligner.resumeAll = func() {
		for _, ch := range blocked {
			gate.ResumeChannel(ch)
		}
		blocked = blocked[:0]
	}
	batch := make([]T, 0, batchSize)
	var ts tsBuf
	push := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := tk.emit(func() error { return h.push(batch, ts.get()) })
		batch = batch[:0]
		ts.reset()
		return err
	}
	var rec, zero stamped[T] // one record decoded into and copied out: no allocation per record
	for {
		rec = zero
		res, err := r.NextOr(tk.ctx, &rec, tk.mailbox.signal)
		if errors.Is(err, network.ErrInterrupted) {
			// Waiting for input, the task runs its mails.
			if err := tk.processMail(); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			if err := push(); err != nil {
				return err
			}
			return tk.endInput(h.endInput)
		}
		if err != nil {
			return err
		}
		if res.IsEvent {
			// Records before an event are processed before it.
			if err := push(); err != nil {
				return err
			}
			switch res.Event.Kind {
			case network.EventCheckpointBarrier:
				b, err := decodeBarrier(res.Event.Payload)
				if err != nil {
					return fmt.Errorf("input channel %d: %w", res.Channel, err)
				}
				if err := in.onBarrier(res.Channel, b); err != nil {
					return err
				}
			case network.EventWatermark:
				wm, err := decodeWatermark(res.Event.Payload)
				if err != nil {
					return fmt.Errorf("input channel %d: %w", res.Channel, err)
				}
				if err := in.onTimeEvent(res.Channel, evWatermark, wm); err != nil {
					return err
				}
			case network.EventWatermarkStatus:
				ev, err := decodeWatermarkStatus(res.Event.Payload)
				if err != nil {
					return fmt.Errorf("input channel %d: %w", res.Channel, err)
				}
				if err := in.onTimeEvent(res.Channel, ev, 0); err != nil {
					return err
				}
			case network.EventEndOfPartition:
				if err := in.onEnd(res.Channel); err != nil {
					return err
				}
			}
			// The reader returns io.EOF once every channel has ended.
			continue
		}
		ts.add(len(batch), rec.ts)
		batch = append(batch, rec.v)
		if len(batch) >= batchSize || !r.Buffered() {
			if err := push(); err != nil {
				return err
			}
		}
	}
}
