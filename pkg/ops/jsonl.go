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

// ReadJSONL reads ops written by the jsonl writer. Blank lines are skipped;
// any other line must be exactly one JSON object that is a valid op
// (Op.Validate), otherwise a *LineError names the line. Unknown fields are
// rejected too: a typo such as "byte" would otherwise silently read as 0.
func ReadJSONL(r io.Reader) ([]Op, error) { return ReadJSONLNamed(r, "") }

// ReadJSONLNamed is ReadJSONL with a file name for error messages.
func ReadJSONLNamed(r io.Reader, name string) ([]Op, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out []Op
	var line []byte
	for n := 1; ; n++ {
		var err error
		line, err = readLine(br, line[:0])
		if len(bytes.TrimSpace(line)) > 0 {
			op, perr := parseLine(line)
			if perr != nil {
				return out, &LineError{Name: name, Line: n, Err: perr}
			}
			// analyze writes ops in log order: a seq going back means two runs were
			// concatenated (or the file was edited), and the histories would be wrong.
			if k := len(out); k > 0 && op.Seq < out[k-1].Seq {
				return out, &LineError{Name: name, Line: n, Err: fmt.Errorf("seq %d after seq %d: ops must be in log order (two runs concatenated?)", op.Seq, out[k-1].Seq)}
			}
			out = append(out, op)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, &LineError{Name: name, Line: n, Err: err}
		}
	}
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

func parseLine(line []byte) (Op, error) {
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
