package flink

import (
	"fmt"

	"github.com/flinkgo/flink/window"
)

// FromSourceWithWatermarks adds a parallel source whose records get their
// event-time timestamps from ws and whose watermarks are generated per
// split: Flink's env.fromSource(source, watermarkStrategy, name). The
// source tells which split a record comes from with
// SourceContext.CollectFromSplit (Collect uses split 0) and reports a
// split it finished with FinishSplit. Each split has its own generator;
// the subtask's watermark is the minimum over its active splits (a split
// idle for ws's idle timeout does not hold it back), emitted every
// AutoWatermarkInterval and whenever a punctuated generator emits.
func FromSourceWithWatermarks[T any](env *Env, name string, newSource func() Source[T], ws WatermarkStrategy[T]) *DataStream[T] {
	if err := ws.strategy.Validate(); err != nil {
		env.setErr(fmt.Errorf("flink: FromSourceWithWatermarks: %w", err))
	}
	if ws.assign == nil {
		env.setErr(fmt.Errorf("%w: FromSourceWithWatermarks needs a timestamp assigner (WithTimestampAssigner)", ErrInvalidConfig))
	}
	return addSource(env, "Source", name, 0, func(oc *opContext, out consumer[T]) (sourceRunner, error) {
		sc := newSourceContext(oc, out)
		sc.splits = &splitWatermarks[T]{ws: ws, gens: make(map[int]*splitGen), comb: window.NewCombiner(window.SplitMode, 0)}
		if d := oc.task.graph.Config.watermarkInterval(); d > 0 {
			interval := d.Milliseconds()
			var periodic func(now int64) error
			periodic = func(now int64) error {
				if err := sc.splits.periodic(); err != nil {
					return err
				}
				if err := sc.applySplitProgress(); err != nil {
					return err
				}
				oc.task.timers.register(now+interval, periodic)
				return nil
			}
			oc.task.timers.register(oc.task.timers.now()+interval, periodic)
		}
		src := newSource()
		if err := initCheckpointedFunction(oc, src); err != nil {
			return nil, err
		}
		return &userSource[T]{sc: sc, src: src}, nil
	})
}

// splitWatermarks runs one watermark generator per split of a source
// subtask and combines them (Flink's WatermarkOutputMultiplexer).
type splitWatermarks[T any] struct {
	ws   WatermarkStrategy[T]
	gens map[int]*splitGen
	comb *window.Combiner
	// wm and status changes waiting to be emitted after the records
	// collected before them.
	pendingWM     int64
	hasWM         bool
	pendingStatus int // 0 none, 1 idle, 2 active
	err           error
}

// splitGen is one split's generator and its window.Output.
type splitGen struct {
	s     interface{ apply(window.Change, error) }
	gen   window.Generator
	input int
	comb  *window.Combiner
}

func (g *splitGen) EmitWatermark(wm int64) { g.s.apply(g.comb.Update(g.input, wm)) }
func (g *splitGen) MarkIdle()              { g.s.apply(g.comb.MarkIdle(g.input)) }
func (g *splitGen) MarkActive()            { g.s.apply(g.comb.MarkActive(g.input)) }

func (s *splitWatermarks[T]) apply(chg window.Change, err error) {
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	if chg.Advanced {
		s.pendingWM, s.hasWM = chg.Watermark, true
	}
	if chg.StatusChanged {
		s.pendingStatus = 2
		if chg.Idle {
			s.pendingStatus = 1
		}
	}
}

// split returns split id's generator, creating it on first use.
func (s *splitWatermarks[T]) split(id int) (*splitGen, error) {
	if g, ok := s.gens[id]; ok {
		return g, nil
	}
	gen, err := s.ws.strategy.NewGenerator()
	if err != nil {
		return nil, err
	}
	in, chg := s.comb.AddInput()
	s.apply(chg, nil)
	g := &splitGen{s: s, gen: gen, input: in, comb: s.comb}
	s.gens[id] = g
	return g, nil
}

func (s *splitWatermarks[T]) periodic() error {
	for _, g := range s.gens {
		g.gen.OnPeriodicEmit(g)
	}
	return s.err
}

// finish removes split id: it holds the watermark back no more.
func (s *splitWatermarks[T]) finish(id int) error {
	g, ok := s.gens[id]
	if !ok {
		return nil
	}
	delete(s.gens, id)
	s.apply(s.comb.RemoveInput(g.input))
	return s.err
}

// collectFromSplitLocked assigns v its timestamp, feeds split's generator
// and collects v; the chain token is held.
func (c *SourceContext[T]) collectFromSplitLocked(split int, v T) error {
	s := c.splits
	if s == nil {
		return fmt.Errorf("%w: CollectFromSplit on a source without a watermark strategy (use FromSourceWithWatermarks)", ErrInvalidConfig)
	}
	g, err := s.split(split)
	if err != nil {
		return err
	}
	ts := s.ws.assign(v, MinWatermark)
	g.gen.OnEvent(ts, g)
	if err := c.addLocked(v, ts); err != nil {
		return err
	}
	return c.applySplitProgress()
}

// applySplitProgress emits the watermark and status the splits' generators
// produced, behind the records collected so far; the chain token is held.
func (c *SourceContext[T]) applySplitProgress() error {
	s := c.splits
	if s.err != nil {
		return c.oc.fail(s.err)
	}
	if s.pendingStatus == 2 {
		c.idle = false
		if err := c.oc.task.emitStatusLocked(false); err != nil {
			return err
		}
	}
	if s.hasWM {
		s.hasWM = false
		if err := c.watermarkLocked(s.pendingWM); err != nil {
			return err
		}
	}
	if s.pendingStatus == 1 && !c.idle {
		if err := c.flushLocked(); err != nil {
			return err
		}
		c.idle = true
		if err := c.oc.task.emitStatusLocked(true); err != nil {
			return err
		}
	}
	s.pendingStatus = 0
	return nil
}

// CollectFromSplit emits v, read from split, with its timestamp from the
// source's watermark strategy; the split's generator sees it. Only for
// sources added with FromSourceWithWatermarks.
func (c *SourceContext[T]) CollectFromSplit(split int, v T) error {
	return c.oc.task.emit(func() error { return c.collectFromSplitLocked(split, v) })
}

// FinishSplit says the source read all of split: its watermark no longer
// holds the subtask's back.
func (c *SourceContext[T]) FinishSplit(split int) error {
	return c.oc.task.emit(func() error {
		if c.splits == nil {
			return nil
		}
		if err := c.splits.finish(split); err != nil {
			return c.oc.fail(err)
		}
		return c.applySplitProgress()
	})
}
