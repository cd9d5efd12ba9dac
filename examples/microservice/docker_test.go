package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flinkgo/flink/deploy/docker/dockertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// report is any JSON line the microservice writes on standard output.
type report struct {
	Job          string   `json:"job"`
	Status       string   `json:"status"`
	TaskManagers []string `json:"taskmanagers"`
	Restarts     int      `json:"restarts"`
	Records      int64    `json:"records"`
	Expected     int64    `json:"expected"`
	DurationMS   int64    `json:"duration_ms"`
	Error        string   `json:"error"`
}

// nextReport reads lines until a job report with one of the given statuses,
// failing the test when ctx ends first or a terminal report has another
// status.
func nextReport(ctx context.Context, t *testing.T, lines <-chan string, statuses ...string) report {
	t.Helper()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("no %v report: %v", statuses, ctx.Err())
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before a %v report", statuses)
			}
			var r report
			if json.Unmarshal([]byte(line), &r) != nil || r.Job == "" {
				continue
			}
			for _, s := range statuses {
				if r.Status == s {
					return r
				}
			}
			if r.Status != "RUNNING" {
				t.Fatalf("report %s, want status %v", line, statuses)
			}
		}
	}
}

// TestDockerClusterRecoversFromKilledTaskManager runs the microservice image
// as one JobManager and three TaskManager containers on a network, kills a
// TaskManager that runs part of the job, and checks that the job restarts
// and finishes with the complete result.
func TestDockerClusterRecoversFromKilledTaskManager(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and runs containers")
	}
	run := dockertest.New(t)
	image := run.BuildImage(run.Context(), ".", "microservice", "Dockerfile")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	network := run.Network(ctx, "flink")

	const records = 6_000_000
	start := time.Now()
	jm := run.Start(ctx, dockertest.Container{Name: "jobmanager", Image: image, Network: network, Env: []string{
		"FLINK_ROLES=jobmanager",
		"FLINK_BIND_ADDR=0.0.0.0:6123",
		"FLINK_ADVERTISE_ADDR=jobmanager:6123",
		"FLINK_PARALLELISM=2",
		"FLINK_MIN_SLOTS=3", // all three TaskManagers, so one is spare after the kill
		fmt.Sprintf("FLINK_JOB_RECORDS=%d", records),
		"FLINK_JOB_RATE=500000", // about 6 s per attempt
		"FLINK_RESTART_ATTEMPTS=20",
		"FLINK_RESTART_DELAY=500ms",
	}})
	lines := run.Lines(jm)
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("tm-%d", i)
		run.Start(ctx, dockertest.Container{Name: id, Image: image, Network: network, Env: []string{
			"FLINK_ROLES=taskmanager",
			"FLINK_NODE_ID=" + id,
			"FLINK_JOBMANAGER_ADDR=jobmanager:6123",
			"FLINK_BIND_ADDR=0.0.0.0:6122",
			"FLINK_ADVERTISE_ADDR=" + id + ":6122",
			"FLINK_SLOTS=1",
		}})
	}
	started := time.Now()
	t.Logf("created and started 4 containers in %v", started.Sub(start).Round(time.Millisecond))

	running := nextReport(ctx, t, lines, "RUNNING")
	t.Logf("job running on %v %v after the last container started", running.TaskManagers, time.Since(started).Round(time.Millisecond))
	require.NotEmpty(t, running.TaskManagers)
	victim := running.TaskManagers[0]
	killed := time.Now()
	run.Kill(ctx, run.ID+"-"+victim)

	recovered := nextReport(ctx, t, lines, "RUNNING", "FINISHED")
	require.Equal(t, "RUNNING", recovered.Status, "the job must not finish on the first attempt after a kill")
	assert.NotContains(t, recovered.TaskManagers, victim)
	t.Logf("killed %s; job running again on %v after %v", victim, recovered.TaskManagers, time.Since(killed).Round(time.Millisecond))

	final := nextReport(ctx, t, lines, "FINISHED")
	t.Logf("final report: %+v", final)
	assert.GreaterOrEqual(t, final.Restarts, 1)
	assert.Equal(t, int64(records), final.Expected)
	assert.Equal(t, int64(records), final.Records, "every record counted exactly once by the last attempt")
}
