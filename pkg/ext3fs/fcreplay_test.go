package ext3fs_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// TestFastCommitReplayMatchesKernel: run 1 of the pair made its last files durable only through
// fast commits and lost power; run 2 booted from that disk, and the kernel's mount replayed them
// and wrote them home. Every regular file run 2 does not change must be, in Recover's view of run
// 2's starting image, what the kernel left: same inode, size, links, mode and the same blocks.
// /c/d.txt exists only in the fast-commit area of the starting image.
func TestFastCommitReplayMatchesKernel(t *testing.T) {
	dir := "../../fixtures/real/powercut-fc-ext4-4k-run2"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("fixture missing")
	}
	start, err := scenario.StartImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	final, err := scenario.FinalDisk(dir, "io.log.zst")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ext3fs.Recover(start)
	if err != nil {
		t.Fatal(err)
	}
	if rc.FastCommits == 0 || rc.FastCommitErr != nil {
		t.Fatalf("recovery: %s", rc.Summary())
	}
	touched := map[string]bool{}
	ej, err := os.ReadFile(filepath.Join(dir, "expected.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(ej), []byte("\n")) {
		var e struct{ Op, Path, To string }
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if e.Op != "read" {
			touched[e.Path], touched[e.To] = true, true
		}
	}
	type file struct {
		ino uint32
		in  *ext3fs.Inode
	}
	files := func(fs *ext3fs.FS) map[string]file {
		out := map[string]file{}
		if err := fs.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
			if in.Type() == ext3fs.TypeRegular && !touched[p] {
				out[p] = file{ino, in}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	blocks := func(fs *ext3fs.FS, in *ext3fs.Inode) []uint64 {
		var out []uint64
		if err := fs.WalkBlocks(in, func(br ext3fs.BlockRef) error { out = append(out, br.Phys); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ours, err := ext3fs.OpenWith(rc, ext3fs.Options{InlineData: true})
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := ext3fs.OpenWith(bytes.NewReader(final), ext3fs.Options{InlineData: true})
	if err != nil {
		t.Fatal(err)
	}
	got, want := files(ours), files(kernel)
	if _, ok := got["/c/d.txt"]; !ok {
		t.Fatalf("recovered tree lacks /c/d.txt (fast-committed only): %v", got)
	}
	for p, wf := range want {
		gf, ok := got[p]
		g, w := gf.in, wf.in
		if !ok {
			t.Errorf("%s: missing after our replay", p)
			continue
		}
		if gf.ino != wf.ino || g.Size != w.Size || g.LinksCount != w.LinksCount || g.Mode != w.Mode {
			t.Errorf("%s: inode %d size %d links %d mode %o; the kernel's: inode %d size %d links %d mode %o",
				p, gf.ino, g.Size, g.LinksCount, g.Mode, wf.ino, w.Size, w.LinksCount, w.Mode)
		}
		if gb, wb := blocks(ours, g), blocks(kernel, w); !slices.Equal(gb, wb) {
			t.Errorf("%s: blocks %v; the kernel's %v", p, gb, wb)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d untouched files after our replay, %d after the kernel's", len(got), len(want))
	}
}
