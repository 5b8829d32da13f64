#!/usr/bin/env bash
# bench-saved.sh: how fast `stats` and `diff` read and compare saved runs, against a reference measured in
# the same rounds: jq parsing the same jsonl files (`jq -c . A B >/dev/null`), a program that does nothing
# but read every op.
#
# The runs are those of issue 12's `large` capture, which scripts/bench-analyze.sh makes and caches
# ($BENCH_CACHE/large): its native log and its dm-log-writes log analyzed (--format jsonl), two runs of
# the same workload of 90,000 ops each that differ in what each log recorded. Without that capture, a
# synthetic pair of 100,000-op runs (an untar: creates, writes, renames) is used instead.
#
# Each figure is the median of ROUNDS (default 5) rounds that alternate the commands. EXT3REPLAY_BIN_OLD=BINARY
# adds that binary's stats and diff to every round.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BIN="${EXT3REPLAY_BIN:-$REPO/bin/ext3replay}"
OLD="${EXT3REPLAY_BIN_OLD:-}"
ROUNDS="${ROUNDS:-5}"
CACHE="${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ext3replay-bench}"
# The tree's own binary, built as `make build` builds it (up to date in a second when it is): one
# left from an earlier checkout would be measured instead. EXT3REPLAY_BIN names another, as it is.
[ -n "${EXT3REPLAY_BIN:-}" ] || make -s build
command -v jq >/dev/null || { echo "jq not installed (apt-get install jq): no reference, nothing measured"; exit 0; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

d="$CACHE/large"
if [ -f "$d/io.log.zst" ] && [ -f "$d/writes.lwlog.zst" ] && [ -f "$d/image.raw" ]; then
	what="large: the native and the dm-log-writes log of one run, analyzed"
	"$BIN" analyze --quiet --format jsonl -o "$work/a.jsonl" "$d/image.raw" "$d/io.log.zst"
	"$BIN" analyze --quiet --format jsonl -o "$work/b.jsonl" "$d/image.raw" "$d/writes.lwlog.zst"
else
	what="synthetic: two runs of an untar of 20,000 files, one in ten renamed in one of them"
	python3 - "$work/a.jsonl" "$work/b.jsonl" <<'PY'
import json, sys
for path, renames in ((sys.argv[1], False), (sys.argv[2], True)):
    with open(path, "w") as out:
        seq = 0
        for d in range(100):
            out.write(json.dumps({"seq": seq, "op": "mkdir", "path": f"/src/d{d}"}, separators=(",", ":")) + "\n")
            seq += 1
        for i in range(20000):
            p = f"/src/d{i % 100}/file{i}.c"
            out.write(json.dumps({"seq": seq, "op": "create", "path": p, "ino": i + 100}, separators=(",", ":")) + "\n")
            for k in range(3):
                out.write(json.dumps({"seq": seq, "op": "write", "path": p, "ino": i + 100, "sector": i * 32 + k * 8,
                                      "bytes": 4096, "kind": "data"}, separators=(",", ":")) + "\n")
            if renames and i % 10 == 0:
                out.write(json.dumps({"seq": seq, "op": "move", "path": p, "to": p + ".orig"}, separators=(",", ":")) + "\n")
            seq += 1
PY
fi
a="$work/a.jsonl" b="$work/b.jsonl"
cat "$a" "$b" >/dev/null # page cache
echo "# bench-saved $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores"
echo "$what: $(wc -l <"$a") and $(wc -l <"$b") ops, $(numfmt --to=iec "$(stat -c %s "$a")") and $(numfmt --to=iec "$(stat -c %s "$b")") (median of $ROUNDS alternating rounds)"

# timed CMD...: wall seconds and peak RSS (KiB) of CMD, output discarded; diff's exit status 1 (the runs
# differ) is its answer, not a failure.
timed() {
	/usr/bin/time -f '%e %M' -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" || [ $? -eq 1 ] || { cat "$work/err.out" >&2; return 1; }
	tail -n 1 "$work/time.out" # after time's own line about a non-zero status
}
declare -A t m
cmds=(jq stats diff)
[ -n "$OLD" ] && cmds+=(old-stats old-diff)
for ((r = 0; r < ROUNDS; r++)); do
	for c in "${cmds[@]}"; do
		case $c in
		jq) read -r s k < <(timed jq -c . "$a" "$b") ;;
		stats) read -r s k < <(timed "$BIN" stats "$a") ;;
		diff) read -r s k < <(timed "$BIN" diff "$a" "$b") ;;
		old-stats) read -r s k < <(timed "$OLD" stats "$a") ;;
		old-diff) read -r s k < <(timed "$OLD" diff "$a" "$b") ;;
		esac
		t[$c]+="$s "
		m[$c]=$k
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
ref=$(median <<<"${t[jq]}")
printf "  %-28s %6.2f s  %8s KiB\n" "jq -c . A B (reference)" "$ref" "${m[jq]}"
for c in "${cmds[@]}"; do
	[ "$c" = jq ] && continue
	s=$(median <<<"${t[$c]}")
	label=$c
	case $c in
	stats) label="stats A" ;;
	diff) label="diff A B" ;;
	old-stats) label="stats A (old binary)" ;;
	old-diff) label="diff A B (old binary)" ;;
	esac
	awk -v l="$label" -v s="$s" -v r="$ref" -v k="${m[$c]}" 'BEGIN { printf "  %-28s %6.2f s  %8s KiB   %.2fx jq\n", l, s, k, s / (r > 0 ? r : 0.01) }'
done
