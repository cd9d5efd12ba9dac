package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/flinkgo/flink/rest"
)

// runJob implements "run <name> [args...] [-p N] [--detached]
// [--fromSavepoint path] [--allowNonRestoredState]".
func (c *cli) runJob(ctx context.Context, cl *rest.Client, args []string) error {
	fs := c.flagSet("run")
	var (
		par                   int
		detached              bool
		savepointPath         string
		allowNonRestoredState bool
	)
	fs.IntVar(&par, "p", 0, "parallelism")
	fs.IntVar(&par, "parallelism", 0, "parallelism")
	fs.BoolVar(&detached, "d", false, "detached")
	fs.BoolVar(&detached, "detached", false, "detached")
	fs.StringVar(&savepointPath, "s", "", "savepoint to start from")
	fs.StringVar(&savepointPath, "fromSavepoint", "", "savepoint to start from")
	fs.BoolVar(&allowNonRestoredState, "n", false, "allow non-restored state")
	fs.BoolVar(&allowNonRestoredState, "allowNonRestoredState", false, "allow non-restored state")
	pos, err := parseInterspersed(fs, args, -1)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("run: missing job name")
	}
	if par < 0 {
		return usagef("run: parallelism %d: want >= 1, or 0 for the job's default", par)
	}
	fs.Visit(func(f *flag.Flag) {
		if (f.Name == "s" || f.Name == "fromSavepoint") && savepointPath == "" {
			err = usagef("run: --fromSavepoint needs a savepoint path")
		}
	})
	if err != nil {
		return err
	}
	if allowNonRestoredState && savepointPath == "" {
		return usagef("run: --allowNonRestoredState needs --fromSavepoint")
	}
	if c.output != "text" && c.output != "json" {
		return usagef("unknown output format %q: want text or json", c.output)
	}
	id, err := cl.Submit(ctx, rest.SubmitRequest{Name: pos[0], Args: pos[1:], Parallelism: par,
		SavepointPath: savepointPath, AllowNonRestoredState: allowNonRestoredState})
	if err != nil {
		return err
	}
	if detached {
		if c.output == "json" {
			return writeJSON(c.stdout, rest.SubmitResponse{JobID: id})
		}
		fmt.Fprintf(c.stdout, "Job has been submitted with JobID %s\n", id)
		return nil
	}
	fmt.Fprintf(c.stderr, "Job has been submitted with JobID %s\n", id)
	return c.await(ctx, cl, id)
}

// await polls a job until it ends, reporting progress on stderr, then
// shows it like info.
func (c *cli) await(ctx context.Context, cl *rest.Client, id rest.JobID) error {
	t := time.NewTicker(c.poll)
	defer t.Stop()
	last := ""
	for {
		d, err := cl.Job(ctx, id)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(c.stderr, "stopped waiting; job %s keeps running (flink cancel %s stops it)\n", id, id)
			return &jobEndedError{id: string(id), state: "unknown: stopped waiting"}
		}
		if err != nil {
			return err
		}
		if p := progress(d); p != last {
			fmt.Fprintf(c.stderr, "%s %s\n", time.Now().Format("15:04:05.000"), p)
			last = p
		}
		if d.State.IsTerminal() {
			return c.show(ctx, cl, d)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(c.stderr, "stopped waiting; job %s keeps running (flink cancel %s stops it)\n", id, id)
			return &jobEndedError{id: string(id), state: "unknown: stopped waiting"}
		case <-t.C:
		}
	}
}

// progress is one line on a job's state and its subtasks.
func progress(d rest.JobDetails) string {
	var total int64
	for _, n := range d.StatusCounts {
		total += n
	}
	return fmt.Sprintf("job %s (%s) %s: %d/%d tasks running, %d finished", d.JID, d.Name, d.State,
		d.StatusCounts["RUNNING"], total, d.StatusCounts["FINISHED"])
}

// list implements "list".
func (c *cli) list(ctx context.Context, cl *rest.Client, args []string) error {
	if len(args) > 0 {
		return usagef("list: unexpected arguments %q", args)
	}
	o, err := cl.JobsOverview(ctx)
	if err != nil {
		return err
	}
	if c.output == "json" {
		return writeJSON(c.stdout, o)
	}
	if len(o.Jobs) == 0 {
		fmt.Fprintln(c.stdout, "No jobs.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB ID\tNAME\tSTATE\tSTART\tDURATION")
	for _, j := range o.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.JID, j.Name, j.State, formatTime(j.StartTime), formatDuration(j.Duration))
	}
	return tw.Flush()
}

// info implements "info <jobid>".
func (c *cli) info(ctx context.Context, cl *rest.Client, args []string) error {
	id, err := oneJobID("info", args)
	if err != nil {
		return err
	}
	d, err := cl.Job(ctx, id)
	if err != nil {
		return err
	}
	if err := c.show(ctx, cl, d); err != nil {
		var je *jobEndedError
		if errors.As(err, &je) {
			return nil // info succeeds whatever the job's state
		}
		return err
	}
	return nil
}

// show prints a job's details; for a job that failed or was cancelled it
// also prints why, and returns a jobEndedError.
func (c *cli) show(ctx context.Context, cl *rest.Client, d rest.JobDetails) error {
	var why string
	if d.State == rest.JobFailed || d.State == rest.JobCanceled {
		if e, err := cl.JobExceptions(ctx, d.JID); err == nil {
			why = e.RootException
		}
	}
	if c.output == "json" {
		if err := writeJSON(c.stdout, d); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Job:\t%s\nName:\t%s\nState:\t%s\nStarted:\t%s\n", d.JID, d.Name, d.State, formatTime(d.StartTime))
		if d.EndTime >= 0 {
			fmt.Fprintf(tw, "Ended:\t%s\n", formatTime(d.EndTime))
		}
		fmt.Fprintf(tw, "Duration:\t%s\nRestarts:\t%d\n", formatDuration(d.Duration), d.Restarts)
		if why != "" {
			fmt.Fprintf(tw, "Cause:\t%s\n", why)
		}
		tw.Flush()
		fmt.Fprintln(c.stdout)
		tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERTEX\tNAME\tPARALLELISM\tSTATUS\tRECORDS IN\tRECORDS OUT")
		for _, v := range d.Vertices {
			in, out := "-", "-"
			if v.Metrics.ReadRecordsComplete {
				in, out = fmt.Sprint(v.Metrics.ReadRecords), fmt.Sprint(v.Metrics.WriteRecords)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", v.ID, v.Name, v.Parallelism, v.Status, in, out)
			for _, o := range v.Operators {
				fmt.Fprintf(tw, "\t  %s\t\t\t%d\t%d\n", o.Name, o.RecordsIn, o.RecordsOut)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if d.State == rest.JobFailed || d.State == rest.JobCanceled {
		if why != "" {
			fmt.Fprintf(c.stderr, "job %s %s: %s\n", d.JID, d.State, why)
		} else {
			fmt.Fprintf(c.stderr, "job %s %s\n", d.JID, d.State)
		}
		return &jobEndedError{id: string(d.JID), state: string(d.State)}
	}
	return nil
}

// cancel implements "cancel <jobid>".
func (c *cli) cancel(ctx context.Context, cl *rest.Client, args []string) error {
	id, err := oneJobID("cancel", args)
	if err != nil {
		return err
	}
	if err := cl.Cancel(ctx, id); err != nil {
		return err
	}
	if c.output == "json" {
		return writeJSON(c.stdout, rest.SubmitResponse{JobID: id})
	}
	fmt.Fprintf(c.stdout, "Cancelled job %s.\n", id)
	return nil
}

func oneJobID(cmd string, args []string) (rest.JobID, error) {
	switch len(args) {
	case 0:
		return "", usagef("%s: missing job id", cmd)
	case 1:
		return rest.JobID(args[0]), nil
	}
	return "", usagef("%s: want one job id, got %q", cmd, args)
}

func formatTime(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05")
}

func formatDuration(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
