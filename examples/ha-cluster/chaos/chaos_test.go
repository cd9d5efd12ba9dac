package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testWriter writes a run's progress into the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestChaos runs the chaos harness for the duration in FLINK_CHAOS (for
// example FLINK_CHAOS=2m; FLINK_CHAOS_SEED picks the schedule) and checks
// that the job recovered from every disruption, finished, and committed
// exactly its output. It is skipped unless asked: it takes minutes. It
// logs the recovery times but asserts none (that is the command's
// -max-recovery, for runs on a known machine).
//
//	FLINK_CHAOS=2m go test -run TestChaos -v ./examples/ha-cluster/chaos
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
	cfg.Out = testWriter{t}
	cfg.MaxRecovery = time.Hour // recovery times are logged, not asserted
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := run(ctx, cfg)
	require.NoError(t, err)
	require.Empty(t, rep.stalled, "the cluster recovers from every disruption")
	require.True(t, rep.exact.exact(), "the output is exact: %s", rep.exact)
	require.Empty(t, rep.failures(cfg.MaxRecovery))
}
