#!/usr/bin/env bash
# duckdb-check.sh: runs the queries of docs/parquet.md with DuckDB over a folder of Parquet runs made from three
# real fixtures, and checks the answer against the same sums taken from the runs' jsonl. Not part of `make test`:
# it needs DuckDB, taken here from the npm registry (@duckdb/node-api ships its engine in the package) into a
# temporary directory. Usage: scripts/duckdb-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BIN="${EXT3REPLAY_BIN:-$REPO/bin/ext3replay}"
[ -x "$BIN" ] || CGO_ENABLED=0 go build -o "$BIN" ./cmd/ext3replay
command -v node >/dev/null && command -v npm >/dev/null || { echo "duckdb-check: node and npm are needed" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/runs" "$work/stats" "$work/jsonl"
for s in basic-ext3-4k basic-ext2-4k bigfile-ext3-4k; do
	f="fixtures/real/$s"
	"$BIN" analyze --quiet --metadata --format parquet -o "$work/runs/$s.parquet" "$f/image.raw.zst" "$f/io.log.zst"
	"$BIN" analyze --quiet --metadata --format jsonl -o "$work/jsonl/$s.jsonl" "$f/image.raw.zst" "$f/io.log.zst"
	"$BIN" stats --format parquet -o "$work/stats/$s.parquet" "$f/image.raw.zst" "$f/io.log.zst"
done
(cd "$work" && npm install --silent --no-audit --no-fund @duckdb/node-api >/dev/null)
cat >"$work/check.mjs" <<'JS'
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync, readdirSync } from 'node:fs';
// "Which runs wrote more than X of file data under DIR?", as docs/parquet.md has it, for two DIRs.
const c = await (await DuckDBInstance.create(':memory:')).connect();
let bad = 0;
for (const [dir, min] of [['/media', 1 << 20], ['/projects', 10 << 10]]) {
  const ops = await c.runAndReadAll(`SELECT run_id, sum(bytes) AS written FROM read_parquet('runs/*.parquet')
    WHERE op = 'write' AND kind = 'data' AND (path = '${dir}' OR starts_with(path, '${dir}/'))
    GROUP BY run_id HAVING sum(bytes) > ${min} ORDER BY run_id`);
  const stats = await c.runAndReadAll(`SELECT run_id, sum(data.write_bytes) AS written FROM read_parquet('stats/*.parquet')
    WHERE path = '${dir}' OR starts_with(path, '${dir}/') GROUP BY run_id HAVING sum(data.write_bytes) > ${min} ORDER BY run_id`);
  const want = [];
  for (const f of readdirSync('jsonl').sort()) {
    let n = 0;
    for (const l of readFileSync('jsonl/' + f, 'utf8').split('\n')) {
      if (!l) continue;
      const o = JSON.parse(l);
      if (o.op === 'write' && o.kind === 'data' && (o.path === dir || (o.path || '').startsWith(dir + '/'))) n += o.bytes;
    }
    if (n > min) want.push({ run_id: f.replace(/\.jsonl$/, ''), written: String(n) });
  }
  for (const [what, r] of [['ops', ops], ['stats', stats]]) {
    const got = JSON.stringify(r.getRowObjectsJson()), w = JSON.stringify(want);
    console.log(`${dir} > ${min} bytes (${what}): ${got}`);
    if (got !== w) { console.log(`  want ${w}`); bad++; }
  }
}
process.exit(bad ? 1 : 0);
JS
(cd "$work" && node check.mjs)
echo "duckdb-check: the queries of docs/parquet.md give the jsonl's answer"
