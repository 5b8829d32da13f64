package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProfileSwitches: analyze (and stats, as every command) writes the CPU profile, the execution trace and the heap profile its
// environment asks for, and a path it cannot create is an error naming the switch, before the run.
func TestProfileSwitches(t *testing.T) {
	const fix = "../../fixtures/real/basic-ext3-4k"
	dir := t.TempDir()
	for _, env := range []string{"EXT3REPLAY_CPUPROFILE", "EXT3REPLAY_TRACE", "EXT3REPLAY_MEMPROFILE"} {
		t.Setenv(env, filepath.Join(dir, env))
	}
	if err := runArgs(io.Discard, io.Discard, "analyze", "--quiet", fix+"/image.raw.zst", fix+"/io.log.zst"); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"EXT3REPLAY_CPUPROFILE", "EXT3REPLAY_TRACE", "EXT3REPLAY_MEMPROFILE"} {
		if st, err := os.Stat(filepath.Join(dir, env)); err != nil || st.Size() == 0 {
			t.Errorf("%s: no profile written (%v)", env, err)
		}
	}
	// Every command, not analyze alone: stats of a saved run.
	prof := filepath.Join(dir, "stats.prof")
	t.Setenv("EXT3REPLAY_CPUPROFILE", prof)
	if err := runArgs(io.Discard, io.Discard, "stats", "../../pkg/ops/testdata/run-a.jsonl"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("stats: no CPU profile written (%v)", err)
	}
	t.Setenv("EXT3REPLAY_MEMPROFILE", filepath.Join(dir, "missing", "heap"))
	err := runArgs(io.Discard, io.Discard, "analyze", "--quiet", fix+"/image.raw.zst", fix+"/io.log.zst")
	if err == nil || !strings.Contains(err.Error(), "EXT3REPLAY_MEMPROFILE") {
		t.Fatalf("unwritable heap profile path: %v, want an error naming EXT3REPLAY_MEMPROFILE", err)
	}
}
