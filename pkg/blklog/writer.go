package blklog

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// FrameBytes is how much uncompressed data the Writer puts in one zstd frame
// at most. A log cut off mid-frame loses at most this much (plus whatever
// came after the last Flush).
const FrameBytes = 4 << 20

// Writer writes a native log. It streams: memory does not grow with the log.
// Call Flush to make everything written so far decodable from the file (the
// current zstd frame is ended), Sync to also fsync it, and Close at the end:
// only a closed log carries the end record that marks it complete.
type Writer struct {
	f       *os.File // nil unless created by Create
	bw      *bufio.Writer
	enc     *zstd.Encoder
	inFrame int64 // uncompressed bytes in the open frame
	n       int64 // records written
	hdr     [recHeaderSize]byte
	err     error // sticky
	closed  bool
}

// NewWriter starts a native log on w with header h (h.Format, h.Version and
// h.SectorSize are ignored: the writer sets them).
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	hb, err := marshalHeader(&h)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	enc, err := zstd.NewWriter(bw,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderCRC(true),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(FrameBytes))
	if err != nil {
		return nil, fmt.Errorf("blklog: zstd encoder: %w", err)
	}
	lw := &Writer{bw: bw, enc: enc}
	if err := lw.write(hb); err != nil {
		return nil, err
	}
	return lw, nil
}

// Create creates (truncates) the file path and starts a native log in it.
// Sync then also fsyncs the file, and Close closes it. If path, once opened,
// is the same file (device and inode: through a symlink or a hard link) as
// one of protect, Create refuses before truncating anything.
func Create(path string, h Header, protect ...os.FileInfo) (*Writer, error) {
	f, err := OpenTruncateExcept(path, protect...)
	if err != nil {
		return nil, err
	}
	w, err := NewFileWriter(f, h)
	if err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// NewFileWriter starts a native log in the empty file f, which the Writer
// then owns: Sync also fsyncs it, Close and CloseDamaged close it.
func NewFileWriter(f *os.File, h Header) (*Writer, error) {
	w, err := NewWriter(f, h)
	if err != nil {
		return nil, err
	}
	w.f = f
	return w, nil
}

func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if _, err := w.enc.Write(p); err != nil {
		w.err = fmt.Errorf("blklog: writing log: %w", err)
		return w.err
	}
	w.inFrame += int64(len(p))
	return nil
}

// Records returns the number of records written so far.
func (w *Writer) Records() int64 { return w.n }

// Write appends r (r.Index is ignored; records are numbered in order).
// The payload is copied before Write returns.
func (w *Writer) Write(r *Record) error {
	if w.closed {
		return fmt.Errorf("blklog: write to closed log")
	}
	if err := checkRecord(r); err != nil {
		return fmt.Errorf("blklog: record %d: %w", w.n, err)
	}
	if r.Omitted != nil {
		return fmt.Errorf("blklog: record %d: %w", w.n, errOmitted)
	}
	if len(r.Data) > MaxRecordData {
		return fmt.Errorf("blklog: record %d: %d bytes of data, limit %d", w.n, len(r.Data), MaxRecordData)
	}
	putRecordHeader(w.hdr[:], uint8(r.Type), r)
	if err := w.write(w.hdr[:]); err != nil {
		return err
	}
	if err := w.write(r.Data); err != nil {
		return err
	}
	w.n++
	if w.inFrame >= FrameBytes {
		return w.endFrame()
	}
	return nil
}

// endFrame closes the current zstd frame and pushes it to the underlying
// writer, so a reader can decode everything up to here even if the file is
// cut right after it. The next write opens a new frame.
func (w *Writer) endFrame() error {
	if w.err != nil {
		return w.err
	}
	if w.inFrame > 0 {
		if err := w.enc.Close(); err != nil {
			w.err = fmt.Errorf("blklog: ending zstd frame: %w", err)
			return w.err
		}
		w.enc.Reset(w.bw)
		w.inFrame = 0
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("blklog: writing log: %w", err)
		return w.err
	}
	return nil
}

// Flush ends the current frame and writes it out.
func (w *Writer) Flush() error {
	if w.closed {
		return fmt.Errorf("blklog: flush of closed log")
	}
	return w.endFrame()
}

// Sync is Flush followed by fsync when the Writer owns a file.
func (w *Writer) Sync() error {
	if err := w.Flush(); err != nil {
		return err
	}
	if w.f != nil {
		if err := w.f.Sync(); err != nil {
			w.err = fmt.Errorf("blklog: fsync log: %w", err)
			return w.err
		}
	}
	return nil
}

// Close writes the end record, ends the last frame and, for Create'd logs,
// fsyncs and closes the file.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	var end [recHeaderSize]byte
	putRecordHeader(end[:], typeEnd, &Record{Sector: uint64(w.n)})
	err := w.write(end[:])
	if err == nil {
		err = w.endFrame()
	}
	w.closed = true
	if w.f != nil {
		if err == nil {
			if e := w.f.Sync(); e != nil {
				err = fmt.Errorf("blklog: fsync log: %w", e)
			}
		}
		if e := w.f.Close(); e != nil && err == nil {
			err = fmt.Errorf("blklog: %w", e)
		}
	}
	return err
}

// CloseDamaged ends the log without its end record: every record written is
// readable, and every reader then reports the log as damaged (truncated), so
// nothing takes it for complete. For a conversion whose input failed part way.
// Like Close it fsyncs and closes a file the Writer owns.
func (w *Writer) CloseDamaged() error {
	if w.closed {
		return nil
	}
	err := w.endFrame()
	w.closed = true
	if w.f != nil {
		if err == nil {
			if e := w.f.Sync(); e != nil {
				err = fmt.Errorf("blklog: fsync log: %w", e)
			}
		}
		if e := w.f.Close(); e != nil && err == nil {
			err = fmt.Errorf("blklog: %w", e)
		}
	}
	return err
}

// OpenTruncateExcept opens path for writing, creating it if needed, and
// truncates it, unless the opened file is the same file as one of protect
// (os.SameFile: device and inode, so a symlink or hard link to a protected
// file is caught). The check is made on the opened descriptor before the
// truncation, so nothing can swap the path in between.
func OpenTruncateExcept(path string, protect ...os.FileInfo) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blklog: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blklog: %w", err)
	}
	for _, p := range protect {
		if p != nil && os.SameFile(st, p) {
			f.Close()
			return nil, &ProtectedFileError{Path: path, Other: p.Name()}
		}
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("blklog: %w", err)
	}
	return f, nil
}

// ProtectedFileError is an output path that is (a link to) a file that must
// not be written, such as the recorder's base image.
type ProtectedFileError struct {
	Path  string // the output path given
	Other string // base name of the protected file
}

func (e *ProtectedFileError) Error() string {
	return fmt.Sprintf("blklog: %s is the same file as %s (a link to it?); refusing to overwrite it", e.Path, e.Other)
}
