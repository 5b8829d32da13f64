package resolver

import "github.com/ext3replay/ext3replay/internal/inotable"

// pendTable holds the inodes whose namespace evidence is not explained yet (inoPend), by inode
// number. Every name event and every resolve looks an inode up: as a map, those lookups were the
// largest single cost of the replay of the large bench's deletions (50,000 names removed in
// three transactions).
type pendTable struct {
	t inotable.Table[*inoPend]
	n int // inodes with an entry
}

// get is ino's entry, or nil.
func (t *pendTable) get(ino uint32) *inoPend { return t.t.Get(ino) }

// set makes e ino's entry; nil removes it.
func (t *pendTable) set(ino uint32, e *inoPend) {
	if e == nil && t.t.Get(ino) == nil {
		return // nothing to remove: no page made for it
	}
	slot := t.t.Ref(ino)
	switch {
	case *slot == nil && e != nil:
		t.n++
	case *slot != nil && e == nil:
		t.n--
	}
	*slot = e
}

// len is the number of inodes with an entry.
func (t *pendTable) len() int { return t.n }

// inos appends the inodes with an entry to dst, in inode order.
func (t *pendTable) inos(dst []uint32) []uint32 {
	t.t.Pages(func(first uint32, page []*inoPend) {
		for i, e := range page {
			if e != nil {
				dst = append(dst, first+uint32(i))
			}
		}
	})
	return dst
}

// slotWrites is, by inode number, the flush interval in which the inode's slot last changed
// (homeWrites rules: resolveMoves asks whether it changed lately). A map of the inodes written in
// the last two intervals, pruned at every flush, was 11% of the replay's CPU on a 100,000-file
// log of renames and deletions (scripts/bench-scale.sh): every changed inode wrote it, every
// resolve read it, and every flush walked it.
type slotWrites struct {
	t inotable.Table[int64] // the interval plus one; 0: never written
}

// set records that ino's slot changed in interval n (n >= 0).
func (w *slotWrites) set(ino uint32, n int64) { w.t.Set(ino, n+1) }

// since is the interval in which ino's slot last changed, if that was interval from or later.
func (w *slotWrites) since(ino uint32, from int64) (int64, bool) {
	v := w.t.Get(ino) - 1
	return v, v >= 0 && v >= from
}

// inoSet is a set of inode numbers: its members in a slice, a mark for each in a table. As a map
// it was 8% of the replay's CPU on the 100,000-file scale log (every name event and every
// changed inode adds one, and each batch empties it).
type inoSet struct {
	list []uint32
	in   inotable.Table[bool]
}

// add puts ino in the set.
func (s *inoSet) add(ino uint32) {
	if m := s.in.Ref(ino); !*m {
		*m = true
		s.list = append(s.list, ino)
	}
}

// len is the number of inodes in the set.
func (s *inoSet) len() int { return len(s.list) }

// take appends the members to dst, in no particular order, and empties the set.
func (s *inoSet) take(dst []uint32) []uint32 {
	for _, ino := range s.list {
		*s.in.Ref(ino) = false
	}
	dst = append(dst, s.list...)
	s.list = s.list[:0]
	return dst
}
