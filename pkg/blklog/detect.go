package blklog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"unicode/utf8"
)

// Detect reports which kind of log the start of a (decompressed) stream holds: the native
// format and dm-log-writes by their magic, a QEMU trace by a blk_co_preadv/pwritev event in
// printable text; "" if none. It is the one place formats are told apart (NewReader, the
// importer and the check that refuses a log given as a disk image all use it).
func Detect(head []byte) Format {
	switch {
	case len(head) >= len(Magic) && string(head[:len(Magic)]) == Magic:
		return FormatNative
	case len(head) >= 8 && binary.LittleEndian.Uint64(head) == DMLogMagic:
		return FormatDMLogWrites
	case utf8.Valid(head[:max(0, len(head)-utf8.UTFMax)]) && bytes.Contains(head, []byte("blk_co_p")):
		return FormatQEMUTrace
	}
	return ""
}

// formatAliases are the other names users give formats (QEMU calls the dm-log-writes
// format's driver blklogwrites).
var formatAliases = map[string]Format{
	"native": FormatNative, string(FormatNative): FormatNative,
	"dm-log-writes": FormatDMLogWrites, "blklogwrites": FormatDMLogWrites, "dmlog": FormatDMLogWrites,
	"qemu-trace": FormatQEMUTrace, "trace": FormatQEMUTrace,
}

// ParseFormat maps a format name or alias to the Format.
func ParseFormat(name string) (Format, error) {
	if f, ok := formatAliases[name]; ok {
		return f, nil
	}
	return "", fmt.Errorf("blklog: unknown log format %q (want %s, %s or %s)", name, FormatNative, FormatDMLogWrites, FormatQEMUTrace)
}

// detectPeek is how much of a file DetectFile looks at.
const detectPeek = 64 << 10

// DetectFile reports the format of the log in the file at path, looking inside a zstd
// compression; "" if it is no log this package reads.
func DetectFile(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("blklog: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, detectPeek)
	p, _ := br.Peek(detectPeek)
	if !bytes.HasPrefix(p, zstdMagic) {
		return Detect(p), nil
	}
	d, err := newZstdReader(bytes.NewReader(p))
	if err != nil {
		return "", nil
	}
	defer d.Close()
	head := make([]byte, detectPeek)
	n, _ := io.ReadFull(d, head)
	return Detect(head[:n]), nil
}
