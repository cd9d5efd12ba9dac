package flink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestResubmissionRunsWithItsOwnArguments submits one registered job twice
// with different arguments: each submission must run with its own, on a
// local cluster, on a combined JobManager+TaskManager node and on
// TaskManager processes. A TaskManager once reused the graph rebuilt for
// the first submission (cached by fingerprint, which covers only the
// graph's shape), so the second wrote the first's output.
func TestResubmissionRunsWithItsOwnArguments(t *testing.T) {
	modes := []struct {
		name  string
		start func(t *testing.T) *Dispatcher
	}{
		{"local cluster", func(t *testing.T) *Dispatcher {
			cfg := DefaultClusterConfig()
			cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.Registry = 2, 1, testRegistry()
			c, err := NewLocalCluster(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			return c.Dispatcher()
		}},
		{"combined node", func(t *testing.T) *Dispatcher {
			cfg := DefaultNodeConfig(RoleJobManager | RoleTaskManager)
			cfg.BindAddr, cfg.Registry, cfg.Slots, cfg.SlotRequestTimeout = "127.0.0.1:0", testRegistry(), 2, time.Minute
			n, err := NewNode(cfg)
			require.NoError(t, err)
			require.NoError(t, n.Start(context.Background()))
			t.Cleanup(func() { n.Close() })
			return n.Dispatcher()
		}},
		{"task manager processes", func(t *testing.T) *Dispatcher {
			if testing.Short() {
				t.Skip("starts processes")
			}
			jm := startJobManagerNode(t)
			startChildren(t, jm.Addr(), 2)
			waitForSlots(t, jm.ResourceManager(), 2)
			return jm.Dispatcher()
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			d := m.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			for _, n := range []int64{20_000, 3_000, 20_000} {
				dir := t.TempDir()
				id, err := d.SubmitJob(ctx, JobSubmission{Name: "keyed-totals", Args: []string{fmt.Sprint(n), dir}, Parallelism: 2})
				require.NoError(t, err)
				res, err := d.JobResult(ctx, id)
				require.NoError(t, err)
				require.NoError(t, res.Err)
				requireTotals(t, dir, n, fmt.Sprintf("the job of %d records", n))
			}
		})
	}
}
