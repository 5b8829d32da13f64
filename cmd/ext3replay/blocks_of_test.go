package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// blocks PATH lists what debugfs stat lists for every file of the test images (block maps with
// IND, DIND and TIND at 1, 2 and 4 KiB; ext4 extent trees of depth 1; sparse files, htree
// directories, slow symlinks): each data block with its logical number, each map block, and
// the total. --inode answers the same as the path.
func TestBlocksOfFileAgainstDebugfs(t *testing.T) {
	ext3fstest.Need(t)
	for _, im := range []ext3fstest.Image{ext3fstest.Standard[0], ext3fstest.Standard[5], ext3fstest.Ext4[0], ext3fstest.Ext4[1]} {
		t.Run(im.Name, func(t *testing.T) {
			img, _ := ext3fstest.Build(t, im)
			fsys := ext3fstest.Open(t, img)
			var paths []string
			inoOf := map[string]uint32{}
			_ = fsys.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
				if strings.Contains(p, "entry-with-a-fairly-long-name") && !strings.HasSuffix(p, "0000") {
					return nil // the htree directory's 500 files are alike; one is enough
				}
				paths = append(paths, p)
				inoOf[p] = ino
				return nil
			})
			out, err := runCLI(t, append([]string{"blocks", "--format", "json", img}, paths...)...)
			if err != nil {
				t.Fatal(err)
			}
			var got []fileBlocks
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(paths) {
				t.Fatalf("%d answers for %d paths", len(got), len(paths))
			}
			var cmds []string
			for _, p := range paths {
				cmds = append(cmds, fmt.Sprintf("stat <%d>", inoOf[p]))
			}
			stats := ext3fstest.Debugfs(t, img, cmds)
			var sawMap, sawRun bool
			for i, fb := range got {
				if fb.Path != paths[i] || fb.Ino != inoOf[paths[i]] {
					t.Fatalf("answer %d is %s (inode %d), want %s (inode %d)", i, fb.Path, fb.Ino, paths[i], inoOf[paths[i]])
				}
				refs := ext3fstest.StatBlocks(t, stats[i])
				var want, have []string
				for _, r := range refs {
					if r.Kind == "data" {
						want = append(want, fmt.Sprintf("data %d:%d", r.Logical, r.Phys))
					} else {
						want = append(want, fmt.Sprintf("map %d", r.Phys))
					}
				}
				for _, r := range fb.Runs {
					switch r.Role {
					case "data", "directory", "symlink":
						for k := uint64(0); k < r.Count; k++ {
							have = append(have, fmt.Sprintf("data %d:%d", r.Logical+k, r.Block+k))
						}
						sawRun = sawRun || r.Count > 1
					default:
						have = append(have, fmt.Sprintf("map %d", r.Block))
						sawMap = true
					}
				}
				sort.Strings(want)
				sort.Strings(have)
				if strings.Join(want, " ") != strings.Join(have, " ") || fb.Blocks != uint64(len(refs)) {
					t.Errorf("%s: %d blocks %v\ndebugfs stat: %d %v", fb.Path, fb.Blocks, have, len(refs), want)
				}
			}
			if !sawMap || !sawRun {
				t.Errorf("no map block (%v) or no run of several blocks (%v) compared", sawMap, sawRun)
			}
			// --inode is the same answer without the path.
			p := "/" + ext3fstest.FragFile
			byIno, err := runCLI(t, "blocks", "--format", "json", img, "--inode", fmt.Sprint(inoOf[p]))
			if err != nil {
				t.Fatal(err)
			}
			var one []fileBlocks
			if err := json.Unmarshal([]byte(byIno), &one); err != nil || len(one) != 1 {
				t.Fatalf("--inode: %v %s", err, byIno)
			}
			for i := range got {
				if got[i].Path == p {
					a, _ := json.Marshal(got[i].Runs)
					b, _ := json.Marshal(one[0].Runs)
					if string(a) != string(b) || one[0].Path != "" {
						t.Errorf("--inode %d: %s, path %s: %s", inoOf[p], b, p, a)
					}
				}
			}
		})
	}
	// Refused: blocks and files mixed, --sectors with files, a missing name.
	img, _ := ext3fstest.Build(t, ext3fstest.Standard[0])
	for _, args := range [][]string{{"blocks", img, "5", "/small.txt"}, {"blocks", "--sectors", img, "/small.txt"},
		{"blocks", img, "/no/such"}, {"blocks", img, "/small.txt/x"}, {"blocks", img, "--inode", "0"}} {
		var ee *exitError
		if _, err := runCLI(t, args...); !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("%v: %v, want exit %d", args, err, exitUsage)
		}
	}
}
