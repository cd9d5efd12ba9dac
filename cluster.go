package flink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/network"
)

// ClusterConfig configures an embedded local cluster.
type ClusterConfig struct {
	// TaskManagers is the number of TaskManagers. Default 1.
	TaskManagers int
	// SlotsPerTaskManager is each TaskManager's number of slots. Default:
	// the number of CPUs.
	SlotsPerTaskManager int
	// SlotProfile is the resource profile of every slot.
	SlotProfile ResourceProfile
	// SlotRequestTimeout is how long a job waits for the slots it needs
	// before it fails. Default 5 minutes, as Flink's slot.request.timeout.
	SlotRequestTimeout time.Duration
	// IsolatedTaskManagers gives every TaskManager its own data plane, as
	// if each ran in its own process: records between TaskManagers are
	// serialized and cross loopback TCP. For tests of the network path;
	// default false, where subtasks hand records over as Go values.
	IsolatedTaskManagers bool
	// Network configures each TaskManager's network buffers and, with
	// IsolatedTaskManagers, its listener (ListenAddr defaults to
	// 127.0.0.1:0). Default: network.LocalConfig().
	Network network.Config
	// Codecs holds faster serializers for record types that cross the
	// network (network.Register); nil uses msgpack for all but the built-in
	// fast types. Types may also encode themselves through msgpack's
	// CustomEncoder and CustomDecoder interfaces.
	Codecs *network.Codecs
	// Registry holds the jobs the cluster can run by name. Optional for
	// clusters that only run graphs described in this process.
	Registry *Registry
	// CheckpointStorage keeps checkpoints and savepoints. Default: in
	// memory (Flink's JobManager checkpoint storage), lost with the
	// process; use checkpoint.NewFileStorage or checkpoint.NewS3Storage for
	// state that outlives it.
	CheckpointStorage checkpoint.Storage
	// Logger receives the cluster's logs. Default: discard.
	Logger *slog.Logger
	// TaskCancellationInterval is how long a TaskManager waits for a
	// cancelled subtask to end before it logs it with its stack as stuck,
	// and how often it logs it again (Flink's task.cancellation.interval).
	// Default DefaultTaskCancellationInterval.
	TaskCancellationInterval time.Duration

	// clock, set by tests, is the TaskManagers' clock.
	clock clock
}

// DefaultClusterConfig returns a one-TaskManager cluster with a slot per CPU.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{
		TaskManagers:        1,
		SlotsPerTaskManager: runtime.NumCPU(),
		SlotRequestTimeout:  5 * time.Minute,
		Network:             network.LocalConfig(),
	}
}

// Validate reports the first setting that cannot work.
func (c ClusterConfig) Validate() error {
	switch {
	case c.TaskManagers < 1:
		return fmt.Errorf("%w: %d task managers, want >= 1", ErrInvalidConfig, c.TaskManagers)
	case c.SlotsPerTaskManager < 1:
		return fmt.Errorf("%w: %d slots per task manager, want >= 1", ErrInvalidConfig, c.SlotsPerTaskManager)
	case c.SlotRequestTimeout <= 0:
		return fmt.Errorf("%w: slot request timeout %v, want > 0", ErrInvalidConfig, c.SlotRequestTimeout)
	}
	if err := c.Network.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// LocalCluster is an embedded mini cluster: a Dispatcher, a
// ResourceManager and TaskManagers in this process, connected through their
// gateways. It is safe for concurrent use.
type LocalCluster struct {
	cfg        ClusterConfig
	rpc        *localResolver
	rm         *ResourceManager
	tms        []*TaskManager
	dispatcher *Dispatcher
	envs       []*network.Environment
	closeOnce  sync.Once
}

// NewLocalCluster starts a local cluster. Close it when done.
func NewLocalCluster(cfg ClusterConfig) (*LocalCluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = discardLogger
	}
	if cfg.CheckpointStorage == nil {
		cfg.CheckpointStorage = checkpoint.NewMemStorage()
	}
	c := &LocalCluster{cfg: cfg, rpc: newLocalResolver()}
	const rmAddr = "resourcemanager"
	c.rm = newResourceManager(rmAddr, c.rpc, log)
	c.rpc.bind(rmAddr, c.rm)
	graphs, shuffle := newGraphStore(), newLocalShuffle()
	for i := range cfg.TaskManagers {
		id := ResourceID(fmt.Sprintf("taskmanager-%d", i))
		netCfg := cfg.Network
		if netCfg.Logger == nil {
			netCfg.Logger = log
		}
		if cfg.IsolatedTaskManagers {
			shuffle = newLocalShuffle()
			if netCfg.ListenAddr == "" {
				netCfg.ListenAddr = "127.0.0.1:0"
			}
		}
		env, err := network.NewEnvironment(netCfg)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("flink: task manager %s: %w", id, err)
		}
		c.envs = append(c.envs, env)
		tm := newTaskManager(id, string(id), rmAddr, cfg.SlotsPerTaskManager, cfg.SlotProfile, c.rpc, cfg.Registry, graphs, shuffle, env, cfg.Codecs, log)
		tm.storage = cfg.CheckpointStorage
		if cfg.clock != nil {
			tm.clock = cfg.clock
		}
		tm.startCancellationWatchdog(cfg.TaskCancellationInterval)
		c.rpc.bind(string(id), tm)
		c.tms = append(c.tms, tm)
		tm.startMetricsReporter(time.Second)
		if err := tm.register(context.Background()); err != nil {
			c.Close()
			return nil, err
		}
		tm.startHeartbeats(time.Second, time.Second)
	}
	c.dispatcher = newDispatcher(cfg.Registry, graphs, rmAddr, "", c.rpc, c.rpc, jobManagerConfig{
		slotRequestTimeout: cfg.SlotRequestTimeout,
		storage:            cfg.CheckpointStorage,
		now:                time.Now,
	}, log)
	return c, nil
}

// Dispatcher returns the cluster's Dispatcher, to submit, list and cancel
// jobs.
func (c *LocalCluster) Dispatcher() *Dispatcher { return c.dispatcher }

// ResourceManager returns the cluster's ResourceManager.
func (c *LocalCluster) ResourceManager() *ResourceManager { return c.rm }

// RunGraph runs a JobGraph built in this process and waits for its end.
// Cancelling ctx cancels the job; RunGraph then returns ErrJobCanceled
// wrapped with ctx's error once every subtask stopped.
func (c *LocalCluster) RunGraph(ctx context.Context, g *JobGraph) (*JobResult, error) {
	id, err := c.dispatcher.submitGraph(ctx, g)
	if err != nil {
		return nil, err
	}
	return c.await(ctx, id)
}

// Run runs the registered job name with args and waits for its end, like
// RunGraph.
func (c *LocalCluster) Run(ctx context.Context, s JobSubmission) (*JobResult, error) {
	id, err := c.dispatcher.SubmitJob(ctx, s)
	if err != nil {
		return nil, err
	}
	return c.await(ctx, id)
}

func (c *LocalCluster) await(ctx context.Context, id JobID) (*JobResult, error) {
	r, err := c.dispatcher.JobResult(ctx, id)
	if err != nil {
		// ctx ended: cancel the job and wait for it to stop.
		c.dispatcher.CancelJob(context.Background(), id)
		r, _ = c.dispatcher.JobResult(context.Background(), id)
		if r != nil && r.Status == JobFinished {
			return r, nil
		}
		if r != nil && r.Err != nil && !errors.Is(r.Err, ErrJobCanceled) {
			return r, r.Err
		}
		return r, fmt.Errorf("%w: %w", ErrJobCanceled, ctx.Err())
	}
	return r, r.Err
}

// Close cancels every job, stops the TaskManagers and waits for every
// goroutine the cluster started.
func (c *LocalCluster) Close() error {
	c.closeOnce.Do(func() {
		if c.dispatcher != nil {
			c.dispatcher.close()
		}
		for _, tm := range c.tms {
			tm.close()
		}
		for _, env := range c.envs {
			env.Close()
		}
		c.rm.close()
	})
	return nil
}
