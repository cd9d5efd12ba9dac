// Command microservice is a flinkgo cluster in "library style": one binary,
// run as several replicas, whose replicas form a cluster and run the job
// bundled with them. Each replica reads its role and peers from the
// environment (or flags); the JobManager replica submits the bundled job
// exactly once, when enough TaskManager slots have registered, reports its
// result as a JSON line on standard output and keeps serving until SIGTERM.
//
// One process with both roles:
//
//	go run ./examples/microservice -slots 2 -- -records 1000000
//
// A JobManager and two TaskManagers:
//
//	FLINK_ROLES=jobmanager FLINK_MIN_SLOTS=2 go run ./examples/microservice
//	FLINK_ROLES=taskmanager FLINK_SLOTS=1 FLINK_JOBMANAGER_ADDR=127.0.0.1:6123 go run ./examples/microservice
//	FLINK_ROLES=taskmanager FLINK_SLOTS=1 FLINK_JOBMANAGER_ADDR=127.0.0.1:6123 go run ./examples/microservice
//
// In containers (see Dockerfile and compose.yaml):
//
//	CGO_ENABLED=0 go build -o examples/microservice/microservice ./examples/microservice
//	docker-compose -f examples/microservice/compose.yaml up --build
//
// Node settings are those of flink.NodeConfigFromEnv (FLINK_ROLES,
// FLINK_NODE_ID, FLINK_BIND_ADDR, FLINK_ADVERTISE_ADDR,
// FLINK_JOBMANAGER_ADDR, FLINK_SLOTS, ...). When the bind host is
// unspecified (0.0.0.0) and no advertise address is given, the node
// advertises its host name. The microservice's own settings, each an
// environment variable or a flag (flags win) given after the node's flags
// and "--" (microservice [node flags] -- [microservice flags]):
//
//	FLINK_JOB_RECORDS / -records          records the job generates (1000000)
//	FLINK_JOB_KEYS / -keys                distinct keys (100)
//	FLINK_JOB_RATE / -rate                records/s per source subtask, 0 = unpaced (0)
//	FLINK_PARALLELISM / -parallelism      the job's parallelism (2)
//	FLINK_MIN_SLOTS / -min-slots          slots to wait for before submitting (parallelism; 0 with a provider)
//	FLINK_RESTART_ATTEMPTS / -restarts    fixed-delay restart attempts (10)
//	FLINK_RESTART_DELAY / -restart-delay  delay between restarts (500ms)
//	FLINK_PROVIDER / -provider            "docker": start TaskManager containers on demand
//	FLINK_IDLE_TIMEOUT / -idle-timeout    stop provider TaskManagers idle this long (30s)
//	FLINK_TM_SLOTS / -tm-slots            slots of each provider TaskManager (1)
//	FLINK_DOCKER_IMAGE / -docker-image    image of provider TaskManagers
//	FLINK_DOCKER_NETWORK / -docker-network  their Docker network
//	FLINK_CLUSTER / -cluster              cluster name: labels and names the containers
//	FLINK_LOG_LEVEL / -log-level          debug, info, warn, error (info)
//
// Standard output carries only JSON lines: the JobManager writes
// {"job":...,"status":"RUNNING","taskmanagers":[...]} each time every
// subtask of an attempt runs, and finally
// {"job":...,"status":"FINISHED","restarts":N,"records":M,"expected":M,...};
// the TaskManagers' sinks write a summary line per subtask. Logs go to
// standard error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/deploy/docker"
	"github.com/flinkgo/flink/metrics/prometheus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "microservice:", err)
		os.Exit(2)
	}
}

// settings are the microservice's own settings, besides the node's.
type settings struct {
	job         jobSpec
	parallelism int
	minSlots    int
	provider    string
	idleTimeout time.Duration
	tmSlots     int
	image       string
	network     string
	cluster     string
	logLevel    slog.Level
}

// parseSettings reads the settings from the environment, then from the
// flags in args.
func parseSettings(args []string, stderr io.Writer) (settings, error) {
	s := settings{job: jobSpec{Records: 1_000_000, Keys: 100, Restarts: 10, RestartDelay: 500 * time.Millisecond},
		parallelism: 2, minSlots: -1, idleTimeout: 30 * time.Second, tmSlots: 1}
	fs := flag.NewFlagSet("microservice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var errs []error
	env := func(key string, dst flag.Value) {
		if v, ok := os.LookupEnv(key); ok {
			if err := dst.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
			}
		}
	}
	str := func(p *string, name, key, usage string) {
		fs.StringVar(p, name, *p, usage)
		env(key, fs.Lookup(name).Value)
	}
	i64 := func(p *int64, name, key, usage string) {
		fs.Int64Var(p, name, *p, usage)
		env(key, fs.Lookup(name).Value)
	}
	integer := func(p *int, name, key, usage string) {
		fs.IntVar(p, name, *p, usage)
		env(key, fs.Lookup(name).Value)
	}
	dur := func(p *time.Duration, name, key, usage string) {
		fs.DurationVar(p, name, *p, usage)
		env(key, fs.Lookup(name).Value)
	}
	i64(&s.job.Records, "records", "FLINK_JOB_RECORDS", "records the job generates")
	i64(&s.job.Keys, "keys", "FLINK_JOB_KEYS", "distinct keys")
	i64(&s.job.Rate, "rate", "FLINK_JOB_RATE", "records/s per source subtask; 0: unpaced")
	integer(&s.parallelism, "parallelism", "FLINK_PARALLELISM", "the job's parallelism")
	integer(&s.minSlots, "min-slots", "FLINK_MIN_SLOTS", "slots to wait for before submitting; -1: parallelism (0 with a provider)")
	integer(&s.job.Restarts, "restarts", "FLINK_RESTART_ATTEMPTS", "fixed-delay restart attempts")
	dur(&s.job.RestartDelay, "restart-delay", "FLINK_RESTART_DELAY", "delay between restarts")
	str(&s.provider, "provider", "FLINK_PROVIDER", `"docker" starts TaskManager containers on demand; empty: standalone`)
	dur(&s.idleTimeout, "idle-timeout", "FLINK_IDLE_TIMEOUT", "stop provider TaskManagers idle this long")
	integer(&s.tmSlots, "tm-slots", "FLINK_TM_SLOTS", "slots of each provider TaskManager")
	str(&s.image, "docker-image", "FLINK_DOCKER_IMAGE", "image of provider TaskManagers")
	str(&s.network, "docker-network", "FLINK_DOCKER_NETWORK", "Docker network of provider TaskManagers")
	str(&s.cluster, "cluster", "FLINK_CLUSTER", "cluster name for provider containers")
	fs.TextVar(&s.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	env("FLINK_LOG_LEVEL", fs.Lookup("log-level").Value)
	if err := errors.Join(errs...); err != nil {
		return s, err
	}
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := s.job.validate(); err != nil {
		return s, err
	}
	if s.parallelism < 1 {
		return s, fmt.Errorf("parallelism %d, want >= 1", s.parallelism)
	}
	switch s.provider {
	case "":
	case "docker":
		if s.image == "" || s.network == "" || s.cluster == "" {
			return s, fmt.Errorf("the docker provider needs FLINK_DOCKER_IMAGE, FLINK_DOCKER_NETWORK and FLINK_CLUSTER")
		}
	default:
		return s, fmt.Errorf("provider %q: want docker or none", s.provider)
	}
	if s.minSlots < 0 {
		s.minSlots = s.parallelism
		if s.provider != "" {
			s.minSlots = 0 // the provider starts TaskManagers for the job's slot requests
		}
	}
	return s, nil
}

// run starts a node as args and the environment say and, on a JobManager,
// submits the bundled job once, reports it on stdout, then serves until ctx
// is done. ready, when not nil, is called with the node's RPC address once
// it serves.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	// Read the roles first: the defaults (such as the bind address) depend
	// on them.
	cfg, _, err := flink.NodeConfigFromEnv(flink.DefaultNodeConfig(flink.RoleJobManager|flink.RoleTaskManager), args)
	if err != nil {
		return err
	}
	cfg, rest, err := flink.NodeConfigFromEnv(flink.DefaultNodeConfig(cfg.Roles), args)
	if err != nil {
		return err
	}
	s, err := parseSettings(rest, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: s.logLevel}))
	if cfg.AdvertiseAddr == "" {
		cfg.AdvertiseAddr = defaultAdvertiseAddr(cfg.BindAddr)
	}
	out := &syncWriter{w: stdout} // the reports and the sinks' lines
	cfg.Registry, cfg.Logger = Jobs(out), log
	cfg.MetricsHandler = prometheus.Handler // GET /metrics
	if s.provider == "docker" && cfg.Roles&flink.RoleJobManager != 0 {
		jmAddr := cfg.AdvertiseAddr
		if jmAddr == "" {
			return fmt.Errorf("the docker provider needs the JobManager's advertised address (FLINK_ADVERTISE_ADDR)")
		}
		p, err := docker.New(docker.Config{Image: s.image, Network: s.network, JobManagerAddr: jmAddr,
			Slots: s.tmSlots, Cluster: s.cluster, Env: []string{"FLINK_LOG_LEVEL=" + s.logLevel.String()}, Logger: log})
		if err != nil {
			return err
		}
		cfg.Provider, cfg.IdleTimeout = p, s.idleTimeout // the node closes the provider
	}
	node, err := flink.NewNode(cfg)
	if err != nil {
		if cfg.Provider != nil {
			cfg.Provider.Close()
		}
		return err
	}
	if err := node.Start(ctx); err != nil {
		node.Close()
		return err
	}
	defer node.Close()
	if ready != nil {
		ready(node.Addr())
	}
	if cfg.Roles&flink.RoleJobManager != 0 {
		r := &reporter{out: out}
		if err := submitOnce(ctx, node, s, r, log); err != nil && ctx.Err() == nil {
			log.Error("bundled job", "err", err)
		}
	}
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}

// defaultAdvertiseAddr returns host-name:port when bind listens on every
// interface at a fixed port, and "" (advertise the bound address) otherwise.
func defaultAdvertiseAddr(bind string) string {
	host, port, err := net.SplitHostPort(bind)
	if err != nil || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return ""
	}
	name, err := os.Hostname()
	if err != nil {
		return ""
	}
	return net.JoinHostPort(name, port)
}

// submitOnce waits for s.minSlots slots, submits the bundled job, reports
// each attempt that runs and the final result, and returns when the job
// ended or ctx is done.
func submitOnce(ctx context.Context, node *flink.Node, s settings, r *reporter, log *slog.Logger) error {
	if err := waitForSlots(ctx, node.ResourceManager(), s.minSlots); err != nil {
		return err
	}
	d := node.Dispatcher()
	id, err := d.SubmitJob(ctx, flink.JobSubmission{Name: JobName, Args: s.job.args(), Parallelism: s.parallelism})
	if err != nil {
		r.final(finalReport{Job: JobName, Status: "FAILED", Expected: s.job.Records, Error: err.Error()})
		return err
	}
	log.Info("submitted the bundled job", "job", JobName, "id", id, "records", s.job.Records, "parallelism", s.parallelism)

	mctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchAttempts(mctx, d, id, r)
	}()
	res, err := d.JobResult(ctx, id)
	stop()
	wg.Wait()
	if err != nil {
		return err
	}
	rep := finalReport{Job: JobName, ID: string(id), Status: string(res.Status), Restarts: res.Restarts,
		Expected: s.job.Records, DurationMS: res.Duration.Milliseconds()}
	if op, ok := res.Operator("totals"); ok {
		rep.Records = op.RecordsIn
	}
	if res.Err != nil {
		rep.Error = res.Err.Error()
	}
	r.final(rep)
	log.Info("bundled job ended", "status", res.Status, "restarts", res.Restarts, "records", rep.Records, "duration", res.Duration)
	return nil
}

// waitForSlots polls the ResourceManager until it has want slots.
func waitForSlots(ctx context.Context, rm *flink.ResourceManager, want int) error {
	if want <= 0 {
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if total, _, err := rm.SlotCounts(ctx); err == nil && total >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d slots: %w", want, ctx.Err())
		case <-tick.C:
		}
	}
}

// watchAttempts polls the job's details until ctx is done and reports each
// new set of attempts once all of them run.
func watchAttempts(ctx context.Context, d *flink.Dispatcher, id flink.JobID, r *reporter) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		if jd, err := d.JobDetails(ctx, id); err == nil {
			if sig, tms, ok := allRunning(jd); ok && sig != last {
				last = sig
				r.running(runningReport{Job: JobName, ID: string(id), Status: "RUNNING", TaskManagers: tms})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// allRunning reports whether every subtask of jd runs, a signature of their
// attempts, and the TaskManagers that run them.
func allRunning(jd flink.JobDetails) (sig string, tms []string, ok bool) {
	var b strings.Builder
	seen := map[string]bool{}
	n := 0
	for _, v := range jd.Vertices {
		for _, st := range v.Subtasks {
			if st.State != flink.Running {
				return "", nil, false
			}
			n++
			b.WriteString(strconv.Itoa(v.ID) + "/" + strconv.Itoa(st.Subtask) + "#" + strconv.Itoa(st.Attempt) + " ")
			if tm := string(st.TaskManager); tm != "" && !seen[tm] {
				seen[tm] = true
				tms = append(tms, tm)
			}
		}
	}
	sort.Strings(tms)
	return b.String(), tms, n > 0
}

// runningReport is written when every subtask of an attempt runs.
type runningReport struct {
	Job          string   `json:"job"`
	ID           string   `json:"id"`
	Status       string   `json:"status"`
	TaskManagers []string `json:"taskmanagers"`
}

// finalReport is written once the bundled job ended.
type finalReport struct {
	Job        string `json:"job"`
	ID         string `json:"id,omitempty"`
	Status     string `json:"status"`
	Restarts   int    `json:"restarts"`
	Records    int64  `json:"records"`
	Expected   int64  `json:"expected"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// reporter writes the JSON report lines.
type reporter struct{ out io.Writer }

func (r *reporter) running(rep runningReport) { r.write(rep) }
func (r *reporter) final(rep finalReport)     { r.write(rep) }

func (r *reporter) write(v any) {
	b, _ := json.Marshal(v)
	r.out.Write(append(b, '\n'))
}

// syncWriter serializes writes, so that lines written whole stay whole.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
