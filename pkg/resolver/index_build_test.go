package resolver

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// TestBuildMatchesSimpleScan: the index build (inode tables read in chunks, runs merged in place
// into chunks that share their memory, the names table's pages and runs in huge pages) gives every
// block of every committed fixture image, of the standard test images and of the ext4 matrix the
// owner that the plainest scan gives it: each inode read on its own, its blocks walked and Set in
// the index one by one; and every inode the same set of names as reading each directory on its
// own does.
func TestBuildMatchesSimpleScan(t *testing.T) {
	ext3fstest.Need(t)
	check := func(t *testing.T, fsys *ext3fs.FS) {
		x, names, problems, err := BuildTolerant(fsys)
		if err != nil {
			t.Fatalf("BuildTolerant: %v", err)
		}
		want, wantNames := simpleScan(t, fsys)
		for b := uint64(0); b < fsys.SB.BlocksCount; b++ {
			if got, w := x.Lookup(b), want.Lookup(b); got != w {
				t.Fatalf("block %d: the build says %+v, the simple scan %+v", b, got, w)
			}
		}
		if len(problems) > 0 {
			t.Logf("%d problems: %v", len(problems), problems[0])
		}
		for ino := uint32(1); ino <= fsys.SB.InodesCount; ino++ {
			got, w := linkSet(names.Links(ino)), linkSet(wantNames.Links(ino))
			if !slices.Equal(got, w) {
				t.Fatalf("inode %d: the build names it %v, the directories %v", ino, got, w)
			}
		}
	}
	t.Run("fixtures", func(t *testing.T) {
		for _, zimg := range fixtureImages(t) {
			t.Run(filepath.Base(filepath.Dir(zimg)), func(t *testing.T) {
				img, err := diskimage.Open(zimg)
				if err != nil {
					t.Fatal(err)
				}
				defer img.Close()
				fsys, err := ext3fs.OpenWith(img, openOptions)
				if errors.Is(err, ext3fs.ErrUnsupported) {
					t.Skipf("the replay model does not read this file system yet: %v", err)
				}
				if err != nil {
					t.Fatal(err)
				}
				check(t, fsys)
			})
		}
	})
	for _, im := range append(slices.Clone(ext3fstest.Standard), ext3fstest.Ext4...) {
		t.Run(im.Name, func(t *testing.T) {
			img, _ := ext3fstest.Build(t, im)
			check(t, ext3fstest.Open(t, img))
		})
	}
}

// simpleScan is the index and names built the plainest way: the geometry's runs, then every inode
// in use read on its own (FS.ReadInode) and each block its walk reports Set in the index in turn;
// the names from FS.ReadDir of every directory.
func simpleScan(t *testing.T, fsys *ext3fs.FS) (*Index, *Names) {
	t.Helper()
	sb := fsys.SB
	x := NewIndex(sb.BlocksCount, fsys.BlockSize()/sb.InodeSize())
	geo := &ixBuilder{fs: fsys, x: x}
	geo.geometry()
	for _, r := range geo.runs {
		x.Set(r.start, r.n, r.o)
	}
	names := newNamesSized(0)
	csum := sb.FeatureRoCompat&(ext3fs.RoCompatGDTCsum|ext3fs.RoCompatMetadataCsum) != 0
	bitmap := make([]byte, fsys.BlockSize())
	for g := uint32(0); g < sb.GroupCount(); g++ {
		d := fsys.Groups[g]
		if csum && d.Flags&ext3fs.BGInodeUninit != 0 {
			continue
		}
		if err := fsys.ReadBlock(d.InodeBitmap, bitmap); err != nil {
			t.Fatal(err)
		}
		ipg := sb.InodesPerGroup
		if csum && d.ItableUnused > 0 && d.ItableUnused < ipg {
			ipg -= d.ItableUnused
		}
		for i := uint32(0); i < ipg; i++ {
			if bitmap[i/8]&(1<<(i%8)) == 0 {
				continue
			}
			ino := g*sb.InodesPerGroup + i + 1
			in, err := fsys.ReadInode(ino)
			if err != nil || !inUse(ino, in) {
				continue // the build leaves out what it cannot decode, as a problem
			}
			if in.FileACL != 0 && in.FileACL < sb.BlocksCount {
				x.Set(in.FileACL, 1, Owner{Role: RoleXattr, Ino: ino})
			}
			_ = fsys.WalkBlocks(in, func(r ext3fs.BlockRef) error {
				if ino != ext3fs.ResizeIno || r.Kind == ext3fs.BlockDInd {
					x.Set(r.Phys, 1, Owner{Role: ixRoleFor(fsys, ino, in, r.Kind), Ino: ino, Logical: r.Logical})
				}
				return nil
			})
			if in.Type() != ext3fs.TypeDir {
				continue
			}
			ents, _ := fsys.ReadDir(in) // the entries before a bad one, as the build keeps them
			for _, e := range ents {
				if e.Name != "." && e.Name != ".." {
					names.Add(ino, e.Name, e.Inode)
				}
			}
		}
	}
	return x, names
}

// linkSet is the links as sorted strings (the build adds them in the order of the directory
// blocks on disk, ReadDir in directory order: the sets agree, not the order).
func linkSet(ls []Link) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = fmt.Sprintf("%d/%s", l.Parent, l.Name)
	}
	slices.Sort(out)
	return out
}
