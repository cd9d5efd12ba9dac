// Package flink is an embeddable implementation of Apache Flink's runtime
// architecture for Go: a typed DataStream API, and the four roles that run a
// job — Dispatcher, JobManager, ResourceManager and TaskManager — inside the
// application's own binary.
//
// A job is described with generic functions over streams:
//
//	env := flink.NewEnv(flink.WithParallelism(2))
//	lines := flink.FromSlice(env, []string{"to be", "or not to be"})
//	words := flink.FlatMap(lines, func(line string, out flink.Collector[string]) error {
//		for _, w := range strings.Fields(line) {
//			out.Collect(w)
//		}
//		return nil
//	})
//	counts := flink.Reduce(
//		flink.KeyBy(flink.Map(words, func(w string) (WordCount, error) { return WordCount{w, 1}, nil }),
//			func(wc WordCount) string { return wc.Word }),
//		func(a, b WordCount) (WordCount, error) { return WordCount{a.Word, a.Count + b.Count}, nil })
//	flink.Print(counts)
//	res, err := env.Execute(ctx)
//
// Execute runs the job on an embedded local cluster and blocks until it
// finishes (bounded sources) or ctx is cancelled (unbounded sources).
//
// Go cannot ship closures between processes, so the binary is the JAR: jobs
// meant to run on a cluster are registered by name in a Registry, and every
// process rebuilds the same JobGraph from the same job function. A
// fingerprint of the JobGraph catches two versions of a binary in one
// cluster.
package flink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/state"
	"github.com/flinkgo/flink/window"
)

// DefaultBufferTimeout is how long a partially filled output buffer may wait
// before it is shipped, as Flink's execution.buffer-timeout.
const DefaultBufferTimeout = 100 * time.Millisecond

// JobConfig is the configuration of one job: what Flink sets on its
// StreamExecutionEnvironment. Build it with DefaultJobConfig or through
// NewEnv's options; Validate checks it.
type JobConfig struct {
	// Name names the job in results, errors and logs.
	Name string
	// Parallelism is the default parallelism of operators that set none.
	// Flink's local environment defaults to the number of CPUs; so do we.
	Parallelism int
	// MaxParallelism is the number of key groups, the upper bound for
	// rescaling keyed state. Default 128.
	MaxParallelism int
	// BufferTimeout bounds how long a record may wait in a partially filled
	// output buffer. 0 ships after every record; a negative value ships only
	// full buffers (and at the end of input). Default 100 ms.
	BufferTimeout time.Duration
	// AutoWatermarkInterval is how often periodic watermark generators
	// emit: Flink's pipeline.auto-watermark-interval. 0 means the default,
	// 200 ms; a negative value turns periodic emission off.
	AutoWatermarkInterval time.Duration
	// Restart decides whether and when a failed job restarts. The zero
	// value (RestartDefault) is Flink's default: NoRestart without
	// checkpointing, ExponentialDelayRestart with it. Any strategy set here,
	// NoRestart included, is the one the job uses.
	Restart RestartStrategy
	// DisableChaining turns operator chaining off for the whole job.
	DisableChaining bool
	// Checkpointing configures periodic checkpoints; off by default, as in
	// Flink. With checkpointing on and Restart unset, failed jobs restart
	// with exponential delay, as Flink's default.
	Checkpointing CheckpointConfig
	// SavepointPath, when set, starts the job from that savepoint (or
	// retained checkpoint), as Flink's execution.savepoint.path: operator
	// state is matched by operator id and redistributed to the job's
	// parallelism. It is a savepoint's directory, as TriggerSavepoint
	// returns it: absolute, or relative to the checkpoint storage's
	// savepoint directory. A path outside the storage's savepoint roots is
	// refused with checkpoint.ErrInvalidName; a missing savepoint is
	// checkpoint.ErrNotFound.
	SavepointPath string
	// AllowNonRestoredState lets a job start from a savepoint holding state
	// for operators it no longer has; that state is skipped.
	AllowNonRestoredState bool
}

// CheckpointingMode says whether checkpoints align barriers (exactly once)
// or not (at least once), as Flink's CheckpointingMode.
type CheckpointingMode = checkpoint.CheckpointingMode

// The checkpointing modes.
const (
	// ExactlyOnce aligns barriers at operators with several input channels:
	// each record is reflected in the state exactly once after a recovery.
	ExactlyOnce = checkpoint.ExactlyOnce
	// AtLeastOnce does not align barriers: no record waits, but records
	// that overtook a barrier are replayed after a recovery.
	AtLeastOnce = checkpoint.AtLeastOnce
)

// CheckpointConfig configures a job's checkpoints, as Flink's
// execution.checkpointing.* options. Zero values mean Flink's defaults.
type CheckpointConfig struct {
	// Interval between periodic checkpoints; 0 disables checkpointing.
	Interval time.Duration
	// Mode is ExactlyOnce (default) or AtLeastOnce.
	Mode CheckpointingMode
	// Timeout after which a pending checkpoint expires. Default 10 minutes.
	Timeout time.Duration
	// MinPause is the least time between a checkpoint's completion and the
	// next trigger. Default 0.
	MinPause time.Duration
	// MaxConcurrent bounds the checkpoints in flight. Default 1.
	MaxConcurrent int
	// TolerableFailures is how many consecutive checkpoint failures the job
	// tolerates before it fails over. Default 0.
	TolerableFailures int
	// Retained is how many completed checkpoints are kept. Default 1.
	Retained int
}

// Enabled reports whether periodic checkpoints are on.
func (c CheckpointConfig) Enabled() bool { return c.Interval > 0 }

// coordinatorConfig converts c for the checkpoint coordinator.
func (c CheckpointConfig) coordinatorConfig() checkpoint.CoordinatorConfig {
	return checkpoint.CoordinatorConfig{
		Interval: c.Interval, Timeout: c.Timeout, MinPauseBetweenCheckpoints: c.MinPause,
		MaxConcurrent: c.MaxConcurrent, TolerableFailures: c.TolerableFailures, MaxRetained: c.Retained,
		Mode: c.Mode,
	}
}

// restartStrategy is the strategy the job restarts with: the one set, or
// Flink's default for the job's checkpointing when Restart is unset.
func (c JobConfig) restartStrategy() RestartStrategy {
	if c.Restart.Kind != RestartDefault {
		return c.Restart
	}
	if c.Checkpointing.Enabled() {
		return ExponentialDelayRestart()
	}
	return NoRestart()
}

// DefaultJobConfig returns Flink's defaults for a local job.
func DefaultJobConfig() JobConfig {
	return JobConfig{
		Name:           "flink job",
		Parallelism:    runtime.NumCPU(),
		MaxParallelism: state.DefaultMaxParallelism,
		BufferTimeout:  DefaultBufferTimeout,
	}
}

// Validate reports the first setting that cannot work.
func (c JobConfig) Validate() error {
	if c.Parallelism < 1 {
		return fmt.Errorf("%w: parallelism %d, want >= 1", ErrInvalidConfig, c.Parallelism)
	}
	if err := state.ValidateMaxParallelism(c.MaxParallelism, c.Parallelism); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if c.Checkpointing.Interval < 0 {
		return fmt.Errorf("%w: checkpoint interval %v, want >= 0 (0 disables checkpoints)", ErrInvalidConfig, c.Checkpointing.Interval)
	}
	if err := c.Checkpointing.coordinatorConfig().Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c.Restart.Validate()
}

// Option configures an Env.
type Option func(*JobConfig)

// WithName sets the job's name.
func WithName(name string) Option { return func(c *JobConfig) { c.Name = name } }

// WithParallelism sets the default parallelism of the job's operators.
func WithParallelism(n int) Option { return func(c *JobConfig) { c.Parallelism = n } }

// WithMaxParallelism sets the number of key groups.
func WithMaxParallelism(n int) Option { return func(c *JobConfig) { c.MaxParallelism = n } }

// WithBufferTimeout sets the buffer timeout; see JobConfig.BufferTimeout.
func WithBufferTimeout(d time.Duration) Option { return func(c *JobConfig) { c.BufferTimeout = d } }

// WithAutoWatermarkInterval sets how often periodic watermark generators
// emit; see JobConfig.AutoWatermarkInterval.
func WithAutoWatermarkInterval(d time.Duration) Option {
	return func(c *JobConfig) { c.AutoWatermarkInterval = d }
}

// watermarkInterval returns the effective periodic watermark interval; 0
// when periodic emission is off.
func (c JobConfig) watermarkInterval() time.Duration {
	switch {
	case c.AutoWatermarkInterval < 0:
		return 0
	case c.AutoWatermarkInterval == 0:
		return window.DefaultWatermarkInterval
	}
	return c.AutoWatermarkInterval
}

// WithRestartStrategy sets the restart strategy; see JobConfig.Restart.
func WithRestartStrategy(s RestartStrategy) Option {
	return func(c *JobConfig) { c.Restart = s }
}

// WithCheckpointing turns on periodic checkpoints every interval, exactly
// once, with Flink's other defaults.
func WithCheckpointing(interval time.Duration) Option {
	return func(c *JobConfig) { c.Checkpointing.Interval = interval }
}

// WithSavepoint starts the job from the savepoint at path; see
// JobConfig.SavepointPath.
func WithSavepoint(path string, allowNonRestoredState bool) Option {
	return func(c *JobConfig) { c.SavepointPath, c.AllowNonRestoredState = path, allowNonRestoredState }
}

// WithCheckpointConfig sets the whole checkpoint configuration.
func WithCheckpointConfig(cc CheckpointConfig) Option {
	return func(c *JobConfig) { c.Checkpointing = cc }
}

// WithoutChaining disables operator chaining.
func WithoutChaining() Option { return func(c *JobConfig) { c.DisableChaining = true } }

// Env collects the transformations of one job, as Flink's
// StreamExecutionEnvironment. It is not safe for concurrent use while the
// job is being described.
type Env struct {
	cfg             JobConfig
	transformations []*transformation
	// err is the first error met while describing the job; it surfaces at
	// Execute or when the JobGraph is built, so the fluent API needs no
	// error returns.
	err error
}

// NewEnv returns an environment with DefaultJobConfig changed by opts.
func NewEnv(opts ...Option) *Env {
	cfg := DefaultJobConfig()
	for _, o := range opts {
		o(&cfg)
	}
	return &Env{cfg: cfg}
}

// Config returns the job's configuration.
func (e *Env) Config() JobConfig { return e.cfg }

// Configure changes the job's configuration; job functions use it to apply
// their arguments.
func (e *Env) Configure(opts ...Option) {
	for _, o := range opts {
		o(&e.cfg)
	}
}

func (e *Env) setErr(err error) {
	if e.err == nil {
		e.err = err
	}
}

// JobGraph turns the described job into its JobGraph: operators chained
// into vertices, edges with partitioners, and a fingerprint.
func (e *Env) JobGraph() (*JobGraph, error) {
	if e.err != nil {
		return nil, e.err
	}
	if err := e.cfg.Validate(); err != nil {
		return nil, err
	}
	return buildJobGraph(e.cfg, e.transformations)
}

// Execute runs the job on a new embedded local cluster with one
// TaskManager that has as many slots as the job needs, and blocks until the
// job finishes, fails, or ctx is cancelled. It returns the job's result with
// per-operator record counts; a failed job returns an error naming the
// operator, subtask and cause (a *TaskError inside).
func (e *Env) Execute(ctx context.Context) (*JobResult, error) {
	g, err := e.JobGraph()
	if err != nil {
		return nil, err
	}
	cfg := DefaultClusterConfig()
	cfg.SlotsPerTaskManager = g.SlotsNeeded()
	c, err := NewLocalCluster(cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.RunGraph(ctx, g)
}

// JobFunc describes a job on env from its arguments. It must be
// deterministic and free of side effects: every process of a cluster calls
// it to rebuild the same JobGraph.
type JobFunc func(env *Env, args []string) error

// Registry maps job names to job functions: the binary is the JAR. A
// Registry is safe for concurrent use.
type Registry struct {
	mu   sync.RWMutex
	jobs map[string]JobFunc
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{jobs: make(map[string]JobFunc)} }

// Register adds a job under name. Registering a name twice is an error.
func (r *Registry) Register(name string, fn JobFunc) error {
	if name == "" || fn == nil {
		return fmt.Errorf("%w: job name and function must be set", ErrInvalidConfig)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.jobs[name]; ok {
		return fmt.Errorf("flink: job %q registered twice", name)
	}
	r.jobs[name] = fn
	return nil
}

// MustRegister is Register that panics on error, for package-level setup in
// main functions.
func (r *Registry) MustRegister(name string, fn JobFunc) {
	if err := r.Register(name, fn); err != nil {
		panic(err)
	}
}

// Names returns the registered job names in order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.jobs))
	for n := range r.jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Fingerprint identifies the registry's jobs: their names and, for each
// job that builds without arguments, its JobGraph's fingerprint at
// parallelism 1. Processes whose registries differ run different binaries
// and must not form one cluster.
func (r *Registry) Fingerprint() string {
	h := sha256.New()
	for _, name := range r.Names() {
		cfg := DefaultJobConfig()
		cfg.Parallelism = 1
		fp := "needs-arguments"
		if g, err := r.Build(name, nil, cfg); err == nil {
			fp = g.Fingerprint
		}
		fmt.Fprintf(h, "%q %s\n", name, fp)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Build runs the job function registered under name with args on a fresh
// environment configured by cfg, and returns the JobGraph.
func (r *Registry) Build(name string, args []string, cfg JobConfig) (*JobGraph, error) {
	r.mu.RLock()
	fn, ok := r.jobs[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q (registered: %v)", ErrUnknownJob, name, r.Names())
	}
	if cfg.Name == "" || cfg.Name == DefaultJobConfig().Name {
		cfg.Name = name
	}
	env := &Env{cfg: cfg}
	if err := callJobFunc(fn, env, args); err != nil {
		return nil, fmt.Errorf("flink: job %q: %w", name, err)
	}
	g, err := env.JobGraph()
	if err != nil {
		return nil, fmt.Errorf("flink: job %q: %w", name, err)
	}
	g.Spec = JobSpec{Name: name, Args: append([]string(nil), args...),
		Parallelism: env.cfg.Parallelism, MaxParallelism: env.cfg.MaxParallelism}
	return g, nil
}

func callJobFunc(fn JobFunc, env *Env, args []string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job function panicked: %v", r)
		}
	}()
	return fn(env, args)
}

// discardLogger is used when no logger is configured.
var discardLogger = slog.New(slog.DiscardHandler)

// ErrInvalidConfig is wrapped by configuration errors.
var ErrInvalidConfig = errors.New("flink: invalid configuration")
