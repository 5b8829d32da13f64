#!/usr/bin/env bash
# bench-scale.sh: does analyze's cost per operation stay flat as a run grows? For N files (default
# 10000 100000 1000000): an empty ext2 image A, the same with N empty files in N/1000 directories
# (B, mke2fs -d), and B with every third file renamed in its directory and every second one deleted
# (C, debugfs -w); scripts/bench-scale-gen.go writes the log of A -> B -> C as an ext2 driver would
# (metadata home, a flush every 4 MiB). Then analyze of that log: wall and CPU time, peak RSS,
# namespace ops, and their ratios per operation, each size against the smallest in the same run.
# Reference in the same run: plain zstd decoding of each log (the floor any reader pays).
# Images and logs are cached in $EXT3REPLAY_BENCH_DIR (/tmp/ext3replay-bench/scale).
# Usage: scripts/bench-scale.sh [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BIN="${EXT3REPLAY_BIN:-$REPO/bin/ext3replay}"
cache="${EXT3REPLAY_BENCH_DIR:-/tmp/ext3replay-bench}/scale"
mkdir -p "$cache"
# The tree's own binary, built as `make build` builds it (up to date in a second when it is): one
# left from an earlier checkout would be measured instead. EXT3REPLAY_BIN names another, as it is.
[ -n "${EXT3REPLAY_BIN:-}" ] || make -s build
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000)
export E2FSPROGS_FAKE_TIME=1700000000
mkfs() { # mkfs IMG N [TREE]
	local inodes=$(($2 + $2 / 5 + 4096))
	local mib=$((($2 / 1000 + 1) * 8 + inodes / 4096 + 64))
	mke2fs -q -F -t ext2 -b 4096 -N "$inodes" -U 6f0d8a3e-2c1b-4e5f-9a7d-3b2c1d0e4f5a -E hash_seed=6f0d8a3e-2c1b-4e5f-9a7d-3b2c1d0e4f5a \
		${3:+-d "$3"} "$1" "${mib}M"
}
prepare() {
	local n=$1 d="$cache/$1"
	[ -s "$d/io.log.zst" ] && return 0
	mkdir -p "$d"
	echo "bench-scale: preparing $n files (once; cached in $d)" >&2
	rm -rf "$d/tree" && mkdir -p "$d/tree"
	python3 - "$d/tree" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.mkdir(d)
    open(os.path.join(d, "f%07d" % i), "w").close()
PY
	mkfs "$d/a.img" "$n"
	mkfs "$d/b.img" "$n" "$d/tree"
	cp --sparse=always "$d/b.img" "$d/c.img"
	python3 - "$n" >"$d/change.debugfs" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    p = "/d%04d/f%07d" % (i // 1000, i)
    if i % 2 == 0:
        print("rm " + p)
    elif i % 3 == 0:
        print("ln %s %s" % (p, p.replace("/f", "/g")))
        print("unlink " + p)
PY
	debugfs -w -f "$d/change.debugfs" "$d/c.img" >/dev/null 2>&1
	rm -rf "$d/tree"
	go run scripts/bench-scale-gen.go "$d/a.img" "$d/b.img" "$d/c.img" "$d/io.log.zst"
	rm -f "$d/b.img" "$d/c.img"
}
for n in "${sizes[@]}"; do prepare "$n"; done

# timed CMD...: "<wall s> <cpu s> <peak RSS KiB>" of CMD, output discarded.
timed() {
	/usr/bin/time -f '%e %U %S %M' -o "$cache/time.out" "$@" >/dev/null 2>"$cache/err.out" || { cat "$cache/err.out" >&2; return 1; }
	awk '{print $1, $2 + $3, $4}' "$cache/time.out"
}
echo "# bench-scale $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores"
printf '%9s %9s %8s %8s %9s %9s %10s %11s %12s\n' files "ns ops" "zstd s" "wall s" "cpu s" "RSS MiB" "us/op cpu" "vs smallest" "KiB RSS/1k files"
base=""
for n in "${sizes[@]}"; do
	d="$cache/$n"
	read -r tz _ _ < <(timed zstd -dc "$d/io.log.zst")
	read -r tw tc rss < <(timed "$BIN" analyze --quiet --format jsonl "$d/a.img" "$d/io.log.zst")
	ops=$("$BIN" analyze --quiet --format jsonl "$d/a.img" "$d/io.log.zst" | grep -c -E '"op":"(create|mkdir|delete|rmdir|move|link|unlink)"' || true)
	per=$(awk -v c="$tc" -v o="$ops" 'BEGIN { printf "%.2f", (o > 0 ? c / o * 1e6 : 0) }')
	[ -n "$base" ] || base=$per
	awk -v n="$n" -v o="$ops" -v tz="$tz" -v tw="$tw" -v tc="$tc" -v r="$rss" -v p="$per" -v b="$base" 'BEGIN {
		printf "%9d %9d %8.2f %8.2f %9.2f %9.1f %10s %10.2fx %12.1f\n", n, o, tz, tw, tc, r / 1024, p, p / b, r / (n / 1000) }'
done
