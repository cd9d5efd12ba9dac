package prometheus_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/metrics/prometheus"
	"github.com/flinkgo/flink/rest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clickCount is a user's running count of clicks.
type clickCount struct {
	User  string
	Count int64
}

// testRegistry holds "clicks", as the root package's dashboard tests: an
// unbounded Generate source of clicks by 50 users, counted per user, into
// a sink that sleeps a millisecond every 50 records, so that the operators
// before it are back-pressured; and "eventtime": ticks every 5 ms stamped
// with the wall clock, with watermarks every 10 ms. Both run until
// cancelled.
func testRegistry() *flink.Registry {
	reg := flink.NewRegistry()
	reg.MustRegister("clicks", func(env *flink.Env, args []string) error {
		clicks := flink.Generate(env, -1, func(i int64) (int64, error) { return i, nil }).Name("clicks")
		parsed := flink.Map(clicks, func(i int64) (clickCount, error) {
			return clickCount{User: fmt.Sprintf("user-%d", i%50), Count: 1}, nil
		}).Name("parse")
		counts := flink.Reduce(flink.KeyBy(parsed, func(c clickCount) string { return c.User }),
			func(a, b clickCount) (clickCount, error) { return clickCount{a.User, a.Count + b.Count}, nil }).Name("count per user")
		lines := flink.Map(counts, func(c clickCount) (string, error) { return fmt.Sprintf("%s %d", c.User, c.Count), nil }).Name("format")
		var n int
		flink.SinkTo(lines, "slow sink", flink.SinkFunc(func(string) error {
			if n++; n%50 == 0 {
				time.Sleep(time.Millisecond)
			}
			return nil
		})).SetParallelism(1)
		return nil
	})
	reg.MustRegister("eventtime", func(env *flink.Env, args []string) error {
		env.Configure(flink.WithAutoWatermarkInterval(10 * time.Millisecond))
		ticks := flink.Generate(env, -1, func(i int64) (int64, error) {
			time.Sleep(5 * time.Millisecond)
			return i, nil
		})
		stamped := flink.AssignTimestampsAndWatermarks(ticks, flink.ForMonotonousTimestamps[int64]().
			WithTimestampAssigner(func(int64, int64) int64 { return time.Now().UnixMilli() }))
		flink.SinkTo(stamped.Rebalance(), "discard", flink.SinkFunc(func(int64) error { return nil }))
		return nil
	})
	return reg
}

// fixture is a local cluster of two TaskManagers with two slots each,
// serving its REST API with the Prometheus handler.
type fixture struct {
	cluster *flink.LocalCluster
	url     string
	http    *http.Client
	client  *rest.Client
}

// newFixture starts the cluster, its configuration changed by tune (nil:
// unchanged).
func newFixture(t *testing.T, tune func(*flink.ClusterConfig)) *fixture {
	t.Helper()
	cfg := flink.DefaultClusterConfig()
	cfg.TaskManagers, cfg.SlotsPerTaskManager, cfg.Registry = 2, 2, testRegistry()
	if tune != nil {
		tune(&cfg)
	}
	c, err := flink.NewLocalCluster(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	srv := flink.NewRESTServer(c)
	srv.HandleMetrics(prometheus.Handler(srv, nil))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	cl, err := rest.NewClient(ts.URL, rest.WithHTTPClient(ts.Client()))
	require.NoError(t, err)
	return &fixture{cluster: c, url: ts.URL, http: ts.Client(), client: cl}
}

// submit runs a job of testRegistry.
func (f *fixture) submit(t *testing.T, name string, parallelism int) rest.JobID {
	t.Helper()
	id, err := f.client.Submit(t.Context(), rest.SubmitRequest{Name: name, Parallelism: parallelism})
	require.NoError(t, err)
	return id
}

// cancel cancels a job and waits for its result.
func (f *fixture) cancel(t *testing.T, id rest.JobID) *flink.JobResult {
	t.Helper()
	require.NoError(t, f.client.Cancel(t.Context(), id))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := f.cluster.Dispatcher().JobResult(ctx, flink.JobID(id))
	require.NoError(t, err)
	return res
}

// runningClicks starts a fixture, submits "clicks" with parallelism 2 and
// waits until every subtask runs.
func runningClicks(t *testing.T) (*fixture, rest.JobID) {
	t.Helper()
	f := newFixture(t, nil)
	id := f.submit(t, "clicks", 2)
	require.Eventually(t, func() bool {
		d, err := f.client.Job(t.Context(), id)
		require.NoError(t, err)
		return d.AllRunning()
	}, 30*time.Second, 10*time.Millisecond, "every subtask of clicks runs")
	return f, id
}

// scrape gets /metrics and parses it with Prometheus' text parser.
func (f *fixture) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := f.http.Get(f.url + "/metrics")
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
	for _, st := range []flink.JobStatus{flink.JobCreated, flink.JobRunning, flink.JobFailing, flink.JobFailed,
		flink.JobCancelling, flink.JobCanceled, flink.JobFinished, flink.JobRestarting, flink.JobSuspended} {
		want := 0.0
		if st == flink.JobRunning {
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
	require.Equal(t, flink.JobCanceled, f.cancel(t, id).Status)
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
	f := newFixture(t, func(c *flink.ClusterConfig) {
		c.IsolatedTaskManagers, c.SlotsPerTaskManager = true, 1
	})
	id := f.submit(t, "clicks", 2)
	defer f.cancel(t, id)
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

// The watermarks of a running job: the input and output watermarks of its
// tasks, and the source's lag to the wall clock.
func TestPrometheusWatermarks(t *testing.T) {
	f := newFixture(t, nil)
	id := f.submit(t, "eventtime", 1)
	defer f.cancel(t, id)
	require.Eventually(t, func() bool {
		fams := f.scrape(t)
		_, in := sumWhere(fams["flink_taskmanager_job_task_currentInputWatermark"], map[string]string{"job_id": string(id)})
		_, out := sumWhere(fams["flink_taskmanager_job_task_currentOutputWatermark"], map[string]string{"job_id": string(id)})
		_, lag := sumWhere(fams["flink_taskmanager_job_task_watermarkLag"], map[string]string{"job_id": string(id)})
		return in > 0 && out > 0 && lag > 0
	}, 30*time.Second, 10*time.Millisecond)
}

// NewCollector registers the cluster's figures in a registry of the
// caller's own.
func TestNewCollector(t *testing.T) {
	f, id := runningClicks(t)
	defer f.cancel(t, id)
	reg := promclient.NewRegistry()
	require.NoError(t, reg.Register(prometheus.NewCollector(f.cluster)))
	fams, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, fam := range fams {
		names[fam.GetName()] = true
	}
	assert.True(t, names["flink_jobmanager_job_status"], "%v", names)
	assert.False(t, names["go_goroutines"], "only the cluster's figures")
}

func sortedKeys(ks ...string) []string { slices.Sort(ks); return ks }
