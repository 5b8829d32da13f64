package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// inspect of a disk left by a power cut (run 1's final disk, the starting image of the -run2
// scenarios) lists the tree e2fsck -fy on a copy followed by debugfs `ls -l` lists: every name with
// its inode, permissions and size. With --no-recovery it lists the unrecovered tree, which lacks
// run 1's changes.
func TestInspectRecoveredMatchesE2fsck(t *testing.T) {
	ext3fstest.Need(t)
	for _, sc := range []string{"powercut-ext3-4k-run2", "powercut-ext4-4k-run2"} {
		t.Run(sc, func(t *testing.T) {
			img := unzstdTo(t, filepath.Join("../../fixtures/real", sc, "image.raw.zst"))
			got := inspectTree(t, img)
			raw := inspectTree(t, img, "--no-recovery")

			fixed := filepath.Join(t.TempDir(), "fsck.img")
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fixed, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("e2fsck", "-fy", fixed).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 1) {
				t.Fatalf("e2fsck -fy: %v\n%s", err, out)
			}
			want := debugfsTree(t, fixed)
			if len(want) < 5 {
				t.Fatalf("debugfs lists only %v", want)
			}
			for p, w := range want {
				if got[p] != w {
					t.Errorf("%s: inspect %q, e2fsck+debugfs %q", p, got[p], w)
				}
			}
			for p, g := range got {
				if _, ok := want[p]; !ok {
					t.Errorf("inspect lists %s (%s), e2fsck+debugfs does not", p, g)
				}
			}
			if _, ok := want["/c/a.txt"]; !ok {
				t.Fatal("run 1's /c/a.txt is not in the recovered tree")
			}
			if _, ok := raw["/c/a.txt"]; ok {
				t.Error("--no-recovery lists /c/a.txt: the journal was replayed anyway")
			}

			// blocks: the block debugfs maps /c/a.txt's first byte to belongs to it after recovery, and
			// to nobody in the raw image (run 1 allocated it in the journal only).
			blk := strings.TrimSpace(ext3fstest.Debugfs(t, fixed, []string{"bmap /c/a.txt 0"})[0])
			if _, err := strconv.ParseUint(blk, 10, 64); err != nil {
				t.Fatalf("debugfs bmap: %q", blk)
			}
			bout, err := runCLI(t, "blocks", img, blk)
			if err != nil || !strings.Contains(bout, "/c/a.txt") {
				t.Errorf("blocks %s: %v\n%s", blk, err, bout)
			}
			bout, err = runCLI(t, "blocks", "--no-recovery", img, blk)
			if err != nil || strings.Contains(bout, "/c/a.txt") || !strings.Contains(bout, "free") {
				t.Errorf("blocks --no-recovery %s: %v\n%s", blk, err, bout)
			}
		})
	}
}

func unzstdTo(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(dst, unzstd(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// inspectTree maps every path inspect lists to "ino perm size".
func inspectTree(t *testing.T, img string, extra ...string) map[string]string {
	t.Helper()
	out, err := runCLI(t, append([]string{"inspect", "--format", "json", img}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Files []inspectFile `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, f := range doc.Files {
		if f.Path != "/" {
			m[f.Path] = fmt.Sprintf("%d %s %d", f.Ino, f.Mode, f.Size)
		}
	}
	return m
}

// debugfsTree walks the tree with debugfs `ls -l` and maps each path to "ino perm size".
func debugfsTree(t *testing.T, img string) map[string]string {
	t.Helper()
	m := map[string]string{}
	dirs := []string{"/"}
	for len(dirs) > 0 {
		d := dirs[0]
		dirs = dirs[1:]
		out := ext3fstest.Debugfs(t, img, []string{"ls -l " + d})[0]
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) < 9 || f[len(f)-1] == "." || f[len(f)-1] == ".." {
				continue
			}
			mode, err := strconv.ParseUint(f[1], 8, 32)
			if err != nil {
				t.Fatalf("debugfs line %q: %v", l, err)
			}
			p := strings.TrimSuffix(d, "/") + "/" + f[len(f)-1]
			m[p] = fmt.Sprintf("%s %04o %s", f[0], mode&0o7777, f[5])
			if mode&0o170000 == 0o040000 {
				dirs = append(dirs, p)
			}
		}
	}
	return m
}
