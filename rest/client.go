package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flinkgo/flink/security"
)

// DefaultRequestTimeout bounds one request of a Client made without
// WithHTTPClient; waiting for a job to end is many requests.
const DefaultRequestTimeout = 30 * time.Second

// maxAnswer bounds an answer's body: a job's details are a few KiB per
// vertex.
const maxAnswer = 16 << 20

// ErrUnreachable is wrapped by the errors of requests that got no HTTP
// answer: the server cannot be reached, or the connection broke.
var ErrUnreachable = errors.New("rest: cannot reach the cluster")

// APIError is an error answer of the server: its HTTP status and the
// messages of its ErrorBody (or, for an answer that is not one, a
// description of it). Match it with errors.As.
type APIError struct {
	Method, Path string // the request, path relative to the client's address
	StatusCode   int
	Messages     []string
}

// Error joins the server's messages and adds the status, for example
// `flink: job 7f... not found (HTTP 404)`.
func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", strings.Join(e.Messages, "; "), e.StatusCode)
}

// Client calls a cluster's REST API. Each method sends one request, bounded
// by its ctx and by the HTTP client's timeout. It is safe for concurrent
// use; CloseIdleConnections releases its idle connections.
type Client struct {
	base string
	http *http.Client
}

// ClientOption configures a Client; see WithSecurity and WithHTTPClient.
type ClientOption struct {
	apply func(*clientOptions) error
}

type clientOptions struct {
	http *http.Client
	sec  *security.ClientConfig
}

// WithSecurity talks to a cluster with security on: its CA, and a client
// certificate or a bearer token (see security.ClientConfig). The files are
// read by NewClient.
func WithSecurity(sec security.ClientConfig) ClientOption {
	return ClientOption{func(o *clientOptions) error {
		o.sec = &sec
		return nil
	}}
}

// WithHTTPClient sends the requests with hc, as it is configured (its
// transport, TLS settings and timeout), instead of a client of the
// package's own. It cannot be combined with WithSecurity: put the TLS
// settings in hc's transport.
func WithHTTPClient(hc *http.Client) ClientOption {
	return ClientOption{func(o *clientOptions) error {
		if hc == nil {
			return errors.New("rest: WithHTTPClient(nil)")
		}
		o.http = hc
		return nil
	}}
}

// NewClient returns a client of the REST API at addr, a base URL such as
// "http://127.0.0.1:8081" or "https://jobmanager:8081/" (a trailing slash
// is dropped). Without options it talks plain HTTP, or HTTPS trusting the
// system's roots, with DefaultRequestTimeout.
func NewClient(addr string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("rest: invalid address %q: want http://host:port or https://host:port", addr)
	}
	var o clientOptions
	for _, opt := range opts {
		if opt.apply == nil {
			continue // the zero ClientOption changes nothing
		}
		if err := opt.apply(&o); err != nil {
			return nil, err
		}
	}
	hc := o.http
	switch {
	case hc != nil && o.sec != nil:
		return nil, errors.New("rest: WithSecurity and WithHTTPClient together: put the TLS settings in the HTTP client's transport")
	case hc == nil:
		var sec security.ClientConfig
		if o.sec != nil {
			sec = *o.sec
		}
		rt, err := sec.Transport(nil)
		if err != nil {
			return nil, err
		}
		hc = &http.Client{Transport: rt, Timeout: DefaultRequestTimeout}
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), http: hc}, nil
}

// Addr returns the API's base URL, as given to NewClient without a
// trailing slash.
func (c *Client) Addr() string { return c.base }

// CloseIdleConnections closes the connections the client keeps open
// between requests; the client stays usable.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// do sends a request with body encoded as JSON (nil for none) and decodes
// a successful answer into out (nil to skip it). An error answer is an
// *APIError; no answer is ErrUnreachable or ctx's error.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("rest: encoding the body of %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("rest: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w at %s: reading the answer to %s %s: %w", ErrUnreachable, c.base, method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorBody
		if json.Unmarshal(raw, &e) != nil || len(e.Errors) == 0 {
			e.Errors = []string{fmt.Sprintf("%s %s: %s", method, path, strings.TrimSpace(string(raw)))}
		}
		return &APIError{Method: method, Path: path, StatusCode: resp.StatusCode, Messages: e.Errors}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("rest: unexpected answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// get decodes the answer to GET path into a new T.
func get[T any](ctx context.Context, c *Client, path string) (T, error) {
	var v T
	err := c.do(ctx, http.MethodGet, path, nil, &v)
	return v, err
}

// jobPath is /jobs/{id} followed by more path segments, each escaped.
func jobPath(id JobID, more ...string) string {
	p := "/jobs/" + url.PathEscape(string(id))
	for _, m := range more {
		p += "/" + url.PathEscape(m)
	}
	return p
}

// Overview returns the cluster's TaskManagers, slots and job counts
// (GET /overview).
func (c *Client) Overview(ctx context.Context) (Overview, error) {
	return get[Overview](ctx, c, "/overview")
}

// Config returns the dashboard configuration and the cluster's version
// (GET /config).
func (c *Client) Config(ctx context.Context) (DashboardConfig, error) {
	return get[DashboardConfig](ctx, c, "/config")
}

// Jobs returns the id and status of every job (GET /jobs).
func (c *Client) Jobs(ctx context.Context) (JobIDs, error) {
	return get[JobIDs](ctx, c, "/jobs")
}

// JobsOverview returns a summary of every job, oldest first
// (GET /jobs/overview).
func (c *Client) JobsOverview(ctx context.Context) (JobsOverview, error) {
	return get[JobsOverview](ctx, c, "/jobs/overview")
}

// Submit runs the job registered as req.Name and returns its id
// (POST /jobs). The job is accepted, not yet running: poll Job.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) (JobID, error) {
	var resp SubmitResponse
	if err := c.do(ctx, http.MethodPost, "/jobs", req, &resp); err != nil {
		return "", err
	}
	if resp.JobID == "" {
		return "", errors.New("rest: the server accepted the job but returned no job id")
	}
	return resp.JobID, nil
}

// Job returns a job's details: status, times, vertices and their counts
// (GET /jobs/{id}).
func (c *Client) Job(ctx context.Context, id JobID) (JobDetails, error) {
	return get[JobDetails](ctx, c, jobPath(id))
}

// JobExceptions returns why a job failed or was cancelled
// (GET /jobs/{id}/exceptions).
func (c *Client) JobExceptions(ctx context.Context, id JobID) (JobExceptions, error) {
	return get[JobExceptions](ctx, c, jobPath(id, "exceptions"))
}

// JobPlan returns a job's dataflow: its vertices and their inputs
// (GET /jobs/{id}/plan).
func (c *Client) JobPlan(ctx context.Context, id JobID) (JobPlan, error) {
	return get[JobPlan](ctx, c, jobPath(id, "plan"))
}

// Cancel requests the cancellation of a job (PATCH /jobs/{id}?mode=cancel)
// and returns without waiting for it: poll Job until its status is
// terminal.
func (c *Client) Cancel(ctx context.Context, id JobID) error {
	return c.do(ctx, http.MethodPatch, jobPath(id)+"?mode=cancel", nil, nil)
}

// Checkpoints returns a job's checkpoint counts, summary, latest
// checkpoints and history (GET /jobs/{id}/checkpoints).
func (c *Client) Checkpoints(ctx context.Context, id JobID) (Checkpoints, error) {
	return get[Checkpoints](ctx, c, jobPath(id, "checkpoints"))
}

// Checkpoint returns one checkpoint of a job's history
// (GET /jobs/{id}/checkpoints/details/{checkpoint}).
func (c *Client) Checkpoint(ctx context.Context, id JobID, checkpoint int64) (CheckpointDetails, error) {
	return get[CheckpointDetails](ctx, c, jobPath(id, "checkpoints", "details", strconv.FormatInt(checkpoint, 10)))
}

// savepointBody is the body of POST /jobs/{id}/savepoints, as Flink's
// SavepointTriggerRequestBody.
type savepointBody struct {
	TargetDirectory string `json:"target-directory,omitempty"`
	CancelJob       bool   `json:"cancel-job"`
}

// stopBody is the body of POST /jobs/{id}/stop, as Flink's
// StopWithSavepointRequestBody.
type stopBody struct {
	TargetDirectory string `json:"targetDirectory,omitempty"`
}

// TriggerSavepoint starts a savepoint of a running job into a fresh
// directory inside targetDir (empty: the cluster's savepoint directory)
// and, with cancelJob, cancels the job once it is taken
// (POST /jobs/{id}/savepoints). It returns the request id for
// SavepointStatus.
func (c *Client) TriggerSavepoint(ctx context.Context, id JobID, targetDir string, cancelJob bool) (string, error) {
	return c.trigger(ctx, jobPath(id, "savepoints"), savepointBody{TargetDirectory: targetDir, CancelJob: cancelJob})
}

// StopWithSavepoint takes a savepoint of a running job into a fresh
// directory inside targetDir (empty: the cluster's savepoint directory),
// then stops the job (POST /jobs/{id}/stop). It returns the request id for
// SavepointStatus; the job finishes after the savepoint.
func (c *Client) StopWithSavepoint(ctx context.Context, id JobID, targetDir string) (string, error) {
	return c.trigger(ctx, jobPath(id, "stop"), stopBody{TargetDirectory: targetDir})
}

func (c *Client) trigger(ctx context.Context, path string, body any) (string, error) {
	var resp TriggerResponse
	if err := c.do(ctx, http.MethodPost, path, body, &resp); err != nil {
		return "", err
	}
	if resp.RequestID == "" {
		return "", errors.New("rest: the server accepted the savepoint request but returned no request id")
	}
	return resp.RequestID, nil
}

// SavepointStatus returns the state of a savepoint request: IN_PROGRESS,
// or COMPLETED with the savepoint's location or why it failed
// (GET /jobs/{id}/savepoints/{request}).
func (c *Client) SavepointStatus(ctx context.Context, id JobID, request string) (SavepointStatus, error) {
	return get[SavepointStatus](ctx, c, jobPath(id, "savepoints", request))
}

// BackPressure returns a vertex's backpressure per subtask
// (GET /jobs/{id}/vertices/{vertex}/backpressure). The first request
// starts the measurement; Status is "ok" once every subtask is measured.
func (c *Client) BackPressure(ctx context.Context, id JobID, vertex string) (BackPressure, error) {
	return get[BackPressure](ctx, c, jobPath(id, "vertices", vertex, "backpressure"))
}

// Watermarks returns a vertex's input and output watermarks per subtask
// (GET /jobs/{id}/vertices/{vertex}/watermarks).
func (c *Client) Watermarks(ctx context.Context, id JobID, vertex string) ([]Metric, error) {
	return get[[]Metric](ctx, c, jobPath(id, "vertices", vertex, "watermarks"))
}

// TaskManagers returns the registered TaskManagers with their slots,
// memory and network buffers (GET /taskmanagers).
func (c *Client) TaskManagers(ctx context.Context) (TaskManagers, error) {
	return get[TaskManagers](ctx, c, "/taskmanagers")
}

// TaskManager returns one TaskManager (GET /taskmanagers/{id}).
func (c *Client) TaskManager(ctx context.Context, id string) (TaskManager, error) {
	return get[TaskManager](ctx, c, "/taskmanagers/"+url.PathEscape(id))
}
