#!/usr/bin/env bash
# install-staticcheck.sh builds staticcheck, which .ci/run runs after go vet,
# from the Go module proxy into $HOME/.cache/flinkgo/bin/staticcheck.
#
# Idempotent: when the binary already reports the pinned version, it exits
# at once. Override the version with STATICCHECK_VERSION.
set -euo pipefail

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"
BIN_DIR="${FLINKGO_BIN_DIR:-$HOME/.cache/flinkgo/bin}"
BIN="$BIN_DIR/staticcheck"

if [[ -x "$BIN" ]] && "$BIN" -version | grep -q "(${STATICCHECK_VERSION#v})"; then
	echo "staticcheck $STATICCHECK_VERSION already installed at $BIN"
	exit 0
fi
mkdir -p "$BIN_DIR"
echo "building staticcheck $STATICCHECK_VERSION into $BIN"
cd "$(mktemp -d)"
GOBIN="$BIN_DIR" GOTOOLCHAIN=local go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
