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
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
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
		got, err := analyzeToOps(filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, log), false)
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
	_, err := analyzeToOps(other, filepath.Join(fixtureDir, "io.log.zst"), false)
	if !errors.Is(err, blklog.ErrImageMismatch) {
		t.Fatalf("err = %v, want an image mismatch", err)
	}
}

func TestAnalyzeCommandFormats(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	for _, format := range []string{"jsonl", "csv", "text"} {
		out := filepath.Join(dir, "ops."+format)
		rootCmd.SetArgs([]string{"analyze", "--quiet", "--metadata", "--format", format, "-o", out,
			filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")})
		if err := rootCmd.Execute(); err != nil {
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
	analyzeFlags.metadata, analyzeFlags.format, analyzeFlags.output, analyzeFlags.quiet = false, "text", "-", false
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
			f, err := os.Open(filepath.Join(dir, "expected.jsonl"))
			if err != nil {
				t.Skip("no expected.jsonl")
			}
			exp, err := accuracy.ReadExpected(f, f.Name())
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			got, err := analyzeToOps(filepath.Join(dir, "image.raw.zst"), logPath, false)
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
