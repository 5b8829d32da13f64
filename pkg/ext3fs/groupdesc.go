package ext3fs

import "encoding/binary"

// Group descriptor flags (bg_flags).
const (
	BGInodeUninit  = 0x1
	BGBlockUninit  = 0x2
	BGItableZeroed = 0x4
)

// GroupDesc is a decoded block group descriptor (32-byte ext2/3 form or 64-byte ext4 form).
type GroupDesc struct {
	BlockBitmap  uint64
	InodeBitmap  uint64
	InodeTable   uint64
	FreeBlocks   uint32
	FreeInodes   uint32
	UsedDirs     uint32
	Flags        uint16
	ItableUnused uint32
	Checksum     uint16
	// Bitmap checksums (metadata_csum): the low 16 bits, and the high 16 in 64-byte descriptors.
	BlockBitmapCsum uint32
	InodeBitmapCsum uint32
}

// ParseGroupDesc decodes one descriptor of descSize bytes (32, or s_desc_size >= 64 with 64bit).
func ParseGroupDesc(b []byte, descSize int) (GroupDesc, error) {
	const st = "group descriptor"
	if descSize != 32 && (descSize < 64 || descSize&(descSize-1) != 0) {
		return GroupDesc{}, formatErr(st, 0, "descriptor size %d, want 32 or a power of two >= 64", descSize)
	}
	if len(b) < descSize {
		return GroupDesc{}, formatErr(st, 0, "need %d bytes, have %d", descSize, len(b))
	}
	le := binary.LittleEndian
	d := GroupDesc{
		BlockBitmap:  uint64(le.Uint32(b[0x00:])),
		InodeBitmap:  uint64(le.Uint32(b[0x04:])),
		InodeTable:   uint64(le.Uint32(b[0x08:])),
		FreeBlocks:   uint32(le.Uint16(b[0x0C:])),
		FreeInodes:   uint32(le.Uint16(b[0x0E:])),
		UsedDirs:     uint32(le.Uint16(b[0x10:])),
		Flags:        le.Uint16(b[0x12:]),
		ItableUnused: uint32(le.Uint16(b[0x1C:])),
		Checksum:     le.Uint16(b[0x1E:]),

		BlockBitmapCsum: uint32(le.Uint16(b[0x18:])),
		InodeBitmapCsum: uint32(le.Uint16(b[0x1A:])),
	}
	if descSize >= 64 {
		d.BlockBitmap |= uint64(le.Uint32(b[0x20:])) << 32
		d.InodeBitmap |= uint64(le.Uint32(b[0x24:])) << 32
		d.InodeTable |= uint64(le.Uint32(b[0x28:])) << 32
		d.FreeBlocks |= uint32(le.Uint16(b[0x2C:])) << 16
		d.FreeInodes |= uint32(le.Uint16(b[0x2E:])) << 16
		d.UsedDirs |= uint32(le.Uint16(b[0x30:])) << 16
		d.ItableUnused |= uint32(le.Uint16(b[0x32:])) << 16
		d.BlockBitmapCsum |= uint32(le.Uint16(b[0x38:])) << 16
		d.InodeBitmapCsum |= uint32(le.Uint16(b[0x3A:])) << 16
	}
	return d, nil
}
