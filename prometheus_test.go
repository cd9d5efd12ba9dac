package flink

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrape gets /metrics and parses it with Prometheus' text parser.
func (f *restFixture) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := f.client.Get(f.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return m.GetUntyped().GetValue()
}

// sumWhere sums a family's samples whose labels include want.
func sumWhere(fam *dto.MetricFamily, want map[string]string) (sum float64, n int) {
	for _, m := range fam.GetMetric() {
		l := labelsOf(m)
		match := true
		for k, v := range want {
			match = match && l[k] == v
		}
		if match {
			sum += valueOf(m)
			n++
		}
	}
	return sum, n
}

func TestPrometheusMetrics(t *testing.T) {
	f, id := runningClicks(t)
	job := map[string]string{"job_id": string(id), "job_name": "clicks"}
	source := map[string]string{"job_id": string(id), "task_id": "0"}

	// TaskManagers report counters every second.
	var before float64
	require.Eventually(t, func() bool {
		before, _ = sumWhere(f.scrape(t)["flink_taskmanager_job_task_numRecordsOut"], source)
		return before > 0
	}, 30*time.Second, 50*time.Millisecond, "the source's records are reported")

	fams := f.scrape(t)
	want := map[string]dto.MetricType{
		"flink_jobmanager_numRegisteredTaskManagers":                     dto.MetricType_GAUGE,
		"flink_jobmanager_taskSlotsTotal":                                dto.MetricType_GAUGE,
		"flink_jobmanager_taskSlotsAvailable":                            dto.MetricType_GAUGE,
		"flink_jobmanager_numRunningJobs":                                dto.MetricType_GAUGE,
		"flink_taskmanager_taskSlotsTotal":                               dto.MetricType_GAUGE,
		"flink_taskmanager_taskSlotsAvailable":                           dto.MetricType_GAUGE,
		"flink_jobmanager_job_status":                                    dto.MetricType_GAUGE,
		"flink_jobmanager_job_uptime":                                    dto.MetricType_GAUGE,
		"flink_jobmanager_job_numRestarts":                               dto.MetricType_COUNTER,
		"flink_jobmanager_job_numberOfCompletedCheckpoints":              dto.MetricType_COUNTER,
		"flink_jobmanager_job_numberOfFailedCheckpoints":                 dto.MetricType_COUNTER,
		"flink_jobmanager_job_numberOfInProgressCheckpoints":             dto.MetricType_GAUGE,
		"flink_jobmanager_job_lastCheckpointDuration":                    dto.MetricType_GAUGE,
		"flink_jobmanager_job_lastCheckpointSize":                        dto.MetricType_GAUGE,
		"flink_jobmanager_job_lastCheckpointRestoreTimestamp":            dto.MetricType_GAUGE,
		"flink_taskmanager_job_task_numRecordsIn":                        dto.MetricType_COUNTER,
		"flink_taskmanager_job_task_numRecordsOut":                       dto.MetricType_COUNTER,
		"flink_taskmanager_job_task_accumulatedBackPressuredTime":        dto.MetricType_COUNTER,
		"flink_taskmanager_job_task_accumulatedIdleTime":                 dto.MetricType_COUNTER,
		"flink_taskmanager_job_task_operator_numRecordsIn":               dto.MetricType_COUNTER,
		"flink_taskmanager_job_task_operator_numRecordsOut":              dto.MetricType_COUNTER,
		"flink_taskmanager_job_task_numBytesIn":                          dto.MetricType_COUNTER,
		"flink_taskmanager_job_task_numBytesOut":                         dto.MetricType_COUNTER,
		"flink_taskmanager_job_task_buffers_inPoolUsage":                 dto.MetricType_GAUGE,
		"flink_taskmanager_job_task_buffers_outPoolUsage":                dto.MetricType_GAUGE,
		"flink_taskmanager_Status_JVM_Memory_Heap_Used":                  dto.MetricType_GAUGE,
		"flink_taskmanager_Status_JVM_Memory_Heap_Committed":             dto.MetricType_GAUGE,
		"flink_taskmanager_Status_JVM_Memory_Heap_Max":                   dto.MetricType_GAUGE,
		"flink_taskmanager_Status_JVM_Memory_NonHeap_Used":               dto.MetricType_GAUGE,
		"flink_taskmanager_Status_JVM_GarbageCollector_All_Count":        dto.MetricType_COUNTER,
		"flink_taskmanager_Status_JVM_GarbageCollector_All_Time":         dto.MetricType_COUNTER,
		"flink_taskmanager_Status_JVM_Threads_Count":                     dto.MetricType_GAUGE,
		"flink_taskmanager_Status_Shuffle_Netty_TotalMemorySegments":     dto.MetricType_GAUGE,
		"flink_taskmanager_Status_Shuffle_Netty_AvailableMemorySegments": dto.MetricType_GAUGE,
		"flink_taskmanager_Status_Shuffle_Netty_UsedMemorySegments":      dto.MetricType_GAUGE,
		"flink_taskmanager_Status_Shuffle_Netty_TotalMemory":             dto.MetricType_GAUGE,
		"flink_taskmanager_Status_Shuffle_Netty_AvailableMemory":         dto.MetricType_GAUGE,
		"flink_taskmanager_Status_Shuffle_Netty_UsedMemory":              dto.MetricType_GAUGE,
		"go_goroutines":             dto.MetricType_GAUGE,
		"process_cpu_seconds_total": dto.MetricType_COUNTER,
	}
	for name, typ := range want {
		fam := fams[name]
		if assert.NotNil(t, fam, name) {
			assert.Equal(t, typ, fam.GetType(), name)
			assert.NotEmpty(t, fam.GetHelp(), name)
		}
	}

	gauge := func(name string, labels map[string]string) float64 {
		t.Helper()
		v, n := sumWhere(fams[name], labels)
		require.Equal(t, 1, n, "%s%v: one sample", name, labels)
		return v
	}
	assert.Equal(t, 2.0, gauge("flink_jobmanager_numRegisteredTaskManagers", nil))
	assert.Equal(t, 4.0, gauge("flink_jobmanager_taskSlotsTotal", nil))
	assert.Equal(t, 2.0, gauge("flink_jobmanager_taskSlotsAvailable", nil), "the job holds 2 slots")
	assert.Equal(t, 1.0, gauge("flink_jobmanager_numRunningJobs", nil))
	for _, tm := range []string{"taskmanager-0", "taskmanager-1"} {
		assert.Equal(t, 2.0, gauge("flink_taskmanager_taskSlotsTotal", map[string]string{"tm_id": tm}))
	}
	for _, st := range allJobStatuses {
		want := 0.0
		if st == JobRunning {
			want = 1
		}
		assert.Equal(t, want, gauge("flink_jobmanager_job_status", map[string]string{"job_id": string(id), "status": string(st)}), st)
	}
	assert.Positive(t, gauge("flink_jobmanager_job_uptime", job))
	assert.Equal(t, 0.0, gauge("flink_jobmanager_job_numRestarts", job))
	// The in-process exchange passes Go values: no bytes, no network buffers.
	for _, name := range []string{"numBytesIn", "numBytesOut", "buffers_inPoolUsage", "buffers_outPoolUsage"} {
		sum, n := sumWhere(fams["flink_taskmanager_job_task_"+name], map[string]string{"job_id": string(id)})
		assert.Equal(t, 5, n, "%s: a series per subtask", name)
		assert.Zero(t, sum, name)
	}

	// One series per subtask, with Flink's labels.
	taskLabelNames := sortedKeys("job_id", "job_name", "task_id", "task_name", "subtask_index", "task_attempt_num", "tm_id")
	var tasks []string
	for _, m := range fams["flink_taskmanager_job_task_numRecordsIn"].GetMetric() {
		l := labelsOf(m)
		assert.Equal(t, taskLabelNames, sortedKeys(slices.Collect(maps.Keys(l))...))
		assert.Equal(t, "clicks", l["job_name"])
		assert.Equal(t, "0", l["task_attempt_num"])
		assert.Contains(t, []string{"taskmanager-0", "taskmanager-1"}, l["tm_id"])
		tasks = append(tasks, l["task_id"]+"/"+l["subtask_index"]+" "+l["task_name"])
	}
	slices.Sort(tasks)
	assert.Equal(t, []string{
		"0/0 Source: clicks -> parse", "0/1 Source: clicks -> parse",
		"1/0 count per user -> format", "1/1 count per user -> format",
		"2/0 slow sink",
	}, tasks)
	var ops []string
	for _, m := range fams["flink_taskmanager_job_task_operator_numRecordsOut"].GetMetric() {
		if l := labelsOf(m); l["subtask_index"] == "0" {
			ops = append(ops, l["operator_id"]+" "+l["operator_name"])
		}
	}
	slices.Sort(ops)
	assert.Equal(t, []string{"0.0 clicks", "0.1 parse", "1.0 count per user", "1.1 format", "2.0 slow sink"}, ops)

	// Counts grow while the job runs; the slow sink back-pressures the
	// source.
	require.Eventually(t, func() bool {
		after, _ := sumWhere(f.scrape(t)["flink_taskmanager_job_task_numRecordsOut"], source)
		return after > before
	}, 30*time.Second, 50*time.Millisecond, "the source's record count grows")
	require.Eventually(t, func() bool {
		bp, _ := sumWhere(f.scrape(t)["flink_taskmanager_job_task_accumulatedBackPressuredTime"], source)
		return bp > 0
	}, 30*time.Second, 50*time.Millisecond, "the source is back-pressured")

	// Once cancelled, the job's status and uptime say so.
	status, _, _ := f.do(t, http.MethodPatch, "/jobs/"+string(id)+"?mode=cancel", "")
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, JobCanceled, f.await(t, id).Status)
	fams = f.scrape(t)
	assert.Equal(t, 1.0, gauge("flink_jobmanager_job_status", map[string]string{"job_id": string(id), "status": "CANCELED"}))
	assert.Equal(t, -1.0, gauge("flink_jobmanager_job_uptime", job))
	assert.Equal(t, 0.0, gauge("flink_jobmanager_numRunningJobs", nil))
	assert.Equal(t, 4.0, gauge("flink_jobmanager_taskSlotsAvailable", nil))
	_, n := sumWhere(fams["flink_taskmanager_job_task_numRecordsIn"], map[string]string{"job_id": string(id)})
	assert.Zero(t, n, "an ended job's task series disappear")
}

// TestPrometheusNetworkMetrics runs "clicks" on two isolated TaskManagers
// with a slot each, so that its edges cross loopback TCP, and reads the
// network figures: bytes per task, buffer pool usage behind the slow sink,
// and the TaskManagers' memory and network buffers.
func TestPrometheusNetworkMetrics(t *testing.T) {
	f := newRESTFixtureWith(t, dashboardTestRegistry(), func(c *ClusterConfig) {
		c.IsolatedTaskManagers, c.SlotsPerTaskManager = true, 1
	})
	id := f.submit(t, `{"name": "clicks", "parallelism": 2}`)
	task := func(v string) map[string]string { return map[string]string{"job_id": string(id), "task_id": v} }
	var fams map[string]*dto.MetricFamily
	metric := func(name, task string) float64 {
		sum, _ := sumWhere(fams["flink_taskmanager_job_task_"+name], map[string]string{"job_id": string(id), "task_id": task})
		return sum
	}
	require.Eventually(t, func() bool {
		fams = f.scrape(t)
		return metric("numBytesOut", "0") > 0 && metric("numBytesIn", "1") > 0 &&
			metric("numBytesOut", "1") > 0 && metric("numBytesIn", "2") > 0
	}, 30*time.Second, 50*time.Millisecond, "every exchange's bytes are counted by its producers and consumers")
	assert.Zero(t, metric("numBytesIn", "0"), "the source reads no exchange")
	assert.Zero(t, metric("numBytesOut", "2"), "the sink writes no exchange")

	// The slow sink's input buffers and its producers' output buffers fill.
	maxOf := func(name string, labels map[string]string) float64 {
		m := -1.0
		for _, s := range fams[name].GetMetric() {
			if l := labelsOf(s); l["job_id"] == labels["job_id"] && l["task_id"] == labels["task_id"] {
				m = max(m, valueOf(s))
			}
		}
		return m
	}
	require.Eventually(t, func() bool {
		fams = f.scrape(t)
		return maxOf("flink_taskmanager_job_task_buffers_outPoolUsage", task("1")) > 0 &&
			maxOf("flink_taskmanager_job_task_buffers_inPoolUsage", task("2")) > 0
	}, 30*time.Second, 50*time.Millisecond, "buffers in use behind the slow sink")
	for _, name := range []string{"buffers_inPoolUsage", "buffers_outPoolUsage"} {
		for _, s := range fams["flink_taskmanager_job_task_"+name].GetMetric() {
			assert.True(t, valueOf(s) >= 0 && valueOf(s) <= 1, "%s %v: %v", name, labelsOf(s), valueOf(s))
		}
	}

	// The TaskManagers' heartbeats carry memory and network buffers; the
	// running job's partitions and gates hold buffers.
	require.Eventually(t, func() bool {
		fams = f.scrape(t)
		for _, tm := range []string{"taskmanager-0", "taskmanager-1"} {
			if used, _ := sumWhere(fams["flink_taskmanager_Status_Shuffle_Netty_UsedMemorySegments"], map[string]string{"tm_id": tm}); used == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "network buffers in use on both TaskManagers")
	for _, tm := range []string{"taskmanager-0", "taskmanager-1"} {
		l := map[string]string{"tm_id": tm}
		v := func(name string) float64 {
			sum, n := sumWhere(fams["flink_taskmanager_Status_"+name], l)
			require.Equal(t, 1, n, "%s{tm_id=%s}: one sample", name, tm)
			return sum
		}
		assert.Equal(t, 256.0, v("Shuffle_Netty_TotalMemorySegments"))
		assert.Equal(t, 256.0, v("Shuffle_Netty_UsedMemorySegments")+v("Shuffle_Netty_AvailableMemorySegments"))
		assert.Equal(t, v("Shuffle_Netty_UsedMemorySegments")*(32<<10), v("Shuffle_Netty_UsedMemory"))
		assert.Equal(t, 256.0*(32<<10), v("Shuffle_Netty_TotalMemory"))
		assert.Positive(t, v("JVM_Memory_Heap_Used"))
		assert.GreaterOrEqual(t, v("JVM_Memory_Heap_Committed"), v("JVM_Memory_Heap_Used"))
		assert.Positive(t, v("JVM_Memory_NonHeap_Used"))
		assert.Positive(t, v("JVM_Threads_Count"))
	}
}

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
