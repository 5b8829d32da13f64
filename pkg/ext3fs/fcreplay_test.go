package ext3fs_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
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

// patchedReader reads base with p over it at off.
type patchedReader struct {
	base []byte
	off  int64
	p    []byte
}

func (r patchedReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := bytes.NewReader(r.base).ReadAt(b, off)
	lo, hi := max(off, r.off), min(off+int64(n), r.off+int64(len(r.p)))
	if lo < hi {
		copy(b[lo-off:hi-off], r.p[lo-r.off:hi-r.off])
	}
	return n, err
}

// FuzzRecoverFastCommits replays fuzzed fast commits on the final disk of the fast_commit
// power-cut capture: the input is a run of records put into the first block of the fast-commit
// area between a HEAD and a TAIL of the right tid and crc, so that the replay itself, not only the
// scan, is exercised. Recover must not panic, and a view it returns must read the whole image.
func FuzzRecoverFastCommits(f *testing.F) {
	dir := "../../fixtures/real/powercut-fc-ext4-4k"
	if _, err := os.Stat(dir); err != nil {
		f.Skip("fixture missing")
	}
	disk, err := scenario.FinalDisk(dir, "io.log.zst")
	if err != nil {
		f.Fatal(err)
	}
	fs, err := ext3fs.Open(bytes.NewReader(disk))
	if err != nil {
		f.Fatal(err)
	}
	jin, err := fs.ReadInode(fs.SB.JournalInum)
	if err != nil {
		f.Fatal(err)
	}
	phys := map[uint64]uint64{}
	_ = fs.WalkBlocks(jin, func(br ext3fs.BlockRef) error {
		if br.Kind == ext3fs.BlockData {
			phys[br.Logical] = br.Phys
		}
		return nil
	})
	bs := fs.BlockSize()
	jsb, err := ext3fs.ParseJournalSuperblock(disk[int(phys[0])*bs:][:bs])
	if err != nil {
		f.Fatal(err)
	}
	first, _, ok := jsb.FastCommitArea()
	if !ok {
		f.Fatal("no fast-commit area")
	}
	areaOff := int64(phys[uint64(first)]) * int64(bs)
	rc0, err := ext3fs.Recover(bytes.NewReader(disk))
	if err != nil || rc0.FastCommits == 0 {
		f.Fatalf("the capture's recovery: %v, %d fast commits", err, rc0.FastCommits)
	}
	tid := rc0.NextSequence - 1
	// Seed: the records of the first block as the kernel wrote them, HEAD and TAIL left out.
	blk := disk[areaOff:][:bs]
	var seed []byte
	for off := 0; off+ext3fs.FCTagHeaderSize <= bs; {
		r, err := ext3fs.ParseFCRecord(blk, off, fs.SB.InodeSize())
		if err != nil || r.Tag == ext3fs.FCTagTail {
			break
		}
		end := off + ext3fs.FCTagHeaderSize + int(r.Len)
		if r.Tag != ext3fs.FCTagHead {
			seed = append(seed, blk[off:end]...)
		}
		off = end
	}
	f.Add(seed)
	le := binary.LittleEndian
	f.Fuzz(func(t *testing.T, in []byte) {
		rec := func(tag ext3fs.FCTag, val []byte) []byte {
			r := le.AppendUint16(nil, uint16(tag))
			return append(le.AppendUint16(r, uint16(len(val))), val...)
		}
		b := rec(ext3fs.FCTagHead, le.AppendUint32(le.AppendUint32(nil, 0), tid))
		// The records of the input that parse, up to the first that does not; room for the TAIL.
		for off := 0; off+ext3fs.FCTagHeaderSize <= len(in); {
			r, err := ext3fs.ParseFCRecord(in, off, fs.SB.InodeSize())
			end := off + ext3fs.FCTagHeaderSize + int(r.Len)
			if err != nil || r.Tag == ext3fs.FCTagHead || r.Tag == ext3fs.FCTagTail || len(b)+end-off+12 > bs {
				break
			}
			b = append(b, in[off:end]...)
			off = end
		}
		tail := le.AppendUint16(nil, uint16(ext3fs.FCTagTail))
		tail = le.AppendUint16(tail, uint16(bs-len(b)-ext3fs.FCTagHeaderSize))
		tail = le.AppendUint32(tail, tid)
		crc := ext3fs.Crc32c(ext3fs.Crc32c(0, b), tail)
		b = le.AppendUint32(append(b, tail...), crc)
		b = append(b, make([]byte, bs-len(b))...)
		rc, err := ext3fs.Recover(patchedReader{disk, areaOff, b})
		if err != nil {
			return
		}
		out := make([]byte, len(disk))
		if n, err := rc.ReadAt(out, 0); n != len(disk) || err != nil {
			t.Fatalf("view: %d bytes, %v", n, err)
		}
	})
}

// TestFastCommitReplayHandMade: fast commits made by hand for what debugfs did to a copy of an
// ext4 fast_commit image (mkdir, a file created in the new directory, a file removed), in an
// image whose journal needs recovery and holds no full commit: Recover's tree is debugfs' tree,
// inode for inode and block for block (the new directory's "." and ".." block set up by the
// replay, the new names added to directory blocks, the removed one gone), and every checksum of
// the view verifies. A fast commit with a bad crc is not replayed.
func TestFastCommitReplayHandMade(t *testing.T) {
	ext3fstest.Need(t)
	base := ext3fstest.SeedImageArgs(t, "ext4", "-O", "fast_commit")
	after := ext3fstest.DebugfsChange(t, base, "mkdir /newdir\nwrite CONTENT /newdir/f\nrm /d/f\n")
	fsA, err := ext3fs.Open(bytes.NewReader(after))
	if err != nil {
		t.Fatal(err)
	}
	fsB, err := ext3fs.Open(bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	inos := func(fs *ext3fs.FS) map[string]uint32 {
		m := map[string]uint32{}
		_ = fs.Walk(func(p string, ino uint32, _ *ext3fs.Inode) error { m[p] = ino; return nil })
		return m
	}
	ia, ib := inos(fsA), inos(fsB)
	dir, file, gone, d := ia["/newdir"], ia["/newdir/f"], ib["/d/f"], ib["/d"]
	if dir == 0 || file == 0 || gone == 0 || d == 0 {
		t.Fatalf("debugfs did not make the tree expected: %v", ia)
	}
	area, jsbBlock, jsb, err := ext3fstest.FastCommitArea(fsB, base)
	if err != nil || len(area) == 0 {
		t.Fatalf("fast-commit area: %v", err)
	}
	const tid = 5
	build := func(corrupt bool) []byte {
		var b ext3fstest.FCBuilder
		b.Head(tid)
		b.Inode(dir, ext3fstest.FCInodeRecord(fsA, after, dir))
		b.Dentry(ext3fs.FCTagCreat, ext3fs.RootIno, dir, "newdir")
		b.Inode(file, ext3fstest.FCInodeRecord(fsA, after, file))
		b.Dentry(ext3fs.FCTagCreat, dir, file, "f")
		b.Dentry(ext3fs.FCTagUnlink, d, gone, "f")
		b.Inode(gone, ext3fstest.FCInodeRecord(fsA, after, gone))
		b.Inode(ext3fs.RootIno, ext3fstest.FCInodeRecord(fsA, after, ext3fs.RootIno))
		return b.Block(tid, fsB.BlockSize(), corrupt)
	}
	// The image at the crash: the file data home (data=ordered), metadata not yet, the journal
	// started at s_first with tid 5 and nothing in it but the fast commit.
	crashed := func(corrupt bool) []byte {
		img := append([]byte(nil), base...)
		bs := fsB.BlockSize()
		_ = fsA.WalkBlocks(mustInode(t, fsA, file), func(br ext3fs.BlockRef) error {
			copy(img[int(br.Phys)*bs:][:bs], after[int(br.Phys)*bs:][:bs])
			return nil
		})
		copy(img[int(area[0])*bs:], build(corrupt))
		j := *jsb
		j.Start, j.Sequence = j.First, tid
		j.FeatureIncompat |= ext3fs.JournalIncompatFastCommit // set by the kernel at mount
		copy(img[int(jsbBlock)*bs:], j.Marshal()[:ext3fs.JournalSuperblockSize])
		sb := img[ext3fs.SuperblockOffset : ext3fs.SuperblockOffset+ext3fs.SuperblockSize]
		le := binary.LittleEndian
		le.PutUint32(sb[0x60:], le.Uint32(sb[0x60:])|ext3fs.IncompatRecover)
		le.PutUint32(sb[0x3FC:], ext3fs.Crc32c(^uint32(0), sb[:0x3FC]))
		return img
	}
	type entry struct {
		ino    uint32
		size   uint64
		links  uint16
		blocks string
	}
	tree := func(fs *ext3fs.FS) map[string]entry {
		m := map[string]entry{}
		if err := fs.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
			var bl []uint64
			if err := fs.WalkBlocks(in, func(br ext3fs.BlockRef) error { bl = append(bl, br.Phys); return nil }); err != nil {
				return err
			}
			m[p] = entry{ino, in.Size, in.LinksCount, fmt.Sprint(bl)}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	rc, err := ext3fs.Recover(bytes.NewReader(crashed(false)))
	if err != nil {
		t.Fatal(err)
	}
	if rc.FastCommits != 1 || rc.FastCommitErr != nil || rc.Transactions != 0 {
		t.Fatalf("recovery: %s", rc.Summary())
	}
	view, err := ext3fs.OpenWith(rc, ext3fs.Options{InlineData: true})
	if err != nil {
		t.Fatal(err)
	}
	got, want := tree(view), tree(fsA)
	if !maps.Equal(got, want) {
		t.Errorf("tree after the fast-commit replay:\n got %v\nwant %v", got, want)
	}
	if err := view.Checksums(func(c ext3fs.Checksum) error {
		if !c.OK() {
			t.Errorf("after the replay: %v", c.Err())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// ReplayFastCommits over the crashed image (jbd2 recovery has nothing to replay in it) is
	// Recover's fast-commit replay: the same blocks, the same bytes; and replaying the commits
	// one by one, each over the view the previous one left, is replaying them together.
	img := crashed(false)
	blocks := make([][]byte, len(area))
	for i, b := range area {
		blocks[i] = img[int(b)*fsB.BlockSize():][:fsB.BlockSize()]
	}
	sc := ext3fs.ScanFastCommits(blocks, tid, fsB.SB.InodeSize())
	if len(sc.Commits) != 1 {
		t.Fatalf("scan: %d commits (%v)", len(sc.Commits), sc.End)
	}
	rf, err := ext3fs.ReplayFastCommits(bytes.NewReader(img), sc.Commits)
	if err != nil || rf.FastCommitErr != nil || rf.FastCommits != 1 {
		t.Fatalf("ReplayFastCommits: %v, %v", err, rf)
	}
	if !slices.Equal(rf.FastCommitBlocks, rc.FastCommitBlocks) || !slices.Equal(rf.Blocks, rf.FastCommitBlocks) || len(rf.Blocks) == 0 {
		t.Errorf("ReplayFastCommits wrote blocks %v (listed %v), Recover's replay %v", rf.FastCommitBlocks, rf.Blocks, rc.FastCommitBlocks)
	}
	one := sc.Commits[0]
	split := []ext3fs.FCCommit{{TID: one.TID, Records: one.Records[:3]}, {TID: one.TID, Records: one.Records[3:]}}
	r1, err := ext3fs.ReplayFastCommits(bytes.NewReader(img), split[:1])
	if err != nil {
		t.Fatal(err)
	}
	r2, err := ext3fs.ReplayFastCommits(r1, split[1:])
	if err != nil {
		t.Fatal(err)
	}
	bs := fsB.BlockSize()
	gb, wb := make([]byte, bs), make([]byte, bs)
	for _, b := range rc.FastCommitBlocks {
		for _, v := range []struct {
			name string
			r    io.ReaderAt
		}{{"ReplayFastCommits", rf}, {"ReplayFastCommits in two steps", r2}} {
			if _, err := v.r.ReadAt(gb, int64(b)*int64(bs)); err != nil {
				t.Fatal(err)
			}
			if _, err := rc.ReadAt(wb, int64(b)*int64(bs)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gb, wb) {
				t.Errorf("%s: block %d differs from Recover's replay", v.name, b)
			}
		}
	}
	if _, err := ext3fs.ReplayFastCommits(bytes.NewReader(make([]byte, 8192)), sc.Commits); err == nil {
		t.Error("ReplayFastCommits over no file system: no error")
	}
	rc, err = ext3fs.Recover(bytes.NewReader(crashed(true)))
	if err != nil {
		t.Fatal(err)
	}
	view, _ = ext3fs.OpenWith(rc, ext3fs.Options{InlineData: true})
	if got := tree(view); rc.FastCommits != 0 || !maps.Equal(got, tree(fsB)) {
		t.Errorf("a torn fast commit was replayed: %s", rc.Summary())
	}
}

func mustInode(t *testing.T, fs *ext3fs.FS, ino uint32) *ext3fs.Inode {
	t.Helper()
	in, err := fs.ReadInode(ino)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
