package check

import (
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// fcCaptures are the real captures of ext4 with fast_commit.
var fcCaptures = []string{"fastcommit-ext4-4k", "fastcommit-ext4-4k-k612", "fastcommit-crash-ext4-4k", "powercut-fc-ext4-4k", "powercut-fc-ext4-4k-run2"}

// resolverFastCommits is the number of complete fast commits analyze's resolver applies on a
// capture: an independent count (resolver/fastcommit.go follows the area its own way).
func resolverFastCommits(t *testing.T, dir string) int {
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
	res, err := analysis.Run(analysis.Input{Image: img, ImageSize: img.Size(), Log: lr}, analysis.Options{}, func(*ops.Op) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return int(res.FastCommits)
}

// TestFastCommitCheckPoints: on every fast_commit capture, each complete fast commit after the
// last full commit is a consistency point of its own: the checks grow, over a run that ignores
// fast commits, by the fast commits the resolver applies (one request completes one fast commit
// in these captures), none is skipped, and nothing is found.
func TestFastCommitCheckPoints(t *testing.T) {
	for _, name := range fcCaptures {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("../../fixtures/real", name)
			disk, recs := capture(t, dir)
			with, fs, err := RunWith(disk, int64(len(disk)), &sliceLog{recs: recs}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			without, _, err := RunWith(disk, int64(len(disk)), &sliceLog{recs: recs}, Options{noFastCommits: true})
			if err != nil {
				t.Fatal(err)
			}
			checked, skipped := with.FastCommits()
			want := resolverFastCommits(t, dir)
			t.Logf("%d checks (%d without fast commits), %d at fast commits, %d skipped; the resolver applies %d fast commits",
				with.Checks(), without.Checks(), checked, skipped, want)
			if want == 0 && (with.Recovery() == nil || with.Recovery().FastCommits == 0) {
				// run2 of a power cut writes none: its fast commits are in its starting image.
				t.Fatal("no fast commit in the log nor in the starting image's recovery")
			}
			if checked != want || skipped != 0 {
				t.Errorf("%d fast commits checked, %d skipped, want %d and 0 (errors %q)", checked, skipped, want, with.Errors())
			}
			if with.Checks()-without.Checks() != want {
				t.Errorf("checks grew by %d with fast commits, want %d", with.Checks()-without.Checks(), want)
			}
			for _, f := range fs {
				t.Errorf("finding: %+v", f)
			}
		})
	}
}
