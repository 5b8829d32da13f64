#!/usr/bin/env bash
# Runs every benchmark script scripts/bench-*.sh, then the Go micro-benchmarks.
# Each script prints its figures as ratios against a reference measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
for s in scripts/bench-*.sh; do
	[ -e "$s" ] || continue
	echo "== $s"
	"$s"
done
echo "== go test -bench (micro-benchmarks)"
go test -run '^$' -bench . -benchmem ./pkg/... ./internal/...
