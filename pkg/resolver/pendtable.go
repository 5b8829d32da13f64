package resolver

// pendTable holds the inodes whose namespace evidence is not explained yet (inoPend), by inode
// number, in pages made as an inode of their range is first used. Every name event and every
// resolve looks an inode up: as a map, those lookups were the largest single cost of the replay
// of the large bench's deletions (50,000 names removed in three transactions).
type pendTable struct {
	pages [][]*inoPend
	n     int // inodes with an entry
}

const pendPage = 1024

// get is ino's entry, or nil.
func (t *pendTable) get(ino uint32) *inoPend {
	if p := int(ino / pendPage); p < len(t.pages) && t.pages[p] != nil {
		return t.pages[p][ino%pendPage]
	}
	return nil
}

// set makes e ino's entry; nil removes it.
func (t *pendTable) set(ino uint32, e *inoPend) {
	p := int(ino / pendPage)
	if p >= len(t.pages) {
		if e == nil {
			return
		}
		t.pages = append(t.pages, make([][]*inoPend, p+1-len(t.pages))...)
	}
	if t.pages[p] == nil {
		if e == nil {
			return
		}
		t.pages[p] = make([]*inoPend, pendPage)
	}
	slot := &t.pages[p][ino%pendPage]
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
	for p, page := range t.pages {
		if page == nil {
			continue
		}
		for i, e := range page {
			if e != nil {
				dst = append(dst, uint32(p*pendPage+i))
			}
		}
	}
	return dst
}
