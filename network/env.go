package network

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"
)

// Config configures the network Environment of one TaskManager.
type Config struct {
	// NumBuffers and BufferSize size the TaskManager's NetworkBufferPool.
	NumBuffers int
	BufferSize int
	// ListenAddr is the data-plane listen address; empty disables TCP (in-process use only).
	ListenAddr string
	// BuffersPerSubpartition and FloatingBuffersPerPartition bound a result partition's pool:
	// min = subpartitions+1, max = subpartitions*BuffersPerSubpartition + FloatingBuffersPerPartition.
	BuffersPerSubpartition      int
	FloatingBuffersPerPartition int
	// ExclusiveBuffersPerChannel and FloatingBuffersPerGate are the credit-based flow control
	// buffers of input gates.
	ExclusiveBuffersPerChannel int
	FloatingBuffersPerGate     int
	// PartitionRequestTimeout bounds how long remote channels retry a partition their producer did
	// not register yet.
	PartitionRequestTimeout time.Duration
	// FrameTimeout and MaxConnections bound what a consumer, or a
	// stranger, can cost the data port: see ConnectionManagerConfig. Zero
	// means the defaults (30 s, 1024).
	FrameTimeout   time.Duration
	MaxConnections int
	// TLS, if set, secures the data connections: see
	// ConnectionManagerConfig.TLS.
	TLS *tls.Config
	// Logger receives connection-level events. Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns Flink's defaults: 2048 buffers of 32 KiB (64 MiB), 2 buffers per
// subpartition plus 8 floating per partition, 2 exclusive buffers per remote channel plus 8
// floating per gate, listening on 127.0.0.1 on any free port.
func DefaultConfig() Config {
	return Config{
		NumBuffers:                  DefaultNumBuffers,
		BufferSize:                  DefaultBufferSize,
		ListenAddr:                  "127.0.0.1:0",
		BuffersPerSubpartition:      2,
		FloatingBuffersPerPartition: 8,
		ExclusiveBuffersPerChannel:  DefaultExclusiveBuffersPerChannel,
		FloatingBuffersPerGate:      DefaultFloatingBuffersPerGate,
		PartitionRequestTimeout:     30 * time.Second,
	}
}

// LocalConfig returns a preset for an embedded single-process run: no listener (every exchange is
// local, so no socket is opened) and 256 buffers (8 MiB), enough for small jobs and tests.
func LocalConfig() Config {
	c := DefaultConfig()
	c.ListenAddr = ""
	c.NumBuffers = 256
	return c
}

// Validate checks the configuration without side effects.
func (c Config) Validate() error {
	switch {
	case c.NumBuffers <= 0:
		return fmt.Errorf("network: NumBuffers must be positive, got %d", c.NumBuffers)
	case c.BufferSize < 64:
		return fmt.Errorf("network: BufferSize must be at least 64, got %d", c.BufferSize)
	case c.BuffersPerSubpartition < 1:
		return fmt.Errorf("network: BuffersPerSubpartition must be at least 1, got %d", c.BuffersPerSubpartition)
	case c.FloatingBuffersPerPartition < 0 || c.FloatingBuffersPerGate < 0:
		return fmt.Errorf("network: floating buffer counts must not be negative")
	case c.ExclusiveBuffersPerChannel < 1:
		return fmt.Errorf("network: ExclusiveBuffersPerChannel must be at least 1, got %d", c.ExclusiveBuffersPerChannel)
	}
	return nil
}

// Environment bundles the data plane of one TaskManager: its NetworkBufferPool, its
// ResultPartitionManager and (with a ListenAddr) its ConnectionManager. Its methods are safe for
// concurrent use.
type Environment struct {
	cfg Config
	// Buffers is the TaskManager's buffer pool.
	Buffers *NetworkBufferPool
	// Partitions is the registry of the partitions produced here.
	Partitions *ResultPartitionManager
	// Connections carries remote exchanges; nil without a ListenAddr.
	Connections *ConnectionManager
}

// NewEnvironment validates cfg and starts the TaskManager's data plane (listening if configured).
func NewEnvironment(cfg Config) (*Environment, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pool, err := NewNetworkBufferPool(cfg.NumBuffers, cfg.BufferSize)
	if err != nil {
		return nil, err
	}
	e := &Environment{cfg: cfg, Buffers: pool, Partitions: NewResultPartitionManager()}
	if cfg.ListenAddr != "" {
		cc := DefaultConnectionManagerConfig()
		cc.ListenAddr = cfg.ListenAddr
		cc.MaxBufferSize = cfg.BufferSize
		cc.PartitionRequestTimeout = cfg.PartitionRequestTimeout
		cc.FrameTimeout, cc.MaxConnections = cfg.FrameTimeout, cfg.MaxConnections
		cc.TLS = cfg.TLS
		cc.Logger = cfg.Logger
		e.Connections, err = NewConnectionManager(cc, e.Partitions)
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Addr returns the data address other TaskManagers use to reach this one ("" without a listener).
func (e *Environment) Addr() string {
	if e.Connections == nil {
		return ""
	}
	return e.Connections.Addr()
}

// NewResultPartition creates a partition with numSubpartitions subpartitions and its buffer pool,
// and registers it. It fails with ErrInsufficientBuffers when the pool's minimum cannot be met.
func (e *Environment) NewResultPartition(id ResultPartitionID, numSubpartitions int) (*ResultPartition, error) {
	lo, hi := PartitionPoolSize(numSubpartitions, e.cfg.BuffersPerSubpartition, e.cfg.FloatingBuffersPerPartition)
	pool, err := e.Buffers.CreateLocalBufferPool(lo, hi)
	if err != nil {
		return nil, fmt.Errorf("network: result partition %s: %w", id, err)
	}
	p, err := NewResultPartition(id, numSubpartitions, pool)
	if err != nil {
		pool.Destroy()
		return nil, err
	}
	if err := e.Partitions.Register(p); err != nil {
		p.Release(err)
		return nil, err
	}
	return p, nil
}

// NewInputGate creates a gate over the given channels with the environment's buffer settings.
func (e *Environment) NewInputGate(channels []InputChannelSpec) (*InputGate, error) {
	return NewInputGate(InputGateConfig{
		Channels:                   channels,
		Buffers:                    e.Buffers,
		Partitions:                 e.Partitions,
		Connections:                e.Connections,
		ExclusiveBuffersPerChannel: e.cfg.ExclusiveBuffersPerChannel,
		FloatingBuffers:            e.cfg.FloatingBuffersPerGate,
	})
}

// Close closes the connection manager (waiting for its goroutines), releases all partitions and
// closes the buffer pool. Gates and writers are closed by their tasks. Close is idempotent.
func (e *Environment) Close() error {
	if e.Connections != nil {
		e.Connections.Close()
	}
	e.Partitions.Close()
	e.Buffers.Close()
	return nil
}
