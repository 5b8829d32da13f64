#!/usr/bin/env bash
# The recorder's cost to the guest: the same NBD workload (qemu-img convert
# writing SIZE MiB to the export, then reading it all back) served by
# qemu-nbd (reference) and by `ext3replay record`, in the same run.
# Reports wall-time ratios (goal < 1.2x). Usage: scripts/bench-record.sh [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-384}"
for t in qemu-img qemu-nbd; do
	command -v "$t" >/dev/null || { echo "bench-record: $t not installed (apt-get install qemu-utils); skipped"; exit 0; }
done
dir=$(mktemp -d /tmp/ext3replay-bench-record.XXXXXX)
trap 'rm -rf "$dir"' EXIT
bin="$dir/ext3replay"
CGO_ENABLED=0 go build -o "$bin" ./cmd/ext3replay
# Source data: a quarter random, the rest text, like a real disk's content.
head -c $((size / 4))M /dev/urandom >"$dir/src.img"
{ yes 'ext3replay recorder benchmark line of text' || true; } | head -c $((size * 3 / 4))M >>"$dir/src.img"
truncate -s "${size}M" "$dir/base.img"
mkfs.ext3 -q -F "$dir/base.img" >/dev/null 2>&1 || true

now() { date +%s%N; }
# wait_sock PATH: until the server listens
wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

# serve SERVER IMAGE: start a server for IMAGE on $dir/s.sock; sets pid
serve() {
	rm -f "$dir/s.sock"
	if [ "$1" = qemu-nbd ]; then
		qemu-nbd -f raw -k "$dir/s.sock" "$2" & pid=$!
	else
		rm -f "$dir/io.log.zst" "$dir/io.state.img"
		"$bin" record --image "$2" --log "$dir/io.log.zst" --state "$dir/io.state.img" --socket "$dir/s.sock" 2>"$dir/record.err" & pid=$!
	fi
	wait_sock "$dir/s.sock"
}

# run SERVER: prints "write_ms read_ms" for one run. Both servers exit when
# their one client leaves; the read pass serves the image the write pass left.
run() {
	local t0 t1 img
	cp --sparse=always "$dir/base.img" "$dir/run.img"
	serve "$1" "$dir/run.img"
	t0=$(now)
	qemu-img convert -n -f raw -O raw "$dir/src.img" "nbd+unix:///?socket=$dir/s.sock"
	t1=$(now)
	wait "$pid"
	[ "$1" = record ] && cp "$dir/record.err" "$dir/record-write.err"
	w=$(( (t1 - t0) / 1000000 ))
	img="$dir/run.img"
	if [ "$1" = record ]; then mv "$dir/io.state.img" "$dir/after.img"; img="$dir/after.img"; fi
	serve "$1" "$img"
	t0=$(now)
	qemu-img convert -f raw -O raw "nbd+unix:///?socket=$dir/s.sock" "$dir/out.img"
	t1=$(now)
	wait "$pid"
	cmp "$dir/src.img" "$dir/out.img" >/dev/null || { echo "bench-record: $1 read back other data" >&2; exit 1; }
	echo "$w $(( (t1 - t0) / 1000000 ))"
}

best() { sort -n | head -1; }
declare -A W R
for s in qemu-nbd record; do W[$s]=""; R[$s]=""; done
for i in 1 2 3; do
	for s in qemu-nbd record; do
		read -r w r < <(run "$s")
		W[$s]+="$w"$'\n'; R[$s]+="$r"$'\n'
	done
done
wq=$(printf '%s' "${W[qemu-nbd]}" | best); wr=$(printf '%s' "${W[record]}" | best)
rq=$(printf '%s' "${R[qemu-nbd]}" | best); rr=$(printf '%s' "${R[record]}" | best)
echo "workload: qemu-img convert of ${size} MiB to the NBD export, then all of it back (best of 3)"
echo "  write: qemu-nbd ${wq} ms, ext3replay record ${wr} ms, ratio $(awk -v a="$wr" -v b="$wq" 'BEGIN{printf "%.2f", a/b}')x"
echo "  read:  qemu-nbd ${rq} ms, ext3replay record ${rr} ms, ratio $(awk -v a="$rr" -v b="$rq" 'BEGIN{printf "%.2f", a/b}')x"
echo "  total ratio: $(awk -v a="$((wr + rr))" -v b="$((wq + rq))" 'BEGIN{printf "%.2f", a/b}')x (goal < 1.2x)"
echo "  recorder summary, write pass: $(tail -1 "$dir/record-write.err")"
echo "  recorder summary, read pass:  $(tail -1 "$dir/record.err")"
