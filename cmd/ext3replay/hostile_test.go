package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// inspect and blocks on the self-mapping block (TIND pointing at a block full of its own
// number) finish at once with an error naming the loop, instead of 24 s and a billion blocks
// (inspect) or hanging at 6 GB (blocks).
func TestHostileBlockMapLoop(t *testing.T) {
	b, _ := ext3fstest.SelfMappedRoot(t)
	img := filepath.Join(t.TempDir(), "loop.img")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"inspect", img}, {"blocks", img, "1000"}} {
		start := time.Now()
		_, err := runCLI(t, args...)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v", args[0], d)
		}
		if err == nil || !strings.Contains(err.Error(), "already part of this inode's map") {
			t.Errorf("%s: err = %v, want the map loop reported", args[0], err)
		}
	}
}
