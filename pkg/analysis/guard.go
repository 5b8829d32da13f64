package analysis

import (
	"fmt"
	"io"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// SuperblockGuard checks that a log which carries no image identity (dm-log-writes, imports)
// was recorded against the image: the first write covering the primary superblock must
// describe the same file system (ext3fs.CompareIdentity). Native logs record the image's size
// and hash and are checked by blklog.CheckImage instead; for them the guard is nil, and a nil
// guard checks nothing.
type SuperblockGuard struct {
	image      []byte // the image's superblock, ext3fs.IdentitySpan bytes
	sectorSize uint64
	logName    string
	done       bool
}

// NewSuperblockGuard returns the guard for a log with header h against img (nil if the log
// carries the image's identity).
func NewSuperblockGuard(h blklog.Header, img io.ReaderAt, logName string) (*SuperblockGuard, error) {
	if h.Image.Known {
		return nil, nil
	}
	b := make([]byte, ext3fs.IdentitySpan)
	if _, err := img.ReadAt(b, ext3fs.SuperblockOffset); err != nil {
		return nil, fmt.Errorf("reading the image superblock: %w", err)
	}
	ss := uint64(h.SectorSize)
	if ss == 0 {
		ss = blklog.SectorSize
	}
	return &SuperblockGuard{image: b, sectorSize: ss, logName: logName}, nil
}

// Check looks at rec if no superblock write has been seen yet; the error wraps
// blklog.ErrImageMismatch.
func (g *SuperblockGuard) Check(rec *blklog.Record) error {
	if g == nil || g.done || rec.Type != blklog.TypeWrite || len(rec.Data) == 0 {
		return nil
	}
	start := rec.Sector * g.sectorSize
	if start > ext3fs.SuperblockOffset || start+uint64(len(rec.Data)) < ext3fs.SuperblockOffset+ext3fs.IdentitySpan {
		return nil
	}
	g.done = true
	w := rec.Data[ext3fs.SuperblockOffset-start:][:ext3fs.IdentitySpan]
	if d := ext3fs.CompareIdentity(w, g.image); d != nil {
		return fmt.Errorf("%s: %w: record %d writes a superblock whose %s (byte %d of the superblock) is %s, the image has %s",
			g.logName, blklog.ErrImageMismatch, rec.Index, d.Field, d.Off, d.Got, d.Want)
	}
	return nil
}
