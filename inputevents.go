package flink

// The parts of an exchange both forms share: which consumer a record goes
// to, and what a task does with the events on its input channels. The
// in-process exchange (exchange.go) and the network exchange
// (netexchange.go) differ only in how records and events travel.

// channelSelector picks the consumer subtask of each record of an edge, as
// Flink's ChannelSelector. Broadcast edges send every record to every
// consumer; the writers handle them without it.
type channelSelector[T any] struct {
	part       partitionKind
	keyGroupOf func(T) int // for hash edges
	maxPar     int         // the consumer's key groups
	n          int         // the consumer's parallelism
	self       int         // this producer's subtask: forward's consumer
	rr         int         // the last round-robin consumer
}

func newChannelSelector[T any](tk *task, e *JobEdge) channelSelector[T] {
	target := tk.graph.Vertices[e.Target]
	s := channelSelector[T]{part: e.part, maxPar: target.MaxParallelism, n: target.Parallelism, self: tk.id.Subtask, rr: tk.id.Subtask}
	if e.part == partHash {
		s.keyGroupOf = e.keyGroupOf.(func(T) int)
	}
	return s
}

// channel returns the consumer subtask of v: forward edges keep the
// producer's index, hash edges map v's key group onto the consumers' key
// group ranges, and the others (rebalance) go round robin.
func (s *channelSelector[T]) channel(v T) int {
	switch s.part {
	case partForward:
		return s.self
	case partHash:
		return s.keyGroupOf(v) * s.n / s.maxPar
	}
	if s.rr++; s.rr >= s.n {
		s.rr = 0
	}
	return s.rr
}

// inputEvents handles the events of a task's input channels, as Flink's
// StreamTaskNetworkInput does with its CheckpointBarrierHandler and
// StatusWatermarkValve: barriers align, watermarks and idleness combine,
// and a channel's end counts as every barrier and leaves the valve. The
// exchange blocks and resumes channels through aligner.block and
// aligner.resumeAll.
type inputEvents struct {
	aligner *aligner
	valve   *valve
}

func (t *task) newInputEvents(numChannels int, head func(wm int64) error) *inputEvents {
	return &inputEvents{aligner: t.newAligner(numChannels), valve: t.newValve(numChannels, head)}
}

// onBarrier handles checkpoint barrier b from channel ch.
func (in *inputEvents) onBarrier(ch int, b CheckpointBarrier) error {
	return in.aligner.onBarrier(ch, b)
}

// onTimeEvent handles a watermark (evWatermark, with wm) or a status change
// from channel ch.
func (in *inputEvents) onTimeEvent(ch int, ev timeEvent, wm int64) error {
	return in.valve.onEvent(ch, ev, wm)
}

// onEnd handles the end of channel ch's partition.
func (in *inputEvents) onEnd(ch int) error {
	if err := in.aligner.onEndOfPartition(ch); err != nil {
		return err
	}
	return in.valve.onEnd(ch)
}
