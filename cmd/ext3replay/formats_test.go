package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/opsparquet"
)

// runFmtCLI runs one command line on a new command tree.
func runFmtCLI(t *testing.T, args ...string) error {
	t.Helper()
	return runArgs(nil, nil, args...)
}

func fixtureHeaderStart(t *testing.T) int64 {
	t.Helper()
	h, err := readLogHeader(filepath.Join(fixtureDir, "io.log.zst"))
	if err != nil {
		t.Fatal(err)
	}
	if h.StartUnixNS == 0 {
		t.Fatal("the fixture's native log has no start time")
	}
	return h.StartUnixNS
}

// mactime reads the body file of a real capture and lists every op once, at
// the wall-clock second of the op, under the letter of its kind.
func TestBodyFileMactime(t *testing.T) {
	needFixture(t)
	if _, err := exec.LookPath("mactime"); err != nil {
		t.Skip("mactime (Debian package sleuthkit, installed by scripts/deps.sh) not installed: the body file is not checked with it")
	}
	dir := t.TempDir()
	img, lg := filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")
	body := filepath.Join(dir, "run.body")
	if err := runFmtCLI(t, "analyze", "--quiet", "--format", "body", "-o", body, img, lg); err != nil {
		t.Fatal(err)
	}
	run, err := analyzeToOps(img, lg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := &ops.Clock{StartUnixNS: fixtureHeaderStart(t)}
	// The date leaves out the unset (0) times of each line.
	cmd := exec.Command("mactime", "-b", body, "-d", "-y", "2000-01-01")
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mactime: %v", err)
	}
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 || recs[0][0] != "Date" {
		t.Fatalf("mactime output: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, r := range recs[1:] {
		// Date,Size,Type,Mode,UID,GID,Meta,File Name
		got[strings.Join([]string{r[0], r[1], r[2], r[6], r[7]}, " ")]++
	}
	want := map[string]int{}
	for i := range run {
		o := &run[i]
		letter := map[ops.Type]string{ops.Read: ".a..", ops.Write: "m...", ops.Truncate: "m...", ops.Create: "...b",
			ops.Mkdir: "...b", ops.Symlink: "...b", ops.Mknod: "...b"}[o.Op]
		if letter == "" {
			letter = "..c."
		}
		size := int64(0)
		if o.IsIO() {
			size = o.Bytes
		}
		want[strings.Join([]string{clock.Wall(o).Format("2006-01-02T15:04:05Z"), strconv.FormatInt(size, 10), letter,
			strconv.FormatUint(uint64(o.Ino), 10), ops.BodyName(o)}, " ")]++
	}
	sameCounts(t, "mactime line", got, want)
	if len(recs)-1 != len(run) {
		t.Errorf("mactime listed %d lines for %d ops", len(recs)-1, len(run))
	}
}

// A log without time (dm-log-writes) puts the record number in the time field;
// a native log without --metadata, its wall-clock time.
func TestBodyFileTimes(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	img := filepath.Join(fixtureDir, "image.raw.zst")
	start := fixtureHeaderStart(t)
	for _, c := range []struct{ log, clock string }{{"writes.lwlog.zst", "seq"}, {"io.log.zst", "abs"}} {
		lg := filepath.Join(fixtureDir, c.log)
		body := filepath.Join(dir, c.log+".body")
		if err := runFmtCLI(t, "analyze", "--quiet", "--format", "body", "-o", body, img, lg); err != nil {
			t.Fatal(err)
		}
		run, err := analyzeToOps(img, lg, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(body)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) != len(run) {
			t.Fatalf("%s: %d body lines for %d ops", c.log, len(lines), len(run))
		}
		for i, l := range lines {
			f := strings.Split(l, "|")
			if len(f) != 11 {
				t.Fatalf("%s line %d: %d fields: %q", c.log, i+1, len(f), l)
			}
			var tm string
			for _, x := range f[7:] {
				if x != "0" {
					tm = x
				}
			}
			want := strconv.FormatInt(run[i].Seq, 10)
			if c.clock == "abs" {
				ns := start + int64(run[i].T*1e9+0.5)
				want = fmt.Sprintf("%d.%06d", ns/1e9, ns%1e9/1e3)
			}
			if tm != want || f[1] != ops.BodyName(&run[i]) {
				t.Errorf("%s line %d: time %s name %q, want %s %q", c.log, i+1, tm, f[1], want, ops.BodyName(&run[i]))
			}
		}
	}
}

// The time column: rel is the jsonl t, abs the log's start plus t; either way
// the rest of the line is the default text output, unchanged.
func TestTextTimeColumn(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	img, lg := filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")
	read := func(name string, args ...string) []string {
		p := filepath.Join(dir, name)
		if err := runFmtCLI(t, append(append([]string{"analyze", "--quiet", "-o", p}, args...), img, lg)...); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	plain, rel, abs := read("plain"), read("rel", "--time", "rel"), read("abs", "--time", "abs")
	run, err := analyzeToOps(img, lg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != len(run) || len(rel) != len(run) || len(abs) != len(run) {
		t.Fatalf("%d/%d/%d lines for %d ops", len(plain), len(rel), len(abs), len(run))
	}
	clock := &ops.Clock{StartUnixNS: fixtureHeaderStart(t)}
	for i := range run {
		wantRel := fmt.Sprintf("%12.6f %s", run[i].T, plain[i])
		wantAbs := clock.Wall(&run[i]).Format("2006-01-02T15:04:05.000000Z07:00") + " " + plain[i]
		if rel[i] != wantRel || abs[i] != wantAbs {
			t.Errorf("line %d:\n rel %q\nwant %q\n abs %q\nwant %q", i+1, rel[i], wantRel, abs[i], wantAbs)
		}
	}
	// dm-log-writes: no time at all, and no start.
	lw := filepath.Join(fixtureDir, "writes.lwlog.zst")
	err = runFmtCLI(t, "analyze", "--quiet", "--time", "abs", "-o", filepath.Join(dir, "x"), img, lw)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage {
		t.Errorf("--time abs of a dm-log-writes log: %v, want exit status %d", err, exitUsage)
	}
	p := filepath.Join(dir, "lw")
	if err := runFmtCLI(t, "analyze", "--quiet", "--time", "rel", "-o", p, img, lw); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "           - ") {
			t.Fatalf("dm-log-writes --time rel line %q: want the time column '-'", sc.Text())
		}
	}
	if err := runFmtCLI(t, "analyze", "--quiet", "--time", "rel", "--format", "jsonl", "-o", p, img, lw); err == nil {
		t.Error("--time with --format jsonl: no error")
	}
}

// A Parquet file of a real capture, read back with the library, equals the
// jsonl field for field: the same fields present (null where jsonl omits one)
// with the same values, plus run_id.
func TestParquetEqualsJSONL(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	img, lg := filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")
	jl, pq := filepath.Join(dir, "run.jsonl"), filepath.Join(dir, "run-7.parquet")
	if err := runFmtCLI(t, "analyze", "--quiet", "--metadata", "--format", "jsonl", "-o", jl, img, lg); err != nil {
		t.Fatal(err)
	}
	if err := runFmtCLI(t, "analyze", "--quiet", "--metadata", "--format", "parquet", "-o", pq, img, lg); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pq)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	rows, err := opsparquet.ReadRows(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(jl)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if !strings.HasPrefix(lines[0], `{"ext3replay":"run"`) {
		t.Fatalf("jsonl without its run header: %s", lines[0])
	}
	lines = lines[1:] // the header is not an op
	if len(rows) != len(lines) || len(rows) == 0 {
		t.Fatalf("%d parquet rows, %d jsonl lines", len(rows), len(lines))
	}
	for i, l := range lines {
		d := json.NewDecoder(strings.NewReader(l))
		d.UseNumber()
		var want map[string]any
		if err := d.Decode(&want); err != nil {
			t.Fatal(err)
		}
		got := rowFields(&rows[i])
		if got["run_id"] != "run-7" {
			t.Fatalf("row %d: run_id %v, want run-7 (from the file name)", i, got["run_id"])
		}
		delete(got, "run_id")
		norm := map[string]string{}
		for k, v := range want {
			norm[k] = fmt.Sprint(v)
			if n, ok := v.(json.Number); ok && k == "t" {
				x, _ := n.Float64()
				norm[k] = strconv.FormatFloat(x, 'g', -1, 64)
			}
		}
		if !reflect.DeepEqual(got, norm) {
			t.Errorf("line %d:\nparquet %v\n  jsonl %v", i+1, got, norm)
		}
	}
}

// rowFields is a row as column name -> value, without null columns.
func rowFields(r *opsparquet.OpRow) map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(r).Elem()
	for i := 0; i < v.NumField(); i++ {
		name := strings.Split(v.Type().Field(i).Tag.Get("parquet"), ",")[0]
		f := v.Field(i)
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				continue
			}
			f = f.Elem()
		}
		if f.Kind() == reflect.Float64 {
			out[name] = strconv.FormatFloat(f.Float(), 'g', -1, 64)
			continue
		}
		out[name] = fmt.Sprint(f.Interface())
	}
	return out
}

// stats --format parquet has the rows of stats --format json, plus run_id.
func TestStatsParquet(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	img, lg := filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")
	js, pq := filepath.Join(dir, "s.json"), filepath.Join(dir, "s.parquet")
	if err := runFmtCLI(t, "stats", "--format", "json", "-o", js, img, lg); err != nil {
		t.Fatal(err)
	}
	if err := runFmtCLI(t, "stats", "--format", "parquet", "--run-id", "A", "-o", pq, img, lg); err != nil {
		t.Fatal(err)
	}
	if err := runFmtCLI(t, "stats", "--format", "parquet", "--by", "dir", "-o", pq+"x", img, lg); err == nil {
		t.Error("stats --format parquet --by dir: no error")
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var want struct{ Rows, Files []ops.FileStats }
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	want.Files = want.Rows
	f, err := os.Open(pq)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	rows, err := opsparquet.ReadFileRows(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want.Files) || len(rows) == 0 {
		t.Fatalf("%d parquet rows, %d files in the json", len(rows), len(want.Files))
	}
	for i := range rows {
		w := opsparquet.NewFileRow("A", &want.Files[i])
		// nil and empty lists read back alike
		for _, l := range []*[]string{&w.History, &w.Names, &rows[i].History, &rows[i].Names} {
			if len(*l) == 0 {
				*l = nil
			}
		}
		if !reflect.DeepEqual(rows[i], w) {
			t.Errorf("file %d:\nparquet %+v\n   json %+v", i, rows[i], w)
		}
	}
}
