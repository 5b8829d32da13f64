package ext3fs_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// emptyImage makes an empty ext2 image with mke2fs and opens it; tests patch the bytes.
func emptyImage(t *testing.T, blockSize, size string) ([]byte, *ext3fs.FS) {
	t.Helper()
	ext3fstest.Need(t)
	img := filepath.Join(t.TempDir(), "img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", blockSize, img, size).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext3fs.Open(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return b, fsys
}

// A root inode that is not a directory is reported at the root inode's device offset (it was
// reported at byte 0, which is never an inode).
func TestWalkRootNotDirectory(t *testing.T) {
	b, fsys := emptyImage(t, "1024", "1M")
	blk, off := fsys.InodeLocation(ext3fs.RootIno)
	pos := int64(blk)*int64(fsys.BlockSize()) + int64(off)
	for _, c := range []struct {
		mode uint16
		want string
	}{{0x81a4, "root inode is a file, not a directory"}, {0x01a4, "root inode has no valid type (mode 0644), not a directory"}} {
		b[pos], b[pos+1] = byte(c.mode), byte(c.mode>>8)
		fsys, err := ext3fs.Open(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		err = fsys.Walk(func(string, uint32, *ext3fs.Inode) error { return nil })
		var fe *ext3fs.FormatError
		if !errors.As(err, &fe) || fe.Offset != pos || !strings.Contains(err.Error(), c.want) {
			t.Errorf("mode %#o: err = %v, want %q at byte %d", c.mode, err, c.want, pos)
		}
	}
}

// A zeroed group descriptor (bitmaps and inode table at block 0, or at the superblock's block 1
// on 1 KiB blocks) is refused at Open, naming the descriptor.
func TestOpenDescriptorOnSuperblock(t *testing.T) {
	ext3fstest.Need(t)
	for _, bs := range []string{"1024", "4096"} {
		b, _ := emptyImage(t, bs, "4M")
		gdt := 4096
		if bs == "1024" {
			gdt = 2048
		}
		clear(b[gdt : gdt+32])
		_, err := ext3fs.Open(bytes.NewReader(b))
		var fe *ext3fs.FormatError
		if !errors.As(err, &fe) || fe.Offset != int64(gdt) || !strings.Contains(err.Error(), "group descriptor 0") {
			t.Errorf("%s-byte blocks: err = %v, want group descriptor 0 at byte %d refused", bs, err, gdt)
		}
	}
}

// A bad block pointer in an inode read from the device is reported at its device offset, as
// FormatError documents for FS methods (it was the offset inside the inode).
func TestWalkBlocksPointerOffset(t *testing.T) {
	b, fsys := emptyImage(t, "1024", "1M")
	blk, off := fsys.InodeLocation(ext3fs.RootIno)
	ptr := int64(blk)*int64(fsys.BlockSize()) + int64(off) + 0x28 // i_block[0]
	b[ptr+3] = 0x7f
	fsys, err := ext3fs.Open(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	root, err := fsys.ReadInode(ext3fs.RootIno)
	if err != nil {
		t.Fatal(err)
	}
	err = fsys.WalkBlocks(root, func(ext3fs.BlockRef) error { return nil })
	var fe *ext3fs.FormatError
	if !errors.As(err, &fe) || fe.Offset != ptr {
		t.Fatalf("err = %v, want i_block[0] at byte %d", err, ptr)
	}
}
