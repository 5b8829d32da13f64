package report

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

func u64(v uint64) *uint64 { return &v }

var testRun = []ops.Op{
	{Seq: 1, T: 0.5, Op: ops.Mkdir, Path: "/var", Ino: 12},
	{Seq: 2, T: 0.6, Op: ops.Create, Path: "/var/</script><b>&x", Ino: 13},
	{Seq: 3, T: 0.7, Op: ops.Write, Path: "/var/</script><b>&x", Ino: 13, Sector: 800, Bytes: 8192, Kind: ops.KindData},
	{Seq: 4, T: 0.8, Op: ops.Write, Path: "/var", Ino: 12, Sector: 600, Bytes: 4096, Kind: ops.KindDir},
	{Seq: 5, T: 0.9, Op: ops.Write, Sector: 96, Bytes: 4096, Kind: ops.KindJournal},
	{Seq: 6, T: 1.0, Op: ops.Truncate, Path: "/var/</script><b>&x", Ino: 13, Size: u64(10)},
	{Seq: 7, T: 1.1, Op: ops.Read, Path: "/etc/passwd", Ino: 20, Sector: 900, Bytes: 1024, Kind: ops.KindData},
}

// The embedded JSON survives paths that look like markup, and is the run.
func TestWriteEmbedsRun(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, []Run{{Name: "a & b", Ops: testRun}}, Options{Title: "<t>"}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Count(page, "</script>") != 2 { // the data element and the script element
		t.Fatalf("page has %d </script>: a path ended an element early", strings.Count(page, "</script>"))
	}
	if !strings.Contains(page, "<title>&lt;t&gt;</title>") {
		t.Error("title not escaped")
	}
	for _, banned := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(page, banned) {
			t.Errorf("page refers to %q: it must work offline", banned)
		}
	}
	m := regexp.MustCompile(`(?s)<script id="data" type="application/json">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no data element")
	}
	var d struct {
		Runs []struct {
			Name     string
			Axis     string
			Metadata bool
			Paths    []string
			Op       []int
			X        []float64
			P        []int
			B        []int64
			NS       int
			IO       int
			Dirs     []dirJSON
		}
	}
	if err := json.Unmarshal([]byte(m[1]), &d); err != nil {
		t.Fatal(err)
	}
	r := d.Runs[0]
	if r.Name != "a & b" || r.Axis != "t" || !r.Metadata || r.NS != 3 || r.IO != 4 || len(r.Op) != len(testRun) {
		t.Fatalf("run = %+v", r)
	}
	for i, o := range testRun {
		if opCodes[r.Op[i]] != o.Op || r.Paths[r.P[i]] != o.Path || r.X[i] != o.T {
			t.Errorf("op %d: %s %q at %v, want %s %q at %v", i, opCodes[r.Op[i]], r.Paths[r.P[i]], r.X[i], o.Op, o.Path, o.T)
		}
	}
	if r.B[5] != 10 {
		t.Errorf("truncate size = %d, want 10", r.B[5])
	}
	dirs := map[string]dirJSON{}
	for _, x := range r.Dirs {
		dirs[x.Path] = x
	}
	// "/var/</script><b>&x" is the file "script><b>&x" in the directory "/var/<", which rolls
	// up into /var (whose own directory block is 4096 bytes) and /.
	if v := dirs["/var/<"]; v.WriteBytes != 8192 || v.AllWrite != 8192 || v.Files != 1 {
		t.Errorf("/var/< = %+v", v)
	}
	if v := dirs["/var"]; v.WriteBytes != 4096 || v.AllWrite != 8192+4096 {
		t.Errorf("/var = %+v", v)
	}
	if v := dirs["/"]; v.AllWrite != 8192+4096 || v.AllRead != 1024 || v.WriteBytes != 0 {
		t.Errorf("/ = %+v", v)
	}
}

// Without times (dm-log-writes), the axis is the record number.
func TestSeqAxis(t *testing.T) {
	run := []ops.Op{{Seq: 7, Op: ops.Create, Path: "/a"}, {Seq: 9, Op: ops.Write, Path: "/a", Sector: 8, Bytes: 512, Kind: ops.KindData}}
	j, err := encodeRun(&Run{Ops: run})
	if err != nil {
		t.Fatal(err)
	}
	if j.Axis != "seq" || j.X[0] != 7 || j.X[1] != 9 || j.Metadata {
		t.Errorf("axis %s x %v metadata %v", j.Axis, j.X, j.Metadata)
	}
	if err := Write(&bytes.Buffer{}, nil, Options{}); err == nil {
		t.Error("no runs: no error")
	}
	if _, err := encodeRun(&Run{Ops: []ops.Op{{Op: "frob"}}}); err == nil {
		t.Error("unknown op: no error")
	}
}

// TestKindTables: every kind of the vocabulary has a code, and the script's table is the same
// as kindCodes, in the same order (a kind missing made report refuse ext4 runs with extent I/O).
func TestKindTables(t *testing.T) {
	for _, k := range ops.Kinds {
		found := false
		for _, c := range kindCodes {
			found = found || c == k
		}
		if !found {
			t.Errorf("kind %q has no code", k)
		}
	}
	js, err := os.ReadFile("assets/report.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)const KINDS = \[(.*?)\];`).FindSubmatch(js)
	if m == nil {
		t.Fatal("no KINDS table in report.js")
	}
	var want []string
	for _, k := range kindCodes {
		want = append(want, `"`+string(k)+`"`)
	}
	got := strings.Join(strings.Fields(strings.ReplaceAll(string(m[1]), ",", " ")), ",")
	if got != strings.Join(want, ",") {
		t.Errorf("report.js KINDS %s, kindCodes %s", got, strings.Join(want, ","))
	}
}
