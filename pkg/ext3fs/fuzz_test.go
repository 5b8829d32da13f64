package ext3fs

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Fuzz targets: the decoders must return values or errors, never panic, on any input.

func FuzzParseSuperblock(f *testing.F) {
	f.Add(minimalSuper())
	b := minimalSuper()
	binary.LittleEndian.PutUint32(b[0x60:], Incompat64Bit|IncompatExtents)
	binary.LittleEndian.PutUint16(b[0xFE:], 64)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := ParseSuperblock(b)
		if err != nil {
			return
		}
		// Everything derived from an accepted superblock must be computable.
		_ = sb.GroupCount() + uint32(sb.BlockSize()+sb.InodeSize()+sb.DescSize())
		_ = sb.GDTBlocks() + sb.InodeTableBlocks() + sb.GroupBlocks(sb.GroupCount()-1)
		_ = sb.Features()
		if sb.BlockSize() < 1024 || sb.InodeSize() < 128 || sb.GroupCount() == 0 {
			t.Fatalf("accepted superblock with block size %d, inode size %d, %d groups", sb.BlockSize(), sb.InodeSize(), sb.GroupCount())
		}
	})
}

func FuzzParseInode(f *testing.F) {
	f.Add(make([]byte, 128))
	b := make([]byte, 256)
	binary.LittleEndian.PutUint16(b, ModeLink|0o777)
	binary.LittleEndian.PutUint32(b[4:], 9)
	binary.LittleEndian.PutUint16(b[0x80:], 32)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseInode(b)
		if err != nil {
			return
		}
		_ = in.Type().String()
		_, _ = in.Device()
		if in.IsFastSymlink() && in.Size >= 60 {
			t.Fatalf("fast symlink of %d bytes", in.Size)
		}
	})
}

func FuzzParseDirBlock(f *testing.F) {
	var blk []byte
	blk = append(blk, dirent(2, 12, ".", 2)...)
	blk = append(blk, dirent(2, 12, "..", 2)...)
	blk = append(blk, dirent(12, 1024-24, "file", 1)...)
	f.Add(blk, true)
	f.Add(blk, false)
	f.Fuzz(func(t *testing.T, b []byte, ft bool) {
		ents, err := ParseDirBlock(b, ft)
		for _, e := range ents {
			if e.Inode == 0 || e.Offset < 0 || e.Offset+8+len(e.Name) > len(b) || len(e.Name) != int(e.NameLen) {
				t.Fatalf("bad entry %+v (err %v)", e, err)
			}
		}
		_, _ = ParseDxRoot(b)
		_, _ = ParseDxNode(b)
	})
}

func FuzzParseIndirect(f *testing.F) {
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := ParseIndirect(b)
		if len(p) != len(b)/4 {
			t.Fatalf("%d pointers from %d bytes", len(p), len(b))
		}
		for i, v := range p {
			if v != binary.LittleEndian.Uint32(b[4*i:]) {
				t.Fatal("pointer mismatch")
			}
		}
		_, _, _, _ = ParseExtentNode(b)
	})
}

// FuzzOpenWalk patches a small real image (made with mke2fs when e2fsprogs is installed) with
// fuzzed bytes at a fuzzed offset, then walks everything: Open, Walk, WalkBlocks, ReadDir,
// ReadLink. Fuzzing a patch rather than the whole image keeps inputs small and the fuzzer fast.
func FuzzOpenWalk(f *testing.F) {
	var base []byte
	if _, err := exec.LookPath("mke2fs"); err == nil {
		dir := f.TempDir()
		src := filepath.Join(dir, "src")
		os.MkdirAll(filepath.Join(src, "d"), 0o755)
		os.WriteFile(filepath.Join(src, "d", "f"), bytes.Repeat([]byte("x"), 15000), 0o644)
		os.Symlink("f", filepath.Join(src, "d", "l"))
		os.Symlink(string(bytes.Repeat([]byte("t"), 80)), filepath.Join(src, "slow"))
		img := filepath.Join(dir, "img")
		if exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-N", "16", "-d", src, img, "128K").Run() == nil {
			base, _ = os.ReadFile(img)
		}
	}
	// Superblock, GDT, bitmaps, inode table and directory areas of the 1K image.
	for _, off := range []uint32{1024, 1024 + 0x60, 2048, 2048 + 8, 5 * 1024, 6*1024 + 256, 7*1024 + 0x28, 20 * 1024} {
		f.Add(off, []byte{0xff, 0x00, 0x13, 0x7f})
	}
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		img := append([]byte(nil), base...)
		if len(img) == 0 {
			img = patch
		} else {
			copy(img[int(off)%len(img):], patch)
		}
		fs, err := Open(bytes.NewReader(img))
		if err != nil {
			return
		}
		budget := 100000 // corrupt maps can repeat blocks; bound the work per input
		_ = fs.Walk(func(path string, ino uint32, in *Inode) error {
			if budget--; budget < 0 {
				return ErrStop
			}
			_ = fs.WalkBlocks(in, func(BlockRef) error {
				if budget--; budget < 0 {
					return ErrStop
				}
				return nil
			})
			if in.Type() == TypeSymlink {
				_, _ = fs.ReadLink(in)
			}
			return nil
		})
		for blk := uint64(0); blk < fs.SB.BlocksCount && blk < 200; blk++ {
			fs.InodeTableBlock(blk)
		}
	})
}
