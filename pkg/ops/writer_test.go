package ops

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/golden"
)

func writeAll(t *testing.T, format string, run []Op) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, format)
	if err != nil {
		t.Fatal(err)
	}
	for i := range run {
		if err := w.Write(&run[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWriterGolden(t *testing.T) {
	run := loadRun(t, "run-a.jsonl")
	for _, f := range Formats {
		t.Run(f, func(t *testing.T) { golden.Check(t, "run-a."+f+".golden", writeAll(t, f, run)) })
	}
}

func TestTextLines(t *testing.T) {
	size := uint64(4096)
	cases := []struct {
		op   Op
		want string
	}{
		{Op{Op: Read, Path: "/bin/dd", Sector: 6926160, Bytes: 16384, Kind: KindData}, "read       6926160    16384 /bin/dd"},
		{Op{Op: Write, Path: "/home/debian", Sector: 2640360, Bytes: 4096, Kind: KindDir}, "write      2640360     4096 /home/debian (dir)"},
		{Op{Op: Write, Sector: 8200, Bytes: 4096, Kind: KindJournal}, "write         8200     4096 - (journal)"},
		{Op{Op: Create, Path: "/home/debian/test1"}, "create  /home/debian/test1"},
		{Op{Op: Move, Path: "/a", To: "/b", Overwrite: true}, "move    /a -> /b (overwrite)"},
		{Op{Op: Link, Path: "/a", To: "/b"}, "link    /a -> /b"},
		{Op{Op: Truncate, Path: "/a", Size: &size}, "truncate /a size 4096"},
		{Op{Op: Create, Path: "/my docs/a\nb"}, `create  "/my docs/a\nb"`},
		{Op{Op: Create, Path: "/bad\xffname"}, `create  "/bad\xffname"`},
		{Op{Op: Anomaly, Path: "/d", Sector: 96, Bytes: 1024, Kind: KindDir, Reason: "rec_len 3 < 8"}, "anomaly /d (dir) sector 96: rec_len 3 < 8"},
	}
	for _, c := range cases {
		got := string(AppendText(nil, &c.op))
		if got != c.want+"\n" {
			t.Errorf("text of %+v:\n got %q\nwant %q", c.op, got, c.want+"\n")
		}
		// A quoted path must come back exactly (names are arbitrary bytes).
		if strings.Contains(got, `"`) {
			q := got[strings.Index(got, `"`) : strings.LastIndex(got, `"`)+1]
			if p, err := strconv.Unquote(q); err != nil || p != c.op.Path {
				t.Errorf("quoted path %s does not unquote to %q (%v)", q, c.op.Path, err)
			}
		}
	}
	// The I/O columns line up whatever the numbers' widths.
	a := AppendText(nil, &cases[0].op)
	b := AppendText(nil, &cases[2].op)
	if strings.Index(string(a), "16384")+5 != strings.Index(string(b), "4096")+4 {
		t.Errorf("bytes column not right-aligned:\n%s%s", a, b)
	}
}

func TestJSONLRoundTrip(t *testing.T) {
	run := loadRun(t, "run-a.jsonl")
	out := writeAll(t, "jsonl", run)
	back, err := ReadJSONL(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, run) {
		t.Fatalf("jsonl round trip changed the ops")
	}
	// Field order is op.go's, optional fields are omitted when empty.
	first := strings.SplitN(string(out), "\n", 2)[0]
	if want := `{"seq":3,"t":0.104,"op":"read","path":"/bin/dd","ino":12,"sector":6926160,"bytes":16384,"kind":"data"}`; first != want {
		t.Errorf("first line\n got %s\nwant %s", first, want)
	}
	// Paths are not HTML-escaped.
	o := Op{Op: Create, Path: "/a<b>&c"}
	if got := string(writeAll(t, "jsonl", []Op{o})); got != `{"seq":0,"op":"create","path":"/a<b>&c"}`+"\n" {
		t.Errorf("got %s", got)
	}
	// size 0 is a real value and must be kept.
	zero := uint64(0)
	o = Op{Seq: 5, Op: Truncate, Path: "/f", Size: &zero}
	if got := string(writeAll(t, "jsonl", []Op{o})); got != `{"seq":5,"op":"truncate","path":"/f","size":0}`+"\n" {
		t.Errorf("got %s", got)
	}
}

func TestCSV(t *testing.T) {
	run := loadRun(t, "run-a.jsonl")
	recs, err := csv.NewReader(bytes.NewReader(writeAll(t, "csv", run))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recs[0], CSVHeader) {
		t.Fatalf("header %v", recs[0])
	}
	if len(recs) != len(run)+1 {
		t.Fatalf("%d records for %d ops", len(recs), len(run))
	}
	// The csv columns carry the same values as the jsonl fields.
	for i, rec := range recs[1:] {
		j, _ := json.Marshal(&run[i])
		var m map[string]any
		_ = json.Unmarshal(j, &m)
		for c, name := range CSVHeader {
			v, ok := m[name]
			if !ok {
				if rec[c] != "" && !(name == "sector" && run[i].IsIO()) {
					t.Errorf("op %d: %s is %q in csv but absent in jsonl", i, name, rec[c])
				}
				continue
			}
			s, isStr := v.(string)
			if !isStr {
				s = string(must(json.Marshal(v)))
			}
			if s != rec[c] {
				t.Errorf("op %d: %s is %q in csv, %s in jsonl", i, name, rec[c], s)
			}
		}
	}
	// An empty run still has its header.
	if got := string(writeAll(t, "csv", nil)); got != strings.Join(CSVHeader, ",")+"\n" {
		t.Errorf("empty csv %q", got)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestNewWriterUnknownFormat(t *testing.T) {
	if _, err := NewWriter(&bytes.Buffer{}, "xml"); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Fatalf("want an error naming the format, got %v", err)
	}
}

// Reads and writes keep "sector" and "bytes" even when zero (sector 0 is the
// boot block); other ops leave them out. Paths are not HTML-escaped.
func TestJSONLZeroSector(t *testing.T) {
	run := []Op{
		{Seq: 0, Op: Read, Sector: 0, Bytes: 512, Kind: KindSuper},
		{Seq: 1, Op: Create, Path: "/a&b<c>", Ino: 12},
	}
	got := string(writeAll(t, "jsonl", run))
	want := `{"seq":0,"op":"read","sector":0,"bytes":512,"kind":"super"}` + "\n" +
		`{"seq":1,"op":"create","path":"/a&b<c>","ino":12}` + "\n"
	if got != want {
		t.Fatalf("jsonl:\n got %q\nwant %q", got, want)
	}
	back, err := ReadJSONL(strings.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, run) {
		t.Fatalf("round trip: got %+v, want %+v", back, run)
	}
}
