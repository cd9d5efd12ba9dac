package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/flinkgo/flink"
)

// JobName is the name of the bundled job in the Registry.
const JobName = "keyed-count"

// jobSpec is what the bundled job is asked to do. It travels to the
// TaskManagers as the submission's arguments (see args and parseJobSpec), so
// TaskManager replicas need none of the JobManager's settings.
type jobSpec struct {
	Records      int64         // records generated in all
	Keys         int64         // distinct keys, record i has key i % Keys
	Rate         int64         // records per second per source subtask; 0: as fast as possible
	Restarts     int           // restart attempts after a failure
	RestartDelay time.Duration // delay before each restart
}

func (s jobSpec) args() []string {
	return []string{
		strconv.FormatInt(s.Records, 10), strconv.FormatInt(s.Keys, 10), strconv.FormatInt(s.Rate, 10),
		strconv.Itoa(s.Restarts), s.RestartDelay.String(),
	}
}

func parseJobSpec(args []string) (jobSpec, error) {
	var s jobSpec
	if len(args) != 5 {
		return s, fmt.Errorf("%s: want 5 arguments RECORDS KEYS RATE RESTARTS RESTART_DELAY, got %q", JobName, args)
	}
	var errs [5]error
	s.Records, errs[0] = strconv.ParseInt(args[0], 10, 64)
	s.Keys, errs[1] = strconv.ParseInt(args[1], 10, 64)
	s.Rate, errs[2] = strconv.ParseInt(args[2], 10, 64)
	s.Restarts, errs[3] = strconv.Atoi(args[3])
	s.RestartDelay, errs[4] = time.ParseDuration(args[4])
	for _, err := range errs {
		if err != nil {
			return s, fmt.Errorf("%s: %w", JobName, err)
		}
	}
	return s, s.validate()
}

func (s jobSpec) validate() error {
	switch {
	case s.Records < 0:
		return fmt.Errorf("%s: %d records, want >= 0", JobName, s.Records)
	case s.Keys < 1:
		return fmt.Errorf("%s: %d keys, want >= 1", JobName, s.Keys)
	case s.Rate < 0:
		return fmt.Errorf("%s: rate %d, want >= 0", JobName, s.Rate)
	case s.Restarts < 0 || s.RestartDelay < 0:
		return fmt.Errorf("%s: restarts %d, delay %v: want >= 0", JobName, s.Restarts, s.RestartDelay)
	}
	return nil
}

// expected returns how many records carry key k.
func (s jobSpec) expected(k int64) int64 {
	n := s.Records / s.Keys
	if k < s.Records%s.Keys {
		n++
	}
	return n
}

// Count is the running count of one key.
type Count struct {
	Key int64
	N   int64
}

// Jobs returns the registry of the microservice's jobs; every replica builds
// it the same way. The sinks write one JSON summary line per subtask to out,
// each with a single Write, from concurrent goroutines.
//
// keyed-count RECORDS KEYS RATE RESTARTS RESTART_DELAY generates RECORDS
// records keyed by i % KEYS (paced at RATE records/s per source subtask),
// keeps a running count per key (Flink's rolling reduce) and checks, in the
// sink, that every key's count rises by one at a time to its exact total:
// the job fails rather than finish with a wrong or partial result. It
// restarts from the beginning up to RESTARTS times after a failure.
func Jobs(out io.Writer) *flink.Registry {
	reg := flink.NewRegistry()
	reg.MustRegister(JobName, func(env *flink.Env, args []string) error {
		spec, err := parseJobSpec(args)
		if err != nil {
			return err
		}
		env.Configure(flink.WithRestartStrategy(flink.FixedDelayRestart(spec.Restarts, spec.RestartDelay)))
		pause := int64(0) // records between 10 ms pauses
		if spec.Rate > 0 {
			pause = max(spec.Rate/100, 1)
		}
		events := flink.Generate(env, spec.Records, func(i int64) (Count, error) {
			if pause > 0 && i%pause == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			return Count{Key: i % spec.Keys, N: 1}, nil
		}).Name("events")
		counts := flink.Reduce(flink.KeyBy(events, func(c Count) int64 { return c.Key }),
			func(acc, c Count) (Count, error) { return Count{Key: acc.Key, N: acc.N + c.N}, nil }).Name("count")
		flink.SinkTo(counts, "totals", func() flink.Sink[Count] { return &totalsSink{spec: spec, out: out} })
		return nil
	})
	return reg
}

// totalsSink checks the running counts of its keys and reports its totals.
type totalsSink struct {
	spec    jobSpec
	out     io.Writer
	subtask int
	attempt int
	records int64
	last    map[int64]int64
}

func (s *totalsSink) Open(rc *flink.RuntimeContext) error {
	s.subtask, s.attempt, s.last = rc.SubtaskIndex(), rc.Attempt(), make(map[int64]int64)
	return nil
}

func (s *totalsSink) Write(_ context.Context, c Count) error {
	if prev := s.last[c.Key]; c.N != prev+1 {
		return fmt.Errorf("key %d: count %d after %d, want %d", c.Key, c.N, prev, prev+1)
	}
	s.last[c.Key] = c.N
	s.records++
	return nil
}

func (s *totalsSink) Finish() error {
	for k, n := range s.last {
		if want := s.spec.expected(k); n != want {
			return fmt.Errorf("key %d: total %d, want %d", k, n, want)
		}
	}
	line, _ := json.Marshal(map[string]any{"sink": "totals", "subtask": s.subtask, "attempt": s.attempt,
		"keys": len(s.last), "records": s.records})
	_, err := s.out.Write(append(line, '\n'))
	return err
}

func (s *totalsSink) Close() error { return nil }
