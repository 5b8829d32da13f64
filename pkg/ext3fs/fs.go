package ext3fs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// FS reads a file system through an io.ReaderAt: an image file, or a model of the disk that
// changes under it. FS caches only the superblock and the group descriptors; everything else is
// read on demand, so a caller that rewrites metadata blocks sees the new state on the next call
// (after re-opening if it rewrote the superblock or the GDT).
type FS struct {
	SB     *Superblock
	Groups []GroupDesc

	r      io.ReaderAt
	bs     int
	itabs  []itab // inode tables sorted by first block, for InodeTableBlock
	itBlks uint64
}

type itab struct {
	start uint64
	group uint32
}

// Open reads and checks the superblock and group descriptor table. It refuses file systems with
// incompat features it cannot decode and descriptors that point outside the device.
func Open(r io.ReaderAt) (*FS, error) { return OpenWith(r, Options{}) }

// Options widen what OpenWith accepts beyond Open's defaults.
type Options struct {
	// InlineData accepts inline_data file systems. ReadDir, ReadLink, ReadInlineData and Walk
	// read inline files and directories; a caller that replays changes to the file system must
	// also follow data and directory entries written into inodes before asking for this.
	InlineData bool
}

// OpenWith is Open with options.
func OpenWith(r io.ReaderAt, o Options) (*FS, error) {
	buf := make([]byte, SuperblockSize)
	if _, err := r.ReadAt(buf, SuperblockOffset); err != nil {
		return nil, &FormatError{Struct: "superblock", Offset: SuperblockOffset, Msg: "read failed", Err: err}
	}
	var allow uint32
	if o.InlineData {
		allow |= IncompatInlineData
	}
	sb, err := parseSuperblock(buf, allow)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Offset += SuperblockOffset // device offset
		}
		return nil, err
	}
	fs := &FS{SB: sb, r: r, bs: sb.BlockSize(), itBlks: sb.InodeTableBlocks()}
	ngroups := sb.GroupCount()
	ds := sb.DescSize()
	per := uint32(fs.bs / ds)
	// Grown as descriptor blocks are read, not reserved from the superblock's counts: a
	// damaged count then fails at the first block the device does not hold, and memory follows
	// what the device holds (a 256 KiB image claiming 2^31 groups had ext2fs_open2's checks
	// pass but asked for 113 GB at once).
	fs.Groups = make([]GroupDesc, 0, min(ngroups, 1<<16))
	blk := make([]byte, fs.bs)
	for i := uint32(0); i*per < ngroups; i++ {
		loc := fs.DescBlock(uint64(i))
		if err := fs.ReadBlock(loc, blk); err != nil {
			return nil, err
		}
		for j := uint32(0); j < per && i*per+j < ngroups; j++ {
			g := i*per + j
			off := int64(loc)*int64(fs.bs) + int64(j)*int64(ds)
			d, err := ParseGroupDesc(blk[int(j)*ds:], ds)
			if err != nil {
				return nil, err
			}
			for _, f := range []struct {
				name string
				v    uint64
				n    uint64
			}{{"block bitmap", d.BlockBitmap, 1}, {"inode bitmap", d.InodeBitmap, 1}, {"inode table", d.InodeTable, fs.itBlks}} {
				if f.v < uint64(sb.FirstDataBlock) || f.v+f.n > sb.BlocksCount {
					return nil, formatErr(fmt.Sprintf("group descriptor %d", g), off,
						"%s at block %d (+%d) outside the file system (%d blocks)", f.name, f.v, f.n, sb.BlocksCount)
				}
				// Block FirstDataBlock holds the primary superblock (a zeroed descriptor points there).
				if f.v == uint64(sb.FirstDataBlock) {
					return nil, formatErr(fmt.Sprintf("group descriptor %d", g), off,
						"%s at block %d, the primary superblock's block", f.name, f.v)
				}
			}
			fs.Groups = append(fs.Groups, d)
			fs.itabs = append(fs.itabs, itab{d.InodeTable, g})
		}
	}
	sort.Slice(fs.itabs, func(a, b int) bool { return fs.itabs[a].start < fs.itabs[b].start })
	return fs, nil
}

// DescBlock is the block holding group-descriptor block i of the primary GDT: contiguous after
// the superblock, or, with meta_bg, in the first group of meta-group i (ext2fs_descriptor_block_loc2).
func (fs *FS) DescBlock(i uint64) uint64 {
	sb := fs.SB
	if !sb.HasMetaBG() || i < uint64(sb.FirstMetaBG) {
		return uint64(sb.FirstDataBlock) + 1 + i
	}
	g := uint32(i * uint64(fs.bs/sb.DescSize()))
	b := sb.GroupFirstBlock(g)
	if sb.GroupHasSuper(g) {
		b++
	}
	return b
}

// BlockSize is the file-system block size in bytes.
func (fs *FS) BlockSize() int { return fs.bs }

// ReaderAt is the device the file system is read from.
func (fs *FS) ReaderAt() io.ReaderAt { return fs.r }

// ReadBlock reads block n into buf, which must be BlockSize() bytes.
func (fs *FS) ReadBlock(n uint64, buf []byte) error {
	if len(buf) != fs.bs {
		return fmt.Errorf("ext3fs: ReadBlock buffer is %d bytes, want %d", len(buf), fs.bs)
	}
	if n >= fs.SB.BlocksCount {
		return formatErr("block", int64(n)*int64(fs.bs), "block %d beyond the end of the file system (%d blocks)", n, fs.SB.BlocksCount)
	}
	if _, err := fs.r.ReadAt(buf, int64(n)*int64(fs.bs)); err != nil {
		return &FormatError{Struct: fmt.Sprintf("block %d", n), Offset: int64(n) * int64(fs.bs), Msg: "read failed", Err: err}
	}
	return nil
}

// InodeLocation is the block holding inode ino and the byte offset of the inode within it.
// ino must be in 1..InodesCount (ReadInode checks; this returns block 0 otherwise).
func (fs *FS) InodeLocation(ino uint32) (block uint64, offset int) {
	if ino == 0 || ino > fs.SB.InodesCount {
		return 0, 0
	}
	g := (ino - 1) / fs.SB.InodesPerGroup
	byteOff := uint64((ino-1)%fs.SB.InodesPerGroup) * uint64(fs.SB.InodeSize())
	return fs.Groups[g].InodeTable + byteOff/uint64(fs.bs), int(byteOff % uint64(fs.bs))
}

// InodeTableBlock tells which inodes an inode-table block holds: n inodes from firstIno.
// ok is false for blocks outside every group's inode table.
func (fs *FS) InodeTableBlock(block uint64) (firstIno uint32, n int, ok bool) {
	i := sort.Search(len(fs.itabs), func(i int) bool { return fs.itabs[i].start > block }) - 1
	if i < 0 || block >= fs.itabs[i].start+fs.itBlks {
		return 0, 0, false
	}
	per := fs.bs / fs.SB.InodeSize()
	g := fs.itabs[i].group
	idx := (block - fs.itabs[i].start) * uint64(per)
	first := uint64(g)*uint64(fs.SB.InodesPerGroup) + idx + 1
	n = per
	if rest := uint64(fs.SB.InodesPerGroup) - idx; rest < uint64(per) {
		n = int(rest)
	}
	return uint32(first), n, true
}

// ReadInode reads and decodes inode ino.
func (fs *FS) ReadInode(ino uint32) (*Inode, error) {
	if ino == 0 || ino > fs.SB.InodesCount {
		return nil, formatErr("inode", 0, "inode number %d not in 1..%d", ino, fs.SB.InodesCount)
	}
	blk, off := fs.InodeLocation(ino)
	pos := int64(blk)*int64(fs.bs) + int64(off)
	buf := make([]byte, fs.SB.InodeSize())
	if _, err := fs.r.ReadAt(buf, pos); err != nil {
		return nil, &FormatError{Struct: fmt.Sprintf("inode %d", ino), Offset: pos, Msg: "read failed", Err: err}
	}
	return fs.DecodeInode(ino, buf, pos)
}

// DecodeInode decodes inode ino from its on-disk bytes (read from device offset pos, used in
// errors) and applies the file-system-wide rules ParseInode cannot know (huge_file units).
func (fs *FS) DecodeInode(ino uint32, b []byte, pos int64) (*Inode, error) {
	in := new(Inode)
	if err := fs.DecodeInodeInto(ino, b, pos, in); err != nil {
		return nil, err
	}
	return in, nil
}

// DecodeInodeInto is DecodeInode into an existing Inode (no allocation).
func (fs *FS) DecodeInodeInto(ino uint32, b []byte, pos int64, in *Inode) error {
	if err := ParseInodeInto(b, in); err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Struct = fmt.Sprintf("inode %d", ino)
			fe.Offset += pos
		}
		return err
	}
	in.Pos = pos
	if in.Flags&InodeHugeFileFl != 0 && fs.SB.FeatureRoCompat&RoCompatHugeFile != 0 {
		in.Blocks512 *= uint64(fs.bs / 512)
	}
	return nil
}

// BlockKind says what a block owned by an inode holds.
type BlockKind uint8

const (
	BlockData   BlockKind = iota // file, directory or slow-symlink data
	BlockInd                     // single indirect block
	BlockDInd                    // double indirect block
	BlockTInd                    // triple indirect block
	BlockExtent                  // extent tree node (not the root, which lives in the inode)
)

func (k BlockKind) String() string {
	switch k {
	case BlockData:
		return "data"
	case BlockInd:
		return "ind"
	case BlockDInd:
		return "dind"
	case BlockTInd:
		return "tind"
	case BlockExtent:
		return "extent"
	}
	return fmt.Sprintf("kind%d", uint8(k))
}

// BlockRef is one physical block owned by an inode. Logical is the file block for data, and the
// first file block a map block can map for IND/DIND/TIND/extent blocks.
type BlockRef struct {
	Kind    BlockKind
	Logical uint64
	Phys    uint64
}

// ErrStop may be returned by a WalkBlocks or Walk callback to end the walk early without error.
var ErrStop = errors.New("ext3fs: stop walk")

// WalkBlocks calls fn for every physical block the inode owns, map blocks (IND/DIND/TIND, extent
// nodes) before the blocks they map, in logical order; holes are skipped. The xattr block
// (FileACL) is not included: it can be shared between inodes. Inodes whose i_block holds no
// pointers (fast symlinks, devices, FIFOs, sockets, inline data) own no blocks.
//
// A hostile map cannot make the walk run away: a map block (indirect block or extent node)
// reached twice in one inode's map is a loop or a cross-link, and an inode cannot own more blocks
// than the file system has; both end the walk with a *FormatError at the offending pointer.
func (fs *FS) WalkBlocks(in *Inode, fn func(BlockRef) error) error {
	if !in.HasBlocks() {
		return nil
	}
	// The walk's state (its indirect-block buffers, its map of visited map blocks) is reused from
	// one call to the next: an index build walks every inode, and allocating it each time was a
	// sixth of the build's garbage on a 100,000-file image.
	w := walkPool.Get().(*blockWalk)
	*w = blockWalk{fs: fs, fn: fn, bufs: w.bufs, ebufs: w.ebufs, maps: w.maps, limit: fs.SB.BlocksCount - uint64(fs.SB.FirstDataBlock)}
	if len(w.maps) > 0 {
		clear(w.maps) // clearing resets the whole table even when empty: most walks add nothing
	}
	var err error
	if in.UsesExtents() {
		err = w.extents(in.BlockBytes[:], -1, 0, in.Pos)
	} else {
		err = w.blockMap(in)
	}
	w.fs, w.fn = nil, nil
	walkPool.Put(w)
	if err == ErrStop {
		return nil
	}
	return err
}

var walkPool = sync.Pool{New: func() any { return new(blockWalk) }}

func (fs *FS) checkPtr(p uint64, st string, off int64) error {
	if p < uint64(fs.SB.FirstDataBlock) || p >= fs.SB.BlocksCount {
		return formatErr(st, off, "block pointer %d outside the file system (%d..%d)", p, fs.SB.FirstDataBlock, fs.SB.BlocksCount-1)
	}
	return nil
}

// blockWalk is the state of one WalkBlocks: the map blocks seen so far and the count of blocks
// reported, which bound the work whatever the map holds.
type blockWalk struct {
	fs    *FS
	fn    func(BlockRef) error
	bufs  [3][]byte              // one buffer per indirect level
	ebufs [maxExtentDepth][]byte // one buffer per extent tree depth below the root
	maps  map[uint64]struct{}    // map blocks visited
	n     uint64                 // blocks reported
	limit uint64                 // blocks in the file system
}

// emit reports r, found through the pointer at byte off of the device.
func (w *blockWalk) emit(r BlockRef, st string, off int64) error {
	if w.n++; w.n > w.limit {
		return formatErr(st, off, "the inode maps more than %d blocks, all the file system has (a map loop or a cross-linked map)", w.limit)
	}
	return w.fn(r)
}

// enterMap reports map block r and records it; a map block seen before in this walk is a loop.
func (w *blockWalk) enterMap(r BlockRef, st string, off int64) error {
	if w.maps == nil {
		w.maps = make(map[uint64]struct{})
	}
	if _, ok := w.maps[r.Phys]; ok {
		return formatErr(st, off, "%s block %d is already part of this inode's map (a loop or a cross-linked map)", r.Kind, r.Phys)
	}
	w.maps[r.Phys] = struct{}{}
	return w.emit(r, st, off)
}

func (w *blockWalk) blockMap(in *Inode) error {
	fs := w.fs
	for i := 0; i < NDirBlocks; i++ {
		if p := in.Block[i]; p != 0 {
			off := in.Pos + int64(0x28+4*i)
			if err := fs.checkPtr(uint64(p), "inode i_block", off); err != nil {
				return err
			}
			if err := w.emit(BlockRef{BlockData, uint64(i), uint64(p)}, "inode i_block", off); err != nil {
				return err
			}
		}
	}
	per := uint64(fs.bs / 4)
	logical := uint64(NDirBlocks)
	span := per // file blocks mapped by one pointer at this level's top
	for level := 1; level <= 3; level++ {
		if p := in.Block[NDirBlocks+level-1]; p != 0 {
			off := in.Pos + int64(0x28+4*(NDirBlocks+level-1))
			if err := fs.checkPtr(uint64(p), "inode i_block", off); err != nil {
				return err
			}
			if err := w.ind(uint64(p), level, logical, "inode i_block", off); err != nil {
				return err
			}
		}
		logical += span
		span *= per
	}
	return nil
}

var indKinds = [...]BlockKind{0, BlockInd, BlockDInd, BlockTInd}

// indStructs names each level's indirect block in errors ("IND block", ...).
var indStructs = [...]string{"", BlockInd.String() + " block", BlockDInd.String() + " block", BlockTInd.String() + " block"}

// ind visits an indirect block of the given level (1 = IND) mapping file blocks from logical,
// reached through the pointer at byte off (in structure st).
func (w *blockWalk) ind(blk uint64, level int, logical uint64, st string, off int64) error {
	fs := w.fs
	if err := w.enterMap(BlockRef{indKinds[level], logical, blk}, st, off); err != nil {
		return err
	}
	if len(w.bufs[level-1]) != fs.bs {
		w.bufs[level-1] = make([]byte, fs.bs)
	}
	buf := w.bufs[level-1]
	if err := fs.ReadBlock(blk, buf); err != nil {
		return err
	}
	per := fs.bs / 4
	span := uint64(1)
	for i := 1; i < level; i++ {
		span *= uint64(per)
	}
	st = indStructs[level]
	for i := 0; i < per; i++ {
		p := binary.LittleEndian.Uint32(buf[4*i:]) // as ParseIndirect, without its slice
		if p == 0 {
			continue
		}
		poff := int64(blk)*int64(fs.bs) + int64(4*i)
		if err := fs.checkPtr(uint64(p), st, poff); err != nil {
			return err
		}
		lb := logical + uint64(i)*span
		if level == 1 {
			if err := w.emit(BlockRef{BlockData, lb, uint64(p)}, st, poff); err != nil {
				return err
			}
		} else if err := w.ind(uint64(p), level-1, lb, st, poff); err != nil {
			return err
		}
	}
	return nil
}

// extents visits the extent node in b; wantDepth is the depth the parent promised (-1 for the
// root), nodeBlk the node's physical block (0 for the root, used in error offsets). Depth falls
// by one at each level and is at most maxExtentDepth, so the recursion is bounded; a node reached
// twice is caught by enterMap.
func (w *blockWalk) extents(b []byte, wantDepth int, nodeBlk uint64, inodePos int64) error {
	fs := w.fs
	base := int64(nodeBlk) * int64(fs.bs)
	if nodeBlk == 0 {
		base = inodePos + 0x28 // i_block in the inode
	}
	// The entries are decoded in place (no slices of them, as ParseExtentNode returns): an ext4
	// index build walks a node per inode.
	h, err := parseExtentHeader(b)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Offset += base
		}
		return err
	}
	if wantDepth >= 0 && int(h.Depth) != wantDepth {
		return formatErr("extent node", base+6, "eh_depth %d, parent expects %d", h.Depth, wantDepth)
	}
	if h.Depth == 0 {
		for i := 0; i < int(h.Entries); i++ {
			e := extentAt(b, i)
			if e.Len == 0 {
				continue
			}
			off := base + 12 + 12*int64(i)
			if err := fs.checkPtr(e.Start, "extent", off); err != nil {
				return err
			}
			if err := fs.checkPtr(e.Start+uint64(e.Len)-1, "extent", off); err != nil {
				return err
			}
			for j := uint64(0); j < uint64(e.Len); j++ {
				if err := w.emit(BlockRef{BlockData, uint64(e.Block) + j, e.Start + j}, "extent", off); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// One buffer per depth, kept from walk to walk: the child of a node at depth d is at d-1.
	buf := w.ebufs[h.Depth-1]
	if len(buf) != fs.bs {
		buf = make([]byte, fs.bs)
		w.ebufs[h.Depth-1] = buf
	}
	for i := 0; i < int(h.Entries); i++ {
		x := extentIdxAt(b, i)
		off := base + 12 + 12*int64(i)
		if err := fs.checkPtr(x.Leaf, "extent index", off); err != nil {
			return err
		}
		if err := w.enterMap(BlockRef{BlockExtent, uint64(x.Block), x.Leaf}, "extent index", off); err != nil {
			return err
		}
		if err := fs.ReadBlock(x.Leaf, buf); err != nil {
			return err
		}
		if err := w.extents(buf, int(h.Depth)-1, x.Leaf, 0); err != nil {
			return err
		}
	}
	return nil
}

// ReadDir returns the live entries of every block of a directory, in block order. Blocks past
// i_size are ignored, as the kernel does.
func (fs *FS) ReadDir(in *Inode) ([]DirEntry, error) {
	if in.Type() != TypeDir {
		return nil, fmt.Errorf("ext3fs: ReadDir on a %s inode", in.Type())
	}
	if in.HasInlineData() {
		data, err := fs.ReadInlineData(in)
		if err != nil {
			return nil, err
		}
		ents, err := InlineDirEntries(data, fs.SB.HasFiletype())
		if fe, ok := err.(*FormatError); ok {
			if fe.Offset < InlineSize {
				fe.Offset += in.Pos + 0x28 // in i_block
			} else {
				fe.Struct += fmt.Sprintf(" (byte %d of system.data of the inode at byte %d)", fe.Offset-InlineSize, in.Pos)
				fe.Offset += in.Pos
			}
		}
		return ents, err
	}
	out, errs := fs.readDirBlocks(in, true)
	if len(errs) > 0 {
		return out, errs[0]
	}
	return out, nil
}

// readDirBlocks reads a block-mapped directory's entries block by block. A block that cannot
// be read or decoded gives an error naming the block and the byte offset (and the entries
// before the bad one in it); with stop the reading ends there, else the other blocks are read
// all the same (WalkTolerant). A block map that cannot be walked ends the directory.
func (fs *FS) readDirBlocks(in *Inode, stop bool) ([]DirEntry, []error) {
	var out []DirEntry
	var errs []error
	buf := make([]byte, fs.bs)
	nblocks := (in.Size + uint64(fs.bs) - 1) / uint64(fs.bs)
	ft := fs.SB.HasFiletype()
	err := fs.WalkBlocks(in, func(r BlockRef) error {
		if r.Kind != BlockData || r.Logical >= nblocks {
			return nil
		}
		if err := fs.ReadBlock(r.Phys, buf); err != nil {
			errs = append(errs, err)
			if stop {
				return ErrStop
			}
			return nil
		}
		ents, err := ParseDirBlock(buf, ft)
		out = append(out, ents...)
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				fe.Offset += int64(r.Phys) * int64(fs.bs)
				fe.Struct = fmt.Sprintf("directory entry (block %d, logical %d)", r.Phys, r.Logical)
			}
			errs = append(errs, err)
			if stop {
				return ErrStop
			}
		}
		return nil
	})
	if err != nil && err != ErrStop {
		errs = append(errs, err)
	}
	return out, errs
}

// ReadInlineData returns the contents of an INLINE_DATA_FL inode (i_block and its system.data
// attribute), re-reading the inode record at in.Pos for the attribute area.
func (fs *FS) ReadInlineData(in *Inode) ([]byte, error) {
	if in.Pos == 0 {
		return nil, fmt.Errorf("ext3fs: ReadInlineData on an inode not read through FS (no position)")
	}
	raw := make([]byte, fs.SB.InodeSize())
	if _, err := fs.r.ReadAt(raw, in.Pos); err != nil {
		return nil, &FormatError{Struct: "inode", Offset: in.Pos, Msg: "read failed", Err: err}
	}
	data, err := InlineData(in, raw)
	if fe, ok := err.(*FormatError); ok {
		fe.Offset += in.Pos
	}
	return data, err
}

// ReadLink returns a symlink's target: from i_block for fast symlinks, else from data block 0.
func (fs *FS) ReadLink(in *Inode) (string, error) {
	if in.Type() != TypeSymlink {
		return "", fmt.Errorf("ext3fs: ReadLink on a %s inode", in.Type())
	}
	if in.IsFastSymlink() {
		return string(in.BlockBytes[:in.Size]), nil
	}
	if in.HasInlineData() {
		data, err := fs.ReadInlineData(in)
		return string(data), err
	}
	if in.Size > uint64(fs.bs) {
		return "", formatErr("symlink", 0x04, "size %d exceeds one %d-byte block", in.Size, fs.bs)
	}
	var phys uint64
	err := fs.WalkBlocks(in, func(r BlockRef) error {
		if r.Kind == BlockData && r.Logical == 0 {
			phys = r.Phys
			return ErrStop
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if phys == 0 {
		return "", formatErr("symlink", 0x28, "slow symlink of %d bytes has no data block 0", in.Size)
	}
	buf := make([]byte, fs.bs)
	if err := fs.ReadBlock(phys, buf); err != nil {
		return "", err
	}
	return string(buf[:in.Size]), nil
}

// Walk calls fn for "/" and then for every name reachable from it, depth-first with the entries
// of each directory in byte order of their names. A file with several hard links is reported
// once per name; a directory reachable twice (corruption) is descended only once.
func (fs *FS) Walk(fn func(path string, ino uint32, in *Inode) error) error {
	return fs.WalkTolerant(fn, nil)
}

// WalkTolerant is Walk that goes on past what cannot be decoded: a directory block that cannot
// be read or decoded, or an entry whose inode cannot be, is passed to problem with its path (the
// entries of the directory's other blocks, and those before the bad one in its block, are still
// walked); if problem returns nil the walk goes on without it, else the walk stops with that
// error. A nil problem makes it Walk.
func (fs *FS) WalkTolerant(fn func(path string, ino uint32, in *Inode) error, problem func(path string, err error) error) error {
	if problem == nil {
		problem = func(_ string, err error) error { return err }
	}
	root, err := fs.ReadInode(RootIno)
	if err != nil {
		return err
	}
	if t := root.Type(); t != TypeDir {
		blk, off := fs.InodeLocation(RootIno)
		pos := int64(blk)*int64(fs.bs) + int64(off)
		if t == TypeUnknown {
			return formatErr("inode 2", pos, "root inode has no valid type (mode %#o), not a directory", root.Mode)
		}
		return formatErr("inode 2", pos, "root inode is a %s, not a directory", t)
	}
	seen := map[uint32]bool{RootIno: true}
	if err := fn("/", RootIno, root); err != nil {
		if err == ErrStop {
			return nil
		}
		return err
	}
	err = fs.walkDir("/", root, seen, fn, problem)
	if err == ErrStop {
		return nil
	}
	return err
}

func (fs *FS) walkDir(dir string, din *Inode, seen map[uint32]bool, fn func(string, uint32, *Inode) error,
	problem func(string, error) error) error {
	var ents []DirEntry
	var errs []error
	if din.HasInlineData() {
		var err error
		if ents, err = fs.ReadDir(din); err != nil {
			errs = []error{err}
		}
	} else {
		ents, errs = fs.readDirBlocks(din, false)
	}
	for _, err := range errs {
		if err := problem(dir, err); err != nil {
			return err
		}
	}
	sort.SliceStable(ents, func(a, b int) bool { return ents[a].Name < ents[b].Name })
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		p := dir + e.Name
		in, err := fs.ReadInode(e.Inode)
		if err != nil {
			if err := problem(p, err); err != nil {
				return err
			}
			continue
		}
		if err := fn(p, e.Inode, in); err != nil {
			return err
		}
		if in.Type() == TypeDir && !seen[e.Inode] {
			seen[e.Inode] = true
			if err := fs.walkDir(p+"/", in, seen, fn, problem); err != nil {
				return err
			}
		}
	}
	return nil
}
