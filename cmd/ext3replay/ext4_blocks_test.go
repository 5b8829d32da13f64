package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// TestBlocksExt4AgainstDebugfs runs `blocks` over every block of each ext4 test image (mkfs.ext4
// defaults on 4K and 1K blocks, orphan_file and large_dir, meta_bg with flex_bg, gdt_csum) and
// compares each answer with debugfs: the owning inode with icheck, allocated or free with testb,
// the paths with ncheck, and the logical block of every data block and the set of extent tree
// blocks with stat. inspect's per-file block counts are checked against stat's as well.
func TestBlocksExt4AgainstDebugfs(t *testing.T) {
	ext3fstest.Need(t)
	for _, im := range ext3fstest.Ext4 {
		t.Run(im.Name, func(t *testing.T) {
			img, _ := ext3fstest.Build(t, im)
			fsys := ext3fstest.Open(t, img)
			sb := fsys.SB
			first := uint64(sb.FirstDataBlock)
			out, err := runCLI(t, "blocks", "--format", "json", img, fmt.Sprintf("%d-%d", first, sb.BlocksCount-1))
			if err != nil {
				t.Fatal(err)
			}
			var infos []blockInfo
			if err := json.Unmarshal([]byte(out), &infos); err != nil {
				t.Fatal(err)
			}
			var all []uint64
			for b := first; b < sb.BlocksCount; b++ {
				all = append(all, b)
			}
			icheck := ext3fstest.Icheck(t, img, all)
			inUse := ext3fstest.InUse(t, img, max(first, 1), sb.BlocksCount-max(first, 1))
			inUse[0] = true

			// Reference per inode from stat: logical of each data block, and the extent blocks.
			inoSet := map[uint32]bool{}
			for _, ino := range icheck {
				if ino != 0 {
					inoSet[ino] = true
				}
			}
			var inos []uint32
			for ino := range inoSet {
				inos = append(inos, ino)
			}
			sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
			var cmds []string
			for _, ino := range inos {
				cmds = append(cmds, fmt.Sprintf("stat <%d>", ino))
			}
			stats := ext3fstest.Debugfs(t, img, cmds)
			ref := map[uint64]ext3fstest.Ref{}
			statCount := map[uint32]int{}
			for i, ino := range inos {
				for _, r := range ext3fstest.StatBlocks(t, stats[i]) {
					ref[r.Phys] = r
					statCount[ino]++
				}
			}
			paths := ext3fstest.Ncheck(t, img, inos)

			roles := map[string]int{}
			bad := 0
			for _, bi := range infos {
				roles[bi.Role]++
				b := bi.Block
				if bi.Ino != icheck[b] {
					t.Errorf("block %d: blocks says %s of inode %d, icheck says inode %d", b, bi.Role, bi.Ino, icheck[b])
					bad++
				}
				if used := inUse[b]; used != (bi.Role != "free") {
					t.Errorf("block %d: blocks says %s, testb says in use = %v", b, bi.Role, used)
					bad++
				}
				if r, ok := ref[b]; ok {
					switch {
					case r.Kind == "extent" && bi.Role != "extent node":
						t.Errorf("block %d: stat lists an extent tree block, blocks says %s", b, bi.Role)
						bad++
					case r.Kind == "data" && bi.Role != "reserved gdt" && (bi.Logical == nil || int64(*bi.Logical) != r.Logical):
						t.Errorf("block %d: stat says logical %d, blocks says %v", b, r.Logical, bi.Logical)
						bad++
					}
				}
				if bi.Ino != 0 {
					want := paths[bi.Ino]
					if bi.Ino == ext3fs.RootIno {
						want = []string{"/"} // ncheck does not name the root
					}
					sort.Strings(want)
					got := append([]string(nil), bi.Paths...)
					sort.Strings(got)
					if strings.Join(got, ",") != strings.Join(want, ",") {
						t.Errorf("block %d of inode %d: paths %v, ncheck %v", b, bi.Ino, got, want)
						bad++
					}
				}
				if bad > 20 {
					t.Fatal("too many differences")
				}
			}
			for _, r := range []string{"extent node", "directory", "data", "inode table", "block bitmap", "inode bitmap", "journal", "free"} {
				if roles[r] == 0 {
					t.Errorf("no %q block seen (roles %v)", r, roles)
				}
			}

			// inspect: every file's block count is what stat lists for it.
			out, err = runCLI(t, "inspect", "--format", "json", img)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Kind  string `json:"kind"`
				Files []struct {
					Path   string `json:"path"`
					Ino    uint32 `json:"ino"`
					Blocks uint64 `json:"blocks"`
				} `json:"files"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Kind != "ext4" {
				t.Errorf("inspect kind %q, want ext4", doc.Kind)
			}
			for _, f := range doc.Files {
				if f.Blocks != uint64(statCount[f.Ino]) {
					t.Errorf("inspect %s: %d blocks, debugfs stat lists %d", f.Path, f.Blocks, statCount[f.Ino])
				}
			}
			// The extent tree of the fragmented file: stat's ETB blocks, reported as extent blocks.
			in, err := fsys.ReadInode(mustIno(t, fsys, "/"+ext3fstest.FragFile))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			fsys.WalkBlocks(in, func(r ext3fs.BlockRef) error {
				if r.Kind == ext3fs.BlockExtent {
					n++
				}
				return nil
			})
			if n == 0 {
				t.Errorf("%s has no extent tree block", ext3fstest.FragFile)
			}
		})
	}
}

func mustIno(t *testing.T, fsys *ext3fs.FS, path string) uint32 {
	t.Helper()
	var ino uint32
	fsys.Walk(func(p string, i uint32, _ *ext3fs.Inode) error {
		if p == path {
			ino = i
			return ext3fs.ErrStop
		}
		return nil
	})
	if ino == 0 {
		t.Fatalf("%s not found", path)
	}
	return ino
}
