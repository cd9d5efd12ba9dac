package queries

import (
	"slices"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/ref"
	"github.com/flinkgo/flink/state"
)

// q8Person is a person registering, as q8 keeps them.
type q8Person struct {
	ID, Start int64
	Name      string
}

// q8Seller is a person opening an auction in the window starting at Start.
type q8Seller struct {
	Seller, Start int64
}

// q8Window is what q8 knows of one person id in one window: the names registered with it
// (distinct; the generator makes one) and whether they opened an auction.
type q8Window struct {
	Names  []string
	Seller bool
}

// Q8 is monitor new users (ref.Q8): the people who opened an auction in the same 10 s tumbling
// window in which they registered. People and sellers meet by person id (KeyedCoProcess),
// which keeps per id and window the names registered and whether an auction was opened, emits
// a row as soon as both are known, and drops the window when the watermark passes it.
func Q8(events *flink.DataStream[gen.Event]) *flink.DataStream[ref.Q8Result] {
	people := flink.FlatMap(events, func(ev gen.Event, out flink.Collector[q8Person]) error {
		if ev.Kind == gen.PersonEvent {
			p := &ev.Person
			out.Collect(q8Person{ID: p.ID, Name: p.Name, Start: windowStart(p.DateTime, ref.Q8WindowSize)})
		}
		return nil
	}).Name("q8-people")
	sellers := flink.FlatMap(events, func(ev gen.Event, out flink.Collector[q8Seller]) error {
		if ev.Kind == gen.AuctionEvent {
			out.Collect(q8Seller{Seller: ev.Auction.Seller, Start: windowStart(ev.Auction.DateTime, ref.Q8WindowSize)})
		}
		return nil
	}).Name("q8-sellers")
	c := flink.ConnectKeyed(
		flink.KeyBy(people, func(p q8Person) int64 { return p.ID }),
		flink.KeyBy(sellers, func(s q8Seller) int64 { return s.Seller }))
	return flink.KeyedCoProcess(c, flink.KeyedCoProcessFunction[int64, q8Person, q8Seller, ref.Q8Result](newQ8Join())).Name("q8-join")
}

// q8Join keeps, per person id, a map from window start to the window's q8Window.
type q8Join struct {
	h perBackend[int64, state.MapState[int64, q8Window]]
}

func newQ8Join() *q8Join {
	return &q8Join{h: perBackend[int64, state.MapState[int64, q8Window]]{init: func(b state.KeyedStateStore[int64]) (*state.MapState[int64, q8Window], error) {
		s, err := state.GetMapState(b, state.MapStateDescriptor[int64, q8Window]{Name: "windows"})
		return &s, err
	}}}
}

// window returns the window's state, registering its cleanup timer when it is new.
func (j *q8Join) window(ctx *flink.KeyedContext[int64], start int64) (state.MapState[int64, q8Window], q8Window, error) {
	stp, err := j.h.get(ctx.State())
	if err != nil {
		return nil, q8Window{}, err
	}
	w, ok, err := (*stp).Get(start)
	if err == nil && !ok {
		ctx.TimerService().RegisterEventTimeTimer(start + ref.Q8WindowSize - 1)
	}
	return *stp, w, err
}

func (j *q8Join) ProcessElement1(ctx *flink.KeyedContext[int64], p q8Person, out flink.Collector[ref.Q8Result]) error {
	st, w, err := j.window(ctx, p.Start)
	if err != nil || slices.Contains(w.Names, p.Name) {
		return err
	}
	w.Names = append(w.Names, p.Name) // a snapshot reads only up to its length
	if w.Seller {
		out.Collect(ref.Q8Result{ID: p.ID, Name: p.Name, Start: p.Start})
	}
	return st.Put(p.Start, w)
}

func (j *q8Join) ProcessElement2(ctx *flink.KeyedContext[int64], s q8Seller, out flink.Collector[ref.Q8Result]) error {
	st, w, err := j.window(ctx, s.Start)
	if err != nil || w.Seller {
		return err
	}
	w.Seller = true
	for _, name := range w.Names {
		out.Collect(ref.Q8Result{ID: s.Seller, Name: name, Start: s.Start})
	}
	return st.Put(s.Start, w)
}

func (j *q8Join) OnTimer(ctx *flink.KeyedContext[int64], ts int64, _ flink.Collector[ref.Q8Result]) error {
	stp, err := j.h.get(ctx.State())
	if err != nil {
		return err
	}
	return (*stp).Remove(ts + 1 - ref.Q8WindowSize)
}
