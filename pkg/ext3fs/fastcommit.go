package ext3fs

import (
	"encoding/binary"
	"fmt"
)

// ext4 fast commits (fs/ext4/fast_commit.h and fast_commit.c, Documentation/filesystems/ext4/
// journal.rst "Fast commits"): after the regular jbd2 log, the journal holds a small area of
// blocks into which an fsync can write tag-length-value records instead of a full transaction.
// Records never cross a block boundary (a PAD record fills the rest of a block); a TAIL record
// ends one fast commit and carries the crc32c (seed 0, reset after each tail) of every record
// since the previous tail, itself up to its tid. The first fast commit after a full commit starts
// with a HEAD record. All fast commits between two full commits carry the tid of the running
// (not yet committed) transaction; recovery replays them only when that tid is the one after
// the last full commit it found.

// FCTag is a fast-commit record tag.
type FCTag uint16

// Fast-commit tags.
const (
	FCTagAddRange FCTag = 1 // blocks mapped into an inode (an extent)
	FCTagDelRange FCTag = 2 // logical blocks unmapped from an inode
	FCTagCreat    FCTag = 3 // a new inode got its first name
	FCTagLink     FCTag = 4 // a name added for an existing inode
	FCTagUnlink   FCTag = 5 // a name removed
	FCTagInode    FCTag = 6 // the raw on-disk inode
	FCTagPad      FCTag = 7 // filler up to the end of the block
	FCTagTail     FCTag = 8 // end of one fast commit: tid and crc
	FCTagHead     FCTag = 9 // start of the area: features and tid
)

// String is the kernel's tag2str name (debugfs logdump -O prints the same).
func (t FCTag) String() string {
	switch t {
	case FCTagAddRange:
		return "ADD_RANGE"
	case FCTagDelRange:
		return "DEL_RANGE"
	case FCTagCreat:
		return "CREAT_DENTRY"
	case FCTagLink:
		return "ADD_ENTRY"
	case FCTagUnlink:
		return "DEL_ENTRY"
	case FCTagInode:
		return "INODE"
	case FCTagPad:
		return "PAD"
	case FCTagTail:
		return "TAIL"
	case FCTagHead:
		return "HEAD"
	}
	return fmt.Sprintf("tag%d", uint16(t))
}

// FCTagHeaderSize is sizeof(struct ext4_fc_tl): le16 tag, le16 length of the value.
const FCTagHeaderSize = 4

// fcNameMax is EXT4_NAME_LEN.
const fcNameMax = 255

// FCRecord is one decoded fast-commit record. The fields that apply depend on Tag.
type FCRecord struct {
	Tag    FCTag
	Len    uint16 // value length as stored
	Offset int    // byte offset of the record's tag within the block

	Ino      uint32 // ADD_RANGE, DEL_RANGE, INODE; CREAT, LINK, UNLINK: the child
	Parent   uint32 // CREAT, LINK, UNLINK: the directory
	Name     string // CREAT, LINK, UNLINK
	Extent   Extent // ADD_RANGE: logical Block, Len, physical Start, Unwritten
	LBlk     uint32 // DEL_RANGE: first logical block
	NBlocks  uint32 // DEL_RANGE: number of blocks
	RawInode []byte // INODE: the on-disk inode record (a copy; 128 bytes up to s_inode_size)
	Features uint32 // HEAD
	TID      uint32 // HEAD, TAIL
	CRC      uint32 // TAIL: the stored checksum
}

// fcValueLenValid is the kernel's ext4_fc_value_len_isvalid.
func fcValueLenValid(tag FCTag, n, inodeSize int) bool {
	switch tag {
	case FCTagAddRange:
		return n == 16
	case FCTagDelRange:
		return n == 12
	case FCTagCreat, FCTagLink, FCTagUnlink:
		return n-8 >= 1 && n-8 <= fcNameMax
	case FCTagInode:
		return n-4 >= InodeRecordSize && n-4 <= inodeSize
	case FCTagPad:
		return true
	case FCTagTail:
		return n >= 8
	case FCTagHead:
		return n == 8
	}
	return false
}

// ParseFCRecord decodes the record at b[off:] of a fast-commit block; inodeSize (s_inode_size)
// bounds an INODE record. It checks the value length as the kernel does and that the value lies
// within the block.
func ParseFCRecord(b []byte, off, inodeSize int) (FCRecord, error) {
	const st = "fast-commit record"
	le := binary.LittleEndian
	if off < 0 || off+FCTagHeaderSize > len(b) {
		return FCRecord{}, formatErr(st, int64(off), "tag header runs past the %d-byte block", len(b))
	}
	r := FCRecord{Tag: FCTag(le.Uint16(b[off:])), Len: le.Uint16(b[off+2:]), Offset: off}
	val := off + FCTagHeaderSize
	n := int(r.Len)
	if n > len(b)-val {
		return r, formatErr(st, int64(off+2), "%s value of %d bytes runs past the %d-byte block", r.Tag, n, len(b))
	}
	if !fcValueLenValid(r.Tag, n, inodeSize) {
		return r, formatErr(st, int64(off), "%s with a %d-byte value", r.Tag, n)
	}
	v := b[val : val+n]
	switch r.Tag {
	case FCTagAddRange:
		r.Ino = le.Uint32(v)
		l := le.Uint16(v[8:])
		r.Extent = Extent{Block: le.Uint32(v[4:]), Len: l, Start: uint64(le.Uint16(v[10:]))<<32 | uint64(le.Uint32(v[12:]))}
		if l > 32768 {
			r.Extent.Len, r.Extent.Unwritten = l-32768, true
		}
	case FCTagDelRange:
		r.Ino, r.LBlk, r.NBlocks = le.Uint32(v), le.Uint32(v[4:]), le.Uint32(v[8:])
	case FCTagCreat, FCTagLink, FCTagUnlink:
		r.Parent, r.Ino, r.Name = le.Uint32(v), le.Uint32(v[4:]), string(v[8:])
	case FCTagInode:
		r.Ino = le.Uint32(v)
		r.RawInode = append([]byte{}, v[4:]...)
	case FCTagTail:
		r.TID, r.CRC = le.Uint32(v), le.Uint32(v[4:])
	case FCTagHead:
		r.Features, r.TID = le.Uint32(v), le.Uint32(v[4:])
	}
	return r, nil
}

// FCCommit is one complete fast commit: its records (HEAD, if first, to TAIL) whose TAIL matched
// the expected tid and checksum.
type FCCommit struct {
	TID     uint32
	Block   int // area block index of its first record
	Records []FCRecord
}

// FCScan is the result of scanning a fast-commit area.
type FCScan struct {
	Commits []FCCommit
	// End is why the scan stopped: nil when every block was scanned, else a *FormatError whose
	// Offset is the byte offset in the area (block index x block size + offset in the block) of
	// the record that ended it (an unknown tag or bad length, such as a never-written block, a
	// HEAD or TAIL of another tid, or a TAIL whose crc does not match).
	End error
	// Pending is the number of records read after the last good TAIL (a fast commit cut short).
	Pending int
}

// ScanFastCommits scans the fast-commit area, given as its blocks in order, as the kernel's
// ext4_fc_replay_scan does: records chained within each block, the checksum accumulated over each
// record and compared at every TAIL, which must carry tid (the tid after the last full commit in
// the log), as must a HEAD. HEAD features other than 0 are not supported and end the scan.
func ScanFastCommits(blocks [][]byte, tid uint32, inodeSize int) FCScan {
	var s FCScan
	var cur []FCRecord
	curBlock := 0
	var crc uint32
	for bi, b := range blocks {
		base := int64(bi) * int64(len(b))
		fail := func(off int, format string, args ...any) FCScan {
			s.End = formatErr(fmt.Sprintf("fast-commit area block %d", bi), base+int64(off), format, args...)
			s.Pending = len(cur)
			return s
		}
		for off := 0; off+FCTagHeaderSize <= len(b); {
			r, err := ParseFCRecord(b, off, inodeSize)
			if err != nil {
				fe := err.(*FormatError)
				fe.Struct = fmt.Sprintf("fast-commit area block %d", bi)
				fe.Offset += base
				s.End, s.Pending = fe, len(cur)
				return s
			}
			if len(cur) == 0 {
				curBlock = bi
			}
			end := off + FCTagHeaderSize + int(r.Len)
			switch r.Tag {
			case FCTagHead:
				if r.Features != 0 {
					return fail(off, "HEAD features 0x%x not supported", r.Features)
				}
				if r.TID != tid {
					return fail(off, "HEAD of tid %d, want %d", r.TID, tid)
				}
				crc = Crc32c(crc, b[off:end])
				cur = append(cur, r)
			case FCTagTail:
				crc = Crc32c(crc, b[off:off+FCTagHeaderSize+4])
				if r.TID != tid {
					return fail(off, "TAIL of tid %d, want %d", r.TID, tid)
				}
				if r.CRC != crc {
					return fail(off+FCTagHeaderSize+4, "TAIL crc 0x%08x, computed 0x%08x", r.CRC, crc)
				}
				cur = append(cur, r)
				s.Commits = append(s.Commits, FCCommit{TID: r.TID, Block: curBlock, Records: cur})
				cur, crc = nil, 0
			default:
				crc = Crc32c(crc, b[off:end])
				if r.Tag != FCTagPad {
					cur = append(cur, r)
				}
			}
			off = end
		}
	}
	s.Pending = len(cur)
	return s
}

// FastCommitArea is the fast-commit area of the journal, in journal (logical) blocks: [first,
// end). It exists on a file system with the fast_commit feature (ext4 superblock, compat 0x400):
// s_num_fc_blks blocks (256 when 0) at the end of the s_maxlen journal blocks. jbd2 shortens the
// regular log to j_last = s_maxlen - s_num_fc_blks and writes fast commits from j_fc_first =
// j_last + 1 up to s_maxlen - 1. The journal's own FAST_COMMIT flag only says fast commits may
// need replay (the kernel sets it at mount and clears it at unmount), so it is not required here.
// ok is false when the numbers leave no area.
func (j *JournalSuperblock) FastCommitArea() (first, end uint32, ok bool) {
	n := j.NumFCBlocks
	if n == 0 {
		n = journalFCDefaultBlocks
	}
	if n+1 >= j.MaxLen {
		return 0, 0, false
	}
	return j.MaxLen - n + 1, j.MaxLen, true
}
