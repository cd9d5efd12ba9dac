package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/rest"
)

// What a JobManager node answered to GET /jobs/{id}.
const (
	ansUnreachable = iota // no answer within the timeout, or refused
	ansLeader             // 200: it leads and knows the job
	ansNoJob              // 404 from the leader: it does not know the job (yet)
	ansFollower           // 307 to the leader
	ansNoLeader           // 503: it knows no leader
	ansOther              // any other answer
)

// answer is one JobManager node's latest answer about the job.
type answer struct {
	sent   time.Time // when the request was sent
	kind   int
	status int
	to     int // followers: the node redirected to (-1 unknown)
	job    rest.JobDetails
}

// staleAfter: an answer to a request sent longer ago than this no longer
// counts (the node, paused or gone, has not answered since).
const staleAfter = 1500 * time.Millisecond

// segment is a stretch of time during which the job's state as the
// cluster reports it did not change.
type segment struct {
	start   time.Time
	healthy bool   // the job RUNNING with every subtask running
	leader  int    // the only node answering as leader; -1 none, -2 several
	desc    string // what the JobManager nodes answered
	state   flink.JobStatus
}

// observer polls every JobManager node's REST API for the job, each on its
// own goroutine (a paused node delays only its own poller), and keeps a
// timeline of the job's state: at each moment the leader's view, or none.
type observer struct {
	c     *cluster
	id    flink.JobID
	every time.Duration

	mu       sync.Mutex
	latest   []answer
	timeline []segment
	dual     int // evaluations that saw more than one node answer as leader

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newObserver starts polling the job every interval.
func newObserver(c *cluster, id flink.JobID, every time.Duration) *observer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &observer{c: c, id: id, every: every, latest: make([]answer, len(c.jms)), cancel: cancel}
	for i := range c.jms {
		o.wg.Add(1)
		go o.poll(ctx, i)
	}
	o.wg.Add(1)
	go o.evaluate(ctx)
	return o
}

// close stops the pollers and waits for them.
func (o *observer) close() {
	o.cancel()
	o.wg.Wait()
}

func (o *observer) poll(ctx context.Context, i int) {
	defer o.wg.Done()
	for {
		a := o.ask(ctx, i)
		o.mu.Lock()
		o.latest[i] = a
		o.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.every):
		}
	}
}

// ask asks JobManager node i for the job.
func (o *observer) ask(ctx context.Context, i int) answer {
	a := answer{sent: time.Now(), to: -1}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+o.c.jms[i].rest+"/jobs/"+string(o.id), nil)
	if err != nil {
		return a
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		return a
	}
	defer resp.Body.Close()
	a.status = resp.StatusCode
	switch resp.StatusCode {
	case http.StatusOK:
		if json.NewDecoder(resp.Body).Decode(&a.job) == nil {
			a.kind = ansLeader
		} else {
			a.kind = ansOther
		}
	case http.StatusNotFound:
		a.kind = ansNoJob
	case http.StatusTemporaryRedirect:
		a.kind = ansFollower
		if u, err := url.Parse(resp.Header.Get("Location")); err == nil {
			a.to = o.c.jmIndex(u.Host)
		}
	case http.StatusServiceUnavailable:
		a.kind = ansNoLeader
	default:
		a.kind = ansOther
	}
	return a
}

// evaluate combines the latest answers into the timeline every 20 ms.
func (o *observer) evaluate(ctx context.Context) {
	defer o.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			o.mu.Lock()
			seg := o.combineLocked(now)
			if seg.leader == -2 {
				o.dual++
			}
			if n := len(o.timeline); n == 0 || o.timeline[n-1].desc != seg.desc || o.timeline[n-1].healthy != seg.healthy {
				o.timeline = append(o.timeline, seg)
			}
			o.mu.Unlock()
		}
	}
}

// combineLocked: the job is healthy when the nodes that answer as leader
// (one, normally) all report it RUNNING with every subtask running.
func (o *observer) combineLocked(now time.Time) segment {
	seg := segment{start: now, leader: -1}
	var leaders []int
	var parts []string
	for i, a := range o.latest {
		name := o.c.jms[i].name
		if a.sent.IsZero() || now.Sub(a.sent) > staleAfter {
			parts = append(parts, name+" silent")
			continue
		}
		switch a.kind {
		case ansLeader:
			leaders = append(leaders, i)
			parts = append(parts, name+" leads: "+jobSummary(a.job))
		case ansNoJob:
			parts = append(parts, name+" leads: job unknown")
		case ansFollower:
			to := "?"
			if a.to >= 0 {
				to = o.c.jms[a.to].name
			}
			parts = append(parts, name+" → "+to)
		case ansNoLeader:
			parts = append(parts, name+" 503")
		case ansUnreachable:
			parts = append(parts, name+" unreachable")
		default:
			parts = append(parts, fmt.Sprintf("%s %d", name, a.status))
		}
	}
	seg.desc = strings.Join(parts, "; ")
	switch len(leaders) {
	case 0:
		return seg
	case 1:
		seg.leader = leaders[0]
	default:
		seg.leader = -2
	}
	seg.healthy = true
	seg.state = flink.JobStatus(o.latest[leaders[0]].job.State)
	for _, i := range leaders {
		seg.healthy = seg.healthy && o.latest[i].job.AllRunning()
	}
	return seg
}

// jobSummary renders the job's state and its subtasks' states, such as
// "RUNNING 7/9 running, 2 DEPLOYING".
func jobSummary(jd rest.JobDetails) string {
	counts := map[string]int64{}
	var total int64
	for _, v := range jd.Vertices {
		total += int64(v.Parallelism)
		for s, n := range v.Tasks {
			counts[s] += n
		}
	}
	s := fmt.Sprintf("%s %d/%d running", jd.State, counts[flink.Running.String()], total)
	var others []string
	for st, n := range counts {
		if st != flink.Running.String() && n > 0 {
			others = append(others, fmt.Sprintf("%d %s", n, st))
		}
	}
	sort.Strings(others)
	if len(others) > 0 {
		s += ", " + strings.Join(others, ", ")
	}
	return s
}

// current returns the latest segment.
func (o *observer) current() (segment, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.timeline) == 0 {
		return segment{}, false
	}
	return o.timeline[len(o.timeline)-1], true
}

// healthyNow reports whether the job is healthy now, and if not, why.
func (o *observer) healthyNow() (bool, string) {
	seg, ok := o.current()
	if !ok {
		return false, "not observed yet"
	}
	return seg.healthy, seg.desc
}

// window returns the segments that overlap [from, to), the first one
// clipped to start at from.
func (o *observer) window(from, to time.Time) []segment {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []segment
	for i, s := range o.timeline {
		end := to
		if i+1 < len(o.timeline) {
			end = o.timeline[i+1].start
		}
		if !end.After(from) || !s.start.Before(to) {
			continue
		}
		if s.start.Before(from) {
			s.start = from
		}
		out = append(out, s)
	}
	return out
}

// leaderChanges counts the times the node answering as the only leader
// changed (a stretch without one in between does not count by itself).
func (o *observer) leaderChanges() (int, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	last, n := -1, 0
	var seq []string
	for _, s := range o.timeline {
		if s.leader < 0 {
			continue
		}
		if s.leader != last {
			if last >= 0 {
				n++
			}
			last = s.leader
			seq = append(seq, o.c.jms[s.leader].name)
		}
	}
	return n, seq
}

// dualLeaders returns how many evaluations saw several nodes answer as
// leader.
func (o *observer) dualLeaders() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dual
}
