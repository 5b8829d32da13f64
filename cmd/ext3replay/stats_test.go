package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

type expectedOp struct {
	Op       string `json:"op"`
	Path     string `json:"path"`
	To       string `json:"to"`
	MinBytes int64  `json:"min_bytes"`
	Optional bool   `json:"optional"`
}

// stats of a real capture, analyzed from image and log, agrees with the
// fixture's ground truth: every file the workload created, moved or
// deleted ends in that state, written files got at least the bytes the
// workload wrote, and the I/O classes add up.
func TestStatsRealGroundTruth(t *testing.T) {
	for _, scenario := range []string{"basic-ext3-4k", "links-ext3-4k", "basic-ext2-1k"} {
		t.Run(scenario, func(t *testing.T) {
			dir := filepath.Join(fixtures, scenario)
			if _, err := os.Stat(filepath.Join(dir, "io.log.zst")); err != nil {
				t.Skipf("fixture not present: %v", err)
			}
			code, out := run(t, "stats", "--format", "json", filepath.Join(dir, "image.raw.zst"), filepath.Join(dir, "io.log.zst"))
			if code != exitOK {
				t.Fatalf("exit %d", code)
			}
			var rep struct {
				Rows   []ops.FileStats `json:"rows"`
				Totals ops.Totals      `json:"totals"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			tot := rep.Totals
			sum := tot.FileData
			sum.Merge(tot.Metadata)
			sum.Merge(tot.Journal)
			sum.Merge(tot.Unattributed)
			if sum != tot.All || tot.All.WriteBytes == 0 {
				t.Errorf("classes %+v do not add up to %+v", sum, tot.All)
			}
			var rowData ops.Volume
			byFirst := map[string][]*ops.FileStats{}
			byName := map[string]*ops.FileStats{}
			for i := range rep.Rows {
				f := &rep.Rows[i]
				rowData.Merge(f.Data)
				byFirst[f.Path] = append(byFirst[f.Path], f)
				for _, n := range f.Names {
					byName[n] = f
				}
			}
			if rowData != tot.FileData {
				t.Errorf("file rows hold %+v of data, totals say %+v", rowData, tot.FileData)
			}
			has := func(p string, ok func(*ops.FileStats) bool) bool {
				for _, f := range byFirst[p] {
					if ok(f) {
						return true
					}
				}
				return false
			}
			written := map[*ops.FileStats]int64{}
			f, err := os.Open(filepath.Join(dir, "expected.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s := bufio.NewScanner(f)
			for s.Scan() {
				var e expectedOp
				if err := json.Unmarshal(s.Bytes(), &e); err != nil || e.Optional {
					continue
				}
				switch e.Op {
				case "create", "mkdir", "symlink":
					if !has(e.Path, func(f *ops.FileStats) bool { return f.Created }) {
						t.Errorf("%s %s: no created file with that first name", e.Op, e.Path)
					}
				case "delete", "rmdir":
					if !has(e.Path, func(f *ops.FileStats) bool { return strings.HasPrefix(f.State, "deleted") }) &&
						byName[e.Path] != nil {
						t.Errorf("%s %s: still exists", e.Op, e.Path)
					}
				case "move":
					if !has(e.Path, func(f *ops.FileStats) bool {
						for _, h := range f.History {
							if strings.HasPrefix(h, "move -> "+e.To) {
								return true
							}
						}
						return false
					}) {
						t.Errorf("move %s -> %s: not in the history of %s", e.Path, e.To, e.Path)
					}
				case "write":
					if g := byName[e.Path]; g != nil {
						written[g] += e.MinBytes
					}
				}
			}
			for g, n := range written {
				if g.Data.WriteBytes < n {
					t.Errorf("%s: %d bytes written, the workload wrote at least %d", g.Path, g.Data.WriteBytes, n)
				}
			}
		})
	}
}
