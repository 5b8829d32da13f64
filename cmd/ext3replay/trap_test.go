package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The saved-output trap of issue 16: a run saved without --metadata read as one whose
// metadata and journal I/O were zero (stats: write amplification 1.79 against 10.07 from the
// log; diff of the same run saved both ways: "5 differences"). Now the jsonl says what it
// holds, and stats and diff use it.
func TestSavedRunsSayWhatTheyHold(t *testing.T) {
	dir := t.TempDir()
	img, lg := filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")
	plain, meta := filepath.Join(dir, "plain.jsonl"), filepath.Join(dir, "meta.jsonl")
	if err := runArgs(nil, nil, "analyze", "--quiet", "--format", "jsonl", "-o", plain, img, lg); err != nil {
		t.Fatal(err)
	}
	if err := runArgs(nil, nil, "analyze", "--quiet", "--metadata", "--format", "jsonl", "-o", meta, img, lg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(b), "\n", 2)[0]
	if !strings.HasPrefix(first, `{"ext3replay":"run",`) || !strings.Contains(first, `"image":{"name":"image.raw.zst"`) ||
		!strings.Contains(first, `"log":{"name":"io.log.zst"`) || !strings.HasSuffix(first, `"metadata":false}`) {
		t.Errorf("header %s", first)
	}

	// stats of the run without metadata: no amplification, the journal not recorded.
	var out, stderr bytes.Buffer
	if code := executeArgs([]string{"stats", plain}, &out, &stderr); code != exitOK {
		t.Fatalf("stats: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(out.String(), "write amplification n/a") || !strings.Contains(out.String(), "not recorded") {
		t.Errorf("stats of a run without metadata:\n%s", out.String())
	}
	// From the log, and from the run saved with --metadata: the same figure.
	var fromLog, fromMeta bytes.Buffer
	executeArgs([]string{"stats", img, lg}, &fromLog, &stderr)
	executeArgs([]string{"stats", meta}, &fromMeta, &stderr)
	amp := func(s string) string { i := strings.Index(s, "write amplification"); return s[i:] }
	if !strings.Contains(fromLog.String(), "write amplification 10.07") || amp(fromLog.String()) != amp(fromMeta.String()) {
		t.Errorf("amplification from the log %q, from the saved run %q", amp(fromLog.String()), amp(fromMeta.String()))
	}
	// json says it in the output, and on stderr.
	out.Reset()
	stderr.Reset()
	executeArgs([]string{"stats", "--format", "json", plain}, &out, &stderr)
	if !strings.Contains(out.String(), `"missing_kinds"`) || !strings.Contains(stderr.String(), "saved without --metadata") {
		t.Errorf("json stats: stderr %q", stderr.String())
	}

	// diff refuses unlike runs, either way round.
	for _, args := range [][]string{{plain, meta}, {meta, plain}} {
		stderr.Reset()
		if code := executeArgs(append([]string{"diff"}, args...), &bytes.Buffer{}, &stderr); code != exitUsage ||
			!strings.Contains(stderr.String(), "cannot be compared") {
			t.Errorf("diff %v: exit %d, %s", args, code, stderr.String())
		}
	}
	// Two runs both without metadata compare, saying what is not compared.
	out.Reset()
	if code := executeArgs([]string{"diff", plain, plain}, &out, &stderr); code != exitOK || !strings.Contains(out.String(), "not recorded and is not compared") {
		t.Errorf("diff of like runs: exit %d\n%s", code, out.String())
	}

	// A run saved before headers existed still reads, and is recognised as lacking metadata.
	old := filepath.Join(dir, "old.jsonl")
	if err := os.WriteFile(old, []byte(strings.SplitN(string(b), "\n", 2)[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := executeArgs([]string{"diff", old, meta}, &bytes.Buffer{}, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "cannot be compared") {
		t.Errorf("diff of a headerless run without metadata against one with: exit %d, %s", code, stderr.String())
	}
	if code := executeArgs([]string{"diff", old, plain}, &bytes.Buffer{}, &stderr); code != exitOK {
		t.Errorf("diff of the same run with and without header: exit %d, %s", code, stderr.String())
	}
}
