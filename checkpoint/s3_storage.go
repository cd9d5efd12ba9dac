package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const s3Scheme = "s3://"

// S3StorageConfig configures an S3Storage.
type S3StorageConfig struct {
	// Endpoint is the server's host[:port], without a scheme, for example
	// "s3.amazonaws.com" or "127.0.0.1:9000". Required.
	Endpoint string
	// Bucket holds the checkpoints. Required; see S3Storage.EnsureBucket.
	Bucket string
	// Prefix is prepended to every checkpoint key: checkpoint n of job j is
	// under "<Prefix>/<j>/chk-<n>/". Empty means the bucket's root.
	Prefix string
	// SavepointPrefix is the default savepoint target (Flink's
	// state.savepoints.dir), where relative savepoint targets and paths
	// resolve. Default: "<Prefix>/_savepoints".
	SavepointPrefix string
	// SavepointRoots are where savepoints may be written and restored
	// from, as "s3://bucket/prefix" ("s3://bucket" for a whole bucket):
	// every savepoint target and path, "s3://bucket/key" or relative, must
	// lie under one of them. Default: the storage's Bucket with Prefix (the
	// whole bucket when Prefix is empty); Bucket with SavepointPrefix is
	// always one.
	SavepointRoots []string
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials.
	// Empty means anonymous access.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Region is the bucket's region; empty lets the client discover it.
	Region string
	// DisableTLS talks plain HTTP, for local test servers. TLS is on by
	// default.
	DisableTLS bool
	// PartSize is the size of the parts of multipart uploads, and the size up
	// to which a stream is buffered and sent in a single PUT. Default 16 MiB;
	// at least 5 MiB (S3's minimum part size).
	PartSize uint64
	// MaxRetries is how many times a failed request is tried. Default 3.
	MaxRetries int
}

const (
	defaultS3PartSize = 16 << 20
	minS3PartSize     = 5 << 20
)

// Validate checks the configuration without talking to the server.
func (c S3StorageConfig) Validate() error {
	switch {
	case c.Endpoint == "" || strings.Contains(c.Endpoint, "://"):
		return fmt.Errorf("%w: S3StorageConfig.Endpoint %q, expected host[:port] without a scheme", ErrInvalidConfig, c.Endpoint)
	case c.Bucket == "" || strings.Contains(c.Bucket, "/"):
		return fmt.Errorf("%w: S3StorageConfig.Bucket %q, expected a bucket name", ErrInvalidConfig, c.Bucket)
	case c.PartSize != 0 && c.PartSize < minS3PartSize:
		return fmt.Errorf("%w: S3StorageConfig.PartSize %d, expected 0 or at least %d", ErrInvalidConfig, c.PartSize, minS3PartSize)
	case c.MaxRetries < 0:
		return fmt.Errorf("%w: S3StorageConfig.MaxRetries %d is negative", ErrInvalidConfig, c.MaxRetries)
	}
	for _, p := range []struct{ what, v string }{{"Prefix", c.Prefix}, {"SavepointPrefix", c.SavepointPrefix}} {
		if p.v != "" {
			if err := validRelPath("S3StorageConfig."+p.what, p.v); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
			}
		}
	}
	for i, r := range c.SavepointRoots {
		if _, err := parseS3Root(r); err != nil {
			return fmt.Errorf("%w: S3StorageConfig.SavepointRoots[%d]: %w", ErrInvalidConfig, i, err)
		}
	}
	return nil
}

// s3Root is a savepoint root: a bucket and a key prefix (empty for the
// whole bucket).
type s3Root struct{ bucket, prefix string }

// parseS3Root parses "s3://bucket" or "s3://bucket/prefix".
func parseS3Root(r string) (s3Root, error) {
	rest, ok := strings.CutPrefix(r, s3Scheme)
	bucket, prefix, _ := strings.Cut(rest, "/")
	if !ok || bucket == "" || (prefix != "" && validRelPath("prefix", prefix) != nil) {
		return s3Root{}, fmt.Errorf("savepoint root %q, expected s3://bucket or s3://bucket/prefix", r)
	}
	return s3Root{bucket, prefix}, nil
}

// S3Storage is a Storage on S3-compatible object storage (AWS S3, MinIO,
// ...), through minio-go. Small streams (up to PartSize) are buffered and
// sent in one PUT on Close; larger ones are streamed as a multipart upload
// that is completed on Close and aborted by Abort or a failure, so nothing
// is visible before Close succeeds. Metadata is one conditional PUT
// (If-None-Match: *), atomic by S3's semantics. Stream paths are
// "s3://<bucket>/<key>". It is safe for concurrent use; Close releases its
// idle connections.
type S3Storage struct {
	client          *minio.Client
	core            minio.Core
	transport       *http.Transport
	bucket          string
	prefix          string
	savepointPrefix string
	roots           []s3Root
	partSize        uint64
	random          io.Reader // randomness of savepoint names
}

var _ Storage = (*S3Storage)(nil)

// NewS3Storage validates cfg and creates the client. It does not talk to the
// server.
func NewS3Storage(cfg S3StorageConfig) (*S3Storage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = defaultS3PartSize
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 3
	}
	if cfg.SavepointPrefix == "" {
		cfg.SavepointPrefix = joinKey(cfg.Prefix, defaultSavepointDir)
	}
	tr, err := minio.DefaultTransport(!cfg.DisableTLS)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: S3 transport: %w", err)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken),
		Secure:     !cfg.DisableTLS,
		Transport:  tr,
		Region:     cfg.Region,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: S3 client: %w", ErrInvalidConfig, err)
	}
	roots := []s3Root{{cfg.Bucket, cfg.SavepointPrefix}}
	if len(cfg.SavepointRoots) == 0 {
		roots = append(roots, s3Root{cfg.Bucket, cfg.Prefix})
	}
	for _, r := range cfg.SavepointRoots {
		root, _ := parseS3Root(r) // checked by Validate
		roots = append(roots, root)
	}
	return &S3Storage{
		client:          client,
		core:            minio.Core{Client: client},
		transport:       tr,
		bucket:          cfg.Bucket,
		prefix:          cfg.Prefix,
		savepointPrefix: cfg.SavepointPrefix,
		roots:           roots,
		partSize:        cfg.PartSize,
		random:          rand.Reader,
	}, nil
}

// EnsureBucket creates the configured bucket if it does not exist.
func (s *S3Storage) EnsureBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err == nil && !ok {
		err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{})
		if e := minio.ToErrorResponse(err); e.Code == "BucketAlreadyOwnedByYou" {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("checkpoint: ensure bucket %q: %w", s.bucket, err)
	}
	return nil
}

// Close releases idle connections. The storage stays usable; it is safe to
// call more than once.
func (s *S3Storage) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// joinKey joins key segments with '/', skipping empty ones.
func joinKey(parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), "/")
}

// location returns the bucket and key prefix (without trailing '/') of loc.
func (s *S3Storage) location(loc Location) (bucket, dir string, err error) {
	if err := loc.validate(); err != nil {
		return "", "", err
	}
	if !loc.IsSavepoint() {
		return s.bucket, joinKey(s.prefix, loc.Job, checkpointDirName(loc.CheckpointID)), nil
	}
	return s.savepointKey(loc.Savepoint)
}

// savepointKey resolves a savepoint target or path, "s3://bucket/key" or
// relative to SavepointPrefix, to a bucket and key prefix inside the
// savepoint roots, or fails with errOutsideRoots.
func (s *S3Storage) savepointKey(p string) (bucket, key string, err error) {
	if rest, ok := strings.CutPrefix(p, s3Scheme); ok {
		bucket, key, _ = strings.Cut(rest, "/")
	} else if validRelPath("savepoint path", p) == nil {
		bucket, key = s.bucket, joinKey(s.savepointPrefix, p)
	}
	if bucket == "" || validRelPath("savepoint path", key) != nil {
		return "", "", errOutsideRoots(p)
	}
	for _, r := range s.roots {
		if _, ok := within(r.prefix, key, "/"); ok && r.bucket == bucket {
			return bucket, key, nil
		}
	}
	return "", "", errOutsideRoots(p)
}

// isRoot reports whether bucket and key name a savepoint root.
func (s *S3Storage) isRoot(bucket, key string) bool {
	return slices.Contains(s.roots, s3Root{bucket, key})
}

// InitSavepointLocation implements Storage: a fresh key prefix inside
// target under which no object exists. S3 has no directories to create
// exclusively: two savepoints could only share one if 48 random bits
// collided while both were being written.
func (s *S3Storage) InitSavepointLocation(ctx context.Context, target, job string) (Location, error) {
	if err := ctx.Err(); err != nil {
		return Location{}, err
	}
	if err := validName("job id", job); err != nil {
		return Location{}, err
	}
	if target == "" {
		target = s3Path(s.bucket, s.savepointPrefix)
	}
	bucket, base, err := s.savepointKey(target)
	if err != nil {
		return Location{}, err
	}
	for range savepointNameAttempts {
		name, err := savepointName(s.random, job)
		if err != nil {
			return Location{}, err
		}
		key := base + "/" + name
		used, err := s.holds(ctx, bucket, key+"/")
		if err != nil {
			return Location{}, fmt.Errorf("checkpoint: savepoint location in %q: %w", target, err)
		}
		if !used {
			return SavepointLocation(s3Path(bucket, key)), nil
		}
	}
	return Location{}, errNoFreshName(s3Path(bucket, base))
}

// holds reports whether an object's key in bucket starts with prefix.
func (s *S3Storage) holds(ctx context.Context, bucket, prefix string) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	obj, ok := <-s.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, MaxKeys: 1})
	if ok && obj.Err != nil {
		return false, s3Err(obj.Err)
	}
	return ok, nil
}

func s3Path(bucket, key string) string { return s3Scheme + bucket + "/" + key }

func parseS3Path(p string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(p, s3Scheme)
	if ok {
		bucket, key, _ = strings.Cut(rest, "/")
	}
	if bucket == "" || key == "" {
		return "", "", fmt.Errorf("%w: stream path %q, expected s3://bucket/key", ErrInvalidName, p)
	}
	return bucket, key, nil
}

// s3Err wraps a minio error, mapping missing objects to ErrNotFound.
func s3Err(err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NoSuchBucket":
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case "PreconditionFailed":
		return fmt.Errorf("%w: %w", ErrExists, err)
	}
	return err
}

// CreateStream implements Storage.
func (s *S3Storage) CreateStream(ctx context.Context, loc Location, name string) (StreamWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validName("stream name", name); err != nil {
		return nil, err
	}
	bucket, dir, err := s.location(loc)
	if err != nil {
		return nil, err
	}
	return &s3Writer{s: s, ctx: ctx, bucket: bucket, key: dir + "/" + name}, nil
}

// s3Writer buffers up to partSize bytes; if the stream grows beyond, it
// starts a multipart upload fed through a pipe by a goroutine the writer
// owns, and Close or Abort wait for it.
type s3Writer struct {
	s           *S3Storage
	ctx         context.Context
	bucket, key string
	buf         []byte
	pos         int64
	pw          *io.PipeWriter // non-nil while a multipart upload runs
	done        chan error     // the upload's result
	cancel      context.CancelFunc
	ended       bool
}

var errS3Aborted = errors.New("checkpoint: stream aborted")

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.ended {
		return 0, fmt.Errorf("%w: %s", ErrWriterClosed, s3Path(w.bucket, w.key))
	}
	if err := w.ctx.Err(); err != nil {
		return 0, w.fail(err)
	}
	if w.pw == nil {
		if uint64(len(w.buf)+len(p)) <= w.s.partSize {
			w.buf = append(w.buf, p...)
			w.pos += int64(len(p))
			return len(p), nil
		}
		w.startUpload()
		buf := w.buf
		w.buf = nil
		if _, err := w.pw.Write(buf); err != nil {
			return 0, w.fail(w.uploadErr(err))
		}
	}
	n, err := w.pw.Write(p)
	w.pos += int64(n)
	if err != nil {
		return n, w.fail(w.uploadErr(err))
	}
	return n, nil
}

func (w *s3Writer) startUpload() {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	w.pw, w.cancel, w.done = pw, cancel, done
	client, bucket, key, opts := w.s.client, w.bucket, w.key, minio.PutObjectOptions{PartSize: w.s.partSize}
	// An abandoned writer's upload ends when its context does.
	stop := context.AfterFunc(w.ctx, func() { pw.CloseWithError(context.Cause(w.ctx)) })
	go func() {
		defer stop()
		// minio-go aborts the multipart upload if reading pr fails.
		_, err := client.PutObject(ctx, bucket, key, pr, -1, opts)
		// With err == nil, a later Write fails with io.ErrClosedPipe.
		pr.CloseWithError(err)
		done <- err
	}()
}

// uploadErr returns the upload goroutine's error after a pipe write failed.
func (w *s3Writer) uploadErr(err error) error {
	w.pw.CloseWithError(errS3Aborted)
	if uerr := <-w.done; uerr != nil {
		err = uerr
	}
	w.pw, w.done = nil, nil
	w.cancel()
	return fmt.Errorf("checkpoint: write stream %s: %w", s3Path(w.bucket, w.key), err)
}

func (w *s3Writer) Pos() int64 { return w.pos }

func (w *s3Writer) Close() (StreamHandle, error) {
	if w.ended {
		return StreamHandle{}, fmt.Errorf("%w: %s", ErrWriterClosed, s3Path(w.bucket, w.key))
	}
	if err := w.ctx.Err(); err != nil {
		return StreamHandle{}, w.fail(err)
	}
	var err error
	if w.pw == nil {
		_, err = w.s.client.PutObject(w.ctx, w.bucket, w.key, bytes.NewReader(w.buf), int64(len(w.buf)),
			minio.PutObjectOptions{DisableMultipart: true})
	} else {
		_ = w.pw.Close()
		err = <-w.done
		w.pw, w.done = nil, nil
		w.cancel()
	}
	if err != nil {
		return StreamHandle{}, w.fail(fmt.Errorf("checkpoint: close stream %s: %w", s3Path(w.bucket, w.key), err))
	}
	w.ended, w.buf = true, nil
	return StreamHandle{Path: s3Path(w.bucket, w.key), Size: w.pos}, nil
}

func (w *s3Writer) Abort() error {
	w.fail(errS3Aborted)
	return nil
}

// fail ends the writer: a running multipart upload is aborted (minio-go
// aborts it when its reader fails) and waited for.
func (w *s3Writer) fail(err error) error {
	if w.ended {
		return err
	}
	w.ended, w.buf = true, nil
	if w.pw != nil {
		w.pw.CloseWithError(errS3Aborted)
		<-w.done
		w.pw, w.done = nil, nil
		w.cancel()
	}
	return err
}

// OpenStream implements Storage. Sequential reads stream one GET; ReadAt
// issues a ranged GET per call.
func (s *S3Storage) OpenStream(ctx context.Context, h StreamHandle) (StreamReader, error) {
	bucket, key, err := parseS3Path(h.Path)
	if err != nil {
		return nil, err
	}
	info, err := s.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: open stream %s: %w", h.Path, s3Err(err))
	}
	if info.Size != h.Size {
		return nil, fmt.Errorf("%w: stream %s: handle says %d bytes, found %d", ErrCorrupt, h.Path, h.Size, info.Size)
	}
	return &s3Reader{ctx: ctx, s: s, bucket: bucket, key: key, etag: info.ETag, size: info.Size}, nil
}

type s3Reader struct {
	ctx         context.Context
	s           *S3Storage
	bucket, key string
	etag        string
	size        int64
	body        io.ReadCloser // sequential reader, opened on the first Read
	pos         int64
	closed      bool
}

func (r *s3Reader) Size() int64 { return r.size }

func (r *s3Reader) get(off, end int64) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(r.etag); err != nil {
		return nil, err
	}
	if err := opts.SetRange(off, end); err != nil {
		return nil, err
	}
	body, _, _, err := r.s.core.GetObject(r.ctx, r.bucket, r.key, opts)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read stream %s: %w", s3Path(r.bucket, r.key), s3Err(err))
	}
	return body, nil
}

func (r *s3Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("checkpoint: read stream %s: %w", s3Path(r.bucket, r.key), io.ErrClosedPipe)
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.body == nil {
		body, err := r.get(r.pos, r.size-1)
		if err != nil {
			return 0, err
		}
		r.body = body
	}
	n, err := r.body.Read(p)
	r.pos += int64(n)
	if err == io.EOF && r.pos < r.size {
		err = fmt.Errorf("%w: stream %s ended at %d of %d bytes", ErrCorrupt, s3Path(r.bucket, r.key), r.pos, r.size)
	}
	return n, err
}

func (r *s3Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("checkpoint: read stream %s at negative offset %d", s3Path(r.bucket, r.key), off)
	}
	if off >= r.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	end := min(off+int64(len(p)), r.size)
	body, err := r.get(off, end-1)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:end-off])
	if err != nil {
		return n, fmt.Errorf("checkpoint: read stream %s: %w", s3Path(r.bucket, r.key), err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *s3Reader) Close() error {
	r.closed = true
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// WriteMetadata implements Storage: a single conditional PUT.
func (s *S3Storage) WriteMetadata(ctx context.Context, loc Location, m *Metadata) error {
	bucket, dir, err := s.location(loc)
	if err != nil {
		return err
	}
	if err := checkMetadataLocation(loc, m); err != nil {
		return err
	}
	data, err := EncodeMetadata(relativize(m, s3Path(bucket, dir), "/"))
	if err != nil {
		return err
	}
	key := dir + "/" + MetadataFileName
	// Servers that ignore If-None-Match still get a clear error in the
	// common case.
	if _, err := s.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); err == nil {
		return fmt.Errorf("%w: metadata of %s at %s", ErrExists, loc, s3Path(bucket, key))
	} else if !errors.Is(s3Err(err), ErrNotFound) {
		return fmt.Errorf("checkpoint: write metadata of %s: %w", loc, err)
	}
	opts := minio.PutObjectOptions{DisableMultipart: true, ContentType: "application/octet-stream"}
	opts.SetMatchETagExcept("*")
	if _, err := s.client.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), opts); err != nil {
		return fmt.Errorf("checkpoint: write metadata of %s: %w", loc, s3Err(err))
	}
	return nil
}

// ReadMetadata implements Storage.
func (s *S3Storage) ReadMetadata(ctx context.Context, loc Location) (*Metadata, error) {
	bucket, dir, err := s.location(loc)
	if err != nil {
		return nil, err
	}
	key := dir + "/" + MetadataFileName
	body, _, _, err := s.core.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read metadata of %s: %w", loc, s3Err(err))
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read metadata of %s: %w", loc, err)
	}
	return decodeAt(data, s3Path(bucket, key), s3Path(bucket, dir), "/", isS3Abs)
}

func isS3Abs(p string) bool { return strings.HasPrefix(p, s3Scheme) }

// ListCheckpoints implements Storage: it lists the job's chk-<n>/ prefixes
// and keeps those whose _metadata object exists.
func (s *S3Storage) ListCheckpoints(ctx context.Context, job string) ([]int64, error) {
	if err := validName("job id", job); err != nil {
		return nil, err
	}
	jobPrefix := joinKey(s.prefix, job) + "/"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var candidates []int64
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: jobPrefix}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("checkpoint: list checkpoints of job %q: %w", job, obj.Err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(obj.Key, jobPrefix), "/")
		if id, ok := parseCheckpointDirName(name); ok && strings.HasSuffix(obj.Key, "/") {
			candidates = append(candidates, id)
		}
	}
	var ids []int64
	for _, id := range candidates {
		key := jobPrefix + checkpointDirName(id) + "/" + MetadataFileName
		_, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
		if err == nil {
			ids = append(ids, id)
		} else if !errors.Is(s3Err(err), ErrNotFound) {
			return nil, fmt.Errorf("checkpoint: list checkpoints of job %q: %w", job, err)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Delete implements Storage: it deletes the metadata object first, then
// aborts the incomplete multipart uploads and deletes every other object
// under the location's prefix.
func (s *S3Storage) Delete(ctx context.Context, loc Location) error {
	bucket, dir, err := s.location(loc)
	if err != nil {
		return err
	}
	if loc.IsSavepoint() && s.isRoot(bucket, dir) {
		return fmt.Errorf("%w: delete %s: it is a savepoint root", ErrInvalidName, loc)
	}
	if err := s.client.RemoveObject(ctx, bucket, dir+"/"+MetadataFileName, minio.RemoveObjectOptions{}); err != nil && !errors.Is(s3Err(err), ErrNotFound) {
		return fmt.Errorf("checkpoint: delete %s: %w", loc, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var objects []minio.ObjectInfo
	for obj := range s.client.ListObjects(lctx, bucket, minio.ListObjectsOptions{Prefix: dir + "/", Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("checkpoint: delete %s: %w", loc, obj.Err)
		}
		objects = append(objects, obj)
	}
	var errs []error
	// Multipart uploads of writers that died before Close or Abort.
	for u := range s.client.ListIncompleteUploads(lctx, bucket, dir+"/", true) {
		if u.Err == nil {
			u.Err = s.client.RemoveIncompleteUpload(ctx, bucket, u.Key)
		}
		if u.Err != nil && !errors.Is(s3Err(u.Err), ErrNotFound) {
			errs = append(errs, fmt.Errorf("incomplete upload %s: %w", u.Key, u.Err))
		}
	}
	if len(objects) > 0 {
		keys := make(chan minio.ObjectInfo, len(objects))
		for _, obj := range objects {
			keys <- obj
		}
		close(keys)
		for rerr := range s.client.RemoveObjects(ctx, bucket, keys, minio.RemoveObjectsOptions{}) {
			if !errors.Is(s3Err(rerr.Err), ErrNotFound) {
				errs = append(errs, fmt.Errorf("%s: %w", rerr.ObjectName, rerr.Err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("checkpoint: delete %s: %w", loc, errors.Join(errs...))
	}
	return nil
}
