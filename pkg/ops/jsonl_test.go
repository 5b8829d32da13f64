package ops

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReadJSONLBlankLines(t *testing.T) {
	in := "\n" + `{"seq":1,"op":"create","path":"/a"}` + "\n  \n\r\n" + `{"seq":2,"op":"delete","path":"/a"}` + "\r\n\n"
	run, err := ReadJSONL(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(run) != 2 || run[0].Op != Create || run[1].Op != Delete || run[1].Seq != 2 {
		t.Fatalf("got %+v", run)
	}
	// No trailing newline, and a line longer than any bufio buffer.
	long := "/" + strings.Repeat("d/", 70000) + "f"
	run, err = ReadJSONL(strings.NewReader(`{"seq":1,"op":"create","path":"` + long + `"}`))
	if err != nil || len(run) != 1 || run[0].Path != long {
		t.Fatalf("long line: %v", err)
	}
}

func TestReadJSONLBadLines(t *testing.T) {
	good := `{"seq":1,"op":"create","path":"/a"}` + "\n\n"
	cases := []struct{ line, want string }{
		{`{"seq":1,"op":"create","path":"/a"`, "not a JSON op"},
		{`not json`, "not a JSON op"},
		{`{"seq":1,"op":"frob","path":"/a"}`, `unknown op "frob"`},
		{`{"seq":1,"op":"write","path":"/a","bytes":4096,"kind":"blob"}`, `unknown kind "blob"`},
		{`{"seq":1,"op":"create"}`, "create without \"path\""},
		{`{"seq":1,"op":"move","path":"/a"}`, "needs both"},
		{`{"seq":1,"op":"write","path":"/a","kind":"data"}`, "positive \"bytes\""},
		{`{"seq":1,"op":"truncate","path":"/a"}`, `without "size"`},
		{`{"seq":1,"op":"create","path":"/a","byte":3}`, `unknown field "byte"`},
		{`{"seq":1,"op":"create","path":"/a"} {"seq":2}`, "extra data"},
		{`{"seq":"1","op":"create","path":"/a"}`, "not a JSON op"},
		{`{"seq":-1,"op":"create","path":"/a"}`, "negative seq"},
		{`{"seq":1,"op":"create","path":"/a","overwrite":true}`, "only move"},
		{`null`, `missing "op"`},
		// analyze writes ops in log order; a seq going back is two runs concatenated.
		{`{"seq":0,"op":"create","path":"/a"}`, "seq 0 after seq 1"},
	}
	for _, c := range cases {
		_, err := ReadJSONLNamed(strings.NewReader(good+c.line+"\n"+good), "run.jsonl")
		var le *LineError
		if !errors.As(err, &le) {
			t.Errorf("%s: want a *LineError, got %v", c.line, err)
			continue
		}
		if le.Line != 3 || !strings.HasPrefix(err.Error(), "run.jsonl:3: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %q, want run.jsonl:3: ...%s", c.line, err, c.want)
		}
	}
}

// FuzzReadJSONL checks that any input either fails with a line error or
// gives ops that survive a write/read round trip unchanged.
func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"seq":1,"t":0.5,"op":"write","path":"/a","ino":3,"sector":8,"bytes":4096,"kind":"data"}` + "\n"))
	f.Add([]byte(`{"seq":2,"op":"move","path":"/a","to":"/b","overwrite":true}` + "\n\n" + `{"seq":3,"op":"truncate","path":"/b","size":0}`))
	f.Add([]byte(`{"seq":4,"op":"anomaly","reason":"x"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		run, err := ReadJSONL(bytes.NewReader(in))
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		var b bytes.Buffer
		w, _ := NewWriter(&b, "jsonl")
		for i := range run {
			if err := w.Write(&run[i]); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		back, err := ReadJSONL(&b)
		if err != nil {
			t.Fatalf("re-reading our own output: %v", err)
		}
		if len(back) != len(run) {
			t.Fatalf("%d ops became %d", len(run), len(back))
		}
		for i := range run {
			a, b := run[i], back[i]
			// Invalid UTF-8 becomes U+FFFD in JSON: compare what survives.
			if a.Op != b.Op || a.Seq != b.Seq || a.Bytes != b.Bytes || a.Sector != b.Sector || a.Kind != b.Kind ||
				a.Overwrite != b.Overwrite || (a.Size == nil) != (b.Size == nil) || a.T != b.T || a.Ino != b.Ino {
				t.Fatalf("op %d changed: %+v -> %+v", i, a, b)
			}
		}
	})
}
