package resolver

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// Hand-built logs: a small image made by mke2fs -d, the change made by debugfs -w on a copy,
// and the blocks that differ fed as single-block writes in many orders. debugfs writes no
// journal, so every block goes to its home location, as on ext2: the hardest case for order.

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// seedImage makes a 2 MiB image of type fsType from this tree:
//
//	/d/f (6 bytes)  /d/g (3000 bytes, also named /e/h)  /e/  /empty/  /x/y/z (a file two levels down)
func seedImage(t testing.TB, fsType string) []byte {
	t.Helper()
	return seedImageArgs(t, fsType)
}

// seedImageArgs is seedImage with extra mke2fs options.
func seedImageArgs(t testing.TB, fsType string, extra ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "seed")
	for _, d := range []string{"d", "e", "empty", "x/y"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, b []byte) {
		if err := os.WriteFile(filepath.Join(src, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("d/f", []byte("hello\n"))
	write("d/g", bytes.Repeat([]byte("g"), 3000))
	write("x/y/z", []byte("zzz\n"))
	if err := os.Link(filepath.Join(src, "d/g"), filepath.Join(src, "e/h")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	args := append([]string{"-q", "-F", "-t", fsType, "-b", "1024", "-N", "64"}, extra...)
	cmd := exec.Command("mke2fs", append(args, "-d", src, img, "2M")...)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// debugfsChange applies debugfs commands to a copy of img and returns the result.
func debugfsChange(t *testing.T, img []byte, cmds string) []byte {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "img")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(dir, "content")
	if err := os.WriteFile(hostFile, bytes.Repeat([]byte("new content\n"), 300), 0o644); err != nil {
		t.Fatal(err)
	}
	cmds = strings.ReplaceAll(cmds, "CONTENT", hostFile)
	cf := filepath.Join(dir, "cmds")
	if err := os.WriteFile(cf, []byte(cmds), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("debugfs", "-w", "-f", cf, p)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000100")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("debugfs: ")) && bytes.Contains(bytes.ToLower(out), []byte("error")) {
		t.Logf("debugfs output:\n%s", out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

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
	needTools(t)
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
	for _, fsType := range []string{"ext2", "ext3"} {
		base := seedImage(t, fsType)
		for _, c := range cases {
			t.Run(fsType+"/"+c.name, func(t *testing.T) {
				if c.ext2only && fsType != "ext2" {
					t.Skip("ext2 only")
				}
				after := debugfsChange(t, base, c.cmds)
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
