package resolver

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// sameOwnership checks that the resolver's index, after a replay, says for every block what an
// index built from the final image says (which file owns it, in which role).
func sameOwnership(t *testing.T, r *Resolver, final []byte) {
	t.Helper()
	fs, err := ext3fs.Open(bytes.NewReader(final))
	if err != nil {
		t.Fatal(err)
	}
	want, err := BuildIndex(fs)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for b := uint64(0); b < want.Blocks(); b++ {
		w, g := want.Lookup(b), r.blocks.idx.Lookup(b)
		if w.Role != g.Role || w.Ino != g.Ino {
			bad = append(bad, fmt.Sprintf("block %d: %s of inode %d, want %s of inode %d", b, g.Role, g.Ino, w.Role, w.Ino))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d blocks owned differently from the final image:\n%s", len(bad), strings.Join(bad[:min(len(bad), 10)], "\n"))
	}
}

// punchEveryOther is debugfs commands that punch every other block of file blocks [from, to),
// leaving an extent per remaining block.
func punchEveryOther(path string, from, to int) string {
	var s strings.Builder
	for b := from; b < to; b += 2 {
		fmt.Fprintf(&s, "punch %s %d %d\n", path, b, b)
	}
	return s.String()
}

// Extent trees change shape under the guest's writes: a root that overflows into a leaf block
// (depth 0 -> 1), a leaf that grows, a tree that collapses back into the root, a file with a
// tree deleted. Each change, made by debugfs on an ext4 image, is replayed as its blocks in
// every order (up to 6 blocks, else the log order, its reverse and random orders): no
// namespace op but the expected, no anomaly, the extent blocks reported as the file's, and
// every block owned as the final image says.
func TestExtentTreeChanges(t *testing.T) {
	ext3fstest.Need(t)
	seed := ext3fstest.SeedImage(t, "ext4")
	// /d/f with 40 preallocated (unwritten) blocks: one extent in the root.
	prealloc := ext3fstest.DebugfsChange(t, seed, "fallocate /d/f 0 39\n")
	// Every other block punched out: 20 extents, more than the root's 4: a leaf block.
	deep := ext3fstest.DebugfsChange(t, prealloc, punchEveryOther("/d/f", 1, 40))
	cases := []struct {
		name       string
		base       []byte
		cmds       string
		want       []string
		extentIO   bool // a write of an extent block of /d/f is expected
		leafBefore bool
	}{
		{name: "root overflows into a leaf", base: prealloc, cmds: punchEveryOther("/d/f", 1, 40), extentIO: true},
		{name: "leaf grows", base: deep, cmds: "fallocate /d/f 60 79\n", extentIO: true},
		{name: "tree collapses into the root", base: deep, cmds: "punch /d/f 2 39\n"},
		{name: "file with a tree deleted", base: deep, cmds: "rm /d/f\n", want: []string{"delete /d/f"}},
		{name: "file with a tree moved", base: deep, cmds: "ln /d/f /e/f\nunlink /d/f\n", want: []string{"move /d/f -> /e/f"}},
	}
	{
		fs, err := ext3fs.Open(bytes.NewReader(deep))
		if err != nil {
			t.Fatal(err)
		}
		depth := -1
		_ = fs.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
			if p == "/d/f" {
				h, _, _, _ := ext3fs.ParseExtentNode(in.BlockBytes[:])
				depth = int(h.Depth)
			}
			return nil
		})
		if depth != 1 {
			t.Fatalf("/d/f has an extent tree of depth %d after the punches, want 1", depth)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			after := ext3fstest.DebugfsChange(t, c.base, c.cmds)
			recs := blockWrites(c.base, after)
			if len(recs) == 0 {
				t.Fatal("debugfs changed nothing")
			}
			rng := rand.New(rand.NewSource(int64(len(recs))))
			for _, ord := range orders(len(recs), rng) {
				perm := make([]blklog.Record, 0, len(recs)+1)
				for _, j := range ord {
					perm = append(perm, recs[j])
				}
				perm = append(perm, blklog.Record{Type: blklog.TypeFlush})
				var got []ops.Op
				r := replay(t, c.base, perm, Options{}, func(op *ops.Op) error { got = append(got, *op); return nil })
				ns, io, an := meaning(got)
				if len(an) > 0 {
					t.Fatalf("order %v: anomalies %q", ord, an)
				}
				if !equalStrings(ns, c.want) {
					t.Fatalf("order %v: namespace ops %q, want %q", ord, ns, c.want)
				}
				if c.extentIO && io["write /d/f (extent)"] == 0 {
					t.Fatalf("order %v: no extent block written for /d/f: %v", ord, io)
				}
				sameOwnership(t, r, after)
				checkEmittedOnce(t, got)
			}
		})
	}
}
