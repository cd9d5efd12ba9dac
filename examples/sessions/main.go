// Command sessions groups a stream of page views into per-user sessions in
// event time and prints each session when it closes: a windowed job on an
// embedded local Flink cluster. Views arrive out of order (up to 2 s); a
// session ends after 30 s without views; views later than a minute go to a
// side output and are reported.
//
//	go run ./examples/sessions
package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/window"
)

// View is a page view by a user at a time in Unix milliseconds.
type View struct {
	User string
	Page string
	At   int64
}

// Session is a user's views without a gap of 30 s.
type Session struct {
	User       string
	Start, End time.Time
	Pages      []string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sessions:", err)
		os.Exit(1)
	}
}

// views returns a day's morning of views by three users, shuffled by up to
// 2 s, and one view that arrives far too late.
func views() []View {
	base := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).UnixMilli()
	rnd := rand.New(rand.NewPCG(1, 2))
	var vs []View
	for u, user := range []string{"ada", "bob", "cy"} {
		at := base + int64(u)*7_000
		for i := range 12 {
			vs = append(vs, View{User: user, Page: fmt.Sprintf("/p/%d", rnd.IntN(20)), At: at})
			at += 5_000 + rnd.Int64N(10_000)
			if i == 5 {
				at += 120_000 // a coffee break ends the session
			}
		}
	}
	slices.SortFunc(vs, func(a, b View) int { return int(a.At - b.At) })
	for i := range vs { // up to 2 s out of order
		if j := i + 1; j < len(vs) && vs[j].At-vs[i].At < 2_000 && rnd.IntN(2) == 0 {
			vs[i], vs[j] = vs[j], vs[i]
		}
	}
	return append(vs, View{User: "ada", Page: "/late", At: base})
}

// Sessions builds the job on env: sessions per user, and the late views.
func Sessions(env *flink.Env, in *flink.DataStream[View]) (*flink.DataStream[Session], *flink.DataStream[View], error) {
	// Watermarks trail the latest view by 2 s and follow every view (a
	// punctuated generator), so that this short bounded run fires its
	// windows as a long-running stream would.
	strategy := flink.ForGenerator[View](func() window.Generator { return &everyView{max: math.MinInt64 + 2_001} }).
		WithTimestampAssigner(func(v View, _ int64) int64 { return v.At })
	// One generator sees the views in the order they arrive.
	stamped := flink.AssignTimestampsAndWatermarks(in, strategy).SetParallelism(1)
	gap, err := window.Session(window.EventTime, 30*time.Second)
	if err != nil {
		return nil, nil, err
	}
	late := flink.NewOutputTag[View]("late")
	sessions := flink.WindowProcess(
		flink.Window(flink.KeyBy(stamped, func(v View) string { return v.User }), gap).
			AllowedLateness(time.Minute).SideOutputLateData(late),
		func(ctx *flink.WindowContext[string], vs []View, out flink.Collector[Session]) error {
			slices.SortFunc(vs, func(a, b View) int { return int(a.At - b.At) })
			s := Session{User: ctx.Key(), Start: time.UnixMilli(ctx.Window().Start).UTC(), End: time.UnixMilli(ctx.Window().End).UTC()}
			for _, v := range vs {
				s.Pages = append(s.Pages, v.Page)
			}
			out.Collect(s)
			return nil
		}).Name("sessions")
	return sessions, flink.GetSideOutput(sessions, late), nil
}

// everyView emits, after every view, the latest time seen minus 2 s.
type everyView struct{ max int64 }

func (g *everyView) OnEvent(ts int64, out window.Output) {
	g.max = max(g.max, ts)
	out.EmitWatermark(g.max - 2_000 - 1)
}

func (g *everyView) OnPeriodicEmit(window.Output) {}

func run(ctx context.Context, w io.Writer) error {
	env := flink.NewEnv(flink.WithName("sessions"))
	sessions, late, err := Sessions(env, flink.FromSlice(env, views()))
	if err != nil {
		return err
	}
	var mu sync.Mutex
	flink.SinkTo(sessions, "print", flink.SinkFunc(func(s Session) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(w, "%s %s–%s %d views: %s\n", s.User, s.Start.Format("15:04:05"), s.End.Format("15:04:05"), len(s.Pages), strings.Join(s.Pages, " "))
		return err
	}))
	flink.SinkTo(late, "late", flink.SinkFunc(func(v View) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(w, "late view dropped from its session: %s %s at %s\n", v.User, v.Page, time.UnixMilli(v.At).UTC().Format("15:04:05"))
		return err
	}))
	_, err = env.Execute(ctx)
	return err
}
