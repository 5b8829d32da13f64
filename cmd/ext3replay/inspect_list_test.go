package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// Every inspect the tests run lists the files both ways (through the index build and by walking
// the tree) and fails unless the listings agree: the hostile and --keep-going tests check the
// indexed listing too.
func init() { inspectCrossCheck = true }

// walkOnly lists files the way inspect did before the index build was reused.
func walkOnly(fsys *ext3fs.FS, keepGoing bool, prog *progress) (inspectListing, error) {
	return listFilesWalk(fsys, keepGoing, prog), nil
}

// inspectBothWays runs inspect with args through the indexed listing and through the tree walk
// alone and fails unless stdout, stderr and the error (exit status) are byte for byte the same.
func inspectBothWays(t *testing.T, args ...string) {
	t.Helper()
	run := func() (string, string, string) {
		var out, stderr bytes.Buffer
		err := runArgs(&out, &stderr, append([]string{"inspect"}, args...)...)
		code := exitCode(err, &stderr) // prints the error as main does
		return out.String(), stderr.String(), fmt.Sprint(code)
	}
	out, stderr, status := run()
	listInspectFiles = walkOnly
	defer func() { listInspectFiles = listFiles }()
	wout, wstderr, wstatus := run()
	if out != wout || stderr != wstderr || status != wstatus {
		t.Fatalf("inspect %q: the indexed listing's output differs from the tree walk's:\nstatus %s / %s\nstderr %q / %q\nstdout (%d / %d bytes) equal: %v",
			args, status, wstatus, stderr, wstderr, len(out), len(wout), out == wout)
	}
	if status == "0" && out == "" {
		t.Fatalf("inspect %q: no output", args)
	}
}

// checkIndexedListing lists fsys both ways, with and without --keep-going, and requires the
// indexed listing to have answered itself (no fallback to the walk) when wantIndexed.
func checkIndexedListing(t *testing.T, fsys *ext3fs.FS, wantIndexed bool) {
	t.Helper()
	for _, kg := range []bool{false, true} {
		l, ok := listFilesIndexed(fsys, kg, nil)
		if !ok {
			if wantIndexed {
				t.Errorf("keep-going %v: the indexed listing gave way to the walk", kg)
			}
			continue
		}
		if d := diffListings(l, listFilesWalk(fsys, kg, nil)); d != "" {
			t.Errorf("keep-going %v: %s", kg, d)
		}
		if len(l.files) == 0 {
			t.Errorf("keep-going %v: nothing listed", kg)
		}
	}
}

// TestInspectIndexedOnFixtures: on every committed real image (each file system of the
// partitioned ones), the indexed listing answers itself and inspect's text and json output,
// with and without --groups, are byte for byte those of the tree walk.
func TestInspectIndexedOnFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses every fixture image")
	}
	imgs, _ := filepath.Glob("../../fixtures/real/*/image.raw.zst")
	if len(imgs) == 0 {
		t.Skip("no fixtures/real/*/image.raw.zst")
	}
	for _, zimg := range imgs {
		t.Run(filepath.Base(filepath.Dir(zimg)), func(t *testing.T) {
			raw := filepath.Join(t.TempDir(), "image.raw")
			img, err := diskimage.Open(zimg)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(raw)
			if err == nil {
				_, err = io.Copy(f, io.NewSectionReader(img, 0, img.Size()))
				f.Close()
			}
			img.Close()
			if err != nil {
				t.Fatal(err)
			}
			parts := []int{0}
			if out, err := runCLI(t, "inspect", "--format", "json", raw); err == nil {
				var pt struct {
					Partitions []struct {
						Number  int    `json:"number"`
						Content string `json:"content"`
					} `json:"partitions"`
				}
				if json.Unmarshal([]byte(out), &pt) == nil && len(pt.Partitions) > 0 {
					parts = nil
					for _, p := range pt.Partitions {
						if p.Content == "ext2" || p.Content == "ext3" || p.Content == "ext4" {
							parts = append(parts, p.Number)
						}
					}
					if len(parts) == 0 {
						t.Fatal("a partitioned fixture with no ext file system")
					}
				}
			}
			t.Logf("file systems (0: the whole image): %v", parts)
			for _, part := range parts {
				dimg, fsys, err := openRecoveredFS(raw, part, false, io.Discard, "inspect")
				if err != nil {
					t.Fatalf("partition %d: %v", part, err)
				}
				checkIndexedListing(t, fsys, true)
				dimg.Close()
				for _, args := range [][]string{{}, {"--format", "json"}, {"--groups"}, {"--groups", "--format", "json"}, {"--keep-going"}} {
					if part != 0 {
						args = append(args, "--partition", fmt.Sprint(part))
					}
					inspectBothWays(t, append(args, raw)...)
				}
			}
		})
	}
}

// TestInspectIndexedStandardImages: the same on the generated image matrix (1K/2K/4K blocks,
// ext2/3/4, revision 0, meta_bg, many groups).
func TestInspectIndexedStandardImages(t *testing.T) {
	for _, im := range ext3fstest.Standard {
		t.Run(im.Name, func(t *testing.T) {
			img, _ := ext3fstest.Build(t, im)
			checkIndexedListing(t, ext3fstest.Open(t, img), true)
			inspectBothWays(t, img)
			inspectBothWays(t, "--format", "json", img)
		})
	}
}

// TestInspectIndexedDamaged: where an image is damaged in a way the indexed listing words itself
// (a file's block map, an entry naming an inode out of range or one not in use, a hard link to
// a damaged file, a symlink whose target cannot be read), it still answers; where it does not (a
// directory block that cannot be decoded) it gives way to the tree walk; either way inspect's
// output, stderr and exit status, with and without --keep-going, are those of the tree walk.
func TestInspectIndexedDamaged(t *testing.T) {
	img0, _ := ext3fstest.Build(t, ext3fstest.Image{Type: "ext3", BlockSize: 1024})
	pristine, err := os.ReadFile(img0)
	if err != nil {
		t.Fatal(err)
	}
	fsys := ext3fstest.Open(t, img0)
	type entry struct {
		path     string
		ino      uint32
		in       *ext3fs.Inode
		dirBlock uint64 // the directory block holding the entry
		off      int    // the entry's offset in it
	}
	var files, dirs, links []entry
	byIno := map[uint32]int{}
	err = fsys.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
		e := entry{path: p, ino: ino, in: in}
		byIno[ino]++
		switch in.Type() {
		case ext3fs.TypeRegular:
			files = append(files, e)
		case ext3fs.TypeDir:
			dirs = append(dirs, e)
		case ext3fs.TypeSymlink:
			links = append(links, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Locate each file's entry in its parent directory.
	for _, d := range dirs {
		_ = fsys.WalkBlocks(d.in, func(r ext3fs.BlockRef) error {
			if r.Kind != ext3fs.BlockData {
				return nil
			}
			ents, _ := ext3fs.ParseDirBlock(pristine[r.Phys*1024:(r.Phys+1)*1024], true)
			for _, e := range ents {
				for i := range files {
					if files[i].path == filepath.Join(d.path, e.Name) {
						files[i].dirBlock, files[i].off = r.Phys, e.Offset
					}
				}
			}
			return nil
		})
	}
	var withInd, hardLinked, slowLink *entry
	for i := range files {
		f := &files[i]
		if withInd == nil && f.in.Block[ext3fs.IndBlock] != 0 && byIno[f.ino] == 1 && f.dirBlock != 0 {
			withInd = f
		}
		if hardLinked == nil && byIno[f.ino] > 1 {
			hardLinked = f
		}
	}
	for i := range links {
		if slowLink == nil && !links[i].in.IsFastSymlink() {
			slowLink = &links[i]
		}
	}
	if withInd == nil || hardLinked == nil || slowLink == nil {
		t.Fatalf("the test image lacks a file with an indirect block (%v), a hard link (%v) or a slow symlink (%v)", withInd, hardLinked, slowLink)
	}
	inodeField := func(b []byte, ino uint32, off int) []byte {
		blk, o := fsys.InodeLocation(ino)
		return b[int(blk)*1024+o+off:]
	}
	cases := []struct {
		name   string
		damage func(b []byte)
		walk   bool // the indexed listing gives way to the tree walk
	}{
		{"broken map", func(b []byte) {
			binary.LittleEndian.PutUint32(inodeField(b, withInd.ino, 0x28+4*ext3fs.IndBlock), uint32(fsys.SB.BlocksCount)+7)
		}, false},
		{"hard-linked broken map", func(b []byte) {
			binary.LittleEndian.PutUint32(inodeField(b, hardLinked.ino, 0x28), uint32(fsys.SB.BlocksCount)+7)
		}, false},
		{"entry out of range", func(b []byte) {
			binary.LittleEndian.PutUint32(b[int(withInd.dirBlock)*1024+withInd.off:], 99999)
		}, false},
		{"entry naming a free inode", func(b []byte) {
			// The last inode of group 0 is free: the walk reads it (all zero) and lists it.
			binary.LittleEndian.PutUint32(b[int(withInd.dirBlock)*1024+withInd.off:], fsys.SB.InodesPerGroup)
		}, false},
		{"inode not in use", func(b []byte) {
			// Links 0 and a deletion time: the index build skips it, the walk lists it.
			binary.LittleEndian.PutUint16(inodeField(b, withInd.ino, 0x1A), 0)
			binary.LittleEndian.PutUint32(inodeField(b, withInd.ino, 0x14), 1700000000)
		}, false},
		{"slow symlink target unreadable", func(b []byte) {
			binary.LittleEndian.PutUint32(inodeField(b, slowLink.ino, 0x04), 5000) // longer than a block
		}, false},
		{"bad directory block", func(b []byte) {
			// The first entry's rec_len in the block holding withInd's entry: ext3fs words it.
			binary.LittleEndian.PutUint16(b[int(withInd.dirBlock)*1024+4:], 3)
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(pristine)
			c.damage(b)
			img := filepath.Join(t.TempDir(), "damaged.img")
			if err := os.WriteFile(img, b, 0o644); err != nil {
				t.Fatal(err)
			}
			fsys := ext3fstest.Open(t, img)
			if _, ok := listFilesIndexed(fsys, true, nil); ok == c.walk {
				t.Errorf("the indexed listing answered: %v, want %v", ok, !c.walk)
			}
			checkIndexedListing(t, fsys, !c.walk)
			for _, args := range [][]string{{}, {"--keep-going"}, {"--keep-going", "--format", "json"}} {
				inspectBothWays(t, append(args, img)...)
			}
		})
	}
}
