package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/accuracy"
	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

const fixtureDir = "../../fixtures/real/basic-ext3-4k"

func needFixture(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(fixtureDir, "io.log.zst")); err != nil {
		t.Skip("fixture basic-ext3-4k not present")
	}
}

// expectedNS reads the namespace ops of a fixture's expected.jsonl as "op path -> to".
func expectedNS(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Op       ops.Type `json:"op"`
			Path, To string
			Optional bool
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		o := ops.Op{Op: e.Op}
		if o.IsNamespace() && !e.Optional {
			want[string(e.Op)+" "+e.Path+" -> "+e.To]++
		}
	}
	return want
}

func TestAnalyzeToOpsFixture(t *testing.T) {
	needFixture(t)
	for _, log := range []string{"io.log.zst", "writes.lwlog.zst"} {
		got, err := analyzeToOps(filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, log), false, nil)
		if err != nil {
			t.Fatalf("%s: %v", log, err)
		}
		have := map[string]int{}
		for _, o := range got {
			if o.IsNamespace() {
				have[string(o.Op)+" "+o.Path+" -> "+o.To]++
			}
			if o.Op == ops.Anomaly {
				t.Errorf("%s: anomaly %+v", log, o)
			}
		}
		want := expectedNS(t, filepath.Join(fixtureDir, "expected.jsonl"))
		for k, n := range want {
			if have[k] != n {
				t.Errorf("%s: %q reported %d times, want %d", log, k, have[k], n)
			}
		}
		for k := range have {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: unexpected %q", log, k)
			}
		}
	}
}

func TestAnalyzeRefusesOtherImage(t *testing.T) {
	needFixture(t)
	other := "../../fixtures/real/basic-ext3-1k/image.raw.zst"
	if _, err := os.Stat(other); err != nil {
		t.Skip("fixture basic-ext3-1k not present")
	}
	_, err := analyzeToOps(other, filepath.Join(fixtureDir, "io.log.zst"), false, nil)
	if !errors.Is(err, blklog.ErrImageMismatch) || !strings.Contains(err.Error(), other) {
		t.Fatalf("err = %v, want an image mismatch naming the image", err)
	}
}

func TestAnalyzeCommandFormats(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	for _, format := range []string{"jsonl", "csv", "text"} {
		out := filepath.Join(dir, "ops."+format)
		if err := runArgs(nil, nil, []string{"analyze", "--quiet", "--metadata", "--format", format, "-o", out,
			filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")}...); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		switch format {
		case "jsonl":
			l, err := ops.ReadJSONL(strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[ops.Kind]bool{}
			for _, o := range l {
				kinds[o.Kind] = true
			}
			for _, k := range []ops.Kind{ops.KindData, ops.KindDir, ops.KindInode, ops.KindJournal, ops.KindBitmap} {
				if !kinds[k] {
					t.Errorf("--metadata output has no %s I/O", k)
				}
			}
		case "csv":
			if !strings.HasPrefix(string(b), strings.Join(ops.CSVHeader, ",")) {
				t.Errorf("csv output starts %q", strings.SplitN(string(b), "\n", 2)[0])
			}
		case "text":
			if !strings.Contains(string(b), "mkdir   /projects\n") {
				t.Errorf("text output lacks the mkdir line:\n%s", b)
			}
		}
	}
}

// TestAnalyzeCorpusAccuracy scores analyze on every real fixture against its ground truth, as
// `make accuracy` does, and requires a perfect score: namespace precision and recall 1, every
// expected write and read found, no data bytes on a path the workload never wrote.
func TestAnalyzeCorpusAccuracy(t *testing.T) {
	logs, _ := filepath.Glob("../../fixtures/real/*/io.log.zst")
	if !testing.Short() {
		lw, _ := filepath.Glob("../../fixtures/real/*/writes.lwlog.zst")
		logs = append(logs, lw...)
	}
	if len(logs) == 0 {
		t.Skip("no real fixtures")
	}
	for _, logPath := range logs {
		dir := filepath.Dir(logPath)
		t.Run(filepath.Base(dir)+"/"+filepath.Base(logPath), func(t *testing.T) {
			if needs, err := scenario.Needs(dir); err != nil {
				t.Fatal(err)
			} else if needs != "" {
				t.Skipf("NEEDS=%s in scenario.env: analyze cannot score it yet", needs)
			}
			f, err := os.Open(filepath.Join(dir, "expected.jsonl"))
			if err != nil {
				t.Skip("no expected.jsonl")
			}
			exp, err := accuracy.ReadExpected(f, f.Name())
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			mounts, err := scenario.Mounts(dir) // a partitioned disk's mount points
			if err != nil {
				t.Fatal(err)
			}
			got, err := analyzeToOps(filepath.Join(dir, "image.raw.zst"), logPath, false, nil, func(o *analysis.Options) { o.Mounts = mounts })
			if err != nil {
				t.Fatal(err)
			}
			res := accuracy.Score(exp, got)
			if res.Precision() != 1 || res.Recall() != 1 {
				t.Errorf("namespace precision %.2f recall %.2f", res.Precision(), res.Recall())
			}
			if res.WritesFound() != len(res.Writes) {
				t.Errorf("%d of %d expected writes found", res.WritesFound(), len(res.Writes))
			}
			if strings.HasSuffix(logPath, "io.log.zst") && res.ReadsFound() != len(res.Reads) {
				t.Errorf("%d of %d expected reads found", res.ReadsFound(), len(res.Reads))
			}
			if res.StrayWriteBytes != 0 || res.Anomalies != 0 {
				t.Errorf("stray data bytes %d (%v), anomalies %d", res.StrayWriteBytes, res.StrayPaths, res.Anomalies)
			}
		})
	}
}

// A log cut short is analysed up to the cut: the operations before it are
// written, and the command still fails with exit status 4 naming the record
// and byte where the log stopped.
func TestAnalyzeTruncatedLog(t *testing.T) {
	needFixture(t)
	// The fixture's log, decompressed (the reader takes raw native logs too)
	// and cut 100 bytes before its end, inside the last records.
	b := unzstd(t, filepath.Join(fixtureDir, "io.log.zst"))
	dir := t.TempDir()
	cut := filepath.Join(dir, "cut.log")
	if err := os.WriteFile(cut, b[:len(b)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ops.jsonl")
	err := runArgs(nil, nil, []string{"analyze", "--quiet", "--format", "jsonl", "-o", out,
		filepath.Join(fixtureDir, "image.raw.zst"), cut}...)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitDamaged {
		t.Fatalf("err = %v, want exit status %d", err, exitDamaged)
	}
	var de *blklog.DamageError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "record") {
		t.Fatalf("err = %v, want a DamageError naming the record", err)
	}
	got, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if l, perr := ops.ReadJSONL(strings.NewReader(string(got))); perr != nil || len(l) == 0 {
		t.Fatalf("want the operations before the damage, got %d (%v)", len(l), perr)
	}
	if _, err := analyzeToOps(filepath.Join(fixtureDir, "image.raw.zst"), cut, false, nil); !errors.As(err, &de) {
		t.Fatalf("analyzeToOps on a damaged log: err = %v, want the damage", err)
	}
}

// A dm-log-writes log carries no image identity; the superblock it writes must still describe
// the image's file system, or every path would be attributed against the wrong tree.
func TestAnalyzeRefusesOtherImageDmLogWrites(t *testing.T) {
	needFixture(t)
	for _, other := range []string{"basic-ext3-1k", "basic-ext2-4k"} {
		img := filepath.Join("../../fixtures/real", other, "image.raw.zst")
		if _, err := os.Stat(img); err != nil {
			t.Skipf("fixture %s not present", other)
		}
		_, err := analyzeToOps(img, filepath.Join(fixtureDir, "writes.lwlog.zst"), false, nil)
		if !errors.Is(err, blklog.ErrImageMismatch) || !strings.Contains(err.Error(), "record ") || !strings.Contains(err.Error(), img) {
			t.Errorf("%s: err = %v, want an image mismatch naming the record and the image", other, err)
		}
	}
}

// Failing to write the output is exit status 3 (docs/output-formats.md), not 2: the input was fine.
func TestAnalyzeOutputWriteFailure(t *testing.T) {
	needFixture(t)
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	err := runArgs(nil, nil, []string{"analyze", "--quiet", "--format", "jsonl", "-o", "/dev/full",
		filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")}...)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitInternal {
		t.Fatalf("err = %v, want exit status %d", err, exitInternal)
	}
}

// analyze leaves plain file data out of the log's reading with every output format (their taps
// read flags only) and reads payloads whole for --check, whose checker reads them: the pipeline
// its flags make, on a real capture of a large file written.
func TestAnalyzePipelineLeavesPlainDataOut(t *testing.T) {
	dir := "../../fixtures/real/bigfile-ext3-4k"
	img, lg := filepath.Join(dir, "image.raw.zst"), filepath.Join(dir, "io.log.zst")
	if _, err := os.Stat(lg); err != nil {
		t.Skip("fixture bigfile-ext3-4k not present")
	}
	for _, c := range []struct {
		format string
		check  bool
	}{{"text", false}, {"body", false}, {"jsonl", false}, {"csv", false}, {"text", true}} {
		f := analyzeOptions{format: c.format, time: "none"}
		ow, tap, err := newOpWriter(&strings.Builder{}, f.format, f.time, "", lg, "")
		if err != nil {
			t.Fatal(err)
		}
		emit := ow.Write
		var ck *analyzeCheck
		if c.check {
			if ck, err = withCheck(img, lg, emit, tap); err != nil {
				t.Fatal(err)
			}
			emit, tap = ck.Emit, ck.Tap
		}
		st, err := runAnalyze(img, lg, resolver.Options{}, emit, nil, tap, f.pipeline(ow, nil, ck)...)
		if err != nil {
			t.Fatal(err)
		}
		if left := st.Stats.LeftOut; (left > 0) == c.check {
			t.Errorf("--format %s, --check %v: %d blocks of plain data left out", c.format, c.check, left)
		}
		t.Logf("--format %s, --check %v: %d blocks left out of %d records", c.format, c.check, st.Stats.LeftOut, st.Records)
	}
}
