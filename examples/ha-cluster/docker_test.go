package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/deploy/docker/dockertest"
	"github.com/flinkgo/flink/rest"
)

// noRedirect is an HTTP client that reports redirects instead of following
// them: a follower's 307 tells it apart from the leader.
var noRedirect = &http.Client{
	Timeout:       2 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// dockerCluster is an HA cluster of containers on one network.
type dockerCluster struct {
	t       *testing.T
	run     *dockertest.Run
	network string
	jms     []string // container names
	aliases []string // host names on the network

	mu        sync.Mutex
	completed map[string][]string // checkpoint id -> JobManagers that completed it
	logs      map[string][]string // container -> its log lines, shown if the test fails
}

// ip returns a container's address on the cluster's network; false when
// it is not connected.
func (c *dockerCluster) ip(ctx context.Context, name string) (string, bool) {
	res, err := c.run.Client.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil || res.Container.NetworkSettings == nil {
		return "", false
	}
	ep, ok := res.Container.NetworkSettings.Networks[c.network]
	if !ok || ep == nil || !ep.IPAddress.IsValid() {
		return "", false
	}
	return ep.IPAddress.String(), true
}

// leader returns the index of the JobManager container that serves the
// REST API itself (followers redirect), among the candidates, and its
// address; false if none does.
func (c *dockerCluster) leader(ctx context.Context, candidates ...int) (int, string, bool) {
	for _, i := range candidates {
		ip, ok := c.ip(ctx, c.jms[i])
		if !ok {
			continue
		}
		resp, err := noRedirect.Get("http://" + ip + ":8081/overview")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return i, ip, true
		}
	}
	return 0, "", false
}

// job returns the job's details from the leader among the candidates.
func (c *dockerCluster) job(ctx context.Context, id flink.JobID, candidates ...int) (rest.JobDetails, bool) {
	_, ip, ok := c.leader(ctx, candidates...)
	if !ok {
		return rest.JobDetails{}, false
	}
	resp, err := noRedirect.Get("http://" + ip + ":8081/jobs/" + string(id))
	if err != nil {
		return rest.JobDetails{}, false
	}
	defer resp.Body.Close()
	var jd rest.JobDetails
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&jd) != nil {
		return rest.JobDetails{}, false
	}
	return jd, true
}

var completedRE = regexp.MustCompile(`msg="checkpoint completed".* checkpoint=(\d+) savepoint=false`)

// follow keeps a container's log and records the checkpoints it reports
// completed.
func (c *dockerCluster) follow(name string) {
	lines := c.run.Lines(name)
	go func() {
		for l := range lines {
			c.mu.Lock()
			c.logs[name] = append(c.logs[name], l)
			if m := completedRE.FindStringSubmatch(l); m != nil {
				c.completed[m[1]] = append(c.completed[m[1]], name)
			}
			c.mu.Unlock()
		}
	}()
	c.t.Cleanup(func() {
		if c.t.Failed() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.t.Logf("log of %s:\n%s", name, strings.Join(c.logs[name], "\n"))
		}
	})
}

// readLines reads the committed output lines in dir.
func readLines(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var lines []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// TestDockerLeaderPartition runs an HA cluster in containers (three
// JobManager nodes, two TaskManager nodes), cuts the leader off with
// docker network disconnect while the exactly-once chaos job runs, and
// checks that another node takes the job over, the old leader steps down
// once it is back, no checkpoint is completed twice, and the output is
// exact. Without Docker it is skipped, except with CI=true, where it fails.
func TestDockerLeaderPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and runs containers")
	}
	run := dockertest.New(t)
	image := run.BuildImage(run.Context(), ".", "ha-cluster", "Dockerfile")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := &dockerCluster{t: t, run: run, network: run.Network(ctx, "ha"), completed: map[string][]string{}, logs: map[string][]string{}}
	shared := t.TempDir()

	var peers, rpcs []string
	for i := range 3 {
		c.aliases = append(c.aliases, fmt.Sprintf("jm-%d", i))
		peers = append(peers, fmt.Sprintf("jm-%d=jm-%d:7947", i, i))
		rpcs = append(rpcs, fmt.Sprintf("jm-%d:6123", i))
	}
	for i, alias := range c.aliases {
		name := run.Start(ctx, dockertest.Container{Name: alias, Image: image, Network: c.network, Binds: []string{shared + ":/shared"}, Env: []string{
			"FLINK_ROLES=jobmanager", "FLINK_HA=true", "FLINK_NODE_ID=" + alias,
			"FLINK_BIND_ADDR=0.0.0.0:6123", "FLINK_ADVERTISE_ADDR=" + rpcs[i],
			"FLINK_RAFT_ADDR=" + alias + ":7947", "FLINK_RAFT_PEERS=" + strings.Join(peers, ","), "FLINK_RAFT_DIR=/raft",
			"FLINK_REST_ADDR=0.0.0.0:8081", "FLINK_CHECKPOINT_DIR=/shared/checkpoints",
			"FLINK_JOBMANAGER_ADDR=" + strings.Join(rpcs, ","),
		}})
		c.jms = append(c.jms, name)
		c.follow(name)
	}
	for i := range 2 {
		id := fmt.Sprintf("tm-%d", i)
		name := run.Start(ctx, dockertest.Container{Name: id, Image: image, Network: c.network, Binds: []string{shared + ":/shared"}, Env: []string{
			"FLINK_ROLES=taskmanager", "FLINK_HA=true", "FLINK_NODE_ID=" + id, "FLINK_SLOTS=1",
			"FLINK_BIND_ADDR=0.0.0.0:6122", "FLINK_ADVERTISE_ADDR=" + id + ":6122",
			"FLINK_CHECKPOINT_DIR=/shared/checkpoints", "FLINK_JOBMANAGER_ADDR=" + strings.Join(rpcs, ","),
		}})
		c.follow(name)
	}

	var leader int
	var leaderIP string
	require.Eventually(t, func() bool {
		var ok bool
		leader, leaderIP, ok = c.leader(ctx, 0, 1, 2)
		return ok
	}, time.Minute, 50*time.Millisecond, "a JobManager leads")
	// The chaos job runs until the test writes its end into the stop file,
	// so it is still running when the leader is cut off however fast or
	// slow the machine is.
	const rate, keys, parallelism = 5000, 1000, 2
	body, _ := json.Marshal(rest.SubmitRequest{Name: "chaos", Args: []string{fmt.Sprint(rate), fmt.Sprint(keys), "/shared/out", "/shared/stop"}, Parallelism: parallelism})
	var id flink.JobID
	require.Eventually(t, func() bool { // the TaskManagers may still be registering
		resp, err := http.Post("http://"+leaderIP+":8081/jobs", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r rest.SubmitResponse
		if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&r) != nil {
			return false
		}
		id = flink.JobID(r.JobID)
		return true
	}, time.Minute, 100*time.Millisecond, "submitting the job")
	submitted := time.Now()
	out := filepath.Join(shared, "out")
	require.Eventually(t, func() bool { return len(readLines(t, out)) >= keys }, 2*time.Minute, 20*time.Millisecond, "the job commits output")
	require.Eventually(t, func() bool {
		jd, ok := c.job(ctx, id, leader)
		return ok && jd.AllRunning()
	}, time.Minute, 10*time.Millisecond)

	others := []int{(leader + 1) % 3, (leader + 2) % 3}
	t.Logf("disconnecting the leader %s", c.aliases[leader])
	cut := time.Now()
	_, err := run.Client.NetworkDisconnect(ctx, c.network, client.NetworkDisconnectOptions{Container: c.jms[leader], Force: true})
	require.NoError(t, err)
	var next int
	require.Eventually(t, func() bool {
		var ok bool
		next, _, ok = c.leader(ctx, others...)
		return ok
	}, time.Minute, 20*time.Millisecond, "another JobManager leads")
	elected := time.Since(cut)
	require.Eventually(t, func() bool {
		jd, ok := c.job(ctx, id, others...)
		return ok && jd.AllRunning()
	}, 2*time.Minute, 20*time.Millisecond, "the job runs under the new leader")
	t.Logf("%s leads %v after the cut; the job runs again after %v", c.aliases[next], elected, time.Since(cut))

	_, err = run.Client.NetworkConnect(ctx, c.network, client.NetworkConnectOptions{Container: c.jms[leader],
		EndpointConfig: &network.EndpointSettings{Aliases: []string{c.aliases[leader]}}})
	require.NoError(t, err)
	// Back on the network, the old leader has stepped down: it redirects
	// to the new leader, or answers 503 while its resolver cannot look up
	// its peers' names yet (Docker's embedded DNS may take a while after a
	// reconnect); it never serves the API as a leader again.
	var status int
	require.Eventually(t, func() bool {
		ip, ok := c.ip(ctx, c.jms[leader])
		if !ok {
			return false
		}
		resp, err := noRedirect.Get("http://" + ip + ":8081/overview")
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status == http.StatusTemporaryRedirect || status == http.StatusServiceUnavailable
	}, time.Minute, 50*time.Millisecond, "the old leader steps down once reconnected")
	t.Logf("the old leader answers %d once reconnected", status)

	// The end: the source's pacing is strict, so no subtask has passed
	// parallelism × (rate × seconds since the submission + 1).
	end := int64(parallelism) * (rate*(int64(time.Since(submitted).Seconds())+3) + 1)
	stop := filepath.Join(shared, "stop")
	require.NoError(t, os.WriteFile(stop+".tmp", fmt.Appendf(nil, "%d\n", end), 0o644))
	require.NoError(t, os.Rename(stop+".tmp", stop))
	t.Logf("the job ends at record %d", end)

	var final rest.JobDetails
	require.Eventually(t, func() bool {
		jd, ok := c.job(ctx, id, 0, 1, 2)
		final = jd
		return ok && jd.State.IsTerminal()
	}, 2*time.Minute, 100*time.Millisecond, "the job ends")
	require.Equal(t, rest.JobFinished, final.State)

	c.mu.Lock()
	require.NotEmpty(t, c.completed, "the JobManagers' logs report completed checkpoints")
	for ckpt, by := range c.completed {
		assert.Len(t, by, 1, "checkpoint %s completed by %v", ckpt, by)
	}
	t.Logf("%d checkpoints completed", len(c.completed))
	c.mu.Unlock()
	checkCounts(t, readLines(t, out), end, keys)
}

// checkCounts verifies that the output holds, for every key, the running
// counts 1..n exactly once.
func checkCounts(t *testing.T, lines []string, records, keys int64) {
	t.Helper()
	seen := make(map[string]int, len(lines))
	for _, l := range lines {
		seen[l]++
	}
	var missing, dups int
	for k := range keys {
		n := records / keys
		if k < records%keys {
			n++
		}
		for c := int64(1); c <= n; c++ {
			line := fmt.Sprintf("%d,%d", k, c)
			switch seen[line] {
			case 0:
				missing++
			case 1:
			default:
				dups++
			}
			delete(seen, line)
		}
	}
	assert.Zero(t, missing, "records lost")
	assert.Zero(t, dups, "records duplicated")
	assert.Empty(t, seen, "unexpected records")
}
