#!/usr/bin/env bash
# bench-analyze.sh: how fast `ext3replay analyze` is, measured against references taken in the same run.
#
#   1. big:  a real capture of a guest copying 1 GiB into a new file (ext3 data=ordered, 4 KiB blocks) plus an
#            untar of many small files: analyze time vs plain zstd decoding of the same log (`zstd -dc >/dev/null`,
#            and `ext3replay log info`, which decodes and parses every record), ratio goal <= 1.5x; peak RSS.
#      real: the same with the 1 GiB taken from real files (/usr/lib...), which compress like real data do.
#      big4: the same on Debian's default ext4: the same ratio as big is the goal.
#      rand: the same with 1 GiB of random bytes (incompressible: zstd stores them raw), the worst case.
#      large: issue 12's case: a 6 GiB ext3 image holding 102,000 files; the guest copies 1 GiB of random bytes,
#            untars 20,000 files and deletes 50,000; measured with both logs of the run (native and dm-log-writes),
#            against zstd -dc of each; peak RSS (goal <= 256 MiB). Then the same log with the image given
#            as image.raw.zst, as the README's example does, against zstd -dc of the image plus zstd -dc of
#            the log (goal <= 1.3x); ZST_IMAGE="NAME..." chooses the cases measured so (default: large).
#            Then check and analyze --check of the native log, against analyze of it, with their peak RSS;
#            CHECK="NAME..." chooses the cases measured so (default: large).
#   2. many: a real capture of a guest creating thousands of small files (metadata heavy): requests per second.
#
# The captures are made once with the fixture capture scripts (QEMU/TCG, a few minutes) and cached in
# $BENCH_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/ext3replay-bench). Usage: scripts/bench-analyze.sh [NAME...]
#
# Each figure is the median of ROUNDS (default 3) rounds that alternate the commands, so that a moment of
# load on a shared machine falls on all of them alike. EXT3REPLAY_BIN_OLD=BINARY adds that binary's analyze
# to every round (a change measured against the binary before it, in the same rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BIN="${EXT3REPLAY_BIN:-$REPO/bin/ext3replay}"
OLD="${EXT3REPLAY_BIN_OLD:-}"
ROUNDS="${ROUNDS:-3}"
# The output format timed: analyze's default, text, unless FORMAT says otherwise (jsonl, csv, body). Until
# d1657f7 the text and body formats read every payload whole where jsonl left plain data out; the figures
# in docs/performance.md before 2026-12-03 06:00 are jsonl's.
FORMAT="${FORMAT:-text}"
CACHE="${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ext3replay-bench}"
# The tree's own binary, built as `make build` builds it (up to date in a second when it is): one
# left from an earlier checkout would be measured instead. EXT3REPLAY_BIN names another, as it is.
[ -n "${EXT3REPLAY_BIN:-}" ] || make -s build
mkdir -p "$CACHE"

# capture NAME: runs the fixture capture on a scenario defined below, in a scratch copy of the capture scripts
# (fixtures/real belongs to the corpus; benchmark scenarios are not committed).
capture() {
	local name="$1" scratch="$CACHE/repo"
	[ -f "$CACHE/$name/io.log.zst" ] && return 0
	echo "bench-analyze: capturing $name (once; cached in $CACHE/$name)" >&2
	rm -rf "$scratch"
	mkdir -p "$scratch/fixtures/real/$name" "$scratch/bin"
	cp -r "$REPO/fixtures/capture" "$scratch/fixtures/"
	rm -rf "$scratch/fixtures/capture/cache"
	# The corpus' bulk disk is a block counter plus filler (compresses 100:1, so zstd decodes it at memory
	# speed); BULK_FROM in a scenario fills it with real files instead (compresses about 3:1, like real data).
	python3 - "$scratch/fixtures/capture/capture.sh" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
anchor = '\t[ "$(stat -c %s "$work/bulk.img")" = $((BULK_MIB * 1048576)) ]'
assert anchor in s, "capture.sh changed: update bench-analyze.sh"
s = s.replace(anchor, '\tif [ -n "${BULK_FROM:-}" ]; then find $BULK_FROM -type f -size +8k 2>/dev/null | sort | '
              'xargs cat 2>/dev/null | head -c $((BULK_MIB * 1048576)) >"$work/bulk.img" || true; fi\n'
              '\tif [ -n "${BULK_RANDOM:-}" ]; then head -c $((BULK_MIB * 1048576)) /dev/urandom >"$work/bulk.img"; fi\n' + anchor, 1)
open(p, "w").write(s)
PY
	VIA=record
	scenario_"$name" "$scratch/fixtures/real/$name"
	EXT3REPLAY_BIN="$BIN" EXT3REPLAY_CAPTURE_CACHE="$REPO/fixtures/capture/cache" CAPTURE_TIMEOUT=1800 CAPTURE_ZSTD_LEVEL=3 \
		"$scratch/fixtures/capture/capture.sh" "$name" --via "${VIA:-record}" --out "$CACHE/$name" >&2 ||
		echo "bench-analyze: capturing $name failed (QEMU and the packages of .ci/run are needed); skipped" >&2
}

scenario_big() {
	cat >"$1/scenario.env" <<'EOF'
# 1 GiB copied into a new file, then an untar of 2000 small files. ext3 ordered, 4 KiB blocks.
FS_TYPE=ext3
BLOCK_SIZE=4096
IMAGE_SIZE=1400M
MOUNT_OPTS=data=ordered
BULK_MIB=1024
EOF
	: >"$1/seed.sh"
	cat >"$1/workload.sh" <<'EOF'
x_mkdir /data
x_write_from /dev/vdb /data/big.bin 1024
mkdir -p /tmp/src/tree
i=0
while [ $i -lt 2000 ]; do mkdir -p /tmp/src/tree/d$((i / 100)); echo "small file $i" >/tmp/src/tree/d$((i / 100))/f$i; i=$((i + 1)); done
(cd /tmp/src && tar -cf /tmp/t.tar tree)
x_mkdir /untar
tar -xf /tmp/t.tar -C /mnt/untar
sync
EOF
}

# The same on Debian's default ext4 (extents, flex_bg, metadata_csum, 64bit, delalloc): the ratio to zstd
# decoding must be ext3's.
scenario_big4() {
	scenario_big "$1"
	sed -i -e 's/^FS_TYPE=ext3/FS_TYPE=ext4/' -e 's/ext3 ordered, 4 KiB blocks/ext4 defaults, 4 KiB blocks/' "$1/scenario.env"
}

scenario_real() {
	scenario_big "$1"
	sed -i 's/^# 1 GiB copied/# 1 GiB of real files (binaries, libraries) copied/' "$1/scenario.env"
	echo 'BULK_FROM="/usr/lib /usr/bin /usr/share"' >>"$1/scenario.env"
}

# The worst case for the log reader: 1 GiB of random bytes, which zstd stores raw (it decodes them at copy
# speed, so every copy of ours shows).
scenario_rand() {
	scenario_big "$1"
	sed -i 's/^# 1 GiB copied/# 1 GiB of random (incompressible) bytes copied/' "$1/scenario.env"
	echo 'BULK_RANDOM=1' >>"$1/scenario.env"
}

# Issue 12's case: a 6 GiB file system already holding 102,000 files (the index and the names table are
# large before the first request), 1 GiB of incompressible payload, then metadata work: an untar of 20,000
# files and the deletion of 50,000. Both logs (VIA=both): dm-log-writes is the format a stock QEMU writes.
scenario_large() {
	VIA=both
	cat >"$1/scenario.env" <<'EOF'
# 6 GiB ext3 holding 102,000 files: 1 GiB of random bytes copied in, 20,000 files untarred, 50,000 deleted.
FS_TYPE=ext3
BLOCK_SIZE=4096
IMAGE_SIZE=6G
MOUNT_OPTS=data=ordered
BULK_MIB=1024
BULK_RANDOM=1
EOF
	cat >"$1/seed.sh" <<'EOF'
# 102 directories of 1,000 small files each, and the tar of 20,000 more the guest unpacks (made here: the
# guest's tmpfs is too small to hold the tree and its tar).
for d in $(seq 0 101); do
	mkdir -p "old/d$d"
	(cd "old/d$d" && for f in $(seq 0 999); do echo "seed $d $f" >"f$f"; done)
done
src="$(mktemp -d)"
for d in $(seq 0 19); do
	mkdir -p "$src/tree/d$d"
	(cd "$src/tree/d$d" && for f in $(seq 0 999); do echo "small file $d $f" >"f$f"; done)
done
tar -C "$src" -cf src.tar tree
rm -rf "$src"
EOF
	cat >"$1/workload.sh" <<'EOF'
x_mkdir /data
x_write_from /dev/vdb /data/big.bin 1024
x_mkdir /untar
tar -xf /mnt/src.tar -C /mnt/untar
sync
i=0
while [ $i -lt 50 ]; do rm -rf /mnt/old/d$i; i=$((i + 1)); done
sync
EOF
}

scenario_many() {
	cat >"$1/scenario.env" <<'EOF'
# 20000 small files created, a third renamed, half deleted: a metadata-heavy log. ext3 ordered, 1 KiB blocks.
FS_TYPE=ext3
BLOCK_SIZE=1024
IMAGE_SIZE=256M
MOUNT_OPTS=data=ordered
EOF
	: >"$1/seed.sh"
	cat >"$1/workload.sh" <<'EOF'
x_mkdir /many
i=0
while [ $i -lt 20000 ]; do mkdir -p /mnt/many/d$((i / 1000)); echo "file $i" >/mnt/many/d$((i / 1000))/f$i; i=$((i + 1)); [ $((i % 200)) = 0 ] && sync; done
sync
i=0
while [ $i -lt 20000 ]; do mv /mnt/many/d$((i / 1000))/f$i /mnt/many/d$((i / 1000))/g$i; i=$((i + 3)); [ $((i % 600)) = 0 ] && sync; done
sync
i=0
while [ $i -lt 20000 ]; do rm -f /mnt/many/d$((i / 1000))/f$i /mnt/many/d$((i / 1000))/g$i; i=$((i + 2)); [ $((i % 400)) = 0 ] && sync; done
sync
EOF
}

# timed CMD...: wall seconds and peak RSS (KiB) of CMD, output discarded.
timed() {
	/usr/bin/time -f '%e %M' -o "$CACHE/time.out" "$@" >/dev/null 2>"$CACHE/err.out" || { cat "$CACHE/err.out" >&2; return 1; }
	cat "$CACHE/time.out"
}

# median: the median of the numbers on stdin.
median() { sort -n | awk 'NF { v[++n] = $1 } END { print (n ? v[int((n + 1) / 2)] : 0) }'; }

# rounds LOG [info]: ROUNDS rounds, each running zstd -dc LOG, then `log info LOG` if asked, then analyze
# of LOG (and the old binary's, when EXT3REPLAY_BIN_OLD is set), against $d/image.raw. Prints the medians:
# zstd, log info (0 if not asked), analyze, analyze's largest peak RSS, the old binary's analyze and RSS.
rounds() {
	local log="$1" info="${2:-}" z="" l="" a="" m=0 o="" om=0 s r k
	for ((k = 0; k < ROUNDS; k++)); do
		read -r s _ < <(timed zstd -dc "$log") && z+="$s "
		if [ -n "$info" ]; then read -r s _ < <(timed "$BIN" log info "$log") && l+="$s "; fi
		read -r s r < <(timed "$BIN" analyze --quiet --format "$FORMAT" "$d/image.raw" "$log") && a+="$s " && m=$((r > m ? r : m))
		if [ -n "$OLD" ]; then
			read -r s r < <(timed "$OLD" analyze --quiet --format "$FORMAT" "$d/image.raw" "$log") && o+="$s " && om=$((r > om ? r : om))
		fi
	done
	echo "$(tr ' ' '\n' <<<"$z" | median) $(tr ' ' '\n' <<<"${l:-0}" | median) $(tr ' ' '\n' <<<"$a" | median) $m $(tr ' ' '\n' <<<"${o:-0}" | median) $om"
}

# zst_rounds: ROUNDS rounds, each running zstd -dc of $d/image.raw.zst, zstd -dc of $d/io.log.zst, then
# analyze of the log with the compressed image (and the old binary's). Prints the medians: zstd of the
# image, zstd of the log, analyze, analyze's largest peak RSS, the old binary's analyze and RSS.
zst_rounds() {
	local zi="" zl="" a="" m=0 o="" om=0 s r k
	for ((k = 0; k < ROUNDS; k++)); do
		read -r s _ < <(timed zstd -dc "$d/image.raw.zst") && zi+="$s "
		read -r s _ < <(timed zstd -dc "$d/io.log.zst") && zl+="$s "
		read -r s r < <(timed "$BIN" analyze --quiet --format "$FORMAT" "$d/image.raw.zst" "$d/io.log.zst") && a+="$s " && m=$((r > m ? r : m))
		if [ -n "$OLD" ]; then
			read -r s r < <(timed "$OLD" analyze --quiet --format "$FORMAT" "$d/image.raw.zst" "$d/io.log.zst") && o+="$s " && om=$((r > om ? r : om))
		fi
	done
	echo "$(tr ' ' '\n' <<<"$zi" | median) $(tr ' ' '\n' <<<"$zl" | median) $(tr ' ' '\n' <<<"$a" | median) $m $(tr ' ' '\n' <<<"${o:-0}" | median) $om"
}
ZST_IMAGE="${ZST_IMAGE-large}"
# CHECK="NAME...": the cases also measured with check and analyze --check (CHECK_ROUNDS rounds, default 1).
CHECK="${CHECK-large}"
CHECK_ROUNDS="${CHECK_ROUNDS:-1}"

names="${*:-big big4 real rand large many}"
for name in $names; do capture "$name"; done

echo "# bench-analyze $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, analyze --format $FORMAT"
for name in $names; do
	d="$CACHE/$name"
	[ -f "$d/io.log.zst" ] || continue
	recs=$("$BIN" log info "$d/io.log.zst" 2>/dev/null | awk '/^records/ {print $2; exit}' || true)
	payload=$("$BIN" log info "$d/io.log.zst" 2>/dev/null | grep '^payload' | head -1 || true)
	# Warm the page cache, then ROUNDS alternating rounds.
	cat "$d/io.log.zst" "$d/image.raw.zst" >/dev/null
	# analyze decompresses the image into a temporary file first: give it the raw image, as users would.
	[ -f "$d/image.raw" ] || zstd -q -dc "$d/image.raw.zst" >"$d/image.raw"
	read -r tz tl ta rss to orss < <(rounds "$d/io.log.zst" info)
	nsops=$("$BIN" analyze --quiet --format jsonl "$d/image.raw" "$d/io.log.zst" |
		grep -c -E '"op":"(create|mkdir|symlink|mknod|delete|rmdir|move|link|unlink|truncate)"' || true)
	size=$(stat -c %s "$d/io.log.zst")
	echo "$name: log $(numfmt --to=iec "$size") compressed, ${recs:-?} records; ${payload}"
	echo "  zstd -dc: ${tz}s   log info (decode+parse): ${tl}s   analyze: ${ta}s   peak RSS ${rss} KiB   (medians of $ROUNDS rounds)"
	awk -v a="$ta" -v z="$tz" -v l="$tl" -v r="${recs:-0}" -v n="$nsops" 'BEGIN {
		printf "  analyze / zstd -dc = %.2fx   analyze / log info = %.2fx   %.0f requests/s   %d namespace ops, %.0f/s\n",
			a / (z > 0 ? z : 0.01), a / (l > 0 ? l : 0.01), (a > 0 ? r / a : 0), n, (a > 0 ? n / a : 0) }'
	[ -z "$OLD" ] || awk -v a="$to" -v z="$tz" -v m="$orss" 'BEGIN {
		printf "  old binary, same rounds: analyze: %ss   peak RSS %s KiB   analyze / zstd -dc = %.2fx\n", a, m, a / (z > 0 ? z : 0.01) }'
	# The same run's dm-log-writes log, when the capture made one (what a stock QEMU writes).
	if [ -f "$d/writes.lwlog.zst" ]; then
		cat "$d/writes.lwlog.zst" >/dev/null
		read -r twz _ twa wrss two worss < <(rounds "$d/writes.lwlog.zst")
		echo "  dm-log-writes log $(numfmt --to=iec "$(stat -c %s "$d/writes.lwlog.zst")"): zstd -dc: ${twz}s   analyze: ${twa}s   peak RSS ${wrss} KiB"
		awk -v a="$twa" -v z="$twz" 'BEGIN { printf "  analyze / zstd -dc = %.2fx (dm-log-writes)\n", a / (z > 0 ? z : 0.01) }'
		[ -z "$OLD" ] || awk -v a="$two" -v z="$twz" -v m="$worss" 'BEGIN {
			printf "  old binary, same rounds: analyze: %ss   peak RSS %s KiB   analyze / zstd -dc = %.2fx (dm-log-writes)\n", a, m, a / (z > 0 ? z : 0.01) }'
	fi
	# The image given compressed: it must be whole before the log's first record is resolved.
	if [[ " $ZST_IMAGE " == *" $name "* ]]; then
		read -r tzi tzl tza zrss tzo zorss < <(zst_rounds)
		echo "  image given as .zst: zstd -dc image: ${tzi}s   zstd -dc log: ${tzl}s   analyze IMAGE.zst LOG: ${tza}s   peak RSS ${zrss} KiB"
		awk -v a="$tza" -v i="$tzi" -v l="$tzl" 'BEGIN { z = i + l; printf "  analyze / (zstd -dc image + zstd -dc log) = %.2fx (.zst image)\n", a / (z > 0 ? z : 0.01) }'
		[ -z "$OLD" ] || awk -v a="$tzo" -v i="$tzi" -v l="$tzl" -v m="$zorss" 'BEGIN { z = i + l
			printf "  old binary, same rounds: analyze: %ss   peak RSS %s KiB   analyze / (zstd -dc image + log) = %.2fx (.zst image)\n", a, m, a / (z > 0 ? z : 0.01) }'
	fi
	# Consistency checking of the same log, against analyze of it (above): time and peak RSS, which
	# must not grow with the data written (docs/check.md#memory-plain-file-data-is-not-kept).
	if [[ " $CHECK " == *" $name "* ]]; then
		for bin in "$BIN" ${OLD:+"$OLD"}; do
			cz="" crss=0 acz="" acrss=0
			for ((k = 0; k < CHECK_ROUNDS; k++)); do
				read -r s r < <(timed "$bin" check "$d/image.raw" "$d/io.log.zst") && cz+="$s " && crss=$((r > crss ? r : crss))
				read -r s r < <(timed "$bin" analyze --quiet --check "$d/image.raw" "$d/io.log.zst") && acz+="$s " && acrss=$((r > acrss ? r : acrss))
			done
			tc=$(tr ' ' '\n' <<<"$cz" | median) tac=$(tr ' ' '\n' <<<"$acz" | median)
			who="check"
			[ "$bin" = "$BIN" ] || who="old binary, check"
			awk -v w="$who" -v c="$tc" -v ac="$tac" -v a="$ta" -v m="$crss" -v am="$acrss" 'BEGIN {
				printf "  %s: %ss, peak RSS %s KiB (%.1fx analyze)   analyze --check: %ss, peak RSS %s KiB (%.1fx analyze)\n", w, c, m, c / (a > 0 ? a : 0.01), ac, am, ac / (a > 0 ? a : 0.01) }'
		done
	fi
done
