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
	if s := ctx.sideOutputs(); s != nil {
		sideOutput[T](s, tag.id, v)
	}
}

// sideOutput emits v to side output tag of s with s's current timestamp,
// if the side output is read.
func sideOutput[T any](s *sideOutputs, tag string, v T) {
	c, ok := s.batchers[tag]
	if !ok {
		out, read := s.outs[tag]
		if !read {
			return
		}
		c = &batcher[T]{out: out.(consumer[T])}
		if s.batchers == nil {
			s.batchers = make(map[string]interface{ flush() error })
		}
		s.batchers[tag] = c
	}
	b := c.(*batcher[T])
	b.cur = s.cur
	b.Collect(v)
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

// sideOutputs are an operator's side outputs in one subtask: a batcher per
// tag read downstream.
type sideOutputs struct {
	outs     map[string]any                        // consumer[X] by tag
	batchers map[string]interface{ flush() error } // *batcher[X] by tag
	cur      int64                                 // timestamp of the records emitted now
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
