package flink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/flinkgo/flink/state"
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
	next func(ctx context.Context, buf []T) ([]T, bool, error)
	// commit runs by the chain's owner once a batch was pushed: the reader's
	// position after it becomes the one checkpoints record.
	commit  func()
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
		err := s.oc.task.emit(func() error {
			if len(buf) > 0 {
				s.oc.metrics.RecordsOut.Add(int64(len(buf)))
				if err := s.out.push(buf, nil); err != nil {
					return err
				}
			}
			s.commit()
			return nil
		})
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func (s *batchSource[T]) cancel() {}

// sourceSplits keeps a built-in source subtask's splits, with their read
// positions, in operator list state: it returns the splits to read, the
// restored ones or initial(), and checkpoints record committed() (called
// by the chain's owner). Splits are redistributed when the job is restored
// at another parallelism.
func sourceSplits[S any](oc *opContext, initial func() []S, committed func() []S) ([]S, error) {
	var list state.ListState[S]
	b, err := operatorBackend(oc, func(int64) error { return list.Update(committed()) })
	if err != nil {
		return nil, err
	}
	if list, err = state.GetOperatorListState(b, state.ListStateDescriptor[S]{Name: "splits"}); err != nil {
		return nil, err
	}
	if oc.restore == nil {
		return initial(), nil
	}
	return list.Get()
}

// FromSlice emits the elements of data in order. Like Flink's
// fromCollection it is not parallel: its parallelism is always 1. Its
// position is checkpointed.
func FromSlice[T any](env *Env, data []T) *DataStream[T] {
	return addSource(env, "FromSlice", "FromSlice", 1, func(oc *opContext, out consumer[T]) (sourceRunner, error) {
		var pos, committed int
		restored, err := sourceSplits(oc, func() []int { return []int{0} }, func() []int { return []int{committed} })
		if err != nil {
			return nil, oc.fail(err)
		}
		for _, p := range restored {
			pos = max(pos, p)
		}
		pos = min(pos, len(data))
		committed = pos
		return &batchSource[T]{oc: oc, out: out, commit: func() { committed = pos }, next: func(_ context.Context, buf []T) ([]T, bool, error) {
			end := min(pos+batchSize, len(data))
			buf = append(buf, data[pos:end]...)
			pos = end
			return buf, pos == len(data), nil
		}}, nil
	})
}

// genSplit is a range of Generate's indexes: Next, Next+Step, ... up to
// End (exclusive; -1 for no end).
type genSplit struct {
	Next int64 `msgpack:"n"`
	End  int64 `msgpack:"e"`
	Step int64 `msgpack:"s"`
}

func (g genSplit) done() bool { return g.End >= 0 && g.Next >= g.End }

// Generate emits gen(i) for i in [0, count), split over the source's
// subtasks in contiguous ranges. A negative count generates without end,
// subtask s producing i = s, s+p, s+2p, ... until the job is cancelled.
// Generate is replayable: its positions are checkpointed, and a job
// restored at another parallelism redistributes the ranges.
func Generate[T any](env *Env, count int64, gen func(i int64) (T, error)) *DataStream[T] {
	return addSource(env, "Generate", "Generate", 0, func(oc *opContext, out consumer[T]) (sourceRunner, error) {
		sub, par := int64(oc.rc.subtask), int64(oc.rc.parallelism)
		var splits, committed []genSplit
		splits, err := sourceSplits(oc, func() []genSplit {
			if count < 0 {
				return []genSplit{{Next: sub, End: -1, Step: par}}
			}
			return []genSplit{{Next: count * sub / par, End: count * (sub + 1) / par, Step: 1}}
		}, func() []genSplit { return committed })
		if err != nil {
			return nil, oc.fail(err)
		}
		splits = slices.DeleteFunc(splits, genSplit.done)
		committed = slices.Clone(splits)
		cur := 0
		return &batchSource[T]{oc: oc, out: out,
			commit: func() { committed = append(committed[:0], splits...) },
			next: func(_ context.Context, buf []T) ([]T, bool, error) {
				if len(splits) == 0 {
					return buf, true, nil
				}
				cur %= len(splits)
				sp := &splits[cur]
				for len(buf) < batchSize && !sp.done() {
					v, err := gen(sp.Next)
					if err != nil {
						return buf, false, fmt.Errorf("generating record %d: %w", sp.Next, err)
					}
					buf = append(buf, v)
					sp.Next += sp.Step
				}
				if sp.done() {
					splits = slices.Delete(splits, cur, cur+1)
				} else {
					cur++ // round robin over the splits, a batch each
				}
				return buf, len(splits) == 0, nil
			}}, nil
	})
}

// lineSplit is one subtask's byte range of one file, as ReadLines splits
// them: the range of subtask Sub of Par, and the offset of the next line to
// read (-1 before the range was opened).
type lineSplit struct {
	File int   `msgpack:"f"`
	Sub  int   `msgpack:"s"`
	Par  int   `msgpack:"p"`
	Pos  int64 `msgpack:"o"`
}

// ReadLines emits the lines of the given text files, without line endings.
// Each file is split into byte ranges, one per subtask, and a line belongs
// to the range where it starts, so every line is read exactly once whatever
// the parallelism. Read positions are checkpointed.
func ReadLines(env *Env, paths ...string) *DataStream[string] {
	return addSource(env, "ReadLines", "ReadLines", 0, func(oc *opContext, out consumer[string]) (sourceRunner, error) {
		r := &lineReader{paths: paths}
		var committed []lineSplit
		splits, err := sourceSplits(oc, func() []lineSplit {
			var s []lineSplit
			for f := range paths {
				s = append(s, lineSplit{File: f, Sub: oc.rc.subtask, Par: oc.rc.parallelism, Pos: -1})
			}
			return s
		}, func() []lineSplit { return committed })
		if err != nil {
			return nil, oc.fail(err)
		}
		for _, sp := range splits {
			if sp.File < 0 || sp.File >= len(paths) || sp.Par < 1 || sp.Sub < 0 || sp.Sub >= sp.Par {
				return nil, oc.fail(fmt.Errorf("%w: restored split %+v does not fit the %d files read", ErrRestoreMismatch, sp, len(paths)))
			}
		}
		r.splits = splits
		committed = slices.Clone(splits)
		return &batchSource[string]{oc: oc, out: out, next: r.next, cleanup: r.close,
			commit: func() { committed = r.positions(committed[:0]) }}, nil
	})
}

// lineReader reads its splits in turn.
type lineReader struct {
	paths  []string
	splits []lineSplit // splits[0] is being read

	f   *os.File
	br  *bufio.Reader
	pos int64 // offset of the next unread byte
	end int64 // lines starting at or after end belong to the next range
}

// positions appends the splits left with their current positions.
func (r *lineReader) positions(dst []lineSplit) []lineSplit {
	dst = append(dst, r.splits...)
	if r.f != nil && len(dst) > 0 {
		dst[0].Pos = r.pos
	}
	return dst
}

func (r *lineReader) open() error {
	sp := r.splits[0]
	f, err := os.Open(r.paths[sp.File])
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	size, p, s := st.Size(), int64(sp.Par), int64(sp.Sub)
	start := size * s / p
	r.end = size * (s + 1) / p
	r.f, r.pos = f, start
	if sp.Pos >= 0 {
		// Resume at a checkpointed position: the start of a line.
		if _, err := f.Seek(sp.Pos, io.SeekStart); err != nil {
			return err
		}
		r.pos = sp.Pos
		r.br = bufio.NewReaderSize(f, 64<<10)
		return nil
	}
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
		if len(r.splits) == 0 {
			return buf, true, nil
		}
		path := r.paths[r.splits[0].File]
		if r.f == nil {
			if err := r.open(); err != nil {
				return buf, false, fmt.Errorf("reading %s: %w", path, err)
			}
		}
		if r.pos >= r.end {
			r.closeSplit()
			continue
		}
		line, err := r.br.ReadString('\n')
		r.pos += int64(len(line))
		if len(line) > 0 {
			buf = append(buf, trimEOL(line))
		}
		if err == io.EOF {
			r.closeSplit()
		} else if err != nil {
			return buf, false, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	return buf, false, nil
}

// closeSplit ends the split being read.
func (r *lineReader) closeSplit() {
	r.close()
	r.splits = r.splits[1:]
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
	// Run emits records through out until the input is exhausted (return
	// nil), an error occurs, or the source is cancelled (return promptly).
	// ctx is the subtask's: it is done when the subtask is cancelled or
	// fails, so a Run that blocks (on a socket, a ticker) must watch it. Run
	// is called once, on its own goroutine.
	Run(ctx context.Context, out *SourceContext[T]) error
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
	ts    tsBuf
	wm    int64 // the last watermark emitted
	idle  bool
	// splits generates watermarks per split, for sources with a watermark
	// strategy.
	splits *splitWatermarks[T]
}

func newSourceContext[T any](oc *opContext, out consumer[T]) *SourceContext[T] {
	sc := &SourceContext[T]{rc: oc.rc, oc: oc, out: out, batch: make([]T, 0, batchSize), wm: MinWatermark}
	oc.task.addSourceFlusher(sc.flushLocked)
	return sc
}

// Collect emits one record. It blocks while downstream operators are back
// pressured, and returns an error when the job is failing or cancelled; the
// source should then return.
func (c *SourceContext[T]) Collect(v T) error {
	if c.splits != nil {
		return c.CollectFromSplit(0, v)
	}
	return c.CollectWithTimestamp(v, noTimestamp)
}

// CollectWithTimestamp emits one record with its event-time timestamp
// (Unix milliseconds): Flink's SourceContext.collectWithTimestamp.
func (c *SourceContext[T]) CollectWithTimestamp(v T, ts int64) error {
	return c.oc.task.emit(func() error { return c.addLocked(v, ts) })
}

func (c *SourceContext[T]) addLocked(v T, ts int64) error {
	if c.idle && ts != noTimestamp {
		c.idle = false
		if err := c.oc.task.emitStatusLocked(false); err != nil {
			return err
		}
	}
	c.ts.add(len(c.batch), ts)
	c.batch = append(c.batch, v)
	if len(c.batch) >= batchSize {
		return c.flushLocked()
	}
	return nil
}

// EmitWatermark emits an event-time watermark: the source promises that no
// record with a timestamp at or below wm follows. Watermarks that do not
// advance are ignored. Records collected before are emitted first.
func (c *SourceContext[T]) EmitWatermark(wm int64) error {
	return c.oc.task.emit(func() error { return c.watermarkLocked(wm) })
}

func (c *SourceContext[T]) watermarkLocked(wm int64) error {
	if wm <= c.wm {
		return nil
	}
	if err := c.flushLocked(); err != nil {
		return err
	}
	c.wm, c.idle = wm, false
	return c.out.watermark(wm)
}

// MarkIdle tells downstream operators that the source emits nothing for a
// while, so that their watermarks do not wait for it; emitting a record
// with a timestamp or a watermark makes it active again.
func (c *SourceContext[T]) MarkIdle() error {
	return c.oc.task.emit(func() error {
		if c.idle {
			return nil
		}
		if err := c.flushLocked(); err != nil {
			return err
		}
		c.idle = true
		return c.oc.task.emitStatusLocked(true)
	})
}

// flushLocked pushes the pending records; the chain token is held.
func (c *SourceContext[T]) flushLocked() error {
	if len(c.batch) == 0 {
		return nil
	}
	c.oc.metrics.RecordsOut.Add(int64(len(c.batch)))
	err := c.out.push(c.batch, c.ts.get())
	c.batch = c.batch[:0]
	c.ts.reset()
	return err
}

// WithCheckpointLock runs f with the subtask's checkpoint lock held: no
// checkpoint is taken while f runs, so a replayable source that emits
// records through out and advances its read position inside f keeps the
// two consistent, and replays exactly the records after the checkpointed
// position. Records collected in f are emitted when it returns. It is
// Flink's checkpoint lock; keep f short.
func (c *SourceContext[T]) WithCheckpointLock(f func(out SourceCollector[T]) error) error {
	return c.oc.task.emit(func() error {
		col := lockedCollector[T]{c: c}
		if err := f(&col); err != nil {
			return err
		}
		if col.err != nil {
			return col.err
		}
		return c.flushLocked()
	})
}

// SourceCollector is what a source emits through while it holds the
// checkpoint lock: records, records with event-time timestamps, and
// watermarks.
type SourceCollector[T any] interface {
	Collector[T]
	// CollectWithTimestamp emits v with its event-time timestamp (Unix
	// milliseconds).
	CollectWithTimestamp(v T, ts int64)
	// EmitWatermark emits a watermark after the records collected before
	// it; one that does not advance is ignored.
	EmitWatermark(wm int64)
	// CollectFromSplit emits v, read from split, with its timestamp from
	// the watermark strategy of a source added with
	// FromSourceWithWatermarks.
	CollectFromSplit(split int, v T)
}

// lockedCollector collects records while the checkpoint lock is held.
type lockedCollector[T any] struct {
	c   *SourceContext[T]
	err error
}

func (l *lockedCollector[T]) Collect(v T) {
	if l.err != nil {
		return
	}
	if l.c.splits != nil {
		l.err = l.c.collectFromSplitLocked(0, v)
		return
	}
	l.err = l.c.addLocked(v, noTimestamp)
}

// CollectFromSplit emits v, read from split; see SourceContext.CollectFromSplit.
func (l *lockedCollector[T]) CollectFromSplit(split int, v T) {
	if l.err != nil {
		return
	}
	l.err = l.c.collectFromSplitLocked(split, v)
}

// CollectWithTimestamp emits v with its event-time timestamp.
func (l *lockedCollector[T]) CollectWithTimestamp(v T, ts int64) {
	if l.err != nil {
		return
	}
	l.err = l.c.addLocked(v, ts)
}

// EmitWatermark emits a watermark after the records collected before it.
func (l *lockedCollector[T]) EmitWatermark(wm int64) {
	if l.err != nil {
		return
	}
	l.err = l.c.watermarkLocked(wm)
}

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
//
// A source that also implements CheckpointedFunction is replayable: it
// keeps its read positions in operator state (registered in
// InitializeState, written in SnapshotState) and emits records and
// advances its positions together under SourceContext.WithCheckpointLock.
// After a failure it resumes from the positions of the last completed
// checkpoint, which makes the job exactly once.
func FromSource[T any](env *Env, name string, newSource func() Source[T]) *DataStream[T] {
	return addSource(env, "Source", name, 0, func(oc *opContext, out consumer[T]) (sourceRunner, error) {
		sc := newSourceContext(oc, out)
		src := newSource()
		if err := initCheckpointedFunction(oc, src); err != nil {
			return nil, err
		}
		return &userSource[T]{sc: sc, src: src}, nil
	})
}

// initCheckpointedFunction gives a user function that implements
// CheckpointedFunction its operator state.
func initCheckpointedFunction(oc *opContext, f any) error {
	cf, ok := f.(CheckpointedFunction)
	if !ok {
		return nil
	}
	b, err := operatorBackend(oc, cf.SnapshotState)
	if err != nil {
		return oc.fail(err)
	}
	if err := cf.InitializeState(&StateInitContext{rc: oc.rc, backend: b, restored: oc.restore != nil}); err != nil {
		return oc.fail(fmt.Errorf("initializing state: %w", err))
	}
	return nil
}

type userSource[T any] struct {
	sc   *SourceContext[T]
	src  Source[T]
	once sync.Once
}

func (s *userSource[T]) run(ctx context.Context) (err error) {
	defer s.sc.oc.recoverInto(&err)
	if err := s.src.Run(ctx, s.sc); err != nil {
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
