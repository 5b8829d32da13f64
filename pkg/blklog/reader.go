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
	Path   string // file name, "" if not read from a named file
	Record int64  // number of the first record that could not be read
	Offset int64  // byte offset of that record in the decompressed stream (the file, if not compressed)
	Err    error
}

func (e *DamageError) Error() string {
	p := e.Path
	if p == "" {
		p = "log"
	}
	return fmt.Sprintf("%s: damaged at record %d (byte %d of the decompressed stream): %v", p, e.Record, e.Offset, e.Err)
}

func (e *DamageError) Unwrap() error { return e.Err }

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}

// newZstdReader opens a streaming decoder with limits fit for untrusted input.
func newZstdReader(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r,
		zstd.WithDecoderMaxWindow(128<<20),
		zstd.WithDecoderConcurrency(2))
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
// Close does not close r.
func NewReader(r io.Reader, name string) (Reader, error) {
	if name == "" {
		name = "log"
	}
	br := bufio.NewReaderSize(r, 256<<10)
	var dec *zstd.Decoder
	src := br
	if p, _ := br.Peek(4); bytes.Equal(p, zstdMagic) {
		d, err := newZstdReader(br)
		if err != nil {
			return nil, fmt.Errorf("blklog: %s: %w", name, err)
		}
		dec = d
		src = bufio.NewReaderSize(d, 256<<10)
	}
	p, err := src.Peek(8)
	if len(p) < 8 {
		if dec != nil {
			dec.Close()
		}
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, &DamageError{Path: name, Err: fmt.Errorf("too short to hold a log header: %w", err)}
	}
	switch {
	case string(p) == Magic:
		nr, err := newNativeReader(src, name)
		if err != nil {
			if dec != nil {
				dec.Close()
			}
			return nil, err
		}
		nr.dec = dec
		return nr, nil
	case binary.LittleEndian.Uint64(p) == DMLogMagic:
		dr, err := newDMLogReader(src, name)
		if err != nil {
			if dec != nil {
				dec.Close()
			}
			return nil, err
		}
		dr.dec = dec
		return dr, nil
	}
	if dec != nil {
		dec.Close()
	}
	return nil, fmt.Errorf("blklog: %s: not a native ext3replay log nor a dm-log-writes log (starts % x)", name, p)
}

// nativeReader decodes a native log stream.
type nativeReader struct {
	name string
	r    *bufio.Reader
	dec  *zstd.Decoder
	hdr  Header
	off  int64 // decompressed offset of the next record
	n    int64 // records returned
	buf  []byte
	rh   [recHeaderSize]byte
	err  error // sticky: io.EOF or *DamageError
}

func newNativeReader(r *bufio.Reader, name string) (*nativeReader, error) {
	nr := &nativeReader{name: name, r: r}
	var pre [16]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, &DamageError{Path: name, Record: 0, Offset: 0, Err: fmt.Errorf("%w: %v", errHeader, noEOF(err))}
	}
	_, body, err := parseHeaderPrefix(pre[:])
	if err != nil {
		return nil, fmt.Errorf("blklog: %s: %w", name, err)
	}
	hb := make([]byte, 16+body+4)
	copy(hb, pre[:])
	if _, err := io.ReadFull(r, hb[16:]); err != nil {
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
	nr.err = &DamageError{Path: nr.name, Record: nr.n, Offset: nr.off, Err: err}
	return nr.err
}

func (nr *nativeReader) Next() (Record, error) {
	if nr.err != nil {
		return Record{}, nr.err
	}
	b := nr.rh[:]
	if _, err := io.ReadFull(nr.r, b); err != nil {
		if err == io.EOF {
			return Record{}, nr.damage(ErrTruncated)
		}
		return Record{}, nr.damage(fmt.Errorf("reading record header: %w", err))
	}
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
	if dlen > MaxRecordData {
		return Record{}, nr.damage(fmt.Errorf("record claims %d bytes of data, limit %d", dlen, MaxRecordData))
	}
	if b[2] != 0 || b[3] != 0 {
		return Record{}, nr.damage(fmt.Errorf("reserved bytes %#02x %#02x are not zero", b[2], b[3]))
	}
	data, err := nr.readData(int(dlen))
	if err != nil {
		return Record{}, nr.damage(fmt.Errorf("reading %d bytes of record data: %w", dlen, noEOF(err)))
	}
	c := crc32.Update(0, castagnoli, b[:28])
	c = crc32.Update(c, castagnoli, data)
	if want := le.Uint32(b[28:]); c != want {
		return Record{}, nr.damage(fmt.Errorf("record CRC-32C %#08x, stored %#08x", c, want))
	}
	if typ == typeEnd {
		if r.Sector != uint64(nr.n) || dlen != 0 {
			return Record{}, nr.damage(fmt.Errorf("end record counts %d records, %d were read", r.Sector, nr.n))
		}
		if _, err := nr.r.ReadByte(); err != io.EOF {
			nr.off += recHeaderSize
			if err == nil {
				err = errors.New("data after the end record")
			}
			return Record{}, nr.damage(err)
		}
		nr.err = io.EOF
		return Record{}, io.EOF
	}
	r.Data = data
	if err := checkRecord(&r); err != nil {
		return Record{}, nr.damage(err)
	}
	nr.off += recHeaderSize + int64(dlen)
	nr.n++
	return r, nil
}

// readData reads n bytes into the reusable buffer. It grows the buffer as
// data actually arrives, so a corrupt length cannot make it allocate much
// more than the input holds.
func (nr *nativeReader) readData(n int) ([]byte, error) {
	if n <= cap(nr.buf) {
		nr.buf = nr.buf[:n]
		_, err := io.ReadFull(nr.r, nr.buf)
		return nr.buf, err
	}
	const step = 1 << 20
	nr.buf = nr.buf[:0]
	for len(nr.buf) < n {
		k := min(n-len(nr.buf), step)
		if cap(nr.buf)-len(nr.buf) < k {
			nb := make([]byte, len(nr.buf), min(n, max(2*cap(nr.buf), len(nr.buf)+k)))
			copy(nb, nr.buf)
			nr.buf = nb
		}
		m, err := io.ReadFull(nr.r, nr.buf[len(nr.buf):len(nr.buf)+k])
		nr.buf = nr.buf[:len(nr.buf)+m]
		if err != nil {
			return nil, err
		}
	}
	return nr.buf, nil
}

func (nr *nativeReader) Close() error {
	if nr.dec != nil {
		nr.dec.Close()
		nr.dec = nil
	}
	return nil
}
