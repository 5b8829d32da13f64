package ext3fs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// metadata_csum and gdt_csum verification (e2fsprogs lib/ext2fs/csum.c, the kernel's
// Documentation/filesystems/ext4/checksums.rst). Every function here is stateless: it takes the
// structure's raw bytes plus what the checksum covers besides them (inode number, generation,
// group number, the superblock's seed) and returns a Checksum, never deciding on its own what a
// mismatch means.

// ErrBadChecksum is wrapped by Checksum.Err for a stored checksum that does not match its data.
var ErrBadChecksum = errors.New("checksum mismatch")

// ErrNoChecksum is wrapped by errors for a structure that has no place for a checksum (a
// directory block without a tail, a file system without metadata_csum or gdt_csum).
var ErrNoChecksum = errors.New("no checksum")

// Crc32c is the kernel's crc32c(seed, p): CRC-32C without the pre- and post-inversion that
// hash/crc32 applies, which is how ext4 and jbd2 chain seeds.
func Crc32c(seed uint32, p []byte) uint32 { return ^crc32.Update(^seed, castagnoli, p) }

var crc16Table = func() (t [256]uint16) {
	// CRC-16/ARC, polynomial 0x8005 reflected (the kernel's lib/crc16.c, e2fsprogs crc16.c).
	for i := range t {
		c := uint16(i)
		for k := 0; k < 8; k++ {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// Crc16 is the kernel's crc16(crc, p), used by gdt_csum (uninit_bg) group descriptors.
func Crc16(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc = crc>>8 ^ crc16Table[byte(crc)^b]
	}
	return crc
}

// Checksum is the result of checking one stored checksum.
type Checksum struct {
	Struct   string // "superblock", "group descriptor 3", "inode 12", "extent block", ...
	Offset   int64  // byte offset of the stored checksum within the bytes given (FS.Checksums: on the device)
	Start    int64  // FS.Checksums only: device offset of the structure's first byte
	Bits     int    // 16 or 32: how many bits are stored (and compared)
	Stored   uint32
	Computed uint32 // masked to Bits
	// Unset reports a structure e2fsprogs accepts without a checksum: an inode whose first 128
	// bytes are all zero (never written since the inode table was zeroed).
	Unset bool
}

// OK reports whether the stored checksum matches (or the structure is Unset).
func (c Checksum) OK() bool { return c.Unset || c.Stored == c.Computed }

// Err is nil when OK, else a *FormatError wrapping ErrBadChecksum that names the structure.
func (c Checksum) Err() error {
	if c.OK() {
		return nil
	}
	w := 8
	if c.Bits == 16 {
		w = 4
	}
	return &FormatError{Struct: c.Struct, Offset: c.Offset, Err: ErrBadChecksum,
		Msg: fmt.Sprintf("stored 0x%0*x, computed 0x%0*x", w, c.Stored, w, c.Computed)}
}

func (c Checksum) String() string {
	if err := c.Err(); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s: checksum 0x%x ok", c.Struct, c.Stored)
}

func mkChecksum(st string, off int64, bits int, stored, computed uint32) Checksum {
	if bits == 16 {
		computed &= 0xFFFF
	}
	return Checksum{Struct: st, Offset: off, Bits: bits, Stored: stored, Computed: computed}
}

// HasMetadataCsum reports RO_COMPAT_METADATA_CSUM (crc32c checksums on every metadata structure).
func (sb *Superblock) HasMetadataCsum() bool { return sb.FeatureRoCompat&RoCompatMetadataCsum != 0 }

// HasGDTCsum reports RO_COMPAT_GDT_CSUM (crc16 group-descriptor checksums, uninit_bg). It is
// ignored when metadata_csum is also set, as the kernel does.
func (sb *Superblock) HasGDTCsum() bool { return sb.FeatureRoCompat&RoCompatGDTCsum != 0 }

// CsumSeed is the seed of every metadata_csum checksum but the superblock's: s_checksum_seed
// with metadata_csum_seed, else crc32c(~0, s_uuid).
func (sb *Superblock) CsumSeed() uint32 {
	if sb.FeatureIncompat&IncompatCsumSeed != 0 {
		return sb.ChecksumSeed
	}
	return Crc32c(^uint32(0), sb.UUID[:])
}

// InodeCsumSeed is the seed of the checksums of structures that belong to one inode (the inode
// itself, its extent blocks, its directory blocks): crc32c(crc32c(seed, le32 ino), le32 gen).
func (sb *Superblock) InodeCsumSeed(ino, gen uint32) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], ino)
	binary.LittleEndian.PutUint32(b[4:], gen)
	return Crc32c(sb.CsumSeed(), b[:])
}

// SuperblockChecksum checks s_checksum (byte 0x3FC): crc32c(~0) over the 1020 bytes before it.
// b is the 1024 bytes of the superblock. s_checksum_type must be 1 (crc32c).
func SuperblockChecksum(b []byte) (Checksum, error) {
	const st = "superblock"
	if len(b) < SuperblockSize {
		return Checksum{}, formatErr(st, 0, "need %d bytes, have %d", SuperblockSize, len(b))
	}
	if t := b[0x175]; t != 1 {
		return Checksum{}, formatErr(st, 0x175, "s_checksum_type %d, want 1 (crc32c)", t)
	}
	le := binary.LittleEndian
	return mkChecksum(st, 0x3FC, 32, le.Uint32(b[0x3FC:]), Crc32c(^uint32(0), b[:0x3FC])), nil
}

// GroupDescChecksum checks bg_checksum (byte 0x1E) of group g's descriptor b (DescSize bytes):
// with metadata_csum the low 16 bits of crc32c(seed, le32 g, descriptor with bg_checksum zero),
// with gdt_csum crc16(~0, uuid, le32 g, descriptor without bg_checksum).
func (sb *Superblock) GroupDescChecksum(g uint32, b []byte) (Checksum, error) {
	st := fmt.Sprintf("group descriptor %d", g)
	ds := sb.DescSize()
	if len(b) < ds {
		return Checksum{}, formatErr(st, 0, "need %d bytes, have %d", ds, len(b))
	}
	b = b[:ds]
	le := binary.LittleEndian
	var gb [4]byte
	le.PutUint32(gb[:], g)
	stored := uint32(le.Uint16(b[0x1E:]))
	switch {
	case sb.HasMetadataCsum():
		c := Crc32c(sb.CsumSeed(), gb[:])
		c = Crc32c(c, b[:0x1E])
		c = Crc32c(c, []byte{0, 0})
		c = Crc32c(c, b[0x20:])
		return mkChecksum(st, 0x1E, 16, stored, c), nil
	case sb.HasGDTCsum():
		c := Crc16(0xFFFF, sb.UUID[:])
		c = Crc16(c, gb[:])
		c = Crc16(c, b[:0x1E])
		c = Crc16(c, b[0x20:])
		return mkChecksum(st, 0x1E, 16, stored, uint32(c)), nil
	}
	return Checksum{}, &FormatError{Struct: st, Offset: 0x1E, Err: ErrNoChecksum, Msg: "neither metadata_csum nor gdt_csum is set"}
}

// bitmapCsumBits is 32 when the descriptor has room for the high halves (64-byte descriptors).
func (sb *Superblock) bitmapCsumBits() int {
	if sb.DescSize() >= 0x3C {
		return 32
	}
	return 16
}

// BlockBitmapChecksum checks group d's block bitmap against the checksum stored in its
// descriptor: crc32c(seed) over clusters_per_group/8 bytes. A group flagged BLOCK_UNINIT has no
// bitmap on disk; the caller should not ask.
func (sb *Superblock) BlockBitmapChecksum(g uint32, d *GroupDesc, bitmap []byte) (Checksum, error) {
	st := fmt.Sprintf("block bitmap of group %d", g)
	if !sb.HasMetadataCsum() {
		return Checksum{}, &FormatError{Struct: st, Err: ErrNoChecksum, Msg: "metadata_csum is not set"}
	}
	n := int(sb.ClustersPerGroup / 8)
	if len(bitmap) < n {
		return Checksum{}, formatErr(st, 0, "need %d bytes, have %d", n, len(bitmap))
	}
	return mkChecksum(st, 0, sb.bitmapCsumBits(), d.BlockBitmapCsum, Crc32c(sb.CsumSeed(), bitmap[:n])), nil
}

// InodeBitmapChecksum is BlockBitmapChecksum for the inode bitmap (inodes_per_group/8 bytes).
func (sb *Superblock) InodeBitmapChecksum(g uint32, d *GroupDesc, bitmap []byte) (Checksum, error) {
	st := fmt.Sprintf("inode bitmap of group %d", g)
	if !sb.HasMetadataCsum() {
		return Checksum{}, &FormatError{Struct: st, Err: ErrNoChecksum, Msg: "metadata_csum is not set"}
	}
	n := int(sb.InodesPerGroup / 8)
	if len(bitmap) < n {
		return Checksum{}, formatErr(st, 0, "need %d bytes, have %d", n, len(bitmap))
	}
	return mkChecksum(st, 0, sb.bitmapCsumBits(), d.InodeBitmapCsum, Crc32c(sb.CsumSeed(), bitmap[:n])), nil
}

// Inode checksum fields: l_i_checksum_lo in osd2 and i_checksum_hi after i_extra_isize.
const (
	inodeCsumLo = 0x7C
	inodeCsumHi = 0x82
)

// InodeChecksum checks the checksum of inode ino, b being the whole on-disk record
// (s_inode_size bytes): crc32c(inode seed) over the record with both checksum fields zero. The
// high 16 bits exist when i_extra_isize >= 4. An inode whose first 128 bytes are zero is Unset.
func (sb *Superblock) InodeChecksum(ino uint32, b []byte) (Checksum, error) {
	st := fmt.Sprintf("inode %d", ino)
	if len(b) < InodeRecordSize {
		return Checksum{}, formatErr(st, 0, "need %d bytes, have %d", InodeRecordSize, len(b))
	}
	le := binary.LittleEndian
	hasHi := len(b) >= inodeCsumHi+2 && int(le.Uint16(b[0x80:])) >= inodeCsumHi+2-InodeRecordSize
	zero := []byte{0, 0}
	c := sb.InodeCsumSeed(ino, le.Uint32(b[0x64:]))
	c = Crc32c(c, b[:inodeCsumLo])
	c = Crc32c(c, zero)
	stored := uint32(le.Uint16(b[inodeCsumLo:]))
	bits := 16
	if hasHi {
		c = Crc32c(c, b[inodeCsumLo+2:inodeCsumHi])
		c = Crc32c(c, zero)
		c = Crc32c(c, b[inodeCsumHi+2:])
		stored |= uint32(le.Uint16(b[inodeCsumHi:])) << 16
		bits = 32
	} else {
		c = Crc32c(c, b[inodeCsumLo+2:])
	}
	r := mkChecksum(st, inodeCsumLo, bits, stored, c)
	if !r.OK() && allZero(b[:InodeRecordSize]) {
		r.Unset = true
	}
	return r, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ExtentTailOffset is the byte offset of the checksum tail of an extent tree block, right after
// eh_max entries.
func ExtentTailOffset(eh ExtentHeader) int { return 12 + 12*int(eh.Max) }

// ExtentBlockChecksum checks the tail of an extent tree block (not the root in i_block, which the
// inode checksum covers) of inode ino with generation gen: crc32c(inode seed) over the header
// and eh_max entries.
func (sb *Superblock) ExtentBlockChecksum(ino, gen uint32, b []byte) (Checksum, error) {
	const st = "extent block"
	if len(b) < 12 {
		return Checksum{}, formatErr(st, 0, "need 12 bytes for the header, have %d", len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint16(b); m != ExtentMagic {
		return Checksum{}, formatErr(st, 0, "bad magic 0x%04x, want 0x%04x", m, ExtentMagic)
	}
	off := ExtentTailOffset(ExtentHeader{Max: le.Uint16(b[4:])})
	if off+4 > len(b) {
		return Checksum{}, formatErr(st, 4, "eh_max %d leaves no room for the checksum tail in %d bytes", le.Uint16(b[4:]), len(b))
	}
	return mkChecksum(st, int64(off), 32, le.Uint32(b[off:]), Crc32c(sb.InodeCsumSeed(ino, gen), b[:off])), nil
}

// Directory checksum tail (struct ext4_dir_entry_tail): a 12-byte fake entry at the end of a
// leaf block, inode 0, rec_len 12, name_len 0, file_type 0xDE, then the crc32c.
const (
	DirTailSize     = 12
	DirTailFileType = 0xDE
)

// DirTailOffset returns the offset of a leaf block's checksum tail, if the block has one: the
// entries chain exactly to len(b)-12 and the fake entry there has the tail's shape.
func DirTailOffset(b []byte) (int, bool) {
	top := len(b) - DirTailSize
	if top < 0 {
		return 0, false
	}
	le := binary.LittleEndian
	off := 0
	for off < top {
		rl := recLen(le.Uint16(b[off+4:]), len(b))
		if rl < DirEntryHeaderSize || rl%4 != 0 {
			return 0, false
		}
		off += rl
	}
	if off != top {
		return 0, false
	}
	t := b[top:]
	return top, le.Uint32(t) == 0 && le.Uint16(t[4:]) == DirTailSize && t[6] == 0 && t[7] == DirTailFileType
}

// dxCountOffset finds the dx count/limit of an htree root (32) or node (8) block, the way
// e2fsprogs' __get_dx_countlimit recognises them; ok is false for other blocks.
func dxCountOffset(b []byte) (int, bool) {
	le := binary.LittleEndian
	if len(b) < 0x28 {
		return 0, false
	}
	rl := recLen(le.Uint16(b[4:]), len(b))
	switch {
	case rl == len(b) && b[6] == 0 && b[7] == 0:
		return 8, true
	case rl == 12:
		if recLen(le.Uint16(b[16:]), len(b)) != len(b)-12 {
			return 0, false
		}
		// dx_root_info: reserved_zero u32, hash_version, info_length 8, ...
		if le.Uint32(b[0x18:]) != 0 || b[0x1D] != 8 {
			return 0, false
		}
		return 32, true
	}
	return 0, false
}

// DirBlockChecksum checks a directory block of inode ino (generation gen): a leaf block's tail
// entry (crc32c(inode seed) over the block before the tail) or an htree root/node block's
// dx_tail (crc32c(inode seed) over the header and count entries, then dt_reserved and a zero
// checksum). A block with neither is an error wrapping ErrNoChecksum.
func (sb *Superblock) DirBlockChecksum(ino, gen uint32, b []byte) (Checksum, error) {
	const st = "directory block"
	le := binary.LittleEndian
	seed := sb.InodeCsumSeed(ino, gen)
	if top, ok := DirTailOffset(b); ok {
		return mkChecksum(st, int64(top+8), 32, le.Uint32(b[top+8:]), Crc32c(seed, b[:top])), nil
	}
	co, ok := dxCountOffset(b)
	if !ok {
		return Checksum{}, &FormatError{Struct: st, Offset: int64(len(b) - DirTailSize), Err: ErrNoChecksum,
			Msg: "neither a leaf checksum tail nor an htree index block"}
	}
	const hst = "htree block"
	limit, count := int(le.Uint16(b[co:])), int(le.Uint16(b[co+2:]))
	if count > limit {
		return Checksum{}, formatErr(hst, int64(co+2), "count %d > limit %d", count, limit)
	}
	tail := co + 8*limit
	if tail+8 > len(b) {
		return Checksum{}, &FormatError{Struct: hst, Offset: int64(co), Err: ErrNoChecksum,
			Msg: fmt.Sprintf("limit %d leaves no room for the dx tail in %d bytes", limit, len(b))}
	}
	c := Crc32c(seed, b[:co+8*count])
	c = Crc32c(c, b[tail:tail+4])
	c = Crc32c(c, []byte{0, 0, 0, 0})
	return mkChecksum(hst, int64(tail+4), 32, le.Uint32(b[tail+4:]), c), nil
}

// XattrMagic is h_magic of an extended-attribute block and of the in-inode xattr area.
const XattrMagic = 0xEA020000

// XattrBlockChecksum checks h_checksum (byte 0x10) of the xattr block at physical block blk:
// crc32c(seed, le64 blk, block with h_checksum zero). xattr blocks can be shared between
// inodes, so the block number, not an inode, seeds it.
func (sb *Superblock) XattrBlockChecksum(blk uint64, b []byte) (Checksum, error) {
	const st = "xattr block"
	le := binary.LittleEndian
	if len(b) < 0x20 {
		return Checksum{}, formatErr(st, 0, "need 32 bytes for the header, have %d", len(b))
	}
	if m := le.Uint32(b); m != XattrMagic {
		return Checksum{}, formatErr(st, 0, "bad magic 0x%08x, want 0x%08x", m, uint32(XattrMagic))
	}
	var bb [8]byte
	le.PutUint64(bb[:], blk)
	c := Crc32c(sb.CsumSeed(), bb[:])
	c = Crc32c(c, b[:0x10])
	c = Crc32c(c, []byte{0, 0, 0, 0})
	c = Crc32c(c, b[0x14:])
	return mkChecksum(st, 0x10, 32, le.Uint32(b[0x10:]), c), nil
}

// OrphanBlockMagic is ob_magic in the tail of every block of the orphan file (orphan_file).
const OrphanBlockMagic = 0x0b10ca04

// orphanTailSize is sizeof(struct ext4_orphan_block_tail): le32 ob_magic, le32 ob_checksum.
const orphanTailSize = 8

// OrphanBlock is one block of the orphan file: slots of inode numbers (0 = free) and the tail.
type OrphanBlock struct {
	Inodes   []uint32 // every slot, in order
	Magic    uint32
	Checksum uint32
}

// ParseOrphanBlock decodes a block of the orphan file: (block size - 8) / 4 inode slots, then the
// tail, whose magic must be OrphanBlockMagic.
func ParseOrphanBlock(b []byte) (OrphanBlock, error) {
	const st = "orphan file block"
	le := binary.LittleEndian
	if len(b) < 64 || len(b)%4 != 0 {
		return OrphanBlock{}, formatErr(st, 0, "%d bytes is not a block", len(b))
	}
	t := len(b) - orphanTailSize
	ob := OrphanBlock{Magic: le.Uint32(b[t:]), Checksum: le.Uint32(b[t+4:]), Inodes: make([]uint32, t/4)}
	if ob.Magic != OrphanBlockMagic {
		return ob, formatErr(st, int64(t), "bad magic 0x%08x, want 0x%08x", ob.Magic, uint32(OrphanBlockMagic))
	}
	for i := range ob.Inodes {
		ob.Inodes[i] = le.Uint32(b[4*i:])
	}
	return ob, nil
}

// OrphanBlockChecksum checks the tail of the orphan file's block at physical block phys (inode
// ino, generation gen): crc32c(inode seed, le64 phys, the inode slots) (the kernel's
// ext4_orphan_file_block_csum: the block's number on disk, not in the file).
func (sb *Superblock) OrphanBlockChecksum(ino, gen uint32, phys uint64, b []byte) (Checksum, error) {
	ob, err := ParseOrphanBlock(b)
	if err != nil {
		return Checksum{}, err
	}
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], phys)
	t := len(b) - orphanTailSize
	c := Crc32c(sb.InodeCsumSeed(ino, gen), lb[:])
	c = Crc32c(c, b[:t])
	return mkChecksum("orphan file block", int64(t+4), 32, ob.Checksum, c), nil
}
