package scenario

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// Disk is a disk image held in memory: an io.ReaderAt and an io.WriterAt whose writes must
// lie inside it (a log replayed onto the wrong image fails instead of growing it).
type Disk []byte

// ReadAt reads the disk; past its end it reads io.EOF.
func (d Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(d)) {
		return 0, io.EOF
	}
	n := copy(p, d[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes the disk.
func (d Disk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d)) {
		return 0, fmt.Errorf("write of %d bytes at %d beyond the %d-byte disk", len(p), off, len(d))
	}
	return copy(d[off:], p), nil
}

// StartImage reads a scenario's starting image (dir/image.raw.zst) into memory.
func StartImage(dir string) (Disk, error) {
	img, err := diskimage.Open(filepath.Join(dir, "image.raw.zst"))
	if err != nil {
		return nil, err
	}
	defer img.Close()
	d := make(Disk, img.Size())
	if _, err := img.ReadAt(d, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return d, nil
}

// Apply applies every write of the log at logPath to d, in order, and returns how many records
// the log has.
func Apply(d Disk, logPath string) (int, error) {
	r, err := blklog.Open(logPath)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", logPath, err)
		}
		if err := blklog.Apply(&rec, d); err != nil {
			return n, fmt.Errorf("%s: %w", logPath, err)
		}
		n++
	}
}

// FinalDisk is a scenario's final disk: its starting image with every write of dir/logName
// applied.
func FinalDisk(dir, logName string) (Disk, error) {
	d, err := StartImage(dir)
	if err != nil {
		return nil, err
	}
	if _, err := Apply(d, filepath.Join(dir, logName)); err != nil {
		return nil, err
	}
	return d, nil
}
