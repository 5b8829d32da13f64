package resolver

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// fixtureImages returns the committed real starting images of bare file systems (a partitioned
// disk's file systems are not at byte 0); it skips t in -short mode, which they would slow, or if
// there are none.
func fixtureImages(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("decompresses every fixture image")
	}
	all, _ := filepath.Glob("../../fixtures/real/*/image.raw.zst")
	var imgs []string
	for _, zimg := range all {
		if !scenario.Partitioned(filepath.Dir(zimg)) {
			imgs = append(imgs, zimg)
		}
	}
	if len(imgs) == 0 {
		t.Skip("no fixtures/real/*/image.raw.zst of a bare file system")
	}
	return imgs
}

// TestIndexOnFixtures checks the index and names of every committed real starting image (made
// by the Linux kernel in QEMU, not by mke2fs -d) against icheck, testb and ncheck.
func TestIndexOnFixtures(t *testing.T) {
	ext3fstest.Need(t)
	for _, zimg := range fixtureImages(t) {
		name := filepath.Base(filepath.Dir(zimg))
		t.Run(name, func(t *testing.T) {
			img, err := diskimage.Open(zimg)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			// debugfs needs a plain file.
			raw := filepath.Join(t.TempDir(), "image.raw")
			f, err := os.Create(raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, io.NewSectionReader(img, 0, img.Size())); err != nil {
				t.Fatal(err)
			}
			f.Close()
			fsys, err := ext3fs.OpenWith(img, openOptions)
			if errors.Is(err, ext3fs.ErrUnsupported) {
				t.Skipf("the replay model does not read this file system yet: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			x, names, err := Build(fsys)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			checkIndex(t, fsys, raw, x, false, false)
			comparePaths(t, fsys, raw, names, 2)
			checkVisit(t, fsys)
		})
	}
}
