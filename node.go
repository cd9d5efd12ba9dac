package flink

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/ha"
	"github.com/flinkgo/flink/internal/rpc"
	"github.com/flinkgo/flink/network"
	"github.com/flinkgo/flink/security"
)

// Role is a set of roles a Node plays.
type Role uint8

// The roles. A JobManager node hosts the Dispatcher, the ResourceManager and
// the JobManagers of submitted jobs.
const (
	RoleJobManager Role = 1 << iota
	RoleTaskManager
)

// String renders roles as "jobmanager,taskmanager".
func (r Role) String() string {
	var parts []string
	if r&RoleJobManager != 0 {
		parts = append(parts, "jobmanager")
	}
	if r&RoleTaskManager != 0 {
		parts = append(parts, "taskmanager")
	}
	return strings.Join(parts, ",")
}

// ParseRoles parses "jobmanager", "taskmanager" or both, comma separated.
func ParseRoles(s string) (Role, error) {
	var r Role
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(strings.ToLower(p)) {
		case "jobmanager", "jm":
			r |= RoleJobManager
		case "taskmanager", "tm":
			r |= RoleTaskManager
		case "":
		default:
			return 0, fmt.Errorf("%w: unknown role %q (want jobmanager, taskmanager)", ErrInvalidConfig, p)
		}
	}
	if r == 0 {
		return 0, fmt.Errorf("%w: no role in %q", ErrInvalidConfig, s)
	}
	return r, nil
}

// NodeConfig configures one process of a cluster.
type NodeConfig struct {
	// ID names the node; TaskManagers use it as their ResourceID. Default:
	// the host name and the RPC port.
	ID    string
	Roles Role
	// BindAddr is the RPC listen address. Default 127.0.0.1:6123 for a
	// JobManager (Flink's jobmanager.rpc.port), 127.0.0.1:0 otherwise.
	BindAddr string
	// AdvertiseAddr is the RPC address other nodes use; default: the bound
	// address.
	AdvertiseAddr string
	// JobManagerAddr is the RPC address (host:port) of the JobManager node
	// that TaskManagers register with. A node with both roles uses itself;
	// with GossipAddr set and this empty, a TaskManager finds the
	// JobManager in the membership. With HA it may list every JobManager
	// node, comma separated: TaskManagers follow whichever leads, and
	// followers redirect REST calls to it.
	JobManagerAddr string
	// GossipAddr is the memberlist address (host:port) the node gossips on;
	// empty runs without membership. Peers are gossip addresses to join.
	// Every node publishes its id, roles, addresses, slots and registry
	// fingerprint; nodes of another binary are refused, and a TaskManager
	// that memberlist declares dead is lost at once.
	GossipAddr string
	Peers      []string
	// RESTAddr is where a JobManager node serves the REST API (the flink
	// CLI's endpoint); empty serves none. Flink's port is 8081. With HA,
	// followers redirect to the leader's (its host taken from the RPC
	// address when it listens on every interface).
	RESTAddr string
	// Slots is the TaskManager's number of slots. Default: the number of
	// CPUs.
	Slots int
	// Network configures the TaskManager's data plane; its ListenAddr
	// defaults to the RPC host with a free port.
	Network network.Config
	// DataDir holds the node's files. Default: a directory in os.TempDir.
	DataDir string
	// HeartbeatInterval and HeartbeatTimeout: TaskManagers send a heartbeat
	// every interval; one silent for the timeout is declared lost. A
	// JobManager asks the TaskManagers that run its subtasks for their
	// deployment reports at the same pace, and gives up one that answered
	// none for the timeout. Defaults 500 ms and 2 s, so a killed
	// TaskManager is detected within about 2.5 s (Flink's defaults are 10 s
	// and 50 s).
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// TaskCancellationInterval is how long the TaskManager waits for a
	// cancelled subtask to end before it logs it with its stack as stuck,
	// and how often it logs it again (Flink's task.cancellation.interval).
	// Default DefaultTaskCancellationInterval.
	TaskCancellationInterval time.Duration
	// SlotRequestTimeout: see ClusterConfig.
	SlotRequestTimeout time.Duration
	// Provider starts TaskManagers when slots are short and stops them when
	// idle for IdleTimeout; nil is a standalone cluster, which waits for
	// TaskManagers to join. Used by JobManager nodes.
	Provider    ResourceProvider
	IdleTimeout time.Duration
	// CheckpointDir is the directory (shared by every node, such as a
	// network file system) where checkpoints and savepoints are kept;
	// CheckpointStorage, if set, is used instead (for example S3). With
	// neither, the cluster runs jobs without checkpoints.
	CheckpointDir     string
	CheckpointStorage checkpoint.Storage
	// SavepointRoots are the directories savepoints may be written into and
	// restored from, with CheckpointDir (see
	// checkpoint.FileStorageConfig.SavepointRoots); default: CheckpointDir.
	// Set the same on every node.
	SavepointRoots []string
	// Registry holds the jobs this binary can run.
	Registry *Registry
	// Codecs: see ClusterConfig.
	Codecs *network.Codecs
	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger
	// RPCLimits and RESTLimits bound what a peer can cost the node's RPC
	// and REST servers (see limits.go); the data port's limits are in
	// Network. Zero fields take their defaults.
	RPCLimits  RPCLimits
	RESTLimits RESTLimits
	// MetricsHandler, if set, makes the handler of the REST API's
	// GET /metrics for a JobManager node (for the leader's Dispatcher with
	// HA), from the served cluster's metrics and the node's logger: for
	// example prometheus.Handler of package
	// github.com/flinkgo/flink/metrics/prometheus. Default: none, and
	// GET /metrics answers 404.
	MetricsHandler func(MetricsSource, *slog.Logger) http.Handler

	// HA turns on high availability (see hanode.go): the JobManager nodes
	// form a Raft group, whose leader runs the Dispatcher, the
	// ResourceManager and the JobManagers; the others stand by and take
	// over the jobs, from their latest completed checkpoints, when it
	// fails. TaskManagers follow whichever node leads. Every node of the
	// cluster sets it. Without HA no Raft runs.
	HA bool
	// RaftAddr is the address (host:port, dialable by the other
	// JobManager nodes) of the node's Raft transport; required for a
	// JobManager node with HA.
	RaftAddr string
	// RaftDir holds the node's Raft log and snapshots; it must survive
	// restarts of the node. Default: DataDir/raft, or a directory named
	// after the node id in os.TempDir.
	RaftDir string
	// RaftPeers bootstraps a new Raft group: every JobManager node as
	// "id=host:port" (its ID and RaftAddr), this node included, the same
	// list on every node. Empty with RaftBootstrapExpect set bootstraps
	// from the membership instead; empty without it joins a running group
	// (its leader adds the nodes it sees in the membership as voters).
	RaftPeers []string
	// RaftBootstrapExpect bootstraps a new group from the membership once
	// this many JobManager nodes (this one included) gossip their Raft
	// addresses. Needs GossipAddr.
	RaftBootstrapExpect int
	// Security is the cluster's one switch for authentication and
	// encryption (package security): mutual TLS for RPC, data exchange and
	// Raft, an encrypted gossip keyring, and REST over TLS with client
	// certificates or bearer tokens. Every node of a cluster turns it on
	// with the same CA and keyring. With it on and ID empty, the node's id
	// is its certificate's name; a TaskManager's id must be a name its
	// certificate carries. Off by default.
	Security security.Config

	// Raft tunes the Raft group's timeouts; nil uses ha.DefaultRaftConfig
	// (ha.LocalRaftConfig on loopback). Its NodeID, DataDir, addresses,
	// bootstrap list, fingerprint and logger are set by the node.
	Raft *ha.RaftConfig
}

// DefaultNodeConfig returns a configuration for the given roles.
func DefaultNodeConfig(roles Role) NodeConfig {
	bind := "127.0.0.1:0"
	if roles&RoleJobManager != 0 {
		bind = "127.0.0.1:6123"
	}
	net := network.DefaultConfig()
	net.ListenAddr = ""
	return NodeConfig{
		Roles:              roles,
		BindAddr:           bind,
		Slots:              runtime.NumCPU(),
		Network:            net,
		HeartbeatInterval:  500 * time.Millisecond,
		HeartbeatTimeout:   2 * time.Second,
		SlotRequestTimeout: 5 * time.Minute,
		IdleTimeout:        30 * time.Second,
		RPCLimits:          DefaultRPCLimits(),
		RESTLimits:         DefaultRESTLimits(),
	}
}

// Validate reports the first setting that cannot work.
func (c NodeConfig) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: node: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Roles == 0 || c.Roles&^(RoleJobManager|RoleTaskManager) != 0:
		return bad("roles %d", c.Roles)
	case c.BindAddr == "":
		return bad("no bind address")
	case c.Roles == RoleTaskManager && c.JobManagerAddr == "" && c.GossipAddr == "":
		return bad("a task manager needs the job manager's address or a gossip address to find it")
	case c.Roles&RoleTaskManager != 0 && c.Slots < 1:
		return bad("%d slots, want >= 1", c.Slots)
	case c.HeartbeatInterval <= 0 || c.HeartbeatTimeout <= c.HeartbeatInterval:
		return bad("heartbeat interval %v and timeout %v: want 0 < interval < timeout", c.HeartbeatInterval, c.HeartbeatTimeout)
	case c.SlotRequestTimeout <= 0:
		return bad("slot request timeout %v", c.SlotRequestTimeout)
	case c.Registry == nil:
		return bad("no job registry")
	case c.CheckpointStorage == nil && strings.Contains(c.CheckpointDir, "://"):
		// A URL would silently become a local directory named after its
		// scheme.
		return bad("checkpoint directory %q is a URL, want a directory path; for an object store set CheckpointStorage "+
			"(for S3: checkpoint.NewS3Storage)", c.CheckpointDir)
	}
	if err := c.validateHA(); err != nil {
		return bad("%v", err)
	}
	if err := c.Security.Validate(); err != nil {
		return bad("%v", err)
	}
	if err := cmp.Or(c.RPCLimits.Validate(), c.RESTLimits.Validate()); err != nil {
		return err
	}
	if c.Roles&RoleTaskManager != 0 {
		if err := c.Network.Validate(); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// NodeConfigFromEnv reads the usual container settings into cfg from the
// environment, then from command-line flags in args (flags win):
//
//	FLINK_ROLES / -roles                 jobmanager,taskmanager
//	FLINK_NODE_ID / -id                  node id
//	FLINK_BIND_ADDR / -bind              RPC listen address
//	FLINK_ADVERTISE_ADDR / -advertise    RPC address for other nodes
//	FLINK_JOBMANAGER_ADDR / -jobmanager  the JobManager's RPC address
//	FLINK_DATA_ADDR / -data              data-plane listen address
//	FLINK_SLOTS / -slots                 task slots
//	FLINK_DATA_DIR / -dir                data directory
//	FLINK_CHECKPOINT_DIR / -checkpoints  checkpoint and savepoint directory
//	FLINK_SAVEPOINT_ROOTS / -savepoint-roots  dir,... savepoints may use
//	FLINK_GOSSIP_ADDR / -gossip          memberlist address
//	FLINK_PEERS / -peers                 gossip addresses to join
//	FLINK_REST_ADDR / -rest              REST API listen address
//	FLINK_HA / -ha                       true: high availability
//	FLINK_RAFT_ADDR / -raft              Raft transport address
//	FLINK_RAFT_DIR / -raft-dir           Raft log and snapshot directory
//	FLINK_RAFT_PEERS / -raft-peers       id=host:port,... bootstrap list
//	FLINK_RAFT_BOOTSTRAP_EXPECT / -raft-expect  bootstrap from gossip
//	FLINK_RPC_MAX_CONNECTIONS, FLINK_RPC_FRAME_TIMEOUT, FLINK_RPC_IDLE_TIMEOUT,
//	FLINK_DATA_MAX_CONNECTIONS, FLINK_DATA_FRAME_TIMEOUT,
//	FLINK_REST_MAX_CONNECTIONS / -rpc-max-connections, ...  server limits
//	FLINK_SECURITY / -security           true: the security switch
//	FLINK_SECURITY_DIR / -security-dir   files as "flink security gen-dev-certs"
//	                                     writes them (ca.pem, ID.pem, ID-key.pem,
//	                                     gossip.keyring, rest.token); turns it on
//	FLINK_SECURITY_CA / -security-ca     cluster CA certificate (PEM)
//	FLINK_SECURITY_CERT / -security-cert node certificate (PEM)
//	FLINK_SECURITY_KEY / -security-key   node private key (PEM)
//	FLINK_SECURITY_GOSSIP_KEYRING / -security-gossip-keyring  gossip keys
//	FLINK_SECURITY_TOKEN_FILE / -security-token-file  REST bearer tokens
//
// It returns the arguments left after the flags.
func NodeConfigFromEnv(cfg NodeConfig, args []string) (NodeConfig, []string, error) {
	env := func(k, def string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	roles := fs.String("roles", env("FLINK_ROLES", cfg.Roles.String()), "roles: jobmanager,taskmanager")
	fs.StringVar(&cfg.ID, "id", env("FLINK_NODE_ID", cfg.ID), "node id")
	fs.StringVar(&cfg.BindAddr, "bind", env("FLINK_BIND_ADDR", cfg.BindAddr), "RPC listen address")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise", env("FLINK_ADVERTISE_ADDR", cfg.AdvertiseAddr), "RPC address for other nodes")
	fs.StringVar(&cfg.JobManagerAddr, "jobmanager", env("FLINK_JOBMANAGER_ADDR", cfg.JobManagerAddr), "job manager RPC address")
	fs.StringVar(&cfg.Network.ListenAddr, "data", env("FLINK_DATA_ADDR", cfg.Network.ListenAddr), "data-plane listen address")
	fs.StringVar(&cfg.DataDir, "dir", env("FLINK_DATA_DIR", cfg.DataDir), "data directory")
	fs.StringVar(&cfg.CheckpointDir, "checkpoints", env("FLINK_CHECKPOINT_DIR", cfg.CheckpointDir), "checkpoint and savepoint directory")
	fs.StringVar(&cfg.GossipAddr, "gossip", env("FLINK_GOSSIP_ADDR", cfg.GossipAddr), "memberlist address")
	fs.StringVar(&cfg.RESTAddr, "rest", env("FLINK_REST_ADDR", cfg.RESTAddr), "REST API listen address")
	peers := fs.String("peers", env("FLINK_PEERS", strings.Join(cfg.Peers, ",")), "gossip addresses to join, comma separated")
	spRoots := fs.String("savepoint-roots", env("FLINK_SAVEPOINT_ROOTS", strings.Join(cfg.SavepointRoots, ",")), "directories savepoints may be written into and restored from, comma separated")
	haOn, err := strconv.ParseBool(env("FLINK_HA", strconv.FormatBool(cfg.HA)))
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: FLINK_HA: %v", ErrInvalidConfig, err)
	}
	fs.BoolVar(&cfg.HA, "ha", haOn, "high availability: JobManager nodes form a Raft group")
	fs.StringVar(&cfg.RaftAddr, "raft", env("FLINK_RAFT_ADDR", cfg.RaftAddr), "Raft transport address (HA)")
	fs.StringVar(&cfg.RaftDir, "raft-dir", env("FLINK_RAFT_DIR", cfg.RaftDir), "Raft log and snapshot directory (HA)")
	raftPeers := fs.String("raft-peers", env("FLINK_RAFT_PEERS", strings.Join(cfg.RaftPeers, ",")), "Raft bootstrap peers id=host:port, comma separated (HA)")
	expect, err := strconv.Atoi(env("FLINK_RAFT_BOOTSTRAP_EXPECT", strconv.Itoa(cfg.RaftBootstrapExpect)))
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: FLINK_RAFT_BOOTSTRAP_EXPECT: %v", ErrInvalidConfig, err)
	}
	fs.IntVar(&cfg.RaftBootstrapExpect, "raft-expect", expect, "bootstrap the Raft group from the membership once this many JobManager nodes gossip (HA)")
	secOn, err := strconv.ParseBool(env("FLINK_SECURITY", strconv.FormatBool(cfg.Security.Enabled)))
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: FLINK_SECURITY: %v", ErrInvalidConfig, err)
	}
	fs.BoolVar(&cfg.Security.Enabled, "security", secOn, "turn on mutual TLS, gossip encryption and REST authentication")
	secDir := fs.String("security-dir", env("FLINK_SECURITY_DIR", ""), "directory of the security files (turns security on)")
	fs.StringVar(&cfg.Security.CAFile, "security-ca", env("FLINK_SECURITY_CA", cfg.Security.CAFile), "cluster CA certificate (PEM)")
	fs.StringVar(&cfg.Security.CertFile, "security-cert", env("FLINK_SECURITY_CERT", cfg.Security.CertFile), "node certificate (PEM)")
	fs.StringVar(&cfg.Security.KeyFile, "security-key", env("FLINK_SECURITY_KEY", cfg.Security.KeyFile), "node private key (PEM)")
	fs.StringVar(&cfg.Security.GossipKeyringFile, "security-gossip-keyring", env("FLINK_SECURITY_GOSSIP_KEYRING", cfg.Security.GossipKeyringFile), "gossip keyring file")
	fs.StringVar(&cfg.Security.TokenFile, "security-token-file", env("FLINK_SECURITY_TOKEN_FILE", cfg.Security.TokenFile), "REST bearer token file")
	slots, err := strconv.Atoi(env("FLINK_SLOTS", strconv.Itoa(cfg.Slots)))
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: FLINK_SLOTS: %v", ErrInvalidConfig, err)
	}
	fs.IntVar(&cfg.Slots, "slots", slots, "task slots")
	for _, v := range []struct {
		env, flag, usage string
		n                *int
		d                *time.Duration
	}{
		{"FLINK_RPC_MAX_CONNECTIONS", "rpc-max-connections", "RPC connections served at once", &cfg.RPCLimits.MaxConnections, nil},
		{"FLINK_RPC_FRAME_TIMEOUT", "rpc-frame-timeout", "longest arrival of one RPC frame", nil, &cfg.RPCLimits.FrameTimeout},
		{"FLINK_RPC_IDLE_TIMEOUT", "rpc-idle-timeout", "idle RPC connections close after", nil, &cfg.RPCLimits.IdleTimeout},
		{"FLINK_DATA_MAX_CONNECTIONS", "data-max-connections", "data connections served at once", &cfg.Network.MaxConnections, nil},
		{"FLINK_DATA_FRAME_TIMEOUT", "data-frame-timeout", "longest arrival of one data frame", nil, &cfg.Network.FrameTimeout},
		{"FLINK_REST_MAX_CONNECTIONS", "rest-max-connections", "REST connections served at once", &cfg.RESTLimits.MaxConnections, nil},
	} {
		s, ok := os.LookupEnv(v.env)
		var err error
		switch {
		case v.n != nil && ok:
			*v.n, err = strconv.Atoi(s)
		case v.d != nil && ok:
			*v.d, err = time.ParseDuration(s)
		}
		if err != nil {
			return cfg, nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, v.env, err)
		}
		if v.n != nil {
			fs.IntVar(v.n, v.flag, *v.n, v.usage)
		} else {
			fs.DurationVar(v.d, v.flag, *v.d, v.usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return cfg, nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if cfg.Roles, err = ParseRoles(*roles); err != nil {
		return cfg, nil, err
	}
	cfg.Peers, cfg.RaftPeers, cfg.SavepointRoots = splitList(*peers), splitList(*raftPeers), splitList(*spRoots)
	if *secDir != "" {
		name := cfg.ID
		if name == "" {
			name = "node"
		}
		d, sc := security.FromDir(*secDir, name), &cfg.Security
		sc.Enabled = true
		for _, f := range []struct {
			dst *string
			def string
		}{
			{&sc.CAFile, d.CAFile}, {&sc.CertFile, d.CertFile}, {&sc.KeyFile, d.KeyFile},
			{&sc.GossipKeyringFile, d.GossipKeyringFile}, {&sc.TokenFile, d.TokenFile},
		} {
			if *f.dst == "" {
				*f.dst = f.def
			}
		}
		if _, err := os.Stat(sc.TokenFile); err != nil && sc.TokenFile == d.TokenFile {
			sc.TokenFile = "" // optional: client certificates only
		}
	}
	return cfg, fs.Args(), nil
}

// Node is one process of a cluster: a JobManager (Dispatcher,
// ResourceManager and JobManagers), a TaskManager, or both, reachable by
// RPC. Start it, then Close it.
type Node struct {
	cfg      NodeConfig
	log      *slog.Logger
	local    *localResolver
	resolver *remoteResolver
	server   *rpc.Server
	listener net.Listener
	addr     string // advertised RPC address

	rm         *ResourceManager
	members    *ha.Membership     // written under haMu (read by REST and RPC handlers)
	sec        *security.Material // nil: security off
	restAddr   string
	restHTTP   *http.Server // serves the REST API (startREST)
	dispatcher *Dispatcher
	tm         *TaskManager
	netEnv     *network.Environment

	// HA mode (hanode.go).
	id          string
	fingerprint string
	storage     checkpoint.Storage
	jmAddrs     []string   // the JobManager nodes' RPC addresses, as configured
	reconcileMu sync.Mutex // serializes reconcileVoters
	haMu        struct {
		sync.Mutex
		raft   *ha.RaftNode // set once Raft runs
		leader *leadership
	}

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewNode validates cfg and prepares a node; Start starts it.
func NewNode(cfg NodeConfig) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = discardLogger
	}
	n := &Node{cfg: cfg, log: log}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Start listens, starts the node's roles and, for a TaskManager, registers
// with the JobManager (retrying until ctx ends). It returns once the node
// serves.
func (n *Node) Start(ctx context.Context) error {
	sec, err := security.Load(n.cfg.Security)
	if err != nil {
		return fmt.Errorf("%w: node: %w", ErrInvalidConfig, err)
	}
	n.sec = sec
	l, err := net.Listen("tcp", n.cfg.BindAddr)
	if err != nil {
		return fmt.Errorf("flink: node: listening on %s: %w", n.cfg.BindAddr, err)
	}
	n.listener = l
	n.addr = n.cfg.AdvertiseAddr
	if n.addr == "" {
		n.addr = l.Addr().String()
	}
	id := n.cfg.ID
	if id == "" && sec != nil {
		id = sec.Identity
	}
	if sec != nil && n.cfg.Roles&RoleTaskManager != 0 && !slices.Contains(sec.Names(), id) {
		l.Close()
		return fmt.Errorf("%w: node id %q is not a name of its certificate %s (it carries %s)",
			ErrInvalidConfig, id, n.cfg.Security.CertFile, strings.Join(sec.Names(), ", "))
	}
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", host, l.Addr().(*net.TCPAddr).AddrPort().Port())
	}
	n.log = n.log.With("node", id)
	n.id = id
	n.local = newLocalResolver()
	n.resolver = newRemoteResolver(n.local)
	n.server = rpc.NewServer(rpcCodes, n.log)
	if sec != nil {
		n.server.SetTLS(sec.Internal)
		n.resolver.tls = sec.Internal
	}
	n.server.SetLimits(rpc.Limits(n.cfg.RPCLimits))

	fingerprint := n.cfg.Registry.Fingerprint()
	storage := n.cfg.CheckpointStorage
	if storage == nil && n.cfg.CheckpointDir != "" {
		fs, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: n.cfg.CheckpointDir, SavepointRoots: n.cfg.SavepointRoots})
		if err != nil {
			n.Close()
			return fmt.Errorf("flink: node %s: checkpoint storage: %w", id, err)
		}
		storage = fs
	}
	n.fingerprint, n.storage = fingerprint, storage
	n.jmAddrs = splitList(n.cfg.JobManagerAddr)
	jmAddr := ""
	if len(n.jmAddrs) > 0 && !n.cfg.HA {
		jmAddr = n.jmAddrs[0]
	}
	if n.cfg.Roles&RoleJobManager != 0 && n.cfg.HA {
		n.serveHA()
	} else if n.cfg.Roles&RoleJobManager != 0 {
		jmAddr = n.addr
		rmAddr := n.addr + "/resourcemanager"
		n.rm = newResourceManager(rmAddr, n.resolver, n.log)
		n.rm.provider, n.rm.idleTimeout, n.rm.fingerprint = n.cfg.Provider, n.cfg.IdleTimeout, fingerprint
		n.rm.heartbeatTimeout = n.cfg.HeartbeatTimeout
		n.local.bind(rmAddr, n.rm)
		n.dispatcher = newDispatcher(n.cfg.Registry, newGraphStore(), rmAddr, n.addr+"/", n.local, n.resolver, jobManagerConfig{
			slotRequestTimeout: n.cfg.SlotRequestTimeout, storage: storage, now: time.Now,
			heartbeatInterval: n.cfg.HeartbeatInterval, heartbeatTimeout: n.cfg.HeartbeatTimeout,
		}, n.log)
		rm, d := n.rm, n.dispatcher
		serveResourceManager(n.server, func() (*ResourceManager, error) { return rm, nil })
		serveJobManagers(n.server, func() (*Dispatcher, error) { return d, nil })
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.rm.monitor(n.ctx, n.cfg.HeartbeatInterval/2, n.cfg.HeartbeatTimeout)
		}()
	}
	if n.cfg.Roles&RoleTaskManager != 0 {
		netCfg := n.cfg.Network
		if netCfg.ListenAddr == "" {
			host, _, _ := net.SplitHostPort(n.addr)
			netCfg.ListenAddr = net.JoinHostPort(host, "0")
		}
		if netCfg.Logger == nil {
			netCfg.Logger = n.log
		}
		if sec != nil {
			netCfg.TLS = sec.Internal
		}
		env, err := network.NewEnvironment(netCfg)
		if err != nil {
			n.Close()
			return fmt.Errorf("flink: node %s: %w", id, err)
		}
		n.netEnv = env
		tmAddr := n.addr + "/taskmanager/" + id
		n.tm = newTaskManager(ResourceID(id), tmAddr, jmAddr+"/resourcemanager", n.cfg.Slots, ResourceProfile{},
			n.resolver, n.cfg.Registry, newGraphStore(), newLocalShuffle(), env, n.cfg.Codecs, n.log)
		n.tm.fingerprint, n.tm.storage = fingerprint, storage
		n.tm.startMetricsReporter(n.cfg.HeartbeatInterval)
		n.tm.startCancellationWatchdog(n.cfg.TaskCancellationInterval)
		n.local.bind(tmAddr, n.tm)
		serveTaskManager(n.server, n.tm)
	}
	if n.cfg.RESTAddr != "" && n.cfg.Roles&RoleJobManager != 0 {
		// With HA the leader serves the API and followers redirect to it.
		h := http.Handler(http.HandlerFunc(n.serveRESTHA))
		if !n.cfg.HA {
			h = n.newRESTServer(n.dispatcher, n.rm).Handler()
		}
		if err := n.startREST(h); err != nil {
			n.Close()
			return err
		}
	}
	if n.cfg.GossipAddr != "" {
		if err := n.startMembership(ctx, id, fingerprint); err != nil {
			n.Close()
			return err
		}
		if n.tm != nil && jmAddr == "" && !n.cfg.HA {
			if jmAddr, err = n.findJobManager(ctx); err != nil {
				n.Close()
				return err
			}
			n.tm.setResourceManagerAddr(jmAddr + "/resourcemanager")
		}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.server.Serve(l); err != nil && !errors.Is(err, rpc.ErrServerClosed) {
			n.log.Error("rpc server stopped", "err", err)
		}
	}()
	if n.cfg.HA && n.cfg.Roles&RoleJobManager != 0 {
		if err := n.startRaft(ctx, fingerprint); err != nil {
			n.Close()
			return err
		}
	}
	if n.tm != nil && n.cfg.HA {
		if err := n.followLeaderUntil(ctx); err != nil {
			n.Close()
			return fmt.Errorf("flink: node %s: registering with the leading job manager: %w", id, err)
		}
	} else if n.tm != nil {
		if jmAddr != n.addr {
			if err := n.refuseHAJobManager(ctx, jmAddr); err != nil {
				n.Close()
				return err
			}
		}
		if err := n.tm.register(ctx); err != nil {
			n.Close()
			if errors.Is(err, ErrStaleLeader) {
				return fmt.Errorf("%w: node %s: registering with the job manager at %s: %w; %s",
					ErrInvalidConfig, id, jmAddr, err, haTaskManagerHint)
			}
			return fmt.Errorf("flink: node %s: registering with the job manager at %s: %w", id, jmAddr, err)
		}
	}
	if n.tm != nil {
		if n.cfg.HA {
			// Heartbeats that find no ResourceManager, or fail, look for the
			// leader; watchLeader follows a newer one at once.
			n.tm.onHeartbeatFailure = n.followLeaderLogged
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.watchLeader()
			}()
		}
		n.tm.startHeartbeats(n.cfg.HeartbeatInterval, n.cfg.HeartbeatTimeout)
	}
	n.log.Info("node started", "roles", n.cfg.Roles, "rpc", n.addr)
	return nil
}

// startREST serves h on the REST address with the node's REST limits and,
// when security is on, over TLS (under it the connection limit, so that
// handshakes count) admitting only requests with a client certificate
// from the cluster CA or a bearer token; the dashboard's static files stay
// public (they hold no data, and the page asks for the token).
func (n *Node) startREST(h http.Handler) error {
	rl, err := net.Listen("tcp", n.cfg.RESTAddr)
	if err != nil {
		return fmt.Errorf("flink: node %s: REST listener on %s: %w", n.id, n.cfg.RESTAddr, err)
	}
	n.restAddr = rl.Addr().String()
	rl = newLimitListener(rl, n.cfg.RESTLimits.withDefaults().MaxConnections, n.log)
	if n.sec != nil {
		rl = tls.NewListener(rl, n.sec.REST)
		h = n.sec.RequireAuth(h, isDashboardAsset)
	}
	n.restHTTP = newRESTHTTPServer(h, n.log, n.cfg.RESTLimits)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.restHTTP.Serve(rl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("REST server stopped", "err", err)
		}
	}()
	return nil
}

// newRESTServer returns the REST server of the node's Dispatcher, with
// the node's metrics handler.
func (n *Node) newRESTServer(d *Dispatcher, rm *ResourceManager) *RESTServer {
	srv := NewDispatcherRESTServer(d, rm)
	if n.cfg.MetricsHandler != nil {
		srv.HandleMetrics(n.cfg.MetricsHandler(srv, n.log))
	}
	return srv
}

// restScheme is the scheme of the node's REST URLs.
func (n *Node) restScheme() string {
	if n.sec != nil {
		return "https"
	}
	return "http"
}

// startMembership joins the gossip pool, publishing the node's metadata,
// and follows it: a JobManager loses the TaskManagers memberlist declares
// dead or gone.
func (n *Node) startMembership(ctx context.Context, id, fingerprint string) error {
	host, port, err := net.SplitHostPort(n.cfg.GossipAddr)
	if err != nil {
		return fmt.Errorf("%w: gossip address %q: %v", ErrInvalidConfig, n.cfg.GossipAddr, err)
	}
	mc := ha.DefaultMembershipConfig()
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		mc = ha.LocalMembershipConfig()
	}
	mc.BindAddr = host
	if mc.BindPort, err = strconv.Atoi(port); err != nil {
		return fmt.Errorf("%w: gossip port %q", ErrInvalidConfig, port)
	}
	mc.NodeName, mc.Logger, mc.RefuseIncompatible = id, n.log, true
	if n.sec != nil {
		mc.Keys = n.sec.GossipKeys
	}
	mc.Meta = ha.NodeMeta{NodeID: id, RPCAddr: n.addr, RESTAddr: n.advertisedREST(), Fingerprint: fingerprint, Version: "flinkgo"}
	if n.cfg.HA && n.cfg.Roles&RoleJobManager != 0 {
		mc.Meta.RaftAddr = n.raftConfig(id, fingerprint, nil).AdvertiseAddr
		if mc.Meta.RaftAddr == "" {
			mc.Meta.RaftAddr = n.cfg.RaftAddr
		}
	}
	if n.cfg.Roles&RoleJobManager != 0 {
		mc.Meta.Roles |= ha.RoleJobManager
	}
	if n.tm != nil {
		mc.Meta.Roles |= ha.RoleTaskManager
		mc.Meta.DataAddr, mc.Meta.Slots = n.netEnv.Addr(), n.cfg.Slots
	}
	m, err := ha.NewMembership(mc)
	if err != nil {
		return fmt.Errorf("flink: node %s: %w", id, err)
	}
	n.haMu.Lock()
	n.members = m
	n.haMu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for ev := range m.Events() {
			n.memberChanged(ev)
			if l, err := n.leading(); err == nil && ev.Member.MetaErr == nil && ev.Member.Meta.Roles.Has(ha.RoleTaskManager) &&
				(ev.Type == ha.EventFailed || ev.Type == ha.EventLeave) {
				l.rm.TaskManagerLost(ResourceID(ev.Member.Meta.NodeID), fmt.Errorf("membership: node %s %s", ev.Member.Name, ev.Type))
			}
			if n.rm == nil || ev.Member.MetaErr != nil || !ev.Member.Meta.Roles.Has(ha.RoleTaskManager) {
				continue
			}
			if ev.Type == ha.EventFailed || ev.Type == ha.EventLeave {
				n.rm.TaskManagerLost(ResourceID(ev.Member.Meta.NodeID), fmt.Errorf("membership: node %s %s", ev.Member.Name, ev.Type))
			}
		}
	}()
	if len(n.cfg.Peers) > 0 {
		if _, err := m.Join(ctx, n.cfg.Peers); err != nil {
			return fmt.Errorf("flink: node %s: joining %v: %w", id, n.cfg.Peers, err)
		}
	}
	return nil
}

// findJobManager waits until the membership shows a JobManager and returns
// its RPC address.
func (n *Node) findJobManager(ctx context.Context) (string, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, m := range n.members.Members() {
			if m.MetaErr == nil && m.Meta.Roles.Has(ha.RoleJobManager) {
				return m.Meta.RPCAddr, nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return "", fmt.Errorf("flink: no job manager in the membership: %w", ctx.Err())
		}
	}
}

// followLeaderLogged looks for the leader once, after a failed heartbeat.
func (n *Node) followLeaderLogged() {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HeartbeatTimeout)
	defer cancel()
	if err := n.followLeader(ctx); err != nil && n.ctx.Err() == nil {
		n.log.Debug("looking for the leader failed", "err", err)
	}
}

// GossipAddr returns the node's memberlist address, or "" without
// membership.
func (n *Node) GossipAddr() string {
	m := n.membership()
	if m == nil {
		return ""
	}
	return m.LocalAddr().String()
}

// RESTAddr returns the address the REST API listens on, or "".
func (n *Node) RESTAddr() string { return n.restAddr }

// Addr returns the node's advertised RPC address.
func (n *Node) Addr() string { return n.addr }

// Dispatcher returns the node's Dispatcher, or nil if it is no JobManager
// (in HA mode: if it does not lead now).
func (n *Node) Dispatcher() *Dispatcher {
	if n.cfg.HA {
		if l, err := n.leading(); err == nil {
			return l.d
		}
		return nil
	}
	return n.dispatcher
}

// ResourceManager returns the node's ResourceManager, or nil if it is no
// JobManager (in HA mode: if it does not lead now).
func (n *Node) ResourceManager() *ResourceManager {
	if n.cfg.HA {
		if l, err := n.leading(); err == nil {
			return l.rm
		}
		return nil
	}
	return n.rm
}

// Close stops the node's roles, its server and every goroutine it started.
// It is idempotent.
func (n *Node) Close() error {
	n.once.Do(func() {
		if rn := n.Raft(); rn != nil && rn.IsLeader() {
			// A planned handover takes milliseconds, not an election.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := rn.TransferLeadership(ctx); err != nil {
				n.log.Warn("handing the leadership over failed", "err", err)
			}
			cancel()
		}
		if n.members != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			n.members.Leave(ctx)
			cancel()
			n.members.Close() // ends the event loop
		}
		n.cancel()
		if n.restHTTP != nil {
			n.restHTTP.Close()
		}
		if n.dispatcher != nil {
			n.dispatcher.close()
		}
		if n.tm != nil {
			n.tm.close()
		}
		if n.server != nil {
			n.server.Close()
		}
		n.wg.Wait() // the leadership loop deposes the roles it ran
		if rn := n.Raft(); rn != nil {
			if err := rn.Shutdown(); err != nil {
				n.log.Warn("raft shutdown", "err", err)
			}
		}
		if n.rm != nil {
			n.rm.close()
		}
		if n.cfg.Provider != nil {
			n.cfg.Provider.Close()
		}
		if n.resolver != nil {
			n.resolver.close()
		}
		if n.netEnv != nil {
			n.netEnv.Close()
		}
	})
	return nil
}
