package ext3fs

import (
	"encoding/binary"
	"fmt"
)

// Reserved inode numbers.
const (
	BadBlocksIno  = 1
	RootIno       = 2
	ResizeIno     = 7
	JournalIno    = 8
	GoodOldInodes = 11 // first non-reserved inode of revision 0
)

// Inode flags (i_flags) that change how the inode is read.
const (
	InodeIndexFl      = 0x1000     // hashed-indexed directory
	InodeJournalData  = 0x4000     // data journalling
	InodeHugeFileFl   = 0x40000    // i_blocks counts fs blocks, not 512-byte sectors
	InodeExtentsFl    = 0x80000    // i_block holds an extent tree
	InodeEAInodeFl    = 0x200000   // inode holds a large xattr value
	InodeInlineDataFl = 0x10000000 // data stored in i_block / xattrs
)

// Mode type bits (i_mode & 0xF000).
const (
	ModeFIFO   = 0x1000
	ModeChar   = 0x2000
	ModeDir    = 0x4000
	ModeBlock  = 0x6000
	ModeReg    = 0x8000
	ModeLink   = 0xA000
	ModeSocket = 0xC000
	ModeType   = 0xF000
)

// FileType is an inode's type. The values equal the directory entry file_type codes.
type FileType uint8

const (
	TypeUnknown FileType = iota
	TypeRegular
	TypeDir
	TypeChar
	TypeBlock
	TypeFIFO
	TypeSocket
	TypeSymlink
)

var fileTypeNames = [...]string{"unknown", "file", "dir", "char", "block", "fifo", "socket", "symlink"}

func (t FileType) String() string {
	if int(t) < len(fileTypeNames) {
		return fileTypeNames[t]
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// Inode is a decoded on-disk inode (struct ext2_inode plus the large-inode fields).
type Inode struct {
	Mode       uint16
	UID, GID   uint32
	Size       uint64 // i_size | i_size_high<<32
	Atime      uint32
	Ctime      uint32
	Mtime      uint32
	Dtime      uint32
	LinksCount uint16
	// Blocks512 is i_blocks (lo | hi<<32). It counts 512-byte sectors unless Flags has
	// InodeHugeFileFl, in which case FS.ReadInode has already converted it to sectors.
	Blocks512  uint64
	Flags      uint32
	Version    uint32 // osd1
	Block      [15]uint32
	Generation uint32
	FileACL    uint64 // xattr block
	ExtraIsize uint16 // bytes in use past 128 (0 for 128-byte inodes)
	// BlockBytes is i_block as raw bytes: the extent root, fast-symlink text or inline data.
	BlockBytes [60]byte
	// Pos is the device byte offset the inode was read from (set by FS.ReadInode and
	// FS.DecodeInode; 0 from ParseInode). Errors about its i_block add it to their offset.
	Pos int64
}

// InodeRecordSize is the size of the original ext2 inode; larger inodes extend it.
const InodeRecordSize = 128

// ParseInode decodes one on-disk inode. b holds the whole inode record (128 bytes or more).
func ParseInode(b []byte) (*Inode, error) {
	in := new(Inode)
	if err := ParseInodeInto(b, in); err != nil {
		return nil, err
	}
	return in, nil
}

// ParseInodeInto is ParseInode decoding into an existing Inode, for scans that decode many
// inodes without allocating.
func ParseInodeInto(b []byte, in *Inode) error {
	if len(b) < InodeRecordSize {
		return formatErr("inode", 0, "need %d bytes, have %d", InodeRecordSize, len(b))
	}
	le := binary.LittleEndian
	*in = Inode{
		Mode:       le.Uint16(b[0x00:]),
		UID:        uint32(le.Uint16(b[0x02:])) | uint32(le.Uint16(b[0x78:]))<<16,
		Size:       uint64(le.Uint32(b[0x04:])) | uint64(le.Uint32(b[0x6C:]))<<32,
		Atime:      le.Uint32(b[0x08:]),
		Ctime:      le.Uint32(b[0x0C:]),
		Mtime:      le.Uint32(b[0x10:]),
		Dtime:      le.Uint32(b[0x14:]),
		GID:        uint32(le.Uint16(b[0x18:])) | uint32(le.Uint16(b[0x7A:]))<<16,
		LinksCount: le.Uint16(b[0x1A:]),
		Blocks512:  uint64(le.Uint32(b[0x1C:])) | uint64(le.Uint16(b[0x74:]))<<32,
		Flags:      le.Uint32(b[0x20:]),
		Version:    le.Uint32(b[0x24:]),
		Generation: le.Uint32(b[0x64:]),
		FileACL:    uint64(le.Uint32(b[0x68:])) | uint64(le.Uint16(b[0x76:]))<<32,
	}
	copy(in.BlockBytes[:], b[0x28:0x64])
	for i := range in.Block {
		in.Block[i] = le.Uint32(b[0x28+4*i:])
	}
	if len(b) >= 0x82 {
		in.ExtraIsize = le.Uint16(b[0x80:])
		if int(in.ExtraIsize) > len(b)-InodeRecordSize {
			return formatErr("inode", 0x80, "i_extra_isize %d runs past the %d-byte inode", in.ExtraIsize, len(b))
		}
	}
	return nil
}

// Type decodes the file type from i_mode.
func (in *Inode) Type() FileType {
	switch in.Mode & ModeType {
	case ModeReg:
		return TypeRegular
	case ModeDir:
		return TypeDir
	case ModeLink:
		return TypeSymlink
	case ModeChar:
		return TypeChar
	case ModeBlock:
		return TypeBlock
	case ModeFIFO:
		return TypeFIFO
	case ModeSocket:
		return TypeSocket
	}
	return TypeUnknown
}

// IsFastSymlink reports a symlink whose target is stored in i_block. This is e2fsprogs'
// ext2fs_is_fast_symlink rule (0 < size < 60), which matches what ext2/3/4 kernels create.
func (in *Inode) IsFastSymlink() bool {
	return in.Type() == TypeSymlink && in.Flags&InodeInlineDataFl == 0 && in.Size > 0 && in.Size < uint64(len(in.BlockBytes))
}

// UsesExtents reports EXTENTS_FL: i_block is an extent tree root, not a block map.
func (in *Inode) UsesExtents() bool { return in.Flags&InodeExtentsFl != 0 }

// IsHtree reports INDEX_FL: a directory with an htree index in logical block 0.
func (in *Inode) IsHtree() bool { return in.Flags&InodeIndexFl != 0 }

// HasInlineData reports INLINE_DATA_FL: the data lives in i_block and xattrs, not in blocks.
func (in *Inode) HasInlineData() bool { return in.Flags&InodeInlineDataFl != 0 }

// Live reports an inode that exists in the namespace sense: a type and at least one link. (A
// file unlinked while still open has no links: for names it is gone; its blocks stay until the
// last close frees the inode.)
func (in *Inode) Live() bool {
	return in != nil && in.Mode&ModeType != 0 && in.LinksCount > 0
}

// Allocated reports an inode whose blocks are in use: a mode, and links or no deletion time
// (an unlinked file still open keeps its blocks; e2fsck's rule for a deleted inode is a
// dtime with no links).
func (in *Inode) Allocated() bool {
	return in != nil && in.Mode != 0 && (in.LinksCount > 0 || in.Dtime == 0)
}

// Perm is the permission bits of i_mode (including setuid/setgid/sticky).
func (in *Inode) Perm() uint16 { return in.Mode &^ ModeType }

// HasBlocks reports whether i_block holds block pointers or an extent root, as opposed to a
// fast-symlink target, a device number or inline data.
func (in *Inode) HasBlocks() bool {
	switch in.Type() {
	case TypeChar, TypeBlock, TypeFIFO, TypeSocket:
		return false
	case TypeSymlink:
		if in.IsFastSymlink() {
			return false
		}
	}
	return !in.HasInlineData()
}

// Device returns the major and minor numbers of a character or block device inode, in either
// the old (i_block[0]) or the new (i_block[1]) encoding.
func (in *Inode) Device() (major, minor uint32) {
	if d := in.Block[0]; d != 0 {
		return (d >> 8) & 0xff, d & 0xff
	}
	d := in.Block[1]
	return (d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00)
}
