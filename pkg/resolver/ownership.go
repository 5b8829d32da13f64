package resolver

// ownership is who owns each block and what the resolver credited from the blocks that map
// others (directory blocks map names, indirect blocks map blocks): the index, the model of the
// disk's metadata, and the bookkeeping that lets a claim or a release be undone in any order.
type ownership struct {
	idx *Index
	m   *model

	credDir map[uint64][]dent   // directory blocks: entries as last credited
	credMap map[uint64][]uint32 // map blocks: pointers as last credited
	// shadow: blocks claimed by a second inode: the first claimant.
	shadow map[uint64]Owner
	// shadowMap: map blocks claimed by a second inode: the pointers the first claimant
	// had in them, released with it (the second claimant's content replaced credMap).
	shadowMap map[uint64][]uint32
	// metaWritten: directory and map blocks written in the current batch (a journal
	// transaction) or, without a journal, flush interval. One freed there keeps that content,
	// as if written unowned: it may be for the file that takes the block next (a file
	// truncated and a new one given its indirect block in one transaction).
	metaWritten map[uint64]bool
	claimed     map[uint64]bool // blocks claimed in the current batch
}

func newOwnership() ownership {
	return ownership{credDir: make(map[uint64][]dent), credMap: make(map[uint64][]uint32),
		shadow: make(map[uint64]Owner), shadowMap: make(map[uint64][]uint32),
		metaWritten: make(map[uint64]bool), claimed: make(map[uint64]bool)}
}
