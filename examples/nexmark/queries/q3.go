package queries

import (
	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/examples/nexmark/gen"
	"github.com/flinkgo/flink/examples/nexmark/ref"
	"github.com/flinkgo/flink/state"
)

// q3Auction is an auction of category 10, as q3 keeps it: its id, keyed by its seller.
type q3Auction struct {
	ID, Seller int64
}

// q3Person is a person from OR, ID or CA, as q3 keeps them.
type q3Person struct {
	ID                int64
	Name, City, State string
}

// Q3 is local item suggestion (ref.Q3): an incremental inner join of the auctions in category
// 10 with their sellers who live in OR, ID or CA. Both sides are kept in keyed state by person
// id forever, as in Flink's regular join, and a row is emitted as soon as both of a pair have
// arrived, in either order.
func Q3(events *flink.DataStream[gen.Event]) *flink.DataStream[ref.Q3Result] {
	auctions := flink.FlatMap(events, func(ev gen.Event, out flink.Collector[q3Auction]) error {
		if ev.Kind == gen.AuctionEvent && ev.Auction.Category == 10 {
			out.Collect(q3Auction{ID: ev.Auction.ID, Seller: ev.Auction.Seller})
		}
		return nil
	}).Name("q3-auctions")
	people := flink.FlatMap(events, func(ev gen.Event, out flink.Collector[q3Person]) error {
		if ev.Kind == gen.PersonEvent {
			switch p := &ev.Person; p.State {
			case "OR", "ID", "CA":
				out.Collect(q3Person{ID: p.ID, Name: p.Name, City: p.City, State: p.State})
			}
		}
		return nil
	}).Name("q3-people")
	c := flink.ConnectKeyed(
		flink.KeyBy(auctions, func(a q3Auction) int64 { return a.Seller }),
		flink.KeyBy(people, func(p q3Person) int64 { return p.ID }))
	return flink.KeyedCoProcess(c, flink.KeyedCoProcessFunction[int64, q3Auction, q3Person, ref.Q3Result](newQ3Join())).Name("q3-join")
}

type q3State struct {
	auctions state.ListState[int64]
	people   state.ListState[q3Person]
}

// q3Join keeps, per person id, the ids of their auctions and the person records (the SQL allows
// several per id; the generator makes one).
type q3Join struct {
	h perBackend[int64, q3State]
}

func newQ3Join() *q3Join {
	return &q3Join{h: perBackend[int64, q3State]{init: func(b state.KeyedStateStore[int64]) (*q3State, error) {
		a, err := state.GetListState(b, state.ListStateDescriptor[int64]{Name: "auctions"})
		if err != nil {
			return nil, err
		}
		p, err := state.GetListState(b, state.ListStateDescriptor[q3Person]{Name: "people"})
		if err != nil {
			return nil, err
		}
		return &q3State{auctions: a, people: p}, nil
	}}}
}

func (j *q3Join) ProcessElement1(ctx *flink.KeyedContext[int64], a q3Auction, out flink.Collector[ref.Q3Result]) error {
	st, err := j.h.get(ctx.State())
	if err != nil {
		return err
	}
	people, err := st.people.Get()
	if err != nil {
		return err
	}
	for _, p := range people {
		out.Collect(ref.Q3Result{Name: p.Name, City: p.City, State: p.State, ID: a.ID})
	}
	return st.auctions.Add(a.ID)
}

func (j *q3Join) ProcessElement2(ctx *flink.KeyedContext[int64], p q3Person, out flink.Collector[ref.Q3Result]) error {
	st, err := j.h.get(ctx.State())
	if err != nil {
		return err
	}
	ids, err := st.auctions.Get()
	if err != nil {
		return err
	}
	for _, id := range ids {
		out.Collect(ref.Q3Result{Name: p.Name, City: p.City, State: p.State, ID: id})
	}
	return st.people.Add(p)
}

func (j *q3Join) OnTimer(*flink.KeyedContext[int64], int64, flink.Collector[ref.Q3Result]) error {
	return nil
}
