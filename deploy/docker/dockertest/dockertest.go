// Package dockertest runs tests against a real Docker Engine, as
// net/http/httptest runs them against a real HTTP server: it builds a Go
// package into an image FROM scratch, creates networks and containers
// labelled with the test run, follows their logs, and removes all of it
// when the test ends, failed or not.
//
// Without a reachable Docker Engine the tests are skipped, except when the
// environment variable CI is "true": there they fail.
package dockertest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// LabelRun labels everything a Run creates with its id.
const LabelRun = "io.flinkgo.test-run"

// cleanupTimeout bounds the removal of a run's resources.
const cleanupTimeout = time.Minute

// Run is one test's use of the Docker Engine.
type Run struct {
	// ID is unique per Run: use it in names and labels.
	ID     string
	Client *client.Client
	t      testing.TB

	mu     sync.Mutex
	extras []string // more "key=value" labels whose containers to remove
}

// New connects to the Docker Engine from the environment (DOCKER_HOST or
// the local socket) and returns a Run whose resources are removed when t
// ends. It skips t when no Engine answers, unless CI=true, where it fails.
func New(t testing.TB) *Run {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = cli.Ping(ctx, client.PingOptions{})
		cancel()
		if err != nil {
			cli.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker Engine not available (required when CI=true): %v", err)
		}
		t.Skipf("Docker Engine not available, skipping (set CI=true to make this a failure): %v", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	r := &Run{ID: "fgtest-" + hex.EncodeToString(b), Client: cli, t: t}
	t.Cleanup(func() {
		r.removeAll()
		cli.Close()
	})
	return r
}

// Context returns a context that ends a minute before the test's deadline
// (go test -timeout), leaving the cleanup its time, or never without one.
// Building an image takes as long as the machine needs (a cold build cache
// compiles the standard library), so a build should be bounded by it, not
// by the timeout of the scenario that follows.
func (r *Run) Context() context.Context {
	d, ok := r.t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return context.Background()
	}
	deadline, ok := d.Deadline()
	if !ok {
		return context.Background()
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-cleanupTimeout))
	r.t.Cleanup(cancel)
	return ctx
}

// Labels returns the labels that mark a resource as this Run's.
func (r *Run) Labels() map[string]string { return map[string]string{LabelRun: r.ID} }

func (r *Run) filter() client.Filters { return make(client.Filters).Add("label", LabelRun+"="+r.ID) }

// RemoveContainersLabelled makes the cleanup also remove the containers
// with the given label ("key=value"), such as those that code under test
// starts.
func (r *Run) RemoveContainersLabelled(label string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extras = append(r.extras, label)
}

// removeAll removes the Run's containers, networks and images.
func (r *Run) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	cli := r.Client
	r.mu.Lock()
	filters := []client.Filters{r.filter()}
	for _, l := range r.extras {
		filters = append(filters, make(client.Filters).Add("label", l))
	}
	r.mu.Unlock()
	var containers []container.Summary
	for _, f := range filters {
		list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			r.t.Logf("dockertest: listing containers: %v", err)
			continue
		}
		containers = append(containers, list.Items...)
	}
	{
		var wg sync.WaitGroup
		for _, c := range containers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
					r.t.Logf("dockertest: removing container %s: %v", c.Names, err)
				}
			}()
		}
		wg.Wait()
	}
	if list, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: r.filter()}); err == nil {
		for _, n := range list.Items {
			if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				r.t.Logf("dockertest: removing network %s: %v", n.Name, err)
			}
		}
	}
	if list, err := cli.ImageList(ctx, client.ImageListOptions{Filters: r.filter()}); err == nil {
		for _, im := range list.Items {
			if _, err := cli.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
				r.t.Logf("dockertest: removing image %v: %v", im.RepoTags, err)
			}
		}
	}
}

// BuildImage builds the Go package pkg (an import path or a directory, as
// for go build) as a static binary named name and an image from
// dockerfile, whose build context holds only that binary; the image is
// tagged "<name>:<run id>", labelled with the Run, and removed when the
// test ends. It returns the tag.
func (r *Run) BuildImage(ctx context.Context, pkg, name, dockerfile string) string {
	r.t.Helper()
	dir := r.t.TempDir()
	bin := filepath.Join(dir, name)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("dockertest: go build %s: %v\n%s", pkg, err, out)
	}
	built := time.Now()
	df, err := os.ReadFile(dockerfile)
	if err != nil {
		r.t.Fatalf("dockertest: %v", err)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		r.t.Fatalf("dockertest: %v", err)
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, df}, {name, 0o755, binary}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: start})
		tw.Write(f.data)
	}
	tw.Close()

	tag := name + ":" + r.ID
	res, err := r.Client.ImageBuild(ctx, &tarball, client.ImageBuildOptions{
		Tags: []string{tag}, Labels: r.Labels(), Remove: true, ForceRemove: true, Dockerfile: "Dockerfile",
	})
	if err != nil {
		r.t.Fatalf("dockertest: building image %s: %v", tag, err)
	}
	defer res.Body.Close()
	if err := buildError(res.Body); err != nil {
		r.t.Fatalf("dockertest: building image %s: %v", tag, err)
	}
	r.t.Logf("dockertest: built %s in %v, image %s in %v", pkg, built.Sub(start).Round(time.Millisecond), tag, time.Since(built).Round(time.Millisecond))
	return tag
}

// buildError reads the build's JSON message stream to its end and returns
// the error it reports, if any.
func buildError(body io.Reader) error {
	dec := json.NewDecoder(body)
	var out strings.Builder
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the build output: %w", err)
		}
		out.WriteString(m.Stream)
		if m.Error != "" {
			return fmt.Errorf("%s\n%s", m.Error, out.String())
		}
	}
}

// Network creates a user-defined bridge network named "<run id>-<name>",
// labelled with the Run, and returns its name.
func (r *Run) Network(ctx context.Context, name string) string {
	r.t.Helper()
	name = r.ID + "-" + name
	if _, err := r.Client.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: r.Labels()}); err != nil {
		r.t.Fatalf("dockertest: creating network %s: %v", name, err)
	}
	return name
}

// Container describes a container to start.
type Container struct {
	// Name is the container's name and host name on Network; the Run's id
	// is prepended: "<run id>-<name>".
	Name    string
	Image   string
	Network string
	Env     []string
	Labels  map[string]string
	// Binds mounts host paths ("/host:/container").
	Binds []string
}

// Start creates and starts a container, labelled with the Run, and returns
// its full name.
func (r *Run) Start(ctx context.Context, c Container) string {
	r.t.Helper()
	name := r.ID + "-" + c.Name
	labels := r.Labels()
	for k, v := range c.Labels {
		labels[k] = v
	}
	opts := client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: c.Image, Hostname: c.Name, Env: c.Env, Labels: labels},
		HostConfig: &container.HostConfig{Binds: c.Binds},
	}
	if c.Network != "" {
		opts.HostConfig.NetworkMode = container.NetworkMode(c.Network)
		opts.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			c.Network: {Aliases: []string{c.Name}},
		}}
	}
	created, err := r.Client.ContainerCreate(ctx, opts)
	if err != nil {
		r.t.Fatalf("dockertest: creating container %s: %v", name, err)
	}
	if _, err := r.Client.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		r.t.Fatalf("dockertest: starting container %s: %v", name, err)
	}
	return name
}

// Kill sends SIGKILL to a container, as docker kill does.
func (r *Run) Kill(ctx context.Context, name string) {
	r.t.Helper()
	if _, err := r.Client.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		r.t.Fatalf("dockertest: killing container %s: %v", name, err)
	}
}

// Running returns the names of the running containers with the given
// label ("key=value"), without the leading slash.
func (r *Run) Running(ctx context.Context, label string) ([]string, error) {
	list, err := r.Client.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", label)})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range list.Items {
		if len(c.Names) > 0 {
			names = append(names, strings.TrimPrefix(c.Names[0], "/"))
		}
	}
	return names, nil
}

// Lines follows a container's standard output and sends each line to the
// returned channel, which is closed when the container's output ends or the
// test ends. Standard error is logged with t.Logf when the test fails.
func (r *Run) Lines(name string) <-chan string {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	res, err := r.Client.ContainerLogs(ctx, name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		cancel()
		r.t.Fatalf("dockertest: following the logs of %s: %v", name, err)
	}
	stdoutR, stdoutW := io.Pipe()
	var stderr lockedBuffer
	lines := make(chan string, 1024)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, err := stdcopy.StdCopy(stdoutW, &stderr, res)
		stdoutW.CloseWithError(err)
	}()
	go func() {
		defer wg.Done()
		defer close(lines)
		sc := bufio.NewScanner(stdoutR)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	r.t.Cleanup(func() {
		cancel()
		res.Close()
		stdoutR.Close()
		wg.Wait()
		if r.t.Failed() {
			r.t.Logf("dockertest: standard error of %s:\n%s", name, stderr.String())
		}
	})
	return lines
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
