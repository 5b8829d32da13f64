package analysis

import (
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// namespaceOps lists the namespace ops of a run as expectedNamespace does.
func namespaceOps(out []ops.Op) []string {
	var got []string
	for _, op := range out {
		if op.Op != ops.Read && op.Op != ops.Write {
			got = append(got, string(op.Op)+" "+op.Path+" "+op.To)
		}
	}
	return got
}

// The boot after a power cut starts from a disk that needs recovery: analyze starts from the state
// after recovery and reports exactly the run's own namespace changes, not the earlier run's that the
// mount writes home; with NoRecovery the earlier run's changes come out again.
func TestRunStartsAfterRecovery(t *testing.T) {
	for _, sc := range []string{"powercut-ext3-4k-run2", "powercut-ext4-4k-run2"} {
		t.Run(sc, func(t *testing.T) {
			img := openImage(t, sc)
			logPath := filepath.Join(fixtures, sc, "io.log.zst")
			out, res, err := run(t, img, logPath)
			must(t, err)
			check(t, res.Recovery != nil && res.Recovery.Needed && res.Recovery.Transactions > 0,
				"no recovery reported: %+v", res.Recovery)
			want, got := expectedNamespace(t, sc), namespaceOps(out)
			check(t, equalStrings(got, want), "ops %q, want %q", got, want)

			var raw []ops.Op
			_, err = Run(Input{Image: img, ImageSize: img.Size(), ImageName: "image", Log: openLog(t, logPath), LogName: logPath},
				Options{NoRecovery: true}, func(op *ops.Op) error { raw = append(raw, *op); return nil })
			must(t, err)
			check(t, len(namespaceOps(raw)) > len(want), "without recovery: %q, expected run 1's changes too", namespaceOps(raw))
		})
	}
}

// An orphan left by the power cut (a file deleted while open) is on the recovered image's orphan
// list; the next mount frees it. That freeing is reported as nothing: the inode has no name, and
// it is not an anomaly. The run's own ops are exactly the ground truth, even when the freed inode
// is reused at once.
func TestRunOrphanFreedByMount(t *testing.T) {
	const sc = "powercut-orphan-ext4-4k-run2"
	img := openImage(t, sc)
	rc, err := ext3fs.Recover(img)
	must(t, err)
	fs, err := ext3fs.Open(rc)
	must(t, err)
	orphan := fs.SB.LastOrphan
	check(t, orphan != 0, "the recovered image has no orphan")
	in, err := fs.ReadInode(orphan)
	must(t, err)
	check(t, in.LinksCount == 0 && in.Size > 0, "orphan inode %d: links %d size %d", orphan, in.LinksCount, in.Size)

	out, res, err := run(t, img, filepath.Join(fixtures, sc, "io.log.zst"))
	must(t, err)
	want, got := expectedNamespace(t, sc), namespaceOps(out)
	check(t, equalStrings(got, want), "ops %q, want %q", got, want)
	check(t, res.Anomalies == 0, "%d anomalies", res.Anomalies)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
