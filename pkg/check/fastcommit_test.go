package check

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// fcCaptures are the real captures of ext4 with fast_commit.
var fcCaptures = []string{"fastcommit-ext4-4k", "fastcommit-ext4-4k-k612", "fastcommit-crash-ext4-4k", "powercut-fc-ext4-4k", "powercut-fc-ext4-4k-run2"}

// resolverFastCommits is the number of complete fast commits analyze's resolver applies on a
// capture: an independent count (resolver/fastcommit.go follows the area its own way).
func resolverFastCommits(t *testing.T, dir string) int {
	t.Helper()
	img, lr := openCapture(t, dir)
	res, err := analysis.Run(analysis.Input{Image: img, ImageSize: img.Size(), Log: lr}, analysis.Options{}, func(*ops.Op) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return int(res.FastCommits)
}

// TestFastCommitCheckPoints: on every fast_commit capture, each complete fast commit after the
// last full commit is a consistency point of its own: the checks grow, over a run that ignores
// fast commits, by the fast commits the resolver applies (one request completes one fast commit
// in these captures), none is skipped, and nothing is found.
func TestFastCommitCheckPoints(t *testing.T) {
	for _, name := range fcCaptures {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("../../fixtures/real", name)
			disk, recs := capture(t, dir)
			with, fs, err := RunWith(disk, int64(len(disk)), &sliceLog{recs: recs}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			without, _, err := RunWith(disk, int64(len(disk)), &sliceLog{recs: recs}, Options{noFastCommits: true})
			if err != nil {
				t.Fatal(err)
			}
			checked, skipped := with.FastCommits()
			want := resolverFastCommits(t, dir)
			t.Logf("%d checks (%d without fast commits), %d at fast commits, %d skipped; the resolver applies %d fast commits",
				with.Checks(), without.Checks(), checked, skipped, want)
			if want == 0 && (with.Recovery() == nil || with.Recovery().FastCommits == 0) {
				// run2 of a power cut writes none: its fast commits are in its starting image.
				t.Fatal("no fast commit in the log nor in the starting image's recovery")
			}
			if checked != want || skipped != 0 {
				t.Errorf("%d fast commits checked, %d skipped, want %d and 0 (errors %q)", checked, skipped, want, with.Errors())
			}
			if with.Checks()-without.Checks() != want {
				t.Errorf("checks grew by %d with fast commits, want %d", with.Checks()-without.Checks(), want)
			}
			for _, f := range fs {
				t.Errorf("finding: %+v", f)
			}
			// At every fast commit: the incremental check reads again what the replay changed
			// (the inodes it logs at least), fewer structures than a full check; and e2fsck -fn
			// agrees that the disk recovery would give there (the checker's view) has no problem
			// but the counts the replay leaves to be recomputed.
			_, e2fsckErr := exec.LookPath("e2fsck")
			c, err := New(disk, int64(len(disk)))
			if err != nil {
				t.Fatal(err)
			}
			cf, err := NewWith(disk, int64(len(disk)), Options{Full: true})
			if err != nil {
				t.Fatal(err)
			}
			view := make(scenario.Disk, len(disk))
			var inc, full int
			for i := range recs {
				n, r, rf := c.fcChecks, c.Reads(), cf.Reads()
				if err := c.Record(&recs[i]); err != nil {
					t.Fatal(err)
				}
				if err := cf.Record(&recs[i]); err != nil {
					t.Fatal(err)
				}
				if c.fcChecks == n {
					continue
				}
				inc, full = inc+c.Reads()-r, full+cf.Reads()-rf
				if c.Reads() == r {
					t.Errorf("the fast commit of record %d read nothing again", recs[i].Index)
				}
				if e2fsckErr != nil {
					continue
				}
				if _, err := c.ReadAt(view, 0); err != nil {
					t.Fatal(err)
				}
				if blocks, inodes, _, out := e2fsckNames(t, view); len(blocks)+len(inodes) > 0 {
					t.Errorf("e2fsck on the disk recovery gives at the fast commit of record %d names blocks %v inodes %v:\n%s", recs[i].Index, blocks, inodes, out)
				}
			}
			t.Logf("structures read at the fast commits: %d incremental, %d full", inc, full)
			if checked > 0 && inc >= full {
				t.Errorf("incremental checks at fast commits read %d structures, full ones %d", inc, full)
			}
		})
	}
}

// fcSite is a complete fast commit held in one area block, written whole by one request: the
// place to alter a record of it and still have a valid commit.
type fcSite struct {
	rec     int    // index of the request in the log
	off     int    // the area block's offset in its data
	block   uint64 // the area block (file-system block)
	records []ext3fs.FCRecord
}

// fcSites runs the checker over a log and returns the fast commits it checked that are sites.
func fcSites(t *testing.T, disk scenario.Disk, recs []blklog.Record) []fcSite {
	t.Helper()
	c, err := New(disk, int64(len(disk)))
	if err != nil {
		t.Fatal(err)
	}
	var out []fcSite
	for i := range recs {
		before := c.fcChecks
		if err := c.Record(&recs[i]); err != nil {
			t.Fatal(err)
		}
		if c.fcChecks == before {
			continue
		}
		for _, cm := range c.fc.commits {
			for _, st := range c.fc.steps {
				if st.block != cm.Block || len(st.commit.Records) != len(cm.Records) || st.commit.Records[0].Offset != cm.Records[0].Offset || st.rec != recs[i].Index {
					continue
				}
				p := c.jphys[uint64(c.fc.first)+uint64(st.block)]
				off := int64(p)*int64(c.bs) - int64(recs[i].Sector)*blklog.SectorSize
				if off >= 0 && off+int64(c.bs) <= int64(len(recs[i].Data)) {
					out = append(out, fcSite{rec: i, off: int(off), block: p, records: cm.Records})
				}
			}
		}
	}
	return out
}

// fcTailCRC recomputes the TAIL crc of a fast commit held in area block b (records from first
// to the TAIL tail): the crc32c of every record since the previous TAIL, up to the tail's tid.
func fcTailCRC(b []byte, records []ext3fs.FCRecord) {
	first, tail := records[0], records[len(records)-1]
	end := tail.Offset + ext3fs.FCTagHeaderSize + 4
	binary.LittleEndian.PutUint32(b[end:], ext3fs.Crc32c(0, b[first.Offset:end]))
}

// TestInjectedFastCommitFaults alters one record of a complete fast commit in real fast_commit
// logs (its TAIL crc recomputed, so the commit stays valid): the state recovery would give at that
// fast commit is then wrong, and check must report it there, naming the inode and the altered
// request, as e2fsck -fn does on the disk recovery gives (the checker's journal-replayed view
// with ext3fs's fast-commit replay: e2fsprogs 1.47.0 cannot replay fast commits itself). The
// group counts e2fsck also reports there are left out: both replays recompute them (see
// fastcommit.go). Incremental and full checks must agree.
func TestInjectedFastCommitFaults(t *testing.T) {
	if _, err := exec.LookPath("e2fsck"); err != nil {
		t.Skip("e2fsck not installed")
	}
	type fault struct {
		name, dir string
		// alter edits a site's area block in place and returns the inode check must name
		// and the kind of finding; ok false when the site has nothing to alter.
		alter func(fs *ext3fs.FS, s fcSite, b []byte) (ino uint32, kind string, ok bool)
	}
	faults := []fault{
		{"inode links count", "fastcommit-ext4-4k", func(fs *ext3fs.FS, s fcSite, b []byte) (uint32, string, bool) {
			for _, r := range s.records {
				if r.Tag != ext3fs.FCTagInode || r.Ino < fs.SB.FirstIno {
					continue
				}
				in, err := ext3fs.ParseInode(r.RawInode)
				if err != nil || in.Type() != ext3fs.TypeRegular || in.LinksCount != 1 {
					continue
				}
				b[r.Offset+ext3fs.FCTagHeaderSize+4+0x1A]++ // le16 i_links_count after le32 ino
				return r.Ino, "links", true
			}
			return 0, "", false
		}},
		{"dentry to a free inode", "fastcommit-crash-ext4-4k", func(fs *ext3fs.FS, s fcSite, b []byte) (uint32, string, bool) {
			// The name a CREAT_DENTRY adds made to point at a free inode of the same group.
			for _, r := range s.records {
				if r.Tag != ext3fs.FCTagCreat {
					continue
				}
				free := freeInode(fs, r.Ino)
				if free == 0 {
					continue
				}
				binary.LittleEndian.PutUint32(b[r.Offset+ext3fs.FCTagHeaderSize+4:], free) // le32 parent, le32 ino
				return free, "directory", true
			}
			return 0, "", false
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			disk, recs := capture(t, filepath.Join("../../fixtures/real", f.dir))
			sites := fcSites(t, disk, recs)
			if len(sites) == 0 {
				t.Fatal("no fast commit held in one area block")
			}
			var site fcSite
			var ino uint32
			var kind string
			for _, s := range sites {
				// The file system as recovery would give it at that fast commit.
				cs, err := New(disk, int64(len(disk)))
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i <= s.rec; i++ {
					if err := cs.Record(&recs[i]); err != nil {
						t.Fatal(err)
					}
				}
				fs, err := ext3fs.OpenWith(cs, ext3fs.Options{InlineData: true})
				if err != nil {
					t.Fatal(err)
				}
				b := bytes.Clone(recs[s.rec].Data[s.off:][:fs.BlockSize()])
				n, k, ok := f.alter(fs, s, b)
				if !ok {
					continue
				}
				fcTailCRC(b, s.records)
				recs[s.rec].Data = bytes.Clone(recs[s.rec].Data)
				copy(recs[s.rec].Data[s.off:], b)
				site, ino, kind = s, n, k
				break
			}
			if ino == 0 {
				t.Fatalf("no fast commit to alter among %d", len(sites))
			}
			want := recs[site.rec].Index
			c, findings, err := Run(disk, int64(len(disk)), &sliceLog{recs: recs})
			if err != nil {
				t.Fatal(err)
			}
			if n, skipped := c.FastCommits(); skipped != 0 || n == 0 {
				t.Fatalf("%d fast commits checked, %d skipped: %q", n, skipped, c.Errors())
			}
			_, full, err := RunWith(disk, int64(len(disk)), &sliceLog{recs: recs}, Options{Full: true})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(full) != fmt.Sprint(findings) {
				t.Errorf("full checks found %v, incremental %v", full, findings)
			}
			var hit *Finding
			for i := range findings {
				fd := &findings[i]
				t.Logf("check: record %d (at %d) %s %s: %s (at end %v, fixed at %d)", fd.Seq, fd.AtSeq, fd.Kind, fd.Struct, fd.Msg, fd.AtEnd, fd.FixedSeq)
				if fd.Inode == ino && fd.Kind == kind && fd.AtSeq == want {
					hit = fd
				}
			}
			if hit == nil {
				t.Fatalf("check does not report inode %d (%s) at record %d, the altered fast commit", ino, kind, want)
			}
			if hit.Seq != want {
				t.Errorf("check names record %d, the altered fast commit is record %d", hit.Seq, want)
			}
			// The disk recovery gives at that fast commit, as e2fsck -fn sees it.
			c2, err := New(disk, int64(len(disk)))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i <= site.rec; i++ {
				if err := c2.Record(&recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			view := make(scenario.Disk, len(disk))
			if _, err := c2.ReadAt(view, 0); err != nil {
				t.Fatal(err)
			}
			blocks, inodes, _, out := e2fsckNames(t, view)
			t.Logf("e2fsck -fn on the disk recovery gives at record %d:\n%s", want, out)
			if !slices.Contains(inodes, uint64(ino)) {
				t.Errorf("e2fsck on the disk recovery gives at record %d does not name inode %d:\n%s", want, ino, out)
			}
			at := func(fd Finding) bool { return fd.AtSeq <= want && (fd.FixedSeq == 0 || fd.FixedSeq > want) }
			for _, n := range inodes {
				if !slices.ContainsFunc(findings, func(fd Finding) bool { return at(fd) && uint64(fd.Inode) == n }) {
					t.Errorf("e2fsck reports inode %d at record %d, check does not:\n%s", n, want, out)
				}
			}
			for _, b := range blocks {
				if !slices.ContainsFunc(findings, func(fd Finding) bool { return at(fd) && fd.Block == b && fd.Kind == "block-bitmap" }) {
					t.Errorf("e2fsck reports block %d at record %d, check does not:\n%s", b, want, out)
				}
			}
		})
	}
}

// freeInode is a free inode of ino's group: one the group's descriptor does not leave among its
// never-used ones if there is one, else the first never-used one; 0 if none.
func freeInode(fs *ext3fs.FS, ino uint32) uint32 {
	sb := fs.SB
	g := (ino - 1) / sb.InodesPerGroup
	d := fs.Groups[g]
	bm := make([]byte, fs.BlockSize())
	if fs.ReadBlock(d.InodeBitmap, bm) != nil {
		return 0
	}
	for k := sb.InodesPerGroup - d.ItableUnused; k > 0; k-- {
		i := k - 1
		n := g*sb.InodesPerGroup + i + 1
		if n >= sb.FirstIno && bm[i/8]&(1<<(i%8)) == 0 {
			return n
		}
	}
	if d.ItableUnused > 0 {
		return g*sb.InodesPerGroup + sb.InodesPerGroup - d.ItableUnused + 1
	}
	return 0
}

// TestFastCommitNotReplayable: a fast commit that ext3fs's replay cannot apply as the kernel
// would (here an INODE record whose logged extent tree is made deeper than the root, whose
// nodes only a full commit writes) is no state to check: that check point is skipped and said
// so in Errors, nothing is found, and the checks after the next full commit go on as before.
func TestFastCommitNotReplayable(t *testing.T) {
	disk, recs := capture(t, "../../fixtures/real/fastcommit-ext4-4k")
	c0, _, err := Run(disk, int64(len(disk)), &sliceLog{recs: recs})
	if err != nil {
		t.Fatal(err)
	}
	var site *fcSite
	var rec ext3fs.FCRecord
	for _, s := range fcSites(t, disk, recs) {
		for _, r := range s.records {
			if in, err := ext3fs.ParseInode(r.RawInode); site == nil && r.Tag == ext3fs.FCTagInode && err == nil && in.UsesExtents() && !in.HasInlineData() {
				site, rec = &s, r
			}
		}
	}
	if site == nil {
		t.Fatal("no fast commit with an extent-mapped inode in one area block")
	}
	recs[site.rec].Data = bytes.Clone(recs[site.rec].Data)
	b := recs[site.rec].Data[site.off:][:c0.bs]
	// eh_depth, in the extent header at i_block (0x28) of the logged inode.
	binary.LittleEndian.PutUint16(b[rec.Offset+ext3fs.FCTagHeaderSize+4+0x28+6:], 1)
	fcTailCRC(b, site.records)
	c, findings, err := Run(disk, int64(len(disk)), &sliceLog{recs: recs})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("finding: %+v", f)
	}
	checked0, _ := c0.FastCommits()
	checked, skipped := c.FastCommits()
	t.Logf("errors: %q", c.Errors())
	if skipped == 0 || checked+skipped < checked0 {
		t.Errorf("%d fast commits checked and %d skipped, unaltered %d checked", checked, skipped, checked0)
	}
	want := fmt.Sprintf("fast commit at record %d not checked: ", recs[site.rec].Index)
	if !slices.ContainsFunc(c.Errors(), func(e string) bool { return strings.HasPrefix(e, want) && strings.Contains(e, "depth 1") }) {
		t.Errorf("Errors do not say %q...depth 1: %q", want, c.Errors())
	}
	if c.Checks()+skipped != c0.Checks() {
		t.Errorf("%d checks and %d skipped, %d checks unaltered", c.Checks(), skipped, c0.Checks())
	}
}

// TestFastCommitBlockUninit: a fast commit whose inode maps a block in a group whose block
// bitmap is still uninitialised (BLOCK_UNINIT) is no state ext3fs's replay gives as the kernel's
// would (the kernel initialises the bitmap and marks the block; ext3fs leaves the group): the
// check is skipped and said, not reported as a block owned but free. A hand-made log over a new
// 16 MiB ext4 (1 KiB blocks, 16 groups): the journal superblock made live for tid 5, then one
// fast commit of tid 5 whose INODE record moves the root directory's block into such a group;
// and, as a control, the same fast commit with the inode unchanged, which is checked.
func TestFastCommitBlockUninit(t *testing.T) {
	ext3fstest.Need(t)
	p := filepath.Join(t.TempDir(), "img")
	cmd := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-O", "fast_commit", "-g", "1024", p, "16M")
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	base, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := ext3fs.Open(bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	g := -1
	for i := range fs.Groups {
		if fs.Groups[i].Flags&ext3fs.BGBlockUninit != 0 {
			g = i
			break
		}
	}
	if g < 0 {
		t.Fatal("no BLOCK_UNINIT group")
	}
	if in, err := fs.ReadInode(ext3fs.RootIno); err != nil || !in.UsesExtents() {
		t.Fatalf("root inode not extent-mapped (%v)", err)
	}
	area, jsbBlock, jsb, err := ext3fstest.FastCommitArea(fs, base)
	if err != nil || len(area) == 0 {
		t.Fatalf("fast-commit area: %v", err)
	}
	bs := fs.BlockSize()
	const tid = 5
	j := *jsb
	j.Start, j.Sequence = j.First, tid
	jb := bytes.Clone(base[int(jsbBlock)*bs:][:bs])
	copy(jb, j.Marshal()[:ext3fs.JournalSuperblockSize])
	write := func(i int64, blk uint64, data []byte) blklog.Record {
		return blklog.Record{Index: i, Type: blklog.TypeWrite, Sector: blk * uint64(bs) / blklog.SectorSize, Length: uint32(len(data)), Data: data}
	}
	target := fs.SB.GroupFirstBlock(uint32(g)) + 100
	for _, moved := range []bool{false, true} {
		raw := ext3fstest.FCInodeRecord(fs, base, ext3fs.RootIno)
		if moved {
			// i_block: the extent header (12 bytes), then the one extent: ee_block, ee_len,
			// ee_start_hi, ee_start_lo.
			binary.LittleEndian.PutUint32(raw[0x28+12+8:], uint32(target))
		}
		var b ext3fstest.FCBuilder
		b.Head(tid)
		b.Inode(ext3fs.RootIno, raw)
		recs := []blklog.Record{write(1, jsbBlock, jb), write(2, area[0], b.Block(tid, bs, false))}
		c, findings, err := Run(scenario.Disk(base), int64(len(base)), &sliceLog{recs: recs})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			t.Errorf("moved %v: finding: %+v", moved, f)
		}
		checked, skipped := c.FastCommits()
		if !moved {
			if checked != 1 || skipped != 0 {
				t.Errorf("control: %d fast commits checked, %d skipped, want 1 and 0: %q", checked, skipped, c.Errors())
			}
			continue
		}
		if checked != 0 || skipped != 1 {
			t.Errorf("%d fast commits checked, %d skipped, want 0 and 1", checked, skipped)
		}
		want := fmt.Sprintf("fast commit at record 2 not checked: inode 2 maps block %d in group %d, whose block bitmap is uninitialised", target, g)
		if !slices.ContainsFunc(c.Errors(), func(e string) bool { return strings.HasPrefix(e, want) }) {
			t.Errorf("Errors do not say %q: %q", want, c.Errors())
		}
	}
}
