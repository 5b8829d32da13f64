package ext3fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// replayCapture writes the final disk of a committed capture (its blklogwrites log replayed onto
// its starting image) to a temporary file.
func replayCapture(t *testing.T, dir string) string {
	t.Helper()
	disk, err := scenario.FinalDisk(dir, "writes.lwlog.zst")
	if err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(t.TempDir(), "final.img")
	if err := os.WriteFile(final, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	return final
}

// TestExt4Captures checks the decoders on what real ext4 writers left on disk: the final disk of
// every committed ext4 capture that ended with an unmount (Linux 6.1 and 6.12, U-Boot). Every
// metadata checksum verifies (metadata_csum images), and every inode's block list, extent tree
// blocks included, is the one debugfs stat lists.
func TestExt4Captures(t *testing.T) {
	ext3fstest.Need(t)
	if testing.Short() {
		t.Skip("replays every ext4 capture")
	}
	dirs, _ := filepath.Glob("../../fixtures/real/*")
	n := 0
	for _, dir := range dirs {
		env, err := scenario.Env(dir)
		if err != nil {
			t.Fatal(err)
		}
		// A partitioned disk's file systems are not at byte 0 (pkg/check and internal/accuracy
		// check its partitions).
		if env["FS_TYPE"] != "ext4" || env["CRASH"] == "1" || env["PART_TABLE"] != "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "writes.lwlog.zst")); err != nil {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			final := replayCapture(t, dir)
			fsys := ext3fstest.Open(t, final)
			if fsys.SB.HasMetadataCsum() {
				kinds := map[string]int{}
				if err := fsys.Checksums(func(c ext3fs.Checksum) error {
					if !c.OK() {
						t.Errorf("%v", c.Err())
					}
					kinds[csumKind(c.Struct)]++
					return nil
				}); err != nil {
					t.Fatalf("Checksums: %v", err)
				}
				t.Logf("checksums: %v", kinds)
			}
			inodes := map[uint32]*ext3fs.Inode{}
			if err := fsys.Walk(func(_ string, ino uint32, in *ext3fs.Inode) error {
				inodes[ino] = in
				return nil
			}); err != nil {
				t.Fatalf("Walk: %v", err)
			}
			special := []uint32{ext3fs.ResizeIno, fsys.SB.JournalInum}
			if fsys.SB.OrphanFileInum != 0 {
				special = append(special, fsys.SB.OrphanFileInum)
			}
			for _, ino := range special {
				if in, err := fsys.ReadInode(ino); err == nil && in.Mode != 0 {
					inodes[ino] = in
				}
			}
			var inos []uint32
			for ino := range inodes {
				inos = append(inos, ino)
			}
			sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
			var cmds []string
			for _, ino := range inos {
				cmds = append(cmds, fmt.Sprintf("stat <%d>", ino))
			}
			outs := ext3fstest.Debugfs(t, final, cmds)
			extentBlocks := 0
			for i, ino := range inos {
				want := ext3fstest.StatBlocks(t, outs[i])
				var got []ext3fstest.Ref
				if err := fsys.WalkBlocks(inodes[ino], func(r ext3fs.BlockRef) error {
					l := int64(r.Logical)
					if r.Kind != ext3fs.BlockData {
						l = -1
					}
					if r.Kind == ext3fs.BlockExtent {
						extentBlocks++
					}
					got = append(got, ext3fstest.Ref{Kind: r.Kind.String(), Logical: l, Phys: r.Phys})
					return nil
				}); err != nil {
					t.Errorf("inode %d: WalkBlocks: %v", ino, err)
					continue
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("inode %d: WalkBlocks differs from debugfs stat:\n got %v\nwant %v", ino, got, want)
				}
			}
			// The extents scenario keeps a file written into single-block holes: depth 1, several leaves.
			if filepath.Base(dir) == "extents-ext4-1k" && extentBlocks < 2 {
				t.Errorf("%d extent tree blocks on the final disk, want a tree with several leaves", extentBlocks)
			}
			t.Logf("%d inodes, %d extent tree blocks, block lists as debugfs stat", len(inos), extentBlocks)
		})
	}
	if n == 0 {
		t.Skip("no ext4 captures")
	}
}
