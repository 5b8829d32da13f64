#!/usr/bin/env bash
# Installs what building and testing need, only what is missing: the Debian packages the tests and the
# live capture use (mke2fs/debugfs/e2fsck, sfdisk, QEMU, busybox, zstd, cpio; chromium renders the HTML report and
# sleuthkit's mactime reads the body file in the tests), the Go modules, and staticcheck.
# Run by `make test` and by .ci/run; needs root (or sudo) only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in e2fsprogs fdisk qemu-system-x86 qemu-utils busybox-static zstd cpio chromium sleuthkit; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "deps: installing ${need[*]}" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go mod download
gobin="$(go env GOPATH)/bin"
if ! command -v staticcheck >/dev/null 2>&1 && [ ! -x "$gobin/staticcheck" ]; then
	echo "deps: installing staticcheck" >&2
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
