package blklog

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// dm-log-writes format (Linux drivers/md/dm-log-writes.c, and QEMU's
// blklogwrites driver which writes the same layout). Little-endian.
//
//	sector 0: super {u64 magic, u64 version, u64 nr_entries, u32 sectorsize}
//	from sector 1, per entry: one sector holding {u64 sector, u64 nr_sectors,
//	u64 flags, u64 data_len} (a MARK's text follows the 32 bytes in the same
//	sector), then nr_sectors*sectorsize bytes of data unless the entry is a
//	flush, discard or mark.
//
// Sector numbers and counts are in units of sectorsize (QEMU's convention;
// Linux writes entry sectors in 512-byte units, which is the same thing for
// the usual 512-byte logical sector size).
const (
	DMLogMagic   = 0x6a736677736872
	DMLogVersion = 1

	DMLogFlush    = 1 << 0
	DMLogFUA      = 1 << 1
	DMLogDiscard  = 1 << 2
	DMLogMark     = 1 << 3
	DMLogMetadata = 1 << 4 // Linux only: a hint, ignored
)

const dmEntrySize = 32

// dmLogReader turns dm-log-writes entries into Records.
type dmLogReader struct {
	name       string
	r          io.Reader
	dec        *zstd.Decoder
	frames     *rawFrames  // the decoder of a log file's zstd stream, instead of dec
	pre        *prefetcher // nil for a source in memory
	hdr        Header
	ss         int64 // sector size
	nrEntries  uint64
	entry      uint64 // entries read
	off        int64  // byte offset of the next entry
	n          int64  // records returned
	sec        []byte // one log sector
	buf        []byte
	pending    []Record // records produced by one entry, not yet returned
	pendingBuf []byte
	// The rest of a discard entry, returned in pieces of at most
	// maxDiscardRecord bytes after pending: generated one at a time, so a
	// huge discard costs no memory.
	discSector, discLeft uint64
	err                  error
	compressed           bool
	// win, when set (by ReadAhead, for a log read through a window), is read in place: an
	// entry's header and payload are slices of its buffer, which go to the consumer with the
	// records that point into them, as a native log's do.
	win *window
	// beforeEntry, when set, is called before each entry is read: a follower waits there until
	// the entry is whole in the file.
	beforeEntry func()
}

func newDMLogReader(r io.Reader, name string) (*dmLogReader, error) {
	var sb [28]byte
	if _, err := io.ReadFull(r, sb[:]); err != nil {
		return nil, &DamageError{Path: name, Err: fmt.Errorf("dm-log-writes super block: %w", noEOF(err))}
	}
	le := binary.LittleEndian
	if m := le.Uint64(sb[0:]); m != DMLogMagic {
		return nil, fmt.Errorf("blklog: %s: dm-log-writes magic %#x, want %#x", name, m, DMLogMagic)
	}
	if v := le.Uint64(sb[8:]); v != DMLogVersion {
		return nil, fmt.Errorf("blklog: %s: dm-log-writes version %d, want %d", name, v, DMLogVersion)
	}
	ss := le.Uint32(sb[24:])
	if ss < 512 || ss > 65536 || ss&(ss-1) != 0 {
		return nil, fmt.Errorf("blklog: %s: dm-log-writes sector size %d is not a power of two in [512, 65536]", name, ss)
	}
	dr := &dmLogReader{
		name:      name,
		r:         r,
		ss:        int64(ss),
		nrEntries: le.Uint64(sb[16:]),
		off:       int64(ss),
		sec:       make([]byte, ss),
		hdr: Header{
			Format:     FormatDMLogWrites,
			Version:    DMLogVersion,
			SectorSize: SectorSize,
			Source:     fmt.Sprintf("dm-log-writes (sector size %d, %d entries in super block)", ss, le.Uint64(sb[16:])),
		},
	}
	// Skip the rest of sector 0.
	if _, err := io.ReadFull(r, dr.sec[:ss-28]); err != nil {
		return nil, &DamageError{Path: name, Err: fmt.Errorf("dm-log-writes super block: %w", noEOF(err))}
	}
	return dr, nil
}

func (dr *dmLogReader) Header() Header { return dr.hdr }

func (dr *dmLogReader) damage(err error) error {
	dr.err = &DamageError{Path: dr.name, Record: dr.n, Offset: dr.off, Compressed: dr.compressed, Err: fmt.Errorf("dm-log-writes entry %d: %w", dr.entry, err)}
	return dr.err
}

// maxDiscardRecord is the largest piece a discard entry is split into
// (Record.Length is 32 bits); sector-aligned.
const maxDiscardRecord = 1 << 31

// maxDiscardEntry bounds one discard entry: no block layer issues a larger
// single discard (a Linux bio holds under 4 GiB; virtio-blk counts 2^32
// sectors of 512 bytes), so anything beyond is damage, not a disk.
const maxDiscardEntry = 1 << 41

func (dr *dmLogReader) Next() (Record, error) {
	for len(dr.pending) == 0 && dr.discLeft == 0 {
		if dr.err != nil {
			return Record{}, dr.err
		}
		if err := dr.readEntry(); err != nil {
			return Record{}, err
		}
	}
	var r Record
	if len(dr.pending) > 0 {
		r = dr.pending[0]
		dr.pending = dr.pending[1:]
	} else {
		k := min(dr.discLeft, maxDiscardRecord)
		r = Record{Type: TypeDiscard, Sector: dr.discSector, Length: uint32(k)}
		dr.discSector += k / SectorSize
		dr.discLeft -= k
	}
	r.Index = dr.n
	dr.n++
	return r, nil
}

// readEntry decodes one entry into dr.pending, or sets dr.err.
func (dr *dmLogReader) readEntry() error {
	if dr.beforeEntry != nil {
		dr.beforeEntry()
	}
	sec, n, err := dr.header()
	if err == io.EOF {
		if dr.entry < dr.nrEntries {
			return dr.damage(fmt.Errorf("log ends after %d entries, super block counts %d: %w", dr.entry, dr.nrEntries, ErrTruncated))
		}
		dr.err = io.EOF
		return io.EOF
	}
	if err != nil {
		return dr.damage(fmt.Errorf("entry header: %w (%d of %d bytes)", noEOF(err), n, dr.ss))
	}
	le := binary.LittleEndian
	sector := le.Uint64(sec[0:])
	nr := le.Uint64(sec[8:])
	flags := le.Uint64(sec[16:])
	dlen := le.Uint64(sec[24:])
	if sector == 0 && nr == 0 && flags == 0 && dlen == 0 && dr.entry >= dr.nrEntries {
		// An all-zero entry past the counted ones: the unused tail of a
		// preallocated log file.
		dr.err = io.EOF
		return io.EOF
	}
	if flags&^uint64(DMLogFlush|DMLogFUA|DMLogDiscard|DMLogMark|DMLogMetadata) != 0 {
		return dr.damage(fmt.Errorf("unknown flags %#x", flags))
	}
	unit := uint64(dr.ss / SectorSize)
	// The whole byte range must be addressable: the end below MaxDeviceBytes.
	if nr > MaxDeviceBytes/uint64(dr.ss) || sector > MaxDeviceBytes/uint64(dr.ss)-nr {
		return dr.damage(fmt.Errorf("sector %d + %d sectors of %d bytes: byte range beyond %d", sector, nr, dr.ss, uint64(MaxDeviceBytes)))
	}
	bytes := nr * uint64(dr.ss)
	dr.pending = dr.pending[:0]
	next := dr.off + dr.ss
	switch {
	case flags&DMLogMark != 0:
		if dlen > uint64(dr.ss-dmEntrySize) {
			return dr.damage(fmt.Errorf("mark text of %d bytes does not fit in a %d-byte sector", dlen, dr.ss))
		}
		text := sec[dmEntrySize : dmEntrySize+dlen]
		if dr.win == nil {
			// dr.sec is read over by the next entry.
			dr.pendingBuf = append(dr.pendingBuf[:0], text...)
			text = dr.pendingBuf
		}
		dr.pending = append(dr.pending, Record{Type: TypeMark, Length: uint32(dlen), Data: text})
	case flags&DMLogDiscard != 0:
		if bytes > maxDiscardEntry {
			return dr.damage(fmt.Errorf("discard of %d bytes at sector %d exceeds the largest single discard, %d bytes", bytes, sector, uint64(maxDiscardEntry)))
		}
		if flags&DMLogFlush != 0 {
			dr.pending = append(dr.pending, Record{Type: TypeFlush})
		}
		// Returned by Next in pieces: a discard can exceed Record.Length's range.
		dr.discSector, dr.discLeft = sector*unit, bytes
	case nr == 0:
		if flags&DMLogFlush == 0 && flags&DMLogFUA == 0 {
			return dr.damage(fmt.Errorf("empty entry at sector %d with flags %#x", sector, flags))
		}
		dr.pending = append(dr.pending, Record{Type: TypeFlush})
	default:
		if bytes > MaxRecordData {
			return dr.damage(fmt.Errorf("write of %d bytes exceeds the limit of %d", bytes, MaxRecordData))
		}
		var omitted *Omissions
		var data []byte
		var err error
		if f := dr.filtering(int(bytes), sector*unit); f != nil {
			data, omitted, err = dr.win.nextFiltered(int(bytes), 0, sector*unit*SectorSize, f, nil)
		} else {
			data, err = dr.readData(int(bytes))
		}
		if err != nil {
			return dr.damage(fmt.Errorf("write data at sector %d, %d bytes: %w", sector, bytes, noEOF(err)))
		}
		next += int64(bytes)
		if flags&DMLogFlush != 0 {
			// A write with a preflush: the flush comes first.
			dr.pending = append(dr.pending, Record{Type: TypeFlush})
		}
		w := Record{Type: TypeWrite, Sector: sector * unit, Length: uint32(bytes), Data: data, Omitted: omitted}
		if flags&DMLogFUA != 0 {
			w.Flags |= FlagFUA
		}
		dr.pending = append(dr.pending, w)
	}
	dr.entry++
	dr.off = next
	return nil
}

// filtering returns the payload filter for a write of n bytes at sector, or nil.
func (dr *dmLogReader) filtering(n int, sector uint64) *PayloadFilter {
	if dr.win == nil {
		return nil
	}
	return dr.win.filtering(0, n, sector)
}

// header reads an entry's sector: in place from the window, else into dr.sec. n is how many
// of its bytes arrived.
func (dr *dmLogReader) header() (sec []byte, n int, err error) {
	if dr.win != nil {
		sec, err = dr.win.next(int(dr.ss))
		if err != nil {
			return nil, dr.win.w - dr.win.r, err
		}
		return sec, len(sec), nil
	}
	n, err = io.ReadFull(dr.r, dr.sec)
	return dr.sec, n, err
}

// readData reads n bytes: in place from the window (which grows only as data arrives), else
// into the reader's buffer, grown only as data arrives.
func (dr *dmLogReader) readData(n int) ([]byte, error) {
	if dr.win != nil {
		return dr.win.next(n)
	}
	if n <= cap(dr.buf) {
		dr.buf = dr.buf[:n]
		_, err := io.ReadFull(dr.r, dr.buf)
		return dr.buf, err
	}
	dr.buf = dr.buf[:0]
	for len(dr.buf) < n {
		k := min(n-len(dr.buf), 1<<20)
		if cap(dr.buf)-len(dr.buf) < k {
			nb := make([]byte, len(dr.buf), min(n, max(2*cap(dr.buf), len(dr.buf)+k)))
			copy(nb, dr.buf)
			dr.buf = nb
		}
		m, err := io.ReadFull(dr.r, dr.buf[len(dr.buf):len(dr.buf)+k])
		dr.buf = dr.buf[:len(dr.buf)+m]
		if err != nil {
			return nil, err
		}
	}
	return dr.buf, nil
}

func (dr *dmLogReader) Close() error {
	if dr.dec != nil {
		dr.dec.Close()
		dr.dec = nil
	}
	dr.frames.Close()
	dr.frames = nil
	dr.pre.close()
	return nil
}

// DMLogWriter writes a dm-log-writes log with 512-byte sectors, as QEMU's
// blklogwrites driver does. It exists for tests and fuzz seeds; the super
// block's entry count is written by Close, so w must be an io.WriteSeeker.
type DMLogWriter struct {
	w       io.WriteSeeker
	entries uint64
	sec     [SectorSize]byte
}

// NewDMLogWriter writes the super block and returns a writer of entries.
func NewDMLogWriter(w io.WriteSeeker) (*DMLogWriter, error) {
	dw := &DMLogWriter{w: w}
	if err := dw.writeSuper(); err != nil {
		return nil, err
	}
	return dw, nil
}

func (dw *DMLogWriter) writeSuper() error {
	var s [SectorSize]byte
	le := binary.LittleEndian
	le.PutUint64(s[0:], DMLogMagic)
	le.PutUint64(s[8:], DMLogVersion)
	le.PutUint64(s[16:], dw.entries)
	le.PutUint32(s[24:], SectorSize)
	if _, err := dw.w.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := dw.w.Write(s[:])
	return err
}

// Write appends one entry for r: reads are not representable and are
// skipped; write-zeroes become writes of zeroes, as QEMU logs them.
func (dw *DMLogWriter) Write(r *Record) error {
	if r.Omitted != nil {
		return fmt.Errorf("blklog: %w", errOmitted)
	}
	var flags uint64
	nr := uint64(r.Length / SectorSize)
	var data []byte
	switch r.Type {
	case TypeRead:
		return nil
	case TypeWrite:
		if r.Flags&FlagNoPayload != 0 {
			return fmt.Errorf("blklog: dm-log-writes cannot hold a write without payload")
		}
		data = r.Data
	case TypeWriteZeroes:
		data = make([]byte, r.Length)
	case TypeFlush:
		flags, nr = DMLogFlush, 0
	case TypeDiscard:
		flags = DMLogDiscard
	case TypeMark:
		if len(r.Data) > SectorSize-dmEntrySize {
			return fmt.Errorf("blklog: mark text of %d bytes does not fit in a sector", len(r.Data))
		}
		flags, nr = DMLogMark, 0
	default:
		return fmt.Errorf("blklog: unknown record type %d", r.Type)
	}
	if r.Flags&FlagFUA != 0 {
		flags |= DMLogFUA
	}
	clear(dw.sec[:])
	le := binary.LittleEndian
	le.PutUint64(dw.sec[0:], r.Sector)
	le.PutUint64(dw.sec[8:], nr)
	le.PutUint64(dw.sec[16:], flags)
	if r.Type == TypeMark {
		le.PutUint64(dw.sec[24:], uint64(len(r.Data)))
		copy(dw.sec[dmEntrySize:], r.Data)
	}
	if _, err := dw.w.Write(dw.sec[:]); err != nil {
		return err
	}
	if _, err := dw.w.Write(data); err != nil {
		return err
	}
	dw.entries++
	return nil
}

// Close rewrites the super block with the entry count.
func (dw *DMLogWriter) Close() error {
	end, err := dw.w.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if err := dw.writeSuper(); err != nil {
		return err
	}
	_, err = dw.w.Seek(end, io.SeekStart)
	return err
}
