package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/rest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// session is a session cluster running in this test.
type session struct {
	base   string
	out    *syncBuffer
	client *http.Client
	stop   func() error
}

// startSession runs the session cluster on a loopback port until the test
// ends (or stop is called).
func startSession(t *testing.T, flags ...string) *session {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	args := append([]string{"-rest-addr", "127.0.0.1:0"}, flags...)
	go func() { done <- run(ctx, args, out, io.Discard, func(a net.Addr) { addrs <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		cancel()
		t.Fatalf("session cluster did not start: %v", err)
	}
	s := &session{base: "http://" + addr.String(), out: out, client: &http.Client{Transport: &http.Transport{}}}
	var once sync.Once
	var err error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
			s.client.CloseIdleConnections()
		})
		return err
	}
	t.Cleanup(func() { require.NoError(t, s.stop()) })
	return s
}

func (s *session) call(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode
}

func (s *session) submit(t *testing.T, body string) flink.JobID {
	t.Helper()
	var r rest.SubmitResponse
	require.Equal(t, http.StatusAccepted, s.call(t, "POST", "/jobs", body, &r), body)
	return flink.JobID(r.JobID)
}

// awaitState polls the job until it reaches state, within a deadline.
func (s *session) awaitState(t *testing.T, id flink.JobID, state flink.JobStatus) rest.JobDetails {
	t.Helper()
	var d rest.JobDetails
	require.Eventually(t, func() bool {
		d = rest.JobDetails{}
		s.call(t, "GET", "/jobs/"+string(id), "", &d)
		return d.State == rest.JobStatus(state)
	}, 30*time.Second, 5*time.Millisecond, "job %s never reached %s; last %+v", id, state, d)
	return d
}

func TestSessionCluster(t *testing.T) {
	s := startSession(t, "-taskmanagers", "2", "-slots", "2")

	var o rest.Overview
	require.Equal(t, 200, s.call(t, "GET", "/overview", "", &o))
	assert.Equal(t, 2, o.TaskManagers)
	assert.Equal(t, 4, o.SlotsTotal)
	require.Equal(t, 200, s.call(t, "GET", "/metrics", "", nil), "the session cluster exports Prometheus metrics")

	sum := s.submit(t, `{"name": "sum", "args": ["100"], "parallelism": 2}`)
	s.awaitState(t, sum, flink.JobFinished)
	assert.Contains(t, s.out.String(), "sum of 0..99 = 4950\n")

	wc := s.submit(t, `{"name": "wordcount", "args": ["to be or not", "to be"], "parallelism": 1}`)
	d := s.awaitState(t, wc, flink.JobFinished)
	assert.Equal(t, "wordcount", d.Name)
	assert.Contains(t, s.out.String(), "{be 2}\n")
	assert.Contains(t, s.out.String(), "{to 2}\n")

	tick := s.submit(t, `{"name": "ticker", "args": ["5ms"]}`)
	s.awaitState(t, tick, flink.JobRunning)
	require.Eventually(t, func() bool { return strings.Contains(s.out.String(), "tick 2\n") },
		30*time.Second, 5*time.Millisecond, "the ticker prints while it runs")

	var jobs rest.JobIDs
	require.Equal(t, 200, s.call(t, "GET", "/jobs", "", &jobs))
	assert.ElementsMatch(t, []rest.JobIDWithStatus{
		{ID: rest.JobID(sum), Status: rest.JobFinished}, {ID: rest.JobID(wc), Status: rest.JobFinished}, {ID: rest.JobID(tick), Status: rest.JobRunning},
	}, jobs.Jobs)

	require.Equal(t, http.StatusAccepted, s.call(t, "PATCH", "/jobs/"+string(tick)+"?mode=cancel", "", nil))
	s.awaitState(t, tick, flink.JobCanceled)
	require.Equal(t, 200, s.call(t, "GET", "/overview", "", &o))
	assert.Equal(t, 1, o.JobsCancelled)
	assert.Equal(t, 2, o.JobsFinished)
	assert.Equal(t, 4, o.SlotsAvailable)

	var e rest.ErrorBody
	assert.Equal(t, 400, s.call(t, "POST", "/jobs", `{"name": "ticker", "args": ["soon"]}`, &e))
	assert.Contains(t, e.Errors[0], `interval "soon"`)
	assert.Equal(t, 400, s.call(t, "POST", "/jobs", `{"name": "sum", "args": ["-1"]}`, &e))
	assert.Equal(t, 400, s.call(t, "POST", "/jobs", `{"name": "nope"}`, &e))
	assert.Contains(t, e.Errors[0], "sum ticker wordcount")
}

// Stopping the session cluster cancels the jobs still running.
func TestSessionClusterShutdownCancelsJobs(t *testing.T) {
	s := startSession(t, "-slots", "1")
	tick := s.submit(t, `{"name": "ticker", "args": ["1h"]}`)
	s.awaitState(t, tick, flink.JobRunning)
	require.NoError(t, s.stop())
	_, err := s.client.Get(s.base + "/overview")
	assert.Error(t, err, "the REST API is down")
}

func TestSessionClusterBadFlags(t *testing.T) {
	var errOut bytes.Buffer
	for _, args := range [][]string{
		{"-slots", "0", "-rest-addr", "127.0.0.1:0"},
		{"-taskmanagers", "x"},
		{"-rest-addr", "127.0.0.1:0", "extra"},
		{"-rest-addr", "no-port"},
	} {
		err := run(context.Background(), args, io.Discard, &errOut, nil)
		assert.Error(t, err, "%v", args)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSessionClusterResubmission submits each job again with other
// arguments through the REST API: every submission runs with its own
// arguments, not those of an earlier submission of the same job.
func TestSessionClusterResubmission(t *testing.T) {
	s := startSession(t, "-taskmanagers", "2", "-slots", "2")
	for _, n := range []int{1000, 10, 1000} {
		s.awaitState(t, s.submit(t, fmt.Sprintf(`{"name": "sum", "args": ["%d"], "parallelism": 2}`, n)), flink.JobFinished)
		assert.Contains(t, s.out.String(), fmt.Sprintf("sum of 0..%d = %d\n", n-1, n*(n-1)/2))
	}
	s.awaitState(t, s.submit(t, `{"name": "wordcount", "args": ["hello hello world"], "parallelism": 2}`), flink.JobFinished)
	s.awaitState(t, s.submit(t, `{"name": "wordcount", "args": ["foo bar w0 w1"], "parallelism": 2}`), flink.JobFinished)
	for _, w := range []string{"{hello 2}", "{world 1}", "{foo 1}", "{bar 1}", "{w0 1}", "{w1 1}"} {
		assert.Contains(t, s.out.String(), w+"\n")
	}
}
