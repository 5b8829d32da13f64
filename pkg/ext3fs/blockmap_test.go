package ext3fs_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// walkRoot walks the root inode of image b and returns the blocks reported and the error.
func walkRoot(t *testing.T, b []byte) (int, error) {
	t.Helper()
	fsys, err := ext3fs.Open(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	root, err := fsys.ReadInode(ext3fs.RootIno)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	start := time.Now()
	err = fsys.WalkBlocks(root, func(ext3fs.BlockRef) error { n++; return nil })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("walk took %v", d)
	}
	return n, err
}

func wantWalkError(t *testing.T, err error, off int64, substr string) {
	t.Helper()
	var fe *ext3fs.FormatError
	if !errors.As(err, &fe) || fe.Offset != off || !strings.Contains(err.Error(), substr) {
		t.Fatalf("err = %v, want a FormatError at byte %d containing %q", err, off, substr)
	}
}

// The image: a TIND pointer to a block full of its own number. Unchecked, the walk
// reported 256^3 blocks (1,074,792,462 with 4 KiB blocks); the block reached again as a DIND
// block is a loop, reported at the pointer that closes it.
func TestWalkBlocksSelfMappedTInd(t *testing.T) {
	b, x := ext3fstest.SelfMappedRoot(t)
	n, err := walkRoot(t, b)
	wantWalkError(t, err, int64(x)*1024, "already part of this inode's map")
	if n > 3 {
		t.Fatalf("%d blocks reported before the loop was seen", n)
	}
}

// Map blocks all distinct, but far more data pointers than the file system has blocks: the
// count bound stops the walk at the pointer that exceeds it.
func TestWalkBlocksMoreThanTheFileSystem(t *testing.T) {
	b, x := ext3fstest.SelfMappedRoot(t)
	fsys, _ := ext3fs.Open(bytes.NewReader(b))
	le := binary.LittleEndian
	bs := fsys.BlockSize()
	// x becomes a DIND block pointing at 256 distinct IND blocks (500..755), each mapping data
	// block 900 256 times: 65,536 data pointers in a 1,024-block file system.
	blk, off := fsys.InodeLocation(ext3fs.RootIno)
	ib := int(blk)*bs + off + 0x28
	le.PutUint32(b[ib+4*ext3fs.TIndBlock:], 0)
	le.PutUint32(b[ib+4*ext3fs.DIndBlock:], x)
	for i := 0; i < bs/4; i++ {
		le.PutUint32(b[int(x)*bs+4*i:], uint32(500+i))
		for j := 0; j < bs/4; j++ {
			le.PutUint32(b[(500+i)*bs+4*j:], 900)
		}
	}
	n, err := walkRoot(t, b)
	limit := int(fsys.SB.BlocksCount - uint64(fsys.SB.FirstDataBlock))
	if n != limit {
		t.Fatalf("%d blocks reported, want the limit %d", n, limit)
	}
	if err == nil || !strings.Contains(err.Error(), "maps more than") {
		t.Fatalf("err = %v", err)
	}
	var fe *ext3fs.FormatError
	if !errors.As(err, &fe) || fe.Offset < 500*int64(bs) || fe.Offset >= 756*int64(bs) {
		t.Fatalf("error offset not inside an IND block: %v", err)
	}
}

// An extent index whose entries all name the same leaf: the second visit is refused.
func TestWalkBlocksExtentCrossLink(t *testing.T) {
	b, x := ext3fstest.SelfMappedRoot(t)
	fsys, _ := ext3fs.Open(bytes.NewReader(b))
	le := binary.LittleEndian
	bs := fsys.BlockSize()
	blk, off := fsys.InodeLocation(ext3fs.RootIno)
	ino := int(blk)*bs + off
	le.PutUint32(b[ino+0x20:], le.Uint32(b[ino+0x20:])|ext3fs.InodeExtentsFl)
	// Root in i_block: depth 1, four index entries all pointing at leaf x.
	root := b[ino+0x28 : ino+0x28+60]
	clear(root)
	le.PutUint16(root[0:], ext3fs.ExtentMagic)
	le.PutUint16(root[2:], 4)
	le.PutUint16(root[4:], 4)
	le.PutUint16(root[6:], 1)
	for i := 0; i < 4; i++ {
		le.PutUint32(root[12+12*i:], uint32(i))
		le.PutUint32(root[12+12*i+4:], x)
	}
	// Leaf x: one extent of one block.
	leaf := b[int(x)*bs : int(x+1)*bs]
	clear(leaf)
	le.PutUint16(leaf[0:], ext3fs.ExtentMagic)
	le.PutUint16(leaf[2:], 1)
	le.PutUint16(leaf[4:], uint16((bs-12)/12))
	le.PutUint16(leaf[16:], 1)
	le.PutUint32(leaf[20:], 900)
	n, err := walkRoot(t, b)
	wantWalkError(t, err, int64(ino)+0x28+12+12, "already part of this inode's map")
	if n != 2 {
		t.Fatalf("%d blocks before the error, want 2 (the leaf and its block)", n)
	}
}

// FuzzWalkBlocks gives the root inode of a small image a fuzzed i_block (indirect map or extent
// tree) and fuzzed contents for the two free blocks 1000 and 1001 it may point at. Whatever the
// bytes, the walk ends quickly, reports at most as many blocks as the file system has, and fails
// only with a *FormatError.
func FuzzWalkBlocks(f *testing.F) {
	le := binary.LittleEndian
	self := make([]byte, 1024)
	for i := 0; i < 1024; i += 4 {
		le.PutUint32(self[i:], 1000)
	}
	iblock := func(ptrs map[int]uint32) []byte {
		b := make([]byte, 60)
		for i, p := range ptrs {
			le.PutUint32(b[4*i:], p)
		}
		return b
	}
	f.Add(iblock(map[int]uint32{ext3fs.TIndBlock: 1000}), false, self, self)                        // the loop
	f.Add(iblock(map[int]uint32{ext3fs.DIndBlock: 1000}), false, self, self)                        // a shorter one
	f.Add(iblock(map[int]uint32{ext3fs.IndBlock: 1000, ext3fs.DIndBlock: 1001}), false, self, self) // cross-linked levels
	ext := make([]byte, 60)
	le.PutUint16(ext[0:], ext3fs.ExtentMagic)
	le.PutUint16(ext[2:], 2)
	le.PutUint16(ext[4:], 4)
	le.PutUint16(ext[6:], 1)
	le.PutUint32(ext[12+4:], 1000)
	le.PutUint32(ext[24+4:], 1000)
	f.Add(ext, true, self, self) // an extent leaf named twice
	ext2 := bytes.Clone(ext)
	le.PutUint16(ext2[6:], 5)
	f.Add(ext2, true, ext2, ext2) // a node pointing at itself
	base, _ := ext3fstest.SelfMappedRoot(f)
	f.Fuzz(func(t *testing.T, ib []byte, extents bool, a, b []byte) {
		img := bytes.Clone(base)
		fsys, err := ext3fs.Open(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		blk, off := fsys.InodeLocation(ext3fs.RootIno)
		ino := int(blk)*1024 + off
		copy(img[ino+0x28:ino+0x28+60], ib)
		fl := le.Uint32(img[ino+0x20:]) &^ ext3fs.InodeExtentsFl
		if extents {
			fl |= ext3fs.InodeExtentsFl
		}
		le.PutUint32(img[ino+0x20:], fl)
		copy(img[1000*1024:1001*1024], a)
		copy(img[1001*1024:1002*1024], b)
		fsys, err = ext3fs.Open(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		root, err := fsys.ReadInode(ext3fs.RootIno)
		if err != nil {
			return
		}
		n := uint64(0)
		err = fsys.WalkBlocks(root, func(ext3fs.BlockRef) error { n++; return nil })
		if limit := fsys.SB.BlocksCount - uint64(fsys.SB.FirstDataBlock); n > limit {
			t.Fatalf("%d blocks reported, the file system has %d", n, limit)
		}
		var fe *ext3fs.FormatError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("error is not a *FormatError: %v", err)
		}
	})
}
