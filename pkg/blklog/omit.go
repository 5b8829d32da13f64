package blklog

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
)

// Omitting payloads. Most of a large log is file data that its consumer only glances at: the
// resolver looks at a data block's content just to see that it is neither zeros nor anything a
// map node or directory block could be, and then forgets it. Copying that data out of the zstd
// decoder into the read-ahead's buffers, which are far larger than the caches, was the largest
// single cost of decoding: on the 1 GiB bench capture `big`, 0.16 s of the decoding goroutine's
// 0.32 s went to that copy, where `zstd -dc` to /dev/null makes none.
//
// So a consumer may give a log's reader a PayloadFilter (a native log's, or a dm-log-writes
// log's read in place by ReadAhead): the payload of a large write
// then arrives through a small scratch buffer that stays in cache, its CRC-32C is computed
// there, and only the units the filter wants are copied into the window. Record.Data keeps its
// full length and place (offsets into it mean what they meant); the units left out are marked
// in Record.Omitted and their bytes are unspecified. The filter decides on content and
// position alone, on the decoding goroutine, ahead of the consumer: a consumer whose later
// knowledge says it needs a unit after all reads the record again (PayloadSource).

// PayloadFilter says which units of a write's payload its consumer can do without.
type PayloadFilter struct {
	// Unit is the granularity in bytes: a power of two from 512 to 64 KiB (a file system's
	// block size). Only writes that start on a unit boundary of the disk are filtered, and only
	// their whole units.
	Unit int
	// Skip reports whether the unit at byte offset off of the disk, holding p, may be left
	// out. It runs on the decoding goroutine, concurrently with the consumer.
	Skip func(off uint64, p []byte) bool
	// Min is the smallest payload filtered, in bytes; 0 means DefaultOmitMin.
	Min int
}

// DefaultOmitMin is the smallest payload filtered by default: below it, the copy into the
// window costs less than looking at it unit by unit, and small writes are mostly metadata.
const DefaultOmitMin = 64 << 10

// filteredAhead is how much a window with a filter reads past what a record needs (windowSize
// without): bytes read ahead arrive whole, so that much of the next payload escapes the filter.
const filteredAhead = 16 << 10

// omitScratch is the scratch buffer a filtered payload passes through: large enough for few
// calls into the decoder, small enough to stay in the core's cache with the decoder's own
// buffers.
const omitScratch = 128 << 10

// SetPayloadFilter installs f on r, a native log's reader (as Open or NewReader return it, or
// ReadAhead over one) or ReadAhead over a dm-log-writes log's, and reports whether it could:
// other formats and wrappers read payloads whole. It may be called while a read-ahead decodes:
// records decoded before are whole.
func SetPayloadFilter(r Reader, f PayloadFilter) bool {
	if f.Skip == nil || f.Unit < SectorSize || f.Unit > omitScratch/2 || f.Unit&(f.Unit-1) != 0 {
		return false
	}
	if f.Min <= 0 {
		f.Min = DefaultOmitMin
	}
	for {
		switch x := r.(type) {
		case *readAhead:
			r = x.r
		case *fileReader:
			r = x.Reader
		case *nativeReader:
			x.win.filter.Store(&f)
			return true
		case *dmLogReader:
			// Only when read in place from a window (by ReadAhead): the copying path has
			// nothing to save.
			if x.win == nil {
				return false
			}
			x.win.filter.Store(&f)
			return true
		default:
			return false
		}
	}
}

// errOmitted refuses to write a record whose payload has units left out: they would be
// written as whatever the buffer held.
var errOmitted = errors.New("a payload filter left parts of its payload out: it cannot be written")

// Omissions marks the units of a record's payload that a PayloadFilter left out.
type Omissions struct {
	Unit int // bytes per unit
	bits []uint64
}

// Has reports whether the byte at offset off of the payload was left out. An Omissions made
// elsewhere than by a reader has nothing left out.
func (o *Omissions) Has(off int) bool {
	if o == nil || off < 0 || o.Unit <= 0 {
		return false
	}
	i := off / o.Unit
	return i/64 < len(o.bits) && o.bits[i/64]&(1<<(i%64)) != 0
}

// Units counts the units left out.
func (o *Omissions) Units() int {
	if o == nil {
		return 0
	}
	n := 0
	for _, w := range o.bits {
		n += bits.OnesCount64(w)
	}
	return n
}

// omitting returns the filter that applies to the record whose header was just parsed (r, its
// flags byte and payload length), or nil: not a write, too small, not aligned on a unit, or
// already whole in the window.
func (nr *nativeReader) omitting(r *Record, flags byte, dlen uint32) *PayloadFilter {
	if Flags(flags)&FlagNoPayload != 0 || dlen != r.Length || r.Type != TypeWrite {
		return nil
	}
	return nr.win.filtering(recHeaderSize, int(dlen), r.Sector)
}

// readOmitting is window.next for a filtered record of total bytes (header included) whose
// payload starts at byte off of the disk: the record in the window, with its CRC-32C and the
// units left out.
func (nr *nativeReader) readOmitting(f *PayloadFilter, total int, off uint64) ([]byte, uint32, *Omissions, error) {
	c := crc32.Update(0, castagnoli, nr.win.buf[nr.win.r:nr.win.r+28])
	rec, om, err := nr.win.nextFiltered(total, recHeaderSize, off, f, func(p []byte) { c = crc32.Update(c, castagnoli, p) })
	return rec, c, om, err
}

// filtering returns the window's filter if it applies to the next record: head bytes, then a
// write's payload of n bytes at sector of the disk. It does not if the payload is too small,
// not on a unit boundary, or already whole in the window.
func (b *window) filtering(head, n int, sector uint64) *PayloadFilter {
	f := b.filter.Load()
	if f == nil || n < f.Min {
		return nil
	}
	off := sector * SectorSize
	if off/SectorSize != sector || off%uint64(f.Unit) != 0 || b.w-b.r >= head+n {
		return nil
	}
	return f
}

// A lender is a window's source that can hand out the next bytes of its stream where they lie
// (rawFrames: the raw blocks of a zstd stream, in the file's read-ahead buffers).
type lender interface {
	// lend returns the next bytes without copying them: at most n, a multiple of unit (a power
	// of two), valid until the next call; nil, having read nothing, when they are not at hand.
	lend(n, unit int) []byte
	// lending reports whether the bytes come from where lend lends: a nil from lend is then a
	// boundary a single unit read by copy gets past.
	lending() bool
}

// nextFiltered is next(n) for a record whose bytes from head on are a write's payload, at byte
// off of the disk, filtered by f: the record in the window and the units left out. sum, when
// set, sees every byte of the payload in order. What the window holds already, and the parts of
// units at either end, are kept; the rest passes through the scratch buffer, unit by unit.
func (b *window) nextFiltered(n, head int, off uint64, f *PayloadFilter, sum func([]byte)) ([]byte, *Omissions, error) {
	if err := b.room(n); err != nil {
		return nil, nil, err
	}
	start, end := b.r+head, b.r+n
	if sum == nil {
		sum = func([]byte) {}
	}
	sum(b.buf[start:b.w])
	direct := func(to int) error { // read straight into the window up to buf[to]
		if err := b.readFull(b.buf[b.w:to]); err != nil {
			return err
		}
		sum(b.buf[b.w:to])
		b.w = to
		return nil
	}
	unit := f.Unit
	if k := (b.w - start) % unit; k != 0 {
		if err := direct(min(b.w+unit-k, end)); err != nil {
			return nil, nil, err
		}
	}
	if b.scratch == nil {
		b.scratch = make([]byte, omitScratch)
	}
	l, _ := b.src.(lender)
	var om *Omissions
	for end-b.w >= unit {
		want := min(end-b.w, len(b.scratch)) &^ (unit - 1)
		var s []byte
		if l != nil && b.err == nil {
			// Lent in place where the source can; a unit it cannot lend is copied alone.
			if s = l.lend(want, unit); s == nil && l.lending() {
				want = unit
			}
		}
		if s == nil {
			s = b.scratch[:want]
			if err := b.readFull(s); err != nil {
				return nil, nil, err
			}
		}
		sum(s)
		for i := 0; i < len(s); i += unit {
			at := b.w + i - start // in the payload
			if !f.Skip(off+uint64(at), s[i:i+unit]) {
				copy(b.buf[b.w+i:], s[i:i+unit])
				continue
			}
			if om == nil {
				om = &Omissions{Unit: unit, bits: make([]uint64, (end-start+64*unit-1)/(64*unit))}
			}
			om.bits[at/unit/64] |= 1 << (at / unit % 64)
		}
		b.w += len(s)
	}
	if b.w < end {
		if err := direct(end); err != nil {
			return nil, nil, err
		}
	}
	rec := b.buf[b.r:end]
	b.r = end
	return rec, om, nil
}

// PayloadSource reads records again from a log, for their payloads: those of records whose
// units a PayloadFilter left out, when the consumer turns out to need them. It reads forward
// from the record asked for last (a consumer asks in log order) and opens the log again only
// to go back.
type PayloadSource struct {
	open func() (Reader, error)
	r    Reader
	next int64 // the index of the record r returns next
}

// NewPayloadSource reads again the log that open opens; nothing is opened before the first
// call of Record.
func NewPayloadSource(open func() (Reader, error)) *PayloadSource {
	return &PayloadSource{open: open}
}

// Record returns record index of the log, whole. Its Data is valid until the next call.
func (s *PayloadSource) Record(index int64) (Record, error) {
	if s.r != nil && index < s.next {
		s.r.Close()
		s.r = nil
	}
	if s.r == nil {
		r, err := s.open()
		if err != nil {
			return Record{}, fmt.Errorf("reading record %d again: %w", index, err)
		}
		s.r, s.next = r, 0
	}
	for {
		rec, err := s.r.Next()
		if err == io.EOF {
			err = fmt.Errorf("the log ends at record %d", s.next)
		}
		if err != nil {
			return Record{}, fmt.Errorf("reading record %d again: %w", index, err)
		}
		s.next = rec.Index + 1
		if rec.Index == index {
			return rec, nil
		}
	}
}

// Close closes the log if it was opened.
func (s *PayloadSource) Close() error {
	if s.r == nil {
		return nil
	}
	err := s.r.Close()
	s.r = nil
	return err
}
