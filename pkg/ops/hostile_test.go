package ops

import (
	"bytes"
	"encoding/csv"
	"errors"
	"math"
	"strings"
	"testing"
)

// hostileRun is a run whose guest file names carry a terminal escape sequence, a newline that
// would forge a table line, and a 100 KB component.
func hostileRun() []Op {
	esc := "/evil\x1b[31mred\x1b]0;title\x07"
	nl := "/two\nlines"
	long := "/" + strings.Repeat("x", 100_000)
	var run []Op
	for i, p := range []string{esc, nl, long} {
		run = append(run, Op{Seq: int64(1 + 2*i), Op: Create, Path: p, Ino: uint32(12 + i)},
			Op{Seq: int64(2 + 2*i), Op: Write, Path: p, Ino: uint32(12 + i), Sector: uint64(100 + 8*i), Bytes: 4096, Kind: KindData})
	}
	return run
}

// Human tables (stats and diff, boxed and markdown) quote non-printable names and cut long
// ones; csv keeps the names exact. The raw names used to reach the terminal and a 100 MB path
// made every row 100 MB wide.
func TestHumanFormatsQuoteAndTruncate(t *testing.T) {
	run := hostileRun()
	s := BuildStats(run)
	check := func(name string, out []byte) {
		t.Helper()
		if bytes.ContainsAny(out, "\x1b\x07") {
			t.Errorf("%s: raw control bytes reach the output", name)
		}
		if !bytes.Contains(out, []byte(`"/evil\x1b[31mred\x1b]0;title\a"`)) || !bytes.Contains(out, []byte(`"/two\nlines"`)) {
			t.Errorf("%s: names not quoted:\n%s", name, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if len(line) > 8<<10 { // a few cut cells of box drawing; 100 KB uncut
				t.Errorf("%s: a %d-byte line", name, len(line))
			}
			if strings.HasPrefix(strings.TrimLeft(line, "│| "), "lines") {
				t.Errorf("%s: a newline in a name forged line %q", name, line)
			}
		}
		if !bytes.Contains(out, []byte(TruncMarker+"99745 bytes]")) {
			t.Errorf("%s: long name not cut with the marker", name)
		}
	}
	for _, f := range []string{"table", "markdown"} {
		var b bytes.Buffer
		if err := s.WriteStats(&b, f, StatsOptions{}); err != nil {
			t.Fatal(err)
		}
		check("stats "+f, b.Bytes())
	}
	rep, err := Diff(run, nil, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"table", "markdown"} {
		var b bytes.Buffer
		if err := rep.WriteDiff(&b, f); err != nil {
			t.Fatal(err)
		}
		check("diff "+f, b.Bytes())
	}

	// csv stays exact: the names come back byte for byte.
	var b bytes.Buffer
	if err := s.WriteStats(&b, "csv", StatsOptions{}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, r := range recs {
		for _, op := range run {
			if r[0] == op.Path {
				found++
			}
		}
	}
	if found != 6 { // each name matches its create and its write op in run
		t.Errorf("csv: %d exact names, want 3 rows matching 2 ops each", found)
	}
}

func TestTruncateCell(t *testing.T) {
	if s := strings.Repeat("é", MaxCellBytes/2); TruncateCell(s) != s {
		t.Error("a cell of exactly MaxCellBytes was cut")
	}
	s := "a" + strings.Repeat("é", MaxCellBytes) // 2-byte runes: the cut must not split one
	got := TruncateCell(s)
	want := "a" + strings.Repeat("é", (MaxCellBytes-1)/2) + TruncMarker + "258 bytes]"
	if got != want {
		t.Errorf("got %q", got)
	}
}

// Two writes of 2^62 bytes each: the sum used to wrap to a negative number ("WRITTEN -2 B",
// exit 0). Sums now clamp and mark the Volume, and stats and diff refuse to print them.
func TestSumsOverflow(t *testing.T) {
	run := []Op{
		{Seq: 1, Op: Create, Path: "/big", Ino: 12},
		{Seq: 2, Op: Write, Path: "/big", Ino: 12, Sector: 0, Bytes: 1 << 62, Kind: KindData},
		{Seq: 3, Op: Write, Path: "/big", Ino: 12, Sector: 8, Bytes: 1 << 62, Kind: KindData},
	}
	s := BuildStats(run)
	if !s.Totals.All.Overflow || s.Totals.All.WriteBytes != math.MaxInt64 {
		t.Fatalf("totals %+v, want clamped and marked", s.Totals.All)
	}
	for _, f := range ReportFormats {
		var b bytes.Buffer
		if err := s.WriteStats(&b, f, StatsOptions{}); !errors.Is(err, ErrOverflow) {
			t.Errorf("stats %s: err %v, output:\n%s", f, err, b.String())
		}
	}
	if _, err := Diff(run, run[:2], DiffOptions{}); !errors.Is(err, ErrOverflow) {
		t.Errorf("diff: %v", err)
	}
	// One write of 2^62 is fine.
	var b bytes.Buffer
	if err := BuildStats(run[:2]).WriteStats(&b, "table", StatsOptions{}); err != nil || !strings.Contains(b.String(), "4.0 EiB") {
		t.Errorf("%v\n%s", err, b.String())
	}
	var v Volume
	v.Merge(Volume{ReadBytes: math.MaxInt64})
	v.Merge(Volume{ReadBytes: 1})
	if !v.Overflow || v.ReadBytes != math.MaxInt64 || v.Bytes() != math.MaxInt64 {
		t.Errorf("merge: %+v", v)
	}
}

// The text op format quotes names (it always did) and now also an anomaly's reason, which can
// carry bytes from the image.
func TestTextFormatQuotesReason(t *testing.T) {
	op := Op{Seq: 1, Op: Anomaly, Path: "/d\x1b[2J", Reason: "entry name \"x\x1b[2J\" is not valid"}
	line := string(AppendText(nil, &op))
	if strings.ContainsRune(line, 0x1b) || strings.Count(line, "\n") != 1 {
		t.Fatalf("%q", line)
	}
}
