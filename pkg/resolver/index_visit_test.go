package resolver

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// checkVisit runs VisitInodes on fsys and checks it against an independent reading: every inode
// the inode bitmap marks in use and that is allocated is visited exactly once, with the
// attributes ReadInode decodes and the block count and error of its own WalkBlocks; its problems
// are BuildTolerant's (which also reads directory blocks, whose problems may be more).
func checkVisit(t *testing.T, fsys *ext3fs.FS) {
	t.Helper()
	type visited struct {
		in     ext3fs.Inode
		blocks uint64
		err    string
	}
	got := map[uint32]visited{}
	problems, err := VisitInodes(fsys, func(ino uint32, in *ext3fs.Inode, blocks uint64, err error) {
		if _, dup := got[ino]; dup {
			t.Errorf("inode %d visited twice", ino)
		}
		v := visited{in: *in, blocks: blocks}
		if err != nil {
			v.err = err.Error()
		}
		got[ino] = v
	})
	if err != nil {
		t.Fatalf("VisitInodes: %v", err)
	}
	_, _, wantProblems, err := BuildTolerant(fsys)
	if err != nil {
		t.Fatalf("BuildTolerant: %v", err)
	}
	if fmt.Sprint(problems) != fmt.Sprint(wantProblems) {
		// BuildTolerant also reads directory blocks: only their problems may be extra.
		for _, p := range problems {
			found := false
			for _, w := range wantProblems {
				found = found || w.Error() == p.Error()
			}
			if !found {
				t.Errorf("problem %v not reported by BuildTolerant", p)
			}
		}
	}
	sb := fsys.SB
	inUseCount := 0
	bitmap := make([]byte, fsys.BlockSize())
	for g := uint32(0); g < sb.GroupCount(); g++ {
		if err := fsys.ReadBlock(fsys.Groups[g].InodeBitmap, bitmap); err != nil {
			t.Fatal(err)
		}
		uninit := sb.FeatureRoCompat&(ext3fs.RoCompatGDTCsum|ext3fs.RoCompatMetadataCsum) != 0 &&
			fsys.Groups[g].Flags&ext3fs.BGInodeUninit != 0
		for i := uint32(0); i < sb.InodesPerGroup; i++ {
			ino := g*sb.InodesPerGroup + i + 1
			v, ok := got[ino]
			if uninit || bitmap[i/8]&(1<<(i%8)) == 0 {
				if ok {
					t.Errorf("inode %d is free in the bitmap but visited", ino)
				}
				continue
			}
			in, err := fsys.ReadInode(ino)
			if err != nil || !inUse(ino, in) {
				if ok {
					t.Errorf("inode %d is not in use (%v) but visited", ino, err)
				}
				continue
			}
			inUseCount++
			if !ok {
				t.Errorf("inode %d is in use but not visited", ino)
				continue
			}
			if v.in != *in {
				t.Errorf("inode %d: visited %+v, ReadInode %+v", ino, v.in, *in)
			}
			var n uint64
			werr := fsys.WalkBlocks(in, func(ext3fs.BlockRef) error { n++; return nil })
			if n != v.blocks || fmt.Sprint(werr) != fmt.Sprint(errString(v.err)) {
				t.Errorf("inode %d: visited %d blocks (err %q), WalkBlocks %d (err %v)", ino, v.blocks, v.err, n, werr)
			}
		}
	}
	if inUseCount == 0 {
		t.Fatal("no inode in use: nothing was checked")
	}
}

type errString string

func (e errString) String() string {
	if e == "" {
		return "<nil>"
	}
	return string(e)
}

func TestVisitInodes(t *testing.T) {
	for _, im := range ext3fstest.Standard {
		t.Run(im.Name, func(t *testing.T) {
			img, _ := ext3fstest.Build(t, im)
			checkVisit(t, ext3fstest.Open(t, img))
		})
	}
}

// TestVisitInodesBrokenMap: an inode whose block map cannot be walked to its end is visited
// with the blocks before the bad pointer and the walk's error, which is also a problem.
func TestVisitInodesBrokenMap(t *testing.T) {
	img, _ := ext3fstest.Build(t, ext3fstest.Image{Type: "ext3", BlockSize: 1024})
	fsys := ext3fstest.Open(t, img)
	// The first regular file with an indirect block: point its IND at a block past the end.
	var victim uint32
	var direct uint64
	fsys.Walk(func(_ string, ino uint32, in *ext3fs.Inode) error {
		if victim == 0 && in.Type() == ext3fs.TypeRegular && in.Block[ext3fs.NDirBlocks] != 0 {
			victim = ino
			for _, p := range in.Block[:ext3fs.NDirBlocks] {
				if p != 0 {
					direct++
				}
			}
		}
		return nil
	})
	if victim == 0 {
		t.Fatal("no file with an indirect block in the test image")
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	blk, off := fsys.InodeLocation(victim)
	pos := int(blk)*fsys.BlockSize() + off + 0x28 + 4*ext3fs.NDirBlocks
	binary.LittleEndian.PutUint32(raw[pos:], uint32(fsys.SB.BlocksCount)+5)
	if err := os.WriteFile(img, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	fsys = ext3fstest.Open(t, img)
	var blocks uint64
	var werr error
	problems, err := VisitInodes(fsys, func(ino uint32, _ *ext3fs.Inode, n uint64, err error) {
		if ino == victim {
			blocks, werr = n, err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if werr == nil || blocks != direct {
		t.Fatalf("inode %d: visited with %d blocks, err %v; want the %d direct blocks and an error", victim, blocks, werr, direct)
	}
	if len(problems) != 1 || problems[0].Error() != fmt.Sprintf("inode %d: %v", victim, werr) {
		t.Errorf("problems %v, want the walk's error for inode %d", problems, victim)
	}
	checkVisit(t, fsys)
}
