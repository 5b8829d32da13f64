package ext3fs

import "encoding/binary"

// DirEntry is one live directory entry (struct ext2_dir_entry_2, or ext2_dir_entry without the
// filetype feature).
type DirEntry struct {
	Inode    uint32
	RecLen   uint16 // as stored (see recLen for 64 KiB blocks)
	NameLen  uint16
	FileType uint8 // 0 without the filetype feature
	Name     string
	Offset   int // byte offset of the entry within the block
}

// DirEntryHeaderSize is the fixed part of a directory entry before the name.
const DirEntryHeaderSize = 8

// recLen decodes rec_len; blocks of 64 KiB and more store it in a folded form (ext2fs_get_rec_len).
func recLen(v uint16, bs int) int {
	if bs < 65536 {
		return int(v)
	}
	if v == 65535 || v == 0 {
		return bs
	}
	return int(v&65532) | int(v&3)<<16
}

// ParseDirBlock decodes a whole directory block (b is one file-system block) and returns the live
// entries (inode != 0) in on-disk order. Entries must chain exactly to the end of the block; an
// error names the offset of the first entry that does not (the entries before it are returned).
// htree dx_root and dx_node blocks are valid linear blocks by design: dx_root yields "." and
// "..", a dx_node yields nothing.
func ParseDirBlock(b []byte, hasFiletype bool) ([]DirEntry, error) {
	var out []DirEntry
	err := WalkDirBlock(b, hasFiletype, func(e *DirEntry, name []byte) error {
		e.Name = string(name)
		out = append(out, *e)
		return nil
	})
	return out, err
}

// IsDirBlock reports whether b is a valid linear directory block (WalkDirBlock would return
// nil), without building an error: the cheap test of whether content can be a directory block,
// run on every block written to free space, most of which are file data and fail at once.
func IsDirBlock(b []byte, hasFiletype bool) bool {
	_, f := walkDir(b, hasFiletype, nil, nil)
	return f == dirOK
}

// WalkDirBlock is ParseDirBlock without allocation: it calls fn for each live entry with the
// entry (Name left empty) and the name bytes, which alias b and are only valid during the call.
// An error from fn stops the walk and is returned.
func WalkDirBlock(b []byte, hasFiletype bool, fn func(e *DirEntry, name []byte) error) error {
	var fnErr error
	var e DirEntry
	off, f := walkDir(b, hasFiletype, &e, func(e *DirEntry, name []byte) bool {
		fnErr = fn(e, name)
		return fnErr == nil
	})
	if f == dirStopped {
		return fnErr
	}
	return f.err(b, off, hasFiletype)
}

// dirFault is why walkDir stopped.
type dirFault uint8

const (
	dirOK dirFault = iota
	dirShortHeader
	dirRecLenSmall
	dirRecLenAlign
	dirRecLenPastEnd
	dirNameTooLong
	dirEmptyName
	dirStopped // fn asked to stop
)

// err describes fault f at offset off of b.
func (f dirFault) err(b []byte, off int, hasFiletype bool) error {
	const st = "directory entry"
	if f == dirOK {
		return nil
	}
	if f == dirShortHeader {
		return formatErr(st, int64(off), "%d bytes left in block, need %d for an entry header", len(b)-off, DirEntryHeaderSize)
	}
	le := binary.LittleEndian
	rl := recLen(le.Uint16(b[off+4:]), len(b))
	nameLen := int(b[off+6])
	if !hasFiletype {
		nameLen = int(le.Uint16(b[off+6:]))
	}
	switch f {
	case dirRecLenSmall:
		return formatErr(st, int64(off), "rec_len %d < %d", rl, DirEntryHeaderSize)
	case dirRecLenAlign:
		return formatErr(st, int64(off), "rec_len %d not a multiple of 4", rl)
	case dirRecLenPastEnd:
		return formatErr(st, int64(off), "rec_len %d runs past the end of the %d-byte block", rl, len(b))
	case dirNameTooLong:
		return formatErr(st, int64(off), "name_len %d does not fit in rec_len %d", nameLen, rl)
	}
	return formatErr(st, int64(off), "entry for inode %d has an empty name", le.Uint32(b[off:]))
}

// walkDir checks the entries of a directory block and calls fn (if not nil) for each live
// one, decoded into *e, until fn returns false; it returns where and why it stopped early
// (dirOK at the end). The caller provides e so that a check without fn allocates nothing.
func walkDir(b []byte, hasFiletype bool, e *DirEntry, fn func(e *DirEntry, name []byte) bool) (int, dirFault) {
	le := binary.LittleEndian
	for off := 0; off < len(b); {
		if len(b)-off < DirEntryHeaderSize {
			return off, dirShortHeader
		}
		ino := le.Uint32(b[off:])
		rawRL := le.Uint16(b[off+4:])
		rl := recLen(rawRL, len(b))
		var nameLen int
		var ft uint8
		if hasFiletype {
			nameLen = int(b[off+6])
			ft = b[off+7]
		} else {
			nameLen = int(le.Uint16(b[off+6:]))
		}
		switch {
		case rl < DirEntryHeaderSize:
			return off, dirRecLenSmall
		case rl%4 != 0:
			return off, dirRecLenAlign
		case off+rl > len(b):
			return off, dirRecLenPastEnd
		case DirEntryHeaderSize+nameLen > rl:
			return off, dirNameTooLong
		}
		if ino != 0 {
			if nameLen == 0 {
				return off, dirEmptyName
			}
			if fn != nil {
				*e = DirEntry{Inode: ino, RecLen: rawRL, NameLen: uint16(nameLen), FileType: ft, Offset: off}
				if !fn(e, b[off+DirEntryHeaderSize:off+DirEntryHeaderSize+nameLen]) {
					return off, dirStopped
				}
			}
		}
		off += rl
	}
	return len(b), dirOK
}

// DxEntry is one htree index entry: names hashing to >= Hash live under logical block Block.
// Entry 0 of every index block has an implicit hash of 0.
type DxEntry struct {
	Hash  uint32
	Block uint32 // logical block in the directory (already masked with 0x0FFFFFFF)
}

// DxRoot is the htree root (logical block 0 of an INDEX_FL directory).
type DxRoot struct {
	DotIno         uint32
	DotDotIno      uint32
	HashVersion    uint8
	InfoLength     uint8
	IndirectLevels uint8
	Limit, Count   uint16
	Entries        []DxEntry
}

// DxNode is an interior htree index block.
type DxNode struct {
	Limit, Count uint16
	Entries      []DxEntry
}

// parseDxEntries reads count entries at off, checking them against the limit and the block.
func parseDxEntries(st string, b []byte, off int) (limit, count uint16, ents []DxEntry, err error) {
	le := binary.LittleEndian
	if off+8 > len(b) {
		return 0, 0, nil, formatErr(st, int64(off), "index header runs past the %d-byte block", len(b))
	}
	limit, count = le.Uint16(b[off:]), le.Uint16(b[off+2:])
	if count == 0 || count > limit {
		return 0, 0, nil, formatErr(st, int64(off+2), "count %d not in 1..limit %d", count, limit)
	}
	if off+8*int(limit) > len(b) {
		return 0, 0, nil, formatErr(st, int64(off), "limit %d entries run past the %d-byte block", limit, len(b))
	}
	ents = make([]DxEntry, count)
	for i := range ents {
		p := off + 8*i
		if i > 0 {
			ents[i].Hash = le.Uint32(b[p:])
		}
		ents[i].Block = le.Uint32(b[p+4:]) & 0x0FFFFFFF
	}
	return limit, count, ents, nil
}

// ParseDxRoot decodes an htree root block.
func ParseDxRoot(b []byte) (*DxRoot, error) {
	const st = "htree root"
	le := binary.LittleEndian
	if len(b) < 0x28 {
		return nil, formatErr(st, 0, "need at least 40 bytes, have %d", len(b))
	}
	if le.Uint16(b[4:]) != 12 || b[6] != 1 || b[8] != '.' {
		return nil, formatErr(st, 0, "first entry is not \".\" with rec_len 12")
	}
	if b[0x12] != 2 || b[0x14] != '.' || b[0x15] != '.' {
		return nil, formatErr(st, 0x0C, "second entry is not \"..\"")
	}
	r := &DxRoot{
		DotIno: le.Uint32(b[0:]), DotDotIno: le.Uint32(b[0x0C:]),
		HashVersion: b[0x1C], InfoLength: b[0x1D], IndirectLevels: b[0x1E],
	}
	if r.InfoLength != 8 {
		return nil, formatErr(st, 0x1D, "info_length %d, want 8", r.InfoLength)
	}
	// Two index levels below the root at most, three with large_dir (EXT4_HTREE_LEVEL); callers
	// that know the superblock check the tighter bound with MaxHtreeLevels.
	if r.IndirectLevels > 3 {
		return nil, formatErr(st, 0x1E, "indirect_levels %d > 3", r.IndirectLevels)
	}
	var err error
	r.Limit, r.Count, r.Entries, err = parseDxEntries(st, b, 0x20)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ParseDxNode decodes an interior htree index block (a fake empty dirent followed by entries).
func ParseDxNode(b []byte) (*DxNode, error) {
	const st = "htree node"
	le := binary.LittleEndian
	if len(b) < 0x10 {
		return nil, formatErr(st, 0, "need at least 16 bytes, have %d", len(b))
	}
	if le.Uint32(b[0:]) != 0 || recLen(le.Uint16(b[4:]), len(b)) != len(b) {
		return nil, formatErr(st, 0, "fake entry is not an empty dirent spanning the block")
	}
	n := &DxNode{}
	var err error
	n.Limit, n.Count, n.Entries, err = parseDxEntries(st, b, 0x08)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// MaxHtreeLevels is the largest dx_root indirect_levels the file system allows: 3 with large_dir,
// else 2 (e2fsprogs ext2_dir_htree_level).
func (sb *Superblock) MaxHtreeLevels() uint8 {
	if sb.FeatureIncompat&IncompatLargeDir != 0 {
		return 3
	}
	return 2
}
