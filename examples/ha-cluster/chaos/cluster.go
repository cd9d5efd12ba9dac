package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/rest"
)

// node is one process of the cluster: a JobManager node (jm-i) or a
// TaskManager node (tm-i), restarted with the same settings after a kill.
type node struct {
	name string
	jm   bool
	rest string // JobManager nodes: REST address
	env  []string
	bin  string
	log  string // log file, appended to by every start

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current process exited
	expected bool          // the harness killed or stopped the process
	paused   bool
	crashes  []string // exits the harness did not cause
}

// start starts the node's process; its output is appended to its log.
func (n *node) start() error {
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: log of %s: %w", n.name, err)
	}
	fmt.Fprintf(f, "=== chaos: starting %s at %s\n", n.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin)
	cmd.Env = append(os.Environ(), n.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("chaos: starting %s: %w", n.name, err)
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited, n.expected, n.paused = cmd, exited, false, false
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		n.mu.Lock()
		if !n.expected {
			n.crashes = append(n.crashes, fmt.Sprintf("%s exited by itself at %s: %v", n.name, time.Now().UTC().Format("15:04:05.000"), err))
		}
		n.mu.Unlock()
		close(exited)
	}()
	return nil
}

// running reports whether the node's process runs (paused counts).
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the node's process.
func (n *node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("chaos: %s is not started", n.name)
	}
	switch sig {
	case syscall.SIGKILL, syscall.SIGTERM:
		n.expected = true
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	return n.cmd.Process.Signal(sig)
}

// kill kills the node's process with SIGKILL and waits until it exited.
func (n *node) kill() error {
	if err := n.signal(syscall.SIGKILL); err != nil {
		return err
	}
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	<-exited
	return nil
}

// stop ends the node's process: SIGTERM (after SIGCONT, should it be
// paused), then SIGKILL if it has not exited within the grace period.
func (n *node) stop(grace time.Duration) {
	if !n.running() {
		return
	}
	n.signal(syscall.SIGCONT)
	n.signal(syscall.SIGTERM)
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(grace):
		n.kill()
	}
}

// takeCrashes returns and forgets the exits the harness did not cause.
func (n *node) takeCrashes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.crashes
	n.crashes = nil
	return c
}

// cluster is three (or more) JobManager nodes in a Raft group and the
// TaskManager nodes, all processes of the ha-cluster binary on loopback.
type cluster struct {
	dir   string
	jms   []*node
	tms   []*node
	nodes []*node // jms then tms
	http  *http.Client
}

// noRedirect tells a follower's 307 apart from the leader's answer.
var noRedirect = &http.Client{
	Timeout:       time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// freeAddrs returns n loopback addresses with free ports.
func freeAddrs(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("chaos: finding a free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// newCluster lays out the cluster's nodes in dir; start starts them.
func newCluster(bin, dir string, jms, tms, slots int) (*cluster, error) {
	c := &cluster{dir: dir, http: &http.Client{Timeout: 5 * time.Second}}
	addrs, err := freeAddrs(3 * jms)
	if err != nil {
		return nil, err
	}
	rpcs, rests, rafts := addrs[:jms], addrs[jms:2*jms], addrs[2*jms:]
	var peers []string
	for i := range jms {
		peers = append(peers, fmt.Sprintf("jm-%d=%s", i, rafts[i]))
	}
	ckpts := filepath.Join(dir, "checkpoints")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	for i := range jms {
		name := fmt.Sprintf("jm-%d", i)
		c.jms = append(c.jms, &node{name: name, jm: true, rest: rests[i], bin: bin, log: filepath.Join(dir, "logs", name+".log"), env: []string{
			"FLINK_ROLES=jobmanager", "FLINK_HA=true", "FLINK_NODE_ID=" + name,
			"FLINK_BIND_ADDR=" + rpcs[i], "FLINK_REST_ADDR=" + rests[i],
			"FLINK_RAFT_ADDR=" + rafts[i], "FLINK_RAFT_PEERS=" + strings.Join(peers, ","),
			"FLINK_RAFT_DIR=" + filepath.Join(dir, name, "raft"), "FLINK_DATA_DIR=" + filepath.Join(dir, name),
			"FLINK_CHECKPOINT_DIR=" + ckpts, "FLINK_JOBMANAGER_ADDR=" + strings.Join(rpcs, ","),
		}})
	}
	for i := range tms {
		name := fmt.Sprintf("tm-%d", i)
		c.tms = append(c.tms, &node{name: name, bin: bin, log: filepath.Join(dir, "logs", name+".log"), env: []string{
			"FLINK_ROLES=taskmanager", "FLINK_HA=true", "FLINK_NODE_ID=" + name,
			"FLINK_BIND_ADDR=127.0.0.1:0", fmt.Sprintf("FLINK_SLOTS=%d", slots),
			"FLINK_DATA_DIR=" + filepath.Join(dir, name),
			"FLINK_CHECKPOINT_DIR=" + ckpts, "FLINK_JOBMANAGER_ADDR=" + strings.Join(rpcs, ","),
		}})
	}
	c.nodes = append(append(c.nodes, c.jms...), c.tms...)
	return c, nil
}

// start starts every node.
func (c *cluster) start() error {
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			return err
		}
	}
	return nil
}

// close stops every node.
func (c *cluster) close() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stop(10 * time.Second)
		}()
	}
	wg.Wait()
}

// jmIndex returns the index of the JobManager node serving the REST API
// at host:port, or -1.
func (c *cluster) jmIndex(hostport string) int {
	for i, n := range c.jms {
		if n.rest == hostport {
			return i
		}
	}
	return -1
}

// jmUp reports whether JobManager node i answers as a member of a group
// with a leader: the leader answers 200, a follower redirects to it.
func (c *cluster) jmUp(i int) bool {
	resp, err := noRedirect.Get("http://" + c.jms[i].rest + "/overview")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusTemporaryRedirect
}

// overview returns the leader's cluster overview, found by asking every
// JobManager node without following redirects.
func (c *cluster) overview() (rest.Overview, bool) {
	for _, n := range c.jms {
		resp, err := noRedirect.Get("http://" + n.rest + "/overview")
		if err != nil {
			continue
		}
		var ov rest.Overview
		ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&ov) == nil
		resp.Body.Close()
		if ok {
			return ov, true
		}
	}
	return rest.Overview{}, false
}

// allUp reports whether every node runs, every JobManager node answers,
// and the leader counts every TaskManager; if not, it says what is
// missing.
func (c *cluster) allUp() (bool, string) {
	for _, n := range c.nodes {
		if !n.running() {
			return false, n.name + " is not running"
		}
	}
	for i, n := range c.jms {
		if !c.jmUp(i) {
			return false, n.name + " does not answer with a leader"
		}
	}
	ov, ok := c.overview()
	if !ok {
		return false, "no JobManager node serves the overview"
	}
	if ov.TaskManagers != len(c.tms) {
		return false, fmt.Sprintf("the leader counts %d TaskManagers, want %d", ov.TaskManagers, len(c.tms))
	}
	return true, ""
}

// restartCrashed starts again the nodes whose processes exited without
// the harness causing it, and returns what it found.
func (c *cluster) restartCrashed() ([]string, error) {
	var found []string
	for _, n := range c.nodes {
		cr := n.takeCrashes()
		found = append(found, cr...)
		if len(cr) > 0 && !n.running() {
			if err := n.start(); err != nil {
				return found, err
			}
		}
	}
	return found, nil
}

// submit submits a registered job through any JobManager node (a follower
// redirects to the leader), retrying until one accepts it or ctx ends.
func (c *cluster) submit(ctx context.Context, req rest.SubmitRequest) (flink.JobID, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	var last error
	for {
		for _, n := range c.jms {
			hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+n.rest+"/jobs", bytes.NewReader(body))
			if err != nil {
				return "", err
			}
			hreq.Header.Set("Content-Type", "application/json")
			resp, err := c.http.Do(hreq)
			if err != nil {
				last = err
				continue
			}
			var r rest.SubmitResponse
			var e rest.ErrorBody
			if resp.StatusCode == http.StatusAccepted && json.NewDecoder(resp.Body).Decode(&r) == nil {
				resp.Body.Close()
				return flink.JobID(r.JobID), nil
			}
			json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			last = fmt.Errorf("%s answered %d: %v", n.name, resp.StatusCode, e.Errors)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("chaos: submitting %s: %w (last answer: %w)", req.Name, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// exceptions returns the job's root exception from the leader, if any.
func (c *cluster) exceptions(id flink.JobID) string {
	for _, n := range c.jms {
		resp, err := noRedirect.Get("http://" + n.rest + "/jobs/" + string(id) + "/exceptions")
		if err != nil {
			continue
		}
		var ex rest.JobExceptions
		ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&ex) == nil
		resp.Body.Close()
		if ok {
			return ex.RootException
		}
	}
	return ""
}

// waitFor polls cond until it holds or the deadline passes; it returns
// the last reason cond gave.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, string)) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, why := cond()
		if ok {
			return true, ""
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				why += " (interrupted)"
			}
			return false, why
		case <-time.After(50 * time.Millisecond):
		}
	}
}
