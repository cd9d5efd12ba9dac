// Package web holds flinkgo's web dashboard: a single page of plain HTML,
// CSS and JavaScript, embedded in the binary, that reads the cluster's REST
// API (the JSON endpoints of flink.RESTServer) and draws the cluster
// overview, the job list, each job's graph, exceptions and checkpoints,
// and the task managers. Nothing is loaded from outside the server.
//
// The page calls the REST API by paths relative to itself, so the
// dashboard and the API must be served under one prefix: the page at
// "<prefix>/" and its assets at "<prefix>/web/<name>".
package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy forbids the page to load or send anything to
// another origin.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Handler serves the dashboard: its page at "/" and its assets at
// "/web/<name>"; every other path is answered 404. Mount it on exactly
// those two patterns, next to the REST API.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			rest, ok := strings.CutPrefix(r.URL.Path, "/web/")
			if !ok || !fs.ValidPath(rest) || strings.Contains(rest, "/") || rest == "index.html" {
				http.NotFound(w, r)
				return
			}
			name = rest
		}
		b, err := fs.ReadFile(static, path.Join("static", name))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	})
}
