package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// docs/examples/variant.jsonl, the run docs/stats-and-diff.md compares with the basic-ext3-4k
// one, is what variantOps makes of that run as analyze --metadata prints it now: the test fails
// when the file is not, and -update (make docs-update) rewrites it. It runs before
// TestDocsConsoleBlocks (file order), so one -update run settles both.
func TestDocsExampleVariant(t *testing.T) {
	a := analyzeFixture(t, "basic-ext3-4k")
	b, moved := variantOps(a)
	if moved == nil {
		t.Fatal("basic-ext3-4k has no move: the variant the docs describe cannot be made")
	}
	dir := filepath.Join(fixtures, "basic-ext3-4k")
	h := runHeader(filepath.Join(dir, "image.raw.zst"), filepath.Join(dir, "io.log.zst"), true)
	h.Version = "docs example" // the same whatever build runs the test
	var buf bytes.Buffer
	if err := ops.WriteRunHeader(&buf, h); err != nil {
		t.Fatal(err)
	}
	w, err := ops.NewWriter(&buf, "jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		if err := w.Write(&b[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "docs", "examples", "variant.jsonl")
	if *updateDocs {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(old, buf.Bytes()) {
		t.Errorf("%s is not the variant of the run analyze prints now (make docs-update rewrites it): %v\n%s", path, err, firstDiff(string(old), buf.String()))
	}
}
