package ext3fs

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// SuperblockSize is the on-disk size of the superblock, which always starts at device byte 1024.
const (
	SuperblockOffset = 1024
	SuperblockSize   = 1024
	SuperMagic       = 0xEF53
)

// Feature bits (ext2_fs.h).
const (
	CompatDirPrealloc   = 0x1
	CompatImagicInodes  = 0x2
	CompatHasJournal    = 0x4
	CompatExtAttr       = 0x8
	CompatResizeInode   = 0x10
	CompatDirIndex      = 0x20
	CompatLazyBG        = 0x40
	CompatExcludeBitmap = 0x100
	CompatSparseSuper2  = 0x200
	CompatFastCommit    = 0x400
	CompatStableInodes  = 0x800
	CompatOrphanFile    = 0x1000

	IncompatCompression = 0x1
	IncompatFiletype    = 0x2
	IncompatRecover     = 0x4
	IncompatJournalDev  = 0x8
	IncompatMetaBG      = 0x10
	IncompatExtents     = 0x40
	Incompat64Bit       = 0x80
	IncompatMMP         = 0x100
	IncompatFlexBG      = 0x200
	IncompatEAInode     = 0x400
	IncompatDirData     = 0x1000
	IncompatCsumSeed    = 0x2000
	IncompatLargeDir    = 0x4000
	IncompatInlineData  = 0x8000
	IncompatEncrypt     = 0x10000
	IncompatCasefold    = 0x20000

	RoCompatSparseSuper  = 0x1
	RoCompatLargeFile    = 0x2
	RoCompatBtreeDir     = 0x4
	RoCompatHugeFile     = 0x8
	RoCompatGDTCsum      = 0x10
	RoCompatDirNlink     = 0x20
	RoCompatExtraIsize   = 0x40
	RoCompatHasSnapshot  = 0x80
	RoCompatQuota        = 0x100
	RoCompatBigalloc     = 0x200
	RoCompatMetadataCsum = 0x400
	RoCompatReplica      = 0x800
	RoCompatReadonly     = 0x1000
	RoCompatProject      = 0x2000
	RoCompatSharedBlocks = 0x4000
	RoCompatVerity       = 0x8000
	RoCompatOrphanPres   = 0x10000
)

// SupportedIncompat are the incompat features this package reads correctly. Anything else changes
// the meaning of structures we decode, so Open refuses it. RECOVER only means the journal holds
// transactions not yet checkpointed; the metadata read from the image is then the pre-journal
// state, which is exactly what a replayer starts from.
const SupportedIncompat = IncompatFiletype | IncompatRecover | IncompatMetaBG | IncompatExtents |
	Incompat64Bit | IncompatMMP | IncompatFlexBG | IncompatCsumSeed | IncompatLargeDir

// UnsupportedRoCompat are the ro_compat features refused at open although a reader could mount
// them: bigalloc changes what a bit of the block bitmap and an allocation unit mean, and verity
// stores a Merkle tree past i_size in a file's own blocks, which the replay model would take
// for file data.
const UnsupportedRoCompat = RoCompatBigalloc | RoCompatVerity

// DecodableIncompat adds to SupportedIncompat the features the decoders read but ParseSuperblock
// and Open still refuse, because a caller that follows the file system as it changes must model
// them too: inline_data (files and directories stored in the inode). OpenWith accepts them on
// request.
const DecodableIncompat = SupportedIncompat | IncompatInlineData

var compatNames = []featureName{
	{CompatDirPrealloc, "dir_prealloc"}, {CompatImagicInodes, "imagic_inodes"}, {CompatHasJournal, "has_journal"},
	{CompatExtAttr, "ext_attr"}, {CompatResizeInode, "resize_inode"}, {CompatDirIndex, "dir_index"},
	{CompatLazyBG, "lazy_bg"}, {CompatExcludeBitmap, "snapshot_bitmap"}, {CompatSparseSuper2, "sparse_super2"},
	{CompatFastCommit, "fast_commit"}, {CompatStableInodes, "stable_inodes"}, {CompatOrphanFile, "orphan_file"},
}
var incompatNames = []featureName{
	{IncompatCompression, "compression"}, {IncompatFiletype, "filetype"}, {IncompatRecover, "needs_recovery"},
	{IncompatJournalDev, "journal_dev"}, {IncompatMetaBG, "meta_bg"}, {IncompatExtents, "extent"},
	{Incompat64Bit, "64bit"}, {IncompatMMP, "mmp"}, {IncompatFlexBG, "flex_bg"}, {IncompatEAInode, "ea_inode"},
	{IncompatDirData, "dirdata"}, {IncompatCsumSeed, "metadata_csum_seed"}, {IncompatLargeDir, "large_dir"},
	{IncompatInlineData, "inline_data"}, {IncompatEncrypt, "encrypt"}, {IncompatCasefold, "casefold"},
}
var roCompatNames = []featureName{
	{RoCompatSparseSuper, "sparse_super"}, {RoCompatLargeFile, "large_file"}, {RoCompatBtreeDir, "btree_dir"},
	{RoCompatHugeFile, "huge_file"}, {RoCompatGDTCsum, "uninit_bg"}, {RoCompatDirNlink, "dir_nlink"},
	{RoCompatExtraIsize, "extra_isize"}, {RoCompatHasSnapshot, "snapshot"}, {RoCompatQuota, "quota"},
	{RoCompatBigalloc, "bigalloc"}, {RoCompatMetadataCsum, "metadata_csum"}, {RoCompatReplica, "replica"},
	{RoCompatReadonly, "read-only"}, {RoCompatProject, "project"}, {RoCompatSharedBlocks, "shared_blocks"},
	{RoCompatVerity, "verity"}, {RoCompatOrphanPres, "orphan_present"},
}

type featureName struct {
	bit  uint32
	name string
}

func featureList(v uint32, names []featureName, prefix string) []string {
	var out []string
	for _, f := range names {
		if v&f.bit != 0 {
			out = append(out, f.name)
			v &^= f.bit
		}
	}
	for b := uint32(1); v != 0; b <<= 1 {
		if v&b != 0 {
			out = append(out, fmt.Sprintf("%s_0x%x", prefix, b))
			v &^= b
		}
	}
	return out
}

// Superblock is the decoded ext2/3/4 superblock (struct ext2_super_block).
type Superblock struct {
	InodesCount       uint32
	BlocksCount       uint64 // lo | hi<<32 (hi only with 64bit)
	RBlocksCount      uint64
	FreeBlocksCount   uint64
	FreeInodesCount   uint32
	FirstDataBlock    uint32
	LogBlockSize      uint32
	LogClusterSize    uint32
	BlocksPerGroup    uint32
	ClustersPerGroup  uint32
	InodesPerGroup    uint32
	Mtime, Wtime      uint32
	MntCount          uint16
	MaxMntCount       int16
	Magic             uint16
	State             uint16
	Errors            uint16
	MinorRevLevel     uint16
	LastCheck         uint32
	CheckInterval     uint32
	CreatorOS         uint32
	RevLevel          uint32
	DefResUID         uint16
	DefResGID         uint16
	FirstIno          uint32 // 11 for rev 0
	InodeSizeField    uint16 // s_inode_size as stored (0 in rev 0); use InodeSize()
	BlockGroupNr      uint16
	FeatureCompat     uint32
	FeatureIncompat   uint32
	FeatureRoCompat   uint32
	UUID              [16]byte
	VolumeName        string
	LastMounted       string
	ReservedGDTBlocks uint16
	JournalUUID       [16]byte
	JournalInum       uint32
	JournalDev        uint32
	LastOrphan        uint32
	HashSeed          [4]uint32
	DefHashVersion    uint8
	JnlBackupType     uint8
	DescSizeField     uint16 // s_desc_size as stored; use DescSize()
	DefaultMountOpts  uint32
	FirstMetaBG       uint32
	MkfsTime          uint32
	JnlBlocks         [17]uint32
	MinExtraIsize     uint16
	WantExtraIsize    uint16
	Flags             uint32
	LogGroupsPerFlex  uint8
	ChecksumType      uint8
	KBytesWritten     uint64
	ChecksumSeed      uint32 // s_checksum_seed (0x270), used with metadata_csum_seed; see CsumSeed
	OrphanFileInum    uint32 // s_orphan_file_inum (0x280), with orphan_file
	Checksum          uint32
}

// ParseSuperblock decodes the 1024 bytes found at device byte 1024. It checks the magic and the
// geometry fields that every later computation divides by or shifts with, and refuses unknown
// incompat features.
func ParseSuperblock(b []byte) (*Superblock, error) { return parseSuperblock(b, 0) }

// parseSuperblock is ParseSuperblock also accepting the incompat features in allow (only those
// the decoders read, DecodableIncompat).
func parseSuperblock(b []byte, allow uint32) (*Superblock, error) {
	const st = "superblock"
	if len(b) < SuperblockSize {
		return nil, formatErr(st, 0, "need %d bytes, have %d", SuperblockSize, len(b))
	}
	le := binary.LittleEndian
	sb := &Superblock{
		InodesCount:       le.Uint32(b[0x00:]),
		BlocksCount:       uint64(le.Uint32(b[0x04:])),
		RBlocksCount:      uint64(le.Uint32(b[0x08:])),
		FreeBlocksCount:   uint64(le.Uint32(b[0x0C:])),
		FreeInodesCount:   le.Uint32(b[0x10:]),
		FirstDataBlock:    le.Uint32(b[0x14:]),
		LogBlockSize:      le.Uint32(b[0x18:]),
		LogClusterSize:    le.Uint32(b[0x1C:]),
		BlocksPerGroup:    le.Uint32(b[0x20:]),
		ClustersPerGroup:  le.Uint32(b[0x24:]),
		InodesPerGroup:    le.Uint32(b[0x28:]),
		Mtime:             le.Uint32(b[0x2C:]),
		Wtime:             le.Uint32(b[0x30:]),
		MntCount:          le.Uint16(b[0x34:]),
		MaxMntCount:       int16(le.Uint16(b[0x36:])),
		Magic:             le.Uint16(b[0x38:]),
		State:             le.Uint16(b[0x3A:]),
		Errors:            le.Uint16(b[0x3C:]),
		MinorRevLevel:     le.Uint16(b[0x3E:]),
		LastCheck:         le.Uint32(b[0x40:]),
		CheckInterval:     le.Uint32(b[0x44:]),
		CreatorOS:         le.Uint32(b[0x48:]),
		RevLevel:          le.Uint32(b[0x4C:]),
		DefResUID:         le.Uint16(b[0x50:]),
		DefResGID:         le.Uint16(b[0x52:]),
		FirstIno:          le.Uint32(b[0x54:]),
		InodeSizeField:    le.Uint16(b[0x58:]),
		BlockGroupNr:      le.Uint16(b[0x5A:]),
		FeatureCompat:     le.Uint32(b[0x5C:]),
		FeatureIncompat:   le.Uint32(b[0x60:]),
		FeatureRoCompat:   le.Uint32(b[0x64:]),
		VolumeName:        cString(b[0x78:0x88]),
		LastMounted:       cString(b[0x88:0xC8]),
		ReservedGDTBlocks: le.Uint16(b[0xCE:]),
		JournalInum:       le.Uint32(b[0xE0:]),
		JournalDev:        le.Uint32(b[0xE4:]),
		LastOrphan:        le.Uint32(b[0xE8:]),
		DefHashVersion:    b[0xFC],
		JnlBackupType:     b[0xFD],
		DescSizeField:     le.Uint16(b[0xFE:]),
		DefaultMountOpts:  le.Uint32(b[0x100:]),
		FirstMetaBG:       le.Uint32(b[0x104:]),
		MkfsTime:          le.Uint32(b[0x108:]),
		MinExtraIsize:     le.Uint16(b[0x15C:]),
		WantExtraIsize:    le.Uint16(b[0x15E:]),
		Flags:             le.Uint32(b[0x160:]),
		LogGroupsPerFlex:  b[0x174],
		ChecksumType:      b[0x175],
		KBytesWritten:     le.Uint64(b[0x178:]),
		ChecksumSeed:      le.Uint32(b[0x270:]),
		OrphanFileInum:    le.Uint32(b[0x280:]),
		Checksum:          le.Uint32(b[0x3FC:]),
	}
	copy(sb.UUID[:], b[0x68:0x78])
	copy(sb.JournalUUID[:], b[0xD0:0xE0])
	for i := range sb.HashSeed {
		sb.HashSeed[i] = le.Uint32(b[0xEC+4*i:])
	}
	for i := range sb.JnlBlocks {
		sb.JnlBlocks[i] = le.Uint32(b[0x10C+4*i:])
	}
	if sb.FeatureIncompat&Incompat64Bit != 0 {
		sb.BlocksCount |= uint64(le.Uint32(b[0x150:])) << 32
		sb.RBlocksCount |= uint64(le.Uint32(b[0x154:])) << 32
		sb.FreeBlocksCount |= uint64(le.Uint32(b[0x158:])) << 32
	}
	if sb.RevLevel == 0 {
		// GOOD_OLD_REV: fixed values, and the dynamic fields are undefined.
		sb.FirstIno = 11
		sb.FeatureCompat, sb.FeatureIncompat, sb.FeatureRoCompat = 0, 0, 0
	}

	switch {
	case sb.Magic != SuperMagic:
		return nil, formatErr(st, 0x38, "bad magic 0x%04x, want 0x%04x", sb.Magic, SuperMagic)
	case sb.RevLevel > 1:
		return nil, formatErr(st, 0x4C, "revision %d not supported (want 0 or 1)", sb.RevLevel)
	}
	// Features first: an unsupported one (bigalloc, journal_dev) gives geometry the checks
	// below would reject, and the user should read the feature's name, not a field's.
	if u := sb.FeatureIncompat &^ (SupportedIncompat | allow&DecodableIncompat); u != 0 {
		return nil, &FormatError{Struct: st, Offset: 0x60, Err: ErrUnsupported,
			Msg: fmt.Sprintf("incompat features %s (0x%x) not supported", strings.Join(featureList(u, incompatNames, "incompat"), ","), u)}
	}
	if u := sb.FeatureRoCompat & UnsupportedRoCompat; u != 0 {
		return nil, &FormatError{Struct: st, Offset: 0x64, Err: ErrUnsupported,
			Msg: fmt.Sprintf("ro_compat features %s (0x%x) not supported", strings.Join(featureList(u, roCompatNames, "ro_compat"), ","), u)}
	}
	switch {
	case sb.LogBlockSize > 6:
		return nil, formatErr(st, 0x18, "s_log_block_size %d gives a block size over 64 KiB", sb.LogBlockSize)
	case sb.BlocksPerGroup == 0 || sb.BlocksPerGroup > 8*uint32(sb.BlockSize()):
		return nil, formatErr(st, 0x20, "s_blocks_per_group %d not in 1..%d", sb.BlocksPerGroup, 8*sb.BlockSize())
	case sb.InodesPerGroup == 0 || sb.InodesPerGroup > 8*uint32(sb.BlockSize()):
		return nil, formatErr(st, 0x28, "s_inodes_per_group %d not in 1..%d", sb.InodesPerGroup, 8*sb.BlockSize())
	case sb.BlocksCount <= uint64(sb.FirstDataBlock):
		return nil, formatErr(st, 0x04, "s_blocks_count %d <= s_first_data_block %d", sb.BlocksCount, sb.FirstDataBlock)
	case sb.FirstDataBlock > 1:
		return nil, formatErr(st, 0x14, "s_first_data_block %d, want 0 or 1", sb.FirstDataBlock)
	}
	if sb.RevLevel >= 1 {
		is := int(sb.InodeSizeField)
		if is < 128 || is > sb.BlockSize() || is&(is-1) != 0 {
			return nil, formatErr(st, 0x58, "s_inode_size %d is not a power of two in 128..%d", is, sb.BlockSize())
		}
		if sb.FirstIno < 11 {
			return nil, formatErr(st, 0x54, "s_first_ino %d < 11", sb.FirstIno)
		}
	}
	if sb.FeatureIncompat&Incompat64Bit != 0 {
		ds := int(sb.DescSizeField)
		if ds < 64 || ds > 1024 || ds&(ds-1) != 0 {
			return nil, formatErr(st, 0xFE, "s_desc_size %d is not a power of two in 64..1024", ds)
		}
	}
	// As ext2fs_open2: the group count must fit in 32 bits (GroupCount truncates), and the
	// inode count is exactly groups x inodes per group.
	groups := (sb.BlocksCount - uint64(sb.FirstDataBlock) + uint64(sb.BlocksPerGroup) - 1) / uint64(sb.BlocksPerGroup)
	if groups>>32 != 0 {
		return nil, formatErr(st, 0x04, "s_blocks_count %d gives %d groups of %d blocks, more than 2^32", sb.BlocksCount, groups, sb.BlocksPerGroup)
	}
	if groups*uint64(sb.InodesPerGroup) != uint64(sb.InodesCount) {
		return nil, formatErr(st, 0x00, "s_inodes_count %d is not %d groups x %d inodes", sb.InodesCount, groups, sb.InodesPerGroup)
	}
	return sb, nil
}

// RoCompatBigalloc reports the bigalloc feature (cluster allocation), which changes what a
// "block" in the bitmaps means; refused by ParseSuperblock.
func (sb *Superblock) RoCompatBigalloc() bool { return sb.FeatureRoCompat&RoCompatBigalloc != 0 }

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// BlockSize is 1024 << s_log_block_size.
func (sb *Superblock) BlockSize() int { return 1024 << sb.LogBlockSize }

// GroupCount is ceil((blocks_count - first_data_block) / blocks_per_group).
func (sb *Superblock) GroupCount() uint32 {
	n := sb.BlocksCount - uint64(sb.FirstDataBlock)
	return uint32((n + uint64(sb.BlocksPerGroup) - 1) / uint64(sb.BlocksPerGroup))
}

// InodeSize is 128 for revision 0, else s_inode_size.
func (sb *Superblock) InodeSize() int {
	if sb.RevLevel == 0 {
		return 128
	}
	return int(sb.InodeSizeField)
}

// DescSize is the group descriptor size: 32, or s_desc_size with the 64bit feature.
func (sb *Superblock) DescSize() int {
	if sb.Is64Bit() {
		return int(sb.DescSizeField)
	}
	return 32
}

func (sb *Superblock) HasJournal() bool     { return sb.FeatureCompat&CompatHasJournal != 0 }
func (sb *Superblock) HasFiletype() bool    { return sb.FeatureIncompat&IncompatFiletype != 0 }
func (sb *Superblock) HasExtents() bool     { return sb.FeatureIncompat&IncompatExtents != 0 }
func (sb *Superblock) Is64Bit() bool        { return sb.FeatureIncompat&Incompat64Bit != 0 }
func (sb *Superblock) HasSparseSuper() bool { return sb.FeatureRoCompat&RoCompatSparseSuper != 0 }
func (sb *Superblock) HasMetaBG() bool      { return sb.FeatureIncompat&IncompatMetaBG != 0 }
func (sb *Superblock) HasResizeInode() bool { return sb.FeatureCompat&CompatResizeInode != 0 }
func (sb *Superblock) HasDirIndex() bool    { return sb.FeatureCompat&CompatDirIndex != 0 }
func (sb *Superblock) NeedsRecovery() bool  { return sb.FeatureIncompat&IncompatRecover != 0 }

// Features lists the set feature names, in the spelling of dumpe2fs ("has_journal ext_attr ...").
func (sb *Superblock) Features() []string {
	out := featureList(sb.FeatureCompat, compatNames, "compat")
	out = append(out, featureList(sb.FeatureIncompat, incompatNames, "incompat")...)
	return append(out, featureList(sb.FeatureRoCompat, roCompatNames, "ro_compat")...)
}

// GroupFirstBlock is the first block of group g.
func (sb *Superblock) GroupFirstBlock(g uint32) uint64 {
	return uint64(sb.FirstDataBlock) + uint64(g)*uint64(sb.BlocksPerGroup)
}

// GroupBlocks is the number of blocks in group g (the last group may be short).
func (sb *Superblock) GroupBlocks(g uint32) uint64 {
	first := sb.GroupFirstBlock(g)
	if first+uint64(sb.BlocksPerGroup) > sb.BlocksCount {
		return sb.BlocksCount - first
	}
	return uint64(sb.BlocksPerGroup)
}

// GroupHasSuper reports whether group g holds a superblock copy (and, without meta_bg, a GDT
// copy): every group without sparse_super, else groups 0, 1 and powers of 3, 5 and 7.
// sparse_super2 (backups only in the two groups listed in s_backup_bgs) is not decoded: such
// images get the sparse_super answer, which can name backup groups that hold none.
func (sb *Superblock) GroupHasSuper(g uint32) bool {
	if g <= 1 || !sb.HasSparseSuper() {
		return true
	}
	if g&1 == 0 {
		return false
	}
	return isPow(g, 3) || isPow(g, 5) || isPow(g, 7)
}

func isPow(n, base uint32) bool {
	for n%base == 0 {
		n /= base
	}
	return n == 1
}

// GDTBlocks is the number of blocks the group descriptor table occupies.
func (sb *Superblock) GDTBlocks() uint64 {
	per := uint64(sb.BlockSize() / sb.DescSize())
	return (uint64(sb.GroupCount()) + per - 1) / per
}

// InodeTableBlocks is the number of blocks of one group's inode table.
func (sb *Superblock) InodeTableBlocks() uint64 {
	bs := uint64(sb.BlockSize())
	return (uint64(sb.InodesPerGroup)*uint64(sb.InodeSize()) + bs - 1) / bs
}

// identityField is a superblock field that no mount, write or online resize changes: two
// superblocks that disagree on one are of different file systems.
type identityField struct {
	name     string
	off, len int // within the 1024-byte superblock
}

var identityFields = []identityField{
	{"s_first_data_block", 0x14, 4},
	{"s_log_block_size", 0x18, 4},
	{"s_blocks_per_group", 0x20, 4},
	{"s_inodes_per_group", 0x28, 4},
	{"s_inode_size", 0x58, 2},
	{"s_uuid", 0x68, 16},
	{"s_journal_inum", 0xE0, 4},
}

// IdentitySpan is the part of the superblock the identity fields (and the magic) lie in.
const IdentitySpan = 0xE4

// IdentityMismatch is a field on which two superblocks disagree.
type IdentityMismatch struct {
	Field     string // e.g. s_uuid
	Off       int    // byte offset within the superblock
	Got, Want string // the values, as numbers or hex
}

// CompareIdentity reports the first identity field on which superblock got differs from want
// (both at least IdentitySpan bytes, starting at the superblock's first byte), or nil if they
// describe the same file system. A block without the superblock magic is no superblock (a
// wiped or reformatted disk): nothing to compare, nil.
func CompareIdentity(got, want []byte) *IdentityMismatch {
	le := binary.LittleEndian
	if len(got) < IdentitySpan || len(want) < IdentitySpan ||
		le.Uint16(got[0x38:]) != SuperMagic || le.Uint16(want[0x38:]) != SuperMagic {
		return nil
	}
	for _, f := range identityFields {
		a, b := got[f.off:f.off+f.len], want[f.off:f.off+f.len]
		if string(a) != string(b) {
			return &IdentityMismatch{Field: f.name, Off: f.off, Got: fieldValue(a), Want: fieldValue(b)}
		}
	}
	return nil
}

func fieldValue(b []byte) string {
	switch len(b) {
	case 2:
		return fmt.Sprint(binary.LittleEndian.Uint16(b))
	case 4:
		return fmt.Sprint(binary.LittleEndian.Uint32(b))
	}
	return fmt.Sprintf("%x", b)
}
