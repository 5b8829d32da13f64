package resolver

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// Hand-built logs: a small image made by mke2fs -d, the change made by debugfs -w on a copy,
// and the blocks that differ fed as single-block writes in many orders. debugfs writes no
// journal, so every block goes to its home location, as on ext2: the hardest case for order.

// blockWrites returns one write record per 1 KiB block that differs between a and b.
func blockWrites(a, b []byte) []blklog.Record {
	const bs = 1024
	var out []blklog.Record
	for off := 0; off < len(a); off += bs {
		if !bytes.Equal(a[off:off+bs], b[off:off+bs]) {
			out = append(out, blklog.Record{Type: blklog.TypeWrite, Sector: uint64(off / 512), Length: bs, Data: b[off : off+bs]})
		}
	}
	return out
}

// orders returns the orders to try: all permutations of up to 6 records, else the log order,
// its reverse and random ones.
func orders(n int, rng *rand.Rand) [][]int {
	var out [][]int
	if n <= 6 {
		var perm func(p []int, k int)
		perm = func(p []int, k int) {
			if k == len(p) {
				out = append(out, append([]int(nil), p...))
				return
			}
			for i := k; i < len(p); i++ {
				p[k], p[i] = p[i], p[k]
				perm(p, k+1)
				p[k], p[i] = p[i], p[k]
			}
		}
		p := make([]int, n)
		for i := range p {
			p[i] = i
		}
		perm(p, 0)
		return out
	}
	id := make([]int, n)
	rev := make([]int, n)
	for i := range id {
		id[i], rev[i] = i, n-1-i
	}
	out = append(out, id, rev)
	for k := 0; k < 150; k++ {
		out = append(out, rng.Perm(n))
	}
	return out
}

func TestPairingHandBuilt(t *testing.T) {
	ext3fstest.Need(t)
	cases := []struct {
		name     string
		cmds     string
		want     []string // namespace ops in meaning() form
		data     string   // a path that must receive data writes, if any
		ext2only bool
	}{
		{name: "create", cmds: "write CONTENT /d/new\n",
			want: []string{"create /d/new"}, data: "/d/new"},
		{name: "mkdir", cmds: "mkdir /d/sub\n",
			want: []string{"mkdir /d/sub"}},
		{name: "mkdir and create inside", cmds: "mkdir /e/sub\nwrite CONTENT /e/sub/new\n",
			want: []string{"create /e/sub/new", "mkdir /e/sub"}, data: "/e/sub/new"},
		{name: "symlink", cmds: "symlink /d/ln /d/f\n",
			want: []string{"symlink /d/ln"}},
		{name: "delete", cmds: "rm /d/f\n",
			want: []string{"delete /d/f"}},
		{name: "rmdir", cmds: "rmdir /empty\n",
			want: []string{"rmdir /empty"}},
		{name: "move in one directory", cmds: "ln /d/f /d/renamed\nunlink /d/f\n",
			want: []string{"move /d/f -> /d/renamed"}},
		{name: "move across directories", cmds: "ln /d/f /e/f\nunlink /d/f\n",
			want: []string{"move /d/f -> /e/f"}},
		{name: "move a directory", cmds: "ln /x/y /d/y\nunlink /x/y\n",
			want: []string{"move /x/y -> /d/y"}},
		{name: "link", cmds: "ln /d/f /e/f2\nsif /d/f links_count 2\n",
			want: []string{"link /d/f -> /e/f2"}},
		{name: "unlink", cmds: "unlink /e/h\nsif /d/g links_count 1\n",
			want: []string{"unlink /e/h"}},
		{name: "move over a file", cmds: "kill_file /d/g\nunlink /d/g\nln /d/f /d/g\nunlink /d/f\n",
			want: []string{"move /d/f -> /d/g (overwrite)"}},
		{name: "create elsewhere and delete", cmds: "write CONTENT /e/new\nrm /d/f\n",
			want: []string{"create /e/new", "delete /d/f"}, data: "/e/new"},
		// The new file gets the deleted one's inode; the kernel gives every new inode a new
		// i_generation, debugfs does not, so set one as the kernel would. Only without a
		// journal: with one, the kernel never writes such a change home outside a transaction.
		{name: "delete and create reusing the inode", ext2only: true, cmds: "rm /d/f\nwrite CONTENT /e/new\nsif /e/new generation 7\n",
			want: []string{"create /e/new", "delete /d/f"}, data: "/e/new"},
	}
	// ext4: extent files (debugfs writes them as the kernel does: an extent root in i_block),
	// metadata_csum, flex_bg, 64-bit descriptors.
	// ext4-inline: small files and directories stored in their inodes (inline_data).
	for _, fsType := range []string{"ext2", "ext3", "ext4", "ext4-inline"} {
		var base []byte
		if fsType == "ext4-inline" {
			base = ext3fstest.SeedImageArgs(t, "ext4", "-O", "inline_data")
		} else {
			base = ext3fstest.SeedImage(t, fsType)
		}
		for _, c := range cases {
			t.Run(fsType+"/"+c.name, func(t *testing.T) {
				if c.ext2only && fsType != "ext2" {
					t.Skip("ext2 only")
				}
				after := ext3fstest.DebugfsChange(t, base, c.cmds)
				recs := blockWrites(base, after)
				if len(recs) == 0 {
					t.Fatal("debugfs changed nothing")
				}
				rng := rand.New(rand.NewSource(int64(len(recs))))
				for _, ord := range orders(len(recs), rng) {
					perm := make([]blklog.Record, len(recs))
					for i, j := range ord {
						perm[i] = recs[j]
					}
					got := analyzeRecords(t, base, perm, Options{})
					ns, io, an := meaning(got)
					if len(an) > 0 {
						t.Fatalf("order %v: anomalies %q", ord, an)
					}
					if !equalStrings(ns, c.want) {
						t.Fatalf("order %v: namespace ops\n got %q\nwant %q\nops: %v", ord, ns, c.want, got)
					}
					if c.data != "" && io["write "+c.data+" (data)"] == 0 {
						t.Fatalf("order %v: no data written to %s: %v", ord, c.data, io)
					}
					checkEmittedOnce(t, got)
				}
			})
		}
	}
}

// checkEmittedOnce checks that seq never goes backwards for namespace ops (each is emitted when
// it became certain, in log order).
func checkEmittedOnce(t *testing.T, l []ops.Op) {
	t.Helper()
	last := int64(-1)
	for _, o := range l {
		if o.IsNamespace() {
			if o.Seq < last {
				t.Fatalf("namespace op %v emitted after seq %d", o, last)
			}
			last = o.Seq
		}
	}
}
