#!/usr/bin/env bash
# Scores `ext3replay analyze` against the ground truth of every real fixture (fixtures/real/*/expected.jsonl)
# and prints the table; with no arguments (`make accuracy`) also writes it to docs/accuracy.md.
# Usage: scripts/accuracy.sh [SCENARIO...]   (named scenarios only: table printed, docs untouched)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/ext3replay ] || CGO_ENABLED=0 go build -o bin/ext3replay ./cmd/ext3replay
bin/ext3replay analyze --help >/dev/null 2>&1 || { echo "accuracy: bin/ext3replay has no analyze command yet" >&2; exit 1; }
if [ $# -gt 0 ]; then
	exec go run ./internal/accuracy/cmd/accuracy -bin bin/ext3replay -real fixtures/real "$@"
fi
go run ./internal/accuracy/cmd/accuracy -bin bin/ext3replay -real fixtures/real -o docs/accuracy.md \
	-command "make accuracy (scripts/accuracy.sh)"
echo "wrote docs/accuracy.md" >&2
