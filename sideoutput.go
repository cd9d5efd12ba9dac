package flink

import (
	"fmt"
)

// OutputTag names a side output of records of type T: Flink's OutputTag.
// Process functions emit to it with Output; GetSideOutput reads it as a
// stream. Tags are told apart by id.
type OutputTag[T any] struct{ id string }

// NewOutputTag returns the tag of the side output named id.
func NewOutputTag[T any](id string) OutputTag[T] { return OutputTag[T]{id: id} }

// ID returns the tag's id.
func (t OutputTag[T]) ID() string { return t.id }

// SideOutputContext is the context of a function that may emit to side
// outputs: *RuntimeContext, *KeyedContext.
type SideOutputContext interface {
	sideOutputs() *sideOutputs
}

func (rc *RuntimeContext) sideOutputs() *sideOutputs { return rc.side }

// Output emits v to the side output tag, with the timestamp of the record
// being processed. Records for a side output nobody reads are dropped.
func Output[T any](ctx SideOutputContext, tag OutputTag[T], v T) {
	s := ctx.sideOutputs()
	if s == nil {
		return
	}
	s.collect(tag.id, func() collectorFlusher { return &batcher[T]{} }, func(c collectorFlusher) { c.(*batcher[T]).Collect(v) })
}

// GetSideOutput returns the side output tag of the operator that produced
// s, as a stream: Flink's getSideOutput. The operator emits to it with
// Output (process functions) or by its nature (late records of windows).
func GetSideOutput[T, X any](s *DataStream[T], tag OutputTag[X]) *DataStream[X] {
	t := s.producer("GetSideOutput")
	if tag.id == "" {
		s.env.setErr(fmt.Errorf("%w: side output tag without an id", ErrInvalidConfig))
	}
	if t.sideTypes == nil {
		t.sideTypes = make(map[string]streamType)
	}
	typ := typeOf[X]()
	if old, ok := t.sideTypes[tag.id]; ok && old.String() != typ.String() {
		s.env.setErr(fmt.Errorf("%w: side output %q of %q read as %s and as %s", ErrInvalidConfig, tag.id, t.name, old, typ))
	}
	t.sideTypes[tag.id] = typ
	return &DataStream[X]{env: s.env, ins: []input{{from: t, tag: tag.id}}}
}

type collectorFlusher interface {
	flush() error
	setCur(ts int64)
	setOut(out any)
	error() error
}

func (b *batcher[T]) setCur(ts int64) { b.cur = ts }
func (b *batcher[T]) setOut(out any)  { b.out = out.(consumer[T]) }
func (b *batcher[T]) error() error    { return b.err }

// sideOutputs are an operator's side outputs in one subtask: a batcher per
// tag read downstream.
type sideOutputs struct {
	outs     map[string]any // consumer[X] by tag
	batchers map[string]collectorFlusher
	cur      int64 // timestamp of the records emitted now
}

func (s *sideOutputs) collect(tag string, create func() collectorFlusher, add func(collectorFlusher)) {
	b, ok := s.batchers[tag]
	if !ok {
		out, read := s.outs[tag]
		if !read {
			return
		}
		b = create()
		b.setOut(out)
		if s.batchers == nil {
			s.batchers = make(map[string]collectorFlusher)
		}
		s.batchers[tag] = b
	}
	b.setCur(s.cur)
	add(b)
}

// flush pushes what the side outputs hold downstream.
func (s *sideOutputs) flush() error {
	for _, b := range s.batchers {
		if err := b.flush(); err != nil {
			return err
		}
	}
	return nil
}

// watermark passes a watermark to every side output.
func (s *sideOutputs) watermark(wm int64) error {
	for _, out := range s.outs {
		if err := out.(interface{ watermark(int64) error }).watermark(wm); err != nil {
			return err
		}
	}
	return nil
}

// endInput ends every side output's input.
func (s *sideOutputs) endInput() error {
	for _, out := range s.outs {
		if err := out.(interface{ endInput() error }).endInput(); err != nil {
			return err
		}
	}
	return nil
}
