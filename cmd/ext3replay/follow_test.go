package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// growLog writes b to path (which exists, empty) in pieces of random size with pauses, as a
// recorder or QEMU writing it does: cut inside zstd frames, records and entries.
func growLog(path string, b []byte, done chan<- error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		done <- err
		return
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(uint64(len(b)), 3))
	for off := 0; off < len(b); {
		n := min(len(b)-off, 1+rng.IntN(16<<10))
		if _, err := f.Write(b[off : off+n]); err != nil {
			done <- err
			return
		}
		off += n
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
	}
	done <- nil
}

func unzstd(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSONLRun compares two jsonl runs line for line; the header's log size is left out (a followed
// log's is unknown when the header is written).
func sameJSONLRun(t *testing.T, got, want string) {
	t.Helper()
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(g) < 2 || len(w) < 2 {
		t.Fatalf("runs too short: %d and %d lines", len(g), len(w))
	}
	var hg, hw map[string]any
	if json.Unmarshal([]byte(g[0]), &hg) != nil || json.Unmarshal([]byte(w[0]), &hw) != nil {
		t.Fatalf("headers %q, %q", g[0], w[0])
	}
	delete(hg["log"].(map[string]any), "size")
	delete(hw["log"].(map[string]any), "size")
	if bg, _ := json.Marshal(hg); !bytes.Equal(bg, func() []byte { b, _ := json.Marshal(hw); return b }()) {
		t.Errorf("headers differ beyond the log size: %s / %s", g[0], w[0])
	}
	for i := 1; i < max(len(g), len(w)); i++ {
		if i >= len(g) || i >= len(w) || g[i] != w[i] {
			t.Fatalf("line %d differs (follow %d lines, offline %d):\nfollow:  %q\noffline: %q", i+1, len(g), len(w), at(g, i), at(w, i))
		}
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}

// analyze --follow on a log written while it runs prints, line for line, what analyze prints
// for the finished log: the native log (ending at its end record) and a raw dm-log-writes log
// (ending after --idle), both of a real capture.
func TestAnalyzeFollow(t *testing.T) {
	const sc = "../../fixtures/real/random-ext3-4k/"
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		log  []byte
		idle string
	}{
		{"native", readFile(t, sc+"io.log.zst"), "30s"},
		{"dm-log-writes", unzstd(t, sc+"writes.lwlog.zst"), "1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The same file name in two folders: the jsonl header names the log.
			for _, d := range []string{"full", "growing"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			full := filepath.Join(dir, "full", tc.name+".log")
			if err := os.WriteFile(full, tc.log, 0o644); err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			// --follow splits runs at flushes by default: offline analyze with the same.
			if code := executeArgs([]string{"analyze", "--quiet", "--format", "jsonl", "--split-at-flush", sc + "image.raw.zst", full}, &want, io.Discard); code != 0 {
				t.Fatalf("offline analyze: exit %d", code)
			}
			growing := filepath.Join(dir, "growing", tc.name+".log")
			if err := os.WriteFile(growing, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go growLog(growing, tc.log, done)
			start := time.Now()
			var got, stderr bytes.Buffer
			code := executeArgs([]string{"analyze", "--follow", "--idle", tc.idle, "--format", "jsonl", sc + "image.raw.zst", growing}, &got, &stderr)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if code != 0 {
				t.Fatalf("analyze --follow: exit %d\n%s", code, stderr.String())
			}
			if tc.name == "native" && time.Since(start) > 20*time.Second {
				t.Errorf("took %v: the end record did not end the follow", time.Since(start))
			}
			sameJSONLRun(t, got.String(), want.String())
			if n := strings.Count(got.String(), "\n"); n < 50 {
				t.Fatalf("only %d lines: not a real comparison", n)
			}
		})
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
