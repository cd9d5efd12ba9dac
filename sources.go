package flink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// sourceRunner is the runtime form of a source in one subtask.
type sourceRunner interface {
	// run emits records until the source is exhausted (returns nil) or
	// fails; it returns promptly when ctx is cancelled.
	run(ctx context.Context) error
	// cancel asks a running source to stop; it may be called from another
	// goroutine, before or after run.
	cancel()
}

func addSource[T any](env *Env, opType, name string, maxPar int, build func(oc *opContext, out consumer[T]) (sourceRunner, error)) *DataStream[T] {
	t := env.add(&transformation{
		kind:    kindSource,
		opType:  opType,
		name:    name,
		maxPar:  maxPar,
		outType: typeOf[T](),
		build: func(oc *opContext, out any) (any, error) {
			return build(oc, out.(consumer[T]))
		},
	})
	return newStream[T](t)
}

// batchSource runs a built-in source that produces whole batches: no lock
// or allocation per record.
type batchSource[T any] struct {
	oc  *opContext
	out consumer[T]
	// next appends up to batchSize records to buf and reports whether the
	// source is exhausted.
	next    func(ctx context.Context, buf []T) ([]T, bool, error)
	cleanup func()
}

func (s *batchSource[T]) run(ctx context.Context) (err error) {
	defer s.oc.recoverInto(&err)
	if s.cleanup != nil {
		defer s.cleanup()
	}
	buf := make([]T, 0, batchSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var done bool
		buf, done, err = s.next(ctx, buf[:0])
		if err != nil {
			return s.oc.fail(err)
		}
		if len(buf) > 0 {
			s.oc.metrics.RecordsOut.Add(int64(len(buf)))
			if err := s.oc.task.emit(func() error { return s.out.push(buf) }); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

func (s *batchSource[T]) cancel() {}

// FromSlice emits the elements of data in order. Like Flink's
// fromCollection it is not parallel: its parallelism is always 1.
func FromSlice[T any](env *Env, data []T) *DataStream[T] {
	return addSource(env, "FromSlice", "FromSlice", 1, func(oc *opContext, out consumer[T]) (sourceRunner, error) {
		pos := 0
		return &batchSource[T]{oc: oc, out: out, next: func(_ context.Context, buf []T) ([]T, bool, error) {
			end := min(pos+batchSize, len(data))
			buf = append(buf, data[pos:end]...)
			pos = end
			return buf, pos == len(data), nil
		}}, nil
	})
}

// Generate emits gen(i) for i in [0, count), split over the source's
// subtasks in contiguous ranges. A negative count generates without end,
// subtask s producing i = s, s+p, s+2p, ... until the job is cancelled.
func Generate[T any](env *Env, count int64, gen func(i int64) (T, error)) *DataStream[T] {
	return addSource(env, "Generate", "Generate", 0, func(oc *opContext, out consumer[T]) (sourceRunner, error) {
		sub, par := int64(oc.rc.subtask), int64(oc.rc.parallelism)
		i, end, step := count*sub/par, count*(sub+1)/par, int64(1)
		if count < 0 {
			i, end, step = sub, -1, par
		}
		return &batchSource[T]{oc: oc, out: out, next: func(_ context.Context, buf []T) ([]T, bool, error) {
			for len(buf) < batchSize && (end < 0 || i < end) {
				v, err := gen(i)
				if err != nil {
					return buf, false, fmt.Errorf("generating record %d: %w", i, err)
				}
				buf = append(buf, v)
				i += step
			}
			return buf, end >= 0 && i >= end, nil
		}}, nil
	})
}

// ReadLines emits the lines of the given text files, without line endings.
// Each file is split into byte ranges, one per subtask, and a line belongs
// to the range where it starts, so every line is read exactly once whatever
// the parallelism.
func ReadLines(env *Env, paths ...string) *DataStream[string] {
	return addSource(env, "ReadLines", "ReadLines", 0, func(oc *opContext, out consumer[string]) (sourceRunner, error) {
		r := &lineReader{paths: paths, subtask: oc.rc.subtask, parallelism: oc.rc.parallelism}
		return &batchSource[string]{oc: oc, out: out, next: r.next, cleanup: r.close}, nil
	})
}

// lineReader reads one subtask's byte range of each file in turn.
type lineReader struct {
	paths       []string
	subtask     int
	parallelism int

	file int // index of the file being read
	f    *os.File
	br   *bufio.Reader
	pos  int64 // offset of the next unread byte
	end  int64 // lines starting at or after end belong to the next range
}

func (r *lineReader) open() error {
	f, err := os.Open(r.paths[r.file])
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	size, p, s := st.Size(), int64(r.parallelism), int64(r.subtask)
	start := size * s / p
	r.end = size * (s + 1) / p
	r.f, r.pos = f, start
	if start > 0 {
		// The line containing start-1 belongs to the previous range unless
		// start-1 is its newline: skip through the first newline at or after
		// start-1.
		if _, err := f.Seek(start-1, io.SeekStart); err != nil {
			return err
		}
		r.br = bufio.NewReaderSize(f, 64<<10)
		skipped, err := r.br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			r.pos += int64(len(skipped))
			skipped, err = r.br.ReadSlice('\n')
		}
		r.pos += int64(len(skipped)) - 1
		if err == io.EOF {
			r.pos = size
		} else if err != nil {
			return err
		}
		return nil
	}
	r.br = bufio.NewReaderSize(f, 64<<10)
	return nil
}

func (r *lineReader) next(_ context.Context, buf []string) ([]string, bool, error) {
	for len(buf) < batchSize {
		if r.file >= len(r.paths) {
			return buf, true, nil
		}
		if r.f == nil {
			if err := r.open(); err != nil {
				return buf, false, fmt.Errorf("reading %s: %w", r.paths[r.file], err)
			}
		}
		if r.pos >= r.end {
			r.closeFile()
			continue
		}
		line, err := r.br.ReadString('\n')
		r.pos += int64(len(line))
		if len(line) > 0 {
			buf = append(buf, trimEOL(line))
		}
		if err == io.EOF {
			r.closeFile()
		} else if err != nil {
			return buf, false, fmt.Errorf("reading %s: %w", r.paths[r.file], err)
		}
	}
	return buf, false, nil
}

func (r *lineReader) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.file++
}

func (r *lineReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

func trimEOL(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
		if n := len(s); n > 0 && s[n-1] == '\r' {
			s = s[:n-1]
		}
	}
	return s
}

// Source is a parallel source: one instance runs in each subtask, and each
// reads its own share of the input (its splits), which it can find from the
// subtask index and parallelism in its SourceContext.
type Source[T any] interface {
	// Run emits records through ctx until the input is exhausted (return
	// nil), an error occurs, or the source is cancelled (return promptly;
	// ctx.Context() is then done). It is called once, on its own goroutine.
	Run(ctx *SourceContext[T]) error
	// Cancel asks Run to return. It is called from another goroutine, at
	// most once, possibly before Run starts or after it returned.
	Cancel()
}

// SourceContext is the channel through which a Source emits records.
type SourceContext[T any] struct {
	rc    *RuntimeContext
	oc    *opContext
	out   consumer[T]
	batch []T
}

// Collect emits one record. It blocks while downstream operators are back
// pressured, and returns an error when the job is failing or cancelled; the
// source should then return.
func (c *SourceContext[T]) Collect(v T) error {
	return c.oc.task.emit(func() error {
		c.batch = append(c.batch, v)
		if len(c.batch) >= batchSize {
			return c.flushLocked()
		}
		return nil
	})
}

// flushLocked pushes the pending records; the task's emit lock is held.
func (c *SourceContext[T]) flushLocked() error {
	if len(c.batch) == 0 {
		return nil
	}
	c.oc.metrics.RecordsOut.Add(int64(len(c.batch)))
	err := c.out.push(c.batch)
	c.batch = c.batch[:0]
	return err
}

// Context is cancelled when the source must stop.
func (c *SourceContext[T]) Context() context.Context { return c.rc.ctx }

// RuntimeContext describes the subtask the source runs in.
func (c *SourceContext[T]) RuntimeContext() *RuntimeContext { return c.rc }

// Splits returns the indexes, out of n splits numbered 0..n-1, that this
// subtask reads: round robin over the subtasks.
func (c *SourceContext[T]) Splits(n int) []int {
	var s []int
	for i := c.rc.subtask; i < n; i += c.rc.parallelism {
		s = append(s, i)
	}
	return s
}

// FromSource adds a user-defined parallel source; newSource is called once
// per subtask (and again on restart) to create that subtask's instance.
func FromSource[T any](env *Env, name string, newSource func() Source[T]) *DataStream[T] {
	return addSource(env, "Source", name, 0, func(oc *opContext, out consumer[T]) (sourceRunner, error) {
		sc := &SourceContext[T]{rc: oc.rc, oc: oc, out: out, batch: make([]T, 0, batchSize)}
		oc.task.addFlusher(sc.flushLocked)
		return &userSource[T]{sc: sc, src: newSource()}, nil
	})
}

type userSource[T any] struct {
	sc   *SourceContext[T]
	src  Source[T]
	once sync.Once
}

func (s *userSource[T]) run(ctx context.Context) (err error) {
	defer s.sc.oc.recoverInto(&err)
	if err := s.src.Run(s.sc); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var opErr *operatorError
		if errors.As(err, &opErr) || errors.Is(err, errTaskStopping) {
			return err
		}
		return s.sc.oc.fail(err)
	}
	return s.sc.oc.task.emit(s.sc.flushLocked)
}

func (s *userSource[T]) cancel() { s.once.Do(s.src.Cancel) }
