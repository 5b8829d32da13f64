package ops

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// LineError reports a line of a jsonl stream that is not a valid op.
type LineError struct {
	Name string // file name, if known
	Line int    // 1-based
	Err  error
}

func (e *LineError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// RunHeader is the first line analyze writes to a jsonl run: what the run holds and where it
// came from, so that stats and diff can refuse or flag runs that do not hold the same things
// (a run saved without --metadata has no inode-table, bitmap, superblock, descriptor or
// journal I/O, and must not read as one where those were zero). A line whose object has the
// field "ext3replay" is a header, never an op. Fields are only ever added.
type RunHeader struct {
	Tag      string `json:"ext3replay"` // always RunHeaderTag
	Version  string `json:"version"`    // of the ext3replay that wrote the run
	Image    Source `json:"image"`
	Log      Source `json:"log"`
	Metadata bool   `json:"metadata"` // analyze --metadata: the kinds of MetadataOnlyKinds are in the run
}

// RunHeaderTag is the value of a header line's "ext3replay" field.
const RunHeaderTag = "run"

// Source names an input of a run: its file name (no directory; "-" for stdin) and size.
type Source struct {
	Name string `json:"name"`
	Size int64  `json:"size,omitempty"`
}

// MetadataOnlyKinds are the kinds analyze reports only with --metadata (directory, indirect
// and extent blocks are always reported, attributed to their file).
var MetadataOnlyKinds = []Kind{KindInode, KindBitmap, KindSuper, KindGDT, KindJournal}

// WriteRunHeader writes h as one jsonl line.
func WriteRunHeader(w io.Writer, h RunHeader) error {
	h.Tag = RunHeaderTag
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Run is a jsonl run as read back.
type Run struct {
	Header *RunHeader // nil: saved before runs had headers
	Ops    []Op
}

// Missing returns the kinds the run cannot hold: MetadataOnlyKinds for a run saved without
// --metadata, or, for a run without header, when none of those kinds appears in it (such a
// run was almost certainly saved without --metadata: any change to a file system writes an
// inode table block). Nil when nothing is missing.
func (r *Run) Missing() []Kind {
	if r.Header != nil {
		if r.Header.Metadata {
			return nil
		}
		return MetadataOnlyKinds
	}
	for i := range r.Ops {
		for _, k := range MetadataOnlyKinds {
			if r.Ops[i].Kind == k {
				return nil
			}
		}
	}
	return MetadataOnlyKinds
}

// ReadJSONL reads ops written by the jsonl writer. Blank lines are skipped;
// any other line must be exactly one JSON object that is a valid op
// (Op.Validate), otherwise a *LineError names the line. Unknown fields are
// rejected too: a typo such as "byte" would otherwise silently read as 0.
// A run header on the first line is skipped (ReadRun returns it).
func ReadJSONL(r io.Reader) ([]Op, error) { return ReadJSONLNamed(r, "") }

// ReadJSONLNamed is ReadJSONL with a file name for error messages.
func ReadJSONLNamed(r io.Reader, name string) ([]Op, error) {
	run, err := ReadRun(r, name)
	return run.Ops, err
}

// ReadRun reads a jsonl run and its header, if it has one (only as the first line; another
// header later means two runs were concatenated).
func ReadRun(r io.Reader, name string) (*Run, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	run := &Run{}
	var line []byte
	first := true
	for n := 1; ; n++ {
		var err error
		line, err = readLine(br, line[:0])
		if len(bytes.TrimSpace(line)) > 0 {
			if h, ok, herr := parseHeader(line); ok || herr != nil {
				switch {
				case herr != nil:
					return run, &LineError{Name: name, Line: n, Err: herr}
				case !first:
					return run, &LineError{Name: name, Line: n, Err: errors.New("a run header after the first line (two runs concatenated?)")}
				}
				run.Header = h
				first = false
				continue
			}
			first = false
			op, perr := parseLine(line)
			if perr != nil {
				return run, &LineError{Name: name, Line: n, Err: perr}
			}
			// analyze writes ops in log order: a seq going back means two runs were
			// concatenated (or the file was edited), and the histories would be wrong.
			if k := len(run.Ops); k > 0 && op.Seq < run.Ops[k-1].Seq {
				return run, &LineError{Name: name, Line: n, Err: fmt.Errorf("seq %d after seq %d: ops must be in log order (two runs concatenated?)", op.Seq, run.Ops[k-1].Seq)}
			}
			run.Ops = append(run.Ops, op)
		}
		if err == io.EOF {
			return run, nil
		}
		if err != nil {
			return run, &LineError{Name: name, Line: n, Err: err}
		}
	}
}

// parseHeader reports whether line is a run header and decodes it. Unknown fields are
// allowed: a newer version may add some.
func parseHeader(line []byte) (*RunHeader, bool, error) {
	if !bytes.Contains(line, []byte(`"ext3replay"`)) { // ops never have the field: no second decode
		return nil, false, nil
	}
	var probe struct {
		Tag *string `json:"ext3replay"`
	}
	if json.Unmarshal(line, &probe) != nil || probe.Tag == nil {
		return nil, false, nil
	}
	if *probe.Tag != RunHeaderTag {
		return nil, true, fmt.Errorf("a header of kind %q, not a run (%q)", *probe.Tag, RunHeaderTag)
	}
	var h RunHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, true, fmt.Errorf("run header: %w", err)
	}
	return &h, true, nil
}

// readLine reads one line of any length, without its newline.
func readLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		chunk, isPrefix, err := br.ReadLine()
		buf = append(buf, chunk...)
		if err != nil || !isPrefix {
			return buf, err
		}
	}
}

// parseLine decodes and validates one op line.
func parseLine(line []byte) (Op, error) {
	if op, ok := decodeOp(line); ok {
		return op, op.Validate()
	}
	return parseLineJSON(line)
}

// parseLineJSON is parseLine through encoding/json alone: for every line decodeOp leaves to it,
// and as the reference decodeOp is tested against.
func parseLineJSON(line []byte) (Op, error) {
	var op Op
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&op); err != nil {
		return op, fmt.Errorf("not a JSON op: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return op, errors.New("extra data after the JSON object")
	}
	if err := op.Validate(); err != nil {
		return op, err
	}
	return op, nil
}
