package render

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/golden"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// loadRun reads a run of pkg/ops's testdata, the input of its own tests too.
func loadRun(t *testing.T, name string) []ops.Op {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run, err := ops.ReadJSONLNamed(f, name)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func mustDiff(t *testing.T, a, b []ops.Op, o ops.DiffOptions) *ops.DiffReport {
	t.Helper()
	r, err := ops.Diff(a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// w is a data write of n bytes at sector.
func w(seq int64, path string, sector uint64, n int64) ops.Op {
	return ops.Op{Seq: seq, Op: ops.Write, Path: path, Sector: sector, Bytes: n, Kind: ops.KindData}
}

func TestStatsGolden(t *testing.T) {
	s := ops.BuildStats(loadRun(t, "run-a.jsonl"))
	cases := []struct {
		name   string
		format string
		o      ops.StatsOptions
	}{
		{"stats-a.table", "table", ops.StatsOptions{}},
		{"stats-a.markdown", "markdown", ops.StatsOptions{}},
		{"stats-a.json", "json", ops.StatsOptions{}},
		{"stats-a.csv", "csv", ops.StatsOptions{}},
		{"stats-a-dir2.table", "table", ops.StatsOptions{By: "dir", Depth: 2}},
		{"stats-a-dir2.json", "json", ops.StatsOptions{By: "dir", Depth: 2}},
		{"stats-a-top3-writes.table", "table", ops.StatsOptions{Sort: "writes", Top: 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Stats(&b, s, c.format, c.o); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, c.name+".golden", b.Bytes())
		})
	}
}

func TestStatsJSONParses(t *testing.T) {
	var b bytes.Buffer
	if err := Stats(&b, ops.BuildStats(loadRun(t, "run-a.jsonl")), "json", ops.StatsOptions{Sort: "writes"}); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Rows []struct {
			Path string     `json:"path"`
			Data ops.Volume `json:"data"`
		} `json:"rows"`
		WriteAmplification float64 `json:"write_amplification"`
	}
	if err := json.Unmarshal(b.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Rows[0].Path != "/home/debian/d/a" || rep.Rows[0].Data.WriteBytes != 73728 || rep.WriteAmplification < 1 {
		t.Fatalf("%+v", rep)
	}
}

func TestDiffGolden(t *testing.T) {
	r := mustDiff(t, loadRun(t, "run-a.jsonl"), loadRun(t, "run-b.jsonl"), ops.DiffOptions{Threshold: 0.2})
	for _, f := range DiffFormats {
		t.Run(f, func(t *testing.T) {
			var b bytes.Buffer
			if err := Diff(&b, r, f); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "diff-a-b."+f+".golden", b.Bytes())
		})
	}
	var b bytes.Buffer
	if err := Diff(&b, mustDiff(t, loadRun(t, "run-a.jsonl"), loadRun(t, "run-a.jsonl"), ops.DiffOptions{Threshold: 0.2}), "table"); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "diff-a-a.table.golden", b.Bytes())
}

func TestDiffJSONIsValid(t *testing.T) {
	var b bytes.Buffer
	r := mustDiff(t, loadRun(t, "run-a.jsonl"), loadRun(t, "run-b.jsonl"), ops.DiffOptions{Threshold: 0.2})
	if err := Diff(&b, r, "json"); err != nil {
		t.Fatal(err)
	}
	var back ops.DiffReport
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Differences != 2 || len(back.OnlyA) != 1 || len(back.OnlyB) != 1 {
		t.Fatalf("%+v", back)
	}
}

func TestDiffHumanFileRowsBounded(t *testing.T) {
	var a, b []ops.Op
	for i := 0; i < MaxDiffFileRows+10; i++ {
		p := "/f" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		a = append(a, w(int64(i), p, uint64(i*100), 100<<10))
		n := int64(110 << 10) // +10%: changed, within the threshold
		if i == MaxDiffFileRows+5 {
			n = 200 << 10 // the one flagged file sorts last by name
		}
		b = append(b, w(int64(i), p, uint64(i*100), n))
	}
	r := mustDiff(t, a, b, ops.DiffOptions{Threshold: 0.2})
	var out bytes.Buffer
	if err := Diff(&out, r, "table"); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	flagged := "/f" + string(rune('a'+(MaxDiffFileRows+5)%26)) + string(rune('a'+(MaxDiffFileRows+5)/26))
	if !bytes.Contains(out.Bytes(), []byte(flagged)) || !bytes.Contains(out.Bytes(), []byte("... and 10 more file(s)")) {
		t.Fatalf("flagged file %s missing or tail not cut:\n%s", flagged, s)
	}
	if len(r.Files) != MaxDiffFileRows+10 {
		t.Fatalf("report keeps %d files", len(r.Files))
	}
}

// hostileRun is a run whose guest file names carry a terminal escape sequence, a newline that
// would forge a table line, and a 100 KB component.
func hostileRun() []ops.Op {
	esc := "/evil\x1b[31mred\x1b]0;title\x07"
	nl := "/two\nlines"
	long := "/" + strings.Repeat("x", 100_000)
	var run []ops.Op
	for i, p := range []string{esc, nl, long} {
		run = append(run, ops.Op{Seq: int64(1 + 2*i), Op: ops.Create, Path: p, Ino: uint32(12 + i)},
			ops.Op{Seq: int64(2 + 2*i), Op: ops.Write, Path: p, Ino: uint32(12 + i), Sector: uint64(100 + 8*i), Bytes: 4096, Kind: ops.KindData})
	}
	return run
}

// Human tables (stats and diff, boxed and markdown) quote non-printable names and cut long
// ones; csv keeps the names exact. The raw names used to reach the terminal and a 100 MB path
// made every row 100 MB wide.
func TestHumanFormatsQuoteAndTruncate(t *testing.T) {
	run := hostileRun()
	s := ops.BuildStats(run)
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
		if !bytes.Contains(out, []byte(ops.TruncMarker+"99745 bytes]")) {
			t.Errorf("%s: long name not cut with the marker", name)
		}
	}
	for _, f := range []string{"table", "markdown"} {
		var b bytes.Buffer
		if err := Stats(&b, s, f, ops.StatsOptions{}); err != nil {
			t.Fatal(err)
		}
		check("stats "+f, b.Bytes())
	}
	rep, err := ops.Diff(run, nil, ops.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"table", "markdown"} {
		var b bytes.Buffer
		if err := Diff(&b, rep, f); err != nil {
			t.Fatal(err)
		}
		check("diff "+f, b.Bytes())
	}

	// csv stays exact: the names come back byte for byte.
	var b bytes.Buffer
	if err := Stats(&b, s, "csv", ops.StatsOptions{}); err != nil {
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

// FuzzStatsDiff feeds arbitrary, unvalidated ops (as a resolver with a bug
// might produce them) to stats and diff: they must never panic.
func FuzzStatsDiff(f *testing.F) {
	f.Add([]byte("c/a\x00m/a/b\x00w/b\x00t/b\x00d/b\x00"), []byte("c/a\x00w/a\x00l/a/c\x00u/a\x00r/c"))
	f.Add([]byte("k/d\x00c/d/f\x00m/d/e\x00w/e/f\x00x/e\x00"), []byte("m//\x00m/x/x/y\x00"))
	f.Fuzz(func(t *testing.T, ra, rb []byte) {
		a, b := fuzzOps(ra), fuzzOps(rb)
		for _, run := range [][]ops.Op{a, b} {
			s := ops.BuildStats(run)
			for _, o := range []ops.StatsOptions{{}, {By: "dir", Depth: 1, Sort: "bytes", Top: 3}, {Glob: "*", Prefix: "/"}} {
				for _, f := range StatsFormats {
					if err := Stats(io.Discard, s, f, o); err != nil {
						t.Fatal(err)
					}
				}
			}
			_ = ops.Coalesce(run)
			for _, f := range ops.Formats {
				w, _ := ops.NewWriter(io.Discard, f)
				for i := range run {
					_ = w.Write(&run[i])
				}
				_ = w.Close()
			}
		}
		r, err := ops.Diff(a, b, ops.DiffOptions{Threshold: 0.2})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range DiffFormats {
			if err := Diff(io.Discard, r, f); err != nil {
				t.Fatal(err)
			}
		}
		if same, _ := ops.Diff(a, a, ops.DiffOptions{}); !same.Same() {
			t.Fatalf("a run differs from itself: %+v", same)
		}
	})
}

// fuzzOps decodes NUL-separated ops: a letter for the type, then a path,
// and for move/link a second path after the next '/'-led token.
func fuzzOps(b []byte) []ops.Op {
	types := map[byte]ops.Type{'c': ops.Create, 'k': ops.Mkdir, 's': ops.Symlink, 'n': ops.Mknod, 'd': ops.Delete, 'x': ops.Rmdir,
		'm': ops.Move, 'l': ops.Link, 'u': ops.Unlink, 't': ops.Truncate, 'r': ops.Read, 'w': ops.Write, 'a': ops.Anomaly}
	var out []ops.Op
	for i, f := range bytes.Split(b, []byte{0}) {
		if len(f) == 0 {
			continue
		}
		op := ops.Op{Seq: int64(i), Op: types[f[0]], Path: string(f[1:]), Bytes: 4096, Sector: uint64(i * 8), Kind: ops.KindData}
		if op.Op == "" {
			op.Op = ops.Type(f[:1])
		}
		if op.Op == ops.Move || op.Op == ops.Link {
			if j := bytes.LastIndexByte(f[1:], '/'); j > 0 {
				op.Path, op.To = string(f[1:j+1]), string(f[j+1:])
			}
			op.Overwrite = len(f)%2 == 0
		}
		if op.Op == ops.Truncate && len(f)%2 == 0 {
			n := uint64(len(f))
			op.Size = &n
		}
		if len(f)%3 == 0 {
			op.Kind = ops.Kinds[len(f)%len(ops.Kinds)]
		}
		out = append(out, op)
	}
	return out
}

// Stats refuses sums that overflowed (two writes of 2^62 bytes) in every format, and prints one
// write of 2^62.
func TestStatsRefusesOverflow(t *testing.T) {
	run := []ops.Op{
		{Seq: 1, Op: ops.Create, Path: "/big", Ino: 12},
		{Seq: 2, Op: ops.Write, Path: "/big", Ino: 12, Sector: 0, Bytes: 1 << 62, Kind: ops.KindData},
		{Seq: 3, Op: ops.Write, Path: "/big", Ino: 12, Sector: 8, Bytes: 1 << 62, Kind: ops.KindData},
	}
	s := ops.BuildStats(run)
	for _, f := range StatsFormats {
		var b bytes.Buffer
		if err := Stats(&b, s, f, ops.StatsOptions{}); !errors.Is(err, ops.ErrOverflow) {
			t.Errorf("stats %s: err %v, output:\n%s", f, err, b.String())
		}
	}
	var b bytes.Buffer
	if err := Stats(&b, ops.BuildStats(run[:2]), "table", ops.StatsOptions{}); err != nil || !strings.Contains(b.String(), "4.0 EiB") {
		t.Errorf("%v\n%s", err, b.String())
	}
}

// Kinds a saved run lacks are shown as not recorded and amplification as n/a, never as zeros.
func TestMissingKindsNotZero(t *testing.T) {
	run := loadRun(t, "run-a.jsonl")
	s := ops.BuildStats(run)
	s.Missing = ops.MetadataOnlyKinds
	var b bytes.Buffer
	if err := Stats(&b, s, "table", ops.StatsOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "│ journal                  │ not recorded") || !strings.Contains(out, "write amplification n/a") ||
		strings.Contains(out, "write amplification 1") {
		t.Errorf("stats:\n%s", out)
	}
	rep := mustDiff(t, run, run, ops.DiffOptions{Threshold: 0.2})
	rep.Missing = ops.MetadataOnlyKinds
	b.Reset()
	if err := Diff(&b, rep, "table"); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "not recorded") || !strings.Contains(out, "Both runs were saved without --metadata") {
		t.Errorf("diff:\n%s", out)
	}
	b.Reset()
	if err := Stats(&b, s, "json", ops.StatsOptions{}); err != nil || !strings.Contains(b.String(), `"missing_kinds": [`) {
		t.Errorf("json: %v\n%s", err, b.String())
	}
}
