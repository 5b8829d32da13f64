package ext3fs

// jbd2 encoders: the inverse of the decoders in journal.go. They build journals for tests and
// fuzz seeds (ours and the resolver's); with CSUM_V2/V3 they fill in the checksums as the kernel does.

import (
	"encoding/binary"
	"fmt"
)

// Marshal encodes the superblock into a BlockSize-byte journal block 0 (v2 fields only for v2),
// with s_checksum recomputed when CSUM_V2/V3 is on.
func (j *JournalSuperblock) Marshal() []byte {
	n := int(j.BlockSize)
	if n < JournalSuperblockSize {
		n = JournalSuperblockSize
	}
	b := make([]byte, n)
	be := binary.BigEndian
	be.PutUint32(b[0:], JournalMagic)
	be.PutUint32(b[4:], j.BlockType)
	be.PutUint32(b[0x0C:], j.BlockSize)
	be.PutUint32(b[0x10:], j.MaxLen)
	be.PutUint32(b[0x14:], j.First)
	be.PutUint32(b[0x18:], j.Sequence)
	be.PutUint32(b[0x1C:], j.Start)
	be.PutUint32(b[0x20:], uint32(j.Errno))
	if j.BlockType != JournalSuperblockV2 {
		return b
	}
	be.PutUint32(b[0x24:], j.FeatureCompat)
	be.PutUint32(b[0x28:], j.FeatureIncompat)
	be.PutUint32(b[0x2C:], j.FeatureRoCompat)
	copy(b[0x30:0x40], j.UUID[:])
	be.PutUint32(b[0x40:], j.NrUsers)
	be.PutUint32(b[0x48:], j.MaxTransaction)
	be.PutUint32(b[0x4C:], j.MaxTransData)
	b[0x50] = j.ChecksumType
	be.PutUint32(b[0x54:], j.NumFCBlocks)
	be.PutUint32(b[0x58:], j.Head)
	if j.HasCsumV2V3() {
		be.PutUint32(b[0xFC:], journalCRC(^uint32(0), b[:JournalSuperblockSize]))
	} else {
		be.PutUint32(b[0xFC:], j.Checksum)
	}
	return b
}

func putJournalHeader(b []byte, typ, seq uint32) {
	binary.BigEndian.PutUint32(b[0:], JournalMagic)
	binary.BigEndian.PutUint32(b[4:], typ)
	binary.BigEndian.PutUint32(b[8:], seq)
}

// putJournalTail stores the descriptor/revoke tail checksum (CSUM_V2/V3).
func putJournalTail(b []byte, jsb *JournalSuperblock) {
	if !jsb.HasCsumV2V3() {
		return
	}
	at := len(b) - 4
	binary.BigEndian.PutUint32(b[at:], 0)
	binary.BigEndian.PutUint32(b[at:], journalCRC(jsb.ChecksumSeed(), b))
}

// JournalTagChecksum is the tag checksum of a logged block as the kernel computes it (the full
// 32 bits; CSUM_V2 stores the low 16). data is the block as written to the log (escaped).
func JournalTagChecksum(jsb *JournalSuperblock, seq uint32, data []byte) uint32 {
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], seq)
	return journalCRC(journalCRC(jsb.ChecksumSeed(), s[:]), data)
}

// BuildDescriptor encodes a descriptor block for seq holding tags, in the tag format jsb selects.
// The first tag carries jsb.UUID and the others SAME_UUID; LAST_TAG is set on the final tag. Tag
// Flags ESCAPE/DELETED and Checksum are taken from tags. It fails if the tags do not fit.
func BuildDescriptor(jsb *JournalSuperblock, seq uint32, tags []JournalTag) ([]byte, error) {
	b := make([]byte, jsb.BlockSize)
	putJournalHeader(b, JournalDescriptorBlock, seq)
	be := binary.BigEndian
	tb, end := jsb.TagBytes(), len(b)-jsb.TailSize()
	off := JournalHeaderSize
	for i, t := range tags {
		flags := t.Flags &^ (JournalFlagSameUUID | JournalFlagLastTag)
		need := tb
		if i == 0 {
			need += 16
		} else {
			flags |= JournalFlagSameUUID
		}
		if i == len(tags)-1 {
			flags |= JournalFlagLastTag
		}
		if off+need > end {
			return nil, fmt.Errorf("ext3fs: %d tags do not fit in a %d-byte descriptor block", len(tags), len(b))
		}
		if t.FSBlock>>32 != 0 && !jsb.Has64Bit() {
			return nil, fmt.Errorf("ext3fs: block %d needs a 64BIT journal", t.FSBlock)
		}
		be.PutUint32(b[off:], uint32(t.FSBlock))
		switch {
		case jsb.HasCsumV3():
			be.PutUint32(b[off+4:], uint32(flags))
			be.PutUint32(b[off+12:], t.Checksum)
		case jsb.HasCsumV2():
			be.PutUint16(b[off+4:], uint16(t.Checksum))
			be.PutUint16(b[off+6:], flags)
		default:
			be.PutUint16(b[off+6:], flags)
		}
		if jsb.Has64Bit() {
			be.PutUint32(b[off+8:], uint32(t.FSBlock>>32))
		}
		off += tb
		if i == 0 {
			copy(b[off:], jsb.UUID[:])
			off += 16
		}
	}
	putJournalTail(b, jsb)
	return b, nil
}

// BuildRevoke encodes a revoke block for seq listing blocks (32- or 64-bit records per jsb).
func BuildRevoke(jsb *JournalSuperblock, seq uint32, blocks []uint64) ([]byte, error) {
	b := make([]byte, jsb.BlockSize)
	putJournalHeader(b, JournalRevokeBlock, seq)
	rec := 4
	if jsb.Has64Bit() {
		rec = 8
	}
	off := JournalHeaderSize + 4
	if off+rec*len(blocks) > len(b)-jsb.TailSize() {
		return nil, fmt.Errorf("ext3fs: %d revoke records do not fit in a %d-byte block", len(blocks), len(b))
	}
	for _, n := range blocks {
		if rec == 8 {
			binary.BigEndian.PutUint64(b[off:], n)
		} else {
			if n>>32 != 0 {
				return nil, fmt.Errorf("ext3fs: revoked block %d needs a 64BIT journal", n)
			}
			binary.BigEndian.PutUint32(b[off:], uint32(n))
		}
		off += rec
	}
	binary.BigEndian.PutUint32(b[JournalHeaderSize:], uint32(off))
	putJournalTail(b, jsb)
	return b, nil
}

// BuildCommit encodes a commit block for seq (crc32c h_chksum[0] with CSUM_V2/V3).
func BuildCommit(jsb *JournalSuperblock, seq uint32, sec uint64, nsec uint32) []byte {
	b := make([]byte, jsb.BlockSize)
	putJournalHeader(b, JournalCommitBlock, seq)
	binary.BigEndian.PutUint64(b[0x30:], sec)
	binary.BigEndian.PutUint32(b[0x38:], nsec)
	if jsb.HasCsumV2V3() {
		b[0x0C] = 4 // JBD2_CRC32C_CHKSUM
		b[0x0D] = 4 // JBD2_CRC32_CHKSUM_SIZE
		binary.BigEndian.PutUint32(b[0x10:], journalCRC(jsb.ChecksumSeed(), b))
	}
	return b
}

// EscapeJournalBlock returns the log form of a block: if it starts with the journal magic the
// copy has those 4 bytes zeroed and escaped is true (the tag must then carry ESCAPE).
func EscapeJournalBlock(data []byte) (logged []byte, escaped bool) {
	logged = append([]byte(nil), data...)
	if len(logged) >= 4 && binary.BigEndian.Uint32(logged) == JournalMagic {
		copy(logged, []byte{0, 0, 0, 0})
		return logged, true
	}
	return logged, false
}
