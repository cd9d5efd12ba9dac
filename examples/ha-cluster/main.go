// Command ha-cluster is one node of a highly available flinkgo cluster:
// the same binary runs every JobManager node (three of them form a Raft
// group; the leader runs the jobs) and every TaskManager node, configured
// by the FLINK_* variables of flink.NodeConfigFromEnv, FLINK_HA=true among
// them, and FLINK_LOG_LEVEL (debug for more detail; the chaos harness
// passes its environment on). It registers two jobs that count records
// per key into an exactly-once file sink, so that a failover can be
// checked to lose and duplicate nothing:
//
//	exactly-once N KEYS DIR   N records keyed i % KEYS; every line of the
//	                          committed files in DIR is "key,count"
//	chaos RATE KEYS DIR STOP  the records 0, 1, 2, ... keyed i % KEYS, RATE
//	                          per second per source subtask, until the file
//	                          STOP appears holding an end E: then the
//	                          records below E, and the job finishes; the
//	                          output is as exactly-once's with N = E (the
//	                          chaos harness in ./chaos runs it)
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/metrics/prometheus"
)

// keyCount is a key's running count.
type keyCount struct {
	Key   int64
	Count int64
}

// registry holds the jobs every node of the cluster can run.
func registry() *flink.Registry {
	reg := flink.NewRegistry()
	reg.MustRegister("exactly-once", func(env *flink.Env, args []string) error {
		if len(args) != 3 {
			return fmt.Errorf("usage: exactly-once N KEYS DIR")
		}
		n, err1 := strconv.ParseInt(args[0], 10, 64)
		keys, err2 := strconv.ParseInt(args[1], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if n < 0 || keys < 1 {
			return fmt.Errorf("exactly-once: N = %d and KEYS = %d, want N >= 0 and KEYS >= 1", n, keys)
		}
		env.Configure(flink.WithCheckpointing(100*time.Millisecond), flink.WithRestartStrategy(flink.FixedDelayRestart(20, 100*time.Millisecond)))
		src := flink.Generate(env, n, func(i int64) (int64, error) {
			if i%1000 == 0 {
				time.Sleep(10 * time.Millisecond) // about 100 k records/s per subtask
			}
			return i % keys, nil
		}).UID("source")
		ones := flink.Map(src, func(k int64) (keyCount, error) { return keyCount{Key: k, Count: 1}, nil }).UID("map")
		sums := flink.Reduce(flink.KeyBy(ones, func(r keyCount) int64 { return r.Key }), func(a, b keyCount) (keyCount, error) {
			return keyCount{Key: a.Key, Count: a.Count + b.Count}, nil
		}).UID("sum")
		flink.WriteFilesExactlyOnce(sums, args[2], func(r keyCount) string { return fmt.Sprintf("%d,%d", r.Key, r.Count) }).UID("sink")
		return nil
	})
	reg.MustRegister("chaos", func(env *flink.Env, args []string) error {
		if len(args) != 4 {
			return fmt.Errorf("usage: chaos RATE KEYS DIR STOPFILE")
		}
		rate, err1 := strconv.ParseInt(args[0], 10, 64)
		keys, err2 := strconv.ParseInt(args[1], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if rate < 1 || keys < 1 {
			return fmt.Errorf("chaos: RATE = %d and KEYS = %d, want both >= 1", rate, keys)
		}
		// Restarts are not limited by number (a chaos run causes many) but
		// by rate: more than 100 failures in a minute is a restart loop.
		env.Configure(flink.WithCheckpointing(200*time.Millisecond), flink.WithRestartStrategy(flink.FailureRateRestart(100, time.Minute, 100*time.Millisecond)))
		src := newPacedSource(env, rate, args[3])
		ones := flink.Map(src, func(i int64) (keyCount, error) { return keyCount{Key: i % keys, Count: 1}, nil }).UID("map")
		sums := flink.Reduce(flink.KeyBy(ones, func(r keyCount) int64 { return r.Key }), func(a, b keyCount) (keyCount, error) {
			return keyCount{Key: a.Key, Count: a.Count + b.Count}, nil
		}).UID("sum")
		flink.WriteFilesExactlyOnce(sums, args[2], func(r keyCount) string { return fmt.Sprintf("%d,%d", r.Key, r.Count) }).UID("sink")
		return nil
	})
	return reg
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ha-cluster:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, _, err := flink.NodeConfigFromEnv(flink.DefaultNodeConfig(flink.RoleTaskManager), os.Args[1:])
	if err != nil {
		return err
	}
	cfg.Registry = registry()
	// GET /metrics on the leader's REST API, in Prometheus' format.
	cfg.MetricsHandler = prometheus.Handler
	var level slog.Level // FLINK_LOG_LEVEL: debug, info (the default), warn or error
	if v := os.Getenv("FLINK_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("FLINK_LOG_LEVEL: %w", err)
		}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: level})) // container logs
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	node, err := flink.NewNode(cfg)
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		node.Close()
		return err
	}
	<-ctx.Done()
	return node.Close()
}
