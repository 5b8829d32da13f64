package check

import (
	"encoding/binary"
	"fmt"
	"strings"

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
	inoEv    map[uint32][]uint64 // inode -> its inode-table block and map blocks
	refBlk   map[uint32][]uint64 // inode -> the directory blocks naming it
}

// entryRef is one directory entry naming an inode.
type entryRef struct {
	dir   uint32
	block uint64
	name  string
}

// scanner is the state of one scan, e2fsck's passes 1 to 5 in small.
type scanner struct {
	fs     *ext3fs.FS
	sb     *ext3fs.Superblock
	bs     int
	prev   *scan
	out    *scan
	used   []bool // inode in use (links > 0, reserved, or an orphan being deleted)
	linked []bool // links > 0
	isDir  []bool
	links  []uint16
	dirs   []uint32
	xattr  map[uint64]bool
	refs   map[uint32][]entryRef
	dotdot map[uint32]uint32
	parent map[uint32]entryRef // first name of each inode, for paths
	ibm    map[uint32][]byte   // inode bitmap per group (nil: uninitialised)
}

func runScan(view *Checker, prev *scan) *scan {
	out := &scan{inoEv: map[uint32][]uint64{}, refBlk: map[uint32][]uint64{}}
	fs, err := ext3fs.OpenWith(view, ext3fs.Options{InlineData: true})
	if err != nil {
		out.problems = append(out.problems, problem{key: "decode superblock", kind: "decode", strct: "superblock",
			group: -1, msg: fmt.Sprintf("the superblock or group descriptors cannot be read: %v", err), evidence: []uint64{0, 1}})
		return out
	}
	s := &scanner{fs: fs, sb: fs.SB, bs: fs.BlockSize(), prev: prev, out: out, xattr: map[uint64]bool{},
		refs: map[uint32][]entryRef{}, dotdot: map[uint32]uint32{}, parent: map[uint32]entryRef{}, ibm: map[uint32][]byte{}}
	n := s.sb.InodesCount + 1
	s.used, s.linked, s.isDir, s.links = make([]bool, n), make([]bool, n), make([]bool, n), make([]uint16, n)
	out.owner = make([]uint32, s.sb.BlocksCount)
	s.markMetadata()
	s.inodes()
	s.directories()
	s.linkCounts()
	s.bitmaps()
	s.checksums()
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
	return s.out.inoEv[o]
}

func (s *scanner) markMetadata() {
	if s.sb.FirstDataBlock > 0 {
		s.out.owner[0] = metaOwner // the boot block of 1 KiB file systems, outside every group
	}
	for g := uint32(0); g < uint32(len(s.fs.Groups)); g++ {
		s.groupMeta(g, func(b uint64) { s.claim(b, metaOwner) })
	}
}

// inodes is pass 1: every inode in use, the blocks it owns, the directories to read.
func (s *scanner) inodes() {
	sb := s.sb
	bs := int64(s.bs)
	isz := sb.InodeSize()
	buf := make([]byte, s.bs)
	orphans := s.orphans()
	var in ext3fs.Inode
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
		for k := uint32(0); k < n; k++ {
			ino := uint32(g)*sb.InodesPerGroup + k + 1
			blk, off := s.fs.InodeLocation(ino)
			if off == 0 || k == 0 {
				if err := s.fs.ReadBlock(blk, buf); err != nil {
					continue
				}
			}
			raw := buf[off : off+isz]
			links := binary.LittleEndian.Uint16(raw[0x1A:])
			mode := binary.LittleEndian.Uint16(raw[0:])
			reserved := ino < sb.FirstIno
			bit := s.ibm[uint32(g)] != nil && s.ibm[uint32(g)][k/8]&(1<<(k%8)) != 0
			orphan := links == 0 && !reserved && mode != 0 && bit && orphans[ino]
			if links == 0 && !reserved && !orphan {
				continue
			}
			s.used[ino] = true
			s.links[ino] = links
			s.linked[ino] = links > 0
			if reserved && mode == 0 {
				continue
			}
			pos := int64(blk)*bs + int64(off)
			if err := s.fs.DecodeInodeInto(ino, raw, pos, &in); err != nil {
				s.add(problem{key: fmt.Sprintf("decode inode %d", ino), kind: "decode", strct: fmt.Sprintf("inode %d", ino), ino: ino,
					group: g, msg: fmt.Sprintf("Inode %d cannot be decoded: %v", ino, err), evidence: []uint64{blk}})
				continue
			}
			ev := []uint64{blk}
			s.out.inoEv[ino] = ev
			if in.Type() == ext3fs.TypeDir && links > 0 {
				s.isDir[ino] = true
				s.dirs = append(s.dirs, ino)
			}
			if in.FileACL != 0 && in.FileACL < sb.BlocksCount {
				s.xattr[in.FileACL] = true
			}
			if ino == 7 { // resize inode: only its DIND block; the rest is reserved GDT (e2fsck's rule)
				if dind := uint64(binary.LittleEndian.Uint32(raw[0x28+13*4:])); dind != 0 {
					s.claim(dind, ino)
				}
				continue
			}
			nblk := uint64(0)
			err := s.fs.WalkBlocks(&in, func(r ext3fs.BlockRef) error {
				if r.Kind != ext3fs.BlockData {
					s.out.inoEv[ino] = append(s.out.inoEv[ino], r.Phys)
				}
				s.claim(r.Phys, ino)
				nblk++
				return nil
			})
			if err != nil {
				s.add(problem{key: fmt.Sprintf("map inode %d", ino), kind: "decode", strct: fmt.Sprintf("inode %d", ino), ino: ino,
					group: g, msg: fmt.Sprintf("Inode %d has a block map e2fsck would repair: %v", ino, err), evidence: s.out.inoEv[ino]})
				continue
			}
			if in.FileACL != 0 {
				nblk++
			}
			// i_blocks counts every block the inode owns, map blocks and its xattr block
			// included, in 512-byte units (e2fsck pass 1).
			if want := nblk * uint64(s.bs/512); in.Blocks512 != want {
				s.add(problem{key: fmt.Sprintf("iblocks %d", ino), kind: "inode", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: g,
					msg: fmt.Sprintf("Inode %d, i_blocks is %d, should be %d", ino, in.Blocks512, want), evidence: s.out.inoEv[ino]})
			}
		}
	}
	for b := range s.xattr {
		if o := s.out.owner[b]; o == 0 {
			s.out.owner[b] = metaOwner - 1 // shared xattr block: owned, by any number of inodes
		}
	}
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

// directories is pass 2: the structure of every directory block and what its entries name.
func (s *scanner) directories() {
	ft := s.sb.HasFiletype()
	buf := make([]byte, s.bs)
	for _, d := range s.dirs {
		in, err := s.fs.ReadInode(d)
		if err != nil {
			continue
		}
		blk, _ := s.fs.InodeLocation(d)
		if in.HasInlineData() {
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
			continue
		}
		nblocks := (in.Size + uint64(s.bs) - 1) / uint64(s.bs)
		_ = s.fs.WalkBlocks(in, func(r ext3fs.BlockRef) error {
			if r.Kind != ext3fs.BlockData || r.Logical >= nblocks {
				return nil
			}
			if s.fs.ReadBlock(r.Phys, buf) != nil {
				return nil
			}
			i := 0
			err := ext3fs.WalkDirBlock(buf, ft, func(e *ext3fs.DirEntry, name []byte) error {
				if r.Logical == 0 && i < 2 {
					want := [2]string{".", ".."}[i]
					if string(name) != want || e.Inode == 0 {
						s.add(problem{key: fmt.Sprintf("dir %d %s", d, want), kind: "directory", strct: fmt.Sprintf("directory inode %d block %d", d, r.Phys),
							block: r.Phys, ino: d, group: -1, msg: fmt.Sprintf("Missing '%s' in directory inode %d (first entries are not '.' and '..')", want, d),
							evidence: []uint64{r.Phys}})
					}
					if want == ".." {
						s.dotdot[d] = e.Inode
					}
					if e.Inode != 0 {
						s.ref(e.Inode, d, r.Phys, want)
					}
					i++
					return nil
				}
				i++
				if e.Inode != 0 {
					s.entry(d, r.Phys, string(name), e.Inode)
				}
				return nil
			})
			if err != nil {
				s.add(problem{key: fmt.Sprintf("dir %d block %d", d, r.Logical), kind: "directory", strct: fmt.Sprintf("directory inode %d block %d", d, r.Phys),
					block: r.Phys, ino: d, group: -1, msg: fmt.Sprintf("Directory inode %d, block #%d: directory corrupted: %v", d, r.Logical, err),
					evidence: []uint64{r.Phys}})
			}
			return nil
		})
	}
}

func (s *scanner) ref(ino, dir uint32, blk uint64, name string) {
	s.refs[ino] = append(s.refs[ino], entryRef{dir, blk, name})
}

// entry checks one name (not '.' or '..').
func (s *scanner) entry(d uint32, blk uint64, name string, ino uint32) {
	if ino > s.sb.InodesCount || (ino < s.sb.FirstIno && ino != ext3fs.RootIno) {
		s.add(problem{key: fmt.Sprintf("entry %d %s", d, name), kind: "directory", strct: fmt.Sprintf("directory inode %d block %d", d, blk),
			block: blk, ino: d, group: -1, msg: fmt.Sprintf("Entry '%s' in directory inode %d has bad inode #: %d", name, d, ino), evidence: []uint64{blk}})
		return
	}
	if _, ok := s.parent[ino]; !ok {
		s.parent[ino] = entryRef{d, blk, name}
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

func (s *scanner) path(ino uint32) string {
	if ino == 0 {
		return ""
	}
	if ino == ext3fs.RootIno {
		return "/"
	}
	var parts []string
	for n := 0; ino != ext3fs.RootIno && n < 256; n++ {
		e, ok := s.parent[ino]
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
			e, ok := s.parent[d]
			if !ok {
				continue // unattached: reported below
			}
			want = e.dir
		}
		if got, ok := s.dotdot[d]; ok && got != want {
			b, _ := s.fs.InodeLocation(d)
			s.add(problem{key: fmt.Sprintf("dotdot %d", d), kind: "directory", strct: fmt.Sprintf("directory inode %d", d), ino: d, group: -1,
				path: s.path(d), msg: fmt.Sprintf("'..' in %s (%d) is %d, should be %d", s.path(d), d, got, want),
				evidence: append([]uint64{b}, refBlocks(s.refs[d])...)})
		}
	}
	for ino := uint32(ext3fs.RootIno); ino <= s.sb.InodesCount; ino++ {
		if !s.linked[ino] || (ino < s.sb.FirstIno && ino != ext3fs.RootIno) {
			continue
		}
		refs := s.refs[ino]
		b, _ := s.fs.InodeLocation(ino)
		ev := append([]uint64{b}, refBlocks(refs)...)
		s.out.refBlk[ino] = refBlocks(refs)
		if s.prev != nil {
			// A name lost since the last check was lost by a write to the block that held it.
			ev = append(ev, s.prev.refBlk[ino]...)
		}
		counted := len(refs)
		switch {
		case counted == 0:
			s.add(problem{key: fmt.Sprintf("unattached %d", ino), kind: "links", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: -1,
				msg: fmt.Sprintf("Unattached inode %d (links count %d, no name)", ino, s.links[ino]), evidence: ev})
		case int(s.links[ino]) != counted:
			if s.isDir[ino] && s.links[ino] == 1 && s.sb.FeatureRoCompat&ext3fs.RoCompatDirNlink != 0 {
				continue // dir_nlink: a directory past the link limit counts 1
			}
			s.add(problem{key: fmt.Sprintf("links %d", ino), kind: "links", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: -1,
				path: s.path(ino), msg: fmt.Sprintf("Inode %d ref count is %d, should be %d", ino, s.links[ino], counted), evidence: ev})
		}
	}
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
// driver got both wrong). The superblock's totals are not checked: ext4 keeps them lazily.
func (s *scanner) bitmaps() {
	sb := s.sb
	bigalloc := sb.RoCompatBigalloc()
	bm := make([]byte, s.bs)
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
					s.add(problem{key: fmt.Sprintf("bbm +%d", b), kind: "block-bitmap", strct: fmt.Sprintf("block %d", b), block: b, group: gi,
						ino: ownerIno(o), path: s.path(ownerIno(o)), msg: fmt.Sprintf("Block bitmap differences: +%d (owned by %s, marked free in group %d's bitmap)", b, ownerName(o), g),
						evidence: append([]uint64{d.BlockBitmap}, s.evidenceOf(o)...)})
				case o == 0 && bit:
					ev := []uint64{d.BlockBitmap}
					msg := fmt.Sprintf("Block bitmap differences: -%d (marked in use in group %d's bitmap, owned by nothing)", b, g)
					var ino uint32
					if s.prev != nil && b < uint64(len(s.prev.owner)) {
						if po := s.prev.owner[b]; po != 0 && po < metaOwner-1 {
							ino = po
							ev = append(ev, s.prev.inoEv[po]...)
							msg += fmt.Sprintf("; inode %d owned it at the previous check", po)
						}
					}
					s.add(problem{key: fmt.Sprintf("bbm -%d", b), kind: "block-bitmap", strct: fmt.Sprintf("block %d", b), block: b, group: gi,
						ino: ino, msg: msg, evidence: ev})
				}
			}
			if d.FreeBlocks != free {
				s.add(problem{key: fmt.Sprintf("gfree %d", g), kind: "group-counts", strct: fmt.Sprintf("group %d", g), group: gi,
					msg: fmt.Sprintf("Free blocks count wrong for group #%d (%d, counted=%d)", g, d.FreeBlocks, free), evidence: []uint64{s.gdtBlock(gi), d.BlockBitmap}})
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
			ib, _ := s.fs.InodeLocation(ino)
			switch {
			case used && !bit:
				s.add(problem{key: fmt.Sprintf("ibm +%d", ino), kind: "inode-bitmap", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: gi, path: s.path(ino),
					msg: fmt.Sprintf("Inode bitmap differences: +%d (in use, marked free in group %d's bitmap)", ino, g), evidence: []uint64{d.InodeBitmap, ib}})
			case !used && bit:
				s.add(problem{key: fmt.Sprintf("ibm -%d", ino), kind: "inode-bitmap", strct: fmt.Sprintf("inode %d", ino), ino: ino, group: gi,
					msg: fmt.Sprintf("Inode bitmap differences: -%d (marked in use in group %d's bitmap, the inode is not)", ino, g), evidence: []uint64{d.InodeBitmap, ib}})
			}
		}
		if d.FreeInodes != freeI {
			s.add(problem{key: fmt.Sprintf("gifree %d", g), kind: "group-counts", strct: fmt.Sprintf("group %d", g), group: gi,
				msg: fmt.Sprintf("Free inodes count wrong for group #%d (%d, counted=%d)", g, d.FreeInodes, freeI), evidence: []uint64{s.gdtBlock(gi), d.InodeBitmap}})
		}
		if d.UsedDirs != dirs {
			s.add(problem{key: fmt.Sprintf("gdirs %d", g), kind: "group-counts", strct: fmt.Sprintf("group %d", g), group: gi,
				msg: fmt.Sprintf("Directories count wrong for group #%d (%d, counted=%d)", g, d.UsedDirs, dirs), evidence: []uint64{s.gdtBlock(gi)}})
		}
	}
}

func ownerIno(o uint32) uint32 {
	if o >= metaOwner-1 {
		return 0
	}
	return o
}

// checksums: every checksummed structure (metadata_csum, or the descriptors with gdt_csum).
func (s *scanner) checksums() {
	if !s.csumGroups() {
		return
	}
	bs := int64(s.bs)
	err := s.fs.Checksums(func(c ext3fs.Checksum) error {
		if c.OK() {
			return nil
		}
		b := uint64(c.Start / bs)
		var ino uint32
		if n, err := fmt.Sscanf(c.Struct, "inode %d", &ino); n != 1 || err != nil {
			ino = 0
		}
		s.add(problem{key: fmt.Sprintf("csum %s %d", c.Struct, c.Start), kind: "checksum", strct: c.Struct, block: b, ino: ino, group: -1,
			msg:      fmt.Sprintf("%s at block %d fails its checksum (stored %#x, computed %#x): e2fsck: %s", c.Struct, b, c.Stored, c.Computed, e2fsckCsum(c.Struct)),
			evidence: []uint64{b}})
		return nil
	})
	if err != nil {
		s.add(problem{key: "csum walk", kind: "decode", strct: "checksums", group: -1,
			msg: fmt.Sprintf("the checksummed structures cannot all be read: %v", err)})
	}
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
