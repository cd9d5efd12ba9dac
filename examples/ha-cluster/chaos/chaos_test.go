package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink"
)

// testWriter writes a run's progress into the test log, a line at a time.
type testWriter struct {
	t   *testing.T
	buf []byte
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// TestChaos runs the chaos harness for the duration in FLINK_CHAOS (for
// example FLINK_CHAOS=2m; FLINK_CHAOS_SEED picks the schedule) and checks
// that the job recovered from every disruption, finished, and committed
// exactly its output. It is skipped unless asked: it takes minutes. It
// logs the recovery times, with the job's states and the nodes' warnings
// for those over 5 s, but asserts none (that is the command's
// -max-recovery, for runs on a known machine). FLINK_CHAOS_DIR keeps the
// run's logs, Raft state, checkpoints and output there.
//
//	FLINK_CHAOS=2m go test -run TestChaos -v -timeout 20m ./examples/ha-cluster/chaos
func TestChaos(t *testing.T) {
	d := os.Getenv("FLINK_CHAOS")
	if d == "" {
		t.Skip("set FLINK_CHAOS=2m to run the chaos harness for two minutes")
	}
	cfg := defaultConfig()
	var err error
	cfg.Duration, err = time.ParseDuration(d)
	require.NoError(t, err, "FLINK_CHAOS")
	if s := os.Getenv("FLINK_CHAOS_SEED"); s != "" {
		cfg.Seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "FLINK_CHAOS_SEED")
	}
	cfg.Out = &testWriter{t: t}
	cfg.Dir = os.Getenv("FLINK_CHAOS_DIR") // kept; default: removed if the run passes
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := run(ctx, cfg)
	require.NoError(t, err)
	require.Empty(t, rep.stalled, "the cluster recovers from every disruption")
	require.Equal(t, flink.JobFinished, rep.finalState, "the job finishes")
	require.True(t, rep.exact.exact(), "the output is exact: %s", rep.exact)
}
