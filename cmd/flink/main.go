// Command flink is the command-line client of a flinkgo session cluster: it
// submits registered jobs to the Dispatcher's REST API, lists them, shows
// them, cancels them, takes savepoints of them and stops them with a
// savepoint, as Flink's bin/flink does.
//
//	flink [--addr URL] [--output text|json] <command> [arguments]
//
//	flink run <name> [args...] [-p N] [--detached]   run a registered job
//	    [--fromSavepoint path] [--allowNonRestoredState]
//	flink list                                      list the cluster's jobs
//	flink info <jobid>                              describe one job
//	flink cancel <jobid>                            cancel a job
//	flink savepoint <jobid> [targetDir]             take a savepoint of a running job
//	flink stop <jobid> [--savepointPath dir]        stop a job with a savepoint
//	flink security gen-dev-certs DIR [--nodes a,b] [--hosts h,...]
//	                                                write a development CA,
//	                                                certificates, keyring, token
//
// Against a cluster with security on, use an https address and --ca, and
// either --cert and --key (a client certificate from the cluster CA) or
// --token-file (env FLINK_REST_CA, FLINK_REST_CERT, FLINK_REST_KEY,
// FLINK_REST_TOKEN_FILE).
//
// The cluster's address comes from --addr, else the FLINK_REST_ADDR
// environment variable, else http://127.0.0.1:8081 (Flink's REST port).
// Without --detached, run waits for the job to end and reports its progress
// on standard error. savepoint waits for the savepoint and prints its
// location: a fresh savepoint-<job>-<random> directory the cluster makes
// inside targetDir (default: its savepoint directory), which must lie
// inside the cluster's savepoint roots; stop also waits for the job to
// finish. While they wait they report progress on standard error, except
// with --output json.
//
// Exit status: 0 success, 1 the job failed or was cancelled, the savepoint
// failed, or the server refused the request, 2 usage error, 3 the server
// cannot be reached.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flinkgo/flink/rest"
	"github.com/flinkgo/flink/security"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnreachable = 3
)

// defaultAddr is Flink's default REST endpoint.
const defaultAddr = "http://127.0.0.1:8081"

const usage = `Usage: flink [--addr URL] [--output text|json] <command> [arguments]

Commands:
  run <name> [args...] [-p N] [--detached]  run the registered job <name> with args;
                                            without --detached, wait for its end
  list                                      list the cluster's jobs
  info <jobid>                              describe a job
  cancel <jobid>                            cancel a job
  savepoint <jobid> [targetDir]             take a savepoint of a running job into a
                                            fresh directory inside targetDir and
                                            print its location
  stop <jobid> [--savepointPath dir]        take a savepoint, then stop the job
  security gen-dev-certs DIR [--nodes a,b] [--hosts h,...]
                                            write a development cluster CA, node
                                            certificates (default node "node"),
                                            a client certificate, a gossip keyring
                                            and a REST token into DIR

Options (before or after the command):
  --addr URL                   REST address of the cluster (env FLINK_REST_ADDR,
                               default ` + defaultAddr + `)
  --output FORMAT              text (default) or json
  --ca FILE                    CA certificate (PEM) that signed the server's
                               certificate (env FLINK_REST_CA)
  --cert FILE, --key FILE      client certificate and key (PEM) for a cluster
                               with security on (env FLINK_REST_CERT, FLINK_REST_KEY)
  --token-file FILE            bearer token for a cluster with security on
                               (env FLINK_REST_TOKEN_FILE)
  -p, --parallelism N          (run) parallelism of the job; 0 keeps the job's default
  -d, --detached               (run) return once the job is submitted
  -s, --fromSavepoint PATH     (run) start the job from the savepoint at PATH
  -n, --allowNonRestoredState  (run) skip savepoint state that belongs to no
                               operator of the job
  --                           (run) end of options: the remaining words are job arguments
  -p, --savepointPath DIR      (stop) the directory the savepoint goes into (a fresh
                               directory inside it); default: the cluster's savepoint directory

Exit status: 0 success, 1 job failed or cancelled, savepoint failed or request
refused, 2 usage error, 3 cannot reach the server.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return newCLI(stdout, stderr, os.Getenv).main(ctx, args)
}

// cli holds one invocation's settings and outputs.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// poll is how often run, savepoint and stop check what they wait for.
	poll time.Duration
	// progressEvery is how often savepoint and stop report that they are
	// still waiting.
	progressEvery time.Duration

	addr   string
	output string
	tls    security.ClientConfig
}

func newCLI(stdout, stderr io.Writer, getenv func(string) string) *cli {
	return &cli{stdout: stdout, stderr: stderr, getenv: getenv, poll: 250 * time.Millisecond, progressEvery: time.Second}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// jobEndedError reports a job that ended without finishing.
type jobEndedError struct {
	id    string
	state string
}

func (e *jobEndedError) Error() string { return fmt.Sprintf("job %s ended %s", e.id, e.state) }

func (c *cli) main(ctx context.Context, args []string) int {
	err := c.dispatch(ctx, args)
	var (
		ue *usageError
		ae *rest.APIError
		je *jobEndedError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(c.stdout, usage)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "flink: %v\n\n%s", err, usage)
		return exitUsage
	case errors.Is(err, rest.ErrUnreachable):
		fmt.Fprintf(c.stderr, "flink: %s\n", strings.TrimPrefix(err.Error(), "rest: "))
		return exitUnreachable
	case errors.As(err, &je):
		return exitFailed // already reported
	case errors.As(err, &ae) && err == error(ae):
		// The server's messages carry their own "flink: " prefix.
		msgs := make([]string, len(ae.Messages))
		for i, m := range ae.Messages {
			msgs[i] = strings.TrimPrefix(m, "flink: ")
		}
		fmt.Fprintf(c.stderr, "flink: %s (HTTP %d)\n", strings.Join(msgs, "; "), ae.StatusCode)
		return exitFailed
	default:
		fmt.Fprintf(c.stderr, "flink: %v\n", err)
		return exitFailed
	}
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	fs := c.flagSet("flink")
	pos, err := parseInterspersed(fs, args, 1)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("missing command")
	}
	cmd, cmdArgs := pos[0], pos[1:]
	if cmd == "help" {
		return flag.ErrHelp
	}
	if cmd == "security" {
		return c.security(cmdArgs)
	}
	var exec func(context.Context, *rest.Client, []string) error
	switch cmd {
	case "run":
		exec = c.runJob
	case "list":
		exec = c.list
	case "info":
		exec = c.info
	case "cancel":
		exec = c.cancel
	case "savepoint":
		exec = c.savepoint
	case "stop":
		exec = c.stop
	default:
		return usagef("unknown command %q", cmd)
	}
	// Commands other than run and stop take no options of their own, but
	// global options may follow them.
	if cmd != "run" && cmd != "stop" {
		if cmdArgs, err = parseInterspersed(c.flagSet(cmd), cmdArgs, -1); err != nil {
			return err
		}
	}
	addr := c.addr
	if addr == "" {
		addr = c.getenv("FLINK_REST_ADDR")
	}
	if addr == "" {
		addr = defaultAddr
	}
	base, err := normalizeAddr(addr)
	if err != nil {
		return err
	}
	if c.output != "text" && c.output != "json" {
		return usagef("unknown output format %q: want text or json", c.output)
	}
	for _, f := range []struct {
		dst *string
		env string
	}{{&c.tls.CAFile, "FLINK_REST_CA"}, {&c.tls.CertFile, "FLINK_REST_CERT"}, {&c.tls.KeyFile, "FLINK_REST_KEY"}, {&c.tls.TokenFile, "FLINK_REST_TOKEN_FILE"}} {
		if *f.dst == "" {
			*f.dst = c.getenv(f.env)
		}
	}
	cl, err := rest.NewClient(base, rest.WithSecurity(c.tls))
	if err != nil {
		return err
	}
	defer cl.CloseIdleConnections()
	return exec(ctx, cl, cmdArgs)
}

// flagSet returns a flag set with the global options.
func (c *cli) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.addr, "addr", c.addr, "REST address of the cluster")
	if c.output == "" {
		c.output = "text"
	}
	fs.StringVar(&c.output, "output", c.output, "output format: text or json")
	fs.StringVar(&c.tls.CAFile, "ca", c.tls.CAFile, "CA certificate of the server (PEM)")
	fs.StringVar(&c.tls.CertFile, "cert", c.tls.CertFile, "client certificate (PEM)")
	fs.StringVar(&c.tls.KeyFile, "key", c.tls.KeyFile, "client key (PEM)")
	fs.StringVar(&c.tls.TokenFile, "token-file", c.tls.TokenFile, "bearer token file")
	return fs
}

// parseInterspersed parses fs's options anywhere among args and returns
// the other words, in order. After "--" every word is positional. With
// stopAfter >= 0, parsing stops once that many positional words were seen,
// and the rest is returned unparsed.
func parseInterspersed(fs *flag.FlagSet, args []string, stopAfter int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
		if stopAfter >= 0 && len(pos) >= stopAfter {
			return append(pos, args...), nil
		}
	}
}

// normalizeAddr turns host:port or a URL into a base URL without a
// trailing slash.
func normalizeAddr(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return "", usagef("invalid address %q: want http://host:port", addr)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", usagef("invalid address %q: scheme must be http or https", addr)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// security runs "flink security gen-dev-certs DIR [--nodes a,b] [--hosts h,...]".
func (c *cli) security(args []string) error {
	fs := flag.NewFlagSet("security", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	nodes := fs.String("nodes", "node", "node names, comma separated")
	hosts := fs.String("hosts", "", "extra DNS names and IPs of every node certificate, comma separated")
	pos, err := parseInterspersed(fs, args, -1)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "gen-dev-certs" {
		return usagef("usage: flink security gen-dev-certs DIR [--nodes a,b] [--hosts h,...]")
	}
	dir := pos[1]
	cfg := security.DevCertsConfig{Nodes: splitComma(*nodes), Hosts: splitComma(*hosts)}
	if err := security.GenerateDevCerts(dir, cfg); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote a development CA, certificates for %s and client, %s and %s to %s\n"+
		"start each node with FLINK_SECURITY_DIR=%s FLINK_NODE_ID=<name>; call the REST API with\n"+
		"  flink --addr https://HOST:8081 --ca %s --token-file %s list\n",
		strings.Join(cfg.Nodes, ", "), security.GossipKeyringName, security.TokenFileName, dir, dir,
		filepath.Join(dir, security.CAFileName), filepath.Join(dir, security.TokenFileName))
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
