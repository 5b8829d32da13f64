package resolver

import (
	"slices"
	"testing"
)

// slotWrites answers what the map it replaced answered: the map kept an inode written in
// interval n until the flush that began interval n+3, so during interval F it held exactly the
// inodes last written in F-2 or later.
func TestSlotWrites(t *testing.T) {
	var w slotWrites
	if _, ok := w.since(7, -2); ok {
		t.Fatal("an inode never written reads as written")
	}
	w.set(7, 0) // written in the first interval
	w.set(5000, 4)
	for _, c := range []struct {
		ino      uint32
		now      int64
		want     bool
		interval int64
	}{
		{7, 0, true, 0}, {7, 2, true, 0}, {7, 3, false, 0},
		{5000, 4, true, 4}, {5000, 6, true, 4}, {5000, 7, false, 4},
		{6, 0, false, 0}, {4999, 4, false, 0},
	} {
		got, ok := w.since(c.ino, c.now-2)
		if ok != c.want || ok && got != c.interval {
			t.Errorf("inode %d during interval %d: (%d, %v), want (%d, %v)", c.ino, c.now, got, ok, c.interval, c.want)
		}
	}
	w.set(7, 9) // written again: the later interval counts
	if got, ok := w.since(7, 8); !ok || got != 9 {
		t.Errorf("inode 7 rewritten in interval 9: (%d, %v)", got, ok)
	}
}

func TestInoSet(t *testing.T) {
	var s inoSet
	for _, ino := range []uint32{9, 2048, 9, 1, 2048} {
		s.add(ino)
	}
	if s.len() != 3 {
		t.Fatalf("len %d after adding 3 distinct inodes, two twice", s.len())
	}
	got := s.take(nil)
	slices.Sort(got)
	if !slices.Equal(got, []uint32{1, 9, 2048}) {
		t.Fatalf("take: %v", got)
	}
	if s.len() != 0 {
		t.Fatalf("len %d after take", s.len())
	}
	s.add(9) // taken out: a member again
	if got := s.take([]uint32{7}); !slices.Equal(got, []uint32{7, 9}) {
		t.Fatalf("take after re-adding: %v", got)
	}
}
