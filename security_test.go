package flink

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/ha"
	"github.com/flinkgo/flink/internal/rpc"
	"github.com/flinkgo/flink/security"
)

// restClient returns an HTTP client of a secured cluster's REST API: it
// trusts the development CA in dir and sends its REST token.
func restClient(t testing.TB, dir string) *http.Client {
	t.Helper()
	d := security.FromDir(dir, "")
	rt, err := security.ClientConfig{CAFile: d.CAFile, TokenFile: d.TokenFile}.Transport(nil)
	require.NoError(t, err)
	cl := &http.Client{Timeout: 2 * time.Second, Transport: rt}
	t.Cleanup(cl.CloseIdleConnections)
	return cl
}

// securedNodes starts a JobManager node (REST on) and two one-slot
// TaskManager nodes with security on, finding each other by gossip, and
// returns the JobManager, the TaskManagers and the directory of the
// development secret (nodes "jm", "tm-0", "tm-1", "client").
func securedNodes(t *testing.T) (*Node, []*Node, string) {
	jm, tms, dir, _ := securedNodesLogged(t)
	return jm, tms, dir
}

// securedNodesLogged is securedNodes, and returns the JobManager node's
// log as well.
func securedNodesLogged(t *testing.T) (*Node, []*Node, string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	dir := t.TempDir()
	require.NoError(t, security.GenerateDevCerts(dir, security.DevCertsConfig{Nodes: []string{"jm", "tm-0", "tm-1"}}))
	jmCfg := DefaultNodeConfig(RoleJobManager)
	jmCfg.BindAddr, jmCfg.GossipAddr, jmCfg.RESTAddr, jmCfg.Registry = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", testRegistry()
	jmCfg.Security = security.FromDir(dir, "jm")
	jmCfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	jm, err := NewNode(jmCfg)
	require.NoError(t, err)
	require.NoError(t, jm.Start(context.Background()))
	t.Cleanup(func() { jm.Close() })
	var tms []*Node
	for i := range 2 {
		cfg := DefaultNodeConfig(RoleTaskManager)
		cfg.Slots, cfg.Registry = 1, testRegistry()
		cfg.GossipAddr, cfg.Peers = "127.0.0.1:0", []string{jm.GossipAddr()}
		cfg.Security = security.FromDir(dir, fmt.Sprintf("tm-%d", i)) // ID: the certificate's name
		tm, err := NewNode(cfg)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		require.NoError(t, tm.Start(ctx))
		cancel()
		t.Cleanup(func() { tm.Close() })
		tms = append(tms, tm)
	}
	waitForSlots(t, jm.ResourceManager(), 2)
	return jm, tms, dir, logs
}

// logBuffer collects log output; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSecuredClusterRunsJobsAndRefusesStrangers: with security on, a job
// runs across two TaskManagers (RPC, data exchange and gossip all secured)
// with exact results, while a process without the cluster secret is
// refused on every port: RPC, data, gossip and REST.
func TestSecuredClusterRunsJobsAndRefusesStrangers(t *testing.T) {
	jm, tms, dir, logs := securedNodesLogged(t)
	for i, tm := range tms {
		require.Equal(t, fmt.Sprintf("tm-%d", i), tm.id, "a node's id defaults to its certificate's name")
	}

	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := jm.Dispatcher().SubmitJob(ctx, JobSubmission{Name: "keyed-totals", Args: []string{"20000", out}, Parallelism: 2})
	require.NoError(t, err)
	res, err := jm.Dispatcher().JobResult(ctx, id)
	require.NoError(t, err)
	require.NoError(t, res.Err)
	require.Positive(t, res.Vertices[0].BytesOut, "the keyed exchange crossed the (secured) network")
	requireTotals(t, out, 20000, "keyed-totals")

	stranger := t.TempDir()
	require.NoError(t, security.GenerateDevCerts(stranger, security.DevCertsConfig{Nodes: []string{"tm-9"}}))
	strangerSec, err := security.Load(security.FromDir(stranger, "tm-9"))
	require.NoError(t, err)

	// RPC: in plaintext or with a certificate of another CA, nothing is
	// served; a TaskManager cannot register.
	for name, cfg := range map[string]*tls.Config{"plaintext": nil, "other CA": laxTLS(strangerSec)} {
		cl := rpc.NewClient(jm.Addr(), rpcCodes, cfg)
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := rpc.Call[TaskManagerRegistration, empty](cctx, cl, "rm.RegisterTaskManager",
			TaskManagerRegistration{ID: "tm-9", Address: "127.0.0.1:1/taskmanager/tm-9", Slots: []SlotStatus{{}}})
		ccancel()
		cl.Close()
		require.Error(t, err, name)
	}
	require.Len(t, jm.ResourceManager().TaskManagers(), 2, "no stranger registered")
	// Each refusal is logged with its reason.
	require.Eventually(t, func() bool {
		l := logs.String()
		return strings.Contains(l, "rpc: connection refused") && strings.Contains(l, "certificate signed by unknown authority") &&
			strings.Contains(l, "first record does not look like a TLS handshake")
	}, 10*time.Second, 10*time.Millisecond, "the refusals are logged: %s", logs)

	// Data: a consumer without the secret gets no partition.
	dataAddr := tms[0].netEnv.Addr()
	for name, cfg := range map[string]*tls.Config{"plaintext": nil, "other CA": laxTLS(strangerSec)} {
		c, err := net.Dial("tcp", dataAddr)
		require.NoError(t, err)
		if cfg != nil {
			tc := tls.Client(c, cfg)
			tc.Write([]byte("x"))
			c = tc
		} else {
			c.Write(make([]byte, 64))
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = io.ReadAll(c)
		c.Close()
		require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "%s: the data port closes the connection", name)
	}

	// Gossip: a node without the keyring, or with another, cannot join.
	for name, keys := range map[string][][]byte{"no key": nil, "other key": strangerSec.GossipKeys} {
		mc := ha.LocalMembershipConfig()
		mc.BindAddr, mc.NodeName, mc.Keys = "127.0.0.1", "rogue", keys
		mc.Meta = ha.NodeMeta{NodeID: "rogue", RPCAddr: "127.0.0.1:1", Fingerprint: testRegistry().Fingerprint(), Version: "flinkgo"}
		m, err := ha.NewMembership(mc)
		require.NoError(t, err, name)
		jctx, jcancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = m.Join(jctx, []string{jm.GossipAddr()})
		jcancel()
		require.Error(t, err, "%s: a rogue member cannot join", name)
		m.Close()
		for _, mem := range jm.members.Members() {
			require.NotEqual(t, "rogue", mem.Name, name)
		}
	}

	// REST: 401 without credentials or with a wrong token; the token or a
	// client certificate admits; the dashboard's page loads to ask for it.
	ca := security.FromDir(dir, "").CAFile
	caOnly, err := security.ClientConfig{CAFile: ca}.TLS()
	require.NoError(t, err)
	withCert, err := security.ClientConfig{CAFile: ca, CertFile: security.FromDir(dir, "client").CertFile,
		KeyFile: security.FromDir(dir, "client").KeyFile}.TLS()
	require.NoError(t, err)
	token, err := security.ClientConfig{TokenFile: security.FromDir(dir, "").TokenFile}.Token()
	require.NoError(t, err)
	get := func(cfg *tls.Config, path, auth string) int {
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+jm.RESTAddr()+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, get(caOnly, "/jobs", ""))
	require.Equal(t, http.StatusUnauthorized, get(caOnly, "/jobs", "Bearer not-the-token-0123456789abcdef"))
	require.Equal(t, http.StatusOK, get(caOnly, "/jobs", "Bearer "+token))
	require.Equal(t, http.StatusOK, get(withCert, "/jobs", ""))
	require.Equal(t, http.StatusOK, get(caOnly, "/", ""))
	require.Equal(t, http.StatusUnauthorized, get(caOnly, "/metrics", ""))
	resp, err := http.Get("http://" + jm.RESTAddr() + "/jobs")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "no plaintext REST: Go's TLS server answers 400")
}

// laxTLS is a stranger's client configuration: its own certificate, and
// it trusts any server.
func laxTLS(m *security.Material) *tls.Config {
	c := m.Internal.Clone()
	c.VerifyConnection = nil
	return c
}

// TestTaskManagerIDBoundToCertificate: with security on, a TaskManager
// registers only under a name its certificate carries: a member of the
// cluster cannot pose as another.
func TestTaskManagerIDBoundToCertificate(t *testing.T) {
	jm, _, dir := securedNodes(t)

	cfg := DefaultNodeConfig(RoleTaskManager)
	cfg.ID, cfg.Slots, cfg.Registry, cfg.JobManagerAddr = "tm-0", 1, testRegistry(), jm.Addr()
	cfg.Security = security.FromDir(dir, "tm-1")
	n, err := NewNode(cfg)
	require.NoError(t, err)
	err = n.Start(context.Background())
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorContains(t, err, `node id "tm-0" is not a name of its certificate`)
	n.Close()

	// Bypassing the node's own check, the ResourceManager refuses it.
	tm1, err := security.Load(security.FromDir(dir, "tm-1"))
	require.NoError(t, err)
	cl := rpc.NewClient(jm.Addr(), rpcCodes, tm1.Internal)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, method := range []string{"rm.RegisterTaskManager", "rm.Heartbeat"} {
		var err error
		if method == "rm.Heartbeat" {
			_, err = rpc.Call[TaskManagerHeartbeat, empty](ctx, cl, method, TaskManagerHeartbeat{ID: "tm-0"})
		} else {
			_, err = rpc.Call[TaskManagerRegistration, empty](ctx, cl, method,
				TaskManagerRegistration{ID: "tm-0", Address: "127.0.0.1:1/taskmanager/tm-0", Slots: []SlotStatus{{}}})
		}
		require.ErrorIs(t, err, ErrIdentityMismatch, method)
	}
	require.Len(t, jm.ResourceManager().TaskManagers(), 2)
	for _, tm := range jm.ResourceManager().TaskManagers() {
		require.NotEqual(t, "127.0.0.1:1/taskmanager/tm-0", tm.Address, "the registered address is untouched")
	}
}

// TestDashboardSecuredBrowser: against a cluster with security on, the
// dashboard's page loads, asks for the REST token, says when a token is
// refused, and with the right one shows the cluster.
func TestDashboardSecuredBrowser(t *testing.T) {
	browser := findBrowser(t)
	dir := t.TempDir()
	require.NoError(t, security.GenerateDevCerts(dir, security.DevCertsConfig{Nodes: []string{"node"}}))
	cfg := DefaultNodeConfig(RoleJobManager | RoleTaskManager)
	cfg.BindAddr, cfg.RESTAddr, cfg.Slots, cfg.Registry = "127.0.0.1:0", "127.0.0.1:0", 3, testRegistry()
	cfg.Security = security.FromDir(dir, "node")
	n, err := NewNode(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	defer n.Close()
	token, err := security.ClientConfig{TokenFile: cfg.Security.TokenFile}.Token()
	require.NoError(t, err)

	// The development CA is not the browser's: it is told to trust any.
	ctx := startBrowser(t, browser, chromedp.Flag("ignore-certificate-errors", true))
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		require.NoError(t, chromedp.Do(sctx, actions...), name)
	}
	poll := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(time.Minute))
	}
	step("the page asks for the token",
		chromedp.Navigate("https://"+n.RESTAddr()+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login-token")))
	step("a wrong token is refused",
		chromedp.SendKeys(chromedp.CSS("#login-token"), "wrong-token-0123456789"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	step("the token shows the cluster",
		chromedp.SetValue(chromedp.CSS("#login-token"), token),
		chromedp.Click(chromedp.CSS("#login-submit")),
		poll(`(document.querySelector("#ov-slots-total")||{}).textContent === "3"`),
		poll(`document.querySelector("#login").hidden`))
}

// TestSecurityConfigFromEnv: FLINK_SECURITY_DIR turns security on with the
// files gen-dev-certs writes for the node's id; single files override it;
// FLINK_SECURITY alone without files is an invalid configuration.
func TestSecurityConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, security.GenerateDevCerts(dir, security.DevCertsConfig{Nodes: []string{"tm-x"}}))
	t.Setenv("FLINK_SECURITY_DIR", dir)
	t.Setenv("FLINK_SECURITY_CA", "/elsewhere/ca.pem")
	cfg, _, err := NodeConfigFromEnv(DefaultNodeConfig(RoleTaskManager), []string{"-id", "tm-x"})
	require.NoError(t, err)
	want := security.FromDir(dir, "tm-x")
	want.CAFile = "/elsewhere/ca.pem"
	require.Equal(t, want, cfg.Security)

	t.Setenv("FLINK_SECURITY_DIR", "")
	t.Setenv("FLINK_SECURITY_CA", "")
	t.Setenv("FLINK_SECURITY", "true")
	cfg, _, err = NodeConfigFromEnv(DefaultNodeConfig(RoleTaskManager), []string{"-jobmanager", "jm:6123"})
	require.NoError(t, err)
	cfg.Registry = NewRegistry()
	require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig)
	require.ErrorContains(t, cfg.Validate(), "security is on but no CA file is set")
	// Files that cannot be loaded fail Start with the reason.
	cfg.Security = security.FromDir(t.TempDir(), "tm-x")
	cfg.BindAddr = "127.0.0.1:0"
	n, err := NewNode(cfg)
	require.NoError(t, err)
	err = n.Start(context.Background())
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorContains(t, err, "CA file")
	n.Close()

	t.Setenv("FLINK_SECURITY", "maybe")
	_, _, err = NodeConfigFromEnv(DefaultNodeConfig(RoleTaskManager), nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
}
