package resolver

import "bytes"

// ownership is who owns each block and what the resolver credited from the blocks that map
// others (directory blocks map names, indirect blocks map blocks): the index, the model of the
// disk's metadata, and the bookkeeping that lets a claim or a release be undone in any order.
type ownership struct {
	idx *Index
	m   *model

	credDir  map[uint64][]dent // directory blocks: entries as last credited
	credNode map[uint64][]byte // map nodes: content as last credited
	// shadow: blocks claimed by a second inode: the first claimant.
	shadow map[uint64]Owner
	// shadowNode: map nodes claimed by a second inode: the content the first claimant had
	// credited, released with it (the second claimant's content replaced credNode).
	shadowNode map[uint64][]byte
	// metaWritten: directory and map blocks written in the current batch (a journal
	// transaction) or, without a journal, flush interval. One freed there keeps that content,
	// as if written unowned: it may be for the file that takes the block next (a file
	// truncated and a new one given its indirect block in one transaction).
	metaWritten map[uint64]bool
	// dataKept: data blocks written in the current batch (or flush interval) whose content
	// could be metadata, kept in the model until the batch is decided: a block freed from a
	// file's data and made a map node in the same transaction (a leaf block taking a punched
	// block's place, an indirect block a truncated file's) receives its node content while
	// still data. What is still data when the batch is decided is dropped (endBatch).
	dataKept map[uint64]bool
	claimed  map[uint64]bool // blocks claimed in the current batch
}

func newOwnership() ownership {
	return ownership{credDir: make(map[uint64][]dent), credNode: make(map[uint64][]byte),
		shadow: make(map[uint64]Owner), shadowNode: make(map[uint64][]byte),
		metaWritten: make(map[uint64]bool), dataKept: make(map[uint64]bool), claimed: make(map[uint64]bool)}
}

// release gives up block b, which ino's map gives node role as (a data role for a leaf, a
// node role for a map node, whose children go first), if ino owns it.
func (r *Resolver) release(ino uint32, b uint64, as Role) {
	if b == 0 || b >= r.nblk {
		return
	}
	own := &r.blocks
	bm := roleTable[as].blockMap
	o := own.idx.Lookup(b)
	if o.Ino != ino || o.Role == RoleFree {
		if s, ok := own.shadow[b]; ok && s.Ino == ino {
			// The first claimant lets go: the block is the other's alone. A map node
			// takes with it what it mapped for the first claimant (a file truncated whose
			// indirect block a new file took, the new file's inode written first).
			delete(own.shadow, b)
			if c, ok := own.shadowNode[b]; ok && bm != nil {
				delete(own.shadowNode, b)
				bm.releaseChanged(r, ino, as, c, nil)
			}
		}
		return
	}
	if bm != nil {
		bm.releaseChanged(r, ino, as, r.nodeContent(b), nil)
		delete(own.credNode, b)
	}
	if o.Role == RoleDir {
		r.releaseDirBlock(b, ino)
	}
	if s, ok := own.shadow[b]; ok {
		// A second claimant let go: the block returns to the first, with its content.
		delete(own.shadow, b)
		if c, ok := own.shadowNode[b]; ok {
			delete(own.shadowNode, b)
			own.credNode[b] = c
		}
		own.idx.Set(b, 1, s)
		return
	}
	own.idx.Clear(b, 1)
	if own.metaWritten[b] || own.dataKept[b] {
		c := own.m.blockCopy(b)
		own.m.drop(b)
		own.m.putUnowned(b, c)
		return
	}
	own.m.drop(b)
}

// nodeContent is the content of map node b as last credited (a copy the caller may keep).
func (r *Resolver) nodeContent(b uint64) []byte {
	if c, ok := r.blocks.credNode[b]; ok {
		return c
	}
	return r.blocks.m.blockCopy(b)
}

// runBuilder batches consecutive data claims into one Index.Set.
type runBuilder struct {
	start, n uint64
	o        Owner
}

func (r *Resolver) flushRun(rb *runBuilder) {
	if rb.n > 0 {
		r.blocks.idx.Set(rb.start, rb.n, rb.o)
		rb.n = 0
	}
}

// take checks a claim of block b by ino; it reports false if the block cannot be claimed.
func (r *Resolver) take(ino uint32, b uint64, blk uint64) bool {
	if b < uint64(r.fs.SB.FirstDataBlock) || b >= r.nblk {
		r.anomaly(r.bestPath(ino), blk, "inode %d points to block %d outside the file system (%d blocks)", ino, b, r.nblk)
		return false
	}
	o := r.blocks.idx.Lookup(b)
	switch {
	case o.Role == RoleFree || o.Ino == ino:
		return true
	case o.Ino == 0 || o.Role == RoleJournal:
		r.anomaly(r.bestPath(ino), blk, "inode %d claims block %d, which is %s", ino, b, o.Role)
		return false
	}
	// Owned by another file: normal when the guest wrote the new owner before the old one's
	// release (no journal). Remember the first claimant; the end of the log judges.
	r.blocks.shadow[b] = o
	return true
}

// claimData records that block b is file block logical of ino.
func (r *Resolver) claimData(rb *runBuilder, ino uint32, role Role, b, logical uint64, blk uint64) {
	if !r.take(ino, b, blk) {
		return
	}
	o := Owner{Role: role, Ino: ino, Logical: logical}
	if rb.n > 0 && rb.start+rb.n == b && rb.o.Logical+rb.n == logical && rb.o.Role == role && rb.o.Ino == ino {
		rb.n++
	} else {
		r.flushRun(rb)
		*rb = runBuilder{start: b, n: 1, o: o}
	}
	switch role {
	case RoleDir:
		r.blocks.claimed[b] = true
		r.flushRun(rb)
		r.claimDirBlock(b, ino)
	case RoleData:
		r.blocks.m.drop(b)
	case RoleSymlink:
		r.blocks.m.owned(b)
	}
	r.settlePending(b, o)
}

// claimNode records that map node b (node role nrole) of ino maps from file block base, and
// claims what it maps. Its content is the model's only if it was written during the log: a
// block claimed before its content arrives is empty until then. It reports false for a node
// that makes the map loop (not followed): the caller stops walking the node that points at it.
func (r *Resolver) claimNode(ino uint32, role Role, b uint64, nrole Role, base uint64, blk uint64) bool {
	own := &r.blocks
	if prev := own.idx.Lookup(b); prev.Ino == ino && roleTable[prev.Role].blockMap != nil &&
		(prev.Role != nrole || prev.Logical != base) {
		// Already a node of this inode's map elsewhere: the map loops (or two pointers share
		// a node). Following it would claim the same blocks over and over.
		r.anomaly(r.bestPath(ino), blk, "inode %d maps block %d twice (as %s and as %s): a loop in its block map, not followed",
			ino, b, prev.Role, nrole)
		return false
	}
	if prev := own.idx.Lookup(b); prev.Ino != 0 && prev.Ino != ino && prev.Role != RoleFree &&
		roleTable[prev.Role].blockMap != nil {
		// About to be shadowed (see take): keep what it mapped for its first claimant.
		defer func(c []byte) {
			if s, ok := own.shadow[b]; ok && s.Ino == prev.Ino {
				own.shadowNode[b] = c
			}
		}(r.nodeContent(b))
	}
	if !r.take(ino, b, blk) {
		return true
	}
	o := Owner{Role: nrole, Ino: ino, Logical: base}
	own.idx.Set(b, 1, o)
	own.claimed[b] = true
	own.m.owned(b)
	var c []byte
	if own.m.written(b) {
		c = own.m.blockCopy(b)
	} else {
		c = make([]byte, r.bs)
	}
	own.credNode[b] = c
	r.settlePending(b, o)
	roleTable[nrole].blockMap.claimChildren(r, ino, role, b, nrole, base, nil, c)
	return true
}

// diffNode handles a write to map node b its inode already owned.
func (r *Resolver) diffNode(b uint64, o Owner, old, cur []byte) {
	bm := roleTable[o.Role].blockMap
	prev, ok := r.blocks.credNode[b]
	if !ok {
		prev = old
	}
	in, _ := r.fs.ReadInode(o.Ino)
	role := RoleData
	if in != nil {
		role = dataRole(in)
	}
	bm.releaseChanged(r, o.Ino, o.Role, prev, cur)
	r.blocks.credNode[b] = bytes.Clone(cur)
	bm.claimChildren(r, o.Ino, role, b, o.Role, o.Logical, prev, cur)
}

// endBatch forgets what the batch (or flush interval) just decided kept: the content of
// freed metadata blocks is no longer anyone's to take, and data blocks still data are data.
func (own *ownership) endBatch() {
	clear(own.metaWritten)
	for b := range own.dataKept {
		if own.idx.Lookup(b).Role == RoleData {
			own.m.drop(b)
		}
	}
	clear(own.dataKept)
}
