package ext3fs

// jbd2 journal decoders. Every journal structure is big-endian, unlike the rest of the file
// system. Layouts and semantics follow the kernel's include/linux/jbd2.h and e2fsprogs'
// e2fsck/recovery.c (the reference replayer): see ../shared/reference/ext-ondisk.md sections 8-10.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// JournalMagic starts every journal metadata block (h_magic).
const JournalMagic = 0xC03B3998

// JournalHeaderSize is the size of the common block header (journal_header_t).
const JournalHeaderSize = 12

// JournalSuperblockSize is the on-disk size of journal_superblock_t at the start of journal block 0.
const JournalSuperblockSize = 1024

// Journal block types (h_blocktype).
const (
	JournalDescriptorBlock = 1
	JournalCommitBlock     = 2
	JournalSuperblockV1    = 3
	JournalSuperblockV2    = 4
	JournalRevokeBlock     = 5
	JournalFastCommitBlock = 6
)

// Journal feature bits (s_feature_*). v1 superblocks have none.
const (
	JournalCompatChecksum = 0x1 // v1 commit-block checksum (crc32 over the transaction)

	JournalIncompatRevoke      = 0x1
	JournalIncompat64Bit       = 0x2
	JournalIncompatAsyncCommit = 0x4
	JournalIncompatCsumV2      = 0x8
	JournalIncompatCsumV3      = 0x10
	JournalIncompatFastCommit  = 0x20

	// JournalSupportedIncompat lists the incompat bits these decoders understand. Fast commits are
	// accepted because their blocks live in a separate area at the end of the journal (see LogEnd);
	// their contents are not decoded.
	JournalSupportedIncompat = JournalIncompatRevoke | JournalIncompat64Bit | JournalIncompatAsyncCommit |
		JournalIncompatCsumV2 | JournalIncompatCsumV3 | JournalIncompatFastCommit
)

// Descriptor tag flags (the big-endian u16 at tag offset 6 in every tag format).
const (
	JournalFlagEscape   = 0x1 // the block's first 4 bytes were the magic and were zeroed in the log
	JournalFlagSameUUID = 0x2 // no 16-byte UUID follows this tag
	JournalFlagDeleted  = 0x4 // obsolete; ignored by recovery
	JournalFlagLastTag  = 0x8 // last tag of this descriptor
)

// journalFCDefaultBlocks is JBD2_DEFAULT_FAST_COMMIT_BLOCKS: the fast-commit area size when
// FAST_COMMIT is set and s_num_fc_blks is 0.
const journalFCDefaultBlocks = 256

// JournalHeader is the 12-byte header shared by all journal metadata blocks.
type JournalHeader struct {
	Magic     uint32
	BlockType uint32
	Sequence  uint32 // transaction ID (tid)
}

// ParseJournalHeader decodes the block header at the start of b. ok is false when b is too short
// or does not start with JournalMagic: a data block or a never-written log block.
func ParseJournalHeader(b []byte) (h JournalHeader, ok bool) {
	if len(b) < JournalHeaderSize {
		return h, false
	}
	h = JournalHeader{
		Magic:     binary.BigEndian.Uint32(b[0:]),
		BlockType: binary.BigEndian.Uint32(b[4:]),
		Sequence:  binary.BigEndian.Uint32(b[8:]),
	}
	return h, h.Magic == JournalMagic
}

// JournalSuperblock is journal_superblock_t (journal block 0). v2 fields read as zero on v1.
type JournalSuperblock struct {
	BlockType       uint32 // JournalSuperblockV1 or JournalSuperblockV2
	BlockSize       uint32
	MaxLen          uint32 // blocks in the journal, superblock included
	First           uint32 // first log block
	Sequence        uint32 // tid of the first transaction expected in the log
	Start           uint32 // log block where the log starts; 0 = clean, nothing to replay
	Errno           int32
	FeatureCompat   uint32
	FeatureIncompat uint32
	FeatureRoCompat uint32
	UUID            [16]byte
	NrUsers         uint32
	MaxTransaction  uint32
	MaxTransData    uint32
	ChecksumType    uint8 // 4 = crc32c
	NumFCBlocks     uint32
	Head            uint32 // head of the log when empty (kernel 6.x, journal_cycle_record only)
	Checksum        uint32 // crc32c of the superblock (CSUM_V2/V3)
}

// ParseJournalSuperblock decodes the journal superblock from the first 1024 bytes of b (journal
// block 0). It checks the geometry the log walk depends on and refuses unknown incompat features.
func ParseJournalSuperblock(b []byte) (*JournalSuperblock, error) {
	const st = "journal superblock"
	if len(b) < JournalSuperblockSize {
		return nil, formatErr(st, 0, "%d bytes, need %d", len(b), JournalSuperblockSize)
	}
	h, ok := ParseJournalHeader(b)
	if !ok {
		return nil, formatErr(st, 0, "magic %#08x, want %#08x", h.Magic, uint32(JournalMagic))
	}
	if h.BlockType != JournalSuperblockV1 && h.BlockType != JournalSuperblockV2 {
		return nil, formatErr(st, 4, "block type %d, want %d (v1) or %d (v2)", h.BlockType,
			JournalSuperblockV1, JournalSuperblockV2)
	}
	be := binary.BigEndian
	jsb := &JournalSuperblock{
		BlockType: h.BlockType,
		BlockSize: be.Uint32(b[0x0C:]),
		MaxLen:    be.Uint32(b[0x10:]),
		First:     be.Uint32(b[0x14:]),
		Sequence:  be.Uint32(b[0x18:]),
		Start:     be.Uint32(b[0x1C:]),
		Errno:     int32(be.Uint32(b[0x20:])),
	}
	if h.BlockType == JournalSuperblockV2 {
		jsb.FeatureCompat = be.Uint32(b[0x24:])
		jsb.FeatureIncompat = be.Uint32(b[0x28:])
		jsb.FeatureRoCompat = be.Uint32(b[0x2C:])
		copy(jsb.UUID[:], b[0x30:0x40])
		jsb.NrUsers = be.Uint32(b[0x40:])
		jsb.MaxTransaction = be.Uint32(b[0x48:])
		jsb.MaxTransData = be.Uint32(b[0x4C:])
		jsb.ChecksumType = b[0x50]
		jsb.NumFCBlocks = be.Uint32(b[0x54:])
		jsb.Head = be.Uint32(b[0x58:])
		jsb.Checksum = be.Uint32(b[0xFC:])
	}
	bs := jsb.BlockSize
	if bs < 1024 || bs > 65536 || bs&(bs-1) != 0 {
		return nil, formatErr(st, 0x0C, "block size %d is not a power of two in [1024, 65536]", bs)
	}
	if unk := jsb.FeatureIncompat &^ JournalSupportedIncompat; unk != 0 {
		return nil, &FormatError{Struct: st, Offset: 0x28, Msg: fmt.Sprintf("incompat features %#x", unk),
			Err: ErrUnsupported}
	}
	if jsb.First == 0 || jsb.First >= jsb.LogEnd() {
		return nil, formatErr(st, 0x14, "first log block %d outside the log [1, %d)", jsb.First, jsb.LogEnd())
	}
	if jsb.Start != 0 && (jsb.Start < jsb.First || jsb.Start >= jsb.LogEnd()) {
		return nil, formatErr(st, 0x1C, "log start %d outside the log [%d, %d)", jsb.Start, jsb.First, jsb.LogEnd())
	}
	return jsb, nil
}

// Version is 1 or 2.
func (j *JournalSuperblock) Version() int {
	if j.BlockType == JournalSuperblockV1 {
		return 1
	}
	return 2
}

// Has64Bit reports INCOMPAT_64BIT: tags carry blocknr_high and revoke records are 64-bit.
func (j *JournalSuperblock) Has64Bit() bool { return j.FeatureIncompat&JournalIncompat64Bit != 0 }

// HasCsumV2 reports INCOMPAT_CSUM_V2 (16-bit tag checksums).
func (j *JournalSuperblock) HasCsumV2() bool { return j.FeatureIncompat&JournalIncompatCsumV2 != 0 }

// HasCsumV3 reports INCOMPAT_CSUM_V3 (journal_block_tag3_t, 32-bit tag checksums).
func (j *JournalSuperblock) HasCsumV3() bool { return j.FeatureIncompat&JournalIncompatCsumV3 != 0 }

// HasCsumV2V3 reports whether metadata blocks carry checksums (and descriptor/revoke blocks a
// 4-byte tail).
func (j *JournalSuperblock) HasCsumV2V3() bool { return j.HasCsumV2() || j.HasCsumV3() }

// HasRevoke reports INCOMPAT_REVOKE.
func (j *JournalSuperblock) HasRevoke() bool { return j.FeatureIncompat&JournalIncompatRevoke != 0 }

// HasAsyncCommit reports INCOMPAT_ASYNC_COMMIT: the commit block may reach the disk before the
// transaction's other blocks.
func (j *JournalSuperblock) HasAsyncCommit() bool {
	return j.FeatureIncompat&JournalIncompatAsyncCommit != 0
}

// HasFastCommit reports INCOMPAT_FAST_COMMIT.
func (j *JournalSuperblock) HasFastCommit() bool {
	return j.FeatureIncompat&JournalIncompatFastCommit != 0
}

// TagBytes is the size of one descriptor tag without its optional UUID (kernel journal_tag_bytes).
func (j *JournalSuperblock) TagBytes() int {
	if j.HasCsumV3() {
		return 16 // journal_block_tag3_t, whatever 64BIT says
	}
	sz := 12 // journal_block_tag_t: blocknr, checksum16, flags, blocknr_high
	if j.HasCsumV2() {
		sz += 2
	}
	if j.Has64Bit() {
		return sz
	}
	return sz - 4
}

// TailSize is the size of the checksum tail of descriptor and revoke blocks: 4 with CSUM_V2/V3.
func (j *JournalSuperblock) TailSize() int {
	if j.HasCsumV2V3() {
		return 4
	}
	return 0
}

// LogEnd is one past the last block of the circular log (recovery.c j_last): MaxLen, minus the
// fast-commit area when FAST_COMMIT is on.
func (j *JournalSuperblock) LogEnd() uint32 {
	if !j.HasFastCommit() {
		return j.MaxLen
	}
	fc := j.NumFCBlocks
	if fc == 0 {
		fc = journalFCDefaultBlocks
	}
	if fc >= j.MaxLen {
		return 0
	}
	return j.MaxLen - fc
}

// WrapLogBlock maps a log block number that ran past the end of the ring back into
// [First, LogEnd), like recovery.c's wrap() macro.
func (j *JournalSuperblock) WrapLogBlock(n uint64) uint64 {
	end, first := uint64(j.LogEnd()), uint64(j.First)
	if end <= first {
		return n
	}
	if n >= end {
		n = first + (n-first)%(end-first)
	}
	return n
}

// JournalTag is one descriptor tag: the file-system block that the corresponding log block is a
// copy of.
type JournalTag struct {
	FSBlock  uint64
	Flags    uint16
	Checksum uint32 // low 16 bits with CSUM_V2, 32 bits with CSUM_V3, else 0
	Offset   int    // byte offset of the tag in the descriptor block
	HasUUID  bool   // a 16-byte UUID follows the tag (SAME_UUID clear)
}

// Escaped reports whether the log copy had its leading magic zeroed (restore 0xC03B3998 on replay).
func (t JournalTag) Escaped() bool { return t.Flags&JournalFlagEscape != 0 }

// LastTag reports LAST_TAG.
func (t JournalTag) LastTag() bool { return t.Flags&JournalFlagLastTag != 0 }

// SameUUID reports SAME_UUID.
func (t JournalTag) SameUUID() bool { return t.Flags&JournalFlagSameUUID != 0 }

// checkJournalBlock verifies that b is a whole journal metadata block of type want.
func checkJournalBlock(st string, b []byte, want uint32, jsb *JournalSuperblock) (JournalHeader, error) {
	if jsb == nil {
		return JournalHeader{}, formatErr(st, 0, "no journal superblock")
	}
	if len(b) < JournalHeaderSize+jsb.TailSize() || len(b) != int(jsb.BlockSize) {
		return JournalHeader{}, formatErr(st, 0, "%d bytes, want a %d-byte journal block", len(b), jsb.BlockSize)
	}
	h, ok := ParseJournalHeader(b)
	if !ok {
		return h, formatErr(st, 0, "magic %#08x, want %#08x", h.Magic, uint32(JournalMagic))
	}
	if h.BlockType != want {
		return h, formatErr(st, 4, "block type %d, want %d", h.BlockType, want)
	}
	return h, nil
}

// ParseDescriptor decodes the tags of a descriptor block. The log blocks following the descriptor
// (with wrap) hold, in order, one copy per tag. Like recovery.c's count_tags, parsing stops after
// LAST_TAG or when the next tag would not fit before the checksum tail.
func ParseDescriptor(b []byte, jsb *JournalSuperblock) ([]JournalTag, error) {
	const st = "journal descriptor block"
	if _, err := checkJournalBlock(st, b, JournalDescriptorBlock, jsb); err != nil {
		return nil, err
	}
	be := binary.BigEndian
	tagBytes := jsb.TagBytes()
	end := len(b) - jsb.TailSize()
	var tags []JournalTag
	for off := JournalHeaderSize; off+tagBytes <= end; {
		t := JournalTag{
			FSBlock: uint64(be.Uint32(b[off:])),
			Flags:   be.Uint16(b[off+6:]),
			Offset:  off,
		}
		if jsb.Has64Bit() {
			t.FSBlock |= uint64(be.Uint32(b[off+8:])) << 32
		}
		switch {
		case jsb.HasCsumV3():
			t.Checksum = be.Uint32(b[off+12:])
		case jsb.HasCsumV2():
			t.Checksum = uint32(be.Uint16(b[off+4:]))
		}
		off += tagBytes
		if !t.SameUUID() {
			t.HasUUID = true
			off += 16
		}
		tags = append(tags, t)
		if t.LastTag() {
			break
		}
	}
	return tags, nil
}

// ParseRevoke decodes the block numbers of a revoke block (jbd2_journal_revoke_header_t plus
// records). r_count counts the bytes used, header included.
func ParseRevoke(b []byte, jsb *JournalSuperblock) ([]uint64, error) {
	const st = "journal revoke block"
	if _, err := checkJournalBlock(st, b, JournalRevokeBlock, jsb); err != nil {
		return nil, err
	}
	const hdr = JournalHeaderSize + 4
	count := binary.BigEndian.Uint32(b[JournalHeaderSize:])
	max := len(b) - jsb.TailSize()
	// Like recovery.c's scan_revoke_records: only a count past the tail is an error; a count
	// below the header or a trailing partial record just yields fewer records.
	if int64(count) > int64(max) {
		return nil, formatErr(st, JournalHeaderSize, "r_count %d > %d usable bytes", count, max)
	}
	rec := 4
	if jsb.Has64Bit() {
		rec = 8
	}
	var out []uint64
	for off := hdr; off+rec <= int(count); off += rec {
		if rec == 8 {
			out = append(out, binary.BigEndian.Uint64(b[off:]))
		} else {
			out = append(out, uint64(binary.BigEndian.Uint32(b[off:])))
		}
	}
	return out, nil
}

// JournalCommit is a decoded commit block (struct commit_header).
type JournalCommit struct {
	Sequence     uint32
	ChecksumType uint8 // 1 crc32, 2 md5, 3 sha1, 4 crc32c
	ChecksumSize uint8
	Checksum     [8]uint32 // only Checksum[0] is used
	CommitSec    uint64    // debugfs writes this byte-swapped: don't trust it on debugfs-made journals
	CommitNsec   uint32
}

// ParseCommit decodes a commit block.
func ParseCommit(b []byte, jsb *JournalSuperblock) (*JournalCommit, error) {
	h, err := checkJournalBlock("journal commit block", b, JournalCommitBlock, jsb)
	if err != nil {
		return nil, err
	}
	if len(b) < 0x3C {
		return nil, formatErr("journal commit block", 0, "%d bytes, need %d", len(b), 0x3C)
	}
	be := binary.BigEndian
	c := &JournalCommit{
		Sequence:     h.Sequence,
		ChecksumType: b[0x0C],
		ChecksumSize: b[0x0D],
		CommitSec:    be.Uint64(b[0x30:]),
		CommitNsec:   be.Uint32(b[0x38:]),
	}
	for i := range c.Checksum {
		c.Checksum[i] = be.Uint32(b[0x10+4*i:])
	}
	return c, nil
}

// crc32c with neither pre- nor post-inversion, as the kernel's crc32c() / jbd2_chksum().
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func journalCRC(seed uint32, p []byte) uint32 { return ^crc32.Update(^seed, castagnoli, p) }

// ChecksumSeed is the crc32c seed of every CSUM_V2/V3 checksum: crc32c(~0, s_uuid).
func (j *JournalSuperblock) ChecksumSeed() uint32 { return journalCRC(^uint32(0), j.UUID[:]) }

// VerifyJournalSuperblockChecksum checks s_checksum of the superblock bytes b (true without CSUM_V2/V3).
func VerifyJournalSuperblockChecksum(b []byte, jsb *JournalSuperblock) bool {
	if !jsb.HasCsumV2V3() || len(b) < JournalSuperblockSize {
		return true
	}
	var tmp [JournalSuperblockSize]byte
	copy(tmp[:], b)
	binary.BigEndian.PutUint32(tmp[0xFC:], 0)
	return journalCRC(^uint32(0), tmp[:]) == binary.BigEndian.Uint32(b[0xFC:])
}

// VerifyJournalBlockChecksum checks the checksum of a descriptor or revoke block (its 4-byte tail)
// or of a commit block (h_chksum[0]). It returns true when the journal has no CSUM_V2/V3 or b is
// not one of those block types.
func VerifyJournalBlockChecksum(b []byte, jsb *JournalSuperblock) bool {
	h, ok := ParseJournalHeader(b)
	if !ok || !jsb.HasCsumV2V3() || len(b) != int(jsb.BlockSize) {
		return true
	}
	var at int
	switch h.BlockType {
	case JournalDescriptorBlock, JournalRevokeBlock:
		at = len(b) - 4
	case JournalCommitBlock:
		at = 0x10
	default:
		return true
	}
	want := binary.BigEndian.Uint32(b[at:])
	c := journalCRC(jsb.ChecksumSeed(), b[:at])
	c = journalCRC(c, []byte{0, 0, 0, 0})
	c = journalCRC(c, b[at+4:])
	return c == want
}

// VerifyJournalTagChecksum checks a data block (as stored in the log, before un-escaping) against
// its tag's checksum: crc32c(crc32c(seed, be32(seq)), data), 16 bits with CSUM_V2, 32 with V3.
func VerifyJournalTagChecksum(jsb *JournalSuperblock, seq uint32, t JournalTag, data []byte) bool {
	if !jsb.HasCsumV2V3() {
		return true
	}
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], seq)
	c := journalCRC(journalCRC(jsb.ChecksumSeed(), s[:]), data)
	if jsb.HasCsumV3() {
		return c == t.Checksum
	}
	return c&0xFFFF == t.Checksum&0xFFFF
}

// crc32BETable is the MSB-first (non-reflected) CRC-32 table of the kernel's crc32_be(), used by
// the v1 commit checksum (COMPAT_CHECKSUM).
var crc32BETable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// JournalV1ChecksumInit starts a COMPAT_CHECKSUM transaction checksum.
const JournalV1ChecksumInit = ^uint32(0)

// JournalV1Checksum folds one block into a COMPAT_CHECKSUM transaction checksum: recovery.c's
// calc_chksums runs crc32_be (no inversion) over each descriptor block and each logged block as
// stored in the log, in log order, starting from JournalV1ChecksumInit; the commit block holds the
// result in h_chksum[0] with h_chksum_type 1 and h_chksum_size 4.
func JournalV1Checksum(sum uint32, block []byte) uint32 {
	for _, b := range block {
		sum = sum<<8 ^ crc32BETable[byte(sum>>24)^b]
	}
	return sum
}

// VerifyJournalV1Commit reports whether a commit block matches a COMPAT_CHECKSUM transaction
// checksum sum, or carries none (type, size and value all 0), as recovery.c accepts.
func VerifyJournalV1Commit(c *JournalCommit, sum uint32) bool {
	const crc32Type, crc32Size = 1, 4
	return (c.ChecksumType == crc32Type && c.ChecksumSize == crc32Size && c.Checksum[0] == sum) ||
		(c.ChecksumType == 0 && c.ChecksumSize == 0 && c.Checksum[0] == 0)
}

// UnescapeJournalBlock restores the magic that jbd2 zeroed in the log copy of a block whose tag
// has ESCAPE set. It modifies b in place.
func UnescapeJournalBlock(b []byte) {
	if len(b) >= 4 {
		binary.BigEndian.PutUint32(b, JournalMagic)
	}
}
