package ext3fstest

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// SelfMappedRoot makes the hostile image of issue 17: an empty 1 MiB ext2 file system (1 KiB
// blocks) whose root directory gets a triple-indirect pointer to a free block filled with its
// own number. Read naively, that one block maps 256^3 blocks through itself. It returns the
// image bytes and the self-mapping block.
func SelfMappedRoot(tb testing.TB) ([]byte, uint32) {
	tb.Helper()
	Need(tb)
	img := filepath.Join(tb.TempDir(), "img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", img, "1M").CombinedOutput(); err != nil {
		tb.Fatalf("mke2fs: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		tb.Fatal(err)
	}
	fsys, err := ext3fs.Open(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	const x = 1000 // free in an empty 1 MiB file system
	blk, off := fsys.InodeLocation(ext3fs.RootIno)
	ib := int(blk)*fsys.BlockSize() + off + 0x28
	binary.LittleEndian.PutUint32(b[ib+4*ext3fs.TIndBlock:], x)
	for i := 0; i < fsys.BlockSize(); i += 4 {
		binary.LittleEndian.PutUint32(b[x*fsys.BlockSize()+i:], x)
	}
	return b, x
}
