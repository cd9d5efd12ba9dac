// Package security turns on, with one switch, what secures a flinkgo
// cluster: mutual TLS 1.3 for the RPC, data-exchange and Raft connections
// (every peer presents a certificate signed by the cluster's CA), an
// encryption keyring for the memberlist gossip, and TLS for the REST API
// with client certificates or bearer tokens.
//
// A Config names files; Load reads them into Material, which the node hands
// to each of its servers and clients. GenerateDevCerts writes a development
// CA, node certificates, a gossip keyring and a REST token, so that a
// secured cluster can be tried in one command (flink security
// gen-dev-certs DIR).
//
// The cluster CA is the cluster's identity: any holder of a certificate it
// signed is a member. A node's id is bound to its certificate: a
// TaskManager may register only under a name its certificate carries (its
// common name or a DNS name). Host names are not checked between members,
// as in Flink's internal SSL, because members reach each other by
// addresses that containers and schedulers assign.
package security

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrInvalidConfig: a security setting or one of its files cannot be used.
var ErrInvalidConfig = errors.New("security: invalid config")

// The file names GenerateDevCerts writes and FromDir expects.
const (
	CAFileName        = "ca.pem"
	GossipKeyringName = "gossip.keyring"
	TokenFileName     = "rest.token"
)

// Config names the files that secure a node. The zero value is security
// off. Every node of a cluster sets the same CA and keyring; each has its
// own certificate.
type Config struct {
	// Enabled is the switch. With it on, CAFile, CertFile, KeyFile and
	// GossipKeyringFile are required.
	Enabled bool
	// CAFile holds the cluster CA's certificate (PEM). Peers' certificates
	// must chain to it.
	CAFile string
	// CertFile and KeyFile hold the node's certificate and private key
	// (PEM). The certificate serves as both TLS server and client
	// certificate, and its common name (or a DNS name) is the node's
	// identity.
	CertFile string
	KeyFile  string
	// GossipKeyringFile holds the memberlist keyring: one base64 key of 16,
	// 24 or 32 bytes per line, the first used to encrypt and all accepted,
	// so keys can be rotated by rolling restarts (add the new key second,
	// then move it first, then remove the old one).
	GossipKeyringFile string
	// TokenFile, if set, holds the bearer tokens the REST API accepts, one
	// per line (blank lines and lines starting with # are skipped). A REST
	// client is admitted with a certificate from the cluster CA or with one
	// of these tokens; without TokenFile only certificates admit.
	TokenFile string
}

// FromDir returns a Config with security on whose files are those
// GenerateDevCerts writes in dir for node name: ca.pem, name.pem,
// name-key.pem, gossip.keyring and rest.token.
func FromDir(dir, name string) Config {
	return Config{
		Enabled:           true,
		CAFile:            filepath.Join(dir, CAFileName),
		CertFile:          filepath.Join(dir, name+".pem"),
		KeyFile:           filepath.Join(dir, name+"-key.pem"),
		GossipKeyringFile: filepath.Join(dir, GossipKeyringName),
		TokenFile:         filepath.Join(dir, TokenFileName),
	}
}

// Validate reports the first setting that cannot work. It does not read
// the files; Load does.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	for _, f := range []struct{ name, path string }{
		{"CA file", c.CAFile}, {"certificate file", c.CertFile},
		{"key file", c.KeyFile}, {"gossip keyring file", c.GossipKeyringFile},
	} {
		if f.path == "" {
			return fmt.Errorf("%w: security is on but no %s is set", ErrInvalidConfig, f.name)
		}
	}
	return nil
}

// Material is a loaded Config: what a node's servers and clients use. It is
// immutable and safe for concurrent use.
type Material struct {
	// Internal is the TLS configuration of the RPC, data-exchange and Raft
	// connections, as server and as client: TLS 1.3, the node's
	// certificate, and peers verified against the cluster CA.
	Internal *tls.Config
	// REST is the REST server's TLS configuration: it asks for a client
	// certificate and verifies one given; Authorize decides.
	REST *tls.Config
	// GossipKeys is the memberlist keyring, the primary key first.
	GossipKeys [][]byte
	// Identity is the node's name from its certificate (its common name,
	// else its first DNS name).
	Identity string

	names  []string // every name the node's certificate carries
	tokens [][]byte
}

// Load reads c's files. It returns nil, nil when security is off.
func Load(c Config) (*Material, error) {
	if !c.Enabled {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	pool, err := loadCA(c.CAFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: node certificate %s and key %s: %v", ErrInvalidConfig, c.CertFile, c.KeyFile, err)
	}
	leaf := cert.Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: node certificate %s is not usable with the CA %s: %v", ErrInvalidConfig, c.CertFile, c.CAFile, err)
	}
	m := &Material{names: Names(leaf)}
	if len(m.names) == 0 {
		return nil, fmt.Errorf("%w: node certificate %s has no common name or DNS name to identify the node", ErrInvalidConfig, c.CertFile)
	}
	m.Identity = m.names[0]
	m.Internal = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		// Members dial each other by assigned addresses, so the server's
		// host name is not checked; VerifyConnection checks its chain.
		InsecureSkipVerify: true,
		VerifyConnection:   verifyPeer(pool),
	}
	m.REST = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}
	if m.GossipKeys, err = readKeyring(c.GossipKeyringFile); err != nil {
		return nil, err
	}
	if c.TokenFile != "" {
		if m.tokens, err = readTokens(c.TokenFile); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// verifyPeer checks the peer's certificate chain against pool, as a
// server does with client certificates; a client needs it because
// InsecureSkipVerify turns off its own check along with the host name.
func verifyPeer(pool *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("security: the peer presented no certificate")
		}
		opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("security: the peer's certificate is not from the cluster CA: %w", err)
		}
		return nil
	}
}

// Names returns the names a certificate identifies: its common name, then
// its DNS names.
func Names(c *x509.Certificate) []string {
	var names []string
	if c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	for _, n := range c.DNSNames {
		if n != c.Subject.CommonName {
			names = append(names, n)
		}
	}
	return names
}

// HasName reports whether certificate c carries name.
func HasName(c *x509.Certificate, name string) bool {
	for _, n := range Names(c) {
		if n == name {
			return true
		}
	}
	return false
}

// Names returns every name the node's certificate carries: its ids.
func (m *Material) Names() []string { return slices.Clone(m.names) }

// AuthorizeToken reports whether token is one of the REST tokens. The
// comparison takes the same time whichever token it matches or how much of
// one it shares.
func (m *Material) AuthorizeToken(token string) bool {
	ok := 0
	for _, t := range m.tokens {
		ok |= subtle.ConstantTimeCompare(t, []byte(token))
	}
	return ok == 1
}

// HasTokens reports whether REST bearer tokens are configured.
func (m *Material) HasTokens() bool { return len(m.tokens) > 0 }

func loadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: CA file: %v", ErrInvalidConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrInvalidConfig, path)
	}
	return pool, nil
}

// LoadCAPool reads a PEM file of CA certificates, for clients of the REST
// API.
func LoadCAPool(path string) (*x509.CertPool, error) { return loadCA(path) }

func readKeyring(path string) ([][]byte, error) {
	lines, err := readLines(path, "gossip keyring")
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, 0, len(lines))
	for i, l := range lines {
		k, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			return nil, fmt.Errorf("%w: gossip keyring %s line %d: not base64", ErrInvalidConfig, path, i+1)
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("%w: gossip keyring %s line %d: a key of %d bytes, want 16, 24 or 32", ErrInvalidConfig, path, i+1, n)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: gossip keyring %s holds no key", ErrInvalidConfig, path)
	}
	return keys, nil
}

func readTokens(path string) ([][]byte, error) {
	lines, err := readLines(path, "REST token file")
	if err != nil {
		return nil, err
	}
	var tokens [][]byte
	for i, l := range lines {
		if len(l) < 16 {
			return nil, fmt.Errorf("%w: REST token file %s line %d: a token of %d characters, want at least 16", ErrInvalidConfig, path, i+1, len(l))
		}
		tokens = append(tokens, []byte(l))
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%w: REST token file %s holds no token", ErrInvalidConfig, path)
	}
	return tokens, nil
}

// readLines returns the file's non-blank lines that are not comments,
// trimmed. Secret files are small; a larger one is refused.
func readLines(path, what string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, what, err)
	}
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("%w: %s %s is %d bytes, want at most 1 MiB", ErrInvalidConfig, what, path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, what, err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, nil
}
