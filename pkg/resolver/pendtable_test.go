package resolver

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// pendTable behaves as the map it replaced: the same entries, count and (sorted) inode list
// through random sets and removals, including removals of inodes never set.
func TestPendTable(t *testing.T) {
	var tab pendTable
	ref := map[uint32]*inoPend{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		ino := uint32(rng.IntN(5000))
		if i%50 == 0 {
			ino = uint32(rng.IntN(1 << 22)) // far pages
		}
		if rng.IntN(3) == 0 {
			tab.set(ino, nil)
			delete(ref, ino)
		} else {
			e := &inoPend{}
			tab.set(ino, e)
			ref[ino] = e
		}
		if got := tab.get(ino); got != ref[ino] {
			t.Fatalf("step %d: get(%d) = %p, want %p", i, ino, got, ref[ino])
		}
	}
	if tab.len() != len(ref) {
		t.Fatalf("len %d, want %d", tab.len(), len(ref))
	}
	want := make([]uint32, 0, len(ref))
	for ino := range ref {
		want = append(want, ino)
	}
	slices.Sort(want)
	if got := tab.inos(nil); !slices.Equal(got, want) {
		t.Fatalf("inos: %d inodes, want %d (or out of order)", len(got), len(want))
	}
	if tab.get(1<<31) != nil {
		t.Fatal("an inode past every page has an entry")
	}
}
