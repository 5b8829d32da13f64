package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeAnalyzer writes a shell script that answers `analyze IMAGE LOG --format jsonl` with the ops in
// FAKE_OPS next to the log (so each scenario controls its answer), or fails when that file is missing.
func fakeAnalyzer(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ext3replay")
	script := `#!/bin/sh
[ "$1" = analyze ] || exit 2
ops="$(dirname "$3")/fake-ops.jsonl"
[ -f "$ops" ] || { echo "ext3replay analyze: $3: broken log" >&2; exit 2; }
cat "$ops"
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func scenario(t *testing.T, root, name, expected, fakeOps string) {
	t.Helper()
	d := filepath.Join(root, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"expected.jsonl": expected, "image.raw.zst": "", "io.log.zst": ""}
	if fakeOps != "" {
		files["fake-ops.jsonl"] = fakeOps
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(d, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRun(t *testing.T) {
	tmp := t.TempDir()
	bin := fakeAnalyzer(t, tmp)
	root := filepath.Join(tmp, "real")
	scenario(t, root, "good", `{"op":"mkdir","path":"/d"}`+"\n", `{"seq":1,"op":"mkdir","path":"/d"}`+"\n")
	scenario(t, root, "broken", `{"op":"mkdir","path":"/d"}`+"\n", "")
	out := filepath.Join(tmp, "accuracy.md")

	if err := run(bin, root, out, "make accuracy", time.Minute, false, nil); err != nil {
		t.Fatalf("non-strict run: %v", err)
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Made by `make accuracy`",
		"| good | io.log.zst | 1 | 1 | 1.00 | 1.00 |",
		"| broken | io.log.zst | error: analyze: exit status 2: ext3replay analyze:",
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}

	err = run(bin, root, "", "", time.Minute, true, nil)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 analyze runs failed") {
		t.Errorf("strict run with a failing analyze: err = %v", err)
	}
	if err := run(bin, root, "", "", time.Minute, true, []string{"good"}); err != nil {
		t.Errorf("strict run on the good scenario only: %v", err)
	}
	if err := run(bin, root, "", "", time.Minute, false, []string{"nonesuch"}); err == nil {
		t.Error("no scenario selected, no error")
	}
}
