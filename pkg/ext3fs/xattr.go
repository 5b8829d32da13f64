package ext3fs

import (
	"encoding/binary"
	"fmt"
)

// Extended attributes (fs/ext4/xattr.h): in the inode after i_extra_isize (an ibody header, the
// magic alone, then entries whose values are addressed from the first entry), or in an xattr
// block (a 32-byte header, then entries whose values are addressed from the block start). Both
// entry lists end with four zero bytes.

// XattrBlockHeaderSize is the size of struct ext4_xattr_header at the start of an xattr block.
const XattrBlockHeaderSize = 32

// Attribute name prefixes by e_name_index (fs/ext4/xattr.c's handler table).
var xattrPrefixes = map[uint8]string{
	1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default", 4: "trusted.",
	6: "security.", 7: "system.", 8: "system.richacl",
}

// XattrIndexSystem is e_name_index of "system." names, among them "system.data" (inline data).
const XattrIndexSystem = 7

// XattrEntry is one extended attribute (struct ext4_xattr_entry plus its value).
type XattrEntry struct {
	NameIndex  uint8
	Name       string // without the prefix NameIndex stands for
	ValueOffs  uint16 // as stored: from the first entry (in-inode) or the block start (block)
	ValueInum  uint32 // ea_inode: the value lives in this inode, Value is nil
	ValueSize  uint32
	Hash       uint32
	Value      []byte // a copy of the value (nil with ValueInum)
	Offset     int    // byte offset of the entry within the bytes given
	ValueStart int    // byte offset of the value within the bytes given
}

// FullName is the attribute's name as getfattr prints it ("user.foo", "system.data").
func (e *XattrEntry) FullName() string {
	if p, ok := xattrPrefixes[e.NameIndex]; ok {
		return p + e.Name
	}
	return fmt.Sprintf("index%d.%s", e.NameIndex, e.Name)
}

// parseXattrEntries decodes the entry list starting at first; values are at valueBase +
// e_value_offs and must lie within b[valueBase:]. Offsets in errors are within b.
func parseXattrEntries(st string, b []byte, first, valueBase int) ([]XattrEntry, error) {
	le := binary.LittleEndian
	var out []XattrEntry
	for off := first; ; {
		if off+4 > len(b) {
			return out, formatErr(st, int64(off), "entry list runs past the end (%d bytes) without its 4-byte terminator", len(b))
		}
		if le.Uint32(b[off:]) == 0 {
			return out, nil
		}
		if off+16 > len(b) {
			return out, formatErr(st, int64(off), "entry header runs past the end (%d bytes)", len(b))
		}
		nl := int(b[off])
		e := XattrEntry{
			NameIndex: b[off+1], ValueOffs: le.Uint16(b[off+2:]), ValueInum: le.Uint32(b[off+4:]),
			ValueSize: le.Uint32(b[off+8:]), Hash: le.Uint32(b[off+12:]), Offset: off,
		}
		if nl == 0 {
			return out, formatErr(st, int64(off), "entry with an empty name")
		}
		if off+16+nl > len(b) {
			return out, formatErr(st, int64(off), "name of %d bytes runs past the end (%d bytes)", nl, len(b))
		}
		e.Name = string(b[off+16 : off+16+nl])
		if e.ValueInum == 0 {
			vs := valueBase + int(e.ValueOffs)
			if uint64(vs)+uint64(e.ValueSize) > uint64(len(b)) {
				return out, formatErr(st, int64(off+2), "value of %s at %d (+%d bytes) runs past the end (%d bytes)", e.FullName(), vs, e.ValueSize, len(b))
			}
			e.ValueStart = vs
			e.Value = append([]byte{}, b[vs:vs+int(e.ValueSize)]...)
		}
		out = append(out, e)
		off += (16 + nl + 3) &^ 3
	}
}

// InodeXattrArea returns the in-inode xattr area of a raw inode record (from 128 +
// i_extra_isize to the end), or nil when the record has none or it does not start with the
// ibody magic.
func InodeXattrArea(raw []byte) []byte {
	if len(raw) <= InodeRecordSize+2 {
		return nil
	}
	start := InodeRecordSize + int(binary.LittleEndian.Uint16(raw[0x80:]))
	if start+4 > len(raw) || binary.LittleEndian.Uint32(raw[start:]) != XattrMagic {
		return nil
	}
	return raw[start:]
}

// ParseInodeXattrs decodes the in-inode extended attributes of a raw inode record (s_inode_size
// bytes). An inode without the ibody magic has none (nil, nil). Offsets in results and errors
// are within raw.
func ParseInodeXattrs(raw []byte) ([]XattrEntry, error) {
	area := InodeXattrArea(raw)
	if area == nil {
		return nil, nil
	}
	base := len(raw) - len(area)
	// Values are addressed from the first entry, right after the magic.
	ents, err := parseXattrEntries("in-inode xattrs", area, 4, 4)
	for i := range ents {
		ents[i].Offset += base
		ents[i].ValueStart += base
	}
	if fe, ok := err.(*FormatError); ok {
		fe.Offset += int64(base)
	}
	return ents, err
}

// XattrBlockHeader is struct ext4_xattr_header.
type XattrBlockHeader struct {
	Magic    uint32
	RefCount uint32
	Blocks   uint32
	Hash     uint32
	Checksum uint32
}

// ParseXattrBlock decodes an xattr block: its header and entries.
func ParseXattrBlock(b []byte) (XattrBlockHeader, []XattrEntry, error) {
	const st = "xattr block"
	le := binary.LittleEndian
	if len(b) < XattrBlockHeaderSize {
		return XattrBlockHeader{}, nil, formatErr(st, 0, "need %d bytes for the header, have %d", XattrBlockHeaderSize, len(b))
	}
	h := XattrBlockHeader{Magic: le.Uint32(b), RefCount: le.Uint32(b[4:]), Blocks: le.Uint32(b[8:]),
		Hash: le.Uint32(b[12:]), Checksum: le.Uint32(b[16:])}
	if h.Magic != XattrMagic {
		return h, nil, formatErr(st, 0, "bad magic 0x%08x, want 0x%08x", h.Magic, uint32(XattrMagic))
	}
	if h.Blocks != 1 {
		return h, nil, formatErr(st, 8, "h_blocks %d, want 1", h.Blocks)
	}
	ents, err := parseXattrEntries(st, b, XattrBlockHeaderSize, 0)
	return h, ents, err
}

// InlineSize is the part of inline data that i_block holds (EXT4_MIN_INLINE_DATA_SIZE).
const InlineSize = 60

// InlineData returns the i_size bytes of an INLINE_DATA_FL inode: the first 60 from i_block, the
// rest from the value of its in-inode "system.data" attribute. b is the raw inode record.
func InlineData(in *Inode, raw []byte) ([]byte, error) {
	if !in.HasInlineData() {
		return nil, formatErr("inline data", 0x20, "inode has no INLINE_DATA_FL")
	}
	head := min(in.Size, InlineSize)
	out := append([]byte{}, in.BlockBytes[:head]...)
	ents, err := ParseInodeXattrs(raw)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.NameIndex == XattrIndexSystem && e.Name == "data" {
			if e.ValueInum != 0 {
				return nil, formatErr("inline data", int64(e.Offset+4), "system.data in an ea_inode")
			}
			if rest := in.Size - head; rest > 0 {
				if uint64(len(e.Value)) < rest {
					return nil, formatErr("inline data", int64(e.Offset+8), "system.data holds %d bytes, i_size %d needs %d", len(e.Value), in.Size, rest)
				}
				out = append(out, e.Value[:rest]...)
			}
			return out, nil
		}
	}
	if in.Size > InlineSize {
		return nil, formatErr("inline data", 0x04, "i_size %d > %d but no system.data attribute", in.Size, InlineSize)
	}
	return out, nil
}

// InlineDirEntries decodes an inline directory's data (InlineData's result): the parent inode in
// its first 4 bytes, then entries chained to byte 60, then (if longer) a second chain over the
// rest. It returns ".." (Offset 0) and the live entries; there is no "." entry on disk. Offsets
// are within data.
func InlineDirEntries(data []byte, hasFiletype bool) ([]DirEntry, error) {
	const st = "inline directory"
	if len(data) < 4 {
		return nil, formatErr(st, 0, "%d bytes, need at least 4 for the parent inode", len(data))
	}
	out := []DirEntry{{Inode: binary.LittleEndian.Uint32(data), Name: "..", NameLen: 2, FileType: uint8(TypeDir)}}
	for _, part := range [][2]int{{4, min(len(data), InlineSize)}, {InlineSize, len(data)}} {
		if part[1] <= part[0] {
			continue
		}
		ents, err := ParseDirBlock(data[part[0]:part[1]], hasFiletype)
		for _, e := range ents {
			e.Offset += part[0]
			out = append(out, e)
		}
		if err != nil {
			if fe, ok := err.(*FormatError); ok {
				fe.Struct = st
				fe.Offset += int64(part[0])
			}
			return out, err
		}
	}
	return out, nil
}
