#!/usr/bin/env bash
# bench-report.sh: how fast `ext3replay report` is, against references measured in the same run.
#
#   1. For each benchmark capture scripts/bench-analyze.sh made (cached in $BENCH_CACHE; big is the largest):
#      report IMAGE LOG vs analyze --metadata --format jsonl of the same log (the same work plus the page),
#      goal < 2x.
#   2. Opening the page in headless Chromium: the page's own time from navigation to the end of its first
#      drawing (it writes it into <body data-render-ms>), goal < 5 s, and the wall time of Chromium loading
#      the page and taking a screenshot against the same for a blank page (Chromium's start-up, the reference).
#   3. The same for a synthetic run of 100,000 operations (report RUN.jsonl), so the figure exists without
#      the QEMU captures.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BIN="${EXT3REPLAY_BIN:-$REPO/bin/ext3replay}"
CACHE="${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ext3replay-bench}"
# The tree's own binary, built as `make build` builds it (up to date in a second when it is): one
# left from an earlier checkout would be measured instead. EXT3REPLAY_BIN names another, as it is.
[ -n "${EXT3REPLAY_BIN:-}" ] || make -s build
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# timed CMD...: wall seconds of CMD, output discarded.
timed() {
	/usr/bin/time -f '%e' -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" || { cat "$work/err.out" >&2; return 1; }
	cat "$work/time.out"
}
best() { local b="" s; for _ in 1 2; do s=$(timed "$@"); if [ -z "$b" ] || awk -v s="$s" -v b="$b" 'BEGIN{exit !(s<b)}'; then b=$s; fi; done; echo "$b"; }

chromium_bin=""
for c in chromium chromium-browser google-chrome; do command -v "$c" >/dev/null 2>&1 && { chromium_bin=$c; break; }; done
browser() {
	"$chromium_bin" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$work/chromium" --window-size=1280,1500 "$@" 2>/dev/null
}
# shot PAGE: wall seconds of headless Chromium loading PAGE and taking a screenshot. (Not --dump-dom: dumping
# a DOM that holds megabytes of embedded data takes Chromium seconds by itself, which is not the page's time.)
shot() {
	local t0 t1
	t0=$(date +%s.%N)
	browser --screenshot="$work/shot.png" "file://$1" >/dev/null
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}'
}
load_figures() {
	[ -n "$chromium_bin" ] || { echo "  chromium not installed (scripts/deps.sh installs it): load time not measured"; return; }
	echo '<!DOCTYPE html><html><body>blank</body></html>' >"$work/blank.html"
	shot "$work/blank.html" >/dev/null # warm
	local wb wp ms
	wb=$(shot "$work/blank.html")
	wp=$(shot "$1")
	ms=$(browser --dump-dom "file://$1" | grep -o 'data-render-ms="[0-9]*"' | grep -o '[0-9]*' || echo '?')
	awk -v ms="$ms" -v wp="$wp" -v wb="$wb" 'BEGIN {
		printf "  chromium: page drawn %.2f s after navigation (goal < 5 s); load + screenshot %.2f s vs blank page %.2f s (%.2fx)\n",
			ms / 1000, wp, wb, wp / (wb > 0 ? wb : 0.01) }'
}

echo "# bench-report $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores"
found=0
for name in big real many; do
	d="$CACHE/$name"
	[ -f "$d/io.log.zst" ] || continue
	found=1
	img="$d/image.raw"
	[ -f "$img" ] || zstd -q -dc "$d/image.raw.zst" >"$img"
	cat "$d/io.log.zst" "$img" >/dev/null # page cache
	ta=$(best "$BIN" analyze --quiet --metadata --format jsonl "$img" "$d/io.log.zst")
	tr=$(best "$BIN" report -o "$work/$name.html" "$img" "$d/io.log.zst")
	"$BIN" report -o "$work/$name.html" "$img" "$d/io.log.zst"
	nops=$("$BIN" analyze --quiet --metadata --format jsonl "$img" "$d/io.log.zst" | wc -l)
	echo "$name: $nops ops (with --metadata), page $(numfmt --to=iec "$(stat -c %s "$work/$name.html")")"
	awk -v r="$tr" -v a="$ta" 'BEGIN { printf "  analyze --metadata: %.2fs   report: %.2fs   report / analyze = %.2fx (goal < 2x)\n", a, r, r / (a > 0 ? a : 0.01) }'
	load_figures "$work/$name.html"
done
[ "$found" = 1 ] || echo "no benchmark capture in $CACHE (scripts/bench-analyze.sh makes them): synthetic run only"

# A synthetic run of 100,000 operations: 10,000 files in 100 directories, reads and writes of every kind.
python3 - "$work/syn.jsonl" <<'PY'
import json, random, sys
random.seed(1)
out = open(sys.argv[1], "w")
dirs = ["/var/d%d" % i for i in range(100)]
files, seq, t = [], 0, 0.0
out.write(json.dumps({"seq": 0, "t": 0.001, "op": "mkdir", "path": "/var", "ino": 11}) + "\n")
for d in dirs:
    seq += 1; t += 0.001
    out.write(json.dumps({"seq": seq, "t": round(t, 6), "op": "mkdir", "path": d, "ino": 11 + seq}) + "\n")
kinds = ["data", "data", "data", "dir", "inode", "bitmap", "journal", "unowned"]
for _ in range(100000 - len(dirs) - 1):
    seq += 1; t += 0.0005
    if random.random() < 0.1 or not files:
        p = "%s/f%d" % (random.choice(dirs), seq); files.append(p)
        out.write(json.dumps({"seq": seq, "t": round(t, 6), "op": "create", "path": p, "ino": 200 + seq}) + "\n")
        continue
    k = random.choice(kinds)
    o = {"seq": seq, "t": round(t, 6), "op": random.choice(["read", "write", "write"])}
    if k == "data": o["path"] = random.choice(files)
    if k == "dir": o["path"] = random.choice(dirs)
    o.update(sector=random.randrange(0, 4000000) // 8 * 8, bytes=4096 * random.randint(1, 64), kind=k)
    out.write(json.dumps(o) + "\n")
PY
ts=$(best "$BIN" stats --format json "$work/syn.jsonl")
tr=$(best "$BIN" report -o "$work/syn.html" "$work/syn.jsonl")
"$BIN" report -o "$work/syn.html" "$work/syn.jsonl"
echo "synthetic: $(wc -l <"$work/syn.jsonl") ops, page $(numfmt --to=iec "$(stat -c %s "$work/syn.html")")"
awk -v r="$tr" -v s="$ts" 'BEGIN { printf "  stats (reads the jsonl): %.2fs   report: %.2fs   report / stats = %.2fx\n", s, r, r / (s > 0 ? s : 0.01) }'
load_figures "$work/syn.html"
