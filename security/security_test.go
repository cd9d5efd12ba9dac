package security

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// devMaterial writes a development secret for nodes into a new directory
// and loads the first node's material.
func devMaterial(t *testing.T, nodes ...string) (string, *Material) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, GenerateDevCerts(dir, DevCertsConfig{Nodes: nodes}))
	m, err := Load(FromDir(dir, nodes[0]))
	require.NoError(t, err)
	return dir, m
}

func TestGenerateDevCertsAndLoad(t *testing.T) {
	dir, m := devMaterial(t, "jm", "tm-1")
	require.Equal(t, "jm", m.Identity)
	require.Contains(t, m.Names(), "localhost")
	require.Len(t, m.GossipKeys, 1)
	require.Len(t, m.GossipKeys[0], 32)
	require.True(t, m.HasTokens())
	require.Equal(t, uint16(tls.VersionTLS13), m.Internal.MinVersion)

	token, err := ClientConfig{TokenFile: filepath.Join(dir, TokenFileName)}.Token()
	require.NoError(t, err)
	require.True(t, m.AuthorizeToken(token))
	require.False(t, m.AuthorizeToken(token[:len(token)-1]+"x"))
	require.False(t, m.AuthorizeToken(""))

	fi, err := os.Stat(filepath.Join(dir, "tm-1-key.pem"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "keys are readable only by their owner")

	err = GenerateDevCerts(dir, DevCertsConfig{Nodes: []string{"jm"}})
	require.ErrorIs(t, err, ErrInvalidConfig, "never overwrites a secret")
	require.ErrorContains(t, err, "already exists")
	require.ErrorIs(t, GenerateDevCerts(t.TempDir(), DevCertsConfig{Nodes: []string{"../x"}}), ErrInvalidConfig)
}

func TestLoadRefusesBadFiles(t *testing.T) {
	dir, _ := devMaterial(t, "node")
	other, _ := devMaterial(t, "node")
	write := func(name, text string) string {
		p := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no CA":             {func(c *Config) { c.CAFile = "" }, "no CA file"},
		"missing CA":        {func(c *Config) { c.CAFile = filepath.Join(dir, "nope.pem") }, "no such file"},
		"CA not PEM":        {func(c *Config) { c.CAFile = write("ca.pem", "hello") }, "no PEM certificate"},
		"cert of other CA":  {func(c *Config) { c.CAFile = filepath.Join(other, CAFileName) }, "not usable with the CA"},
		"key mismatch":      {func(c *Config) { c.KeyFile = filepath.Join(other, "node-key.pem") }, "private key does not match"},
		"keyring not b64":   {func(c *Config) { c.GossipKeyringFile = write("k", "!!!\n") }, "not base64"},
		"keyring bad size":  {func(c *Config) { c.GossipKeyringFile = write("k", "AAAA\n") }, "a key of 3 bytes"},
		"keyring empty":     {func(c *Config) { c.GossipKeyringFile = write("k", "# nothing\n\n") }, "holds no key"},
		"short token":       {func(c *Config) { c.TokenFile = write("t", "secret\n") }, "at least 16"},
		"token file absent": {func(c *Config) { c.TokenFile = filepath.Join(dir, "none") }, "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			c := FromDir(dir, "node")
			tc.mod(&c)
			_, err := Load(c)
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
	m, err := Load(Config{})
	require.NoError(t, err)
	require.Nil(t, m, "security off loads nothing")
}

// handshakeServer accepts connections on loopback and reports the outcome
// of each ServerHandshake.
func handshakeServer(t *testing.T, cfg *tls.Config, timeout time.Duration) (string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	results := make(chan error, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tc, peer, err := ServerHandshake(context.Background(), c, cfg, timeout)
			if err == nil {
				if peer == nil {
					err = errors.New("no peer certificate")
				}
				tc.Close()
			}
			results <- err
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String(), results
}

// TestHandshakeRefusals: a cluster member's server admits only peers with
// a valid certificate from the cluster CA, and says why it refuses the
// others.
func TestHandshakeRefusals(t *testing.T) {
	dir, server := devMaterial(t, "node", "peer")
	_, stranger := devMaterial(t, "peer")
	addr, results := handshakeServer(t, server.Internal, 5*time.Second)

	dial := func(cfg *tls.Config) error {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tc, err := ClientHandshake(ctx, c, cfg)
		if err == nil {
			// TLS 1.3 clients finish before the server checked their
			// certificate; a read shows the server's verdict.
			tc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = tc.Read(make([]byte, 1))
		}
		return err
	}

	peer, err := Load(FromDir(dir, "peer"))
	require.NoError(t, err)
	dial(peer.Internal)
	require.NoError(t, <-results, "a member is admitted")

	// A stranger that trusts anyone, with a certificate of its own CA.
	lax := stranger.Internal.Clone()
	lax.VerifyConnection = nil
	dial(lax)
	require.ErrorContains(t, <-results, "certificate signed by unknown authority", "a certificate of another CA")

	noCert := server.Internal.Clone()
	noCert.Certificates = nil
	dial(noCert)
	require.ErrorContains(t, <-results, "didn't provide a certificate")

	require.NoError(t, IssueDevCert(dir, "expired", nil, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)))
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "expired.pem"), filepath.Join(dir, "expired-key.pem"))
	require.NoError(t, err)
	expired := server.Internal.Clone()
	expired.Certificates = []tls.Certificate{cert}
	dial(expired)
	require.ErrorContains(t, <-results, "expired")

	// The member's client refuses a server of another CA as well.
	addr2, results2 := handshakeServer(t, stranger.Internal, 5*time.Second)
	c, err := net.Dial("tcp", addr2)
	require.NoError(t, err)
	_, err = ClientHandshake(context.Background(), c, server.Internal)
	require.ErrorContains(t, err, "not from the cluster CA")
	<-results2

	// Plaintext bytes, and a peer that says nothing, are refused too: the
	// latter once the handshake timeout passes.
	c, err = net.Dial("tcp", addr)
	require.NoError(t, err)
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	require.Error(t, <-results)
	c.Close()
	addr3, results3 := handshakeServer(t, server.Internal, 100*time.Millisecond)
	c, err = net.Dial("tcp", addr3)
	require.NoError(t, err)
	defer c.Close()
	require.ErrorIs(t, <-results3, context.DeadlineExceeded)
}

func TestLazyServerHandshakesOnFirstUse(t *testing.T) {
	dir, server := devMaterial(t, "node", "peer")
	peer, err := Load(FromDir(dir, "peer"))
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	failed := make(chan error, 1)
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		lc := LazyServer(c, server.Internal, 5*time.Second, func(err error) { failed <- err })
		defer lc.Close()
		b := make([]byte, 5)
		if _, err := lc.Read(b); err == nil {
			got <- string(b)
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), peer.Internal)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "hello", <-got)
	require.Empty(t, failed)
}

func TestRequireAuth(t *testing.T) {
	dir, m := devMaterial(t, "node")
	h := m.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		func(r *http.Request) bool { return r.URL.Path == "/public" })
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = m.REST
	srv.StartTLS()
	defer srv.Close()

	token, err := ClientConfig{TokenFile: filepath.Join(dir, TokenFileName)}.Token()
	require.NoError(t, err)
	caOnly, err := ClientConfig{CAFile: filepath.Join(dir, CAFileName)}.TLS()
	require.NoError(t, err)
	withCert, err := ClientConfig{CAFile: filepath.Join(dir, CAFileName), CertFile: filepath.Join(dir, "client.pem"),
		KeyFile: filepath.Join(dir, "client-key.pem")}.TLS()
	require.NoError(t, err)
	status := func(cfg *tls.Config, path, auth string) int {
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, status(caOnly, "/jobs", ""))
	require.Equal(t, http.StatusUnauthorized, status(caOnly, "/jobs", "Bearer wrong-token-0123456789"))
	require.Equal(t, http.StatusUnauthorized, status(caOnly, "/jobs", "Basic "+token))
	require.Equal(t, http.StatusOK, status(caOnly, "/jobs", "Bearer "+token))
	require.Equal(t, http.StatusOK, status(caOnly, "/jobs", "bearer  "+token))
	require.Equal(t, http.StatusOK, status(withCert, "/jobs", ""), "a client certificate from the cluster CA admits")
	require.Equal(t, http.StatusOK, status(caOnly, "/public", ""))
}
