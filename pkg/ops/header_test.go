package ops

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRunHeaderRoundTrip(t *testing.T) {
	var b bytes.Buffer
	h := RunHeader{Version: "v1.2.3", Image: Source{Name: "disk.img", Size: 8 << 20}, Log: Source{Name: "-"}, Metadata: false}
	if err := WriteRunHeader(&b, h); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), `{"ext3replay":"run","version":"v1.2.3"`) {
		t.Fatalf("header line %q", b.String())
	}
	b.WriteString(`{"seq":3,"op":"create","path":"/a","ino":12}` + "\n")
	run, err := ReadRun(&b, "r.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	h.Tag = RunHeaderTag
	if run.Header == nil || *run.Header != h || len(run.Ops) != 1 || run.Ops[0].Path != "/a" {
		t.Fatalf("read back %+v %+v", run.Header, run.Ops)
	}
	if m := run.Missing(); len(m) != len(MetadataOnlyKinds) {
		t.Errorf("saved without --metadata: missing %v", m)
	}
	run.Header.Metadata = true
	if m := run.Missing(); m != nil {
		t.Errorf("saved with --metadata: missing %v", m)
	}
}

// A run saved before headers existed still reads; what it lacks is inferred from its kinds.
func TestRunWithoutHeader(t *testing.T) {
	plain := `{"seq":3,"op":"write","path":"/a","ino":12,"sector":8,"bytes":4096,"kind":"data"}` + "\n"
	run, err := ReadRun(strings.NewReader(plain), "old.jsonl")
	if err != nil || run.Header != nil || len(run.Ops) != 1 {
		t.Fatalf("%v %+v", err, run)
	}
	if m := run.Missing(); len(m) != len(MetadataOnlyKinds) {
		t.Errorf("no metadata-only kind in it: missing %v, want %v", m, MetadataOnlyKinds)
	}
	withMeta := plain + `{"seq":4,"op":"write","sector":16,"bytes":4096,"kind":"journal"}` + "\n"
	if run, err = ReadRun(strings.NewReader(withMeta), "old.jsonl"); err != nil || run.Missing() != nil {
		t.Errorf("journal writes in it: %v, missing %v", err, run.Missing())
	}
}

func TestRunHeaderOnlyFirst(t *testing.T) {
	h := `{"ext3replay":"run","version":"x","image":{"name":"i"},"log":{"name":"l"},"metadata":true}` + "\n"
	op := `{"seq":3,"op":"create","path":"/a","ino":12}` + "\n"
	_, err := ReadRun(strings.NewReader(h+op+h+op), "cat.jsonl")
	var le *LineError
	if !errors.As(err, &le) || le.Line != 3 || !strings.Contains(err.Error(), "concatenated") {
		t.Errorf("second header: %v", err)
	}
	if _, err := ReadRun(strings.NewReader(`{"ext3replay":"stats"}`+"\n"), "x"); err == nil {
		t.Error("a header of another kind was accepted")
	}
	// ReadJSONL skips the header, so older callers keep working.
	ops, err := ReadJSONL(strings.NewReader(h + op))
	if err != nil || len(ops) != 1 {
		t.Errorf("ReadJSONL: %v %d ops", err, len(ops))
	}
}
