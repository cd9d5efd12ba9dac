package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink"
	"github.com/flinkgo/flink/security"
)

// TestSecuredCluster: the CLI writes a development secret, and with it
// reaches a node whose security is on, by token or client certificate;
// without credentials it is refused.
func TestSecuredCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secret")
	var out, errOut bytes.Buffer
	code := newCLI(&out, &errOut, func(string) string { return "" }).main(context.Background(),
		[]string{"security", "gen-dev-certs", dir, "--nodes", "node"})
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), "FLINK_SECURITY_DIR="+dir)
	for _, f := range []string{"ca.pem", "node.pem", "node-key.pem", "client.pem", "client-key.pem", "gossip.keyring", "rest.token"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	code = newCLI(&out, &errOut, func(string) string { return "" }).main(context.Background(),
		[]string{"security", "gen-dev-certs", dir})
	assert.Equal(t, exitFailed, code, "never overwrites a secret")

	cfg := flink.DefaultNodeConfig(flink.RoleJobManager | flink.RoleTaskManager)
	cfg.BindAddr, cfg.RESTAddr, cfg.Slots, cfg.Registry = "127.0.0.1:0", "127.0.0.1:0", 2, testRegistry()
	cfg.Security = security.FromDir(dir, "node")
	n, err := flink.NewNode(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	defer n.Close()
	addr := "https://" + n.RESTAddr()
	ca := filepath.Join(dir, "ca.pem")

	r := cmd(context.Background(), addr, "--ca", ca, "--token-file", filepath.Join(dir, "rest.token"), "run", "count", "100")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "FINISHED")

	env := map[string]string{"FLINK_REST_ADDR": addr, "FLINK_REST_CA": ca,
		"FLINK_REST_CERT": filepath.Join(dir, "client.pem"), "FLINK_REST_KEY": filepath.Join(dir, "client-key.pem")}
	out.Reset()
	errOut.Reset()
	code = newCLI(&out, &errOut, func(k string) string { return env[k] }).main(context.Background(), []string{"list"})
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), "FINISHED")

	r = cmd(context.Background(), addr, "--ca", ca, "list")
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, "HTTP 401")

	bad := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(bad, []byte("not-the-cluster-token-0123\n"), 0o600))
	r = cmd(context.Background(), addr, "--ca", ca, "--token-file", bad, "list")
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, "HTTP 401")

	r = cmd(context.Background(), addr, "list") // the system roots do not know the development CA
	assert.Equal(t, exitUnreachable, r.code)
	assert.Contains(t, r.stderr, "certificate")
}
