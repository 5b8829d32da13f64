package ops

import (
	"os"
	"path/filepath"
	"testing"
)

func loadRun(t *testing.T, name string) []Op {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run, err := ReadJSONLNamed(f, name)
	if err != nil {
		t.Fatal(err)
	}
	return run
}
