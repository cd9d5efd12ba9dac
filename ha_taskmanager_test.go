package flink

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/rest"
)

// TestHAKilledTaskManagersRecover kills, one after the other, TaskManager
// processes running part of a checkpointed job on an HA cluster (three
// JobManager nodes), starting each again as a spare, and checks that every
// time the job runs again on the remaining TaskManagers. Once, some kills
// left the job FAILING until the Raft leader happened to step down: a
// surviving subtask that did not stop at once blocked its TaskManager's
// RPCs.
func TestHAKilledTaskManagersRecover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	kills := 5
	if os.Getenv("FLINKGO_TM_KILLS") != "" {
		require.NoError(t, json.Unmarshal([]byte(os.Getenv("FLINKGO_TM_KILLS")), &kills))
	}
	c := startHACluster(t, 3, 4)
	leader := c.leader()
	id := c.submit(leader, rest.SubmitRequest{Name: "endless", Args: []string{"50ms"}, Parallelism: 3})
	var jd rest.JobDetails
	require.Eventually(t, func() bool {
		var ok bool
		jd, ok = c.restJob(leader, id)
		return ok && jd.AllRunning()
	}, time.Minute, 5*time.Millisecond, "the job runs")
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	var worst time.Duration
	for k := range kills {
		busy := c.busyTaskManagers(leader)
		require.NotEmpty(t, busy)
		victim := busy[rnd.IntN(len(busy))]
		restarts := jd.Restarts
		killed := time.Now()
		c.killTaskManager(victim)
		require.Eventually(t, func() bool {
			var ok bool
			jd, ok = c.restJob(leader, id)
			return ok && jd.Restarts > restarts && jd.AllRunning()
		}, time.Minute, 5*time.Millisecond, "kill %d of %s: the job runs again (last seen %s, %d restarts)", k, victim, jd.State, jd.Restarts)
		took := time.Since(killed)
		worst = max(worst, took)
		t.Logf("kill %d: %s; the job runs again after %v", k, victim, took)
	}
	t.Logf("%d kills; the longest recovery took %v", kills, worst)
}

// busyTaskManagers lists the TaskManagers with no free slot, as JobManager
// node i's REST API reports them.
func (c *haCluster) busyTaskManagers(i int) []string {
	c.t.Helper()
	var busy []string
	require.Eventually(c.t, func() bool {
		resp, err := http.Get("http://" + c.rest[i] + "/taskmanagers")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var tms rest.TaskManagers
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tms) != nil {
			return false
		}
		busy = busy[:0]
		for _, tm := range tms.TaskManagers {
			if tm.FreeSlots == 0 {
				busy = append(busy, string(tm.ID))
			}
		}
		return true
	}, time.Minute, 10*time.Millisecond, "listing TaskManagers")
	return busy
}

// killTaskManager kills TaskManager process id with SIGKILL and starts it
// again, as a new process with the same configuration.
func (c *haCluster) killTaskManager(id string) {
	c.t.Helper()
	c.mu.Lock()
	cmd, cc := c.procs[id], c.cfgs[id]
	c.mu.Unlock()
	require.NoError(c.t, cmd.Process.Kill())
	cmd.Wait()
	cmd = startChildWith(c.t, cc)
	c.mu.Lock()
	c.procs[id] = cmd
	c.mu.Unlock()
}
