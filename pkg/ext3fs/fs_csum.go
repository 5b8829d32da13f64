package ext3fs

import (
	"errors"
	"fmt"
)

// Checksums calls fn for every checksummed structure of a metadata_csum file system (or, with
// gdt_csum only, for every group descriptor): the superblock, each group descriptor, the block
// and inode bitmaps of initialised groups, every initialised inode, and for each live inode
// (links > 0) its extent tree blocks, its xattr block and, for directories, every block within
// i_size; with orphan_file, every block of the orphan file. Offsets and Start in the results are device offsets. A structure that cannot be
// decoded stops the walk with its error; a bad checksum does not (fn decides).
func (fs *FS) Checksums(fn func(Checksum) error) error {
	err := fs.checksums(fn)
	if err == ErrStop {
		return nil
	}
	return err
}

func (fs *FS) checksums(fn func(Checksum) error) error {
	sb := fs.SB
	csum := sb.HasMetadataCsum()
	if !csum && !sb.HasGDTCsum() {
		return &FormatError{Struct: "superblock", Offset: SuperblockOffset + 0x64, Err: ErrNoChecksum, Msg: "neither metadata_csum nor gdt_csum is set"}
	}
	emit := func(c Checksum, err error, start int64) error {
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				fe.Offset += start
			}
			return err
		}
		c.Start = start
		c.Offset += start
		return fn(c)
	}
	bs := int64(fs.bs)
	if csum {
		buf := make([]byte, SuperblockSize)
		if _, err := fs.r.ReadAt(buf, SuperblockOffset); err != nil {
			return &FormatError{Struct: "superblock", Offset: SuperblockOffset, Msg: "read failed", Err: err}
		}
		c, err := SuperblockChecksum(buf)
		if err := emit(c, err, SuperblockOffset); err != nil {
			return err
		}
	}
	blk := make([]byte, fs.bs)
	ds := sb.DescSize()
	per := uint32(fs.bs / ds)
	ngroups := sb.GroupCount()
	for i := uint32(0); i*per < ngroups; i++ {
		loc := fs.DescBlock(uint64(i))
		if err := fs.ReadBlock(loc, blk); err != nil {
			return err
		}
		for j := uint32(0); j < per && i*per+j < ngroups; j++ {
			c, err := sb.GroupDescChecksum(i*per+j, blk[int(j)*ds:])
			if err := emit(c, err, int64(loc)*bs+int64(j)*int64(ds)); err != nil {
				return err
			}
		}
	}
	if !csum {
		return nil
	}
	for g := range fs.Groups {
		d := &fs.Groups[g]
		if d.Flags&BGBlockUninit == 0 {
			if err := fs.ReadBlock(d.BlockBitmap, blk); err != nil {
				return err
			}
			c, err := sb.BlockBitmapChecksum(uint32(g), d, blk)
			if err := emit(c, err, int64(d.BlockBitmap)*bs); err != nil {
				return err
			}
		}
		if d.Flags&BGInodeUninit == 0 {
			if err := fs.ReadBlock(d.InodeBitmap, blk); err != nil {
				return err
			}
			c, err := sb.InodeBitmapChecksum(uint32(g), d, blk)
			if err := emit(c, err, int64(d.InodeBitmap)*bs); err != nil {
				return err
			}
		}
	}
	isz := sb.InodeSize()
	raw := make([]byte, isz)
	var in Inode
	for g := range fs.Groups {
		d := &fs.Groups[g]
		if d.Flags&BGInodeUninit != 0 {
			continue
		}
		// Past bg_itable_unused the table may never have been written (lazy_itable_init).
		used := sb.InodesPerGroup - min(d.ItableUnused, sb.InodesPerGroup)
		for k := uint32(0); k < used; k++ {
			ino := uint32(g)*sb.InodesPerGroup + k + 1
			b, off := fs.InodeLocation(ino)
			pos := int64(b)*bs + int64(off)
			if _, err := fs.r.ReadAt(raw, pos); err != nil {
				return &FormatError{Struct: fmt.Sprintf("inode %d", ino), Offset: pos, Msg: "read failed", Err: err}
			}
			c, err := sb.InodeChecksum(ino, raw)
			if err := emit(c, err, pos); err != nil {
				return err
			}
			if c.Unset {
				continue
			}
			if err := fs.DecodeInodeInto(ino, raw, pos, &in); err != nil {
				return err
			}
			if in.LinksCount == 0 {
				continue
			}
			if err := fs.inodeBlockChecksums(ino, &in, blk, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// inodeBlockChecksums checks the checksummed blocks one live inode owns.
func (fs *FS) inodeBlockChecksums(ino uint32, in *Inode, blk []byte, emit func(Checksum, error, int64) error) error {
	sb := fs.SB
	bs := int64(fs.bs)
	if in.FileACL != 0 {
		if err := fs.ReadBlock(in.FileACL, blk); err != nil {
			return err
		}
		c, err := sb.XattrBlockChecksum(in.FileACL, blk)
		if err := emit(c, err, int64(in.FileACL)*bs); err != nil {
			return err
		}
	}
	isDir := in.Type() == TypeDir
	orphans := ino == sb.OrphanFileInum && sb.FeatureCompat&CompatOrphanFile != 0
	nblocks := (in.Size + uint64(fs.bs) - 1) / uint64(fs.bs)
	if !in.UsesExtents() && !isDir && !orphans {
		return nil
	}
	return fs.WalkBlocks(in, func(r BlockRef) error {
		var c Checksum
		var err error
		switch {
		case r.Kind == BlockExtent:
			if err := fs.ReadBlock(r.Phys, blk); err != nil {
				return err
			}
			c, err = sb.ExtentBlockChecksum(ino, in.Generation, blk)
		case isDir && r.Kind == BlockData && r.Logical < nblocks:
			if err := fs.ReadBlock(r.Phys, blk); err != nil {
				return err
			}
			c, err = sb.DirBlockChecksum(ino, in.Generation, blk)
			if err != nil {
				var fe *FormatError
				if errors.As(err, &fe) {
					fe.Struct = fmt.Sprintf("directory block of inode %d (logical %d)", ino, r.Logical)
				}
			}
		case orphans && r.Kind == BlockData:
			if err := fs.ReadBlock(r.Phys, blk); err != nil {
				return err
			}
			c, err = sb.OrphanBlockChecksum(ino, in.Generation, r.Phys, blk)
		default:
			return nil
		}
		return emit(c, err, int64(r.Phys)*bs)
	})
}
