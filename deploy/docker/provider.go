// Package docker runs flinkgo TaskManagers as Docker containers: Provider is
// a flink.ResourceProvider, the container counterpart of
// flink.LocalProcessProvider, as Flink's native Kubernetes integration is
// for pods.
//
// The binary is the JAR: every TaskManager container runs the same image as
// the JobManager (an image FROM scratch around the statically linked
// binary), configured through the environment that flink.NodeConfigFromEnv
// reads. The containers join the cluster's user-defined Docker network and
// register with the JobManager by its address on that network.
//
//	p, err := docker.New(docker.Config{
//		Image:          "flinkgo/microservice:latest",
//		Network:        "flink",
//		JobManagerAddr: "jobmanager:6123",
//		Cluster:        "my-cluster",
//		Slots:          2,
//	})
//	cfg := flink.DefaultNodeConfig(flink.RoleJobManager)
//	cfg.Provider, cfg.IdleTimeout = p, 30*time.Second
//
// A JobManager that itself runs in a container reaches the Docker Engine
// through its socket mounted into the container
// (-v /var/run/docker.sock:/var/run/docker.sock).
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/flinkgo/flink"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Labels the Provider puts on every container it starts; select them with
// `docker ps --filter label=io.flinkgo.cluster=<cluster>`.
const (
	// LabelCluster holds Config.Cluster.
	LabelCluster = "io.flinkgo.cluster"
	// LabelTaskManager holds the TaskManager's ResourceID.
	LabelTaskManager = "io.flinkgo.taskmanager"
	// LabelManagedBy is "flinkgo-docker-provider".
	LabelManagedBy = "io.flinkgo.managed-by"
	managedBy      = "flinkgo-docker-provider"
)

// ErrInvalidConfig is returned (wrapped) by Config.Validate and New.
var ErrInvalidConfig = errors.New("docker: invalid config")

// ErrUnknownTaskManager is returned (wrapped) by StopTaskManager for a
// TaskManager this Provider did not start or already stopped.
var ErrUnknownTaskManager = errors.New("docker: unknown task manager")

// Config configures a Provider.
type Config struct {
	// Image runs the TaskManagers; it must be the JobManager's binary (its
	// Registry fingerprint is checked at registration).
	Image string
	// Network is the user-defined Docker network the containers join; the
	// JobManager must be reachable on it at JobManagerAddr, and the
	// TaskManagers reach each other by container name on it.
	Network string
	// JobManagerAddr is the JobManager's RPC address (host:port) as seen
	// from the network.
	JobManagerAddr string
	// Slots is the number of slots of each TaskManager. Default 1.
	Slots int
	// Cluster names the cluster: it labels every container (LabelCluster)
	// and prefixes the container names ("<cluster>-<resource id>"). Close
	// removes every container with this label, so give each cluster sharing
	// a Docker Engine its own.
	Cluster string
	// RPCPort is the port the TaskManagers' RPC servers listen on inside
	// their containers. Default 6122.
	RPCPort int
	// Env adds environment variables ("KEY=value") to the containers, after
	// the FLINK_* ones the Provider sets (so they can override them).
	Env []string
	// Labels adds labels to the containers.
	Labels map[string]string
	// StopTimeout is how long StopTaskManager waits after SIGTERM before
	// the Engine kills the container. Default 10 s.
	StopTimeout time.Duration
	// Client talks to the Docker Engine; default: a client configured from
	// the environment (DOCKER_HOST, ...; the local socket when unset). The
	// Provider closes only a client it created.
	Client *client.Client
	// Logger receives the Provider's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with the defaults filled in; Image,
// Network, JobManagerAddr and Cluster remain to be set.
func DefaultConfig() Config {
	return Config{
		Slots:       1,                // one slot per container: scale by containers, as Flink on Kubernetes
		RPCPort:     6122,             // Flink's taskmanager.rpc.port
		StopTimeout: 10 * time.Second, // Docker's own default
	}
}

// EnsureDefaults fills in the zero fields that have a default.
func (c *Config) EnsureDefaults() {
	d := DefaultConfig()
	if c.Slots == 0 {
		c.Slots = d.Slots
	}
	if c.RPCPort == 0 {
		c.RPCPort = d.RPCPort
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = d.StopTimeout
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Image == "":
		return bad("no image")
	case c.Network == "":
		return bad("no network")
	case c.JobManagerAddr == "":
		return bad("no job manager address")
	case c.Cluster == "" || sanitizeName(c.Cluster) != c.Cluster:
		return bad("cluster %q: want a non-empty name of letters, digits, '_', '.' and '-'", c.Cluster)
	case c.Slots < 1:
		return bad("%d slots, want >= 1", c.Slots)
	case c.RPCPort < 1 || c.RPCPort > 65535:
		return bad("RPC port %d", c.RPCPort)
	case c.StopTimeout < 0:
		return bad("stop timeout %v", c.StopTimeout)
	}
	return nil
}

// Provider starts TaskManagers as Docker containers. It implements
// flink.ResourceProvider; its methods are safe for concurrent use.
type Provider struct {
	cfg       Config
	cli       *client.Client
	ownClient bool
	log       *slog.Logger

	mu struct {
		sync.Mutex
		containers map[flink.ResourceID]string // resource id -> container id
		closed     bool
	}
}

var _ flink.ResourceProvider = (*Provider)(nil)

// New checks cfg (after EnsureDefaults) and returns a Provider. It does not
// contact the Docker Engine; the first StartTaskManager does.
func New(cfg Config) (*Provider, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, cli: cfg.Client, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.cli == nil {
		cli, err := client.New(client.FromEnv)
		if err != nil {
			return nil, fmt.Errorf("docker: creating the Engine API client: %w", err)
		}
		p.cli, p.ownClient = cli, true
	}
	p.mu.containers = make(map[flink.ResourceID]string)
	return p, nil
}

// ContainerName returns the name of the container that runs TaskManager id:
// "<cluster>-<id>", with characters Docker refuses replaced by '-'. It is
// also the container's host name on the network.
func (p *Provider) ContainerName(id flink.ResourceID) string {
	return sanitizeName(p.cfg.Cluster + "-" + string(id))
}

// StartTaskManager implements flink.ResourceProvider: it creates and starts
// a container of the image that runs a TaskManager with the given id, and
// returns once the Engine started it (the TaskManager registers on its own
// shortly after). It blocks on the Engine API until ctx ends.
func (p *Provider) StartTaskManager(ctx context.Context, id flink.ResourceID) error {
	p.mu.Lock()
	_, dup := p.mu.containers[id]
	closed := p.mu.closed
	p.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("docker: starting task manager %s: provider closed", id)
	case dup:
		return fmt.Errorf("docker: starting task manager %s: already started", id)
	}
	name := p.ContainerName(id)
	rpc := fmt.Sprintf("%s:%d", name, p.cfg.RPCPort)
	env := append([]string{
		"FLINK_ROLES=taskmanager",
		"FLINK_NODE_ID=" + string(id),
		"FLINK_JOBMANAGER_ADDR=" + p.cfg.JobManagerAddr,
		fmt.Sprintf("FLINK_SLOTS=%d", p.cfg.Slots),
		fmt.Sprintf("FLINK_BIND_ADDR=0.0.0.0:%d", p.cfg.RPCPort),
		"FLINK_ADVERTISE_ADDR=" + rpc,
	}, p.cfg.Env...)
	labels := map[string]string{}
	for k, v := range p.cfg.Labels {
		labels[k] = v
	}
	labels[LabelCluster], labels[LabelTaskManager], labels[LabelManagedBy] = p.cfg.Cluster, string(id), managedBy
	stopTimeout := int(p.cfg.StopTimeout / time.Second)

	created, err := p.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:       p.cfg.Image,
			Hostname:    name,
			Env:         env,
			Labels:      labels,
			StopTimeout: &stopTimeout,
		},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(p.cfg.Network)},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			p.cfg.Network: {Aliases: []string{name}},
		}},
	})
	if err != nil {
		return fmt.Errorf("docker: creating container %s for task manager %s: %w", name, id, err)
	}
	if _, err := p.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		p.remove(context.WithoutCancel(ctx), created.ID)
		return fmt.Errorf("docker: starting container %s for task manager %s: %w", name, id, err)
	}
	p.mu.Lock()
	p.mu.containers[id] = created.ID
	p.mu.Unlock()
	p.log.Info("started task manager container", "taskmanager", id, "container", name, "id", shortID(created.ID))
	return nil
}

// StopTaskManager implements flink.ResourceProvider: it stops the
// TaskManager's container (SIGTERM, then SIGKILL after StopTimeout) and
// removes it. It blocks on the Engine API until ctx ends.
func (p *Provider) StopTaskManager(ctx context.Context, id flink.ResourceID) error {
	p.mu.Lock()
	cid, ok := p.mu.containers[id]
	delete(p.mu.containers, id)
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTaskManager, id)
	}
	if err := p.stopAndRemove(ctx, cid); err != nil {
		return fmt.Errorf("docker: stopping task manager %s: %w", id, err)
	}
	p.log.Info("stopped task manager container", "taskmanager", id, "id", shortID(cid))
	return nil
}

// SlotsPerTaskManager implements flink.ResourceProvider.
func (p *Provider) SlotsPerTaskManager() int { return p.cfg.Slots }

// Running returns the ids of the TaskManagers this Provider started and has
// not stopped, sorted.
func (p *Provider) Running() []flink.ResourceID {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]flink.ResourceID, 0, len(p.mu.containers))
	for id := range p.mu.containers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Close implements flink.ResourceProvider: it stops and removes every
// container labelled with the cluster (those it started, and any left by an
// earlier Provider of the same cluster), then closes the client it created.
// Later calls do nothing.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return nil
	}
	p.mu.closed = true
	known := p.mu.containers
	p.mu.containers = map[flink.ResourceID]string{}
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StopTimeout+30*time.Second)
	defer cancel()
	ids := map[string]bool{}
	for _, cid := range known {
		ids[cid] = true
	}
	list, err := p.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelCluster+"="+p.cfg.Cluster).Add("label", LabelManagedBy+"="+managedBy),
	})
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("docker: listing the cluster's containers: %w", err))
	} else {
		for _, c := range list.Items {
			ids[c.ID] = true
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for cid := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.stopAndRemove(ctx, cid); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("docker: removing container %s: %w", shortID(cid), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if p.ownClient {
		p.cli.Close()
	}
	return errors.Join(errs...)
}

// stopAndRemove stops a container gracefully, then removes it.
func (p *Provider) stopAndRemove(ctx context.Context, cid string) error {
	timeout := int(p.cfg.StopTimeout / time.Second)
	if _, err := p.cli.ContainerStop(ctx, cid, client.ContainerStopOptions{Timeout: &timeout}); err != nil && !isNotFound(err) {
		p.log.Warn("stopping container failed; removing it by force", "id", shortID(cid), "err", err)
	}
	return p.remove(ctx, cid)
}

// remove removes a container by force; one already gone is no error.
func (p *Provider) remove(ctx context.Context, cid string) error {
	if _, err := p.cli.ContainerRemove(ctx, cid, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// sanitizeName maps s to a valid container name: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '-')
		if !ok {
			b[i] = '-'
		}
	}
	return string(b)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
