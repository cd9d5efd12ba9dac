package docker_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/deploy/docker"
	"github.com/flinkgo/flink/deploy/docker/dockertest"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	valid := docker.DefaultConfig()
	valid.Image, valid.Network, valid.JobManagerAddr, valid.Cluster = "img", "net", "jm:6123", "c-1"
	require.NoError(t, valid.Validate())
	for name, mutate := range map[string]func(*docker.Config){
		"no image":        func(c *docker.Config) { c.Image = "" },
		"no network":      func(c *docker.Config) { c.Network = "" },
		"no job manager":  func(c *docker.Config) { c.JobManagerAddr = "" },
		"no cluster":      func(c *docker.Config) { c.Cluster = "" },
		"bad cluster":     func(c *docker.Config) { c.Cluster = "a/b" },
		"zero slots":      func(c *docker.Config) { c.Slots = 0 },
		"bad port":        func(c *docker.Config) { c.RPCPort = 70000 },
		"negative period": func(c *docker.Config) { c.StopTimeout = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			c := valid
			mutate(&c)
			require.ErrorIs(t, c.Validate(), docker.ErrInvalidConfig)
		})
	}
	_, err := docker.New(docker.Config{Image: "img"})
	require.ErrorIs(t, err, docker.ErrInvalidConfig)
}

func TestContainerName(t *testing.T) {
	p, err := docker.New(docker.Config{Image: "img", Network: "net", JobManagerAddr: "jm:6123", Cluster: "c-1"})
	require.NoError(t, err)
	defer p.Close()
	assert.Equal(t, "c-1-tm-0a1b", p.ContainerName("tm-0a1b"))
	assert.Equal(t, "c-1-tm-x-y", p.ContainerName("tm/x:y"))
	assert.Equal(t, 1, p.SlotsPerTaskManager())
	require.ErrorIs(t, p.StopTaskManager(context.Background(), "tm-none"), docker.ErrUnknownTaskManager)
}

// TestProviderStartsAndStopsTaskManagerContainers runs the microservice's
// JobManager in a container with the Docker socket mounted and
// FLINK_PROVIDER=docker: it has no TaskManager, so the ResourceManager asks
// the Provider for TaskManager containers when the bundled job requests
// slots, and stops them once they are idle.
func TestProviderStartsAndStopsTaskManagerContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and runs containers")
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" && h != "unix:///var/run/docker.sock" {
		t.Skipf("the job manager container mounts /var/run/docker.sock; DOCKER_HOST is %s", h)
	}
	run := dockertest.New(t)
	clusterLabel := docker.LabelCluster + "=" + run.ID
	run.RemoveContainersLabelled(clusterLabel) // the provider's, should the test fail
	image := run.BuildImage(run.Context(), "github.com/flinkgo/flink/examples/microservice", "microservice", "../../examples/microservice/Dockerfile")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	network := run.Network(ctx, "flink")

	const records = 3_000_000
	start := time.Now()
	jm := run.Start(ctx, dockertest.Container{
		Name: "jobmanager", Image: image, Network: network,
		Binds: []string{"/var/run/docker.sock:/var/run/docker.sock"},
		Env: []string{
			"FLINK_ROLES=jobmanager",
			"FLINK_BIND_ADDR=0.0.0.0:6123",
			"FLINK_ADVERTISE_ADDR=jobmanager:6123",
			"FLINK_PROVIDER=docker",
			"FLINK_DOCKER_IMAGE=" + image,
			"FLINK_DOCKER_NETWORK=" + network,
			"FLINK_CLUSTER=" + run.ID,
			"FLINK_TM_SLOTS=1",
			"FLINK_IDLE_TIMEOUT=2s",
			"FLINK_PARALLELISM=2",
			"FLINK_JOB_RECORDS=3000000",
			"FLINK_JOB_RATE=1000000", // about 1.5 s
		},
	})
	lines := run.Lines(jm)

	var tms []string
	require.Eventually(t, func() bool {
		tms, _ = run.Running(ctx, clusterLabel)
		return len(tms) == 2
	}, time.Minute, 50*time.Millisecond, "the provider starts two TaskManager containers for two slots")
	t.Logf("provider started %v %v after the job manager container", tms, time.Since(start).Round(time.Millisecond))
	for _, name := range tms {
		assert.True(t, strings.HasPrefix(name, run.ID+"-tm-"), name)
	}

	var final struct {
		Status   string `json:"status"`
		Records  int64  `json:"records"`
		Restarts int    `json:"restarts"`
	}
	for final.Status == "" {
		select {
		case <-ctx.Done():
			t.Fatal("no final report from the job manager")
		case line, ok := <-lines:
			require.True(t, ok, "the job manager's output ended before its final report")
			var r struct {
				Job    string `json:"job"`
				Status string `json:"status"`
			}
			if json.Unmarshal([]byte(line), &r) == nil && r.Job != "" && r.Status != "RUNNING" {
				require.NoError(t, json.Unmarshal([]byte(line), &final))
				t.Logf("final report: %s", line)
			}
		}
	}
	finished := time.Now()
	require.Equal(t, string(flink.JobFinished), final.Status)
	assert.Equal(t, int64(records), final.Records)

	require.Eventually(t, func() bool {
		tms, _ = run.Running(ctx, clusterLabel)
		return len(tms) == 0
	}, time.Minute, 50*time.Millisecond, "the provider stops idle TaskManager containers")
	// A container that exited is removed right after; wait for that too.
	require.Eventually(t, func() bool {
		all, err := run.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", clusterLabel)})
		return err == nil && len(all.Items) == 0
	}, time.Minute, 50*time.Millisecond, "stopped TaskManager containers are removed")
	t.Logf("idle TaskManager containers gone %v after the job finished (idle timeout 2 s)", time.Since(finished).Round(time.Millisecond))
}
