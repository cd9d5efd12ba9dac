// Command session-cluster runs a flinkgo session cluster: an embedded
// local cluster with a few registered jobs, serving the Dispatcher's REST
// API until SIGINT or SIGTERM. Submit, list and cancel jobs with the flink
// CLI (cmd/flink) or any HTTP client:
//
//	go run ./examples/session-cluster -taskmanagers 2 -slots 4
//	go run ./cmd/flink run sum 1000000 -p 2
//	go run ./cmd/flink run --detached ticker 500ms
//	go run ./cmd/flink list
//	go run ./cmd/flink cancel <jobid>
//
// The registered jobs, whose output goes to standard output:
//
//	wordcount [line...]  counts the words of its arguments (or a built-in
//	                     text) and prints the running counts
//	sum [n]              prints the sum of 0..n-1 (default n = 1000)
//	ticker [interval]    prints a tick every interval (default 1s) until
//	                     cancelled
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/metrics/prometheus"
)

// shutdownTimeout bounds the wait for REST requests in flight at shutdown.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "session-cluster:", err)
		os.Exit(2)
	}
}

// run starts the cluster and its REST API as the flags in args say, calls
// ready (when not nil) with the REST address once it accepts requests, and
// serves until ctx is done; it then stops the REST server, cancels the jobs
// still running and waits for the cluster to stop.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr)) error {
	fs := flag.NewFlagSet("session-cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	taskManagers := fs.Int("taskmanagers", 1, "number of TaskManagers")
	slots := fs.Int("slots", 4, "slots per TaskManager")
	restAddr := fs.String("rest-addr", flink.DefaultRESTAddress, "`host:port` of the REST API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := flink.DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager = *taskManagers, *slots
	cfg.Registry, cfg.Logger = Jobs(stdout), log
	cluster, err := flink.NewLocalCluster(cfg)
	if err != nil {
		return err
	}
	defer cluster.Close()

	l, err := net.Listen("tcp", *restAddr)
	if err != nil {
		return fmt.Errorf("REST API: %w", err)
	}
	srv := flink.NewRESTServer(cluster)
	srv.HandleMetrics(prometheus.Handler(srv, log)) // GET /metrics
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	log.Info("session cluster ready", "rest", "http://"+l.Addr().String(),
		"taskmanagers", cfg.TaskManagers, "slots", cfg.TaskManagers*cfg.SlotsPerTaskManager, "jobs", cfg.Registry.Names())
	if ready != nil {
		ready(l.Addr())
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("REST API: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	srv.Shutdown(sctx)
	if err := <-served; err != nil {
		return fmt.Errorf("REST API: %w", err)
	}
	cluster.Close()
	log.Info("stopped")
	return nil
}

// Jobs returns the registry of the session cluster's jobs; their sinks
// write to out.
func Jobs(out io.Writer) *flink.Registry {
	reg := flink.NewRegistry()
	reg.MustRegister("wordcount", func(env *flink.Env, args []string) error {
		text := args
		if len(text) == 0 {
			text = strings.Split(builtinText, "\n")
		}
		flink.PrintTo(wordCounts(flink.FromSlice(env, text)), out)
		return nil
	})
	reg.MustRegister("sum", func(env *flink.Env, args []string) error {
		n := int64(1000)
		if len(args) > 1 {
			return fmt.Errorf("want at most one argument n, got %q", args)
		}
		if len(args) == 1 {
			v, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || v < 0 {
				return fmt.Errorf("n = %q: want a whole number >= 0", args[0])
			}
			n = v
		}
		nums := flink.Generate(env, n, func(i int64) (int64, error) { return i, nil })
		total := flink.Reduce(flink.KeyBy(nums, func(int64) int { return 0 }),
			func(a, b int64) (int64, error) { return a + b, nil }).Name("sum")
		flink.SinkTo(total, "print total", func() flink.Sink[int64] {
			return &lastValue{out: out, format: fmt.Sprintf("sum of 0..%d = %%d\n", n-1)}
		})
		return nil
	})
	reg.MustRegister("ticker", func(env *flink.Env, args []string) error {
		every := time.Second
		if len(args) > 1 {
			return fmt.Errorf("want at most one argument interval, got %q", args)
		}
		if len(args) == 1 {
			d, err := time.ParseDuration(args[0])
			if err != nil || d < time.Millisecond {
				return fmt.Errorf("interval %q: want a duration of at least 1ms, such as 500ms", args[0])
			}
			every = d
		}
		ticks := flink.FromSource(env, "ticks", func() flink.Source[int64] { return &ticker{every: every, stop: make(chan struct{})} }).
			SetParallelism(1)
		lines := flink.Map(ticks, func(n int64) (string, error) { return fmt.Sprintf("tick %d", n), nil }).SetParallelism(1)
		flink.PrintTo(lines, out).SetParallelism(1)
		return nil
	})
	return reg
}

// WordCount is a word and how often it was seen so far.
type WordCount struct {
	Word  string
	Count int
}

// wordCounts splits lines into lower-case words and keeps a running count
// per word.
func wordCounts(lines *flink.DataStream[string]) *flink.DataStream[WordCount] {
	words := flink.FlatMap(lines, func(line string, out flink.Collector[WordCount]) error {
		// Words as Flink's WordCount splits them (\W+), in every script.
		for _, w := range strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
		}) {
			out.Collect(WordCount{Word: w, Count: 1})
		}
		return nil
	}).Name("tokenize")
	return flink.Reduce(flink.KeyBy(words, func(wc WordCount) string { return wc.Word }),
		func(a, b WordCount) (WordCount, error) { return WordCount{a.Word, a.Count + b.Count}, nil }).Name("count")
}

// lastValue prints the last record it received when its input ends: the
// total of a rolling aggregation.
type lastValue struct {
	out    io.Writer
	format string
	last   int64
	seen   bool
}

func (s *lastValue) Open(*flink.RuntimeContext) error { return nil }

func (s *lastValue) Write(_ context.Context, v int64) error { s.last, s.seen = v, true; return nil }

func (s *lastValue) Finish() error {
	if !s.seen {
		return nil
	}
	_, err := fmt.Fprintf(s.out, s.format, s.last)
	return err
}

func (s *lastValue) Close() error { return nil }

// ticker emits 0, 1, 2, ... once per interval until cancelled.
type ticker struct {
	every time.Duration
	stop  chan struct{}
	once  sync.Once
}

func (t *ticker) Run(ctx context.Context, out *flink.SourceContext[int64]) error {
	tk := time.NewTicker(t.every)
	defer tk.Stop()
	for n := int64(0); ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.stop:
			return nil
		case <-tk.C:
		}
		if err := out.Collect(n); err != nil {
			return nil // the job is stopping
		}
	}
}

func (t *ticker) Cancel() { t.once.Do(func() { close(t.stop) }) }

const builtinText = `To be, or not to be, that is the question:
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Or to take arms against a sea of troubles
And by opposing end them.`
