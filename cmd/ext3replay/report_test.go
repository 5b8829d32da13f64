package main

import (
	"context"
	"fmt"
	"html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

// chromium runs headless Chromium on page with extra (--screenshot=... or
// --dump-dom) and returns its stdout. Skips when Chromium is not installed
// (scripts/deps.sh installs Debian's chromium package).
func chromium(t *testing.T, page string, extra ...string) []byte {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium not installed (scripts/deps.sh installs Debian's chromium): the HTML report is not rendered")
	}
	abs, err := filepath.Abs(page)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,1500"}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, "file://"+abs)...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, stderr)
	}
	return out
}

var (
	scriptRE = regexp.MustCompile(`(?s)<script\b.*?</script>`)
	markRE   = regexp.MustCompile(`<tr class="mark" data-run="(\d+)" data-seq="(\d+)" data-op="([a-z]+)" data-path="([^"]*)" data-to="([^"]*)"`)
	pathRE   = regexp.MustCompile(`<li data-path="([^"]*)"></li>`)
)

// domMarks reads the hidden tables the report's script writes after drawing:
// "run op path -> to seq" per mark, and the paths of each run.
func domMarks(dom []byte) (marks map[string]int, paths map[string]bool) {
	dom = scriptRE.ReplaceAll(dom, nil) // the script's own text holds the same markup
	marks, paths = map[string]int{}, map[string]bool{}
	for _, m := range markRE.FindAllSubmatch(dom, -1) {
		marks[fmt.Sprintf("%s %s %s -> %s %s", m[1], m[3], html.UnescapeString(string(m[4])), html.UnescapeString(string(m[5])), m[2])]++
	}
	for _, m := range pathRE.FindAllSubmatch(dom, -1) {
		paths[html.UnescapeString(string(m[1]))] = true
	}
	return marks, paths
}

// runMarks is what domMarks should find for run number ri: one mark per
// namespace op, and every path and new name.
func runMarks(ri int, run []ops.Op, marks map[string]int, paths map[string]bool) {
	for _, o := range run {
		if o.IsNamespace() {
			marks[fmt.Sprintf("%d %s %s -> %s %d", ri, o.Op, o.Path, o.To, o.Seq)]++
		}
		for _, p := range []string{o.Path, o.To} {
			if p != "" {
				paths[p] = true
			}
		}
	}
}

func sameCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s %q: %d in the output, %d in the run", what, k, got[k], want[k])
		}
	}
}

// The report of a real capture, rendered by Chromium: the screenshot shows the
// coloured plots, and the DOM built by the script holds one mark per namespace
// operation and every path of the run.
func TestReportRendersInChromium(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	img, lg := filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")
	page := filepath.Join(dir, "run.html")
	err := runArgs(nil, nil, []string{"report", "-o", page, img, lg}...)
	if err != nil {
		t.Fatal(err)
	}
	run, err := analyzeToOps(img, lg, true, nil)
	if err != nil {
		t.Fatal(err)
	}

	shot := filepath.Join(dir, "shot.png")
	chromium(t, page, "--screenshot="+shot)
	colours, saturated := pngColours(t, shot)
	// A blank page has one colour and text alone only greys; the plots and
	// legends are drawn in saturated colours by the script.
	if colours < 50 || saturated < 2000 {
		t.Errorf("screenshot has %d distinct colours and %d saturated pixels: the plots were not drawn", colours, saturated)
	}

	dom := chromium(t, page, "--dump-dom")
	if !regexp.MustCompile(`data-rendered="true"`).Match(dom) {
		t.Fatalf("the report's script did not finish (no data-rendered on body)")
	}
	// The canvases say how much they drew: every I/O op in the sector plot, and
	// (all lanes of this small run fit the lane view) every bar and mark.
	var nIO, nMarks int
	for _, o := range run {
		if o.IsIO() {
			nIO++
		} else {
			nMarks++
		}
	}
	for _, want := range []string{
		fmt.Sprintf(`data-bars="%d" data-marks="%d"`, nIO, nMarks),
		fmt.Sprintf(`data-drawn="%d"`, nIO),
	} {
		if !strings.Contains(string(scriptRE.ReplaceAll(dom, nil)), want) {
			t.Errorf("the page lacks %s: the canvases did not draw the whole run\n%s", want, regexp.MustCompile(`<canvas[^>]*>`).FindAll(dom, -1))
		}
	}
	// The filter (here from the address) keeps what names /projects: the
	// canvases then draw only those ops.
	fIO, fMarks := 0, 0
	for _, o := range run {
		if !strings.Contains(o.Path, "/projects") && !strings.Contains(o.To, "/projects") {
			continue
		}
		if o.IsIO() {
			fIO++
		} else {
			fMarks++
		}
	}
	fdom := scriptRE.ReplaceAll(chromium(t, page+"#filter=/projects", "--dump-dom"), nil)
	for _, want := range []string{
		fmt.Sprintf(`data-bars="%d" data-marks="%d"`, fIO, fMarks),
		fmt.Sprintf(`data-drawn="%d"`, fIO),
	} {
		if fIO == 0 || fIO == nIO || !strings.Contains(string(fdom), want) {
			t.Errorf("filtered by /projects: the page lacks %s\n%s", want, regexp.MustCompile(`<canvas[^>]*>`).FindAll(fdom, -1))
		}
	}
	marks, paths := domMarks(dom)
	wantMarks, wantPaths := map[string]int{}, map[string]bool{}
	runMarks(0, run, wantMarks, wantPaths)
	if len(wantMarks) == 0 {
		t.Fatal("the fixture run has no namespace operations")
	}
	sameCounts(t, "mark", marks, wantMarks)
	for p := range wantPaths {
		if !paths[p] {
			t.Errorf("path %q of the run is not in the page", p)
		}
	}
	t.Logf("%d marks, %d paths, %d colours (%d saturated pixels)", len(marks), len(paths), colours, saturated)
}

// diff --format html puts both runs on one page: each run's marks under its
// own number.
func TestDiffHTMLRendersBothRuns(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	img := filepath.Join(fixtureDir, "image.raw.zst")
	logs := []string{filepath.Join(fixtureDir, "io.log.zst"), filepath.Join(fixtureDir, "writes.lwlog.zst")}
	page := filepath.Join(dir, "diff.html")
	err := runArgs(nil, nil, []string{"diff", "--writes-only", "--format", "html", "-o", page, "--image", img, logs[0], logs[1]}...)
	if ee, ok := err.(*exitError); err != nil && !(ok && ee.code == exitDiffers) {
		t.Fatal(err)
	}
	wantMarks, wantPaths := map[string]int{}, map[string]bool{}
	for i, lg := range logs {
		run, err := analyzeToOps(img, lg, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		runMarks(i, run, wantMarks, wantPaths)
	}
	marks, paths := domMarks(chromium(t, page, "--dump-dom"))
	sameCounts(t, "mark", marks, wantMarks)
	for p := range wantPaths {
		if !paths[p] {
			t.Errorf("path %q is not in the page", p)
		}
	}
}

// pngColours counts the distinct colours of a PNG and its saturated pixels
// (max - min channel > 80 of 255: not white, grey or black text).
func pngColours(t *testing.T, file string) (colours, saturated int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	seen := map[[3]uint32]bool{}
	b := im.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := im.At(x, y).RGBA()
			c := [3]uint32{r >> 8, g >> 8, bl >> 8}
			seen[c] = true
			if max(c[0], c[1], c[2])-min(c[0], c[1], c[2]) > 80 {
				saturated++
			}
		}
	}
	return len(seen), saturated
}

// The flushes report draws are the log's flush records, and its journal commits
// are the transactions the resolver applied (none on ext2), on real captures.
func TestReportFlushesAndCommits(t *testing.T) {
	for _, name := range []string{"basic-ext3-4k", "journal-wrap-ext3-4k", "basic-ext3-journal", "basic-ext2-4k", "bigfile-ext3-4k"} {
		dir := filepath.Join("../../fixtures/real", name)
		img, lg := filepath.Join(dir, "image.raw.zst"), filepath.Join(dir, "io.log.zst")
		if _, err := os.Stat(lg); err != nil {
			t.Skipf("fixture %s not present", name)
		}
		run, err := reportFromLog(img, lg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var flushes int
		var lastSeq int64 = -1
		st, err := runAnalyze(img, lg, resolver.Options{}, func(*ops.Op) error { return nil }, nil, func(rec *blklog.Record) {
			if rec.Type == blklog.TypeFlush {
				flushes++
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(run.Flushes) != flushes || int64(len(run.Commits)) != st.Transactions {
			t.Errorf("%s: %d flushes and %d commits drawn; the log has %d flushes and the resolver applied %d transactions",
				name, len(run.Flushes), len(run.Commits), flushes, st.Transactions)
		}
		for _, c := range run.Commits {
			if c.Seq <= lastSeq || c.T <= 0 {
				t.Errorf("%s: commit at record %d (t %v) after record %d", name, c.Seq, c.T, lastSeq)
			}
			lastSeq = c.Seq
		}
		t.Logf("%s: %d flushes, %d commits", name, flushes, len(run.Commits))
	}
}

// report RUN.jsonl: a run saved without --metadata is drawn, and the page's data
// says what it lacks (no metadata I/O, no flushes or commits), which the page
// tells the reader.
func TestReportFromJSONL(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	img, lg := filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")
	for _, meta := range []bool{false, true} {
		jl := filepath.Join(dir, fmt.Sprintf("run-%v.jsonl", meta))
		args := []string{"analyze", "--quiet", "--format", "jsonl", "-o", jl, img, lg}
		if meta {
			args = append(args[:1], append([]string{"--metadata"}, args[1:]...)...)
		}
		if err := runFmtCLI(t, args...); err != nil {
			t.Fatal(err)
		}
		page := filepath.Join(dir, "run.html")
		err := runArgs(nil, nil, []string{"report", "-o", page, jl}...)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`"fromLog":false,"metadata":%v,`, meta)
		if !strings.Contains(string(b), want) {
			t.Errorf("--metadata %v: the page's data lacks %s", meta, want)
		}
	}
}
