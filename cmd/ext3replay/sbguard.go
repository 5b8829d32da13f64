package main

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// sbField is a superblock field that no mount, write or online resize changes: if the
// superblock a log writes disagrees with the image on one of them, the log was recorded
// against another file system.
type sbField struct {
	name     string
	off, len int // within the 1024-byte superblock
}

var sbStatic = []sbField{
	{"s_first_data_block", 0x14, 4},
	{"s_log_block_size", 0x18, 4},
	{"s_blocks_per_group", 0x20, 4},
	{"s_inodes_per_group", 0x28, 4},
	{"s_inode_size", 0x58, 2},
	{"s_uuid", 0x68, 16},
	{"s_journal_inum", 0xE0, 4},
}

// sbSpan is the part of the superblock sbStatic covers (magic at 0x38 included).
const sbSpan = 0xE4

// sbGuard checks logs that carry no image identity (dm-log-writes, imports): the first write
// covering the primary superblock is compared with the image's. Native logs record the
// image's size and hash and are checked by blklog.CheckImage instead.
type sbGuard struct {
	image      []byte // the image's superblock, sbSpan bytes
	sectorSize uint64
	logPath    string
	done       bool
}

func newSBGuard(h blklog.Header, img io.ReaderAt, logPath string) (*sbGuard, error) {
	if h.Image.Known {
		return nil, nil
	}
	b := make([]byte, sbSpan)
	if _, err := img.ReadAt(b, ext3fs.SuperblockOffset); err != nil {
		return nil, fmt.Errorf("reading the image superblock: %w", err)
	}
	ss := uint64(h.SectorSize)
	if ss == 0 {
		ss = 512
	}
	return &sbGuard{image: b, sectorSize: ss, logPath: logPath}, nil
}

// check looks at rec if no superblock write has been seen yet.
func (g *sbGuard) check(rec *blklog.Record) error {
	if g == nil || g.done || rec.Type != blklog.TypeWrite || len(rec.Data) == 0 {
		return nil
	}
	start := rec.Sector * g.sectorSize
	if start > ext3fs.SuperblockOffset || start+uint64(len(rec.Data)) < ext3fs.SuperblockOffset+sbSpan {
		return nil
	}
	g.done = true
	w := rec.Data[ext3fs.SuperblockOffset-start:][:sbSpan]
	// A write without the magic is not a superblock (a wiped or reformatted disk): nothing to compare.
	if binary.LittleEndian.Uint16(w[0x38:]) != ext3fs.SuperMagic || binary.LittleEndian.Uint16(g.image[0x38:]) != ext3fs.SuperMagic {
		return nil
	}
	for _, f := range sbStatic {
		a, b := w[f.off:f.off+f.len], g.image[f.off:f.off+f.len]
		if string(a) != string(b) {
			return fmt.Errorf("%s: %w: record %d writes a superblock whose %s (byte %d of the superblock) is %s, the image has %s",
				g.logPath, blklog.ErrImageMismatch, rec.Index, f.name, f.off, sbValue(a), sbValue(b))
		}
	}
	return nil
}

func sbValue(b []byte) string {
	switch len(b) {
	case 2:
		return fmt.Sprint(binary.LittleEndian.Uint16(b))
	case 4:
		return fmt.Sprint(binary.LittleEndian.Uint32(b))
	}
	return fmt.Sprintf("%x", b)
}
