package flink

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricsSnapshot(t *testing.T) {
	f, id := runningClicks(t)
	require.Eventually(t, func() bool {
		m := f.cluster.Metrics()
		return len(m.Jobs) == 1 && m.Jobs[0].Vertices[2].Subtasks[0].RecordsIn > 0
	}, 30*time.Second, 10*time.Millisecond, "the sink's records are reported")

	m := f.cluster.Metrics()
	require.Len(t, m.TaskManagers, 2)
	tm0 := m.TaskManagers[0]
	assert.Equal(t, TaskManagerMetrics{ID: "taskmanager-0", Address: "taskmanager-0", SlotsTotal: 2, SlotsFree: tm0.SlotsFree,
		LastHeartbeat: tm0.LastHeartbeat, Stats: tm0.Stats}, tm0)
	assert.False(t, tm0.LastHeartbeat.IsZero())
	assert.Equal(t, 2, m.TaskManagers[0].SlotsFree+m.TaskManagers[1].SlotsFree)

	j := m.Jobs[0]
	assert.Equal(t, id, j.ID)
	assert.Equal(t, "clicks", j.Name)
	assert.Equal(t, JobRunning, j.Status)
	assert.True(t, j.End.IsZero())
	assert.Zero(t, j.Restarts)
	require.Len(t, j.Vertices, 3)
	for v, ops := range clicksOperators {
		vm := j.Vertices[v]
		assert.Equal(t, v, vm.ID)
		assert.Equal(t, strings.Join(ops, " -> "), vm.Name)
		require.Len(t, vm.Subtasks, vm.Parallelism)
		for i, s := range vm.Subtasks {
			assert.Equal(t, i, s.Subtask)
			assert.Equal(t, Running, s.State)
			assert.NotEmpty(t, s.TaskManager)
		}
	}
	sink := j.Vertices[2].Subtasks[0]
	require.Len(t, sink.Operators, 1)
	assert.Equal(t, "slow sink", sink.Operators[0].Name)
	assert.Equal(t, sink.Operators[0].RecordsIn, sink.RecordsIn)

	// The REST server's snapshot is the same cluster's.
	srv := NewRESTServer(f.cluster)
	assert.Equal(t, id, srv.Metrics().Jobs[0].ID)

	require.NoError(t, f.cluster.Dispatcher().CancelJob(t.Context(), id))
	require.Equal(t, JobCanceled, f.await(t, id).Status)
	j = f.cluster.Metrics().Jobs[0]
	assert.Equal(t, JobCanceled, j.Status)
	assert.False(t, j.End.IsZero())
}

// A node serves GET /metrics with NodeConfig.MetricsHandler, made from the
// served cluster's metrics and the node's logger; without it, /metrics is
// a 404 that names the package to import.
func TestNodeMetricsHandler(t *testing.T) {
	get := func(n *Node) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + n.RESTAddr() + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	start := func(h func(MetricsSource, *slog.Logger) http.Handler) *Node {
		t.Helper()
		cfg := DefaultNodeConfig(RoleJobManager | RoleTaskManager)
		cfg.BindAddr, cfg.RESTAddr, cfg.Registry, cfg.Slots = "127.0.0.1:0", "127.0.0.1:0", testRegistry(), 1
		cfg.MetricsHandler = h
		n, err := NewNode(cfg)
		require.NoError(t, err)
		require.NoError(t, n.Start(context.Background()))
		t.Cleanup(func() { n.Close() })
		return n
	}

	status, body := get(start(nil))
	require.Equal(t, http.StatusNotFound, status)
	var e struct{ Errors []string }
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	require.Len(t, e.Errors, 1)
	assert.Contains(t, e.Errors[0], "github.com/flinkgo/flink/metrics/prometheus")

	n := start(func(src MetricsSource, log *slog.Logger) http.Handler {
		require.NotNil(t, log)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "taskmanagers "+strconv.Itoa(len(src.Metrics().TaskManagers)))
		})
	})
	require.Eventually(t, func() bool {
		status, body := get(n)
		return status == http.StatusOK && body == "taskmanagers 1"
	}, 30*time.Second, 10*time.Millisecond, "the handler reads the node's cluster")
}
