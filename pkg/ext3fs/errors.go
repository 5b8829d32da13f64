// Package ext3fs decodes the on-disk structures of ext2, ext3 and (for reading) ext4 file systems:
// superblock, group descriptors, inodes, block maps, extent trees, directory blocks and htree
// index blocks. Every decoder is stateless: it takes bytes and returns typed values or a
// *FormatError naming the structure and byte offset at fault. FS ties them together over an
// io.ReaderAt.
//
// All file-system structures are little-endian (the jbd2 journal, decoded in journal.go, is
// big-endian).
package ext3fs

import (
	"errors"
	"fmt"
)

// FormatError reports malformed or unsupported on-disk data. Offset is a byte offset: within the
// buffer handed to a Parse function, or from the start of the device for FS methods.
type FormatError struct {
	Struct string // "superblock", "inode 12", "directory entry", ...
	Offset int64
	Msg    string
	Err    error // underlying error (I/O), if any
}

func (e *FormatError) Error() string {
	msg := e.Msg
	if e.Err != nil {
		if msg != "" {
			msg += ": " + e.Err.Error()
		} else {
			msg = e.Err.Error()
		}
	}
	return fmt.Sprintf("ext3fs: %s at byte %d: %s", e.Struct, e.Offset, msg)
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(st string, off int64, format string, args ...any) error {
	return &FormatError{Struct: st, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// ErrUnsupported is wrapped by errors for file systems using features this package cannot read.
var ErrUnsupported = errors.New("unsupported feature")
