// Package zstdblock decodes the blocks of a zstd frame (RFC 8878) one at a time, for a reader
// that follows the frame itself: it keeps the state blocks share within a frame (the history
// window, the repeat offsets, the last Huffman and FSE tables) and lets the caller add to the
// history the content of blocks it did not decode here (Raw_Blocks, which it returns from where
// they lie). It does not read frame or block headers (internal/zstdframe does), nor check the
// frame's checksum.
//
// Semantics follow RFC 8878 and the reference decoder (lib/decompress in facebook/zstd); a
// frame this decoder refuses is one the caller gives to a full decoder, which then decides.
package zstdblock

import (
	"errors"
	"fmt"
)

// MaxBlock is the largest content of a block (Block_Maximum_Size).
const MaxBlock = 128 << 10

var (
	errLiterals  = errors.New("zstd: corrupt literals section")
	errSequences = errors.New("zstd: corrupt sequences section")
)

// Decoder decodes the compressed and RLE blocks of one frame at a time.
type Decoder struct {
	window int    // the frame's Window_Size
	hist   []byte // content so far; its last window bytes are what matches may reach
	reps   [3]int
	huf    hufTable
	ll     fseTable
	ml     fseTable
	of     fseTable
	wts    fseTable // scratch for Huffman weights
	lits   []byte
	litBuf [MaxBlock]byte
	norm   [256]int16
}

// Reset starts a frame whose Window_Size is window.
func (d *Decoder) Reset(window int) {
	d.window = window
	// Room for two windows and a block: the history slides one window at a time.
	if want := 2*window + MaxBlock; cap(d.hist) < want || cap(d.hist) > 4*want {
		d.hist = make([]byte, 0, want)
	}
	d.hist = d.hist[:0]
	d.reps = [3]int{1, 4, 8}
	d.huf.valid, d.ll.valid, d.ml.valid, d.of.valid = false, false, false, false
}

// room makes space for n more bytes of content at the end of the history, keeping the last
// window bytes before them.
func (d *Decoder) room(n int) {
	if len(d.hist)+n <= cap(d.hist) {
		return
	}
	keep := min(len(d.hist), d.window)
	copy(d.hist[:keep], d.hist[len(d.hist)-keep:])
	d.hist = d.hist[:keep]
}

// Extend returns the next n bytes of history for the caller to fill with content it returns
// itself (a Raw_Block's, read from where it lies). Only the last window bytes matter: a caller
// with more asks for the last window of them.
func (d *Decoder) Extend(n int) []byte {
	if n > d.window+MaxBlock {
		n = d.window + MaxBlock
	}
	d.room(n)
	k := len(d.hist)
	d.hist = d.hist[:k+n]
	return d.hist[k:]
}

// RLE adds a block of n copies of b and returns its content (valid until the next call).
func (d *Decoder) RLE(b byte, n int) []byte {
	out := d.Extend(n)
	for i := range out {
		out[i] = b
	}
	return out
}

// Compressed decodes a Compressed_Block's body src, whose content may be at most max bytes, and
// returns the content (valid until the next call).
func (d *Decoder) Compressed(src []byte, max int) ([]byte, error) {
	if max > MaxBlock {
		max = MaxBlock
	}
	n, err := d.literals(src)
	if err != nil {
		return nil, err
	}
	if len(d.lits) > max {
		return nil, errLiterals
	}
	d.room(max)
	start := len(d.hist)
	if err := d.sequences(src[n:], start+max); err != nil {
		d.hist = d.hist[:start]
		return nil, err
	}
	return d.hist[start:], nil
}

// literals decodes the Literals_Section at the start of src into d.lits and returns its size.
func (d *Decoder) literals(src []byte) (int, error) {
	if len(src) == 0 {
		return 0, errLiterals
	}
	typ := src[0] & 3
	sf := (src[0] >> 2) & 3
	if typ < 2 { // Raw_Literals_Block, RLE_Literals_Block
		var size, hl int
		switch sf {
		case 0, 2:
			size, hl = int(src[0]>>3), 1
		case 1:
			if len(src) < 2 {
				return 0, errLiterals
			}
			size, hl = int(src[0]>>4)|int(src[1])<<4, 2
		case 3:
			if len(src) < 3 {
				return 0, errLiterals
			}
			size, hl = int(src[0]>>4)|int(src[1])<<4|int(src[2])<<12, 3
		}
		if size > MaxBlock {
			return 0, errLiterals
		}
		if typ == 0 {
			if hl+size > len(src) {
				return 0, errLiterals
			}
			// The literals are used where they lie: they are copied once, into the content.
			d.lits = src[hl : hl+size]
			return hl + size, nil
		}
		if hl+1 > len(src) {
			return 0, errLiterals
		}
		d.lits = d.litBuf[:size]
		for i := range d.lits {
			d.lits[i] = src[hl]
		}
		return hl + 1, nil
	}
	// Compressed_Literals_Block, Treeless_Literals_Block.
	var regen, comp, hl int
	streams := 4
	switch sf {
	case 0, 1:
		if len(src) < 3 {
			return 0, errLiterals
		}
		v := int(src[0]) | int(src[1])<<8 | int(src[2])<<16
		regen, comp, hl = (v>>4)&0x3ff, (v>>14)&0x3ff, 3
		if sf == 0 {
			streams = 1
		}
	case 2:
		if len(src) < 4 {
			return 0, errLiterals
		}
		v := int(src[0]) | int(src[1])<<8 | int(src[2])<<16 | int(src[3])<<24
		regen, comp, hl = (v>>4)&0x3fff, (v>>18)&0x3fff, 4
	case 3:
		if len(src) < 5 {
			return 0, errLiterals
		}
		v := int(src[0]) | int(src[1])<<8 | int(src[2])<<16 | int(src[3])<<24 | int(src[4])<<32
		regen, comp, hl = (v>>4)&0x3ffff, (v>>22)&0x3ffff, 5
	}
	if regen > MaxBlock || hl+comp > len(src) {
		return 0, errLiterals
	}
	body := src[hl : hl+comp]
	if typ == 2 {
		n, err := d.huf.readTree(body, &d.wts)
		if err != nil {
			return 0, err
		}
		body = body[n:]
	} else if !d.huf.valid {
		return 0, errLiterals
	}
	d.lits = d.litBuf[:regen]
	var err error
	if streams == 1 {
		err = d.huf.decode1(d.lits, body)
	} else {
		err = d.huf.decode4(d.lits, body)
	}
	if err != nil {
		return 0, err
	}
	return hl + comp, nil
}

// Literal and match length codes: each code's base value and extra bits (RFC 8878 3.1.1.3.2.1.1).
var (
	llBase = [36]uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536}
	llBits = [36]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	mlBase = [53]uint32{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
		27, 28, 29, 30, 31, 32, 33, 34, 35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
		4099, 8195, 16387, 32771, 65539}
	mlBits = [53]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
)

// The predefined distributions (RFC 8878 3.1.1.3.2.2).
var (
	llDefault = []int16{4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
		-1, -1, -1, -1}
	mlDefault = []int16{1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1}
	ofDefault = []int16{1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1}

	llPredef, mlPredef, ofPredef fseTable
)

func init() {
	for _, p := range []struct {
		t    *fseTable
		norm []int16
		log  uint8
	}{{&llPredef, llDefault, 6}, {&mlPredef, mlDefault, 6}, {&ofPredef, ofDefault, 5}} {
		if err := p.t.build(p.norm, p.log); err != nil {
			panic(fmt.Sprintf("zstdblock: predefined table: %v", err))
		}
	}
}

// table sets t as mode (Symbol_Compression_Modes) says, from the start of src; it returns the
// bytes read.
func (d *Decoder) table(t *fseTable, mode byte, src []byte, predef *fseTable, maxSym int, maxLog uint8) (int, error) {
	switch mode {
	case 0: // Predefined_Mode
		t.log, t.valid = predef.log, true
		t.ents = append(t.ents[:0], predef.ents...)
		return 0, nil
	case 1: // RLE_Mode
		if len(src) < 1 || int(src[0]) > maxSym {
			return 0, errSequences
		}
		t.rle(src[0])
		return 1, nil
	case 2: // FSE_Compressed_Mode
		log, nsym, n, err := readCounts(src, &d.norm, maxSym, maxLog)
		if err != nil {
			return 0, err
		}
		if err := t.build(d.norm[:nsym], log); err != nil {
			return 0, err
		}
		return n, nil
	default: // Repeat_Mode
		if !t.valid {
			return 0, errSequences
		}
		return 0, nil
	}
}

// sequences decodes the Sequences_Section src and executes it: the content goes to the end of
// the history, which it may not take past limit.
func (d *Decoder) sequences(src []byte, limit int) error {
	if len(src) == 0 {
		return errSequences
	}
	nseq := int(src[0])
	p := 1
	switch {
	case nseq == 0:
		if len(src) != 1 {
			return errSequences
		}
		return d.copyLiterals(d.lits, limit)
	case nseq == 255:
		if len(src) < 3 {
			return errSequences
		}
		nseq = int(src[1]) + int(src[2])<<8 + 0x7f00
		p = 3
	case nseq >= 128:
		if len(src) < 2 {
			return errSequences
		}
		nseq = (nseq-128)<<8 + int(src[1])
		p = 2
	}
	if p >= len(src) {
		return errSequences
	}
	modes := src[p]
	p++
	if modes&3 != 0 {
		return errSequences
	}
	for _, tb := range []struct {
		t      *fseTable
		mode   byte
		predef *fseTable
		maxSym int
		maxLog uint8
	}{
		{&d.ll, modes >> 6, &llPredef, 35, 9},
		{&d.of, modes >> 4 & 3, &ofPredef, 31, 8},
		{&d.ml, modes >> 2 & 3, &mlPredef, 52, 9},
	} {
		n, err := d.table(tb.t, tb.mode, src[p:], tb.predef, tb.maxSym, tb.maxLog)
		if err != nil {
			return err
		}
		p += n
	}
	var br backReader
	if !br.init(src[p:]) {
		return errSequences
	}
	ll, of, ml := d.ll.ents, d.of.ents, d.ml.ents
	sll := br.get(uint(d.ll.log))
	sof := br.get(uint(d.of.log))
	sml := br.get(uint(d.ml.log))
	lits := d.lits
	hist := d.hist
	for i := 0; i < nseq; i++ {
		if sll >= uint64(len(ll)) || sof >= uint64(len(of)) || sml >= uint64(len(ml)) {
			return errSequences
		}
		el, eo, em := ll[sll], of[sof], ml[sml]
		if el.sym > 35 || em.sym > 52 || eo.sym > 31 {
			return errSequences
		}
		br.refill()
		ofv := uint64(1)<<eo.sym + br.get(uint(eo.sym))
		if eo.sym > 24 {
			br.refill()
		}
		mlen := int(mlBase[em.sym]) + int(br.get(uint(mlBits[em.sym])))
		br.refill()
		llen := int(llBase[el.sym]) + int(br.get(uint(llBits[el.sym])))

		// Repeat offsets (RFC 8878 3.1.1.5).
		var off int
		if ofv > 3 {
			off = int(ofv - 3)
			d.reps[2], d.reps[1], d.reps[0] = d.reps[1], d.reps[0], off
		} else {
			idx := int(ofv) - 1
			if llen == 0 {
				idx++
			}
			switch idx {
			case 0:
				off = d.reps[0]
			case 1:
				off = d.reps[1]
				d.reps[1], d.reps[0] = d.reps[0], off
			case 2:
				off = d.reps[2]
				d.reps[2], d.reps[1], d.reps[0] = d.reps[1], d.reps[0], off
			default:
				off = d.reps[0] - 1
				if off == 0 {
					return errSequences
				}
				d.reps[2], d.reps[1], d.reps[0] = d.reps[1], d.reps[0], off
			}
		}

		if i+1 < nseq {
			br.refill()
			sll = uint64(el.base) + br.get(uint(el.nbits))
			sml = uint64(em.base) + br.get(uint(em.nbits))
			sof = uint64(eo.base) + br.get(uint(eo.nbits))
		}

		// Execute: literals, then the match.
		if llen > len(lits) || len(hist)+llen+mlen > limit {
			return errSequences
		}
		hist = append(hist, lits[:llen]...)
		lits = lits[llen:]
		if off > len(hist) || off > d.window {
			return errSequences
		}
		// An overlapping match repeats its first off bytes: copied in pieces that double,
		// each from bytes already final.
		from := len(hist) - off
		for mlen > 0 {
			n := min(mlen, len(hist)-from)
			hist = append(hist, hist[from:from+n]...)
			mlen -= n
		}
	}
	if !br.done() {
		return errSequences
	}
	d.hist = hist
	return d.copyLiterals(lits, limit)
}

// copyLiterals adds the literals left after the last sequence.
func (d *Decoder) copyLiterals(lits []byte, limit int) error {
	if len(d.hist)+len(lits) > limit {
		return errSequences
	}
	d.hist = append(d.hist, lits...)
	return nil
}

// RawLiterals returns how many bytes of content a Compressed_Block whose body begins with p
// stores as they are, in a Raw_Literals_Block, with its header: what decoding it costs no more
// than a Raw_Block of that size. It is 0 for other literals or a p too short to tell.
func RawLiterals(p []byte) int {
	if len(p) == 0 || p[0]&3 != 0 {
		return 0
	}
	switch (p[0] >> 2) & 3 {
	case 1:
		if len(p) >= 2 {
			return int(p[0]>>4) | int(p[1])<<4 + 2
		}
	case 3:
		if len(p) >= 3 {
			return int(p[0]>>4) | int(p[1])<<4 | int(p[2])<<12 + 3
		}
	default:
		return int(p[0]>>3) + 1
	}
	return 0
}
