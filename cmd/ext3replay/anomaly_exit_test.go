package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// --fail-on-anomaly gives CI an exit status for a run with anomalies (here a write beyond the
// image's end); without it the same run exits 0. The output is complete either way.
func TestFailOnAnomaly(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", img, "1M").CombinedOutput(); err != nil {
		t.Skipf("mke2fs: %v\n%s", err, out)
	}
	lw := filepath.Join(dir, "w.lwlog")
	f, err := os.Create(lw)
	if err != nil {
		t.Fatal(err)
	}
	dw, err := blklog.NewDMLogWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	dw.Write(&blklog.Record{Type: blklog.TypeWrite, Sector: 4000, Length: 512, Data: make([]byte, 512)})
	dw.Close()
	f.Close()
	var out, stderr bytes.Buffer
	if code := executeArgs([]string{"analyze", "--quiet", img, lw}, &out, &stderr); code != exitOK {
		t.Fatalf("without the flag: exit %d: %s", code, stderr.String())
	}
	want := out.String()
	if !strings.Contains(want, "anomaly") {
		t.Fatalf("no anomaly in the run:\n%s", want)
	}
	out.Reset()
	stderr.Reset()
	if code := executeArgs([]string{"analyze", "--quiet", "--fail-on-anomaly", img, lw}, &out, &stderr); code != exitAnomaly ||
		!strings.Contains(stderr.String(), "1 anomalies") || out.String() != want {
		t.Errorf("with the flag: exit %d, stderr %q, output %q", code, stderr.String(), out.String())
	}
}
