package resolver

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
