package resolver

import "github.com/ext3replay/ext3replay/internal/inotable"

// namespace is the names table as decided so far, and the evidence of each inode that is not
// explained yet (see pairing.go): what pairs name events with inode events in any order.
type namespace struct {
	names   *Names
	linkCnt map[linkKey]int // links seen in more than one block or differing from names
	pend    pendTable       // namespace changes not yet explained
	spare   []*inoPend      // explained entries, for pendFor to reuse (see settled)
	touched inoSet          // inodes with new evidence in the current batch
	evOrd   int64           // order of name events

	waitParent map[uint32]bool // inodes whose new name's directory has no path yet
	waitMove   map[uint32]bool // homeWrites rules: moves waiting for their inode's slot to be written
	inoWritten slotWrites      // homeWrites rules: flush interval in which each inode slot last changed
	// orphanPath: the last path of files deleted while still allocated (unlinked while
	// open): their I/O until the last close is reported under it.
	orphanPath map[uint32]string
	// fcLinks: names a fast commit changed that no directory block shows yet (fastcommit.go).
	fcLinks map[linkKey]fcLink

	namesGen uint64 // bumped on every change of the names table
	pcIno    uint32 // ioPath cache
	pcGen    uint64
	pcPath   string
}

func newNamespace() namespace {
	return namespace{linkCnt: make(map[linkKey]int),
		waitParent: make(map[uint32]bool), waitMove: make(map[uint32]bool),
		orphanPath: make(map[uint32]string),
		fcLinks:    make(map[linkKey]fcLink)}
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
