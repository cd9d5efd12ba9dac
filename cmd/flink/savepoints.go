package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flinkgo/flink/rest"
)

// savepointResult is what savepoint and stop print with --output json:
// the savepoint's location, or why it failed. State is the job's state
// when stop stopped waiting for it: FINISHED once it stopped.
type savepointResult struct {
	JobID        string         `json:"jobid"`
	RequestID    string         `json:"request-id"`
	Location     string         `json:"location,omitempty"`
	FailureCause string         `json:"failure-cause,omitempty"`
	State        rest.JobStatus `json:"state,omitempty"`
}

// savepoint implements "savepoint <jobid> [targetDir]": trigger a
// savepoint, wait for it and print its location.
func (c *cli) savepoint(ctx context.Context, cl *rest.Client, args []string) error {
	switch {
	case len(args) == 0:
		return usagef("savepoint: missing job id")
	case len(args) > 2:
		return usagef("savepoint: want a job id and at most one target directory, got %q", args)
	}
	id, target := args[0], ""
	if len(args) == 2 {
		if args[1] == "" {
			return usagef("savepoint: empty target directory")
		}
		target = args[1]
	}
	c.progressf("Triggering savepoint for job %s.\n", id)
	trig, err := cl.TriggerSavepoint(ctx, rest.JobID(id), target, false)
	if err != nil {
		return err
	}
	res := savepointResult{JobID: id, RequestID: trig}
	if err := c.awaitSavepoint(ctx, cl, &res); err != nil {
		return err
	}
	if c.output == "json" {
		return writeJSON(c.stdout, res)
	}
	fmt.Fprintf(c.stdout, "Savepoint completed. Path: %s\n", res.Location)
	fmt.Fprintf(c.stderr, "Resume the job from it with: flink run --fromSavepoint %s <name> [args...]\n", res.Location)
	return nil
}

// stop implements "stop <jobid> [--savepointPath dir]": stop the job with
// a savepoint, print the savepoint's location and wait until the job has
// finished.
func (c *cli) stop(ctx context.Context, cl *rest.Client, args []string) error {
	fs := c.flagSet("stop")
	var dir string
	fs.StringVar(&dir, "savepointPath", "", "savepoint directory")
	fs.StringVar(&dir, "p", "", "savepoint directory")
	pos, err := parseInterspersed(fs, args, -1)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 0:
		return usagef("stop: missing job id")
	case 1:
	default:
		return usagef("stop: want one job id, got %q", pos)
	}
	if c.output != "text" && c.output != "json" {
		return usagef("unknown output format %q: want text or json", c.output)
	}
	id := pos[0]
	c.progressf("Suspending job %s with a savepoint.\n", id)
	trig, err := cl.StopWithSavepoint(ctx, rest.JobID(id), dir)
	if err != nil {
		return err
	}
	res := savepointResult{JobID: id, RequestID: trig}
	if err := c.awaitSavepoint(ctx, cl, &res); err != nil {
		return err
	}
	if c.output != "json" {
		fmt.Fprintf(c.stdout, "Savepoint completed. Path: %s\n", res.Location)
	}
	state, waitErr := c.awaitJobEnd(ctx, cl, id)
	res.State = state
	if c.output == "json" {
		if err := writeJSON(c.stdout, res); err != nil {
			return err
		}
	}
	switch {
	case waitErr != nil:
		return waitErr
	case state != rest.JobFinished:
		return fmt.Errorf("job %s ended %s after its savepoint at %s", id, state, res.Location)
	}
	if c.output != "json" {
		fmt.Fprintf(c.stdout, "Job %s has been stopped.\n", id)
	}
	return nil
}

// awaitSavepoint polls the savepoint request res.RequestID of job
// res.JobID until it completes, and fills in its location. A failed
// savepoint is an error, printed as JSON first with --output json.
func (c *cli) awaitSavepoint(ctx context.Context, cl *rest.Client, res *savepointResult) error {
	if res.RequestID == "" {
		return errors.New("the server accepted the savepoint request but returned no request id")
	}
	p := c.newWaitReporter("savepoint of job " + res.JobID)
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		st, err := cl.SavepointStatus(ctx, rest.JobID(res.JobID), res.RequestID)
		if ctx.Err() != nil {
			return fmt.Errorf("stopped waiting for the savepoint of job %s; it goes on (request id %s)", res.JobID, res.RequestID)
		}
		if err != nil {
			return err
		}
		if st.Status.ID == "COMPLETED" {
			switch op := st.Operation; {
			case op == nil:
				return fmt.Errorf("the savepoint of job %s completed without an outcome", res.JobID)
			case op.FailureCause != nil:
				res.FailureCause = op.FailureCause.StackTrace
				if res.FailureCause == "" {
					res.FailureCause = op.FailureCause.Class
				}
				if c.output == "json" {
					if err := writeJSON(c.stdout, res); err != nil {
						return err
					}
				}
				return fmt.Errorf("savepoint of job %s failed: %s", res.JobID, strings.TrimPrefix(res.FailureCause, "flink: "))
			case op.Location == "":
				return fmt.Errorf("the savepoint of job %s completed without a location", res.JobID)
			}
			res.Location = st.Operation.Location
			return nil
		}
		p.tick()
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for the savepoint of job %s; it goes on (request id %s)", res.JobID, res.RequestID)
		case <-t.C:
		}
	}
}

// awaitJobEnd polls a job until it reaches a terminal state and returns
// that state; when ctx ends first, it returns the last state seen and an
// error.
func (c *cli) awaitJobEnd(ctx context.Context, cl *rest.Client, id string) (rest.JobStatus, error) {
	p := c.newWaitReporter("job " + id + " to finish")
	t := time.NewTicker(c.poll)
	defer t.Stop()
	var last rest.JobStatus
	for {
		d, err := cl.Job(ctx, rest.JobID(id))
		if ctx.Err() != nil {
			return last, fmt.Errorf("stopped waiting for job %s to finish; it was %s", id, last)
		}
		if err != nil {
			return last, err
		}
		last = d.State
		if d.State.IsTerminal() {
			return d.State, nil
		}
		p.tick()
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("stopped waiting for job %s to finish; it was %s", id, last)
		case <-t.C:
		}
	}
}

// progressf writes a progress message on stderr, unless the output is
// JSON.
func (c *cli) progressf(format string, a ...any) {
	if c.output != "json" {
		fmt.Fprintf(c.stderr, format, a...)
	}
}

// waitReporter reports a long wait on stderr: one line each progressEvery.
type waitReporter struct {
	c     *cli
	what  string
	start time.Time
	next  time.Duration // elapsed time of the next report
}

func (c *cli) newWaitReporter(what string) *waitReporter {
	return &waitReporter{c: c, what: what, start: time.Now(), next: c.progressEvery}
}

// tick reports the wait if the next report is due.
func (p *waitReporter) tick() {
	every := p.c.progressEvery
	elapsed := time.Since(p.start)
	if every <= 0 || elapsed < p.next {
		return
	}
	p.c.progressf("waiting for %s ... %s\n", p.what, elapsed.Truncate(every))
	p.next = (elapsed/every + 1) * every
}
