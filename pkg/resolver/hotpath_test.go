package resolver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// fixtureResolver is a resolver on the basic-ext3-4k fixture's image, emitting to emit.
func fixtureResolver(t *testing.T, emit func(*ops.Op) error) *Resolver {
	t.Helper()
	img := readZstd(t, "../../fixtures/real/basic-ext3-4k/image.raw.zst")
	r, err := New(bytes.NewReader(img), int64(len(img)), Options{}, emit)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A delete is put at once, with no allocation (an op built on the stack escaped through the
// emit callback: one per deleted file), and the field it goes through keeps no path after.
func TestNsRemovalPutsWithoutAllocating(t *testing.T) {
	var got []ops.Op
	r := fixtureResolver(t, func(op *ops.Op) error { got = append(got, *op); return nil })
	r.now.seq = 7
	r.nsRemoval(ops.Delete, 12, "/d/f")
	if len(got) != 1 || got[0].Op != ops.Delete || got[0].Ino != 12 || got[0].Path != "/d/f" || got[0].Seq != 7 {
		t.Fatalf("emitted %+v, want one delete of /d/f (ino 12, seq 7)", got)
	}
	if r.output.one != (ops.Op{}) {
		t.Errorf("the output still holds %+v after the put", r.output.one)
	}
	r.output.emit = func(*ops.Op) error { return nil }
	if n := testing.AllocsPerRun(100, func() { r.nsRemoval(ops.Unlink, 12, "/d/f") }); n != 0 {
		t.Errorf("nsRemoval of an unlink: %v allocations, want 0", n)
	}
}

// An explained pending entry comes back from pendFor for another inode, emptied: no field,
// name or path of its first inode left, and no allocation for the entry or its first events.
// Slices grown past maxSpareEvents are not kept.
func TestPendingEntriesReused(t *testing.T) {
	r := fixtureResolver(t, func(*ops.Op) error { return nil })
	p := r.pendFor(100)
	p.rems = append(p.rems, nameEv{l: Link{Parent: 2, Name: "x"}, path: "/x", seq: 3})
	p.adds = append(p.adds, nameEv{l: Link{Parent: 2, Name: "y"}})
	p.freed, p.since, p.lastType = true, 5, ext3fs.TypeDir
	rems := p.rems
	r.settled(100, p)
	if r.ns.pend.get(100) != nil {
		t.Fatal("inode 100 still has a pending entry once settled")
	}
	if rems[:1][0] != (nameEv{}) {
		t.Errorf("the settled entry's events still hold %+v", rems[:1][0])
	}
	q := r.pendFor(200)
	if q != p {
		t.Fatal("pendFor made a new entry while an explained one was kept")
	}
	if len(q.adds) != 0 || len(q.rems) != 0 || q.freed || q.since != 0 || q.lastType != 0 {
		t.Errorf("reused entry not empty: %+v", *q)
	}
	if r.ns.pend.get(200) != q {
		t.Error("the reused entry is not inode 200's")
	}
	ev := nameEv{l: Link{Parent: 2, Name: "z"}, path: "/z"}
	if n := testing.AllocsPerRun(100, func() {
		p := r.pendFor(300)
		p.rems = append(p.rems, ev)
		r.settled(300, p)
	}); n != 0 {
		t.Errorf("a pending entry and its first event: %v allocations, want 0", n)
	}

	big := r.pendFor(400)
	for range maxSpareEvents + 1 {
		big.rems = append(big.rems, ev)
	}
	r.settled(400, big)
	if q := r.pendFor(401); q != big || q.rems != nil {
		t.Errorf("an entry with %d events came back with a slice of capacity %d, want none kept", maxSpareEvents+1, cap(q.rems))
	}
}

// parseDents gives what ParseDirBlock gives less "." and "..", in a slice of its own: the next
// call, which reuses the scratch slice, does not change it. A block that does not chain gives
// the error and no entries.
func TestParseDentsOwnSlice(t *testing.T) {
	r := fixtureResolver(t, func(*ops.Op) error { return nil })
	root, err := r.fs.ReadInode(ext3fs.RootIno)
	if err != nil {
		t.Fatal(err)
	}
	var blk uint64
	if err := r.fs.WalkBlocks(root, func(ref ext3fs.BlockRef) error {
		if ref.Kind == ext3fs.BlockData {
			blk = ref.Phys
			return ext3fs.ErrStop
		}
		return nil
	}); err != nil && !errors.Is(err, ext3fs.ErrStop) {
		t.Fatal(err)
	}
	b := make([]byte, r.bs)
	if err := r.fs.ReadBlock(blk, b); err != nil {
		t.Fatal(err)
	}
	es, err := ext3fs.ParseDirBlock(b, r.ft)
	if err != nil {
		t.Fatal(err)
	}
	var want []dent
	for _, e := range es {
		if e.Name != "." && e.Name != ".." {
			want = append(want, dent{e.Name, e.Inode})
		}
	}
	if len(want) == 0 {
		t.Fatal("the root directory of the fixture has no entries")
	}
	got, err := r.parseDents(b)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parseDents = %v, %v; want %v", got, err, want)
	}
	one := make([]byte, r.bs) // a block of one entry: "q" -> inode 99, its rec_len the block
	binary.LittleEndian.PutUint32(one[0:], 99)
	binary.LittleEndian.PutUint16(one[4:], uint16(r.bs))
	one[6] = 1 // name_len (its high byte, or the file type, 0)
	one[8] = 'q'
	if again, err := r.parseDents(one); err != nil || len(again) != 1 || again[0] != (dent{"q", 99}) {
		t.Fatalf("parseDents of a one-entry block = %v, %v", again, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the first result changed with the next call: %v, want %v", got, want)
	}
	bad := bytes.Clone(b)
	bad[4], bad[5] = 3, 0 // the first entry's rec_len below the header size
	if ents, err := r.parseDents(bad); err == nil || ents != nil {
		t.Errorf("parseDents of a broken block = %v, %v; want no entries and an error", ents, err)
	}
}
