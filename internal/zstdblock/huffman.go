package zstdblock

import (
	"errors"
	"math/bits"
)

// maxHufLog is the longest Huffman code zstd allows (RFC 8878 4.2.1).
const maxHufLog = 11

// hufEntry is one slot of a Huffman decoding table: the symbol of every code that begins with
// the slot's index, and that code's length.
type hufEntry struct {
	sym   uint8
	nbits uint8
}

// hufTable decodes by looking up the next log bits of the stream.
type hufTable struct {
	log   uint8
	ents  [1 << maxHufLog]hufEntry
	valid bool // set once built: a Treeless_Literals_Block needs one
}

var errHuffman = errors.New("zstd: corrupt Huffman tree description")

// readTree decodes a Huffman_Tree_Description (RFC 8878 4.2.1) from the start of b into t,
// returning the bytes read.
func (t *hufTable) readTree(b []byte, scratch *fseTable) (int, error) {
	if len(b) == 0 {
		return 0, errHuffman
	}
	var w [257]uint8 // up to 255 weights, and the one the last step may write past
	var nw int
	head := int(b[0])
	n := 1
	if head >= 128 {
		// Weights stored directly, 4 bits each.
		nw = head - 127
		size := (nw + 1) / 2
		if 1+size > len(b) {
			return 0, errHuffman
		}
		for i := 0; i < nw; i++ {
			c := b[1+i/2]
			if i%2 == 0 {
				w[i] = c >> 4
			} else {
				w[i] = c & 15
			}
		}
		n += size
	} else {
		// Weights compressed with FSE: a table description, then two interleaved states.
		size := head
		if 1+size > len(b) || size == 0 {
			return 0, errHuffman
		}
		src := b[1 : 1+size]
		var norm [256]int16
		log, nsym, used, err := readCounts(src, &norm, 255, 6)
		if err != nil {
			return 0, errHuffman
		}
		if err := scratch.build(norm[:nsym], log); err != nil {
			return 0, errHuffman
		}
		var br backReader
		if !br.init(src[used:]) {
			return 0, errHuffman
		}
		// Two states take turns, the first decoding the even weights; when a state's update
		// reads past the stream's start, the other state's symbol is the last weight.
		var s [2]uint16
		s[0] = uint16(br.get(uint(log)))
		s[1] = uint16(br.get(uint(log)))
		ents := scratch.ents
		for k := 0; ; k ^= 1 {
			if nw > 254 {
				return 0, errHuffman
			}
			e := ents[s[k]]
			w[nw] = e.sym
			nw++
			br.refill()
			s[k] = e.base + uint16(br.get(uint(e.nbits)))
			if br.overflowed() {
				w[nw] = ents[s[k^1]].sym
				nw++
				break
			}
		}
		n += size
	}
	return n, t.build(w[:nw])
}

// build makes the table for weights w of symbols 0..len(w)-1 and the last symbol, len(w),
// whose weight is implied: the one that makes the codes' sum a power of two (HUF_readStats).
func (t *hufTable) build(w []uint8) error {
	t.valid = false
	if len(w) > 255 {
		return errHuffman
	}
	var rank [maxHufLog + 2]uint32
	total := uint32(0)
	for _, x := range w {
		if x > maxHufLog {
			return errHuffman
		}
		rank[x]++
		if x > 0 {
			total += 1 << (x - 1)
		}
	}
	if total == 0 {
		return errHuffman
	}
	log := uint8(bits.Len32(total)) // total < 1<<log
	if log > maxHufLog {
		return errHuffman
	}
	rest := uint32(1)<<log - total
	if rest&(rest-1) != 0 {
		return errHuffman
	}
	last := uint8(bits.Len32(rest)) // weight of the last symbol
	rank[last]++
	if rank[1] < 2 || rank[1]&1 != 0 {
		return errHuffman
	}
	// Codes of lower weight (longer) come first, each weight's symbols in order.
	var start [maxHufLog + 2]uint32
	pos := uint32(0)
	for x := 1; x <= int(log); x++ {
		start[x] = pos
		pos += rank[x] << (x - 1)
	}
	put := func(sym int, x uint8) {
		if x == 0 {
			return
		}
		k := uint32(1) << (x - 1)
		e := hufEntry{sym: uint8(sym), nbits: log + 1 - x}
		for i := start[x]; i < start[x]+k; i++ {
			t.ents[i] = e
		}
		start[x] += k
	}
	for s, x := range w {
		put(s, x)
	}
	put(len(w), last)
	t.log = log
	t.valid = true
	return nil
}

// decode1 decodes one Huffman stream src into dst, filling it exactly.
func (t *hufTable) decode1(dst, src []byte) error {
	var br backReader
	if !br.init(src) {
		return errLiterals
	}
	log := uint(t.log)
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		br.refill()
		for j := 0; j < 4; j++ {
			e := t.ents[br.peek(log)]
			dst[i+j] = e.sym
			br.skip(uint(e.nbits))
		}
	}
	for ; i < len(dst); i++ {
		br.refill()
		e := t.ents[br.peek(log)]
		dst[i] = e.sym
		br.skip(uint(e.nbits))
	}
	if !br.done() {
		return errLiterals
	}
	return nil
}

// decode4 decodes four Huffman streams (src begins with their 6-byte jump table) into dst.
func (t *hufTable) decode4(dst, src []byte) error {
	if len(src) < 10 {
		return errLiterals
	}
	s1 := int(src[0]) | int(src[1])<<8
	s2 := int(src[2]) | int(src[3])<<8
	s3 := int(src[4]) | int(src[5])<<8
	src = src[6:]
	if s1+s2+s3 > len(src) {
		return errLiterals
	}
	seg := (len(dst) + 3) / 4
	if 3*seg > len(dst) {
		return errLiterals
	}
	parts := [4][]byte{src[:s1], src[s1 : s1+s2], src[s1+s2 : s1+s2+s3], src[s1+s2+s3:]}
	for k := 0; k < 4; k++ {
		lo := k * seg
		hi := min(lo+seg, len(dst))
		if k == 3 {
			hi = len(dst)
		}
		if err := t.decode1(dst[lo:hi], parts[k]); err != nil {
			return err
		}
	}
	return nil
}
