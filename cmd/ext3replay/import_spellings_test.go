package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// import detects its input kind; --from dm-log-writes and its alias blklogwrites, which scripts
// written before issue 16 pass, give the same log. A kind it does not know is exit 2.
func TestImportSpellings(t *testing.T) {
	needFixture(t)
	in := filepath.Join(fixtureDir, "writes.lwlog.zst")
	dir := t.TempDir()
	var logs [][]byte
	for i, from := range [][]string{nil, {"--from", "dm-log-writes"}, {"--from", "blklogwrites"}} {
		out := filepath.Join(dir, string(rune('a'+i))+".zst")
		args := append(append([]string{"import", in, "-o", out}, from...), "--image", filepath.Join(fixtureDir, "image.raw.zst"))
		if err := runArgs(io.Discard, io.Discard, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var b bytes.Buffer
		if code := executeArgs([]string{"log", "cat", "--format", "jsonl", "--data", out}, &b, io.Discard); code != exitOK || b.Len() == 0 {
			t.Fatalf("log cat %s: exit %d", out, code)
		}
		logs = append(logs, b.Bytes())
	}
	if !bytes.Equal(logs[0], logs[1]) || !bytes.Equal(logs[0], logs[2]) {
		t.Error("the three spellings gave different logs")
	}
	err := runArgs(io.Discard, io.Discard, "import", in, "-o", filepath.Join(dir, "x.zst"), "--from", "frob")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage {
		t.Errorf("--from frob: %v, want exit %d", err, exitUsage)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.zst")); err == nil {
		t.Error("--from frob left an output")
	}
}
