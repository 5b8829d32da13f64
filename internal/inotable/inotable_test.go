package inotable

import (
	"math/rand/v2"
	"testing"
)

// A Table gives what was set, the zero value elsewhere, and lists its pages in inode order.
func TestTable(t *testing.T) {
	var tab Table[int]
	ref := map[uint32]int{}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		ino := uint32(rng.IntN(20000))
		if rng.IntN(100) == 0 {
			ino = uint32(rng.IntN(1 << 24))
		}
		v := rng.IntN(1000) + 1
		tab.Set(ino, v)
		ref[ino] = v
	}
	for ino, v := range ref {
		if got := tab.Get(ino); got != v {
			t.Fatalf("Get(%d) = %d, want %d", ino, got, v)
		}
	}
	if tab.Get(1<<31) != 0 || tab.Get(20001) != ref[20001] {
		t.Fatal("an inode never set has a value")
	}
	*tab.Ref(7) += 5
	if tab.Get(7) != ref[7]+5 {
		t.Fatal("Ref does not point at the value")
	}
	ref[7] += 5
	n, last := 0, int64(-1)
	tab.Pages(func(first uint32, values []int) {
		if int64(first) <= last || first%PageSize != 0 || len(values) != PageSize {
			t.Fatalf("page at %d after %d, %d values", first, last, len(values))
		}
		last = int64(first)
		for i, v := range values {
			if v != 0 {
				n++
				if ref[first+uint32(i)] != v {
					t.Fatalf("page value of %d is %d", first+uint32(i), v)
				}
			}
		}
	})
	if n != len(ref) {
		t.Fatalf("pages hold %d values, %d were set", n, len(ref))
	}
}
