#!/usr/bin/env bash
# install-minio.sh builds the MinIO server that the checkpoint package's S3
# tests start, from the Go module proxy, into $HOME/.cache/flinkgo/bin/minio.
#
# Idempotent: when the binary already exists and reports the pinned version,
# it exits at once. Override the install directory with FLINKGO_BIN_DIR and the
# version with MINIO_VERSION (a Go module version of github.com/minio/minio).
#
# MinIO publishes no semantic-version tags, so the pin is a pseudo-version.
# This one has no replace directives in its go.mod (go install refuses those)
# and builds with Go 1.26.
set -euo pipefail

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
BIN_DIR="${FLINKGO_BIN_DIR:-$HOME/.cache/flinkgo/bin}"
BIN="$BIN_DIR/minio"
STAMP="$BIN_DIR/.minio-version"

if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$MINIO_VERSION" ]]; then
	echo "minio $MINIO_VERSION already installed at $BIN"
	exit 0
fi

mkdir -p "$BIN_DIR"
echo "building minio $MINIO_VERSION into $BIN (takes several minutes on a cold cache)"
start=$(date +%s)
# Build outside any module so the caller's go.mod does not interfere, and
# statically, so the binary runs anywhere.
cd "$(mktemp -d)"
GOBIN="$BIN_DIR" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" GOTOOLCHAIN=local \
	go install "github.com/minio/minio@$MINIO_VERSION"
echo "$MINIO_VERSION" >"$STAMP"
echo "built $BIN in $(($(date +%s) - start))s"
