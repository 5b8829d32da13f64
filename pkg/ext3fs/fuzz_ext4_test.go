package ext3fs

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// xattrEntry encodes one xattr entry header and name (value placed by the caller).
func xattrEntry(index uint8, name string, valueOffs uint16, valueSize uint32) []byte {
	b := make([]byte, (16+len(name)+3)&^3)
	b[0], b[1] = uint8(len(name)), index
	binary.LittleEndian.PutUint16(b[2:], valueOffs)
	binary.LittleEndian.PutUint32(b[8:], valueSize)
	copy(b[16:], name)
	return b
}

// inlineInode builds a 256-byte inline-data inode of size bytes with a system.data value.
func inlineInode(size int, value []byte) []byte {
	raw := make([]byte, 256)
	le := binary.LittleEndian
	le.PutUint16(raw, ModeReg|0o644)
	le.PutUint32(raw[4:], uint32(size))
	le.PutUint32(raw[0x20:], InodeInlineDataFl)
	le.PutUint16(raw[0x80:], 32)
	area := raw[160:]
	le.PutUint32(area, XattrMagic)
	e := xattrEntry(XattrIndexSystem, "data", uint16(len(area)-4-len(value)), uint32(len(value)))
	copy(area[4:], e)
	copy(area[len(area)-len(value):], value)
	return raw
}

func FuzzParseXattrs(f *testing.F) {
	f.Add(inlineInode(70, []byte("0123456789")))
	f.Add(inlineInode(20, nil))
	blk := make([]byte, 1024)
	binary.LittleEndian.PutUint32(blk, XattrMagic)
	binary.LittleEndian.PutUint32(blk[8:], 1)
	copy(blk[32:], xattrEntry(1, "big", 1000, 24))
	f.Add(blk)
	f.Fuzz(func(t *testing.T, b []byte) {
		ents, err := ParseInodeXattrs(b)
		for _, e := range ents {
			if e.ValueInum == 0 && (e.ValueStart < 0 || e.ValueStart+len(e.Value) > len(b) || !bytes.Equal(b[e.ValueStart:e.ValueStart+len(e.Value)], e.Value)) {
				t.Fatalf("value of %s not where it says (err %v)", e.FullName(), err)
			}
		}
		_, _, _ = ParseXattrBlock(b)
		if in, err := ParseInode(b); err == nil && in.HasInlineData() {
			if d, err := InlineData(in, b); err == nil && uint64(len(d)) != in.Size {
				t.Fatalf("InlineData gave %d bytes for i_size %d", len(d), in.Size)
			}
		}
		ents2, err := InlineDirEntries(b, true)
		if err == nil && (len(ents2) == 0 || ents2[0].Name != "..") {
			t.Fatalf("inline directory without its .. entry: %+v", ents2)
		}
	})
}

func FuzzChecksums(f *testing.F) {
	sb := &Superblock{FeatureRoCompat: RoCompatMetadataCsum, FeatureIncompat: Incompat64Bit, DescSizeField: 64,
		ClustersPerGroup: 8192, InodesPerGroup: 2048}
	blk := make([]byte, 1024)
	copy(blk, dirent(2, 12, ".", 2))
	copy(blk[12:], dirent(2, 1024-24, "..", 2))
	copy(blk[1024-12:], []byte{0, 0, 0, 0, 12, 0, 0, 0xDE})
	f.Add(blk)
	root := make([]byte, 1024)
	copy(root, dirent(2, 12, ".", 2))
	copy(root[12:], dirent(2, 1024-12, "..", 2))
	root[0x1D] = 8
	binary.LittleEndian.PutUint16(root[0x20:], 123)
	binary.LittleEndian.PutUint16(root[0x22:], 1)
	f.Add(root)
	f.Add(inlineInode(10, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		// inBuf: the stored checksum lies in b (bitmap checksums live in the descriptor).
		for _, c := range []struct {
			fn    func() (Checksum, error)
			inBuf bool
		}{
			{func() (Checksum, error) { return SuperblockChecksum(b) }, true},
			{func() (Checksum, error) { return sb.GroupDescChecksum(3, b) }, true},
			{func() (Checksum, error) { return sb.InodeChecksum(12, b) }, true},
			{func() (Checksum, error) { return sb.ExtentBlockChecksum(12, 1, b) }, true},
			{func() (Checksum, error) { return sb.DirBlockChecksum(12, 1, b) }, true},
			{func() (Checksum, error) { return sb.XattrBlockChecksum(99, b) }, true},
			{func() (Checksum, error) { return sb.OrphanBlockChecksum(12, 1, 500, b) }, true},
			{func() (Checksum, error) { return sb.BlockBitmapChecksum(0, &GroupDesc{}, b) }, false},
			{func() (Checksum, error) { return sb.InodeBitmapChecksum(0, &GroupDesc{}, b) }, false},
		} {
			r, err := c.fn()
			if err != nil {
				continue
			}
			if c.inBuf && (r.Offset < 0 || r.Offset+int64(r.Bits/8) > int64(len(b))) {
				t.Fatalf("%s: checksum offset %d outside %d bytes", r.Struct, r.Offset, len(b))
			}
			_ = r.String()
		}
	})
}

// FuzzOpenWalkExt4 is FuzzOpenWalk on a small mkfs.ext4 image with inline_data and
// metadata_csum: extent trees, inline files and directories, and every checksum.
func FuzzOpenWalkExt4(f *testing.F) {
	var base []byte
	if _, err := exec.LookPath("mke2fs"); err == nil {
		dir := f.TempDir()
		src := filepath.Join(dir, "src")
		os.MkdirAll(filepath.Join(src, "d"), 0o755)
		os.WriteFile(filepath.Join(src, "d", "f"), bytes.Repeat([]byte("x"), 15000), 0o644)
		os.WriteFile(filepath.Join(src, "small"), bytes.Repeat([]byte("y"), 90), 0o644)
		os.Symlink("f", filepath.Join(src, "d", "l"))
		img := filepath.Join(dir, "img")
		if exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-O", "inline_data,^has_journal", "-b", "1024", "-N", "16", "-d", src, img, "256K").Run() == nil {
			base, _ = os.ReadFile(img)
		}
	}
	for _, off := range []uint32{1024, 1024 + 0x64, 2048, 2048 + 0x1E, 5 * 1024, 6*1024 + 256, 7*1024 + 0x28, 7*1024 + 0xA0} {
		f.Add(off, []byte{0xff, 0x00, 0x13, 0x7f})
	}
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		img := append([]byte(nil), base...)
		if len(img) == 0 {
			img = patch
		} else {
			copy(img[int(off)%len(img):], patch)
		}
		fs, err := OpenWith(bytes.NewReader(img), Options{InlineData: true})
		if err != nil {
			return
		}
		budget := 100000
		_ = fs.Walk(func(path string, ino uint32, in *Inode) error {
			if budget--; budget < 0 {
				return ErrStop
			}
			if in.HasInlineData() {
				_, _ = fs.ReadInlineData(in)
			}
			return fs.WalkBlocks(in, func(BlockRef) error {
				if budget--; budget < 0 {
					return ErrStop
				}
				return nil
			})
		})
		_ = fs.Checksums(func(c Checksum) error {
			if budget--; budget < 0 {
				return ErrStop
			}
			return nil
		})
	})
}

func FuzzScanFastCommits(f *testing.F) {
	blk := make([]byte, 1024)
	le := binary.LittleEndian
	le.PutUint16(blk, uint16(FCTagHead))
	le.PutUint16(blk[2:], 8)
	le.PutUint32(blk[8:], 7)
	le.PutUint16(blk[12:], uint16(FCTagCreat))
	le.PutUint16(blk[14:], 10)
	copy(blk[24:], "ab")
	le.PutUint16(blk[26:], uint16(FCTagTail))
	le.PutUint16(blk[28:], uint16(1024-30))
	le.PutUint32(blk[30:], 7)
	le.PutUint32(blk[34:], Crc32c(0, blk[:34]))
	f.Add(blk, uint32(7))
	f.Fuzz(func(t *testing.T, b []byte, tid uint32) {
		var blocks [][]byte
		for len(b) > 0 {
			n := min(len(b), 1024)
			blocks = append(blocks, b[:n])
			b = b[n:]
		}
		s := ScanFastCommits(blocks, tid, 256)
		for _, c := range s.Commits {
			last := c.Records[len(c.Records)-1]
			if last.Tag != FCTagTail || last.TID != tid || c.TID != tid {
				t.Fatalf("commit does not end with a TAIL of tid %d: %+v", tid, last)
			}
		}
	})
}
