package ext3fs

// Fast-commit replay: after the jbd2 passes, the fast commits of the tid after the last full
// commit (the ones ScanFastCommits accepts) are applied to the recovery overlay, record by
// record in log order, as the kernel's ext4_fc_replay does at mount (fs/ext4/fast_commit.c):
//
//   - INODE: the raw inode is copied over the on-disk one (ext4_fc_replay_inode). The kernel keeps
//     the on-disk extent tree and rebuilds it from the ADD_RANGE/DEL_RANGE records; the logged
//     i_block is the in-memory root after those same ranges, so when it is a tree of depth 0 it
//     is taken as it is (the mapping is the same, only the split into extents may differ). A
//     deeper tree names index and leaf blocks that only the next full commit would have written:
//     such an inode keeps its on-disk tree and the replay says so (FastCommitErr).
//   - CREAT_DENTRY, ADD_ENTRY: the name is added to the parent directory (in the first leaf block
//     with room); a new directory gets its "." and ".." block first (ext4_init_new_dir).
//   - DEL_ENTRY: the name is removed.
//   - ADD_RANGE, DEL_RANGE: carried by the INODE record that follows them (above).
//
// Bitmaps follow each INODE record (ext4_fc_set_bitmaps_and_counters): the blocks it maps are in
// use, the ones it no longer maps free, the inode in use while it has links (bg_itable_unused
// lowered past it). Checksums of what is written (inodes, directory blocks, bitmaps, group
// descriptors) are recomputed under metadata_csum. The free-block and free-inode counters are not
// updated (nothing in the analysis reads them; e2fsck -fy recomputes them).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// ReplayFastCommits applies complete fast commits (from ScanFastCommits) over r, a file system
// in the state jbd2 recovery leaves it, as the mount's fast-commit replay does (above), and
// returns the view after it; r is only read. FastCommits, FastCommitRecords, FastCommitErr (what
// could not be replayed; the rest was) and FastCommitBlocks (the blocks written) say what it did;
// Blocks lists the same blocks. For a caller that keeps its own recovered view of a disk (the
// checker's, at a fast commit seen in a log); the error is an r it cannot open as a file system.
func ReplayFastCommits(r io.ReaderAt, commits []FCCommit) (*Recovery, error) {
	fs, err := OpenWith(r, Options{InlineData: true})
	if err != nil {
		return nil, err
	}
	rc := &Recovery{base: r, bs: int64(fs.BlockSize()), over: map[uint64][]byte{}, FastCommits: len(commits)}
	for _, c := range commits {
		rc.FastCommitRecords += len(c.Records)
	}
	if len(commits) > 0 {
		rc.FastCommitErr = rc.replayFastCommits(commits)
	}
	rc.Blocks = slices.Sorted(maps.Keys(rc.over))
	return rc, nil
}

// fcReplay applies fast commits to the recovery overlay.
type fcReplay struct {
	rc    *Recovery
	fs    *FS // over the overlay: reads see what the replay wrote
	wrote map[uint64]bool
}

// patch writes p at byte off of the overlay and notes the blocks.
func (fr *fcReplay) patch(off int64, p []byte) {
	bs := int64(fr.fs.BlockSize())
	for b := off / bs; b*bs < off+int64(len(p)); b++ {
		fr.wrote[uint64(b)] = true
	}
	fr.rc.patch(off, p)
}

// replayFastCommits applies commits; what it could not apply is returned (joined), the rest is
// applied regardless.
func (rc *Recovery) replayFastCommits(commits []FCCommit) error {
	fs, err := OpenWith(rc, Options{InlineData: true})
	if err != nil {
		return err
	}
	fr := &fcReplay{rc: rc, fs: fs, wrote: map[uint64]bool{}}
	defer func() {
		rc.FastCommitBlocks = rc.FastCommitBlocks[:0]
		for b := range fr.wrote {
			rc.FastCommitBlocks = append(rc.FastCommitBlocks, b)
		}
		slices.Sort(rc.FastCommitBlocks)
	}()
	var errs []error
	for _, c := range commits {
		for _, rec := range c.Records {
			var err error
			switch rec.Tag {
			case FCTagInode:
				err = fr.inode(rec)
			case FCTagCreat, FCTagLink:
				err = fr.addEntry(rec, rec.Tag == FCTagCreat)
			case FCTagUnlink:
				err = fr.removeEntry(rec)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("fast commit of tid %d, %s record in the fast commit starting at area block %d: %w", c.TID, rec.Tag, c.Block, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (fr *fcReplay) checkIno(ino uint32) error {
	if ino == 0 || ino > fr.fs.SB.InodesCount {
		return fmt.Errorf("inode %d does not exist (%d inodes)", ino, fr.fs.SB.InodesCount)
	}
	return nil
}

// rawInode returns a copy of inode ino's on-disk record (s_inode_size bytes) and its offset.
func (fr *fcReplay) rawInode(ino uint32) ([]byte, int64, error) {
	blk, off := fr.fs.InodeLocation(ino)
	pos := int64(blk)*int64(fr.fs.BlockSize()) + int64(off)
	b := make([]byte, fr.fs.SB.InodeSize())
	if _, err := fr.rc.ReadAt(b, pos); err != nil {
		return nil, pos, &FormatError{Struct: fmt.Sprintf("inode %d", ino), Offset: pos, Msg: "read failed", Err: err}
	}
	return b, pos, nil
}

// inode copies a logged inode over the on-disk one (see the file comment).
func (fr *fcReplay) inode(rec FCRecord) error {
	if err := fr.checkIno(rec.Ino); err != nil {
		return err
	}
	raw, pos, err := fr.rawInode(rec.Ino)
	if err != nil {
		return err
	}
	logged := rec.RawInode
	if len(logged) > len(raw) {
		logged = logged[:len(raw)]
	}
	const iBlock, iBlockEnd = 0x28, 0x64
	keep := append([]byte(nil), raw[iBlock:iBlockEnd]...)
	before := fr.inodeBlocks(rec.Ino, raw)
	copy(raw, logged)
	var err2 error
	in, perr := ParseInode(raw)
	if perr == nil && in.UsesExtents() && !in.HasInlineData() {
		if eh, _, _, err := ParseExtentNode(raw[iBlock:iBlockEnd]); err != nil || eh.Depth > 0 {
			copy(raw[iBlock:], keep)
			if err == nil {
				err2 = fmt.Errorf("inode %d: its logged extent tree has depth %d, whose nodes only a full commit writes: its on-disk mapping is kept", rec.Ino, eh.Depth)
			}
		}
	}
	fr.setInodeChecksum(rec.Ino, raw)
	fr.patch(pos, raw)
	// Bitmaps: the blocks it no longer maps are free, the ones it maps in use, and so is the
	// inode while it has a link (ext4_fc_set_bitmaps_and_counters).
	after := fr.inodeBlocks(rec.Ino, raw)
	var freed, used []uint64
	for b := range before {
		if !after[b] {
			freed = append(freed, b)
		}
	}
	for b := range after {
		used = append(used, b)
	}
	slices.Sort(freed)
	slices.Sort(used)
	errs := []error{err2, fr.markBlocks(freed, false), fr.markBlocks(used, true)}
	if in, err := ParseInode(raw); err == nil && in.Live() {
		errs = append(errs, fr.markInode(rec.Ino))
	}
	return errors.Join(errs...)
}

func (fr *fcReplay) setInodeChecksum(ino uint32, raw []byte) {
	if !fr.fs.SB.HasMetadataCsum() {
		return
	}
	c, err := fr.fs.SB.InodeChecksum(ino, raw)
	if err != nil {
		return
	}
	le := binary.LittleEndian
	le.PutUint16(raw[inodeCsumLo:], uint16(c.Computed))
	if c.Bits == 32 {
		le.PutUint16(raw[inodeCsumHi:], uint16(c.Computed>>16))
	}
}

// dirLeaves returns the directory's blocks that hold plain entries (an htree's root and index
// nodes left out), in logical order.
func (fr *fcReplay) dirLeaves(dir uint32) (*Inode, []uint64, error) {
	din, err := fr.fs.ReadInode(dir)
	if err != nil {
		return nil, nil, err
	}
	if din.Type() != TypeDir {
		return nil, nil, fmt.Errorf("inode %d is not a directory", dir)
	}
	if din.HasInlineData() {
		return nil, nil, fmt.Errorf("directory inode %d is inline: not replayed", dir)
	}
	var blocks []uint64
	err = fr.fs.WalkBlocks(din, func(br BlockRef) error {
		if br.Kind != BlockData {
			return nil
		}
		if din.IsHtree() {
			if br.Logical == 0 {
				return nil
			}
			b := make([]byte, fr.fs.BlockSize())
			if err := fr.fs.ReadBlock(br.Phys, b); err == nil && binary.LittleEndian.Uint32(b) == 0 &&
				recLen(binary.LittleEndian.Uint16(b[4:]), len(b)) == len(b) {
				if _, err := ParseDxNode(b); err == nil {
					return nil
				}
			}
		}
		blocks = append(blocks, br.Phys)
		return nil
	})
	return din, blocks, err
}

func direntSize(nameLen int) int { return (DirEntryHeaderSize + nameLen + 3) &^ 3 }

// putDirent writes an entry at off of b.
func (fr *fcReplay) putDirent(b []byte, off int, ino uint32, rl int, name string, ft uint8) {
	le := binary.LittleEndian
	le.PutUint32(b[off:], ino)
	le.PutUint16(b[off+4:], uint16(rl))
	if fr.fs.SB.HasFiletype() {
		b[off+6], b[off+7] = byte(len(name)), ft
	} else {
		le.PutUint16(b[off+6:], uint16(len(name)))
	}
	copy(b[off+DirEntryHeaderSize:], name)
}

// fileTypeOf is the directory entry file type of inode ino (EXT2_FT_*).
func (fr *fcReplay) fileTypeOf(ino uint32) uint8 {
	in, err := fr.fs.ReadInode(ino)
	if err != nil {
		return 0
	}
	switch in.Type() {
	case TypeRegular:
		return 1
	case TypeDir:
		return 2
	case TypeChar:
		return 3
	case TypeBlock:
		return 4
	case TypeFIFO:
		return 5
	case TypeSocket:
		return 6
	case TypeSymlink:
		return 7
	}
	return 0
}

// writeDirBlock recomputes a leaf's checksum tail, if it has one, and writes it to the overlay.
func (fr *fcReplay) writeDirBlock(dir uint32, gen uint32, blk uint64, b []byte) {
	if fr.fs.SB.HasMetadataCsum() {
		if top, ok := DirTailOffset(b); ok {
			if c, err := fr.fs.SB.DirBlockChecksum(dir, gen, b); err == nil {
				binary.LittleEndian.PutUint32(b[top+8:], c.Computed)
			}
		}
	}
	fr.patch(int64(blk)*int64(len(b)), b)
}

// addEntry adds name -> ino to the parent directory (ext4_fc_replay_link_internal); create
// also sets up a new directory's own block first.
func (fr *fcReplay) addEntry(rec FCRecord, create bool) error {
	if err := fr.checkIno(rec.Ino); err != nil {
		return err
	}
	if create && fr.fileTypeOf(rec.Ino) == 2 {
		if err := fr.initDir(rec.Ino, rec.Parent); err != nil {
			return err
		}
	}
	din, leaves, err := fr.dirLeaves(rec.Parent)
	if err != nil {
		return err
	}
	need := direntSize(len(rec.Name))
	ft := fr.fileTypeOf(rec.Ino)
	b := make([]byte, fr.fs.BlockSize())
	for _, blk := range leaves {
		if err := fr.fs.ReadBlock(blk, b); err != nil {
			return err
		}
		found, placed := false, false
		walkErr := walkRaw(b, fr.fs.SB.HasFiletype(), func(off, rl int, ino uint32, name []byte) bool {
			if ino == rec.Ino && string(name) == rec.Name {
				found = true
				return false
			}
			used := 0
			if ino != 0 {
				used = direntSize(len(name))
			}
			if rl-used < need || (ino == 0 && rl == DirTailSize && off == len(b)-DirTailSize) {
				return true
			}
			if ino == 0 {
				fr.putDirent(b, off, rec.Ino, rl, rec.Name, ft)
			} else {
				binary.LittleEndian.PutUint16(b[off+4:], uint16(used))
				fr.putDirent(b, off+used, rec.Ino, rl-used, rec.Name, ft)
			}
			placed = true
			return false
		})
		if found {
			return nil // already there (replayed twice, or written home before the crash)
		}
		if walkErr != nil {
			continue
		}
		if placed {
			fr.writeDirBlock(rec.Parent, din.Generation, blk, b)
			return nil
		}
	}
	return fmt.Errorf("no room for %q in directory inode %d without a new block: not replayed", rec.Name, rec.Parent)
}

// removeEntry removes name -> ino from the parent directory (ext4_fc_replay_unlink).
func (fr *fcReplay) removeEntry(rec FCRecord) error {
	din, leaves, err := fr.dirLeaves(rec.Parent)
	if err != nil {
		return err
	}
	b := make([]byte, fr.fs.BlockSize())
	for _, blk := range leaves {
		if err := fr.fs.ReadBlock(blk, b); err != nil {
			return err
		}
		prev, done := -1, false
		_ = walkRaw(b, fr.fs.SB.HasFiletype(), func(off, rl int, ino uint32, name []byte) bool {
			if ino == rec.Ino && string(name) == rec.Name {
				if prev >= 0 {
					prl := recLen(binary.LittleEndian.Uint16(b[prev+4:]), len(b))
					binary.LittleEndian.PutUint16(b[prev+4:], uint16(prl+rl))
				} else {
					binary.LittleEndian.PutUint32(b[off:], 0)
				}
				done = true
				return false
			}
			prev = off
			return true
		})
		if done {
			fr.writeDirBlock(rec.Parent, din.Generation, blk, b)
			return nil
		}
	}
	return nil // not there: nothing to remove (the kernel ignores it too)
}

// initDir writes a new directory's first block: "." and ".." (and the checksum tail).
func (fr *fcReplay) initDir(dir, parent uint32) error {
	din, err := fr.fs.ReadInode(dir)
	if err != nil {
		return err
	}
	var first uint64
	_ = fr.fs.WalkBlocks(din, func(br BlockRef) error {
		if br.Kind == BlockData && br.Logical == 0 {
			first = br.Phys
			return ErrStop
		}
		return nil
	})
	if first == 0 || din.HasInlineData() {
		return nil // inline or empty: nothing to set up in a block
	}
	bs := fr.fs.BlockSize()
	b := make([]byte, bs)
	top := bs
	if fr.fs.SB.HasMetadataCsum() {
		top -= DirTailSize
		binary.LittleEndian.PutUint16(b[top+4:], DirTailSize)
		b[top+7] = DirTailFileType
	}
	fr.putDirent(b, 0, dir, 12, ".", 2)
	fr.putDirent(b, 12, parent, top-12, "..", 2)
	fr.writeDirBlock(dir, din.Generation, first, b)
	return nil
}

// walkRaw calls fn for every entry of a linear directory block, deleted ones (inode 0) included,
// with its offset and rec_len; fn returns false to stop. An error says the block does not chain.
func walkRaw(b []byte, hasFiletype bool, fn func(off, rl int, ino uint32, name []byte) bool) error {
	le := binary.LittleEndian
	for off := 0; off < len(b); {
		if off+DirEntryHeaderSize > len(b) {
			return formatErr("directory block", int64(off), "entry header runs past the block")
		}
		rl := recLen(le.Uint16(b[off+4:]), len(b))
		nl := int(b[off+6])
		if !hasFiletype {
			nl = int(le.Uint16(b[off+6:]))
		}
		if rl < DirEntryHeaderSize || rl%4 != 0 || off+rl > len(b) || DirEntryHeaderSize+nl > rl {
			return formatErr("directory block", int64(off), "rec_len %d, name_len %d", rl, nl)
		}
		if !fn(off, rl, le.Uint32(b[off:]), b[off+DirEntryHeaderSize:off+DirEntryHeaderSize+nl]) {
			return nil
		}
		off += rl
	}
	return nil
}

// groupDesc reads descriptor g from the overlay: its bytes, their offset and the decoded form.
func (fr *fcReplay) groupDesc(g uint32) ([]byte, int64, GroupDesc, error) {
	sb := fr.fs.SB
	ds, bs := sb.DescSize(), fr.fs.BlockSize()
	per := uint32(bs / ds)
	off := int64(fr.fs.DescBlock(uint64(g/per)))*int64(bs) + int64(g%per)*int64(ds)
	b := make([]byte, ds)
	if _, err := fr.rc.ReadAt(b, off); err != nil {
		return nil, off, GroupDesc{}, &FormatError{Struct: fmt.Sprintf("group descriptor %d", g), Offset: off, Msg: "read failed", Err: err}
	}
	d, err := ParseGroupDesc(b, ds)
	return b, off, d, err
}

// putGroupDesc stores a descriptor and its bitmap checksums (bitmaps given when changed) and
// recomputes its own checksum.
func (fr *fcReplay) putGroupDesc(g uint32, b []byte, off int64, d *GroupDesc, blockBitmap, inodeBitmap []byte) {
	sb := fr.fs.SB
	le := binary.LittleEndian
	if sb.HasMetadataCsum() {
		if blockBitmap != nil {
			if c, err := sb.BlockBitmapChecksum(g, d, blockBitmap); err == nil {
				le.PutUint16(b[0x18:], uint16(c.Computed))
				if c.Bits == 32 {
					le.PutUint16(b[0x38:], uint16(c.Computed>>16))
				}
			}
		}
		if inodeBitmap != nil {
			if c, err := sb.InodeBitmapChecksum(g, d, inodeBitmap); err == nil {
				le.PutUint16(b[0x1A:], uint16(c.Computed))
				if c.Bits == 32 {
					le.PutUint16(b[0x3A:], uint16(c.Computed>>16))
				}
			}
		}
	}
	if c, err := sb.GroupDescChecksum(g, b); err == nil {
		le.PutUint16(b[0x1E:], uint16(c.Computed))
	}
	fr.patch(off, b)
}

// markInode sets inode ino in use in its group's inode bitmap, as ext4_mark_inode_used does:
// the bitmap initialised if the group had none yet, bg_itable_unused lowered past it.
func (fr *fcReplay) markInode(ino uint32) error {
	sb := fr.fs.SB
	g, i := (ino-1)/sb.InodesPerGroup, (ino-1)%sb.InodesPerGroup
	b, off, d, err := fr.groupDesc(g)
	if err != nil {
		return err
	}
	bm := make([]byte, fr.fs.BlockSize())
	le := binary.LittleEndian
	if d.Flags&BGInodeUninit != 0 {
		le.PutUint16(b[0x12:], d.Flags&^BGInodeUninit)
	} else if err := fr.fs.ReadBlock(d.InodeBitmap, bm); err != nil {
		return err
	}
	if bm[i/8]&(1<<(i%8)) != 0 && d.Flags&BGInodeUninit == 0 {
		return nil
	}
	bm[i/8] |= 1 << (i % 8)
	if sb.FeatureRoCompat&(RoCompatGDTCsum|RoCompatMetadataCsum) != 0 && i >= sb.InodesPerGroup-d.ItableUnused {
		unused := sb.InodesPerGroup - i - 1
		le.PutUint16(b[0x1C:], uint16(unused))
		if sb.DescSize() >= 0x34 {
			le.PutUint16(b[0x32:], uint16(unused>>16))
		}
	}
	fr.patch(int64(d.InodeBitmap)*int64(len(bm)), bm)
	fr.putGroupDesc(g, b, off, &d, nil, bm)
	return nil
}

// markBlocks sets (used) or clears the bits of blocks in the block bitmaps, as
// ext4_fc_set_bitmaps_and_counters and the range replay do.
func (fr *fcReplay) markBlocks(blocks []uint64, used bool) error {
	sb := fr.fs.SB
	bs := fr.fs.BlockSize()
	for len(blocks) > 0 {
		g := uint32((blocks[0] - uint64(sb.FirstDataBlock)) / uint64(sb.BlocksPerGroup))
		b, off, d, err := fr.groupDesc(g)
		if err != nil {
			return err
		}
		if d.Flags&BGBlockUninit != 0 {
			// No bitmap on disk yet: the group's metadata is implied; leave it to the kernel.
			blocks = blocks[1:]
			continue
		}
		bm := make([]byte, bs)
		if err := fr.fs.ReadBlock(d.BlockBitmap, bm); err != nil {
			return err
		}
		rest := blocks[:0:0]
		for _, blk := range blocks {
			bg := uint32((blk - uint64(sb.FirstDataBlock)) / uint64(sb.BlocksPerGroup))
			if bg != g {
				rest = append(rest, blk)
				continue
			}
			i := (blk - uint64(sb.FirstDataBlock)) % uint64(sb.BlocksPerGroup)
			if used {
				bm[i/8] |= 1 << (i % 8)
			} else {
				bm[i/8] &^= 1 << (i % 8)
			}
		}
		blocks = rest
		fr.patch(int64(d.BlockBitmap)*int64(bs), bm)
		fr.putGroupDesc(g, b, off, &d, bm, nil)
	}
	return nil
}

// inodeBlocks lists every block an inode maps (data and map blocks), from its raw record.
func (fr *fcReplay) inodeBlocks(ino uint32, raw []byte) map[uint64]bool {
	out := map[uint64]bool{}
	in, err := fr.fs.DecodeInode(ino, raw, 0)
	if err != nil || !in.Live() {
		return out
	}
	_ = fr.fs.WalkBlocks(in, func(br BlockRef) error {
		out[br.Phys] = true
		return nil
	})
	return out
}
