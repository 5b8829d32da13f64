package main

import (
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// TestRefuseUnsupportedExt4 makes images with each ext4 feature the decoders do not support and
// checks that inspect, blocks and analyze refuse them at open with exit 2 and the feature's name.
func TestRefuseUnsupportedExt4(t *testing.T) {
	ext3fstest.Need(t)
	for _, c := range []struct{ feature, mkfs string }{
		{"bigalloc", "-t ext4 -O bigalloc"},
		{"encrypt", "-t ext4 -O encrypt"},
		{"casefold", "-t ext4 -O casefold"},
		{"verity", "-t ext4 -O verity"},
		{"journal_dev", "-O journal_dev -b 4096"},
	} {
		img := filepath.Join(t.TempDir(), c.feature+".img")
		args := append([]string{"-q", "-F"}, strings.Fields(c.mkfs)...)
		if out, err := exec.Command("mke2fs", append(args, img, "8M")...).CombinedOutput(); err != nil {
			t.Logf("%s: mke2fs cannot make it here (%v: %s)", c.feature, err, out)
			continue
		}
		for _, cmd := range [][]string{{"inspect", img}, {"blocks", img, "1"}} {
			_, err := runCLI(t, cmd...)
			if err == nil || !strings.Contains(err.Error(), c.feature) || !strings.Contains(err.Error(), "not supported") {
				t.Errorf("%s %s: error %v, want one naming %s as not supported", cmd[0], c.feature, err, c.feature)
			}
			if code := executeArgs(cmd, io.Discard, io.Discard); code != exitUsage {
				t.Errorf("%s %s: exit %d, want %d", cmd[0], c.feature, code, exitUsage)
			}
		}
	}
}
