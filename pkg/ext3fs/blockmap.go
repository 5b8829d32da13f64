package ext3fs

import "encoding/binary"

// Block map geometry: i_block[0..11] direct, [12] single, [13] double, [14] triple indirect.
const (
	NDirBlocks = 12
	IndBlock   = 12
	DIndBlock  = 13
	TIndBlock  = 14
)

// ParseIndirect decodes an indirect block: len(b)/4 little-endian block pointers, 0 for holes.
func ParseIndirect(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

// IndirectInRange reports whether every pointer of indirect block b lies inside a file system
// of the given number of blocks (0, a hole, included): the cheap test of whether content can be
// an indirect block at all.
func IndirectInRange(b []byte, blocks uint64) bool {
	for i := 0; i+4 <= len(b); i += 4 {
		if uint64(binary.LittleEndian.Uint32(b[i:])) >= blocks {
			return false
		}
	}
	return true
}

// IsExtentNode reports whether b starts with the extent-node magic (the header is not checked
// further).
func IsExtentNode(b []byte) bool {
	return len(b) >= 2 && binary.LittleEndian.Uint16(b) == ExtentMagic
}

// ExtentMagic is eh_magic of every extent tree node.
const ExtentMagic = 0xF30A

// maxExtentDepth bounds eh_depth; the kernel never builds trees deeper than 5.
const maxExtentDepth = 5

// ExtentHeader is struct ext3_extent_header.
type ExtentHeader struct {
	Magic      uint16
	Entries    uint16
	Max        uint16
	Depth      uint16
	Generation uint32
}

// Extent is a leaf entry: Len file blocks from logical Block stored at physical Start.
type Extent struct {
	Block     uint32
	Len       uint16 // real length (the unwritten flag already removed)
	Start     uint64
	Unwritten bool // preallocated, reads as zeros
}

// ExtentIdx is an interior entry: the subtree in physical block Leaf covers logical blocks >= Block.
type ExtentIdx struct {
	Block uint32
	Leaf  uint64
}

// ParseExtentNode decodes an extent tree node: the 60-byte root in i_block or a whole tree
// block. Leaves (depth 0) fill the []Extent result, interior nodes the []ExtentIdx result.
func ParseExtentNode(b []byte) (ExtentHeader, []Extent, []ExtentIdx, error) {
	h, err := parseExtentHeader(b)
	if err != nil {
		return h, nil, nil, err
	}
	if h.Depth == 0 {
		ext := make([]Extent, h.Entries)
		for i := range ext {
			ext[i] = extentAt(b, i)
		}
		return h, ext, nil, nil
	}
	idx := make([]ExtentIdx, h.Entries)
	for i := range idx {
		idx[i] = extentIdxAt(b, i)
	}
	return h, nil, idx, nil
}

// parseExtentHeader decodes and checks an extent node's header: its entries then lie in b.
func parseExtentHeader(b []byte) (ExtentHeader, error) {
	const st = "extent node"
	le := binary.LittleEndian
	if len(b) < 12 {
		return ExtentHeader{}, formatErr(st, 0, "need 12 bytes for the header, have %d", len(b))
	}
	h := ExtentHeader{
		Magic: le.Uint16(b[0:]), Entries: le.Uint16(b[2:]), Max: le.Uint16(b[4:]),
		Depth: le.Uint16(b[6:]), Generation: le.Uint32(b[8:]),
	}
	switch {
	case h.Magic != ExtentMagic:
		return h, formatErr(st, 0, "bad magic 0x%04x, want 0x%04x", h.Magic, ExtentMagic)
	case h.Entries > h.Max:
		return h, formatErr(st, 2, "eh_entries %d > eh_max %d", h.Entries, h.Max)
	case 12+12*int(h.Max) > len(b):
		return h, formatErr(st, 4, "eh_max %d entries run past the %d-byte node", h.Max, len(b))
	case h.Depth > maxExtentDepth:
		return h, formatErr(st, 6, "eh_depth %d > %d", h.Depth, maxExtentDepth)
	}
	return h, nil
}

// extentAt decodes leaf entry i of a node whose header parseExtentHeader accepted.
func extentAt(b []byte, i int) Extent {
	le := binary.LittleEndian
	p := b[12+12*i:]
	l := le.Uint16(p[4:])
	e := Extent{Block: le.Uint32(p[0:]), Len: l, Start: uint64(le.Uint16(p[6:]))<<32 | uint64(le.Uint32(p[8:]))}
	if l > 32768 {
		e.Len, e.Unwritten = l-32768, true
	}
	return e
}

// extentIdxAt decodes interior entry i of a node whose header parseExtentHeader accepted.
func extentIdxAt(b []byte, i int) ExtentIdx {
	le := binary.LittleEndian
	p := b[12+12*i:]
	return ExtentIdx{Block: le.Uint32(p[0:]), Leaf: uint64(le.Uint16(p[8:]))<<32 | uint64(le.Uint32(p[4:]))}
}
