package ext3fs_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

type walked struct {
	path string
	ino  uint32
	in   *ext3fs.Inode
}

// TestAgainstE2fsprogs builds every standard image and checks, for every file: the tree and the
// inode fields against the source tree, each file's contents read through its block map or
// extents, each block list against debugfs stat, symlink targets, and the htree directory.
func TestAgainstE2fsprogs(t *testing.T) {
	ext3fstest.Need(t)
	for _, im := range append(ext3fstest.Standard[:len(ext3fstest.Standard):len(ext3fstest.Standard)], ext3fstest.Ext4...) {
		t.Run(im.Name, func(t *testing.T) {
			t.Parallel()
			img, src := ext3fstest.Build(t, im)
			fsys := ext3fstest.Open(t, img)
			checkGeometry(t, fsys, im)
			var files []walked
			err := fsys.Walk(func(path string, ino uint32, in *ext3fs.Inode) error {
				files = append(files, walked{path, ino, in})
				return nil
			})
			if err != nil {
				t.Fatalf("Walk: %v", err)
			}
			checkTree(t, fsys, files, src)
			checkBlockLists(t, fsys, img, files)
			checkHtree(t, fsys, files, ext3fstest.HtreeDir, 500)
		})
	}
}

func checkGeometry(t *testing.T, fsys *ext3fs.FS, im ext3fstest.Image) {
	sb := fsys.SB
	if sb.BlockSize() != im.BlockSize {
		t.Errorf("BlockSize = %d, want %d", sb.BlockSize(), im.BlockSize)
	}
	if got, want := sb.HasJournal(), im.Type != "ext2"; got != want {
		t.Errorf("HasJournal = %v, want %v", got, want)
	}
	if got, want := sb.HasFiletype(), !im.Rev0; got != want {
		t.Errorf("HasFiletype = %v, want %v", got, want)
	}
	if got, want := sb.HasExtents(), im.Type == "ext4"; got != want {
		t.Errorf("HasExtents = %v, want %v", got, want)
	}
	if got, want := sb.DescSize(), map[bool]int{true: 64, false: 32}[im.Type == "ext4"]; got != want {
		t.Errorf("DescSize = %d, want %d", got, want)
	}
	if im.Rev0 && (sb.InodeSize() != 128 || sb.FirstIno != 11) {
		t.Errorf("rev 0: InodeSize %d FirstIno %d, want 128 and 11", sb.InodeSize(), sb.FirstIno)
	}
	// Every inode's location must map back through InodeTableBlock.
	for ino := uint32(1); ino <= sb.InodesCount; ino += 37 {
		blk, off := fsys.InodeLocation(ino)
		first, n, ok := fsys.InodeTableBlock(blk)
		if !ok || ino < first || ino >= first+uint32(n) || int(ino-first)*sb.InodeSize() != off {
			t.Fatalf("inode %d at block %d+%d, but InodeTableBlock says first %d n %d ok %v", ino, blk, off, first, n, ok)
		}
	}
	if _, _, ok := fsys.InodeTableBlock(uint64(sb.FirstDataBlock)); ok {
		t.Errorf("superblock reported as an inode-table block")
	}
}

// checkTree compares the walked tree with the source tree: names, types, sizes, link counts,
// contents, symlink targets.
func checkTree(t *testing.T, fsys *ext3fs.FS, files []walked, src string) {
	want := map[string]fs.FileInfo{}
	err := filepath.Walk(src, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, src)
		if rel == "" {
			rel = "/"
		}
		want[rel] = fi
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]walked{}
	for _, f := range files {
		if _, dup := got[f.path]; dup {
			t.Errorf("Walk reported %s twice", f.path)
		}
		got[f.path] = f
	}
	for p := range want {
		if _, ok := got[p]; !ok {
			t.Errorf("Walk missed %s", p)
		}
	}
	for p, f := range got {
		if p == "/lost+found" {
			continue
		}
		fi, ok := want[p]
		if !ok {
			t.Errorf("Walk reported %s, not in the source tree", p)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if f.in.LinksCount != uint16(st.Nlink) && !fi.IsDir() {
			t.Errorf("%s: links %d, want %d", p, f.in.LinksCount, st.Nlink)
		}
		if uint32(f.in.Mode)&0xF000 != st.Mode&0xF000 {
			t.Errorf("%s: mode %o, want %o", p, f.in.Mode, st.Mode)
		}
		switch f.in.Type() {
		case ext3fs.TypeRegular:
			if f.in.Size != uint64(fi.Size()) {
				t.Errorf("%s: size %d, want %d", p, f.in.Size, fi.Size())
			}
			if err := compareFile(fsys, f.in, filepath.Join(src, p)); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		case ext3fs.TypeSymlink:
			target, err := fsys.ReadLink(f.in)
			wantTarget, _ := os.Readlink(filepath.Join(src, p))
			if err != nil || target != wantTarget {
				t.Errorf("%s: ReadLink = %q, %v; want %q", p, target, err, wantTarget)
			}
			if fast := len(wantTarget) < 60; f.in.IsFastSymlink() != fast {
				t.Errorf("%s: IsFastSymlink = %v for a %d-byte target", p, !fast, len(wantTarget))
			}
		case ext3fs.TypeDir:
			ents, err := fsys.ReadDir(f.in)
			if err != nil {
				t.Errorf("%s: ReadDir: %v", p, err)
				continue
			}
			srcEnts, _ := os.ReadDir(filepath.Join(src, p))
			var g, w []string
			for _, e := range ents {
				if e.Name != "." && e.Name != ".." && !(p == "/" && e.Name == "lost+found") {
					g = append(g, e.Name)
					if fsys.SB.HasFiletype() && ext3fs.FileType(e.FileType) != got[join(p, e.Name)].in.Type() {
						t.Errorf("%s/%s: dirent file_type %d, inode type %v", p, e.Name, e.FileType, got[join(p, e.Name)].in.Type())
					}
				}
			}
			for _, e := range srcEnts {
				w = append(w, e.Name())
			}
			sort.Strings(g)
			if strings.Join(g, "/") != strings.Join(w, "/") {
				t.Errorf("%s: ReadDir names differ from the source:\n got %v\nwant %v", p, g, w)
			}
		}
	}
}

func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// compareFile reads every data block through WalkBlocks and compares it with the source
// file at the same offset. Small files are reassembled whole, so holes are checked too (large
// sparse files are covered by the block-list comparison with debugfs).
func compareFile(fsys *ext3fs.FS, in *ext3fs.Inode, srcPath string) error {
	want, err := os.Open(srcPath)
	if err != nil {
		return err
	}
	defer want.Close()
	if in.HasInlineData() {
		got, err := fsys.ReadInlineData(in)
		if err != nil {
			return err
		}
		wantData, err := os.ReadFile(srcPath)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, wantData) {
			return fmt.Errorf("inline data (%d bytes) differs from the source (%d bytes)", len(got), len(wantData))
		}
		return nil
	}
	bs := uint64(fsys.BlockSize())
	whole := in.Size <= 1<<20
	var out []byte
	if whole {
		out = make([]byte, in.Size)
	}
	buf := make([]byte, bs)
	wbuf := make([]byte, bs)
	err = fsys.WalkBlocks(in, func(r ext3fs.BlockRef) error {
		if r.Kind != ext3fs.BlockData {
			return nil
		}
		if r.Logical*bs >= in.Size {
			return fmt.Errorf("data block at logical %d past size %d", r.Logical, in.Size)
		}
		if err := fsys.ReadBlock(r.Phys, buf); err != nil {
			return err
		}
		n := min(bs, in.Size-r.Logical*bs)
		if whole {
			copy(out[r.Logical*bs:], buf[:n])
			return nil
		}
		if _, err := want.ReadAt(wbuf[:n], int64(r.Logical*bs)); err != nil {
			return err
		}
		if !bytes.Equal(buf[:n], wbuf[:n]) {
			return fmt.Errorf("logical block %d (block %d) differs from the source", r.Logical, r.Phys)
		}
		return nil
	})
	if err != nil || !whole {
		return err
	}
	wantData, err := os.ReadFile(srcPath)
	if err != nil {
		return err
	}
	if !bytes.Equal(out, wantData) {
		return fmt.Errorf("contents read through the block map differ from the source file")
	}
	return nil
}

// checkBlockLists compares WalkBlocks with debugfs stat for every inode that owns blocks,
// including the journal and the resize inode.
func checkBlockLists(t *testing.T, fsys *ext3fs.FS, img string, files []walked) {
	seen := map[uint32]*ext3fs.Inode{}
	for _, f := range files {
		seen[f.ino] = f.in
	}
	special := []uint32{ext3fs.ResizeIno, ext3fs.JournalIno}
	if fsys.SB.FeatureCompat&ext3fs.CompatOrphanFile != 0 {
		if fsys.SB.OrphanFileInum == 0 {
			t.Errorf("orphan_file set but s_orphan_file_inum is 0")
		}
		special = append(special, fsys.SB.OrphanFileInum)
	}
	for _, ino := range special {
		if in, err := fsys.ReadInode(ino); err == nil && in.Mode != 0 {
			seen[ino] = in
		}
	}
	var inos []uint32
	var cmds []string
	for ino := range seen {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		cmds = append(cmds, fmt.Sprintf("stat <%d>", ino))
	}
	outs := ext3fstest.Debugfs(t, img, cmds)
	kinds := 0
	for i, ino := range inos {
		want := ext3fstest.StatBlocks(t, outs[i])
		var got []ext3fstest.Ref
		err := fsys.WalkBlocks(seen[ino], func(r ext3fs.BlockRef) error {
			l := int64(r.Logical)
			if r.Kind != ext3fs.BlockData {
				l = -1
				kinds |= 1 << r.Kind
			}
			got = append(got, ext3fstest.Ref{Kind: r.Kind.String(), Logical: l, Phys: r.Phys})
			return nil
		})
		if err != nil {
			t.Errorf("inode %d: WalkBlocks: %v", ino, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("inode %d: WalkBlocks differs from debugfs stat:\n got %v\nwant %v", ino, got, want)
		}
	}
	// The tree must have exercised the map levels this format has.
	if fsys.SB.HasExtents() {
		if kinds&(1<<ext3fs.BlockExtent) == 0 {
			t.Errorf("no extent tree block seen: the test tree does not cover depth >= 1")
		}
		return
	}
	for _, k := range []ext3fs.BlockKind{ext3fs.BlockInd, ext3fs.BlockDInd, ext3fs.BlockTInd} {
		if kinds&(1<<k) == 0 {
			t.Errorf("no %v block seen: the test tree does not cover it", k)
		}
	}
}

// checkHtree: with dir_index, e2fsck -D must have indexed the big directory; its root and nodes
// must decode and point at blocks inside the directory.
func checkHtree(t *testing.T, fsys *ext3fs.FS, files []walked, path string, entries int) *ext3fs.DxRoot {
	var dir *walked
	for i := range files {
		if files[i].path == path {
			dir = &files[i]
		}
	}
	if dir == nil {
		t.Fatalf("%s not found", path)
	}
	if !fsys.SB.HasDirIndex() {
		if dir.in.IsHtree() {
			t.Errorf("INDEX_FL set without dir_index")
		}
		return nil
	}
	if !dir.in.IsHtree() {
		t.Fatalf("%s is not an htree after e2fsck -D", path)
	}
	bs := fsys.BlockSize()
	nblocks := uint32(dir.in.Size / uint64(bs))
	blocks := map[uint64]uint64{}
	fsys.WalkBlocks(dir.in, func(r ext3fs.BlockRef) error {
		if r.Kind == ext3fs.BlockData {
			blocks[r.Logical] = r.Phys
		}
		return nil
	})
	buf := make([]byte, bs)
	if err := fsys.ReadBlock(blocks[0], buf); err != nil {
		t.Fatal(err)
	}
	root, err := ext3fs.ParseDxRoot(buf)
	if err != nil {
		t.Fatalf("ParseDxRoot: %v", err)
	}
	if root.DotIno != dir.ino || root.HashVersion != fsys.SB.DefHashVersion {
		t.Errorf("dx_root: dot inode %d hash version %d, want %d and %d", root.DotIno, root.HashVersion, dir.ino, fsys.SB.DefHashVersion)
	}
	if want := uint16((bs - 0x20 - map[bool]int{true: 8}[fsys.SB.FeatureRoCompat&ext3fs.RoCompatMetadataCsum != 0]) / 8); root.Limit != want {
		t.Errorf("dx_root limit %d, want %d", root.Limit, want)
	}
	ents, err := ext3fs.ParseDirBlock(buf, fsys.SB.HasFiletype())
	if err != nil || len(ents) != 2 || ents[0].Name != "." || ents[1].Name != ".." {
		t.Errorf("dx_root as a linear block: %v, %v; want . and ..", ents, err)
	}
	leaves := map[uint32]bool{}
	var visit func(es []ext3fs.DxEntry, levels int)
	visit = func(es []ext3fs.DxEntry, levels int) {
		for i, e := range es {
			if e.Block == 0 || e.Block >= nblocks {
				t.Errorf("index entry %d points at logical block %d of %d", i, e.Block, nblocks)
				continue
			}
			if i > 0 && e.Hash < es[i-1].Hash {
				t.Errorf("index hashes out of order: %#x after %#x", e.Hash, es[i-1].Hash)
			}
			if levels == 0 {
				leaves[e.Block] = true
				continue
			}
			nb := make([]byte, bs)
			if err := fsys.ReadBlock(blocks[uint64(e.Block)], nb); err != nil {
				t.Fatal(err)
			}
			node, err := ext3fs.ParseDxNode(nb)
			if err != nil {
				t.Fatalf("ParseDxNode: %v", err)
			}
			if ents, err := ext3fs.ParseDirBlock(nb, fsys.SB.HasFiletype()); err != nil || len(ents) != 0 {
				t.Errorf("dx_node as a linear block: %v, %v; want no entries", ents, err)
			}
			visit(node.Entries, levels-1)
		}
	}
	visit(root.Entries, int(root.IndirectLevels))
	// Every leaf block holds entries; together they hold all the names.
	n := 0
	for lb := range leaves {
		if err := fsys.ReadBlock(blocks[uint64(lb)], buf); err != nil {
			t.Fatal(err)
		}
		ents, err := ext3fs.ParseDirBlock(buf, fsys.SB.HasFiletype())
		if err != nil {
			t.Fatal(err)
		}
		n += len(ents)
	}
	if n != entries {
		t.Errorf("htree leaves hold %d entries, want %d", n, entries)
	}
	return root
}

// TestHtreeTwoLevels: a directory big enough for an htree with interior dx_node blocks
// (indirect_levels 1) on 1 KiB blocks.
func TestHtreeTwoLevels(t *testing.T) {
	ext3fstest.Need(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const n = 4000
	if err := os.MkdirAll(filepath.Join(src, "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("a-rather-long-file-name-to-fill-leaf-blocks-quickly-%05d", i)
		if err := os.WriteFile(filepath.Join(src, "big", name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "img")
	for _, args := range [][]string{
		{"mke2fs", "-q", "-F", "-t", "ext3", "-b", "1024", "-N", "5000", "-d", src, img, "8M"},
		{"e2fsck", "-fyD", img},
	} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && args[0] == "e2fsck" && ee.ExitCode() < 4) {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	fsys := ext3fstest.Open(t, img)
	var files []walked
	if err := fsys.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
		files = append(files, walked{p, ino, in})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(files) != n+3 { // "/", lost+found, big
		t.Errorf("Walk found %d names, want %d", len(files), n+3)
	}
	if root := checkHtree(t, fsys, files, "/big", n); root == nil || root.IndirectLevels != 1 {
		t.Errorf("dx_root %+v: want indirect_levels 1", root)
	}
}
