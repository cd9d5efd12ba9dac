// Package rest holds the wire types of a flinkgo cluster's REST API and a
// Go client for it.
//
// The API is shaped like Apache Flink's monitoring REST API: JSON bodies
// with Flink's field names, times in milliseconds since the Unix epoch
// (-1 for a time that has not come yet) and durations in milliseconds.
// openapi.json at the module's root documents every endpoint and body; the
// server that answers them is flink.RESTServer (package
// github.com/flinkgo/flink), which a session cluster or a JobManager node
// runs.
//
// This package imports nothing of the runtime, so a client (such as the
// flink command) links neither Raft, gossip, nor any storage client:
//
//	c, err := rest.NewClient("http://127.0.0.1:8081") // rest.WithSecurity(...) for TLS and tokens
//	...
//	id, err := c.Submit(ctx, rest.SubmitRequest{Name: "wordcount", Parallelism: 2})
//	d, err := c.Job(ctx, id)
//
// The types are plain structs, decoded as they are encoded; they carry no
// behaviour beyond a few helpers (JobStatus.IsTerminal,
// JobDetails.AllRunning).
package rest

// JobID identifies a job: 32 lower-case hex digits, as Flink's JobID.
type JobID string

// JobStatus is the status of a job, as Flink's JobStatus; the root
// package's flink.JobStatus is this type. The API shows a terminal status
// only once the job's result (end time, record counts) is known.
type JobStatus string

// The job statuses.
const (
	JobCreated    JobStatus = "CREATED"
	JobRunning    JobStatus = "RUNNING"
	JobFailing    JobStatus = "FAILING"
	JobFailed     JobStatus = "FAILED"
	JobCancelling JobStatus = "CANCELLING"
	JobCanceled   JobStatus = "CANCELED"
	JobFinished   JobStatus = "FINISHED"
	JobRestarting JobStatus = "RESTARTING"
	// JobSuspended: the JobManager stopped because its node lost the
	// leadership (HA mode); the job goes on under the next leader.
	JobSuspended JobStatus = "SUSPENDED"
)

// IsTerminal reports whether the job can no longer change status in the
// cluster (a SUSPENDED job goes on elsewhere).
func (s JobStatus) IsTerminal() bool { return s == JobFailed || s == JobCanceled || s == JobFinished }
