package ops

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// sameDecoding fails unless line decodes the quick way to what encoding/json makes of it, or is
// left to encoding/json. It reports whether the quick way took it.
func sameDecoding(t *testing.T, line []byte) bool {
	t.Helper()
	fast, ok := decodeOp(line)
	if !ok {
		return false
	}
	ref, err := parseLineJSON(line)
	if err != nil && err.Error() != errorString(fast.Validate()) {
		t.Fatalf("%s: decoded quickly to %+v, but encoding/json fails: %v", line, fast, err)
	}
	if !reflect.DeepEqual(fast, ref) {
		t.Fatalf("%s:\n quick %+v\n  json %+v", line, fast, ref)
	}
	return true
}

func errorString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestDecodeOpWriterLines: every line the jsonl writer writes for the fixtures' saved runs and a
// synthetic untar decodes the quick way (unless a string needs an escape), to what encoding/json
// makes of it.
func TestDecodeOpWriterLines(t *testing.T) {
	var lines [][]byte
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, "jsonl")
	for _, o := range synthRun(2000) {
		if err := w.Write(&o); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	lines = append(lines, bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))...)
	files, _ := filepath.Glob("../../fixtures/real/*/expected*.jsonl")
	files = append(files, "testdata/run-a.jsonl", "testdata/run-b.jsonl")
	if len(files) < 10 {
		t.Fatalf("only %d saved runs found", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := bufio.NewScanner(bytes.NewReader(b))
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			// The fixtures' expectations hold other objects too (min_bytes): ops only.
			if _, err := parseLineJSON(s.Bytes()); err == nil {
				lines = append(lines, bytes.Clone(s.Bytes()))
			}
		}
	}
	quick, escaped := 0, 0
	for _, l := range lines {
		switch {
		case sameDecoding(t, l):
			quick++
		case bytes.IndexByte(l, '\\') >= 0:
			escaped++
		default:
			t.Errorf("a line of the writer's left to encoding/json: %s", l)
		}
	}
	t.Logf("%d lines: %d decoded quickly, %d with escapes left to encoding/json", len(lines), quick, escaped)
	if quick < len(lines)*9/10 {
		t.Fatalf("only %d of %d lines decoded quickly", quick, len(lines))
	}
}

// TestDecodeOpLeavesTheRest: the lines the quick way must not take, each for a reason where
// encoding/json's answer differs from reading the bytes as they are.
func TestDecodeOpLeavesTheRest(t *testing.T) {
	for _, l := range []string{
		`{"seq":1,"op":"create","path":"/a\"b"}`,            // an escape
		`{"seq":1,"op":"create","path":"/a` + "\x01" + `"}`, // a control character
		`{"seq":1,"op":"create","path":"/a` + "\xff" + `"}`, // invalid UTF-8: U+FFFD for encoding/json
		`{"seq":1,"op":"create","Path":"/a"}`,               // another case of a key
		`{"seq":1,"op":"create","path":"/a","path":"/b"}`,   // a key twice: the last wins
		`{"seq":1,"op":"create","path":null}`,               // null
		`{"seq":1.0,"op":"create"}`,                         // a fraction in an integer
		`{"seq":1e2,"op":"create"}`,                         // an exponent in an integer
		`{"seq":01,"op":"create"}`,                          // a leading zero: not JSON
		`{"seq":1,"op":"write","sector":-8,"bytes":1}`,      // a negative unsigned
		`{"seq":1,"op":"create","ino":4294967296}`,          // out of range
		`{"seq":1,"op":"create","nope":1}`,                  // an unknown field
		` {"seq":1,"op":"create"}`,                          // leading space
		`{"seq":1, "op":"create"}`,                          // inner space
		`{"seq":1,"op":"create"} x`,                         // trailing data
		`{"seq":1,"op":"create"`,                            // cut
		`{"seq":1,"t":1.,"op":"create"}`,                    // a fraction without digits
		`{"seq":1,"t":1e,"op":"create"}`,                    // an exponent without digits
		`{"seq":1,"t":1e999,"op":"create"}`,                 // out of range
		`{"seq":1,"op":"move","overwrite":"true"}`,          // a string for a bool
		`{}`,
	} {
		if op, ok := decodeOp([]byte(l)); ok {
			t.Errorf("%s: decoded quickly to %+v", l, op)
		}
	}
	for _, l := range []string{
		`{"seq":-0,"t":-0,"op":"create","path":"/é"}`,
		`{"seq":1,"t":2.5e-3,"op":"write","path":"/a","sector":0,"bytes":0,"kind":"data"}` + "\r",
		`{"seq":1,"op":"truncate","path":"/a","size":18446744073709551615}`,
		`{"seq":1,"op":"move","path":"/a","to":"/b","overwrite":false}`,
		`{"op":"unknown-op","seq":7,"kind":"unknown-kind"}`,
	} {
		if !sameDecoding(t, []byte(l)) {
			t.Errorf("%s: left to encoding/json", l)
		}
	}
}

// FuzzDecodeOp: whatever the line, the quick way either leaves it or agrees with encoding/json.
func FuzzDecodeOp(f *testing.F) {
	f.Add([]byte(`{"seq":1,"t":0.5,"op":"write","path":"/a","ino":3,"sector":8,"bytes":4096,"kind":"data"}`))
	f.Add([]byte(`{"seq":2,"op":"move","path":"/a","to":"/b","overwrite":true}`))
	f.Add([]byte(`{"seq":3,"op":"truncate","path":"/b","size":0,"partition":2}`))
	f.Add([]byte(`{"seq":4,"op":"anomaly","reason":"x"}` + " \t"))
	f.Fuzz(func(t *testing.T, line []byte) {
		sameDecoding(t, line)
	})
}
