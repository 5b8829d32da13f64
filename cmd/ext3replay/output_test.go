package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ext3replay/ext3replay/internal/diskimage"
)

// fullWriter fails every write, like a full disk.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// A failure writing the output is exit status 3 for every command that prints a report
// (docs/output-formats.md); inspect and blocks said 2, log info and log cat 0.
func TestOutputWriteFailure(t *testing.T) {
	needFixture(t)
	img := filepath.Join(fixtureDir, "image.raw.zst")
	lg := filepath.Join(fixtureDir, "io.log.zst")
	for _, args := range [][]string{
		{"inspect", img},
		{"blocks", img, "0", "1"},
		{"log", "info", lg},
		{"log", "cat", lg},
	} {
		err := runArgs(fullWriter{}, nil, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitInternal || !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%v: err = %v, want exit status %d with the write error", args, err, exitInternal)
		}
	}
}

// A truncated image is refused up front by inspect and blocks, saying how long it should be.
func TestInspectTruncatedImage(t *testing.T) {
	needFixture(t)
	img, err := diskimage.Open(filepath.Join(fixtureDir, "image.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5<<20) // the inode table and root directory, not the rest
	_, err = img.ReadAt(b, 0)
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.raw")
	if err := os.WriteFile(cut, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"inspect", cut}, {"blocks", cut, "1"}} {
		_, err := runCLI(t, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), "the file system needs 67108864") {
			t.Errorf("%v: err = %v, want the truncation named", args, err)
		}
	}
}

// Block arguments: a reversed range says so rather than "not a number".
func TestParseNumbers(t *testing.T) {
	if got, err := parseNumbers([]string{"7", "0x10-0x12"}); err != nil || len(got) != 4 || got[0] != 7 || got[3] != 18 {
		t.Fatalf("parseNumbers: %v, %v", got, err)
	}
	for arg, want := range map[string]string{"5-3": "ends before it starts", "x": "not a number", "1-y": "not a number", "-1": "not a number"} {
		if _, err := parseNumbers([]string{arg}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", arg, err, want)
		}
	}
}

// A log given where the image belongs (arguments swapped) is named as such.
func TestLogGivenAsImage(t *testing.T) {
	needFixture(t)
	lg := filepath.Join(fixtureDir, "io.log.zst")
	for _, args := range [][]string{{"inspect", lg}, {"blocks", lg, "1"}} {
		if _, err := runCLI(t, args...); err == nil || !strings.Contains(err.Error(), "is a block-I/O log, not a disk image") {
			t.Errorf("%v: err = %v", args, err)
		}
	}
	if _, err := analyzeToOps(lg, filepath.Join(fixtureDir, "image.raw.zst"), false, nil); err == nil || !strings.Contains(err.Error(), "is a block-I/O log, not a disk image") {
		t.Errorf("analyze LOG IMAGE: err = %v", err)
	}
	if _, err := analyzeToOps(filepath.Join(fixtureDir, "writes.lwlog.zst"), lg, false, nil); err == nil || !strings.Contains(err.Error(), "is a block-I/O log, not a disk image") {
		t.Errorf("analyze with a dm-log-writes log as image: err = %v", err)
	}
}
