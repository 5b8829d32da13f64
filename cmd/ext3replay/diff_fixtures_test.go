package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

const fixtures = "../../fixtures/real"

func analyzeFixture(t *testing.T, scenario string) []ops.Op {
	t.Helper()
	dir := filepath.Join(fixtures, scenario)
	if _, err := os.Stat(filepath.Join(dir, "io.log.zst")); err != nil {
		t.Skipf("fixture %s not present: %v", scenario, err)
	}
	run, err := analyzeToOps(filepath.Join(dir, "image.raw.zst"), filepath.Join(dir, "io.log.zst"), true, nil)
	if err != nil {
		t.Fatalf("%s: %v", scenario, err)
	}
	return run
}

// The same workload on ext3 data=ordered, data=journal, data=writeback and
// on ext2 does the same thing to the namespace and leaves the same tree;
// what differs is journal and metadata I/O.
func TestDiffRealJournalModes(t *testing.T) {
	groups := [][]string{
		{"basic-ext3-4k", "basic-ext3-journal", "basic-ext3-writeback", "basic-ext2-4k"},
		{"basic-ext3-1k", "basic-ext2-1k"},
	}
	for _, g := range groups {
		ref := analyzeFixture(t, g[0])
		for _, other := range g[1:] {
			r, err := ops.Diff(ref, analyzeFixture(t, other), ops.DiffOptions{Threshold: 0.2})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.OnlyA)+len(r.OnlyB)+len(r.Order)+len(r.Tree) != 0 {
				t.Errorf("%s vs %s: namespace or tree differences: only A %v, only B %v, order %v, tree %v",
					g[0], other, r.OnlyA, r.OnlyB, r.Order, r.Tree)
			}
			ja, jb := r.A.Totals.Journal.WriteBytes, r.B.Totals.Journal.WriteBytes
			if ja == 0 {
				t.Errorf("%s: no journal writes seen", g[0])
			}
			switch {
			case strings.HasPrefix(other, "basic-ext2") && jb != 0:
				t.Errorf("%s has %d journal bytes", other, jb)
			case other == "basic-ext3-journal" && jb <= ja:
				// data=journal logs file data too.
				t.Errorf("data=journal wrote %d journal bytes, ordered %d", jb, ja)
			}
			t.Logf("%s vs %s: %d differences; journal %d -> %d bytes, metadata %d -> %d bytes",
				g[0], other, r.Differences, ja, jb, r.A.Totals.Metadata.WriteBytes, r.B.Totals.Metadata.WriteBytes)
		}
	}
}

// variantOps is run a with its first rename missing (later ops name the file by its old name)
// and a 4 KiB file /projects/extra.bin created and written where the rename was; moved is the
// rename left out (nil: a has none). docs/examples/variant.jsonl is made by it.
func variantOps(a []ops.Op) (b []ops.Op, moved *ops.Op) {
	for i := range a {
		op := a[i]
		if moved == nil && op.Op == ops.Move {
			moved = &a[i]
			b = append(b, ops.Op{Seq: op.Seq, T: op.T, Op: ops.Create, Path: "/projects/extra.bin", Ino: 99},
				ops.Op{Seq: op.Seq, T: op.T, Op: ops.Write, Path: "/projects/extra.bin", Ino: 99, Sector: 123456, Bytes: 4096, Kind: ops.KindData})
			continue
		}
		if moved != nil {
			if op.Path == moved.To {
				op.Path = moved.Path
			}
			if op.To == moved.To {
				op.To = moved.Path
			}
		}
		b = append(b, op)
	}
	return b, moved
}

// A variant of a real run with one rename missing (later ops name the file
// by its old name) and one extra file written is exactly two differences.
func TestDiffRealVariant(t *testing.T) {
	a := analyzeFixture(t, "basic-ext3-4k")
	b, moved := variantOps(a)
	if moved == nil {
		t.Skip("basic-ext3-4k has no move")
	}
	r, err := ops.Diff(a, b, ops.DiffOptions{Threshold: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Differences != 2 || len(r.OnlyA) != 1 || len(r.OnlyB) != 1 ||
		r.OnlyA[0].Op != moved.String() || r.OnlyB[0].Op != "create /projects/extra.bin" {
		t.Fatalf("%d differences: only A %v, only B %v, order %v, tree %v, files %v, kinds %v",
			r.Differences, r.OnlyA, r.OnlyB, r.Order, r.Tree, r.Files, r.Kinds)
	}
}

// The same run captured twice — by the NBD recorder (reads and writes) and
// by QEMU's blklogwrites (writes only) — is the same run once reads are
// left out: exercises --image and --writes-only end to end.
func TestDiffRealTwoCaptures(t *testing.T) {
	dir := filepath.Join(fixtures, "basic-ext3-4k")
	if _, err := os.Stat(filepath.Join(dir, "writes.lwlog.zst")); err != nil {
		t.Skipf("fixture not present: %v", err)
	}
	img, nbd, lw := filepath.Join(dir, "image.raw.zst"), filepath.Join(dir, "io.log.zst"), filepath.Join(dir, "writes.lwlog.zst")
	if code, out := run(t, "diff", "--writes-only", "--image", img, nbd, lw); code != exitOK {
		t.Errorf("writes only: exit %d\n%s", code, out)
	}
	// With reads, the blklogwrites log lacks every read: flagged, exit 1,
	// but still no namespace or tree difference.
	code, out := run(t, "diff", "--image", img, nbd, lw)
	if code != exitDiffers || !strings.Contains(out, "Namespace: 0 op(s) only in A, 0 only in B, 0 order") ||
		!strings.Contains(out, "Final tree: 0 name(s) differ") {
		t.Errorf("with reads: exit %d\n%s", code, out)
	}
}
