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
		inspectFlags.format, inspectFlags.groups, blocksFlags.format, blocksFlags.sectors = "text", false, "text", false
		rootCmd.SetOut(fullWriter{})
		rootCmd.SetArgs(args)
		err := rootCmd.Execute()
		rootCmd.SetOut(nil)
		rootCmd.SetArgs(nil)
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
