package flink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Sink writes a stream's records out of the job. One instance runs in each
// subtask; its methods are called from that subtask's goroutine only.
type Sink[T any] interface {
	// Open prepares the sink for the subtask described by rc.
	Open(rc *RuntimeContext) error
	// Write writes one record. ctx is the subtask's: it is done when the
	// subtask is cancelled or fails, so a Write that blocks (on a network
	// call, a full queue) must watch it and return its error. The sink owns
	// v once Write returns.
	Write(ctx context.Context, v T) error
	// Finish is called after the last record of a bounded input: flush and
	// make the output complete.
	Finish() error
	// Close releases the sink's resources. It is called once Open
	// succeeded, after Finish or after a failure or cancellation.
	Close() error
}

// DataStreamSink is the end of a stream; its methods configure the sink
// operator.
type DataStreamSink struct {
	t *transformation
}

// Name sets the sink's name.
func (s *DataStreamSink) Name(name string) *DataStreamSink { s.t.name = name; return s }

// UID sets the sink's stable id.
func (s *DataStreamSink) UID(uid string) *DataStreamSink { s.t.uid = uid; return s }

// SetParallelism sets the sink's number of parallel subtasks.
func (s *DataStreamSink) SetParallelism(n int) *DataStreamSink {
	if n < 1 {
		s.t.env.setErr(fmt.Errorf("%w: sink %q: parallelism %d, want >= 1", ErrInvalidConfig, s.t.name, n))
	}
	s.t.parallelism = n
	return s
}

// DisableChaining keeps the sink out of any chain.
func (s *DataStreamSink) DisableChaining() *DataStreamSink { s.t.chaining = chainNever; return s }

// SinkTo adds a sink; newSink is called once per subtask (and again on
// restart) to create that subtask's instance. A sink that implements
// CheckpointedFunction keeps operator state in checkpoints. For output
// that is exactly once, use SinkToTransactional.
func SinkTo[T any](s *DataStream[T], name string, newSink func() Sink[T]) *DataStreamSink {
	t := s.env.add(&transformation{
		kind:   kindSink,
		opType: "Sink",
		name:   name,
		inputs: append([]input(nil), s.ins...),
		build: func(oc *opContext, _ any) (any, error) {
			sk := newSink()
			if err := initCheckpointedFunction(oc, sk); err != nil {
				return nil, err
			}
			if err := sk.Open(oc.rc); err != nil {
				return nil, oc.fail(fmt.Errorf("opening sink: %w", err))
			}
			oc.task.addCloser(sk.Close)
			return &sinkOp[T]{oc: oc, sink: sk}, nil
		},
	})
	return &DataStreamSink{t: t}
}

type sinkOp[T any] struct {
	oc   *opContext
	sink Sink[T]
}

func (o *sinkOp[T]) push(b []T, _ []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	if f, ok := o.sink.(funcSink[T]); ok {
		// Skip the interface call per record for function sinks.
		for _, v := range b {
			if err := f(v); err != nil {
				return o.oc.fail(err)
			}
		}
		return nil
	}
	ctx := o.oc.rc.ctx
	for _, v := range b {
		if err := o.sink.Write(ctx, v); err != nil {
			return o.oc.fail(err)
		}
	}
	return nil
}

func (o *sinkOp[T]) watermark(int64) error { return nil }

func (o *sinkOp[T]) endInput() (err error) {
	defer o.oc.recoverInto(&err)
	if err := o.sink.Finish(); err != nil {
		return o.oc.fail(err)
	}
	return nil
}

// SinkFunc adapts a function to a Sink with no setup or teardown. The
// function is shared by all subtasks, so it must be safe for concurrent use.
func SinkFunc[T any](write func(v T) error) func() Sink[T] {
	return func() Sink[T] { return funcSink[T](write) }
}

type funcSink[T any] func(T) error

func (f funcSink[T]) Open(*RuntimeContext) error         { return nil }
func (f funcSink[T]) Write(_ context.Context, v T) error { return f(v) }
func (f funcSink[T]) Finish() error                      { return nil }
func (f funcSink[T]) Close() error                       { return nil }

// Print writes every record to standard output, one per line, formatted
// with %v. With parallelism above 1 each line starts with the 1-based
// subtask index and "> ", as Flink's print().
func Print[T any](s *DataStream[T]) *DataStreamSink { return PrintTo(s, os.Stdout) }

// PrintTo is Print to w. Lines of different subtasks never interleave.
func PrintTo[T any](s *DataStream[T], w io.Writer) *DataStreamSink {
	var mu sync.Mutex
	return SinkTo(s, "Print", func() Sink[T] { return &printSink[T]{w: w, mu: &mu} })
}

type printSink[T any] struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
}

func (p *printSink[T]) Open(rc *RuntimeContext) error {
	if rc.Parallelism() > 1 {
		p.prefix = fmt.Sprintf("%d> ", rc.SubtaskIndex()+1)
	}
	return nil
}

func (p *printSink[T]) Write(_ context.Context, v T) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := fmt.Fprintf(p.w, "%s%v\n", p.prefix, v)
	return err
}

func (p *printSink[T]) Finish() error { return nil }
func (p *printSink[T]) Close() error  { return nil }

// CollectSink gathers a stream's records in memory, for tests and small
// results. Records from a failed attempt are discarded when the job
// restarts.
type CollectSink[T any] struct {
	mu      sync.Mutex
	attempt int
	values  []T
}

// Collect adds a CollectSink to s.
func Collect[T any](s *DataStream[T]) *CollectSink[T] {
	c := &CollectSink[T]{}
	SinkTo(s, "Collect", func() Sink[T] { return &collectWriter[T]{c: c} })
	return c
}

// Values returns the records collected so far by the latest attempt, in
// the order they arrived.
func (c *CollectSink[T]) Values() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.values...)
}

type collectWriter[T any] struct {
	c       *CollectSink[T]
	attempt int
}

func (w *collectWriter[T]) Open(rc *RuntimeContext) error {
	w.attempt = rc.Attempt()
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if w.attempt > w.c.attempt {
		w.c.attempt, w.c.values = w.attempt, nil
	}
	return nil
}

func (w *collectWriter[T]) Write(_ context.Context, v T) error {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if w.attempt == w.c.attempt {
		w.c.values = append(w.c.values, v)
	}
	return nil
}

func (w *collectWriter[T]) Finish() error { return nil }
func (w *collectWriter[T]) Close() error  { return nil }

// WriteText writes every record, formatted with %v, as a line of text into
// the directory dir: subtask i writes part-i. A part file is written under
// a temporary name and renamed when its input is complete, so a reader never
// sees a partial file of a successful run.
func WriteText[T any](s *DataStream[T], dir string) *DataStreamSink {
	return SinkTo(s, "WriteText", func() Sink[T] { return &textSink[T]{dir: dir} })
}

type textSink[T any] struct {
	dir  string
	path string
	f    *os.File
	w    *bufio.Writer
}

func (t *textSink[T]) Open(rc *RuntimeContext) error {
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return err
	}
	t.path = filepath.Join(t.dir, fmt.Sprintf("part-%d", rc.SubtaskIndex()))
	f, err := os.Create(t.path + ".inprogress")
	if err != nil {
		return err
	}
	t.f, t.w = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

func (t *textSink[T]) Write(_ context.Context, v T) error {
	_, err := fmt.Fprintln(t.w, v)
	return err
}

func (t *textSink[T]) Finish() error {
	if err := t.w.Flush(); err != nil {
		return err
	}
	if err := t.f.Sync(); err != nil {
		return err
	}
	if err := t.f.Close(); err != nil {
		return err
	}
	t.f = nil
	return os.Rename(t.path+".inprogress", t.path)
}

func (t *textSink[T]) Close() error {
	if t.f == nil {
		return nil
	}
	t.f.Close()
	t.f = nil
	return os.Remove(t.path + ".inprogress")
}
