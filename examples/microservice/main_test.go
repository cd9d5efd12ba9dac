package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// node is a run of the microservice in this process.
type node struct {
	addr   chan string
	lines  chan string
	done   chan error
	cancel context.CancelFunc
}

// startNode runs the microservice with args until the test ends.
func startNode(t *testing.T, args ...string) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	n := &node{addr: make(chan string, 1), lines: make(chan string, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(n.lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
	}()
	go func() {
		err := run(ctx, args, pw, io.Discard, func(a string) { n.addr <- a })
		pw.Close()
		n.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		for range n.lines { // until run returns and closes the pipe
		}
		require.NoError(t, <-n.done)
	})
	return n
}

// final waits for the node's final job report.
func (n *node) final(t *testing.T) finalReport {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case <-timeout:
			t.Fatal("no final report within a minute")
		case line := <-n.lines:
			var r finalReport
			if json.Unmarshal([]byte(line), &r) == nil && r.Job != "" && r.Status != "RUNNING" {
				return r
			}
		}
	}
}

func TestOneProcessWithBothRoles(t *testing.T) {
	n := startNode(t, "-bind", "127.0.0.1:0", "-slots", "2", "--", "-records", "200000", "-keys", "7")
	r := n.final(t)
	assert.Equal(t, "FINISHED", r.Status, r.Error)
	assert.Equal(t, int64(200_000), r.Records)
	assert.Equal(t, int64(200_000), r.Expected)
	assert.Zero(t, r.Restarts)
}

func TestJobManagerAndTaskManagers(t *testing.T) {
	jm := startNode(t, "-roles", "jobmanager", "-bind", "127.0.0.1:0", "--", "-records", "500000", "-parallelism", "3", "-min-slots", "3")
	addr := <-jm.addr
	for i := range 3 {
		tm := startNode(t, "-roles", "taskmanager", "-id", "tm-"+strconv.Itoa(i), "-bind", "127.0.0.1:0",
			"-jobmanager", addr, "-slots", "1")
		<-tm.addr
	}
	r := jm.final(t)
	assert.Equal(t, "FINISHED", r.Status, r.Error)
	assert.Equal(t, int64(500_000), r.Records)
}

func TestSettings(t *testing.T) {
	t.Setenv("FLINK_JOB_RECORDS", "42")
	t.Setenv("FLINK_PARALLELISM", "4")
	s, err := parseSettings([]string{"-parallelism", "3", "-restart-delay", "2s"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, int64(42), s.job.Records, "from the environment")
	assert.Equal(t, 3, s.parallelism, "flags win")
	assert.Equal(t, 3, s.minSlots, "defaults to the parallelism")
	assert.Equal(t, 2*time.Second, s.job.RestartDelay)

	t.Setenv("FLINK_PROVIDER", "docker")
	_, err = parseSettings(nil, io.Discard)
	require.ErrorContains(t, err, "FLINK_DOCKER_IMAGE")
	s, err = parseSettings([]string{"-docker-image", "i", "-docker-network", "n", "-cluster", "c"}, io.Discard)
	require.NoError(t, err)
	assert.Zero(t, s.minSlots, "a provider starts TaskManagers on demand")
	t.Setenv("FLINK_PROVIDER", "")

	for _, bad := range [][]string{{"-keys", "0"}, {"-parallelism", "0"}, {"-provider", "k8s"}, {"extra"}} {
		_, err := parseSettings(bad, io.Discard)
		assert.Error(t, err, "%q", bad)
	}
	_, err = parseSettings([]string{"-h"}, io.Discard)
	assert.True(t, errors.Is(err, flag.ErrHelp))
	t.Setenv("FLINK_JOB_KEYS", "many")
	_, err = parseSettings(nil, io.Discard)
	assert.ErrorContains(t, err, "FLINK_JOB_KEYS")
}

func TestJobSpecArgsRoundTrip(t *testing.T) {
	want := jobSpec{Records: 10, Keys: 3, Rate: 5, Restarts: 2, RestartDelay: time.Second}
	got, err := parseJobSpec(want.args())
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, []int64{4, 3, 3}, []int64{want.expected(0), want.expected(1), want.expected(2)})
	_, err = parseJobSpec([]string{"1"})
	assert.Error(t, err)
}

func TestDefaultAdvertiseAddr(t *testing.T) {
	assert.Empty(t, defaultAdvertiseAddr("127.0.0.1:6123"))
	assert.Empty(t, defaultAdvertiseAddr("0.0.0.0:0"))
	assert.NotEmpty(t, defaultAdvertiseAddr("0.0.0.0:6123"))
	assert.NotEmpty(t, defaultAdvertiseAddr(":6123"))
}
