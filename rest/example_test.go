package rest_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/rest"
)

// A client submits a registered job to a session cluster, waits for it to
// end and reads its counts. Here the cluster runs in the same process; a
// client elsewhere only needs the address (and, with security on,
// WithSecurity).
func ExampleClient() {
	reg := flink.NewRegistry()
	reg.MustRegister("evens", func(env *flink.Env, args []string) error {
		nums := flink.Generate(env, 10, func(i int64) (int64, error) { return i, nil })
		evens := flink.Filter(nums, func(v int64) (bool, error) { return v%2 == 0, nil })
		flink.SinkTo(evens, "discard", flink.SinkFunc(func(int64) error { return nil }))
		return nil
	})
	cfg := flink.DefaultClusterConfig()
	cfg.Registry = reg
	cluster, err := flink.NewLocalCluster(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()
	srv := httptest.NewServer(flink.NewRESTServer(cluster).Handler())
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rest.NewClient(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseIdleConnections()
	id, err := c.Submit(ctx, rest.SubmitRequest{Name: "evens", Parallelism: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	var d rest.JobDetails
	for d, err = c.Job(ctx, id); err == nil && !d.State.IsTerminal(); d, err = c.Job(ctx, id) {
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Name, d.State)
	for _, v := range d.Vertices {
		for _, o := range v.Operators {
			fmt.Printf("%s: %d in, %d out\n", o.Name, o.RecordsIn, o.RecordsOut)
		}
	}
	// Output:
	// evens FINISHED
	// Generate: 0 in, 10 out
	// Filter: 10 in, 5 out
	// discard: 5 in, 0 out
}
