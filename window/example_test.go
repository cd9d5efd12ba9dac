package window_test

import (
	"fmt"
	"time"

	"github.com/flinkgo/flink/window"
)

func ExampleSliding() {
	hop, err := window.Sliding(window.EventTime, 10*time.Second, 5*time.Second, 0)
	if err != nil {
		panic(err)
	}
	ws, err := hop.AssignWindows(nil, 12_000)
	if err != nil {
		panic(err)
	}
	fmt.Println(ws)
	// Output: [[10000, 20000) [5000, 15000)]
}

func ExampleMergingWindowSet() {
	sessions, err := window.Session(window.EventTime, 10*time.Second)
	if err != nil {
		panic(err)
	}
	set, err := window.NewMergingWindowSet(sessions, nil)
	if err != nil {
		panic(err)
	}
	merge := func(result window.TimeWindow, merged []window.TimeWindow, state window.TimeWindow, mergedState []window.TimeWindow) error {
		fmt.Println("merge", merged, "into", result, "- move the contents of", mergedState, "to", state)
		return nil
	}
	for _, ts := range []int64{0, 30_000, 15_000, 8_000} {
		ws, _ := sessions.AssignWindows(nil, ts)
		w, err := set.AddWindow(ws[0], merge)
		if err != nil {
			panic(err)
		}
		fmt.Println(ts, "is in", w)
	}
	// Output:
	// 0 is in [0, 10000)
	// 30000 is in [30000, 40000)
	// 15000 is in [15000, 25000)
	// merge [[0, 10000) [15000, 25000)] into [0, 25000) - move the contents of [[15000, 25000)] to [0, 10000)
	// 8000 is in [0, 25000)
}

func ExampleCombiner() {
	c := window.NewCombiner(window.ChannelMode, 2)
	show := func(ch window.Change, err error) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(ch.Watermark == window.MinWatermark, ch.Watermark, ch.Advanced, ch.Idle)
	}
	show(c.Update(0, 100)) // input 1 still holds the output at MinWatermark
	show(c.Update(1, 50))
	show(c.MarkIdle(1)) // an idle input no longer holds it back
	show(c.Update(0, 90))
	// Output:
	// true -9223372036854775808 false false
	// false 50 true false
	// false 100 true false
	// error: window: watermark went backwards: input 0 emitted 90 after 100
}
