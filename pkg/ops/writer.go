package ops

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Writer streams ops in one of the output formats. Write does not retain
// op. Close flushes buffered output; it does not close the underlying
// io.Writer.
type Writer interface {
	Write(op *Op) error
	Close() error
}

// Formats lists the names NewWriter accepts.
var Formats = []string{"text", "jsonl", "csv"}

// NewWriter returns a writer for format "text", "jsonl" or "csv".
func NewWriter(w io.Writer, format string) (Writer, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "text", "":
		return &textWriter{w: bw}, nil
	case "jsonl":
		return &jsonlWriter{w: bw}, nil
	case "csv":
		return &csvWriter{bw: bw, w: csv.NewWriter(bw)}, nil
	}
	return nil, fmt.Errorf("unknown output format %q (want %s)", format, strings.Join(Formats, ", "))
}

// CSVHeader is the header row of the csv format: the jsonl fields in order.
var CSVHeader = []string{"seq", "t", "op", "path", "to", "ino", "sector", "bytes", "kind", "overwrite", "size", "reason"}

// Column widths of the text format. Fixed rather than measured so that
// output can stream; wider values push the line right but stay separated.
const (
	textOpWidth     = 7  // "symlink", "anomaly"; "truncate" overflows by one
	textSectorWidth = 10 // 2^32 sectors (2 TiB) fit
	textBytesWidth  = 8  // up to 95 MiB per coalesced line keeps alignment
)

type textWriter struct {
	w    *bufio.Writer
	buf  []byte
	time TextOptions // the optional time column
}

func (t *textWriter) Write(op *Op) error {
	t.buf = AppendText(appendTime(t.buf[:0], op, t.time), op) // kept: the next line reuses it
	_, err := t.w.Write(t.buf)
	return err
}

func (t *textWriter) Close() error { return t.w.Flush() }

// AppendText appends the text-format line of op (with its newline) to b.
//
//	read        6926160    16384 /bin/dd
//	write       2640360     4096 /home/debian (dir)
//	create  /home/debian/test1
//	move    /a -> /b
func AppendText(b []byte, op *Op) []byte { return append(appendText(b, op, true), '\n') }

// String is the text-format line of op without column padding or newline,
// as stats and diff quote ops: "write 2640360 4096 /home/debian (dir)".
func (o *Op) String() string { return string(appendText(nil, o, false)) }

func appendText(b []byte, op *Op, pad bool) []byte {
	opW, secW, bytesW := textOpWidth, textSectorWidth, textBytesWidth
	if !pad {
		opW, secW, bytesW = 0, 0, 0
	}
	b = appendPadded(b, string(op.Op), opW)
	b = append(b, ' ')
	switch op.Op {
	case Read, Write:
		var num [20]byte // the numbers formatted without an allocation each
		b = appendRight(b, strconv.AppendUint(num[:0], op.Sector, 10), secW)
		b = append(b, ' ')
		b = appendRight(b, strconv.AppendInt(num[:0], op.Bytes, 10), bytesW)
		b = append(b, ' ')
		b = appendTarget(b, op)
	case Move, Link:
		b = append(b, QuotePath(op.Path)...)
		b = append(b, " -> "...)
		b = append(b, QuotePath(op.To)...)
		if op.Overwrite {
			b = append(b, " (overwrite)"...)
		}
	case Truncate:
		b = append(b, QuotePath(op.Path)...)
		if op.Size != nil {
			b = append(b, " size "...)
			b = strconv.AppendUint(b, *op.Size, 10)
		}
	case Anomaly:
		b = appendTarget(b, op)
		if op.Bytes > 0 || op.Sector > 0 {
			b = append(b, " sector "...)
			b = strconv.AppendUint(b, op.Sector, 10)
		}
		b = append(b, ": "...)
		b = append(b, SafeText(op.Reason)...) // may quote guest bytes (names, strings from the image)
	default:
		b = append(b, QuotePath(op.Path)...)
	}
	return b
}

// appendTarget writes the path (or "-" when there is none) and, for
// anything but file data, the kind in parentheses.
func appendTarget(b []byte, op *Op) []byte {
	if op.Path != "" {
		b = append(b, QuotePath(op.Path)...)
	} else {
		b = append(b, '-')
	}
	if op.Kind != "" && op.Kind != KindData {
		b = append(b, " ("...)
		b = append(b, op.Kind...)
		if op.Path == "" && op.Partition != 0 {
			// Without a path, only this says which partition of the disk it was.
			b = append(b, ", partition "...)
			b = strconv.AppendInt(b, int64(op.Partition), 10)
		}
		b = append(b, ')')
	}
	return b
}

func appendPadded(b []byte, s string, width int) []byte {
	b = append(b, s...)
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return b
}

func appendRight[S string | []byte](b []byte, s S, width int) []byte {
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

// SafeText returns s unchanged when it is printable UTF-8 (spaces allowed), and Go-quoted
// otherwise: guest-controlled text (file names, a log's source string) must not reach a terminal
// with escape sequences or forge output lines with a newline. Every human format passes
// guest-controlled text through SafeText or QuotePath; jsonl and csv keep it exact, escaped by
// their own encodings.
func SafeText(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || (r != ' ' && !unicode.IsPrint(r)) {
			return strconv.Quote(s)
		}
	}
	return s
}

// MaxCellBytes bounds one cell of a human table: a 100 MB path must not make every row 100 MB
// wide. Longer cells are cut with TruncMarker and the count of bytes left out.
const MaxCellBytes = 256

// TruncMarker ends a cut table cell, followed by the number of bytes cut.
const TruncMarker = "…[+"

// TruncateCell cuts s to at most MaxCellBytes bytes (on a UTF-8 boundary) followed by
// "…[+N bytes]" when it is longer.
func TruncateCell(s string) string {
	if len(s) <= MaxCellBytes {
		return s
	}
	cut := MaxCellBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + TruncMarker + strconv.Itoa(len(s)-cut) + " bytes]"
}

// QuotePath returns p unchanged when it is printable UTF-8 without spaces,
// quotes or backslashes, and as a Go-quoted string otherwise, so that one
// text line is always one op and the path can be recovered exactly
// (ext2 names are arbitrary bytes).
func QuotePath(p string) string {
	for _, r := range p {
		if r == utf8.RuneError || r == ' ' || r == '"' || r == '\\' || !unicode.IsPrint(r) {
			return strconv.Quote(p)
		}
	}
	return p
}

type jsonlWriter struct {
	w   *bufio.Writer
	buf []byte // kept: the next line reuses it
}

// Write encodes op as encoding/json would (appendJSON): fields in op.go order, optional ones
// omitted when zero, '<', '>' and '&' kept as they are (paths are data, not HTML). Non-UTF-8
// bytes in names become U+FFFD (JSON strings cannot hold them); the text format keeps them,
// quoted.
func (j *jsonlWriter) Write(op *Op) error {
	b, err := appendJSON(j.buf[:0], op)
	if err != nil {
		return err
	}
	j.buf = append(b, '\n')
	_, err = j.w.Write(j.buf)
	return err
}

func (j *jsonlWriter) Close() error { return j.w.Flush() }

type csvWriter struct {
	bw          *bufio.Writer
	w           *csv.Writer
	header      bool
	rec         []string
	partitioned bool // a last column, partition
}

// SetPartitioned adds the partition column (after every other) to a csv writer that has
// written nothing yet: runs of a partitioned disk have it, runs of a bare file system do not,
// so that their csv stays as it was. Other writers ignore it.
func SetPartitioned(w Writer) {
	if c, ok := w.(*csvWriter); ok && !c.header {
		c.partitioned = true
	}
}

func (c *csvWriter) headerRow() []string {
	if c.partitioned {
		return append(append([]string(nil), CSVHeader...), "partition")
	}
	return CSVHeader
}

func (c *csvWriter) Write(op *Op) error {
	if !c.header {
		c.header = true
		if err := c.w.Write(c.headerRow()); err != nil {
			return err
		}
	}
	c.rec = append(c.rec[:0], csvRecord(op)...)
	if c.partitioned {
		p := ""
		if op.Partition != 0 {
			p = strconv.Itoa(op.Partition)
		}
		c.rec = append(c.rec, p)
	}
	return c.w.Write(c.rec)
}

func (c *csvWriter) Close() error {
	if !c.header {
		// An empty run still gets its header, so that the file parses.
		c.header = true
		if err := c.w.Write(c.headerRow()); err != nil {
			return err
		}
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// csvRecord returns the csv columns of op (see CSVHeader); fields jsonl
// would omit are empty cells.
func csvRecord(op *Op) []string {
	r := make([]string, len(CSVHeader))
	r[0] = strconv.FormatInt(op.Seq, 10)
	if op.T != 0 {
		r[1] = strconv.FormatFloat(op.T, 'f', -1, 64)
	}
	r[2] = string(op.Op)
	r[3] = op.Path
	r[4] = op.To
	if op.Ino != 0 {
		r[5] = strconv.FormatUint(uint64(op.Ino), 10)
	}
	if op.Sector != 0 || op.IsIO() {
		r[6] = strconv.FormatUint(op.Sector, 10)
	}
	if op.Bytes != 0 {
		r[7] = strconv.FormatInt(op.Bytes, 10)
	}
	r[8] = string(op.Kind)
	if op.Overwrite {
		r[9] = "true"
	}
	if op.Size != nil {
		r[10] = strconv.FormatUint(*op.Size, 10)
	}
	r[11] = op.Reason
	return r
}
