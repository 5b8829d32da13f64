package zstdblock

import (
	"errors"
	"math/bits"
)

// fseEntry is one state of an FSE decoding table (RFC 8878 4.1.1): the symbol it decodes, and
// the next state: base plus the next nbits bits of the stream.
type fseEntry struct {
	sym   uint8
	nbits uint8
	base  uint16
}

// fseTable is a decoding table of 1<<log states.
type fseTable struct {
	log   uint8
	ents  []fseEntry
	valid bool // set once built: a Repeat_Mode table needs one
}

var errFSE = errors.New("zstd: corrupt FSE table description")

// readCounts decodes an FSE table description (RFC 8878 4.1.1) from the start of b into norm
// (the normalized counts of symbols 0..maxSym, -1 for a probability below one), returning the
// accuracy log, the number of symbols described and the bytes read.
func readCounts(b []byte, norm *[256]int16, maxSym int, maxLog uint8) (log uint8, nsym int, n int, err error) {
	pos := uint(0) // bit position in b
	limit := uint(len(b)) * 8
	peek := func(k uint) uint32 { // the next k (<= 24) bits, zeros past the end
		i := pos >> 3
		var v uint32
		for j := uint(0); j < 4 && int(i+j) < len(b); j++ {
			v |= uint32(b[i+j]) << (8 * j)
		}
		return (v >> (pos & 7)) & (1<<k - 1)
	}
	if len(b) == 0 {
		return 0, 0, 0, errFSE
	}
	log = uint8(peek(4)) + 5
	pos += 4
	if log > maxLog {
		return 0, 0, 0, errFSE
	}
	remaining := int32(1)<<log + 1
	threshold := int32(1) << log
	nbits := uint(log) + 1
	sym := 0
	prev0 := false
	for remaining > 1 && sym <= maxSym {
		if pos > limit {
			return 0, 0, 0, errFSE
		}
		if prev0 {
			n0 := sym
			for peek(2) == 3 {
				n0 += 3
				pos += 2
				if pos > limit {
					return 0, 0, 0, errFSE
				}
			}
			n0 += int(peek(2))
			pos += 2
			if n0 > maxSym {
				return 0, 0, 0, errFSE
			}
			for ; sym < n0; sym++ {
				norm[sym] = 0
			}
			prev0 = false
			continue
		}
		max := 2*threshold - 1 - remaining
		var count int32
		if v := int32(peek(nbits - 1)); v < max {
			count = v
			pos += nbits - 1
		} else {
			count = int32(peek(nbits))
			if count >= threshold {
				count -= max
			}
			pos += nbits
		}
		count--
		if count < 0 {
			remaining += count
		} else {
			remaining -= count
		}
		norm[sym] = int16(count)
		sym++
		prev0 = count == 0
		for remaining < threshold && threshold > 1 {
			nbits--
			threshold >>= 1
		}
	}
	if remaining != 1 || pos > limit {
		return 0, 0, 0, errFSE
	}
	return log, sym, int((pos + 7) >> 3), nil
}

// build makes the decoding table of counts norm[:nsym] at accuracy log (FSE_buildDTable).
func (t *fseTable) build(norm []int16, log uint8) error {
	size := 1 << log
	if cap(t.ents) < size {
		t.ents = make([]fseEntry, size, 1<<9)
	}
	t.ents = t.ents[:size]
	t.log = log
	t.valid = false
	var next [256]uint16
	high := size - 1
	total := 0
	for s, c := range norm {
		switch {
		case c == -1:
			if high < 0 {
				return errFSE
			}
			t.ents[high].sym = uint8(s)
			high--
			next[s] = 1
			total++
		case c > 0:
			next[s] = uint16(c)
			total += int(c)
		case c < -1:
			return errFSE
		}
	}
	if total != size {
		return errFSE
	}
	step := size>>1 + size>>3 + 3
	mask := size - 1
	p := 0
	for s, c := range norm {
		for i := 0; i < int(c); i++ {
			t.ents[p].sym = uint8(s)
			for {
				p = (p + step) & mask
				if p <= high {
					break
				}
			}
		}
	}
	if p != 0 {
		return errFSE
	}
	for i := range t.ents {
		s := t.ents[i].sym
		ns := next[s]
		next[s]++
		nb := log - uint8(bits.Len16(ns)-1)
		t.ents[i].nbits = nb
		t.ents[i].base = uint16(int(ns)<<nb - size)
	}
	t.valid = true
	return nil
}

// rle makes the table of one symbol (RLE_Mode): every state decodes sym and reads no bits.
func (t *fseTable) rle(sym uint8) {
	t.ents = append(t.ents[:0], fseEntry{sym: sym})
	t.log = 0
	t.valid = true
}
