package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the CLI in-process with fresh flag values and returns the
// exit code and stdout.
func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := executeArgs(args, &out, io.Discard)
	return code, out.String()
}

const (
	runA = "../../pkg/ops/testdata/run-a.jsonl"
	runB = "../../pkg/ops/testdata/run-b.jsonl"
)

func TestDiffExitCodes(t *testing.T) {
	if code, out := run(t, "diff", runA, runA); code != exitOK || !strings.Contains(out, "Same:") {
		t.Errorf("same runs: exit %d\n%s", code, out)
	}
	if code, out := run(t, "diff", runA, runB); code != exitDiffers || !strings.Contains(out, "2 difference(s)") {
		t.Errorf("variant: exit %d\n%s", code, out)
	}
	if code, out := run(t, "diff", "--format", "json", runA, runB); code != exitDiffers || !strings.HasPrefix(out, "{") {
		t.Errorf("json: exit %d\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"seq":1,"op":"create","path":"/a"}`+"\n{oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"diff", runA},
		{"diff", runA, "/nonexistent/run.jsonl"},
		{"diff", runA, bad},
		{"diff", "--threshold", "lots", runA, runB},
		{"diff", "--format", "xml", runA, runB},
		{"diff", "--min-bytes", "-1", runA, runB},
		{"diff", "-", "-"},
		{"diff", "--image", "/nonexistent.img", "/nonexistent-a.log", "/nonexistent-b.log"},
	} {
		if code, _ := run(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestStatsCommand(t *testing.T) {
	code, out := run(t, "stats", "--sort", "writes", "--top", "1", "--format", "csv", runA)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "/home/debian/d/a,file,") {
		t.Fatalf("got\n%s", out)
	}
	o := filepath.Join(t.TempDir(), "report.md")
	if code, _ := run(t, "stats", "--by", "dir", "--depth", "2", "--format", "markdown", "-o", o, runA); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if b, err := os.ReadFile(o); err != nil || !bytes.Contains(b, []byte("| /home/debian |")) {
		t.Fatalf("%v\n%s", err, b)
	}
	for _, args := range [][]string{
		{"stats", "--sort", "size", runA},
		{"stats", "--by", "disk", runA},
		{"stats", "--format", "xml", runA},
		{"stats", "/nonexistent.jsonl"},
		{"stats"},
	} {
		if code, _ := run(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// The two runs are read side by side, and a bad one is named with its line, the first in
// argument order when both are bad.
func TestDiffNamesTheBadRun(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"seq":1,"op":"create","path":"/a"}`+"\n{oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.jsonl")
	for _, c := range []struct {
		a, b, want string
	}{
		{runA, bad, "bad.jsonl:2"},
		{bad, runA, "bad.jsonl:2"},
		{bad, missing, "bad.jsonl:2"},
		{missing, bad, "missing.jsonl"},
	} {
		var stderr bytes.Buffer
		code := executeArgs([]string{"diff", c.a, c.b}, io.Discard, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("diff %s %s: exit %d, %q; want %d naming %s", filepath.Base(c.a), filepath.Base(c.b), code, stderr.String(), exitUsage, c.want)
		}
	}
}
