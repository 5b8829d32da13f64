package check

import (
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// runFixture checks a real capture's log against its image.
func runFixture(t *testing.T, dir string) (*Checker, []Finding) {
	t.Helper()
	img, err := diskimage.Open(filepath.Join(dir, "image.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	lr, err := blklog.Open(filepath.Join(dir, "writes.lwlog.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	c, fs, err := Run(img, img.Size(), lr)
	if err != nil {
		t.Fatal(err)
	}
	return c, fs
}

// TestRealCapturesClean: no finding on any real capture (every driver in fixtures/real leaves
// a file system e2fsck -fn accepts at the end, and consistent at every commit).
func TestRealCapturesClean(t *testing.T) {
	if testing.Short() {
		t.Skip("replays every real capture")
	}
	dirs, _ := filepath.Glob("../../fixtures/real/*")
	if len(dirs) == 0 {
		t.Fatal("no fixtures")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c, fs := runFixture(t, dir)
			t.Logf("%d checks, %d journal errors", c.Checks(), len(c.Errors()))
			for _, f := range fs {
				t.Errorf("finding: %+v", f)
			}
		})
	}
}
