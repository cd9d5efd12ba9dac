#!/usr/bin/env bash
# install-chromium.sh installs Debian's chromium, which the dashboard's
# browser test (dashboard_test.go) drives through chromedp.
#
# Idempotent and quick when a browser is already installed: it then only
# prints where it is. apt-get runs through sudo when not run as root.
set -euo pipefail

for name in chromium chromium-browser google-chrome; do
	if path=$(command -v "$name"); then
		echo "$name already installed at $path"
		exit 0
	fi
done

sudo=""
if [[ "$(id -u)" != 0 ]]; then
	sudo="sudo"
fi

echo "installing chromium with apt-get"
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "installed $(command -v chromium) in $(($(date +%s) - start))s"
