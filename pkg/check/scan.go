package check

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/ext3replay/ext3replay/internal/inotable"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// problem is one inconsistency found by a scan. key identifies it across scans.
type problem struct {
	key, kind, strct, path, msg string
	block                       uint64
	ino                         uint32
	group                       int
	evidence                    []uint64 // blocks whose last write introduced it
}

const metaOwner = ^uint32(0) // a block of the file system's own structures

// scan is the result of checking the file system once: its problems and who owned each block
// (kept so that the next scan can name the last owner of a block leaked since).
type scan struct {
	problems []problem
	owner    []uint32
	inoEv    inotable.Table[[]uint64] // inode -> its inode-table block and map blocks
	refBlk   inotable.Table[[]uint64] // inode -> the directory blocks naming it
	locs     [][3]uint64              // group -> where its descriptor puts its block bitmap, inode bitmap, inode table
	// noCounts: the group descriptors' and superblock's counts were not compared (a state with
	// fast commits replayed, whose replay recomputes them: fastcommit.go).
	noCounts bool
}

// Group structures a descriptor places (the index into scan.locs), or any of them.
const (
	locBlockBitmap = 0
	locInodeBitmap = 1
	locAny         = -1
)

// moved is the descriptor block of group g when the descriptor moved the group's structure k
// (locAny: any of them) since the previous check: then the descriptor, not the structure's
// content, made what the structure now says.
func (s *scanner) moved(g, k int) []uint64 {
	if s.prev == nil || g >= len(s.prev.locs) || g >= len(s.out.locs) {
		return nil
	}
	a, b := s.prev.locs[g], s.out.locs[g]
	if (k == locAny && a == b) || (k != locAny && a[k] == b[k]) {
		return nil
	}
	return []uint64{s.gdtBlock(g)}
}

// movedAny is the descriptor blocks of every group moved since the previous check.
func (s *scanner) movedAny() []uint64 {
	var out []uint64
	for g := range s.out.locs {
		out = append(out, s.moved(g, locAny)...)
	}
	return out
}

// entryRef is one directory entry naming an inode.
type entryRef struct {
	dir   uint32
	block uint64
	name  string
}

// scanner is the state of one scan, e2fsck's passes 1 to 5 in small. What it reads from the
// disk it keeps in the cache, and reads again only where a block changed (see cache).
type scanner struct {
	fs     *ext3fs.FS
	sb     *ext3fs.Superblock
	bs     int
	prev   *scan
	out    *scan
	cache  *cache
	chg    func(b uint64) bool // block changed since the cache was filled
	used   []bool              // inode in use (links > 0, reserved, or an orphan being deleted)
	linked []bool              // links > 0
	isDir  []bool
	links  []uint16
	dirs   []uint32
	xattr  map[uint64]bool
	refs   inotable.Table[[]entryRef] // the entries naming each inode
	dotdot map[uint32]uint32
	parent inotable.Table[entryRef] // first name of each inode, for paths (dir 0: none)
	ibm    map[uint32][]byte        // inode bitmap per group (nil: uninitialised)
	late   []problem                // per-inode problems, given their path once the names are known
	preDir uint32                   // s_prealloc_dir_blocks
	// xattrSeen: the xattr blocks checked in this scan (shared blocks once)
	xattrSeen map[uint64]bool
	// skipped: blocks of extents skipped as out of order, and whose they were
	skipped map[uint64]uint32
}

func runScan(view *Checker, prev *scan, c *cache, changed func(uint64) bool) *scan {
	out := &scan{noCounts: view.fcLive}
	fs, err := ext3fs.OpenWith(view, ext3fs.Options{InlineData: true})
	if err != nil {
		out.problems = append(out.problems, problem{key: "decode superblock", kind: "decode", strct: "superblock",
			group: -1, msg: fmt.Sprintf("the superblock or group descriptors cannot be read: %v", err), evidence: []uint64{0, 1}})
		return out
	}
	if g := geometryOf(fs.SB); g != c.geom {
		// A new geometry (or the first scan): nothing read before can be trusted.
		c.reset(g)
	}
	c.scans++
	s := &scanner{fs: fs, sb: fs.SB, bs: fs.BlockSize(), prev: prev, out: out, cache: c, chg: changed, xattr: map[uint64]bool{},
		dotdot: map[uint32]uint32{}, ibm: map[uint32][]byte{}}
	var pd [1]byte
	if _, err := view.ReadAt(pd[:], ext3fs.SuperblockOffset+0xCD); err == nil {
		s.preDir = uint32(pd[0])
	}
	n := s.sb.InodesCount + 1
	s.used, s.linked, s.isDir, s.links = cleared(&c.used, n), cleared(&c.linked, n), cleared(&c.isDir, n), cleared(&c.links, n)
	out.owner = make([]uint32, s.sb.BlocksCount)
	for g := range fs.Groups {
		d := &fs.Groups[g]
		out.locs = append(out.locs, [3]uint64{d.BlockBitmap, d.InodeBitmap, d.InodeTable})
	}
	s.markMetadata()
	s.inodes()
	s.directories()
	s.linkCounts()
	s.bitmaps()
	s.checksums()
	for _, p := range s.late {
		p.path = s.path(p.ino)
		s.add(p)
	}
	return out
}

func (s *scanner) add(p problem) { s.out.problems = append(s.out.problems, p) }

func (s *scanner) csumGroups() bool { return s.sb.HasGDTCsum() || s.sb.HasMetadataCsum() }

func (s *scanner) groupOf(b uint64) int {
	return int((b - uint64(s.sb.FirstDataBlock)) / uint64(s.sb.BlocksPerGroup))
}

func (s *scanner) gdtBlock(g int) uint64 {
	return s.fs.DescBlock(uint64(g) / uint64(s.bs/s.sb.DescSize()))
}

// groupMeta calls fn for the blocks of group g's own structures as e2fsck reserves them
// (ext2fs_reserve_super_and_bgd, then its bitmaps and inode table wherever they are).
func (s *scanner) groupMeta(g uint32, fn func(b uint64)) {
	sb := s.sb
	if sb.GroupHasSuper(g) {
		first := sb.GroupFirstBlock(g)
		fn(first)
		if !sb.HasMetaBG() {
			for i := uint64(0); i < sb.GDTBlocks()+uint64(sb.ReservedGDTBlocks); i++ {
				fn(first + 1 + i)
			}
		}
	}
	if sb.HasMetaBG() {
		per := uint32(s.bs / sb.DescSize())
		if r := g % per; r == 0 || r == 1 || r == per-1 {
			b := sb.GroupFirstBlock(g)
			if sb.GroupHasSuper(g) {
				b++
			}
			fn(b)
		}
	}
	d := &s.fs.Groups[g]
	fn(d.BlockBitmap)
	fn(d.InodeBitmap)
	for i := uint64(0); i < sb.InodeTableBlocks(); i++ {
		fn(d.InodeTable + i)
	}
}

func (s *scanner) claim(b uint64, ino uint32) {
	if b >= uint64(len(s.out.owner)) {
		return
	}
	if o := s.out.owner[b]; o != 0 && o != ino {
		s.add(problem{key: fmt.Sprintf("dup %d", b), kind: "block-owners", strct: fmt.Sprintf("block %d", b), block: b,
			ino: ino, group: s.groupOf(b), msg: fmt.Sprintf("Multiply-claimed block %d: owned by %s and %s", b, ownerName(o), ownerName(ino)),
			evidence: append(s.evidenceOf(o), s.evidenceOf(ino)...)})
		return
	}
	s.out.owner[b] = ino
}

func ownerName(o uint32) string {
	if o == metaOwner {
		return "the file system's own structures"
	}
	return fmt.Sprintf("inode %d", o)
}

func (s *scanner) evidenceOf(o uint32) []uint64 {
	if o == metaOwner {
		return nil
	}
	return s.out.inoEv.Get(o)
}

func (s *scanner) markMetadata() {
	if s.sb.FirstDataBlock > 0 {
		s.out.owner[0] = metaOwner // the boot block of 1 KiB file systems, outside every group
	}
	for g := uint32(0); g < uint32(len(s.fs.Groups)); g++ {
		s.groupMeta(g, func(b uint64) { s.claim(b, metaOwner) })
	}
}

// inodes is pass 1: every inode in use, the blocks it owns, the directories to read. An inode
// whose table block and map blocks did not change since the last scan is not read again.
func (s *scanner) inodes() {
	sb := s.sb
	orphans := s.orphans()
	ipb := uint32(s.bs / sb.InodeSize())
	buf := make([]byte, s.bs)
	bufBlk := ^uint64(0)
	for g := range s.fs.Groups {
		d := &s.fs.Groups[g]
		if s.csumGroups() && d.Flags&ext3fs.BGInodeUninit != 0 {
			continue
		}
		bm := make([]byte, s.bs)
		if err := s.fs.ReadBlock(d.InodeBitmap, bm); err == nil {
			s.ibm[uint32(g)] = bm
		}
		n := sb.InodesPerGroup
		if s.csumGroups() {
			n -= min(d.ItableUnused, n)
		}
		ibm := s.ibm[uint32(g)]
		var whole, free bool // the table block being walked is walked whole; its inodes so far are free
		for k := uint32(0); k < n; k++ {
			ino := uint32(g)*sb.InodesPerGroup + k + 1
			blk, _ := s.fs.InodeLocation(ino)
			if k%ipb == 0 {
				whole, free = k+ipb <= n, true
				if whole && len(orphans) == 0 && s.cache.freeBlocks.has(blk) && !s.chg(blk) {
					k += ipb - 1 // nothing to add for any of them (addInode of a free inode with nothing to report)
					continue
				}
			}
			bit := ibm != nil && ibm[k/8]&(1<<(k%8)) != 0
			r := s.cache.inodes.Get(ino)
			if r == nil || !s.valid(r.deps, blk) || r.orphan != (r.candidate && bit && orphans[ino]) || r.listed != orphans[ino] {
				if bufBlk != blk {
					bufBlk = ^uint64(0)
					if err := s.fs.ReadBlock(blk, buf); err != nil {
						free = false
						s.cache.freeBlocks.set(blk, false) // not marked free by an earlier read
						continue
					}
					bufBlk = blk
				}
				r = s.readInode(g, ino, buf, bit, orphans, r)
				s.cache.inodes.Set(ino, r)
				s.cache.reads++
			}
			s.addInode(ino, r)
			free = free && r.quiet(blk)
			if whole && k%ipb == ipb-1 {
				s.cache.freeBlocks.set(blk, free)
			}
		}
	}
	for b := range s.xattr {
		if o := s.out.owner[b]; o == 0 {
			s.out.owner[b] = metaOwner - 1 // shared xattr block: owned, by any number of inodes
		}
	}
}

// valid reports that nothing a cached result was read from changed: its first dependency is
// still where the structure is (blk), and no dependency was written since.
func (s *scanner) valid(deps []uint64, blk uint64) bool {
	if len(deps) == 0 || deps[0] != blk {
		return false
	}
	for _, b := range deps {
		if s.chg(b) {
			return false
		}
	}
	return true
}

// addInode takes one inode's pass-1 result into this scan.
func (s *scanner) addInode(ino uint32, r *inodeRes) {
	s.late = append(s.late, r.problems...)
	if !r.used {
		return
	}
	s.used[ino] = true
	s.links[ino] = r.links
	s.linked[ino] = r.links > 0
	if !r.decoded {
		return
	}
	s.out.inoEv.Set(ino, r.ev)
	if r.isDir {
		s.isDir[ino] = true
		s.dirs = append(s.dirs, ino)
	}
	if r.xattr != 0 && r.xattr < s.sb.BlocksCount {
		s.xattr[r.xattr] = true
		if r.links > 0 {
			s.xattrChecksum(r.xattr)
		}
	}
	for _, rn := range r.owned {
		for b := rn.start; b < rn.start+uint64(rn.n); b++ {
			s.claim(b, ino)
		}
	}
	for _, b := range r.dropped {
		if s.skipped == nil {
			s.skipped = map[uint64]uint32{}
		}
		s.skipped[b] = ino
	}
}

// inodeRes is what pass 1 learnt from one inode, valid while none of deps changes.
type inodeRes struct {
	deps      []uint64 // its inode-table block, then its map blocks (and the orphan file's blocks)
	candidate bool     // links 0, not reserved, mode set: in use only as an orphan
	orphan    bool     // decided an orphan (with the bitmap and orphan list of the scan that read it)
	listed    bool     // on the orphan list or in the orphan file then (its size is not checked)
	used      bool
	decoded   bool
	isDir     bool
	links     uint16
	xattr     uint64
	ev        []uint64 // evidence: table block and map blocks
	owned     []run
	gen       uint32
	size      uint64
	flags     uint32
	inline    bool
	dirBlocks []ext3fs.BlockRef // a directory's blocks within i_size
	problems  []problem
	// idxKeys: for each extent node below the root, its index entry's key and its own first
	// key, to tell which of the two a mismatch came from when one of them changes.
	idxKeys map[uint64][2]int64
	// dropped: blocks of extents e2fsck would skip (out of order), and the nodes holding them
	dropped []uint64
	dropEv  []uint64
}

// run is n consecutive blocks from start.
type run struct {
	start uint64
	n     uint32
}

// readInode decodes inode ino from its table block buf and checks what is its own: the inode
// checksum, its map (block pointers, extent tree order), i_blocks, i_size.
func (s *scanner) readInode(g int, ino uint32, buf []byte, bit bool, orphans map[uint32]bool, old *inodeRes) *inodeRes {
	sb := s.sb
	blk, off := s.fs.InodeLocation(ino)
	raw := buf[off : off+sb.InodeSize()]
	r := &inodeRes{deps: []uint64{blk}}
	if sb.HasMetadataCsum() {
		if c, err := sb.InodeChecksum(ino, raw); err == nil && !c.OK() {
			r.problems = append(r.problems, csumProblem(c, int64(blk)*int64(s.bs)+int64(off), int64(s.bs)))
		}
	}
	links := binary.LittleEndian.Uint16(raw[0x1A:])
	mode := binary.LittleEndian.Uint16(raw[0:])
	reserved := ino < sb.FirstIno
	r.candidate = links == 0 && !reserved && mode != 0
	r.orphan = r.candidate && bit && orphans[ino]
	r.listed = orphans[ino]
	if links == 0 && !reserved && !r.orphan {
		if !r.candidate && !r.listed && len(r.problems) == 0 {
			return s.cache.unusedIn(blk)
		}
		return r
	}
	r.used, r.links = true, links
	if reserved && mode == 0 {
		return r
	}
	var in ext3fs.Inode
	pos := int64(blk)*int64(s.bs) + int64(off)
	if err := s.fs.DecodeInodeInto(ino, raw, pos, &in); err != nil {
		r.problems = append(r.problems, problem{key: fmt.Sprintf("decode inode %d", ino), kind: "decode", strct: fmt.Sprintf("inode %d", ino), ino: ino,
			group: g, msg: fmt.Sprintf("Inode %d cannot be decoded: %v", ino, err), evidence: []uint64{blk}})
		return r
	}
	r.decoded = true
	r.ev = []uint64{blk}
	r.gen, r.size, r.flags, r.inline = in.Generation, in.Size, in.Flags, in.HasInlineData()
	r.isDir = in.Type() == ext3fs.TypeDir && links > 0
	r.xattr = in.FileACL
	if ino == 7 { // resize inode: only its DIND block; the rest is reserved GDT (e2fsck's rule)
		if dind := uint64(binary.LittleEndian.Uint32(raw[0x28+13*4:])); dind != 0 {
			r.owned = []run{{dind, 1}}
		}
		return r
	}
	nblk := uint64(0)
	last := int64(-1)
	nbDir := (in.Size + uint64(s.bs) - 1) / uint64(s.bs)
	orphanFile := ino == sb.OrphanFileInum && sb.FeatureCompat&ext3fs.CompatOrphanFile != 0
	err := s.fs.WalkBlocks(&in, func(br ext3fs.BlockRef) error {
		if br.Kind != ext3fs.BlockData {
			r.ev = append(r.ev, br.Phys)
			r.deps = append(r.deps, br.Phys)
		} else {
			last = max(last, int64(br.Logical))
			if r.isDir && br.Logical < nbDir && !r.inline {
				r.dirBlocks = append(r.dirBlocks, br)
			}
			if orphanFile && links > 0 {
				r.deps = append(r.deps, br.Phys)
			}
		}
		if k := len(r.owned) - 1; k >= 0 && r.owned[k].start+uint64(r.owned[k].n) == br.Phys && r.owned[k].n < 1<<31 {
			r.owned[k].n++
		} else {
			r.owned = append(r.owned, run{br.Phys, 1})
		}
		nblk++
		return nil
	})
	if err != nil {
		r.owned = nil
		r.dirBlocks = nil
		r.problems = append(r.problems, problem{key: fmt.Sprintf("map inode %d", ino), kind: "decode", strct: fmt.Sprintf("inode %d", ino), ino: ino,
			group: g, msg: fmt.Sprintf("Inode %d has a block map e2fsck would repair: %v", ino, err), evidence: r.ev})
		return r
	}
	lastInit := last
	if in.UsesExtents() {
		var dropped map[uint64]bool
		last, lastInit, dropped = s.extentTree(ino, &in, r, old)
		if len(dropped) > 0 {
			for b := range dropped {
				r.dropped = append(r.dropped, b)
			}
			slices.Sort(r.dropped)
			// e2fsck -n skips the extents it finds out of order: their blocks are
			// nobody's, and not counted in i_blocks.
			var owned []run
			for _, rn := range r.owned {
				for b := rn.start; b < rn.start+uint64(rn.n); b++ {
					if dropped[b] {
						nblk--
						continue
					}
					if k := len(owned) - 1; k >= 0 && owned[k].start+uint64(owned[k].n) == b {
						owned[k].n++
					} else {
						owned = append(owned, run{b, 1})
					}
				}
			}
			r.owned = owned
		}
	}
	if in.FileACL != 0 {
		nblk++
	}
	// i_blocks counts every block the inode owns, map blocks and its xattr block
	// included, in 512-byte units (e2fsck pass 1).
	if want := nblk * uint64(s.bs/512); in.Blocks512 != want {
		ev := r.ev
		if len(r.dropped) > 0 {
			ev = r.dropEv // counted short by the extents skipped
		}
		r.problems = append(r.problems, problem{key: fmt.Sprintf("iblocks %d", ino), kind: "inode", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: g,
			msg: fmt.Sprintf("Inode %d, i_blocks is %d, should be %d", ino, in.Blocks512, want), evidence: ev})
	}
	if links > 0 && sb.HasMetadataCsum() && orphanFile {
		bb := make([]byte, s.bs)
		for _, rn := range r.owned {
			for b := rn.start; b < rn.start+uint64(rn.n); b++ {
				if s.fs.ReadBlock(b, bb) == nil {
					if c, err := sb.OrphanBlockChecksum(ino, in.Generation, b, bb); err == nil && !c.OK() {
						r.problems = append(r.problems, csumProblem(c, int64(b)*int64(s.bs), int64(s.bs)))
					}
				}
			}
		}
	}
	if !orphans[ino] && !r.orphan {
		s.sizeCheck(ino, g, &in, last, lastInit, r)
	}
	return r
}

// sizeCheck is e2fsck pass 1's i_size rule (check_blocks, PR_1_BAD_I_SIZE): a directory's size
// is a whole number of blocks matching its last block (up to s_prealloc_dir_blocks more
// blocks); a file may not have initialised blocks wholly past i_size (unwritten extents past it
// are fallocate's KEEP_SIZE and are fine; EOFBLOCKS_FL is not consulted, as e2fsck no longer
// does), nor a size its map cannot reach.
func (s *scanner) sizeCheck(ino uint32, g int, in *ext3fs.Inode, last, lastInit int64, r *inodeRes) {
	bs := uint64(s.bs)
	t := in.Type()
	if in.HasInlineData() || (t != ext3fs.TypeDir && t != ext3fs.TypeRegular) {
		return
	}
	bad := ""
	if t == ext3fs.TypeDir {
		nblock := int64(in.Size / bs)
		switch {
		case in.Size%bs != 0:
			bad = "not a multiple of the block size"
		case nblock > last+1:
			bad = fmt.Sprintf("past its last block (%d)", last)
		case nblock < last+1 && uint64(last+1-nblock) > uint64(s.preDir):
			bad = fmt.Sprintf("short of its last block (%d)", last)
		}
	} else {
		bits := uint(10 + s.sb.LogBlockSize)
		switch {
		case lastInit >= 0 && in.Size < uint64(lastInit)*bs:
			bad = fmt.Sprintf("short of its last initialised block (%d)", lastInit)
		case !in.UsesExtents() && in.Size > maxMappedSize(bits):
			bad = "beyond what a block-mapped file can reach"
		case in.UsesExtents() && in.Size > (uint64(1)<<(32+bits))-1:
			bad = "beyond what an extent-mapped file can reach"
		}
	}
	if bad != "" {
		r.problems = append(r.problems, problem{key: fmt.Sprintf("isize %d", ino), kind: "inode", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: g,
			msg:      fmt.Sprintf("Inode %d, i_size is %d, should be %d (%s)", ino, in.Size, uint64(last+1)*bs, bad),
			evidence: r.ev})
	}
}

// maxMappedSize is e2fsck's ext2_max_sizes: 12 direct blocks plus single, double and triple
// indirect, in bytes.
func maxMappedSize(bits uint) uint64 {
	bpp := uint64(1) << (bits - 2)
	return (12 + bpp + bpp*bpp + bpp*bpp*bpp) << bits
}

// extentTree checks an extent tree's order as e2fsck's scan_extent_node does: in each node the
// logical starts increase, no extent overlaps one before it (in the whole file), each extent
// lies within its index entry's range, no leaf extent is empty, and each index entry's key is
// the first key of the node it points to. It also checks extent blocks' checksums. It returns
// the last mapped and the last initialised (not unwritten) logical block of the extents e2fsck
// keeps (-1 if none), and the blocks of those it skips. The map was walked without error
// first, so the tree has no loops. A problem is named by the node holding the entries (the
// inode's table block for the root); a key mismatch by whichever of the two keys changed since
// the inode was last read (old), both if that cannot tell.
func (s *scanner) extentTree(ino uint32, in *ext3fs.Inode, r *inodeRes, old *inodeRes) (int64, int64, map[uint64]bool) {
	last, lastInit, prevLast := int64(-1), int64(-1), int64(-1)
	bs := uint64(s.bs)
	eof := int64((in.Size+bs-1)/bs) - 1
	table := r.ev[0]
	var dropped map[uint64]bool
	reported := map[string]bool{}
	bad := func(key, msg string, blk uint64, ev ...uint64) {
		if reported[key] {
			return
		}
		reported[key] = true
		r.problems = append(r.problems, problem{key: fmt.Sprintf("%s %d", key, ino), kind: "extents", strct: fmt.Sprintf("inode %d", ino),
			ino: ino, block: blk, group: -1, msg: msg, evidence: ev})
	}
	var node func(b []byte, phys uint64, lo, hi uint64, level int)
	node = func(b []byte, phys uint64, lo, hi uint64, level int) {
		_, exts, idx, err := ext3fs.ParseExtentNode(b)
		if err != nil {
			return // WalkBlocks read the same node without error: cannot happen
		}
		here := phys
		if here == 0 {
			here = table
		}
		for _, e := range exts {
			if e.Len == 0 {
				bad("extent-zero", fmt.Sprintf("Inode %d has zero length extent (logical block %d, physical block %d)", ino, e.Block, e.Start), here, here)
				continue
			}
			lastL := int64(e.Block) + int64(e.Len) - 1
			skip := true
			switch {
			case int64(e.Block) <= prevLast || uint64(e.Block) < lo:
				bad("extent-order", fmt.Sprintf("Inode %d has out of order extents (invalid logical block %d, physical block %d, len %d)", ino, e.Block, e.Start, e.Len), here, here)
			case hi != 0 && uint64(lastL) > hi && !(e.Unwritten && lastL > eof):
				bad("extent-end", fmt.Sprintf("Inode %d, end of extent exceeds allowed value (logical block %d, physical block %d, len %d)", ino, e.Block, e.Start, e.Len), here, here)
			default:
				skip = false
			}
			if skip {
				r.dropEv = append(r.dropEv, here)
				if dropped == nil {
					dropped = map[uint64]bool{}
				}
				for k := uint64(0); k < uint64(e.Len); k++ {
					dropped[e.Start+k] = true
				}
				continue
			}
			prevLast = max(prevLast, lastL)
			last = max(last, lastL)
			if !e.Unwritten {
				lastInit = max(lastInit, lastL)
			}
		}
		child := make([]byte, s.bs)
		for i, x := range idx {
			if i > 0 && x.Block < idx[i-1].Block {
				bad("extent-order", fmt.Sprintf("Inode %d has out of order extents (invalid logical block %d, physical block %d)", ino, x.Block, x.Leaf), here, here)
			}
			end := hi
			if i+1 < len(idx) {
				end = uint64(idx[i+1].Block)
			}
			if s.fs.ReadBlock(x.Leaf, child) != nil {
				continue
			}
			if s.sb.HasMetadataCsum() && r.links > 0 {
				if c, err := s.sb.ExtentBlockChecksum(ino, in.Generation, child); err == nil && !c.OK() {
					p := csumProblem(c, int64(x.Leaf)*int64(s.bs), int64(s.bs))
					p.ino = ino
					p.strct = fmt.Sprintf("extent block %d of inode %d", x.Leaf, ino)
					r.problems = append(r.problems, p)
				}
			}
			h, ce, ci, err := ext3fs.ParseExtentNode(child)
			if err != nil {
				continue
			}
			first := int64(-1)
			if h.Entries > 0 && len(ce) > 0 {
				first = int64(ce[0].Block)
			} else if len(ci) > 0 {
				first = int64(ci[0].Block)
			}
			if r.idxKeys == nil {
				r.idxKeys = map[uint64][2]int64{}
			}
			r.idxKeys[x.Leaf] = [2]int64{int64(x.Block), first}
			if first >= 0 && first != int64(x.Block) {
				ev := []uint64{here, x.Leaf}
				if k, ok := old.keys(x.Leaf); ok {
					switch {
					case k[0] == int64(x.Block) && k[1] != first:
						ev = ev[1:] // the node's first key moved, its index entry did not
					case k[1] == first && k[0] != int64(x.Block):
						ev = ev[:1]
					}
				}
				bad(fmt.Sprintf("extent-index %d", x.Leaf), fmt.Sprintf("Interior extent node level %d of inode %d: logical start %d does not match logical start %d at next level (block %d)", level, ino, x.Block, first, x.Leaf), x.Leaf, ev...)
			}
			node(child, x.Leaf, uint64(x.Block), end, level+1)
		}
	}
	node(in.BlockBytes[:], 0, 0, 0, 0)
	return last, lastInit, dropped
}

// keys is what the inode's last read found for the extent node at leaf (see idxKeys).
func (r *inodeRes) keys(leaf uint64) ([2]int64, bool) {
	if r == nil {
		return [2]int64{}, false
	}
	k, ok := r.idxKeys[leaf]
	return k, ok
}

// csumProblem is a checksum that does not match, for the structure whose device offset is start.
func csumProblem(c ext3fs.Checksum, start, bs int64) problem {
	b := uint64(start / bs)
	var ino uint32
	if n, err := fmt.Sscanf(c.Struct, "inode %d", &ino); n != 1 || err != nil {
		ino = 0
	}
	return problem{key: fmt.Sprintf("csum %s %d", c.Struct, start), kind: "checksum", strct: c.Struct, block: b, ino: ino, group: -1,
		msg:      fmt.Sprintf("%s at block %d fails its checksum (stored %#x, computed %#x): e2fsck: %s", c.Struct, b, c.Stored, c.Computed, e2fsckCsum(c.Struct)),
		evidence: []uint64{b}}
}

// xattrChecksum checks an xattr block's checksum once per scan, reading it again only if it
// changed.
func (s *scanner) xattrChecksum(b uint64) {
	if !s.sb.HasMetadataCsum() || s.xattrSeen[b] {
		return
	}
	if s.xattrSeen == nil {
		s.xattrSeen = map[uint64]bool{}
	}
	s.xattrSeen[b] = true
	ps, ok := s.cache.xattr[b]
	if !ok || s.chg(b) {
		ps = nil
		buf := make([]byte, s.bs)
		if s.fs.ReadBlock(b, buf) == nil {
			if c, err := s.sb.XattrBlockChecksum(b, buf); err == nil && !c.OK() {
				ps = append(ps, csumProblem(c, int64(b)*int64(s.bs), int64(s.bs)))
			}
		}
		s.cache.xattr[b] = ps
		s.cache.reads++
	}
	s.late = append(s.late, ps...)
}

// orphans are the inodes on the orphan list (s_last_orphan, chained through i_dtime) or in the
// orphan file: unlinked but still open, their blocks still theirs until the last close.
func (s *scanner) orphans() map[uint32]bool {
	out := map[uint32]bool{}
	for ino, n := s.sb.LastOrphan, 0; ino != 0 && ino <= s.sb.InodesCount && n < 1<<16 && !out[ino]; n++ {
		out[ino] = true
		in, err := s.fs.ReadInode(ino)
		if err != nil {
			break
		}
		ino = in.Dtime
	}
	if s.sb.OrphanFileInum != 0 && s.sb.OrphanFileInum <= s.sb.InodesCount {
		in, err := s.fs.ReadInode(s.sb.OrphanFileInum)
		if err == nil {
			buf := make([]byte, s.bs)
			_ = s.fs.WalkBlocks(in, func(r ext3fs.BlockRef) error {
				if r.Kind != ext3fs.BlockData || s.fs.ReadBlock(r.Phys, buf) != nil {
					return nil
				}
				if ob, err := ext3fs.ParseOrphanBlock(buf); err == nil {
					for _, i := range ob.Inodes {
						out[i] = true
					}
				}
				return nil
			})
		}
	}
	return out
}

// directories is pass 2: the structure of every directory block and what its entries name,
// and the order and hashes of htree directories. A directory block that did not change since
// the last scan (read as the same block of the same directory) is not read again.
func (s *scanner) directories() {
	for _, d := range s.dirs {
		r := s.cache.inodes.Get(d)
		blk, _ := s.fs.InodeLocation(d)
		if r.inline {
			s.inlineDir(d, blk)
			continue
		}
		htree := s.sb.HasDirIndex() && r.flags&ext3fs.InodeIndexFl != 0
		hv := -1
		blocks := make(map[uint64]*dirBlockRes, len(r.dirBlocks))
		for _, br := range r.dirBlocks {
			db := s.dirBlock(d, r, br, htree, hv)
			blocks[br.Logical] = db
			if htree && br.Logical == 0 && db.root != nil {
				hv = int(db.root.HashVersion)
				if hv <= hashTEA && s.sb.Flags&sbFlagUnsignedHash != 0 {
					hv += 3
				}
				if r.flags&(inodeCasefoldFl|inodeEncryptFl) != 0 {
					hv = hashSipHash // keyed by the name's folding or encryption: not checked here
				}
			}
			for _, p := range db.problems {
				s.add(p)
			}
			for _, e := range db.ents {
				switch {
				case e.special != "":
					// The first two entries of block 0 count as '.' and '..' whatever
					// their names (a wrong name is reported with the block).
					if e.special == ".." {
						s.dotdot[d] = e.ino
					}
					if e.ino != 0 {
						s.ref(e.ino, d, br.Phys, e.special)
					}
				case e.ino != 0:
					s.entry(d, br.Phys, e.name, e.ino)
				}
			}
		}
		if htree {
			s.htree(d, r, blocks, hv)
		}
	}
}

// Inode flags the htree check needs.
const (
	inodeEncryptFl  = 0x800
	inodeCasefoldFl = 0x40000000
)

func (s *scanner) inlineDir(d uint32, blk uint64) {
	in, err := s.fs.ReadInode(d)
	if err != nil {
		return
	}
	ents, err := s.fs.ReadDir(in)
	if err != nil {
		s.add(problem{key: fmt.Sprintf("dir %d inline", d), kind: "directory", strct: fmt.Sprintf("directory inode %d", d), ino: d,
			group: -1, msg: fmt.Sprintf("Directory inode %d, inline data: directory corrupted: %v", d, err), evidence: []uint64{blk}})
	}
	// Inline directories keep '..' in the first four bytes, not as entries.
	if data, err := s.fs.ReadInlineData(in); err == nil && len(data) >= 4 {
		s.ref(binary.LittleEndian.Uint32(data), d, blk, "..")
		s.dotdot[d] = binary.LittleEndian.Uint32(data)
	}
	s.ref(d, d, blk, ".")
	for _, e := range ents {
		if e.Name != "." && e.Name != ".." {
			s.entry(d, blk, e.Name, e.Inode)
		}
	}
}

// dirBlockRes is what one directory block holds, valid while the block is unchanged and is
// read as the same block of the same directory with the same hash.
type dirBlockRes struct {
	ino        uint32
	logical    uint64
	gen        uint32
	hv         int
	htree      bool
	ents       []dirEnt // live entries in order, and the first two of block 0 in any case
	problems   []problem
	root       *ext3fs.DxRoot   // htree root (logical 0 of an htree directory)
	node       []ext3fs.DxEntry // an interior index block's entries
	isNode     bool
	minH, maxH uint32       // hash range of the names of a leaf (minH > maxH: none)
	scan       int          // the scan that read it
	was        *dirBlockRes // what the same block of the same directory held before it was read again
}

// htreeSame reports an htree block read in this scan holding the same index entries (or a
// leaf the same hash range) as before, or one not read again at all.
func (s *scanner) htreeSame(db *dirBlockRes) bool {
	if db.scan != s.cache.scans {
		return true
	}
	w := db.was
	if w == nil {
		return false
	}
	if db.root != nil || db.isNode {
		a, b := db.node, w.node
		if db.root != nil {
			if w.root == nil {
				return false
			}
			a, b = db.root.Entries, w.root.Entries
		}
		return slices.Equal(a, b)
	}
	return db.minH == w.minH && db.maxH == w.maxH
}

type dirEnt struct {
	name    string
	ino     uint32
	special string // "." or "..": the first two entries of block 0
}

func (s *scanner) dirBlock(d uint32, r *inodeRes, br ext3fs.BlockRef, htree bool, hv int) *dirBlockRes {
	c := s.cache.dirBlk[br.Phys]
	if c != nil && !s.chg(br.Phys) && c.ino == d && c.logical == br.Logical && c.gen == r.gen && c.hv == hv && c.htree == htree {
		return c
	}
	s.cache.reads++
	db := &dirBlockRes{ino: d, logical: br.Logical, gen: r.gen, hv: hv, htree: htree, minH: ^uint32(0), scan: s.cache.scans}
	if c != nil && c.ino == d && c.logical == br.Logical {
		c.was = nil
		db.was = c
	}
	s.cache.dirBlk[br.Phys] = db
	buf := make([]byte, s.bs)
	if s.fs.ReadBlock(br.Phys, buf) != nil {
		return db
	}
	if s.sb.HasMetadataCsum() {
		c, err := s.sb.DirBlockChecksum(d, r.gen, buf)
		switch {
		case err != nil:
			db.problems = append(db.problems, problem{key: fmt.Sprintf("csum dir %d %d", d, br.Logical), kind: "checksum",
				strct: fmt.Sprintf("directory inode %d block %d", d, br.Phys), block: br.Phys, ino: d, group: -1,
				msg:      fmt.Sprintf("Directory inode %d, block #%d: no checksum: %v (e2fsck: directory has no checksum)", d, br.Logical, err),
				evidence: []uint64{br.Phys}})
		case !c.OK():
			c.Struct = fmt.Sprintf("directory block of inode %d (logical %d)", d, br.Logical)
			p := csumProblem(c, int64(br.Phys)*int64(s.bs), int64(s.bs))
			p.ino = d
			db.problems = append(db.problems, p)
		}
	}
	if htree && br.Logical == 0 {
		root, err := ext3fs.ParseDxRoot(buf)
		if err == nil && root.IndirectLevels >= s.sb.MaxHtreeLevels() {
			err = fmt.Errorf("indirect_levels %d, at most %d allowed", root.IndirectLevels, s.sb.MaxHtreeLevels()-1)
		}
		if err != nil {
			db.problems = append(db.problems, problem{key: fmt.Sprintf("htree root %d", d), kind: "htree", strct: fmt.Sprintf("directory inode %d block %d", d, br.Phys),
				block: br.Phys, ino: d, group: -1, msg: fmt.Sprintf("HTREE directory inode %d has an invalid root node: %v", d, err), evidence: []uint64{br.Phys}})
		} else {
			db.root = root
		}
	} else if htree && binary.LittleEndian.Uint32(buf) == 0 && binary.LittleEndian.Uint16(buf[4:]) == uint16(s.bs) && buf[6] == 0 {
		// An interior index block: an empty entry over the whole block, then the index
		// (e2fsck: DX_DIRBLOCK_NODE, its limit what the block holds).
		if n, err := ext3fs.ParseDxNode(buf); err == nil {
			tail := 0
			if s.sb.HasMetadataCsum() {
				tail = 8
			}
			if int(n.Limit) == (s.bs-8-tail)/8 {
				db.node, db.isNode = n.Entries, true
			}
		}
	}
	ft := s.sb.HasFiletype()
	i := 0
	err := ext3fs.WalkDirBlock(buf, ft, func(e *ext3fs.DirEntry, name []byte) error {
		if br.Logical == 0 && i < 2 {
			want := [2]string{".", ".."}[i]
			if string(name) != want || e.Inode == 0 {
				db.problems = append(db.problems, problem{key: fmt.Sprintf("dir %d %s", d, want), kind: "directory", strct: fmt.Sprintf("directory inode %d block %d", d, br.Phys),
					block: br.Phys, ino: d, group: -1, msg: fmt.Sprintf("Missing '%s' in directory inode %d (first entries are not '.' and '..')", want, d),
					evidence: []uint64{br.Phys}})
			}
			i++
			db.ents = append(db.ents, dirEnt{string(name), e.Inode, want})
			return nil
		}
		i++
		if e.Inode != 0 {
			db.ents = append(db.ents, dirEnt{string(name), e.Inode, ""})
			if hv >= 0 && !db.isNode && br.Logical != 0 {
				if h, ok := dirHash(hv, name, s.sb.HashSeed); ok {
					db.minH, db.maxH = min(db.minH, h), max(db.maxH, h)
				}
			}
		}
		return nil
	})
	if err != nil {
		db.problems = append(db.problems, problem{key: fmt.Sprintf("dir %d block %d", d, br.Logical), kind: "directory", strct: fmt.Sprintf("directory inode %d block %d", d, br.Phys),
			block: br.Phys, ino: d, group: -1, msg: fmt.Sprintf("Directory inode %d, block #%d: directory corrupted: %v", d, br.Logical, err),
			evidence: []uint64{br.Phys}})
	}
	return db
}

// htree checks an indexed directory as e2fsck pass 2 does (parse_int_node and the checks after
// it): each index block's hashes in order and its blocks inside the directory, every block
// referenced once, and each block's names hashing into the range its parent's entry gives it
// ([hash, next entry's hash], 0xfffffffe after the last; the first entry's lower bound is not
// checked). An interior node's range is that of its first and last leaves.
func (s *scanner) htree(d uint32, r *inodeRes, blocks map[uint64]*dirBlockRes, hv int) {
	root := blocks[0]
	if root == nil || root.root == nil {
		return
	}
	numblocks := uint64(0)
	for _, br := range r.dirBlocks {
		numblocks = max(numblocks, br.Logical+1)
	}
	phys := map[uint64]uint64{}
	for _, br := range r.dirBlocks {
		phys[br.Logical] = br.Phys
	}
	refs := map[uint64]int{0: 1}
	hashOK := hv >= 0 && hv != hashSipHash
	report := func(key string, l uint64, msg string, ev ...uint64) {
		s.add(problem{key: fmt.Sprintf("htree %d %d %s", d, l, key), kind: "htree", strct: fmt.Sprintf("directory inode %d block %d", d, phys[l]),
			block: phys[l], ino: d, group: -1, path: "", msg: fmt.Sprintf("Problem in HTREE directory inode %d: block #%d %s", d, l, msg), evidence: ev})
	}
	levels := int(root.root.IndirectLevels)
	// visit checks the index block at logical l (depth 0: the root) and returns its hash range.
	var visit func(l uint64, ents []ext3fs.DxEntry, depth int) (uint32, uint32)
	visit = func(l uint64, ents []ext3fs.DxEntry, depth int) (uint32, uint32) {
		lo, hi := ^uint32(0), uint32(0)
		prev := uint32(0)
		for i, e := range ents {
			h := e.Hash &^ 1
			if i == 0 {
				h = 0
			}
			if h < prev {
				report("order", l, "has an unordered hash table", phys[l])
			}
			prev = h
			lo, hi = min(lo, h), max(hi, h)
			c := uint64(e.Block)
			if c >= numblocks || blocks[c] == nil {
				report(fmt.Sprintf("badblk %d", c), l, fmt.Sprintf("has bad block number %d", c), phys[l])
				continue
			}
			if refs[c]++; refs[c] > 1 {
				report("dupref", c, "referenced twice", phys[l], phys[c])
				continue
			}
			nodeMin, nodeMax := h, uint32(0xfffffffe)
			if i+1 < len(ents) {
				nodeMax = ents[i+1].Hash &^ 1
			}
			var cmin, cmax uint32
			leaf := depth >= levels
			cb := blocks[c]
			if leaf {
				cmin, cmax = cb.minH, cb.maxH
			} else {
				if !cb.isNode {
					report("node", c, "is not an index block", phys[l], phys[c])
					continue
				}
				cmin, cmax = visit(c, cb.node, depth+1)
			}
			if leaf && i == 0 && depth > 0 {
				lo = cmin // a node's range starts at its first leaf's names...
			}
			if leaf && i == len(ents)-1 && depth > 0 {
				hi = cmax // ... and ends at its last leaf's
			}
			if !hashOK || cmin > cmax {
				continue
			}
			// Names out of their range: the keys are to blame if the names' hashes did
			// not change and the keys did, the names if the keys did not.
			ev := []uint64{phys[l], phys[c]}
			switch ps, cs := s.htreeSame(blocks[l]), s.htreeSame(cb); {
			case cs && !ps:
				ev = ev[:1]
			case ps && !cs:
				ev = ev[1:]
			}
			if i > 0 && cmin < nodeMin {
				report("min", c, fmt.Sprintf("has bad min hash (%#x < %#x)", cmin, nodeMin), ev...)
			}
			if cmax > nodeMax {
				report("max", c, fmt.Sprintf("has bad max hash (%#x > %#x)", cmax, nodeMax), ev...)
			}
		}
		return lo, hi
	}
	visit(0, root.root.Entries, 0)
	for l := uint64(1); l < numblocks; l++ {
		if blocks[l] != nil && refs[l] == 0 {
			report("notref", l, "not referenced", phys[0], phys[l])
		}
	}
}

func (s *scanner) ref(ino, dir uint32, blk uint64, name string) {
	if ino > s.sb.InodesCount {
		return // past the inodes (a corrupt '..'): reported where it is read, never counted
	}
	r := s.refs.Ref(ino)
	*r = append(*r, entryRef{dir, blk, name})
}

// entry checks one name (not '.' or '..').
func (s *scanner) entry(d uint32, blk uint64, name string, ino uint32) {
	if ino > s.sb.InodesCount || (ino < s.sb.FirstIno && ino != ext3fs.RootIno) {
		s.add(problem{key: fmt.Sprintf("entry %d %s", d, name), kind: "directory", strct: fmt.Sprintf("directory inode %d block %d", d, blk),
			block: blk, ino: d, group: -1, msg: fmt.Sprintf("Entry '%s' in directory inode %d has bad inode #: %d", name, d, ino), evidence: []uint64{blk}})
		return
	}
	if p := s.parent.Ref(ino); p.dir == 0 {
		*p = entryRef{d, blk, name}
	}
	if !s.linked[ino] {
		b, _ := s.fs.InodeLocation(ino)
		s.add(problem{key: fmt.Sprintf("entry %d %s %d", d, name, ino), kind: "directory", strct: fmt.Sprintf("directory inode %d block %d", d, blk),
			block: blk, ino: ino, group: -1, msg: fmt.Sprintf("Entry '%s' in directory inode %d has deleted/unused inode %d", name, d, ino),
			evidence: []uint64{blk, b}})
		return
	}
	s.ref(ino, d, blk, name)
}

// parentOf is the first entry naming ino, if any.
func (s *scanner) parentOf(ino uint32) (entryRef, bool) {
	if e := s.parent.Get(ino); e.dir != 0 {
		return e, true
	}
	return entryRef{}, false
}

func (s *scanner) path(ino uint32) string {
	if ino == 0 {
		return ""
	}
	if ino == ext3fs.RootIno {
		return "/"
	}
	var parts []string
	for n := 0; ino != ext3fs.RootIno && n < 256; n++ {
		e, ok := s.parentOf(ino)
		if !ok {
			return ""
		}
		parts = append(parts, e.name)
		ino = e.dir
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return "/" + strings.Join(parts, "/")
}

// linkCounts is passes 3 and 4: '..' of every directory, and links against names.
func (s *scanner) linkCounts() {
	for _, d := range s.dirs {
		want := uint32(ext3fs.RootIno)
		if d != ext3fs.RootIno {
			e, ok := s.parentOf(d)
			if !ok {
				continue // unattached: reported below
			}
			want = e.dir
		}
		if got, ok := s.dotdot[d]; ok && got != want {
			b, _ := s.fs.InodeLocation(d)
			s.add(problem{key: fmt.Sprintf("dotdot %d", d), kind: "directory", strct: fmt.Sprintf("directory inode %d", d), ino: d, group: -1,
				path: s.path(d), msg: fmt.Sprintf("'..' in %s (%d) is %d, should be %d", s.path(d), d, got, want),
				evidence: append([]uint64{b}, refBlocks(s.refs.Get(d))...)})
		}
	}
	for ino := uint32(ext3fs.RootIno); ino <= s.sb.InodesCount; ino++ {
		if !s.linked[ino] || (ino < s.sb.FirstIno && ino != ext3fs.RootIno) {
			continue
		}
		refs := s.refs.Get(ino)
		var was []uint64
		if s.prev != nil {
			was = s.prev.refBlk.Get(ino)
		}
		// The blocks naming ino, for the next check: the last check's slice when they are the
		// same (most are, and a slice per file per check was most of this pass's time).
		rb := was
		if !sameBlocks(refs, was) {
			rb = refBlocks(refs)
		}
		s.out.refBlk.Set(ino, rb)
		evidence := func() []uint64 {
			b, _ := s.fs.InodeLocation(ino)
			// A name lost since the last check was lost by a write to the block that held it.
			return append(append([]uint64{b}, rb...), was...)
		}
		counted := len(refs)
		switch {
		case counted == 0:
			s.add(problem{key: fmt.Sprintf("unattached %d", ino), kind: "links", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: -1,
				msg: fmt.Sprintf("Unattached inode %d (links count %d, no name)", ino, s.links[ino]), evidence: evidence()})
		case int(s.links[ino]) != counted:
			if s.isDir[ino] && s.links[ino] == 1 && s.sb.FeatureRoCompat&ext3fs.RoCompatDirNlink != 0 {
				continue // dir_nlink: a directory past the link limit counts 1
			}
			s.add(problem{key: fmt.Sprintf("links %d", ino), kind: "links", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: -1,
				path: s.path(ino), msg: fmt.Sprintf("Inode %d ref count is %d, should be %d", ino, s.links[ino], counted), evidence: evidence()})
		}
	}
}

// sameBlocks reports whether refs are in blocks, in order.
func sameBlocks(refs []entryRef, blocks []uint64) bool {
	if len(refs) != len(blocks) {
		return false
	}
	for i, r := range refs {
		if r.block != blocks[i] {
			return false
		}
	}
	return true
}

func refBlocks(refs []entryRef) []uint64 {
	out := make([]uint64, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.block)
	}
	return out
}

// bitmaps is pass 5: the bitmaps against the owners and the inodes in use, and the group
// descriptors' free counts against the bitmaps as they are on disk (what e2fsck -n counts when
// it leaves a bitmap difference unfixed, so a wrong bitmap is not also a wrong count unless the
// driver got both wrong). The superblock's totals are checked only on an unmounted file system
// (sbTotals): ext3 and ext4 keep them lazily while mounted. Neither is compared in a state with
// fast commits replayed (noCounts): their replay recomputes them.
func (s *scanner) bitmaps() {
	sb := s.sb
	bigalloc := sb.RoCompatBigalloc()
	bm := make([]byte, s.bs)
	// The totals the superblock should hold; counted stays true while every group was counted.
	var totalFree uint64
	var totalFreeI uint32
	var bbms, ibms []uint64 // the bitmaps counted: with the superblock, what a wrong total came from
	counted := !bigalloc && !s.out.noCounts
	defer func() {
		if counted {
			s.sbTotals(totalFree, totalFreeI, bbms, ibms)
		}
	}()
	for gi := range s.fs.Groups {
		g := uint32(gi)
		d := &s.fs.Groups[g]
		first := sb.GroupFirstBlock(g)
		nb := sb.GroupBlocks(g)
		uninit := s.csumGroups() && d.Flags&ext3fs.BGBlockUninit != 0
		if uninit {
			clear(bm)
			s.groupMeta(g, func(b uint64) {
				if b >= first && b < first+nb {
					bm[(b-first)/8] |= 1 << ((b - first) % 8)
				}
			})
		} else if s.fs.ReadBlock(d.BlockBitmap, bm) != nil {
			counted = false
			continue
		}
		free := uint32(0)
		if !bigalloc {
			for i := uint64(0); i < nb; i++ {
				b := first + i
				bit := bm[i/8]&(1<<(i%8)) != 0
				o := s.out.owner[b]
				if !bit {
					free++
				}
				switch {
				case o != 0 && !bit:
					ev := append([]uint64{d.BlockBitmap}, s.evidenceOf(o)...)
					if mv := s.moved(gi, locBlockBitmap); mv != nil {
						ev = mv
					} else if mv := s.movedAny(); o == metaOwner && mv != nil {
						ev = mv // a structure moved onto it
					}
					s.add(problem{key: fmt.Sprintf("bbm +%d", b), kind: "block-bitmap", strct: fmt.Sprintf("block %d", b), block: b, group: gi,
						ino: ownerIno(o), path: s.path(ownerIno(o)), msg: fmt.Sprintf("Block bitmap differences: +%d (owned by %s, marked free in group %d's bitmap)", b, ownerName(o), g),
						evidence: ev})
				case o == 0 && bit:
					ev := []uint64{d.BlockBitmap}
					msg := fmt.Sprintf("Block bitmap differences: -%d (marked in use in group %d's bitmap, owned by nothing)", b, g)
					var ino uint32
					if si, ok := s.skipped[b]; ok {
						// Its extent is there, out of order: what put it out of order made it.
						ino = si
						ev = append(ev[:0], s.cache.inodes.Get(si).dropEv...)
						msg += fmt.Sprintf("; inode %d maps it in an extent out of order", si)
					} else if mv := s.movedAny(); mv != nil && s.prev != nil && b < uint64(len(s.prev.owner)) && s.prev.owner[b] == metaOwner {
						ev = mv // a structure moved off it
						msg += "; the file system's own structures had it at the previous check"
					} else if s.prev != nil && b < uint64(len(s.prev.owner)) {
						if po := s.prev.owner[b]; po != 0 && po < metaOwner-1 {
							ino = po
							ev = append(ev, s.prev.inoEv.Get(po)...)
							msg += fmt.Sprintf("; inode %d owned it at the previous check", po)
						}
					}
					s.add(problem{key: fmt.Sprintf("bbm -%d", b), kind: "block-bitmap", strct: fmt.Sprintf("block %d", b), block: b, group: gi,
						ino: ino, msg: msg, evidence: ev})
				}
			}
			totalFree += uint64(free)
			bbms = append(bbms, d.BlockBitmap)
			if d.FreeBlocks != free && !s.out.noCounts {
				ev := []uint64{s.gdtBlock(gi), d.BlockBitmap}
				if mv := s.moved(gi, locBlockBitmap); mv != nil {
					ev = mv
				}
				s.add(problem{key: fmt.Sprintf("gfree %d", g), kind: "group-counts", strct: fmt.Sprintf("group %d", g), group: gi,
					msg: fmt.Sprintf("Free blocks count wrong for group #%d (%d, counted=%d)", g, d.FreeBlocks, free), evidence: ev})
			}
		}
		// Inodes.
		ibm := s.ibm[g]
		freeI, dirs := uint32(0), uint32(0)
		for k := uint32(0); k < sb.InodesPerGroup; k++ {
			ino := g*sb.InodesPerGroup + k + 1
			bit := ibm != nil && ibm[k/8]&(1<<(k%8)) != 0
			used := s.used[ino]
			if !bit {
				freeI++
			}
			if s.isDir[ino] {
				dirs++
			}
			if used == bit {
				continue
			}
			ib, _ := s.fs.InodeLocation(ino)
			ev := []uint64{d.InodeBitmap, ib}
			if mv := s.moved(gi, locInodeBitmap); mv != nil {
				ev = mv
			}
			switch {
			case used && !bit:
				s.add(problem{key: fmt.Sprintf("ibm +%d", ino), kind: "inode-bitmap", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: gi, path: s.path(ino),
					msg: fmt.Sprintf("Inode bitmap differences: +%d (in use, marked free in group %d's bitmap)", ino, g), evidence: ev})
			case !used && bit:
				s.add(problem{key: fmt.Sprintf("ibm -%d", ino), kind: "inode-bitmap", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: gi,
					msg: fmt.Sprintf("Inode bitmap differences: -%d (marked in use in group %d's bitmap, the inode is not)", ino, g), evidence: ev})
			}
		}
		totalFreeI += freeI
		ibms = append(ibms, d.InodeBitmap)
		if d.FreeInodes != freeI && !s.out.noCounts {
			ev := []uint64{s.gdtBlock(gi), d.InodeBitmap}
			if mv := s.moved(gi, locInodeBitmap); mv != nil {
				ev = mv
			}
			s.add(problem{key: fmt.Sprintf("gifree %d", g), kind: "group-counts", strct: fmt.Sprintf("group %d", g), group: gi,
				msg: fmt.Sprintf("Free inodes count wrong for group #%d (%d, counted=%d)", g, d.FreeInodes, freeI), evidence: ev})
		}
		if d.UsedDirs != dirs && !s.out.noCounts {
			s.add(problem{key: fmt.Sprintf("gdirs %d", g), kind: "group-counts", strct: fmt.Sprintf("group %d", g), group: gi,
				msg: fmt.Sprintf("Directories count wrong for group #%d (%d, counted=%d)", g, d.UsedDirs, dirs), evidence: []uint64{s.gdtBlock(gi)}})
		}
	}
}

// sbTotals compares the superblock's free block and inode counts with the bitmaps' (e2fsck pass 5:
// "Free blocks count wrong", "Free inodes count wrong") where the driver promises them: on an
// unmounted file system, s_state VALID and no needs_recovery. While mounted, ext3 and ext4 keep
// them in per-CPU counters and write them back at unmount (a journaled file system stays VALID
// while mounted, with needs_recovery set), so comparing them then would only find that.
func (s *scanner) sbTotals(free uint64, freeI uint32, bbms, ibms []uint64) {
	sb := s.sb
	if sb.State&1 == 0 || sb.NeedsRecovery() {
		return
	}
	blk := uint64(ext3fs.SuperblockOffset / s.bs)
	if sb.FreeBlocksCount != free {
		s.add(problem{key: "sbfree", kind: "superblock-counts", strct: "superblock", block: blk, group: -1,
			msg: fmt.Sprintf("Free blocks count wrong (%d, counted=%d)", sb.FreeBlocksCount, free), evidence: append([]uint64{blk}, bbms...)})
	}
	if sb.FreeInodesCount != freeI {
		s.add(problem{key: "sbifree", kind: "superblock-counts", strct: "superblock", block: blk, group: -1,
			msg: fmt.Sprintf("Free inodes count wrong (%d, counted=%d)", sb.FreeInodesCount, freeI), evidence: append([]uint64{blk}, ibms...)})
	}
}

func ownerIno(o uint32) uint32 {
	if o >= metaOwner-1 {
		return 0
	}
	return o
}

// checksums: the superblock, group descriptors and bitmaps (metadata_csum), or the descriptors
// with gdt_csum; read every scan, they are a few blocks. Inodes, extent blocks, directory
// blocks, xattr blocks and orphan-file blocks are checked where they are read (passes 1 and 2).
func (s *scanner) checksums() {
	if !s.csumGroups() {
		return
	}
	sb := s.sb
	bs := int64(s.bs)
	if sb.HasMetadataCsum() {
		buf := make([]byte, ext3fs.SuperblockSize)
		if _, err := s.fs.ReaderAt().ReadAt(buf, ext3fs.SuperblockOffset); err == nil {
			if c, err := ext3fs.SuperblockChecksum(buf); err == nil && !c.OK() {
				s.add(csumProblem(c, ext3fs.SuperblockOffset, bs))
			}
		}
	}
	blk := make([]byte, s.bs)
	ds := sb.DescSize()
	per := uint32(s.bs / ds)
	ngroups := sb.GroupCount()
	for i := uint32(0); i*per < ngroups; i++ {
		loc := s.fs.DescBlock(uint64(i))
		if s.fs.ReadBlock(loc, blk) != nil {
			continue
		}
		for j := uint32(0); j < per && i*per+j < ngroups; j++ {
			if c, err := sb.GroupDescChecksum(i*per+j, blk[int(j)*ds:]); err == nil && !c.OK() {
				s.add(csumProblem(c, int64(loc)*bs+int64(j)*int64(ds), bs))
			}
		}
	}
	if !sb.HasMetadataCsum() {
		return
	}
	for g := range s.fs.Groups {
		d := &s.fs.Groups[g]
		if d.Flags&ext3fs.BGBlockUninit == 0 && s.fs.ReadBlock(d.BlockBitmap, blk) == nil {
			if c, err := sb.BlockBitmapChecksum(uint32(g), d, blk); err == nil && !c.OK() {
				s.add(csumProblem(c, int64(d.BlockBitmap)*bs, bs))
			}
		}
		if d.Flags&ext3fs.BGInodeUninit == 0 && s.fs.ReadBlock(d.InodeBitmap, blk) == nil {
			if c, err := sb.InodeBitmapChecksum(uint32(g), d, blk); err == nil && !c.OK() {
				s.add(csumProblem(c, int64(d.InodeBitmap)*bs, bs))
			}
		}
	}
}

// cache keeps what scans read, for the next scan: per inode its pass-1 result, per directory
// block its entries, per xattr block its checksum. Each is read again only when one of the
// blocks it came from changed (or the file system's geometry did).
type cache struct {
	geom   geometry
	inodes inotable.Table[*inodeRes]
	dirBlk map[uint64]*dirBlockRes
	xattr  map[uint64][]problem
	reads  int // structures read (inodes, directory blocks, xattr blocks), all scans
	scans  int
	// unused is the one result of the free inodes of a table block (unusedIn).
	unused *inodeRes
	// freeBlocks are the inode-table blocks whose inodes were all free with nothing to report
	// (quiet) when last read: unchanged since, and with no orphan list, a scan passes them by (three
	// quarters of the 393,000 inode numbers of the bench's large case, at every check).
	freeBlocks blockBits
	// used, linked, isDir and links are the scanner's per-inode tables, kept from scan to scan
	// (2 MB a check on the bench's large case, 393,000 inode numbers).
	used, linked, isDir []bool
	links               []uint16
}

// blockBits is a set of block numbers, a bit each.
type blockBits []uint64

func (b blockBits) has(n uint64) bool { return n/64 < uint64(len(b)) && b[n/64]&(1<<(n%64)) != 0 }

func (b *blockBits) set(n uint64, on bool) {
	if n/64 >= uint64(len(*b)) {
		if !on {
			return
		}
		*b = slices.Grow(*b, int(n/64+1)-len(*b))[:n/64+1]
	}
	if on {
		(*b)[n/64] |= 1 << (n % 64)
	} else {
		(*b)[n/64] &^= 1 << (n % 64)
	}
}

// quiet reports whether r is a free inode's with nothing to report, read from table block blk
// alone: what addInode adds nothing for.
func (r *inodeRes) quiet(blk uint64) bool {
	return !r.used && !r.candidate && !r.listed && !r.orphan && len(r.problems) == 0 && len(r.deps) == 1 && r.deps[0] == blk
}

// cleared is *s made n long and zeroed, in the memory it has if it is as long.
func cleared[T any](s *[]T, n uint32) []T {
	if uint32(len(*s)) != n {
		*s = make([]T, n)
	} else {
		clear(*s)
	}
	return *s
}

// unusedIn is the result of a free inode of table block blk with nothing to report (mode
// clear, no checksum problem): the same for every such inode of the block, so they share one.
// Three quarters of the inode numbers of a 6 GiB file system of 102,000 files are free, and
// their results were 80 MB of the checker's heap. Results are never changed once made.
func (c *cache) unusedIn(blk uint64) *inodeRes {
	if c.unused == nil || c.unused.deps[0] != blk {
		c.unused = &inodeRes{deps: []uint64{blk}}
	}
	return c.unused
}

// geometry is what every cached result depends on: the superblock fields that say where
// structures are and how they are decoded and checksummed.
type geometry struct {
	blocks                         uint64
	inodes, ipg, bpg, first, fdata uint32
	isz, bs                        int
	compat, incompat, rocompat     uint32
	seed                           [4]uint32
	hashFlags                      uint32
	csumSeed                       uint32
	orphanFile                     uint32
}

func geometryOf(sb *ext3fs.Superblock) geometry {
	g := geometry{blocks: sb.BlocksCount, inodes: sb.InodesCount, ipg: sb.InodesPerGroup, bpg: sb.BlocksPerGroup,
		first: sb.FirstIno, fdata: sb.FirstDataBlock, isz: sb.InodeSize(), bs: 1024 << sb.LogBlockSize,
		compat: sb.FeatureCompat, incompat: sb.FeatureIncompat, rocompat: sb.FeatureRoCompat,
		seed: sb.HashSeed, hashFlags: sb.Flags & 3, orphanFile: sb.OrphanFileInum}
	if sb.HasMetadataCsum() {
		g.csumSeed = sb.CsumSeed()
	}
	return g
}

func (c *cache) reset(g geometry) {
	c.geom = g
	c.unused = nil
	c.freeBlocks = nil
	c.inodes = inotable.Table[*inodeRes]{}
	c.dirBlk = map[uint64]*dirBlockRes{}
	c.xattr = map[uint64][]problem{}
}

func e2fsckCsum(st string) string {
	switch {
	case strings.HasPrefix(st, "inode"):
		return "inode passes checks, but checksum does not match inode"
	case strings.HasPrefix(st, "group descriptor"):
		return "one or more block group descriptor checksums are invalid"
	case strings.HasPrefix(st, "dir"):
		return "directory passes checks but fails checksum"
	case strings.HasPrefix(st, "superblock"):
		return "superblock checksum does not match superblock"
	}
	return "metadata checksum does not match"
}
