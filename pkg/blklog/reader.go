package blklog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync/atomic"

	"github.com/ext3replay/ext3replay/internal/hugebuf"
	"github.com/klauspost/compress/zstd"
)

// Reader reads the records of a log in order.
type Reader interface {
	// Header describes the log.
	Header() Header
	// Next returns the next record. Record.Data is valid until the next call.
	// At the clean end of the log it returns io.EOF; if the log is truncated
	// or damaged it returns a *DamageError after the last good record, and
	// keeps returning it.
	Next() (Record, error)
	Close() error
}

// ErrTruncated is the Err of a DamageError for a log that ends without its
// end record (e.g. the recorder was killed): every record before is good.
var ErrTruncated = errors.New("log ends without its end record (truncated: was the recorder killed?)")

// DamageError reports a truncated or corrupt log. The records before Record
// were returned intact.
type DamageError struct {
	Path       string // file name, "" if not read from a named file
	Record     int64  // number of the first record that could not be read
	Offset     int64  // byte offset where that record starts: in the decompressed stream if Compressed, else in the file
	Compressed bool   // the file is zstd-compressed
	Err        error
}

func (e *DamageError) Error() string {
	p := e.Path
	if p == "" {
		p = "log"
	}
	where := "byte"
	if e.Compressed {
		where = "decompressed byte"
	}
	return fmt.Sprintf("%s: damaged at record %d (%s %d): %v", p, e.Record, where, e.Offset, e.Err)
}

func (e *DamageError) Unwrap() error { return e.Err }

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}

// newZstdReader opens a streaming decoder with limits fit for untrusted input.
// One goroutine: the decoder's async stream mode (concurrency > 1) hands every
// block between goroutines and measured 40% slower on a 1 GiB log on 2 cores
// (1.2 s against 0.8 s); callers that want overlap run the whole reader on its
// own goroutine instead (see ReadAhead).
func newZstdReader(r io.Reader, opts ...zstd.DOption) (*zstd.Decoder, error) {
	return zstd.NewReader(r, append([]zstd.DOption{
		zstd.WithDecoderMaxWindow(128 << 20),
		zstd.WithDecoderConcurrency(1)}, opts...)...)
}

// nativeInside reports whether the zstd stream starting in p (a peek at the
// file) decompresses to a native log.
func nativeInside(p []byte) bool {
	d, err := newZstdReader(bytes.NewReader(p), zstd.IgnoreChecksum(true))
	if err != nil {
		return false
	}
	defer d.Close()
	var m [len(Magic)]byte
	_, err = io.ReadFull(d, m[:])
	return err == nil && string(m[:]) == Magic
}

// Open opens a log file of any supported kind, recognised by magic: native
// logs and dm-log-writes logs, each zstd-compressed or raw.
func Open(path string) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("blklog: %w", err)
	}
	r, err := NewReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileReader{Reader: r, f: f}, nil
}

type fileReader struct {
	Reader
	f *os.File
}

func (r *fileReader) Close() error {
	err := r.Reader.Close()
	if e := r.f.Close(); e != nil && err == nil {
		err = e
	}
	return err
}

// NewReader detects the kind of log on r (see Open); name is used in errors.
// Unless r reads from memory (it has a Len method, as bytes.Reader does), r is
// read ahead of the decoding on a goroutine of its own, so nothing else may
// read r until the Reader is closed. Close stops that goroutine but does not
// close r.
func NewReader(r io.Reader, name string) (Reader, error) {
	return newReader(r, name, nil)
}

// newReader is NewReader; fw, when not nil, is the follower r waits through (OpenFollow): the
// stream is then looked at only as far as it has arrived, and a native log's end record ends
// the waiting.
func newReader(r io.Reader, name string, fw *follower) (Reader, error) {
	if name == "" {
		name = "log"
	}
	if fw == nil {
		// A native log file compressed by zstd: its frames decoded on two cores (parframes.go).
		if par := parallelNative(r); par != nil {
			return newParNative(par, name)
		}
	}
	var pre *prefetcher
	if fw == nil && !inMemory(r) {
		// A follower's source waits for the file to grow: it stays on the decoder's goroutine.
		pre = prefetch(r)
		r = pre
	}
	br := bufio.NewReaderSize(r, 256<<10)
	var src io.Reader = br
	var in *prefetched
	if pre != nil {
		in = pre.input(br)
		src = in
	}
	var dec *zstd.Decoder
	var frames *rawFrames
	if p, _ := br.Peek(4); bytes.Equal(p, zstdMagic) {
		var opts []zstd.DOption
		native := false
		peek := br.Size()
		if fw != nil {
			peek = br.Buffered() // a growing file: Peek(Size) would wait for 256 KiB
		}
		if p, _ := br.Peek(peek); nativeInside(p) {
			// Every native record carries a CRC-32C of all its bytes, so the
			// frames' XXH64 checksums add nothing: skipping them saves a
			// fifth of decoding time on a log that compresses well.
			opts = append(opts, zstd.IgnoreChecksum(true))
			native = true
		}
		if in != nil && pre.file != nil {
			// A log file: its raw blocks are lent in place (rawframes.go). Without the native
			// records' CRCs, the frames' checksums are checked.
			frames = newRawFrames(in, opts, !native)
			src = frames
		} else {
			d, err := newZstdReader(src, opts...)
			if err != nil {
				return nil, fmt.Errorf("blklog: %s: %w", name, err)
			}
			dec = d
			src = d
		}
	}
	fail := func(err error) (Reader, error) {
		if dec != nil {
			dec.Close()
		}
		frames.Close()
		pre.close()
		var de *DamageError
		if errors.As(err, &de) {
			de.Compressed = dec != nil || frames != nil
		}
		return nil, err
	}
	win := &window{src: src}
	if err := win.fill(8); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fail(&DamageError{Path: name, Err: fmt.Errorf("too short to hold a log header: %w", err)})
	}
	p := win.buf[win.r : win.r+8]
	switch Detect(p) {
	case FormatNative:
		nr, err := newNativeReader(win, name)
		if err != nil {
			return fail(err)
		}
		nr.dec, nr.frames, nr.pre = dec, frames, pre
		nr.compressed = dec != nil || frames != nil
		if fw != nil {
			nr.atEnd = fw.finish
		}
		return nr, nil
	case FormatDMLogWrites:
		win.direct = true
		dr, err := newDMLogReader(win, name)
		if err != nil {
			return fail(err)
		}
		dr.dec, dr.frames, dr.pre = dec, frames, pre
		dr.compressed = dec != nil || frames != nil
		return dr, nil
	}
	return fail(fmt.Errorf("blklog: %s: not a native ext3replay log nor a dm-log-writes log (starts % x)", name, p))
}

// nativeReader decodes a native log stream. Records are decoded straight
// out of a large window buffer: Record.Data points into it (valid until the
// next call, as Reader promises), so payloads are never copied twice.
type nativeReader struct {
	name       string
	win        *window
	dec        *zstd.Decoder
	frames     *rawFrames  // the decoder of a log file's zstd stream, instead of dec
	par        *parFrames  // the decoder of a native log file's frames, instead of both
	pre        *prefetcher // nil for a source in memory or followed
	hdr        Header
	off        int64 // stream offset of the next record
	n          int64 // records returned
	compressed bool
	err        error // sticky: io.EOF or *DamageError
	// atEnd, when set, is called at the end record, before the check that nothing follows it:
	// a follower stops waiting for more there.
	atEnd func()
}

// window buffers a stream so that up to a whole record can be looked at in
// place. It grows only as data actually arrives, so a corrupt length cannot
// make it allocate much beyond the input.
type window struct {
	src  io.Reader
	buf  []byte
	r, w int
	err  error
	// swap, when set, replaces compaction in place: records already handed out
	// may point into buf, so fill moves the pending bytes to the buffer swap
	// returns and leaves the old one, untouched from then on, to the caller.
	// n is the size wanted; the new buffer must be longer than the pending
	// bytes (fill swaps again if it is still shorter than n). nil stops the
	// window: fill fails with errWindowStopped from then on.
	swap func(old []byte, n int) []byte
	// direct, once the buffered bytes are consumed, passes reads straight to
	// src: a reader that reads whole payloads (dm-log-writes) then gets them
	// from the decoder without a copy through buf.
	direct bool
	// filter, once set (SetPayloadFilter, from the consumer's goroutine), lets large writes'
	// payloads arrive through scratch, the units it skips left out (omit.go).
	filter  atomic.Pointer[PayloadFilter]
	scratch []byte
}

// errWindowStopped is the error of a window whose swap stopped it.
var errWindowStopped = errors.New("blklog: window stopped")

// windowSize is the initial window; it grows to hold the largest record.
const windowSize = 256 << 10

// fill makes at least n bytes available at buf[r:], or returns the error
// that stopped it (io.EOF if the stream ended cleanly before any of them).
func (b *window) fill(n int) error {
	for b.w-b.r < n {
		if b.err != nil {
			if b.err == io.EOF && b.w > b.r {
				return io.ErrUnexpectedEOF
			}
			return b.err
		}
		if len(b.buf)-b.r < n || b.w == len(b.buf) {
			if err := b.move(n); err != nil {
				return err
			}
		}
		end := len(b.buf)
		if b.swap != nil {
			// Read what is needed and at most windowSize more: whatever of a
			// record sits at the end of a buffer is copied again on the swap.
			// With a payload filter, less: what is read ahead is read whole.
			ahead := windowSize
			if b.filter.Load() != nil {
				ahead = filteredAhead
			}
			end = min(end, b.w+max(n-(b.w-b.r), ahead))
		}
		m, err := b.src.Read(b.buf[b.w:end])
		b.w += m
		if err != nil {
			b.err = err
		} else if m == 0 {
			b.err = io.ErrNoProgress
		}
	}
	return nil
}

// move makes room after r for n bytes: it moves the pending bytes to the front, growing the
// buffer if it is full of them, or to the buffer swap returns. It may take more than one call.
func (b *window) move(n int) error {
	if b.swap != nil {
		nb := b.swap(b.buf, n)
		if nb == nil {
			b.err = errWindowStopped
			return b.err
		}
		b.w = copy(nb, b.buf[b.r:b.w])
		b.buf = nb
	} else if b.w-b.r == len(b.buf) || len(b.buf) < n {
		nb := hugebuf.Make(max(min(2*len(b.buf), n+windowSize), windowSize))
		b.w = copy(nb, b.buf[b.r:b.w])
		b.buf = nb
	} else {
		b.w = copy(b.buf, b.buf[b.r:b.w])
	}
	b.r = 0
	return nil
}

// room makes buf hold n bytes from r, as fill does, without reading any more.
func (b *window) room(n int) error {
	for len(b.buf)-b.r < n {
		if err := b.move(n); err != nil {
			return err
		}
	}
	return nil
}

// readFull reads exactly len(p) more bytes of the stream into p, with fill's errors: a stream
// that ends or fails stops the window, and an end midway is io.ErrUnexpectedEOF. The caller
// accounts for the bytes (w is not moved).
func (b *window) readFull(p []byte) error {
	for len(p) > 0 {
		if b.err != nil {
			if b.err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return b.err
		}
		m, err := b.src.Read(p)
		p = p[m:]
		if err != nil {
			b.err = err
		} else if m == 0 {
			b.err = io.ErrNoProgress
		}
	}
	return nil
}

// Read lets other decoders consume the window as a plain stream.
func (b *window) Read(p []byte) (int, error) {
	if b.r == b.w {
		if b.err != nil {
			return 0, b.err
		}
		if b.direct || len(p) >= len(b.buf) {
			return b.src.Read(p) // skip the copy
		}
		if err := b.fill(1); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// next returns the next n bytes (valid until the next fill) and consumes them.
func (b *window) next(n int) ([]byte, error) {
	if err := b.fill(n); err != nil {
		return nil, err
	}
	p := b.buf[b.r : b.r+n]
	b.r += n
	return p, nil
}

func newNativeReader(win *window, name string) (*nativeReader, error) {
	nr := &nativeReader{name: name, win: win}
	pre, err := nr.win.next(16)
	if err != nil {
		return nil, &DamageError{Path: name, Record: 0, Offset: 0, Err: fmt.Errorf("%w: %v", errHeader, noEOF(err))}
	}
	_, body, err := parseHeaderPrefix(pre)
	if err != nil {
		return nil, fmt.Errorf("blklog: %s: %w", name, err)
	}
	nr.win.r -= 16 // read the header again, whole
	hb, err := nr.win.next(16 + body + 4)
	if err != nil {
		return nil, &DamageError{Path: name, Record: 0, Offset: 0, Err: fmt.Errorf("%w: %v", errHeader, noEOF(err))}
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, fmt.Errorf("blklog: %s: %w", name, err)
	}
	nr.hdr = *h
	nr.off = int64(len(hb))
	return nr, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: inside a structure, EOF is truncation.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (nr *nativeReader) Header() Header { return nr.hdr }

func (nr *nativeReader) damage(err error) error {
	nr.err = &DamageError{Path: nr.name, Record: nr.n, Offset: nr.off, Compressed: nr.compressed, Err: err}
	return nr.err
}

func (nr *nativeReader) Next() (Record, error) {
	if nr.err != nil {
		return Record{}, nr.err
	}
	if err := nr.win.fill(recHeaderSize); err != nil {
		if err == io.EOF {
			return Record{}, nr.damage(ErrTruncated)
		}
		return Record{}, nr.damage(fmt.Errorf("reading record header: %w", err))
	}
	b := nr.win.buf[nr.win.r : nr.win.r+recHeaderSize]
	le := binary.LittleEndian
	typ := b[0]
	r := Record{
		Index:  nr.n,
		Type:   Type(typ),
		Flags:  Flags(b[1]),
		Length: le.Uint32(b[4:]),
		Sector: le.Uint64(b[8:]),
		TimeNS: int64(le.Uint64(b[16:])),
	}
	dlen := le.Uint32(b[24:])
	want := le.Uint32(b[28:])
	if dlen > MaxRecordData {
		return Record{}, nr.damage(fmt.Errorf("record claims %d bytes of data, limit %d", dlen, MaxRecordData))
	}
	if b[2] != 0 || b[3] != 0 {
		return Record{}, nr.damage(fmt.Errorf("reserved bytes %#02x %#02x are not zero", b[2], b[3]))
	}
	var (
		rec     []byte
		c       uint32
		omitted *Omissions
		err     error
	)
	if f := nr.omitting(&r, b[1], dlen); f != nil {
		rec, c, omitted, err = nr.readOmitting(f, recHeaderSize+int(dlen), r.Sector*SectorSize)
	} else if rec, err = nr.win.next(recHeaderSize + int(dlen)); err == nil {
		c = crc32.Update(0, castagnoli, rec[:28])
		c = crc32.Update(c, castagnoli, rec[recHeaderSize:])
	}
	if err != nil {
		return Record{}, nr.damage(fmt.Errorf("reading %d bytes of record data: %w", dlen, noEOF(err)))
	}
	data := rec[recHeaderSize:]
	if c != want {
		return Record{}, nr.damage(fmt.Errorf("record CRC-32C %#08x, stored %#08x", c, want))
	}
	if typ == typeEnd {
		if r.Sector != uint64(nr.n) || dlen != 0 {
			return Record{}, nr.damage(fmt.Errorf("end record counts %d records, %d were read", r.Sector, nr.n))
		}
		if nr.atEnd != nil {
			nr.atEnd()
		}
		if err := nr.win.fill(1); err != io.EOF {
			nr.off += recHeaderSize
			if err == nil {
				err = errors.New("data after the end record")
			}
			return Record{}, nr.damage(err)
		}
		nr.err = io.EOF
		return Record{}, io.EOF
	}
	if dlen > 0 {
		r.Data = data
		r.Omitted = omitted
	}
	if err := checkRecord(&r); err != nil {
		return Record{}, nr.damage(err)
	}
	// The recorder refuses requests outside the disk without logging them, so a
	// record beyond the header's disk size (or beyond any offset) is damage.
	if err := CheckDeviceRange(&r, nr.hdr.DiskSize); err != nil {
		return Record{}, nr.damage(err)
	}
	nr.off += recHeaderSize + int64(dlen)
	nr.n++
	return r, nil
}

func (nr *nativeReader) Close() error {
	if nr.dec != nil {
		nr.dec.Close()
		nr.dec = nil
	}
	nr.frames.Close()
	nr.par.Close()
	nr.pre.close()
	return nil
}
