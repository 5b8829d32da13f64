package main

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
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
