#!/usr/bin/env bash
# Scores `ext3replay analyze` against the ground truth of every real fixture (fixtures/real/*/expected.jsonl),
# prints the table and writes it to docs/accuracy.md. Usage: scripts/accuracy.sh [SCENARIO...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/ext3replay ] || go build -o bin/ext3replay ./cmd/ext3replay
bin/ext3replay analyze --help >/dev/null 2>&1 || { echo "accuracy: bin/ext3replay has no analyze command yet" >&2; exit 1; }
go run ./internal/accuracy/cmd/accuracy -bin bin/ext3replay -real fixtures/real -o docs/accuracy.md \
	-command "scripts/accuracy.sh${*:+ $*} (make accuracy)" "$@"
echo "wrote docs/accuracy.md" >&2
