package check

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/partition"
)

// openCapture opens a real capture's starting image and its blklogwrites log; both are closed
// when the test ends.
func openCapture(t *testing.T, dir string) (*diskimage.Image, blklog.Reader) {
	t.Helper()
	img, err := diskimage.Open(filepath.Join(dir, "image.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	lr, err := blklog.Open(filepath.Join(dir, "writes.lwlog.zst"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lr.Close() })
	return img, lr
}

// runFixture checks a real capture's log against its image.
func runFixture(t *testing.T, dir string) (*Checker, []Finding) {
	t.Helper()
	img, lr := openCapture(t, dir)
	c, fs, err := Run(img, img.Size(), lr)
	if err != nil {
		t.Fatal(err)
	}
	return c, fs
}

// TestRealCapturesClean: no finding on any real capture of a correct driver (it leaves a file
// system e2fsck -fn accepts at the end, and consistent at every commit).
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
			if scenario.FinalDamaged(dir) {
				t.Skip("the capture of a driver bug: TestRealDriverBugs")
			}
			if mounts, err := scenario.Mounts(dir); err != nil {
				t.Fatal(err)
			} else if len(mounts) > 0 {
				checkPartitions(t, dir, mounts)
				return
			}
			c, fs := runFixture(t, dir)
			t.Logf("%d checks, %d journal errors", c.Checks(), len(c.Errors()))
			for _, f := range fs {
				t.Errorf("finding: %+v", f)
			}
		})
	}
}

// checkPartitions checks every ext partition of a partitioned capture (its scenario's mounts)
// against the log cut to that partition.
func checkPartitions(t *testing.T, dir string, mounts map[int]string) {
	t.Helper()
	img, err := diskimage.Open(filepath.Join(dir, "image.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	tab, err := partition.Read(img, img.Size())
	if err != nil {
		t.Fatal(err)
	}
	for n := range mounts {
		p, ok := tab.Partition(n)
		if !ok {
			t.Fatalf("no partition %d", n)
		}
		lr, err := blklog.Open(filepath.Join(dir, "writes.lwlog.zst"))
		if err != nil {
			t.Fatal(err)
		}
		c, fs, err := Run(io.NewSectionReader(img, p.Start, p.Size), p.Size, analysis.PartitionLog(lr, p))
		lr.Close()
		if err != nil {
			t.Fatalf("partition %d: %v", n, err)
		}
		if c.Checks() == 0 {
			t.Errorf("partition %d: no consistency point checked", n)
		}
		t.Logf("partition %d: %d checks, %d journal errors", n, c.Checks(), len(c.Errors()))
		for _, f := range fs {
			t.Errorf("partition %d: finding: %+v", n, f)
		}
	}
}
