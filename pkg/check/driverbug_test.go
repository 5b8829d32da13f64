package check

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// TestRealDriverBugs: on each real capture of a driver bug (FINAL_FSCK=damaged, such as U-Boot
// leaking an extent tree's leaf block when it replaces a file), every block, inode and group
// e2fsck -fn named on the final disk at capture (final-fsck.txt) is named by a finding still
// present at the end, from both logs; the final disk the log gives is the one e2fsck judged;
// and a leaked block is pinned on the request after which nothing owns it, as debugfs icheck
// says when asked after every write.
func TestRealDriverBugs(t *testing.T) {
	dirs, _ := filepath.Glob("../../fixtures/real/*")
	n := 0
	for _, dir := range dirs {
		if !scenario.FinalDamaged(dir) {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join(dir, "final-fsck.txt"))
			if err != nil {
				t.Fatal(err)
			}
			blocks, inodes, groups := parseE2fsck(string(text))
			if len(blocks)+len(inodes)+len(groups) == 0 {
				t.Fatalf("final-fsck.txt names no problem:\n%s", text)
			}
			disk, recs := capture(t, dir)
			haveE2fsck := true
			if _, err := exec.LookPath("e2fsck"); err != nil {
				haveE2fsck = false
			} else {
				b, i, g, out := e2fsckNames(t, final(t, disk, recs))
				if !sameNums(b, blocks) || !sameNums(i, inodes) || !sameNums(g, groups) {
					t.Fatalf("e2fsck on the log's final disk:\n%s\ndiffers from final-fsck.txt:\n%s", out, text)
				}
			}
			for _, logName := range []string{"writes.lwlog.zst", "io.log.zst"} {
				t.Run(logName, func(t *testing.T) {
					lr, err := blklog.Open(filepath.Join(dir, logName))
					if err != nil {
						t.Fatal(err)
					}
					defer lr.Close()
					_, findings, err := Run(disk, int64(len(disk)), lr)
					if err != nil {
						t.Fatal(err)
					}
					for _, f := range findings {
						t.Logf("%+v", f)
					}
					named := func(ok func(f Finding) bool) bool {
						for _, f := range findings {
							if f.AtEnd && ok(f) {
								return true
							}
						}
						return false
					}
					for _, b := range blocks {
						if !named(func(f Finding) bool { return f.Kind == "block-bitmap" && f.Block == b }) {
							t.Errorf("e2fsck names block %d on the final disk, check does not", b)
						}
					}
					for _, ino := range inodes {
						if !named(func(f Finding) bool { return uint64(f.Inode) == ino }) {
							t.Errorf("e2fsck names inode %d on the final disk, check does not", ino)
						}
					}
					for _, g := range groups {
						if !named(func(f Finding) bool { return f.Group != nil && uint64(*f.Group) == g }) {
							t.Errorf("e2fsck names group %d on the final disk, check does not", g)
						}
					}
				})
			}
			if !haveE2fsck {
				return
			}
			// The request that leaked each block, by debugfs: the write after which icheck no longer
			// finds an owner, for good. check must name that request (in the blklogwrites log's
			// numbering, which capture read).
			_, findings, err := Run(disk, int64(len(disk)), &sliceLog{recs: recs})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range leakedBlocks(string(text)) {
				want := leakedAt(t, disk, recs, b)
				found := false
				for _, f := range findings {
					if f.Kind == "block-bitmap" && f.Block == b && f.AtEnd {
						found = true
						if f.Seq != want {
							t.Errorf("block %d: check names record %d, debugfs says record %d leaves it unowned", b, f.Seq, want)
						}
					}
				}
				if !found {
					t.Errorf("block %d: no finding", b)
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no capture of a driver bug in fixtures/real (FINAL_FSCK=damaged)")
	}
}

// leakedBlocks are the "-N" entries of e2fsck's block bitmap differences: in use, owned by nothing.
func leakedBlocks(out string) []uint64 {
	var ns []uint64
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "Block bitmap differences:") {
			continue
		}
		for _, f := range strings.Fields(strings.TrimPrefix(line, "Block bitmap differences:")) {
			if strings.HasPrefix(f, "-") {
				b, _, _ := parseE2fsck("Block bitmap differences: " + f)
				ns = append(ns, b...)
			}
		}
	}
	return ns
}

// leakedAt replays the records over the disk and returns the Index of the last write after
// which debugfs icheck finds no owner of block b (and none at any later write).
func leakedAt(t *testing.T, disk scenario.Disk, recs []blklog.Record, b uint64) int64 {
	t.Helper()
	d := scenario.Disk(bytes.Clone(disk))
	p := filepath.Join(t.TempDir(), "disk.img")
	owned := func() bool {
		if err := os.WriteFile(p, d, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("debugfs", "-R", "icheck "+itoa(int(b)), p).Output()
		if err != nil {
			t.Fatalf("debugfs icheck: %v", err)
		}
		return !strings.Contains(string(out), "<block not found>")
	}
	if !owned() {
		t.Fatalf("block %d is owned by nothing in the starting image", b)
	}
	at := int64(-1)
	for i := range recs {
		if recs[i].Type != blklog.TypeWrite {
			continue
		}
		if err := blklog.Apply(&recs[i], d); err != nil {
			t.Fatal(err)
		}
		if owned() {
			at = -1
		} else if at < 0 {
			at = recs[i].Index
		}
	}
	if at < 0 {
		t.Fatalf("block %d is still owned on the final disk", b)
	}
	return at
}

func sameNums(a, b []uint64) bool {
	seen := map[uint64]int{}
	for _, n := range a {
		seen[n]++
	}
	for _, n := range b {
		seen[n]--
	}
	for _, c := range seen {
		if c != 0 {
			return false
		}
	}
	return true
}
