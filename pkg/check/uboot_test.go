package check

import (
	"os/exec"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
)

// TestUBootReplace: U-Boot 2023.01 replacing a file leaves a window in which recovery gives a
// broken file system (testdata/uboot-replace/scenario.env). check names the request that opens
// it (the home write of the block bitmap the delete did not journal), e2fsck -fn agrees on the
// disk recovery would give there, and on the final disk (window closed) e2fsck finds nothing and
// check says the problem is gone.
func TestUBootReplace(t *testing.T) {
	disk, recs := capture(t, "testdata/uboot-replace")
	_, findings, err := Run(disk, int64(len(disk)), &sliceLog{recs: recs})
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) == 0 {
		t.Fatal("no finding on U-Boot's replace")
	}
	first := findings[0]
	for _, f := range findings {
		if f.AtEnd {
			t.Errorf("%+v still present at the end; e2fsck finds the final disk clean", f)
		}
	}
	if _, err := exec.LookPath("e2fsck"); err != nil {
		t.Skip("e2fsck not installed")
	}
	if blocks, inodes, groups, out := e2fsckNames(t, final(t, disk, recs)); len(blocks)+len(inodes)+len(groups) > 0 {
		t.Fatalf("the final disk is not clean:\n%s", out)
	}
	// The disk as recovery would leave it at the first finding's check.
	c, err := New(disk, int64(len(disk)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if recs[i].Index > first.AtSeq {
			break
		}
		if err := c.Record(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	view := make(scenario.Disk, len(disk))
	if _, err := c.ReadAt(view, 0); err != nil {
		t.Fatal(err)
	}
	blocks, inodes, groups, out := e2fsckNames(t, view)
	if len(blocks) == 0 {
		t.Fatalf("e2fsck finds no bitmap difference where check does:\n%s", out)
	}
	at := map[uint64]Finding{}
	for _, f := range findings {
		if f.AtSeq == first.AtSeq && f.Kind == "block-bitmap" {
			at[f.Block] = f
		}
	}
	for _, b := range blocks {
		f, ok := at[b]
		if !ok {
			t.Errorf("e2fsck reports block %d at record %d, check does not:\n%s", b, first.AtSeq, out)
			continue
		}
		if f.Seq != first.Seq || f.Inode == 0 {
			t.Errorf("block %d: %+v, want the request %d and the owner", b, f, first.Seq)
		}
	}
	for _, g := range groups {
		ok := false
		for _, f := range findings {
			ok = ok || (f.AtSeq == first.AtSeq && f.Group != nil && uint64(*f.Group) == g && f.Kind == "group-counts")
		}
		if !ok {
			t.Errorf("e2fsck reports group %d at record %d, check does not:\n%s", g, first.AtSeq, out)
		}
	}
	if len(at) != len(blocks) {
		t.Errorf("check names %d blocks at record %d, e2fsck %d", len(at), first.AtSeq, len(blocks))
	}
	if len(inodes) > 0 {
		t.Errorf("e2fsck names inodes %v, check does not look for them here:\n%s", inodes, out)
	}
}
