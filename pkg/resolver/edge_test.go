package resolver

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// Edge cases of pairing beyond TestPairingHandBuilt: each change is made with debugfs on a
// copy of an image and its changed blocks are fed in many orders, written home (ext2-like: on
// ext3 too, as a driver that ignores the journal writes them) and, for ext3, as one jbd2
// transaction.

type edgeCase struct {
	name  string
	setup string   // debugfs commands applied to the seed first (the starting image)
	cmds  string   // the change
	want  []string // namespace ops in meaning() form
	data  []string // paths that must receive data writes
	ext2  bool     // home writes only
	may   []string // paths that may receive data writes
}

// checkEdge runs one case: every order of the home writes and, on ext3, the journaled form.
func checkEdge(t *testing.T, seed []byte, fsType string, c edgeCase) {
	t.Helper()
	base := seed
	if c.setup != "" {
		base = ext3fstest.DebugfsChange(t, seed, c.setup)
	}
	after := ext3fstest.DebugfsChange(t, base, c.cmds)
	recs := blockWrites(base, after)
	if len(recs) == 0 {
		t.Fatal("debugfs changed nothing")
	}
	verify := func(what string, l []blklog.Record) {
		got := analyzeRecords(t, base, l, Options{})
		ns, io, an := meaning(got)
		if len(an) > 0 {
			t.Fatalf("%s: anomalies %q", what, an)
		}
		if !equalStrings(ns, c.want) {
			t.Fatalf("%s: namespace ops\n got %q\nwant %q\nops: %v", what, ns, c.want, got)
		}
		for _, d := range c.data {
			if io["write "+d+" (data)"] == 0 {
				t.Fatalf("%s: no data written to %s: %v", what, d, io)
			}
		}
		for k := range io {
			if strings.HasPrefix(k, "write ") && strings.HasSuffix(k, " (data)") {
				p := strings.TrimSuffix(strings.TrimPrefix(k, "write "), " (data)")
				ok := false
				for _, d := range append(c.may, c.data...) {
					ok = ok || d == p
				}
				if !ok {
					t.Fatalf("%s: data written to %s, want only %q: %v", what, p, c.data, io)
				}
			}
		}
		checkEmittedOnce(t, got)
	}
	rng := rand.New(rand.NewSource(int64(len(recs))))
	ords := orders(len(recs), rng)
	if len(ords) > 60 {
		ords = ords[:60]
	}
	for _, ord := range ords {
		perm := make([]blklog.Record, len(recs))
		for i, j := range ord {
			perm[i] = recs[j]
		}
		verify(fmt.Sprintf("home order %v", ord), perm)
	}
	if fsType != "ext3" || c.ext2 {
		return
	}
	data, journal, checkpoint := journalize(t, base, after)
	for round := 0; round < 10; round++ {
		var log []blklog.Record
		if round == 0 {
			log = append(append(log, data...), journal...)
		} else {
			all := append(append([]blklog.Record(nil), data...), journal...)
			for _, i := range rng.Perm(len(all)) {
				log = append(log, all[i])
			}
		}
		withCkpt := append(append(append([]blklog.Record(nil), log...), blklog.Record{Type: blklog.TypeFlush}), checkpoint...)
		verify(fmt.Sprintf("journal round %d", round), log)
		verify(fmt.Sprintf("journal round %d + checkpoint", round), withCkpt)
	}
}

func longName(c byte, n int) string { return strings.Repeat(string(c), n) }

func TestPairingEdgeCases(t *testing.T) {
	ext3fstest.Need(t)
	const longTarget = "/tttttttttttttttttttttttttttttttttttttttt/uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
	n255 := longName('L', 255)
	var grow strings.Builder
	var growWant []string
	for i := 0; i < 6; i++ {
		nm := fmt.Sprintf("%c%s", 'a'+i, longName('n', 199))
		fmt.Fprintf(&grow, "write /dev/null /e/%s\n", nm)
		growWant = append(growWant, "create /e/"+nm)
	}
	cases := []edgeCase{
		{name: "move a directory then create under the new path",
			cmds: "ln /x/y /d/y\nunlink /x/y\nwrite CONTENT /d/y/new\n",
			want: []string{"create /d/y/new", "move /x/y -> /d/y"}, data: []string{"/d/y/new"}},
		{name: "move a directory over an empty one",
			cmds: "kill_file /empty\nunlink /empty\nln /e /empty\nunlink /e\n",
			want: []string{"move /e -> /empty (overwrite)"}},
		{name: "moved twice",
			cmds: "ln /d/f /e/tmp\nunlink /d/f\nln /e/tmp /x/final\nunlink /e/tmp\n",
			want: []string{"move /d/f -> /x/final"}},
		// Created and deleted before anything was written: the disk shows a freed inode slot,
		// a directory block without the name and data in free blocks: nothing to report but
		// unowned writes.
		{name: "create then delete",
			cmds: "write CONTENT /d/new\nrm /d/new\n",
			want: nil},
		// A name added and the other removed, links count unchanged: on disk exactly a rename.
		{name: "link then delete the original",
			cmds: "ln /d/f /e/f2\nsif /d/f links_count 2\nrm /d/f\n",
			want: []string{"move /d/f -> /e/f2"}},
		{name: "symlink replaced by a file",
			setup: "symlink /d/ln /d/f\n",
			cmds:  "rm /d/ln\nwrite CONTENT /d/ln\n",
			want:  []string{"create /d/ln", "delete /d/ln"}, data: []string{"/d/ln"}},
		{name: "delete and create again under the same name",
			cmds: "rm /d/f\nwrite CONTENT /d/f\nsif /d/f generation 7\n",
			want: []string{"create /d/f", "delete /d/f"}, data: []string{"/d/f"}},
		{name: "truncate to non-zero",
			cmds: "punch /d/g 1\nsif /d/g size 700\n",
			want: []string{"truncate /d/g size=700"}},
		{name: "255-byte names",
			cmds: "write CONTENT /d/" + n255 + "\nmkdir /e/" + n255 + "\nln /x/y/z /x/" + n255 + "\nunlink /x/y/z\n",
			want: []string{"create /d/" + n255, "mkdir /e/" + n255, "move /x/y/z -> /x/" + n255},
			data: []string{"/d/" + n255}},
		{name: "directory grows a second block",
			cmds: grow.String(), want: growWant},
		{name: "move over a hard-linked file in another directory",
			cmds: "unlink /e/h\nsif /d/g links_count 1\nln /d/f /e/h\nunlink /d/f\n",
			want: []string{"move /d/f -> /e/h (overwrite)"}},
		{name: "move over a file in another directory",
			cmds: "kill_file /x/y/z\nunlink /x/y/z\nln /d/f /x/y/z\nunlink /d/f\n",
			want: []string{"move /d/f -> /x/y/z (overwrite)"}},
		{name: "rmdir and mkdir elsewhere reusing the inode",
			cmds: "rmdir /empty\nmkdir /d/sub\nsif /d/sub generation 9\n",
			want: []string{"mkdir /d/sub", "rmdir /empty"}, ext2: true},
		{name: "two files swap names",
			cmds: "ln /d/f /d/tmp\nunlink /d/f\nln /x/y/z /d/f\nunlink /x/y/z\nln /d/tmp /x/y/z\nunlink /d/tmp\n",
			want: []string{"move /d/f -> /x/y/z (overwrite)", "move /x/y/z -> /d/f (overwrite)"}},
		{name: "remove a tree",
			cmds: "rm /x/y/z\nrmdir /x/y\nrmdir /x\n",
			want: []string{"delete /x/y/z", "rmdir /x", "rmdir /x/y"}},
		{name: "move a directory out, then remove its old parent",
			cmds: "ln /x/y /d/y\nunlink /x/y\nrmdir /x\n",
			want: []string{"move /x/y -> /d/y", "rmdir /x"}},
		{name: "remove both names of a file",
			cmds: "unlink /e/h\nrm /d/g\n",
			want: []string{"delete /e/h", "unlink /d/g"}},
		{name: "rmdir and mkdir with a file, the directory block reused",
			cmds: "rmdir /empty\nmkdir /d/sub\nsif /d/sub generation 9\nwrite CONTENT /d/sub/new\n",
			want: []string{"create /d/sub/new", "mkdir /d/sub", "rmdir /empty"}, data: []string{"/d/sub/new"}},
		{name: "rmdir, a new file takes the directory's block",
			cmds: "rmdir /empty\nwrite CONTENT /e/new\nsif /e/new generation 3\n",
			want: []string{"create /e/new", "rmdir /empty"}, data: []string{"/e/new"}},
		{name: "slow symlink",
			cmds: "symlink /d/slow " + longTarget + "\n",
			// The target is its data; on ext3 it is journaled and written home at the checkpoint.
			want: []string{"symlink /d/slow"}, may: []string{"/d/slow"}},
		{name: "slow symlink deleted, a file takes its block",
			setup: "symlink /d/slow " + longTarget + "\n",
			cmds:  "rm /d/slow\nwrite CONTENT /e/new\nsif /e/new generation 4\n",
			want:  []string{"create /e/new", "delete /d/slow"}, data: []string{"/e/new"}},
		{name: "mknod",
			// (debugfs' mknod takes a name in the current directory, not a path.)
			cmds: "cd /d\nmknod fifo p\ncd /e\nmknod dev c 1 3\n",
			want: []string{"mknod /d/fifo", "mknod /e/dev"}},
		{name: "block freed and reused by another file",
			cmds: "rm /x/y/z\nwrite CONTENT /x/new\nsif /x/new generation 7\n",
			want: []string{"create /x/new", "delete /x/y/z"}, data: []string{"/x/new"}},
	}
	for _, fsType := range []string{"ext2", "ext3"} {
		seed := ext3fstest.SeedImage(t, fsType)
		for _, c := range cases {
			t.Run(fsType+"/"+c.name, func(t *testing.T) { checkEdge(t, seed, fsType, c) })
		}
	}
}

// TestPairingTIND: a sparse file on a 1K-block image whose only data block is reached through
// the triple-indirect block.
func TestPairingTIND(t *testing.T) {
	ext3fstest.Need(t)
	dir := t.TempDir()
	host := filepath.Join(dir, "sparse")
	f, err := os.Create(host)
	if err != nil {
		t.Fatal(err)
	}
	const off = (12 + 256 + 256*256 + 5) * 1024 // file block 65809: under the TIND
	if _, err := f.WriteAt([]byte("tail of a sparse file\n"), off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, fsType := range []string{"ext2", "ext3"} {
		seed := ext3fstest.SeedImage(t, fsType)
		t.Run(fsType, func(t *testing.T) {
			checkEdge(t, seed, fsType, edgeCase{cmds: "write " + host + " /d/big\n",
				want: []string{"create /d/big"}, data: []string{"/d/big"}})
			// Deleted, and a new file takes its map blocks (the kernel zeroes the pointers it frees).
			checkEdge(t, seed, fsType, edgeCase{setup: "write " + host + " /d/big\n",
				cmds: "rm /d/big\nwrite CONTENT /e/new\nsif /e/new generation 11\n",
				want: []string{"create /e/new", "delete /d/big"}, data: []string{"/e/new"}})
		})
	}
}

// stagedChange applies the stages to img one after the other and returns every intermediate
// image (the first is img). A stage line "DATA /path" overwrites the first data block of
// /path (found with debugfs bmap) instead of running debugfs.
func stagedChange(t *testing.T, img []byte, stages []string) [][]byte {
	t.Helper()
	out := [][]byte{img}
	for _, st := range stages {
		cur := out[len(out)-1]
		var cmds strings.Builder
		for _, line := range strings.Split(st, "\n") {
			if p, ok := strings.CutPrefix(line, "DATA "); ok {
				if cmds.Len() > 0 {
					cur = ext3fstest.DebugfsChange(t, cur, cmds.String())
					cmds.Reset()
				}
				cur = overwriteFirstBlock(t, cur, p)
				continue
			}
			if line != "" {
				cmds.WriteString(line + "\n")
			}
		}
		if cmds.Len() > 0 {
			cur = ext3fstest.DebugfsChange(t, cur, cmds.String())
		}
		out = append(out, cur)
	}
	return out
}

func overwriteFirstBlock(t *testing.T, img []byte, path string) []byte {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "img")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("debugfs", "-R", "bmap "+path+" 0", p).Output()
	if err != nil {
		t.Fatalf("debugfs bmap %s: %v", path, err)
	}
	var b int
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &b); err != nil || b == 0 {
		t.Fatalf("debugfs bmap %s: %q", path, out)
	}
	cp := append([]byte(nil), img...)
	copy(cp[b*1024:(b+1)*1024], bytes.Repeat([]byte("rewritten\n"), 102))
	return cp
}

// checkStaged replays the stages as flush intervals, the writes of each interval in random
// orders, and checks the namespace ops and that each path in data got data writes and no
// other path did.
func checkStaged(t *testing.T, seed []byte, stages []string, want, data []string) {
	t.Helper()
	imgs := stagedChange(t, seed, stages)
	var ivs [][]blklog.Record
	for i := 1; i < len(imgs); i++ {
		ivs = append(ivs, blockWrites(imgs[i-1], imgs[i]))
	}
	rng := rand.New(rand.NewSource(3))
	for round := 0; round < 40; round++ {
		var log []blklog.Record
		for _, iv := range ivs {
			perm := rng.Perm(len(iv))
			if round == 0 {
				for i := range perm {
					perm[i] = i
				}
			}
			for _, j := range perm {
				log = append(log, iv[j])
			}
			log = append(log, blklog.Record{Type: blklog.TypeFlush})
		}
		got := analyzeRecords(t, seed, log, Options{})
		ns, io, an := meaning(got)
		if len(an) > 0 {
			t.Fatalf("round %d: anomalies %q", round, an)
		}
		if !equalStrings(ns, want) {
			t.Fatalf("round %d: namespace ops\n got %q\nwant %q\nops: %v", round, ns, want, got)
		}
		for k := range io {
			if p, ok := strings.CutPrefix(k, "write "); ok && strings.HasSuffix(p, " (data)") {
				p = strings.TrimSuffix(p, " (data)")
				found := false
				for _, d := range data {
					found = found || d == p
				}
				if !found {
					t.Fatalf("round %d: data written to %s, want only %q: %v", round, p, data, io)
				}
			}
		}
		for _, d := range data {
			if io["write "+d+" (data)"] == 0 {
				t.Fatalf("round %d: no data written to %s: %v", round, d, io)
			}
		}
	}
}

// TestPairingStaged: changes over several flush intervals, written home (ext2).
func TestPairingStaged(t *testing.T) {
	ext3fstest.Need(t)
	seed := ext3fstest.SeedImage(t, "ext2")
	cases := []struct {
		name   string
		stages []string
		want   []string
		data   []string
	}{
		{"directory moved, then a file under it rewritten in the same interval",
			[]string{"ln /x/y /d/y\nunlink /x/y\nDATA /d/y/z"},
			[]string{"move /x/y -> /d/y"}, []string{"/d/y/z"}},
		{"file rewritten, then moved in the next interval",
			[]string{"DATA /d/f", "ln /d/f /e/f\nunlink /d/f"},
			[]string{"move /d/f -> /e/f"}, []string{"/d/f"}},
		{"truncated, then extended again",
			[]string{"punch /d/g 1\nsif /d/g size 700", "sif /d/g block[1] 1500\nsetb 1500\nsif /d/g size 2048\nDATA /d/g"},
			[]string{"truncate /d/g size=700"}, []string{"/d/g"}},
		{"moved twice over two intervals",
			// (The kernel rewrites a renamed inode's slot, for its ctime; debugfs needs telling.)
			[]string{"ln /d/f /e/tmp\nunlink /d/f\nsif /e/tmp ctime 20231115000000", "ln /e/tmp /x/final\nunlink /e/tmp\nsif /x/final ctime 20231116000000"},
			[]string{"move /d/f -> /e/tmp", "move /e/tmp -> /x/final"}, nil},
		{"deleted while open, written, then freed at the last close",
			[]string{"unlink /d/f\nsif <ORPHAN> links_count 0\nDATA <ORPHAN>", "kill_file <ORPHAN>"},
			[]string{"delete /d/f"}, []string{"/d/f"}},
		{"created, then deleted in the next interval",
			[]string{"write CONTENT /d/new", "rm /d/new"},
			[]string{"create /d/new", "delete /d/new"}, []string{"/d/new"}},
	}
	fs, err := ext3fs.Open(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	names, err := BuildNames(fs)
	if err != nil {
		t.Fatal(err)
	}
	orphan := ""
	for ino := uint32(1); ino <= fs.SB.InodesCount; ino++ {
		if names.Path(ino) == "/d/f" {
			orphan = fmt.Sprintf("<%d>", ino)
		}
	}
	for _, c := range cases {
		for i := range c.stages {
			c.stages[i] = strings.ReplaceAll(c.stages[i], "<ORPHAN>", orphan)
		}
		t.Run(c.name, func(t *testing.T) { checkStaged(t, seed, c.stages, c.want, c.data) })
	}
}

// TestPairingLastGroup: files whose inodes are the last of the last block group (8 groups of 8
// inodes; new files until they run out take every group up to the last inode), created, moved
// and deleted.
func TestPairingLastGroup(t *testing.T) {
	ext3fstest.Need(t)
	var create strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&create, "write /dev/null /d/f%02d\n", i)
	}
	for _, fsType := range []string{"ext2", "ext3"} {
		t.Run(fsType, func(t *testing.T) {
			seed := ext3fstest.SeedImageArgs(t, fsType, "-g", "256")
			imgs := stagedChange(t, seed, []string{create.String()})
			fs, err := ext3fs.Open(bytes.NewReader(imgs[1]))
			if err != nil {
				t.Fatal(err)
			}
			names, err := BuildNames(fs)
			if err != nil {
				t.Fatal(err)
			}
			last := fs.SB.InodesCount
			if last/fs.SB.InodesPerGroup < 7 {
				t.Fatalf("%d inodes in groups of %d: want 8 groups", last, fs.SB.InodesPerGroup)
			}
			mv, rm := names.Path(last), names.Path(last-1)
			if !strings.HasPrefix(mv, "/d/f") || !strings.HasPrefix(rm, "/d/f") {
				t.Fatalf("inodes %d and %d are %q and %q: the test does not reach the last group", last, last-1, mv, rm)
			}
			stages := []string{create.String(), "ln " + mv + " /e/moved\nunlink " + mv + "\nsif /e/moved ctime 20231115000000\nrm " + rm}
			// debugfs stops allocating when the inodes run out: the files that exist are created.
			var w []string
			for ino := uint32(1); ino <= last; ino++ {
				if p := names.Path(ino); strings.HasPrefix(p, "/d/f") && len(p) == len("/d/f00") {
					w = append(w, "create "+p)
				}
			}
			w = append(w, "delete "+rm, "move "+mv+" -> /e/moved")
			sort.Strings(w)
			checkStaged(t, seed, stages, w, nil)
		})
	}
}

// htreeImage makes an image whose directory /h holds 60 files, indexed by e2fsck -D (an htree
// of three leaves on 1K blocks).
func htreeImage(t *testing.T, fsType string) []byte {
	t.Helper()
	if _, err := exec.LookPath("e2fsck"); err != nil {
		t.Skip("e2fsck not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "seed", "h")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 60; i++ {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("file_with_a_long_name_number_%d", i)), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "img")
	cmd := exec.Command("mke2fs", "-q", "-F", "-t", fsType, "-b", "1024", "-N", "128", "-O", "dir_index", "-d", filepath.Join(dir, "seed"), img, "2M")
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	cmd = exec.Command("e2fsck", "-fyD", img)
	cmd.Env = cmd.Env[:0]
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		// 1: errors corrected (the directories were optimised), the expected outcome.
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck -D: %v\n%s", err, out)
		}
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPairingHtreeSplit: new names in an htree directory split its leaves (debugfs' link
// splits them as the kernel does: half the entries of a leaf move to a new block). Entries
// that move between blocks must not come out as moves, deletes or creates.
func TestPairingHtreeSplit(t *testing.T) {
	ext3fstest.Need(t)
	var cmds strings.Builder
	var want []string
	for i := 61; i <= 90; i++ {
		fmt.Fprintf(&cmds, "write /dev/null /h/another_long_name_to_split_leaves_%d\n", i)
		want = append(want, fmt.Sprintf("create /h/another_long_name_to_split_leaves_%d", i))
	}
	cmds.WriteString("ln /h/file_with_a_long_name_number_7 /h/renamed_7\nunlink /h/file_with_a_long_name_number_7\nrm /h/file_with_a_long_name_number_9\n")
	want = append(want, "delete /h/file_with_a_long_name_number_9", "move /h/file_with_a_long_name_number_7 -> /h/renamed_7")
	sort.Strings(want)
	for _, fsType := range []string{"ext2", "ext3"} {
		t.Run(fsType, func(t *testing.T) {
			seed := htreeImage(t, fsType)
			checkEdge(t, seed, fsType, edgeCase{cmds: cmds.String(), want: want})
		})
	}
}

// TestPairingTruncateIndirect: a file mapped through an indirect block is truncated to 0 (the
// indirect block's pointers zeroed and the block freed, as ext3_truncate does) and a new file
// takes the freed blocks in the same change. The blocks the indirect block mapped must be
// released: the new file's data is its own, and no block is owned twice.
func TestPairingTruncateIndirect(t *testing.T) {
	ext3fstest.Need(t)
	host, host2 := filepath.Join(t.TempDir(), "big"), filepath.Join(t.TempDir(), "big2")
	if err := os.WriteFile(host, bytes.Repeat([]byte("0123456789abcdef"), 20*1024/16), 0o644); err != nil {
		t.Fatal(err)
	}
	// Longer than the first, so the indirect block the new file gets differs and is written
	// (the kernel writes a newly allocated indirect block even when its content is the same).
	if err := os.WriteFile(host2, bytes.Repeat([]byte("fedcba9876543210"), 24*1024/16), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, fsType := range []string{"ext2", "ext3"} {
		seed := ext3fstest.SeedImage(t, fsType)
		t.Run(fsType, func(t *testing.T) {
			checkEdge(t, seed, fsType, edgeCase{
				setup: "write " + host + " /d/big\n",
				cmds:  "punch /d/big 0\nsif /d/big size 0\nwrite " + host2 + " /e/new\nsif /e/new generation 5\n",
				want:  []string{"create /e/new", "truncate /d/big size=0"}, data: []string{"/e/new"}})
		})
	}
}
