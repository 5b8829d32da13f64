#!/usr/bin/env bash
# Reading a native log: the blklog reader (records + per-record CRC-32C)
# against plain zstd decoding of the same file in the same run (the floor).
# The log (1 GiB of write payload) is generated once and cached.
# Goal: ratio <= 1.2. Usage: scripts/bench-log.sh [LOG]
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${EXT3REPLAY_BENCH_DIR:-/tmp/ext3replay-bench}"
mkdir -p "$cache"
log="${1:-$cache/bench.log.zst}"
out=$(EXT3REPLAY_BENCH_LOG="$log" go test -run '^$' -bench '^BenchmarkLogFile$' -benchtime 3x -count 3 ./pkg/blklog)
echo "$out" | grep '^BenchmarkLogFile'
# Best of the runs for each side.
floor=$(echo "$out" | awk '/zstd-floor/ {print $3}' | sort -n | head -1)
reader=$(echo "$out" | awk '/blklog-reader/ {print $3}' | sort -n | head -1)
ref=""
if command -v zstd >/dev/null; then
	t0=$(date +%s%N); zstd -q -d -c "$log" >/dev/null; t1=$(date +%s%N)
	ref=$(( (t1 - t0) / 1000000 ))
fi
awk -v f="$floor" -v r="$reader" -v s="$(stat -c %s "$log")" -v c="$ref" 'BEGIN {
	printf "log %s MiB compressed, 1024 MiB payload\n", int(s/1048576)
	printf "plain zstd decode (Go, same decoder): %.0f ms\n", f/1e6
	printf "blklog reader:                        %.0f ms\n", r/1e6
	if (c != "") printf "zstd CLI -d (C, for reference):       %d ms\n", c
	printf "ratio reader/floor: %.2fx (goal <= 1.2x)\n", r/f
}'
