package ops

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// NewBodyWriter writes ops as a The Sleuth Kit body file (TSK 3+):
//
//	MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime
//
// one line per op, so that mactime (or plaso, Timesketch) builds a timeline.
// The name is the path followed by what happened and the log record number,
// "/a (write 4096 bytes at sector 800) #41". The time of the op goes in the
// field whose letter fits it: a read is an access (a), a write or truncate a
// modification (m), a create, mkdir, symlink or mknod a birth (b), and a
// move, link, unlink, delete, rmdir or anomaly a change (c); the other three
// are 0, the format's "unknown". Times are Unix seconds with microseconds: the log's start plus
// the op's t when the clock has a start, t alone (seconds from the start of
// the log, shown by mactime as 1970-01-01) when not, and the record number
// when the log has no time at all. MD5, UID and GID are 0 (a block log does
// not have them); the mode is the type only ("d/d---------" for directories,
// "r/r---------" for files, "l/l---------" for symlinks, "-/----------" when
// unknown, as for a move). '|', '%' and line ends in names are %-escaped, as
// mactime decodes them.
func NewBodyWriter(w io.Writer, c *Clock) Writer {
	if c == nil {
		c = &Clock{}
	}
	return &bodyWriter{w: bufio.NewWriterSize(w, 64<<10), c: c}
}

type bodyWriter struct {
	w   *bufio.Writer
	c   *Clock
	buf []byte
}

var bodyEscaper = strings.NewReplacer("%", "%25", "|", "%7C", "\n", "%0A", "\r", "%0D")

func (bw *bodyWriter) Write(op *Op) error {
	b := append(bw.buf[:0], "0|"...)
	b = append(b, bodyEscaper.Replace(BodyName(op))...)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(op.Ino), 10)
	b = append(b, '|')
	b = append(b, bodyMode(op)...)
	b = append(b, "|0|0|"...)
	var size int64
	switch {
	case op.IsIO():
		size = op.Bytes
	case op.Op == Truncate && op.Size != nil:
		size = int64(*op.Size)
	}
	b = strconv.AppendInt(b, size, 10)
	t := bw.time(op)
	// atime, mtime, ctime, crtime
	slot := 2 // change
	switch op.Op {
	case Read:
		slot = 0
	case Write, Truncate:
		slot = 1
	case Create, Mkdir, Symlink, Mknod:
		slot = 3
	}
	for i := 0; i < 4; i++ {
		b = append(b, '|')
		if i == slot {
			b = append(b, t...)
		} else {
			b = append(b, '0')
		}
	}
	b = append(b, '\n')
	bw.buf = b
	_, err := bw.w.Write(b)
	return err
}

func (bw *bodyWriter) time(op *Op) string {
	switch {
	case bw.c.NoTime:
		return strconv.FormatInt(op.Seq, 10)
	case bw.c.StartUnixNS != 0:
		ns := bw.c.StartUnixNS + int64(op.T*1e9+0.5)
		return strconv.FormatInt(ns/1e9, 10) + "." + pad6(ns%1e9/1e3)
	}
	return strconv.FormatFloat(op.T, 'f', 6, 64)
}

func pad6(us int64) string {
	s := strconv.FormatInt(us, 10)
	return strings.Repeat("0", 6-len(s)) + s
}

// BodyName is the name field of op in a body file (before %-escaping): its path,
// what happened to it and the log record, "/a (move -> /b) #58".
func BodyName(op *Op) string {
	p := op.Path
	if p == "" {
		p = "-"
	}
	var s strings.Builder
	s.WriteString(p)
	s.WriteString(" (")
	s.WriteString(string(op.Op))
	switch op.Op {
	case Read, Write:
		s.WriteString(" " + strconv.FormatInt(op.Bytes, 10) + " bytes at sector " + strconv.FormatUint(op.Sector, 10))
		if op.Kind != KindData && op.Kind != "" {
			s.WriteString(", " + string(op.Kind))
		}
	case Move, Link:
		s.WriteString(" -> " + op.To)
		if op.Overwrite {
			s.WriteString(", overwrite")
		}
	case Truncate:
		if op.Size != nil {
			s.WriteString(" to " + strconv.FormatUint(*op.Size, 10))
		}
	case Anomaly:
		s.WriteString(": " + op.Reason)
	}
	// The record number keeps two equal ops in one second apart: mactime merges
	// lines with the same second, inode and name.
	s.WriteString(") #")
	s.WriteString(strconv.FormatInt(op.Seq, 10))
	return s.String()
}

func bodyMode(op *Op) string {
	switch {
	case op.Op == Mkdir || op.Op == Rmdir || op.Kind == KindDir:
		return "d/d---------"
	case op.Op == Symlink:
		return "l/l---------"
	case op.Path == "" || op.Op == Mknod || op.Op == Anomaly || op.Op == Move:
		return "-/----------"
	}
	return "r/r---------"
}

func (bw *bodyWriter) Close() error { return bw.w.Flush() }
