package zstdblock

import (
	"encoding/binary"
	"math/bits"
)

// backReader reads a zstd backward bit stream (RFC 8878 4.1: FSE and Huffman streams): written
// forward, read from its last byte towards its first, the last byte's highest set bit a marker
// above the first bit read. v holds the 8 bytes b[pos:pos+8] (fewer, zero-padded above, for a
// stream shorter than 8 bytes); used counts the bits of v already read, from the top.
type backReader struct {
	b    []byte
	pos  int
	v    uint64
	used uint
	left int // bits not read yet; below zero once the reader has passed the stream's start
}

func (r *backReader) init(b []byte) bool {
	if len(b) == 0 || b[len(b)-1] == 0 {
		return false
	}
	r.b = b
	pad := uint(bits.LeadingZeros8(b[len(b)-1])) + 1
	r.left = len(b)*8 - int(pad)
	if len(b) >= 8 {
		r.pos = len(b) - 8
		r.v = binary.LittleEndian.Uint64(b[r.pos:])
		r.used = pad
		return true
	}
	r.pos = 0
	r.v = 0
	for i := len(b) - 1; i >= 0; i-- {
		r.v = r.v<<8 | uint64(b[i])
	}
	r.v <<= 8 * uint(8-len(b))
	r.used = pad
	return true
}

// refill makes at least 56 bits readable from v unless the stream's start is near: then the
// bits below it read as zeros.
func (r *backReader) refill() {
	if r.pos == 0 || r.used < 8 {
		return
	}
	n := int(r.used >> 3)
	if n > r.pos {
		n = r.pos
	}
	r.pos -= n
	r.used -= uint(n) * 8
	r.v = binary.LittleEndian.Uint64(r.b[r.pos:])
}

// get reads n bits (n <= 56 after refill; a value of 0 bits is 0).
func (r *backReader) get(n uint) uint64 {
	if n == 0 {
		return 0
	}
	var x uint64
	if r.used < 64 {
		x = (r.v << r.used) >> (64 - n)
	}
	r.used += n
	r.left -= int(n)
	return x
}

// peek returns the next n bits without reading them (n >= 1).
func (r *backReader) peek(n uint) uint64 {
	if r.used >= 64 {
		return 0
	}
	return (r.v << r.used) >> (64 - n)
}

// skip reads n bits peeked before.
func (r *backReader) skip(n uint) {
	r.used += n
	r.left -= int(n)
}

// overflowed reports whether more bits were read than the stream holds.
func (r *backReader) overflowed() bool { return r.left < 0 }

// done reports whether the stream was read exactly to its start.
func (r *backReader) done() bool { return r.left == 0 }
