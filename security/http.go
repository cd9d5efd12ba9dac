package security

import (
	"crypto/tls"
	"net/http"
	"strings"
)

// Authorized reports whether a REST request may proceed: it came over TLS
// with a client certificate from the cluster CA (the server verified it),
// or it carries "Authorization: Bearer TOKEN" with a configured token.
func (m *Material) Authorized(r *http.Request) bool {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && m.AuthorizeToken(strings.TrimSpace(token))
}

// RequireAuth wraps a REST handler: requests that are not Authorized get
// 401 with a Flink-shaped error body, except those public admits (the
// dashboard's static files, which hold no data; nil admits none).
func (m *Material) RequireAuth(h http.Handler, public func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.Authorized(r) || (public != nil && public(r)) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="flink"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":["unauthorized: present a client certificate from the cluster CA or a bearer token"]}` + "\n"))
	})
}

// ClientConfig is what a REST client (the flink CLI, a script) needs to
// reach a secured cluster.
type ClientConfig struct {
	// CAFile verifies the server's certificate; empty uses the system's
	// roots.
	CAFile string
	// CertFile and KeyFile, if set, are the client's certificate.
	CertFile, KeyFile string
	// TokenFile, if set, holds the bearer token (its first line).
	TokenFile string
}

// TLS returns the client's TLS configuration, or nil if c sets no CA and
// no certificate.
func (c ClientConfig) TLS() (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := loadCA(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, &configError{"client certificate " + c.CertFile + " and key " + c.KeyFile + ": " + err.Error()}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Token returns the bearer token from TokenFile, or "" if none is set.
func (c ClientConfig) Token() (string, error) {
	if c.TokenFile == "" {
		return "", nil
	}
	lines, err := readLines(c.TokenFile, "REST token file")
	if err != nil {
		return "", err
	}
	if len(lines) == 0 {
		return "", &configError{"REST token file " + c.TokenFile + " holds no token"}
	}
	return lines[0], nil
}

type configError struct{ msg string }

func (e *configError) Error() string { return ErrInvalidConfig.Error() + ": " + e.msg }
func (e *configError) Unwrap() error { return ErrInvalidConfig }

// Transport returns an HTTP transport for a REST client: base (nil: a
// clone of http.DefaultTransport) with c's TLS settings, which adds c's
// bearer token, if any, to every request, redirects to the leader
// included.
func (c ClientConfig) Transport(base *http.Transport) (http.RoundTripper, error) {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	tlsCfg, err := c.TLS()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		base.TLSClientConfig = tlsCfg
	}
	token, err := c.Token()
	if err != nil || token == "" {
		return base, err
	}
	return bearer{token, base}, nil
}

// bearer adds a bearer token to each request.
type bearer struct {
	token string
	next  *http.Transport
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (b bearer) CloseIdleConnections() { b.next.CloseIdleConnections() }
