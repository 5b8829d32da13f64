package ext3fs

import "testing"

func TestDirTail(t *testing.T) {
	blk := make([]byte, 1024)
	copy(blk, dirent(2, 12, ".", 2))
	copy(blk[12:], dirent(2, 1024-12, "..", 2))
	if _, ok := DirTailOffset(blk); ok {
		t.Fatal("tail found in a block without one")
	}
	copy(blk[12:], dirent(2, 1024-24, "..", 2))
	copy(blk[1024-12:], []byte{0, 0, 0, 0, 12, 0, 0, 0xDE, 1, 2, 3, 4})
	off, ok := DirTailOffset(blk)
	if !ok || off != 1024-12 {
		t.Fatalf("DirTailOffset = %d, %v", off, ok)
	}
	ents, err := ParseDirBlock(blk, true)
	if err != nil || len(ents) != 2 {
		t.Fatalf("ParseDirBlock: %v, %v (the tail is not a name)", ents, err)
	}
	blk[1024-12+7] = 0xDF
	if _, ok := DirTailOffset(blk); ok {
		t.Fatal("tail accepted with file_type 0xDF")
	}
}
