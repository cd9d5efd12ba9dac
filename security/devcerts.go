package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// caKeyFileName holds the development CA's private key, for IssueDevCert.
const caKeyFileName = "ca-key.pem"

// DevCertsConfig says what GenerateDevCerts writes.
type DevCertsConfig struct {
	// Nodes names the node certificates to issue; each name is the node's
	// id (FLINK_NODE_ID) and its certificate's common name. Default:
	// "node". "client" is always issued too, for the flink CLI.
	Nodes []string
	// Hosts are extra DNS names and IP addresses every node certificate
	// carries, besides its name, localhost, 127.0.0.1 and ::1.
	Hosts []string
	// Validity is how long the certificates are valid. Default: one year.
	Validity time.Duration
}

// GenerateDevCerts writes into dir (created if missing) a development
// cluster secret: a CA (ca.pem, ca-key.pem), a certificate and key per node
// (NAME.pem, NAME-key.pem) and for the CLI (client.pem, client-key.pem), a
// gossip keyring (gossip.keyring) and a REST bearer token (rest.token). It
// refuses to overwrite any file. Keys are ECDSA P-256 and readable only by
// the owner. For production, issue certificates from your own CA.
func GenerateDevCerts(dir string, cfg DevCertsConfig) error {
	if len(cfg.Nodes) == 0 {
		cfg.Nodes = []string{"node"}
	}
	if cfg.Validity <= 0 {
		cfg.Validity = 365 * 24 * time.Hour
	}
	names := append([]string{"ca", "client"}, cfg.Nodes...)
	for _, n := range names {
		if n == "" || filepath.Base(n) != n || n == "." || n == ".." {
			return fmt.Errorf("%w: node name %q is not a plain file name", ErrInvalidConfig, n)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("security: %w", err)
	}
	for _, f := range append(certFiles(names), GossipKeyringName, TokenFileName) {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s already exists in %s; remove it or pick another directory", ErrInvalidConfig, f, dir)
		}
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "flinkgo development CA", Organization: []string{"flinkgo"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(cfg.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writePEM(dir, CAFileName, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return err
	}
	if err := writePEM(dir, caKeyFileName, "PRIVATE KEY", kb, 0o600); err != nil {
		return err
	}
	for _, n := range append([]string{"client"}, cfg.Nodes...) {
		if err := IssueDevCert(dir, n, cfg.Hosts, now.Add(-time.Hour), now.Add(cfg.Validity)); err != nil {
			return err
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := writeFile(dir, GossipKeyringName, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}
	token := make([]byte, 32)
	rand.Read(token)
	return writeFile(dir, TokenFileName, []byte(hex.EncodeToString(token)+"\n"), 0o600)
}

// IssueDevCert issues a certificate for name, valid from notBefore to
// notAfter, signed by the development CA in dir (ca.pem, ca-key.pem), and
// writes it to NAME.pem and NAME-key.pem there, replacing them. The
// certificate serves as TLS server and client certificate, with name as
// its common name and DNS names name, localhost and hosts, and IP
// addresses 127.0.0.1, ::1 and those among hosts.
func IssueDevCert(dir, name string, hosts []string, notBefore, notAfter time.Time) error {
	caCert, caKey, err := loadDevCA(dir)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	t := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"flinkgo"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{name, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else if h != "" {
			t.DNSNames = append(t.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, t, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, name+".pem"))
	os.Remove(filepath.Join(dir, name+"-key.pem"))
	if err := writePEM(dir, name+"-key.pem", "PRIVATE KEY", kb, 0o600); err != nil {
		return err
	}
	return writePEM(dir, name+".pem", "CERTIFICATE", der, 0o644)
}

func loadDevCA(dir string) (*x509.Certificate, any, error) {
	cb, err := os.ReadFile(filepath.Join(dir, CAFileName))
	if err != nil {
		return nil, nil, fmt.Errorf("security: development CA: %w", err)
	}
	kb, err := os.ReadFile(filepath.Join(dir, caKeyFileName))
	if err != nil {
		return nil, nil, fmt.Errorf("security: development CA key: %w", err)
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		return nil, nil, fmt.Errorf("%w: development CA in %s is not PEM", ErrInvalidConfig, dir)
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: development CA: %v", ErrInvalidConfig, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: development CA key: %v", ErrInvalidConfig, err)
	}
	return cert, key, nil
}

func certFiles(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, n+".pem", n+"-key.pem")
	}
	return out
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writePEM(dir, name, typ string, der []byte, mode os.FileMode) error {
	return writeFile(dir, name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// writeFile creates dir/name exclusively with mode.
func writeFile(dir, name string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("security: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("security: %w", err)
	}
	return f.Close()
}
