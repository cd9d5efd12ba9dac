package checkpoint

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"
)

// The S3 tests run against a real MinIO server, started once per test
// binary on first use and killed by TestMain. The binary is found through
// $FLINKGO_MINIO, then $PATH, then $HOME/.cache/flinkgo/bin/minio (where
// .ci/install-minio.sh builds it). Without it the S3 tests skip, except under
// CI=true, where they fail.

const (
	minioUser     = "flinkgo"
	minioPassword = "flinkgo-secret"
	minioBucket   = "flinkgo-test"
	minioReady    = 60 * time.Second
)

var minioSrv struct {
	once    sync.Once
	missing string // why no binary was found
	err     error  // why the server did not start
	addr    string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	output  *lockedBuffer
	prefix  atomic.Int64
}

// findMinio locates the minio binary.
func findMinio() (string, string) {
	if p := os.Getenv("FLINKGO_MINIO"); p != "" {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			return "", fmt.Sprintf("FLINKGO_MINIO=%s is not a file (%v)", p, err)
		}
		return p, ""
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, ""
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "flinkgo", "bin", "minio")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, ""
		}
	}
	return "", "minio binary not found in $FLINKGO_MINIO, $PATH or $HOME/.cache/flinkgo/bin; run .ci/install-minio.sh"
}

// requireMinio returns the address of the shared MinIO server, starting it
// on first use.
func requireMinio(t *testing.T) string {
	t.Helper()
	minioSrv.once.Do(startMinio)
	if minioSrv.missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s", minioSrv.missing)
		}
		t.Skip(minioSrv.missing)
	}
	if minioSrv.err != nil {
		t.Fatalf("start minio: %v", minioSrv.err)
	}
	return minioSrv.addr
}

func startMinio() {
	bin, missing := findMinio()
	if missing != "" {
		minioSrv.missing = missing
		return
	}
	minioSrv.err = launchMinio(bin)
}

func launchMinio(bin string) error {
	dir, err := os.MkdirTemp("", "flinkgo-minio-")
	if err != nil {
		return err
	}
	minioSrv.dir = dir
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()

	out := &lockedBuffer{}
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", addr, "--certs-dir", filepath.Join(dir, "certs"), "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+minioUser,
		"MINIO_ROOT_PASSWORD="+minioPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = minioProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	minioSrv.cmd, minioSrv.output = cmd, out
	minioSrv.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(minioSrv.exited)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), minioReady)
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/minio/health/live", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-minioSrv.exited:
			return fmt.Errorf("minio exited before it was ready: %s", out.String())
		case <-ctx.Done():
			return fmt.Errorf("minio not ready at %s within %v: %s", addr, minioReady, out.String())
		case <-tick.C:
		}
	}
	minioSrv.addr = addr

	// Live is not ready: MinIO answers "Server not initialized yet" for a
	// moment longer, so retry creating the bucket within the same deadline.
	s, err := NewS3Storage(testS3Config(addr, ""))
	if err != nil {
		return err
	}
	defer s.Close()
	for {
		err := s.EnsureBucket(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-minioSrv.exited:
			return fmt.Errorf("minio exited: %s", out.String())
		case <-ctx.Done():
			return fmt.Errorf("minio not usable within %v: %w", minioReady, err)
		case <-tick.C:
		}
	}
}

// stopMinio kills the server, if it was started, and removes its data.
func stopMinio() {
	if minioSrv.cmd != nil {
		_ = minioSrv.cmd.Process.Kill()
		<-minioSrv.exited
	}
	if minioSrv.dir != "" {
		_ = os.RemoveAll(minioSrv.dir)
	}
}

func testS3Config(addr, prefix string) S3StorageConfig {
	return S3StorageConfig{
		Endpoint:        addr,
		Bucket:          minioBucket,
		Prefix:          prefix,
		AccessKeyID:     minioUser,
		SecretAccessKey: minioPassword,
		DisableTLS:      true,
		MaxRetries:      1,
	}
}

// newTestS3Storage returns an S3Storage on the shared MinIO server with a
// prefix of its own, and a function listing the objects under that prefix.
// (MinIO lists incomplete multipart uploads only by exact key, so tests of
// uploads check them with incompleteUploads.)
func newTestS3Storage(t *testing.T) (*S3Storage, func() []string) {
	addr := requireMinio(t)
	prefix := fmt.Sprintf("t%d", minioSrv.prefix.Add(1))
	s, err := NewS3Storage(testS3Config(addr, prefix))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	list := func() []string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out []string
		for obj := range s.client.ListObjects(ctx, minioBucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
			require.NoError(t, obj.Err)
			out = append(out, s3Path(minioBucket, obj.Key))
		}
		return out
	}
	return s, list
}

// incompleteUploads returns the number of multipart uploads in progress for
// the object at key.
func incompleteUploads(t *testing.T, s *S3Storage, key string) int {
	t.Helper()
	u, err := s.core.ListMultipartUploads(testCtx(t), minioBucket, key, "", "", "", 1000)
	require.NoError(t, err)
	return len(u.Uploads)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return strings.TrimSpace(s)
}
