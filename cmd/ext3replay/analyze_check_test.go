package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// analyze --check adds check's findings to the op stream as anomalies: on the U-Boot capture
// of docs/check.md, as many as check reports, each at the record whose check found it, with
// the stream still in seq order (ops.ReadJSONL refuses a decrease) and everything else
// unchanged; --fail-on-anomaly then exits 5. On a clean capture it adds nothing.
func TestAnalyzeCheck(t *testing.T) {
	dir := "../../pkg/check/testdata/uboot-replace"
	img, lg := filepath.Join(dir, "image.raw.zst"), filepath.Join(dir, "writes.lwlog.zst")
	var plain, with, stderr bytes.Buffer
	if code := executeArgs([]string{"analyze", "--quiet", "--format", "jsonl", img, lg}, &plain, &stderr); code != exitOK {
		t.Fatalf("analyze: exit %d: %s", code, stderr.String())
	}
	if code := executeArgs([]string{"analyze", "--format", "jsonl", "--check", img, lg}, &with, &stderr); code != exitOK {
		t.Fatalf("analyze --check: exit %d: %s", code, stderr.String())
	}
	run, err := ops.ReadJSONL(bytes.NewReader(with.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var rest []string
	checkOps := 0
	for _, op := range run {
		if op.Op == ops.Anomaly && strings.HasPrefix(op.Reason, "check ") {
			checkOps++
			continue
		}
		b, _ := json.Marshal(op)
		rest = append(rest, string(b))
	}
	var jl bytes.Buffer
	code := executeArgs([]string{"check", "--format", "jsonl", img, lg}, &jl, &stderr)
	findings := strings.Count(jl.String(), "\n")
	if code != exitFindings || findings == 0 || checkOps != findings {
		t.Errorf("check: exit %d, %d findings; analyze --check: %d check anomalies", code, findings, checkOps)
	}
	if !strings.Contains(stderr.String(), "check: 121 consistency points checked") {
		t.Errorf("summary: %s", stderr.String())
	}
	// Without the check lines, the stream is analyze's own.
	prun, err := ops.ReadJSONL(bytes.NewReader(plain.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, op := range prun {
		b, _ := json.Marshal(op)
		want = append(want, string(b))
	}
	if strings.Join(want, "\n") != strings.Join(rest, "\n") {
		t.Errorf("analyze --check changed analyze's own ops")
	}
	if code := executeArgs([]string{"analyze", "--quiet", "--check", "--fail-on-anomaly", img, lg}, &bytes.Buffer{}, &stderr); code != exitAnomaly {
		t.Errorf("--check --fail-on-anomaly: exit %d", code)
	}
	clean := filepath.Join(fixtures, "basic-ext4-4k")
	var out bytes.Buffer
	if code := executeArgs([]string{"analyze", "--quiet", "--check", "--fail-on-anomaly", filepath.Join(clean, "image.raw.zst"), filepath.Join(clean, "writes.lwlog.zst")}, &out, &stderr); code != exitOK {
		t.Errorf("clean capture: exit %d: %s", code, stderr.String())
	}
}

// analyze --check on a partitioned disk is refused with the way out (check --partition), not
// with the bare-file-system reader's "bad magic" at byte 1080.
func TestAnalyzeCheckPartitionedRefused(t *testing.T) {
	dir := "../../fixtures/real/gpt-ext4-boot-swap/"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("fixture missing")
	}
	_, err := runCLI(t, "analyze", "--check", "--quiet", dir+"image.raw.zst", dir+"io.log.zst")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), "check --partition N") {
		t.Fatalf("err = %v; want exit %d naming check --partition N", err, exitUsage)
	}
}
