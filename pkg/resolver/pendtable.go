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
