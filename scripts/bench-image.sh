#!/usr/bin/env bash
# Opening a zstd-compressed image: `ext3replay blocks IMAGE.zst 0` (open, decompress, read the
# superblock, build the block index) against the same command on the raw image and against
# `zstd -dc IMAGE.zst >/dev/null` (the C decoder alone), in alternating rounds of the same run;
# medians, their ratios, and peak RSS. The .zst image is opened as internal/diskimage chooses
# (the Go decoder leaving the long zero runs out when the frame allows, else the zstd program
# when on PATH, unless the image's header says it is under 256 MiB), and each way forced: by the
# zstd program (EXT3REPLAY_ZSTD=zstd) and by the Go decoder (EXT3REPLAY_ZSTD=go, zero runs left
# out where they can be); with EXT3REPLAY_BIN_OLD set, also by that binary (before/after in one
# run). "open" is the .zst time less the raw one: what decompressing adds.
# Images: a committed fixture (64 MiB, one frame) and, when scripts/bench-index.sh has made it,
# the 6 GiB / 100,000-file image compressed with zstd (one frame) and with pzstd (several
# frames: decoded in parallel, by one zstd process per core or by the Go decoder).
# Usage: scripts/bench-image.sh [ROUNDS]   (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-7}"
cache="${EXT3REPLAY_BENCH_DIR:-/tmp/ext3replay-bench}"
mkdir -p "$cache" bin
BIN="${EXT3REPLAY_BIN:-$PWD/bin/ext3replay}"
# The tree's own binary, built as `make build` builds it (up to date in a second when it is): one
# left from an earlier checkout would be measured instead. EXT3REPLAY_BIN names another, as it is.
[ -n "${EXT3REPLAY_BIN:-}" ] || make -s build
command -v zstd >/dev/null || { echo "bench-image: zstd not installed; skipped"; exit 0; }

fixture=fixtures/real/basic-ext3-4k/image.raw.zst
zstd -q -d -f -c "$fixture" >"$cache/fixture.raw"
big="$cache/index-6g-ext3.img"
if [ -s "$big" ]; then
	[ -s "$big.zst" ] || zstd -q -1 -T0 -f "$big" -o "$big.zst"
	if command -v pzstd >/dev/null && [ ! -s "$big.pzst" ]; then pzstd -q -1 -f "$big" -o "$big.pzst"; fi
fi

# run CMD...: "<wall s> <peak RSS KiB>" of one run, output discarded.
run() {
	local t0 t1
	t0=$(date +%s%N)
	/usr/bin/time -f '%M' -o "$cache/time.out" "$@" >/dev/null 2>"$cache/err.out" || { cat "$cache/err.out" >&2; exit 1; }
	t1=$(date +%s%N)
	echo "$(( (t1 - t0) / 1000 ))e-6 $(tail -1 "$cache/time.out")"
}
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# case NAME ZST RAW: alternating rounds of zstd -dc, blocks on ZST (each way), blocks on RAW.
bench_case() {
	local name="$1" zst="$2" raw="$3" out="$cache/image-$1.times"
	: >"$out"
	cat "$zst" >/dev/null
	for _ in $(seq "$rounds"); do
		echo "zstd $(run zstd -q -d -c "$zst")" >>"$out"
		echo "zst $(run env EXT3REPLAY_ZSTD= "$BIN" blocks "$zst" 0)" >>"$out"
		echo "prog $(run env EXT3REPLAY_ZSTD=zstd "$BIN" blocks "$zst" 0)" >>"$out"
		echo "go $(run env EXT3REPLAY_ZSTD=go "$BIN" blocks "$zst" 0)" >>"$out"
		[ -z "${EXT3REPLAY_BIN_OLD:-}" ] || echo "old $(run "$EXT3REPLAY_BIN_OLD" blocks "$zst" 0)" >>"$out"
		echo "raw $(run "$BIN" blocks "$raw" 0)" >>"$out"
	done
	echo "image $name (median of $rounds alternating rounds)"
	local z r
	z=$(awk '$1 == "zstd" {print $2}' "$out" | median)
	r=$(awk '$1 == "raw" {print $2}' "$out" | median)
	for k in zstd zst prog go old raw; do
		grep -q "^$k " "$out" || continue
		awk -v k="$k" -v t="$(awk -v k="$k" '$1 == k {print $2}' "$out" | median)" \
			-v m="$(awk -v k="$k" '$1 == k {print $3}' "$out" | median)" -v z="$z" -v r="$r" 'BEGIN {
			label["zstd"] = "zstd -dc"; label["zst"] = "blocks IMAGE.zst 0"; label["prog"] = "blocks IMAGE.zst 0 (zstd program)"
			label["go"] = "blocks IMAGE.zst 0 (Go decoder)"; label["old"] = "blocks IMAGE.zst 0 (old binary)"
			label["raw"] = "blocks IMAGE 0"
			printf "  %-35s %7.3f s  %6.1f MiB", label[k], t, m / 1024
			if (k != "zstd" && k != "raw") printf "   %.2fx zstd -dc, %.2fx raw; open %.2fx zstd -dc", t / z, t / r, (t - r) / z
			printf "\n"
		}'
	done
}

echo "# bench-image $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores"
bench_case "fixture 64 MiB (basic-ext3-4k)" "$fixture" "$cache/fixture.raw"
if [ -s "$big.zst" ]; then
	bench_case "6 GiB, 100,000 files, zstd (1 frame)" "$big.zst" "$big"
fi
if [ -s "$big.pzst" ]; then
	bench_case "6 GiB, 100,000 files, pzstd ($(zstd -lv "$big.pzst" 2>/dev/null | awk '/Number of frames|Frames:/ {print $NF; exit}') frames)" "$big.pzst" "$big"
fi
