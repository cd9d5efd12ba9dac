package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/security"
)

// requestTimeout bounds one REST call; waiting for a job is many calls.
const requestTimeout = 30 * time.Second

// client calls a cluster's REST API.
type client struct {
	base string
	http *http.Client
}

// newClient returns a client of the REST API at base, with the TLS
// settings and bearer token of sec, if any.
func newClient(base string, sec security.ClientConfig) (*client, error) {
	rt, err := sec.Transport(nil)
	if err != nil {
		return nil, err
	}
	return &client{base: base, http: &http.Client{Transport: rt, Timeout: requestTimeout}}, nil
}

// close drops the client's idle connections.
func (c *client) close() { c.http.CloseIdleConnections() }

// unreachableError: no HTTP answer from the server.
type unreachableError struct {
	addr string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the cluster at %s: %v", e.addr, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// apiError is an error answer of the server.
type apiError struct {
	status int
	msgs   []string
}

func (e *apiError) Error() string {
	msgs := make([]string, len(e.msgs))
	for i, m := range e.msgs {
		msgs[i] = strings.TrimPrefix(m, "flink: ") // the CLI prefixes its own
	}
	return fmt.Sprintf("%s (HTTP %d)", strings.Join(msgs, "; "), e.status)
}

// do sends a request with body encoded as JSON (nil for none), decodes a
// successful answer into out (nil to skip) and returns the raw answer.
func (c *client) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &unreachableError{addr: c.base, err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, &unreachableError{addr: c.base, err: fmt.Errorf("reading the answer to %s %s: %w", method, path, err)}
	}
	if resp.StatusCode/100 != 2 {
		var e flink.RESTError
		if json.Unmarshal(raw, &e) != nil || len(e.Errors) == 0 {
			e.Errors = []string{fmt.Sprintf("%s %s: %s", method, path, strings.TrimSpace(string(raw)))}
		}
		return raw, &apiError{status: resp.StatusCode, msgs: e.Errors}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("unexpected answer to %s %s: %w", method, path, err)
		}
	}
	return raw, nil
}

func (c *client) submit(ctx context.Context, req flink.RESTSubmitRequest) (flink.JobID, error) {
	var resp flink.RESTSubmitResponse
	if _, err := c.do(ctx, http.MethodPost, "/jobs", req, &resp); err != nil {
		return "", err
	}
	if resp.JobID == "" {
		return "", errors.New("the server accepted the job but returned no job id")
	}
	return resp.JobID, nil
}

func (c *client) job(ctx context.Context, id string) (flink.RESTJobDetails, []byte, error) {
	var d flink.RESTJobDetails
	raw, err := c.do(ctx, http.MethodGet, "/jobs/"+id, nil, &d)
	return d, raw, err
}

func (c *client) exceptions(ctx context.Context, id string) (flink.RESTJobExceptions, error) {
	var e flink.RESTJobExceptions
	_, err := c.do(ctx, http.MethodGet, "/jobs/"+id+"/exceptions", nil, &e)
	return e, err
}
