#!/usr/bin/env bash
# The recorder's cost to a booted guest: the fixture harness's Linux guest (fixtures/capture: Debian kernel,
# busybox initramfs, QEMU -accel tcg) runs the same disk-heavy workload on an ext3 disk served over a Unix
# socket by qemu-nbd (reference, on a copy of the image) and by `ext3replay record`, alternating
# qemu-nbd/record for each repetition, and reports the median of each and their ratio (goal < 1.2x):
#   wall    QEMU start to QEMU exit (boot, workload, unmount, power off)
#   guest   the workload alone, timed inside the guest (/proc/uptime, 10 ms), so boot does not dilute it
# Workload: copy MIB MiB from a second, read-only virtio disk (a quarter random, the rest text) into the
# file system, sync; drop caches, read it back; create FILES small files (1.5-4.5 KiB) in dirs of 250,
# sync after each dir; drop caches, read them all; remove them, sync.
# Usage: scripts/bench-record-guest.sh [--reps N] [--mib N] [--files N]   (defaults 5, 256, 4000; ~2.5 min)
source "$(dirname "$0")/../fixtures/capture/common.sh"

reps=5 mib=256 files=4000
while [ $# -gt 0 ]; do
	case "$1" in
	--reps) reps="$2"; shift 2 ;;
	--mib) mib="$2"; shift 2 ;;
	--files) files="$2"; shift 2 ;;
	-h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1" ;;
	esac
done
for t in qemu-system-x86_64 qemu-nbd mke2fs debugfs e2fsck cpio; do
	command -v "$t" >/dev/null || { echo "bench-record-guest: $t not installed (see .ci/run); skipped"; exit 0; }
done

ensure_base_initramfs # kernel + busybox initramfs, cached in fixtures/capture/cache
mkdir -p "$CACHE_DIR"
work="$(mktemp -d "$CACHE_DIR/bench-record-guest.XXXXXX")" # same file system as the captures, not tmpfs
srv_pid=""
cleanup() {
	if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then kill "$srv_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
bin="$work/ext3replay"
(cd "$REPO_DIR" && CGO_ENABLED=0 go build -o "$bin" ./cmd/ext3replay)

# The guest side: guest/init mounts /dev/vda with FS_TYPE and MOUNT_OPTS from scenario.env, sources
# workload.sh, then syncs, unmounts and powers off. Markers go to the console as "@@BENCH@@ PHASE UPTIME".
sdir="$work/scenario"
mkdir -p "$sdir"
# Room for the bulk file, the small files and the journal, with a quarter spare.
img_mib=$(((mib + files * 8 / 1024 + 32) * 5 / 4))
cat >"$sdir/scenario.env" <<EOF
FS_TYPE=ext3
BLOCK_SIZE=4096
IMAGE_SIZE=${img_mib}M
MOUNT_OPTS=data=ordered
BENCH_MIB=$mib
BENCH_FILES=$files
EOF
cat >"$sdir/workload.sh" <<'EOF'
mark() { echo "@@BENCH@@ $1 $(cut -d' ' -f1 /proc/uptime)"; }
drop() { echo 3 >/proc/sys/vm/drop_caches; }
mark start
dd if=/dev/vdb of=/mnt/big bs=1048576 count="$BENCH_MIB" 2>/dev/null
sync
mark copy
drop
dd if=/mnt/big of=/dev/null bs=1048576 2>/dev/null
mark readback
blk="$(yes 'a line of a small file in the recorder benchmark' | head -c 1536)"
i=0
while [ $i -lt "$BENCH_FILES" ]; do
	d=/mnt/s$((i / 250))
	if [ $((i % 250)) -eq 0 ]; then
		[ $i -eq 0 ] || sync # a sync per full dir: journal commits, so flushes reach the server
		mkdir "$d"
	fi
	case $((i % 3)) in
	0) printf '%s' "$blk" >"$d/f$i" ;;
	1) printf '%s%s' "$blk" "$blk" >"$d/f$i" ;;
	2) printf '%s%s%s' "$blk" "$blk" "$blk" >"$d/f$i" ;;
	esac
	i=$((i + 1))
done
sync
mark small
drop
cat /mnt/s*/* >/dev/null
mark smallread
rm -rf /mnt/s*
sync
mark remove
EOF
make_image "$sdir" "$work/base.img" 2>/dev/null
scenario_initramfs "$sdir" "$work/initrd.gz"
# Bulk disk (/dev/vdb): a quarter random, the rest text, like a real disk's content; the recorder compresses
# what it logs, so all-text data would flatter it.
{
	head -c $((mib * 1048576 / 4)) /dev/urandom
	yes 'ext3replay guest benchmark: bulk data copied into the file system' | head -c $((mib * 1048576 - mib * 1048576 / 4)) || true
} >"$work/bulk.img"

now() { date +%s%N; }

# run SERVER: one boot against SERVER (qemu-nbd or record); writes "wall_ms guest_ms phase=ms..." to
# $work/result. (Not in a subshell: the EXIT trap must see srv_pid if the run fails.)
run() {
	local srv="$1" sock="$work/nbd.sock" final t0 t1 rc=0
	rm -f "$sock" "$work/io.log.zst" "$work/run.img" "$work/console.log" "$work/srv.err"
	if [ "$srv" = qemu-nbd ]; then
		cp --sparse=always "$work/base.img" "$work/run.img"
		qemu-nbd -f raw -k "$sock" "$work/run.img" 2>"$work/srv.err" &
		srv_pid=$!
		for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
		[ -S "$sock" ] || { cat "$work/srv.err" >&2; die "qemu-nbd did not listen"; }
	else
		# The recorder makes its own state copy of base.img before it says ready (outside the timing).
		start_recorder srv_pid "$bin" "$work/base.img" "$work/io.log.zst" "$sock" "$work/run.img" "$work/srv.err"
	fi
	t0=$(now)
	timeout 600 qemu-system-x86_64 -accel tcg -m 256 -smp 1 \
		-display none -monitor none -serial "file:$work/console.log" -no-reboot \
		-kernel "$KERNEL" -initrd "$work/initrd.gz" -append 'console=ttyS0 panic=-1 quiet' \
		-blockdev "driver=nbd,node-name=d0,server.type=unix,server.path=$sock,export=" \
		-device virtio-blk-pci,drive=d0 \
		-blockdev "driver=file,node-name=bulk,filename=$work/bulk.img,read-only=on" \
		-device virtio-blk-pci,drive=bulk || rc=$?
	t1=$(now)
	[ $rc -eq 0 ] || { tail -n 20 "$work/console.log" >&2; die "$srv: qemu failed ($rc)"; }
	rc=0
	wait "$srv_pid" || rc=$?
	srv_pid=""
	[ $rc -eq 0 ] || { cat "$work/srv.err" >&2; die "$srv exited with $rc"; }
	tr -d '\r' <"$work/console.log" >"$work/console.txt"
	grep -q '^@@X3R@@-END rc=0$' "$work/console.txt" ||
		{ tail -n 20 "$work/console.txt" >&2; die "$srv: the workload did not finish cleanly"; }
	# The run counts only if the disk is a clean file system holding the bulk data.
	final="$work/run.img"
	e2fsck -fn "$final" >"$work/fsck.txt" 2>&1 || { cat "$work/fsck.txt" >&2; die "$srv: final image not clean"; }
	debugfs -R 'cat /big' "$final" 2>/dev/null | cmp -s - "$work/bulk.img" ||
		die "$srv: /big on the final image differs from the bulk disk"
	# The summary without the run's temporary paths.
	[ "$srv" = record ] && tail -n 1 "$work/srv.err" | sed 's/; log .*(\([0-9]* records, [0-9]* bytes\)).*/; log: \1/' >"$work/record.summary"
	awk -v wall=$(((t1 - t0) / 1000000)) '
		$1 == "@@BENCH@@" { t[$2] = $3 * 1000; order[n++] = $2 }
		END {
			out = ""
			for (i = 1; i < n; i++) out = out sprintf(" %s=%d", order[i], t[order[i]] - t[order[i-1]])
			printf "%d %d%s\n", wall, t[order[n-1]] - t["start"], out
		}' "$work/console.txt" >"$work/result"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

declare -A WALL GUEST
echo "guest workload: copy $mib MiB from a second disk, read back, $files small files written/read/removed; $reps x (qemu-nbd, record)"
for i in $(seq "$reps"); do
	for s in qemu-nbd record; do
		run "$s"
		read -r w g phases <"$work/result"
		WALL[$s]+="$w"$'\n'
		GUEST[$s]+="$g"$'\n'
		printf '  run %d %-8s wall %6d ms  guest %6d ms  (%s)\n' "$i" "$s" "$w" "$g" "$phases"
	done
done
wq=$(printf '%s' "${WALL[qemu-nbd]}" | median); wr=$(printf '%s' "${WALL[record]}" | median)
gq=$(printf '%s' "${GUEST[qemu-nbd]}" | median); gr=$(printf '%s' "${GUEST[record]}" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "booted guest (TCG), ext3 on NBD over a unix socket; median of $reps alternating runs each"
echo "  wall:  qemu-nbd $wq ms, ext3replay record $wr ms, ratio $(ratio "$wr" "$wq")x (goal < 1.2x)"
echo "  guest: qemu-nbd $gq ms, ext3replay record $gr ms, ratio $(ratio "$gr" "$gq")x (workload only, boot excluded)"
echo "  recorder summary, last run: $(cat "$work/record.summary")"
