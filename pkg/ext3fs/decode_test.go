package ext3fs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// minimalSuper returns a valid rev-1 superblock: 1K blocks, 8192 blocks, one group.
func minimalSuper() []byte {
	b := make([]byte, SuperblockSize)
	le := binary.LittleEndian
	le.PutUint32(b[0x00:], 2048)
	le.PutUint32(b[0x04:], 8192)
	le.PutUint32(b[0x14:], 1)
	le.PutUint32(b[0x20:], 8192)
	le.PutUint32(b[0x28:], 2048)
	le.PutUint16(b[0x38:], SuperMagic)
	le.PutUint32(b[0x4C:], 1)
	le.PutUint32(b[0x54:], 11)
	le.PutUint16(b[0x58:], 256)
	le.PutUint32(b[0x5C:], CompatHasJournal|CompatDirIndex)
	le.PutUint32(b[0x60:], IncompatFiletype)
	le.PutUint32(b[0x64:], RoCompatSparseSuper|RoCompatLargeFile)
	copy(b[0x78:], "vol")
	return b
}

func wantFormatError(t *testing.T, err error, off int64, substr string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FormatError", err)
	}
	if fe.Offset != off || !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q at offset %d; want offset %d containing %q", err, fe.Offset, off, substr)
	}
}

func TestParseSuperblock(t *testing.T) {
	sb, err := ParseSuperblock(minimalSuper())
	if err != nil {
		t.Fatal(err)
	}
	if sb.BlockSize() != 1024 || sb.GroupCount() != 1 || sb.InodeSize() != 256 || sb.DescSize() != 32 ||
		!sb.HasJournal() || !sb.HasFiletype() || sb.HasExtents() || !sb.HasSparseSuper() || sb.VolumeName != "vol" {
		t.Fatalf("decoded %+v", sb)
	}
	if got := strings.Join(sb.Features(), " "); got != "has_journal dir_index filetype sparse_super large_file" {
		t.Errorf("Features() = %q", got)
	}
	for g, want := range map[uint32]bool{0: true, 1: true, 2: false, 3: true, 5: true, 7: true, 9: true, 15: false, 25: true, 27: true, 49: true, 81: true, 125: true, 343: true, 45: false} {
		if sb.GroupHasSuper(g) != want {
			t.Errorf("GroupHasSuper(%d) = %v", g, !want)
		}
	}

	b := minimalSuper()
	b[0x38] = 0
	_, err = ParseSuperblock(b)
	wantFormatError(t, err, 0x38, "bad magic")

	b = minimalSuper()
	binary.LittleEndian.PutUint32(b[0x60:], IncompatFiletype|IncompatInlineData|0x80000000)
	_, err = ParseSuperblock(b)
	wantFormatError(t, err, 0x60, "inline_data,incompat_0x80000000")
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown incompat error does not wrap ErrUnsupported: %v", err)
	}

	b = minimalSuper()
	binary.LittleEndian.PutUint16(b[0x58:], 100)
	_, err = ParseSuperblock(b)
	wantFormatError(t, err, 0x58, "s_inode_size 100")

	// Revision 0 ignores the dynamic fields entirely.
	b = minimalSuper()
	binary.LittleEndian.PutUint32(b[0x4C:], 0)
	binary.LittleEndian.PutUint16(b[0x58:], 0)
	binary.LittleEndian.PutUint32(b[0x54:], 0)
	sb, err = ParseSuperblock(b)
	if err != nil || sb.InodeSize() != 128 || sb.FirstIno != 11 || sb.HasFiletype() || sb.HasSparseSuper() {
		t.Fatalf("rev 0: %+v, %v", sb, err)
	}
	if !sb.GroupHasSuper(2) {
		t.Error("without sparse_super every group has a superblock copy")
	}

	if _, err := ParseSuperblock(b[:100]); err == nil {
		t.Error("short superblock accepted")
	}

	// ext2fs_open2's geometry checks: the inode count is exactly groups x inodes per group,
	// and the group count fits in 32 bits.
	b = minimalSuper()
	binary.LittleEndian.PutUint32(b[0x00:], 2047)
	_, err = ParseSuperblock(b)
	wantFormatError(t, err, 0x00, "s_inodes_count 2047 is not 1 groups x 2048 inodes")
	b = minimalSuper()
	binary.LittleEndian.PutUint32(b[0x60:], IncompatFiletype|Incompat64Bit)
	binary.LittleEndian.PutUint16(b[0xFE:], 64)
	binary.LittleEndian.PutUint32(b[0x150:], 0x3030_3030) // s_blocks_count_hi
	binary.LittleEndian.PutUint32(b[0x20:], 1)
	_, err = ParseSuperblock(b)
	wantFormatError(t, err, 0x04, "more than 2^32")
}

// A superblock whose counts agree (4 billion groups of one block and one inode each) on a
// device of 64 KiB: OpenWith fails at the descriptors the device does not hold, without
// reserving memory for the groups the superblock claims (it asked for 240 GB at once).
func TestOpenHugeGroupCount(t *testing.T) {
	img := make([]byte, 64<<10)
	b := minimalSuper()
	le := binary.LittleEndian
	le.PutUint32(b[0x04:], 0xFFFF_FFFF) // s_blocks_count
	le.PutUint32(b[0x20:], 1)           // s_blocks_per_group
	le.PutUint32(b[0x28:], 1)           // s_inodes_per_group
	le.PutUint32(b[0x00:], 0xFFFF_FFFE) // s_inodes_count: one per group
	copy(img[SuperblockOffset:], b)
	// The first descriptor block holds 32 valid descriptors: the walk reads on to the next.
	for j := 0; j < 32; j++ {
		d := img[2*1024+32*j:]
		le.PutUint32(d[0x00:], 3)
		le.PutUint32(d[0x04:], 4)
		le.PutUint32(d[0x08:], 5)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	_, err := Open(bytes.NewReader(img))
	if err == nil {
		t.Fatal("a superblock claiming 4 billion groups opened on a 64 KiB device")
	}
	runtime.ReadMemStats(&ms)
	if got := ms.TotalAlloc - before; got > 16<<20 {
		t.Errorf("Open allocated %d bytes before failing", got)
	}
	t.Log(err)
}

func TestParseGroupDesc64(t *testing.T) {
	b := make([]byte, 64)
	le := binary.LittleEndian
	le.PutUint32(b[0x08:], 0x1234)
	le.PutUint32(b[0x28:], 0x2)
	le.PutUint16(b[0x0C:], 7)
	le.PutUint16(b[0x2C:], 1)
	d, err := ParseGroupDesc(b, 64)
	if err != nil || d.InodeTable != 0x2_0000_1234 || d.FreeBlocks != 0x1_0007 {
		t.Fatalf("64-byte descriptor: %+v, %v", d, err)
	}
	d, _ = ParseGroupDesc(b, 32)
	if d.InodeTable != 0x1234 || d.FreeBlocks != 7 {
		t.Fatalf("32-byte descriptor read hi fields: %+v", d)
	}
	if _, err := ParseGroupDesc(b[:40], 64); err == nil {
		t.Error("short 64-byte descriptor accepted")
	}
}

func dirent(ino uint32, recLen int, name string, ft uint8) []byte {
	b := make([]byte, recLen)
	binary.LittleEndian.PutUint32(b, ino)
	binary.LittleEndian.PutUint16(b[4:], uint16(recLen))
	b[6] = uint8(len(name))
	b[7] = ft
	copy(b[8:], name)
	return b
}

func TestParseDirBlock(t *testing.T) {
	var blk []byte
	blk = append(blk, dirent(2, 12, ".", 2)...)
	blk = append(blk, dirent(2, 12, "..", 2)...)
	blk = append(blk, dirent(0, 16, "gone", 1)...) // deleted slot: skipped
	blk = append(blk, dirent(12, 1024-40, "file", 1)...)
	ents, err := ParseDirBlock(blk, true)
	if err != nil || len(ents) != 3 || ents[2].Name != "file" || ents[2].Offset != 40 || ents[2].FileType != 1 {
		t.Fatalf("ParseDirBlock = %+v, %v", ents, err)
	}
	// Without filetype, name_len is 16 bits and the type byte is part of it.
	nf := append([]byte(nil), blk...)
	nf[7], nf[12+7], nf[24+7], nf[40+7] = 0, 0, 0, 0
	ents, err = ParseDirBlock(nf, false)
	if err != nil || len(ents) != 3 || ents[0].FileType != 0 {
		t.Fatalf("no filetype: %+v, %v", ents, err)
	}

	bad := append([]byte(nil), blk...)
	binary.LittleEndian.PutUint16(bad[40+4:], 3)
	_, err = ParseDirBlock(bad, true)
	wantFormatError(t, err, 40, "rec_len 3 < 8")

	bad = append([]byte(nil), blk...)
	binary.LittleEndian.PutUint16(bad[40+4:], 2000)
	_, err = ParseDirBlock(bad, true)
	wantFormatError(t, err, 40, "runs past the end")

	bad = append([]byte(nil), blk...)
	bad[12+6] = 200
	_, err = ParseDirBlock(bad, true)
	wantFormatError(t, err, 12, "name_len 200")
}

func TestParseInode(t *testing.T) {
	b := make([]byte, 256)
	le := binary.LittleEndian
	le.PutUint16(b[0x00:], ModeLink|0o777)
	le.PutUint32(b[0x04:], 9)
	copy(b[0x28:], "small.txt")
	le.PutUint16(b[0x1A:], 1)
	le.PutUint16(b[0x80:], 32)
	in, err := ParseInode(b)
	if err != nil || in.Type() != TypeSymlink || !in.IsFastSymlink() || in.HasBlocks() || in.Perm() != 0o777 {
		t.Fatalf("fast symlink: %+v, %v", in, err)
	}
	le.PutUint32(b[0x04:], 100)
	le.PutUint32(b[0x1C:], 2)
	if in, _ := ParseInode(b); in.IsFastSymlink() || !in.HasBlocks() {
		t.Fatal("100-byte symlink decoded as fast")
	}
	le.PutUint16(b[0x00:], ModeReg|0o644)
	le.PutUint32(b[0x6C:], 1) // i_size_high
	if in, _ := ParseInode(b); in.Size != 1<<32|100 || in.Type() != TypeRegular {
		t.Fatalf("large file size %d", in.Size)
	}
	le.PutUint16(b[0x80:], 200)
	_, err = ParseInode(b)
	wantFormatError(t, err, 0x80, "i_extra_isize 200")
	if _, err := ParseInode(b[:100]); err == nil {
		t.Error("short inode accepted")
	}
}

func TestParseExtentNode(t *testing.T) {
	b := make([]byte, 60)
	le := binary.LittleEndian
	le.PutUint16(b[0:], ExtentMagic)
	le.PutUint16(b[2:], 2)
	le.PutUint16(b[4:], 4)
	le.PutUint32(b[12:], 0)
	le.PutUint16(b[16:], 10)
	le.PutUint32(b[20:], 500)
	le.PutUint32(b[24:], 100)
	le.PutUint16(b[28:], 32768+5) // unwritten
	le.PutUint16(b[30:], 1)       // start_hi
	le.PutUint32(b[32:], 7)
	h, ext, idx, err := ParseExtentNode(b)
	if err != nil || h.Depth != 0 || len(idx) != 0 || len(ext) != 2 {
		t.Fatalf("leaf: %+v %+v %+v %v", h, ext, idx, err)
	}
	if ext[0] != (Extent{Block: 0, Len: 10, Start: 500}) || ext[1] != (Extent{Block: 100, Len: 5, Start: 1<<32 | 7, Unwritten: true}) {
		t.Fatalf("extents %+v", ext)
	}
	le.PutUint16(b[2:], 5)
	_, _, _, err = ParseExtentNode(b)
	wantFormatError(t, err, 2, "eh_entries 5 > eh_max 4")
	le.PutUint16(b[0:], 0x1234)
	_, _, _, err = ParseExtentNode(b)
	wantFormatError(t, err, 0, "bad magic")
}

func TestParseDx(t *testing.T) {
	b := make([]byte, 1024)
	copy(b, dirent(2, 12, ".", 2))
	copy(b[12:], dirent(2, 1012, "..", 2))
	b[0x1C], b[0x1D] = 1, 8
	le := binary.LittleEndian
	le.PutUint16(b[0x20:], 124)
	le.PutUint16(b[0x22:], 2)
	le.PutUint32(b[0x24:], 1)
	le.PutUint32(b[0x28:], 0x0f30acea)
	le.PutUint32(b[0x2C:], 2)
	r, err := ParseDxRoot(b)
	if err != nil || r.Count != 2 || r.Entries[1] != (DxEntry{0x0f30acea, 2}) || r.Entries[0].Block != 1 {
		t.Fatalf("dx_root %+v %v", r, err)
	}
	// large_dir allows a third index level; more is never valid.
	b[0x1E] = 3
	if r, err := ParseDxRoot(b); err != nil || r.IndirectLevels != 3 {
		t.Fatalf("indirect_levels 3: %+v %v", r, err)
	}
	b[0x1E] = 4
	_, err = ParseDxRoot(b)
	wantFormatError(t, err, 0x1E, "indirect_levels 4 > 3")
	b[0x1E] = 0
	if got := (&Superblock{}).MaxHtreeLevels(); got != 2 {
		t.Errorf("MaxHtreeLevels without large_dir = %d", got)
	}
	if got := (&Superblock{FeatureIncompat: IncompatLargeDir}).MaxHtreeLevels(); got != 3 {
		t.Errorf("MaxHtreeLevels with large_dir = %d", got)
	}
	le.PutUint16(b[0x22:], 200)
	_, err = ParseDxRoot(b)
	wantFormatError(t, err, 0x22, "count 200")

	n := make([]byte, 1024)
	le.PutUint16(n[4:], 1024)
	le.PutUint16(n[8:], 127)
	le.PutUint16(n[10:], 1)
	le.PutUint32(n[12:], 3)
	node, err := ParseDxNode(n)
	if err != nil || len(node.Entries) != 1 || node.Entries[0].Block != 3 {
		t.Fatalf("dx_node %+v %v", node, err)
	}
	if ents, err := ParseDirBlock(n, true); err != nil || len(ents) != 0 {
		t.Fatalf("dx_node as dir block: %v %v", ents, err)
	}
}
