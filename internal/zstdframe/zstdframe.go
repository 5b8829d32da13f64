// Package zstdframe decodes the headers of zstd frames and blocks (RFC 8878 section 3.1), for
// the readers that follow a zstd file's structure without decoding it: the image opener, which
// lists a file's frames and leaves long zero runs out (internal/diskimage), and the log reader,
// which lends raw blocks in place (pkg/blklog). Decoding itself is klauspost/compress's, and
// internal/zstdblock's for the frames the log reader decodes itself.
package zstdframe

import "encoding/binary"

const (
	// Magic starts every zstd frame.
	Magic = 0xFD2FB528
	// SkippableMagic, the low 4 bits aside, starts a skippable frame.
	SkippableMagic = 0x184D2A50
	// MaxBlock is the largest content of one block.
	MaxBlock = 128 << 10
)

// IsSkippable reports whether magic starts a skippable frame.
func IsSkippable(magic uint32) bool { return magic&0xFFFFFFF0 == SkippableMagic }

// Header is a frame header (RFC 8878 section 3.1.1.1).
type Header struct {
	Descriptor byte  // Frame_Header_Descriptor
	WindowDesc byte  // Window_Descriptor; 0 in a single-segment frame, which has none
	Window     int64 // the window size; for a single-segment frame its content size
	Size       int64 // Frame_Content_Size, -1 when the header does not give it
	Len        int   // the header's length, magic included
}

func (h Header) Single() bool     { return h.Descriptor&0x20 != 0 }
func (h Header) Checksum() bool   { return h.Descriptor&0x04 != 0 }
func (h Header) Dictionary() bool { return h.Descriptor&0x03 != 0 }

// HeaderLen is the length, magic included, of a frame header whose descriptor (its fifth byte)
// is d.
func HeaderLen(d byte) int {
	n := 5 + [4]int{0, 1, 2, 4}[d&3] + fcsLen(d)
	if d&0x20 == 0 {
		n++ // Window_Descriptor
	}
	return n
}

func fcsLen(d byte) int {
	if d>>6 == 0 && d&0x20 != 0 {
		return 1 // a single-segment frame always gives its size
	}
	return [4]int{0, 2, 4, 8}[d>>6]
}

// ParseHeader decodes the frame header at the start of b. It reports false unless b begins with
// Magic and holds the whole header, and for a header the format forbids (its reserved bit set)
// or whose content size does not fit an int64.
func ParseHeader(b []byte) (Header, bool) {
	if len(b) < 5 || binary.LittleEndian.Uint32(b) != Magic {
		return Header{}, false
	}
	h := Header{Descriptor: b[4], Size: -1, Len: HeaderLen(b[4])}
	if h.Descriptor&0x08 != 0 || len(b) < h.Len {
		return Header{}, false
	}
	p := 5
	if !h.Single() {
		h.WindowDesc = b[p]
		h.Window = int64(1) << (10 + h.WindowDesc>>3)
		h.Window += h.Window / 8 * int64(h.WindowDesc&7)
		p++
	}
	p += [4]int{0, 1, 2, 4}[h.Descriptor&3] // Dictionary_ID
	if n := fcsLen(h.Descriptor); n > 0 {
		var v [8]byte
		copy(v[:], b[p:p+n])
		h.Size = int64(binary.LittleEndian.Uint64(v[:]))
		if n == 2 {
			h.Size += 256 // the 2-byte field is offset by 256
		}
		if h.Size < 0 {
			return Header{}, false
		}
	}
	if h.Single() {
		h.Window = h.Size
	}
	return h, true
}

// BlockType is a block's Block_Type.
type BlockType uint8

const (
	Raw BlockType = iota
	RLE
	Compressed
	Reserved
)

// Block is a block header (RFC 8878 section 3.1.1.2).
type Block struct {
	Last bool
	Type BlockType
	Size int // Block_Size: the content of a raw or RLE block, the input of a compressed one
}

// ParseBlock decodes a 3-byte block header.
func ParseBlock(b [3]byte) Block {
	v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	return Block{Last: v&1 != 0, Type: BlockType(v >> 1 & 3), Size: int(v >> 3)}
}

// Body is the number of input bytes after the block header: one byte stands for an RLE block.
func (b Block) Body() int {
	if b.Type == RLE {
		return 1
	}
	return b.Size
}
