package resolver

import (
	"bytes"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// live reports an inode that exists in the namespace sense: a type and at least one link.
// (An unlinked file still open has links 0: for names it is gone; its blocks go when freed.)
func live(in *ext3fs.Inode) bool {
	return in != nil && in.Mode&ext3fs.ModeType != 0 && in.LinksCount > 0
}

// allocated is the index builder's test for an inode whose blocks count as owned: a type, and
// links or no deletion time (an unlinked file still open keeps its blocks until freed).
func allocated(in *ext3fs.Inode) bool {
	return in.Mode != 0 && (in.LinksCount > 0 || in.Dtime == 0)
}

// ownsBlocks reports whether the inode's i_block is a block map the resolver follows.
func ownsBlocks(ino uint32, in *ext3fs.Inode) bool {
	return in != nil && allocated(in) && in.HasBlocks() && !in.UsesExtents()
}

// diffInodeBlock compares every inode of inode-table block b between old and new content.
func (r *Resolver) diffInodeBlock(b uint64, old, cur []byte) {
	first, n, ok := r.fs.InodeTableBlock(b)
	if !ok {
		return
	}
	for i := 0; i < n; i++ {
		lo, hi := i*r.isz, (i+1)*r.isz
		if hi > len(cur) || bytes.Equal(old[lo:hi], cur[lo:hi]) {
			continue
		}
		r.inodeChanged(first+uint32(i), b, old[lo:hi], cur[lo:hi])
	}
}

// inodeChanged turns one inode's change into events: blocks claimed and released, allocation,
// free, link count and size changes.
func (r *Resolver) inodeChanged(ino uint32, blk uint64, ob, nb []byte) {
	sb := r.fs.SB
	if ino < sb.FirstIno && ino != ext3fs.RootIno {
		return // reserved inodes (journal, resize, ...) do not change in normal use
	}
	if r.mode.decidedAtFlush() {
		r.ns.inoWritten[ino] = r.now.flushNo
	}
	oi, err1 := ext3fs.ParseInode(ob)
	ni, err2 := ext3fs.ParseInode(nb)
	if err2 != nil {
		r.anomaly("", blk, "inode %d: %v", ino, err2)
		return
	}
	if _, ok := r.ns.orphanPath[ino]; ok && (!allocated(ni) || live(ni)) {
		delete(r.ns.orphanPath, ino) // freed at last, or the slot is a new file
	}
	if err1 != nil {
		oi = nil
	}
	reuse := live(oi) && live(ni) && (oi.Generation != ni.Generation || oi.Type() != ni.Type())
	// Blocks.
	oOwns, nOwns := ownsBlocks(ino, oi), ownsBlocks(ino, ni)
	if ni.UsesExtents() && allocated(ni) && (!oOwns || reuse) && (oi == nil || !oi.UsesExtents()) {
		r.anomaly(r.bestPath(ino), blk, "inode %d uses extents, which ext3 does not have: its blocks are not followed", ino)
	}
	var optrs, nptrs [15]uint32
	if oOwns && !reuse {
		optrs = oi.Block
	} else if oOwns && reuse {
		r.releasePtrs(ino, oi.Block)
	}
	if nOwns {
		nptrs = ni.Block
	}
	role := RoleData
	if nOwns {
		role = dataRole(ni)
	} else if oOwns {
		role = dataRole(oi)
	}
	if optrs != nptrs || (reuse && nOwns) {
		if oOwns && nOwns && !reuse && dataRole(oi) != dataRole(ni) {
			r.releasePtrs(ino, optrs)
			optrs = [15]uint32{}
		}
		r.diffPtrs(ino, role, optrs, nptrs, blk)
	}
	// Namespace evidence.
	// (Only inodes with such evidence get a pending entry: most inode writes are size and time
	// updates.)
	oLive, nLive := live(oi), live(ni)
	p := r.ns.pend[ino]
	evidence := reuse || oLive != nLive || (oLive && nLive && oi.LinksCount != ni.LinksCount)
	if evidence && p == nil {
		p = r.pendFor(ino)
	}
	if p != nil {
		if oLive {
			p.lastType = oi.Type()
		}
		if nLive {
			p.lastType = ni.Type()
		}
	}
	if evidence {
		r.ns.touched[ino] = true
	}
	switch {
	case reuse:
		// The slot went straight from one live file to another (written only after the
		// second allocation): the first incarnation is gone; resolve sorts out which names
		// were whose.
		p.reused = true
		p.reusedType = oi.Type()
	case oLive != nLive:
		if oLive {
			p.freed, p.freedType = true, oi.Type()
		}
	case oLive && nLive:
		if ni.Size < oi.Size && ni.Type() == ext3fs.TypeRegular {
			size := ni.Size
			path := r.ioPath(ino) // a file with several names: the same as for its I/O
			if path == "" {
				path = r.bestPath(ino)
			}
			r.output.nsBuf = append(r.output.nsBuf, ops.Op{Seq: r.now.seq, T: r.now.t, Op: ops.Truncate, Path: path, Ino: ino, Size: &size})
		}
	}
}

// dataRole is the role of an inode's data blocks.
func dataRole(in *ext3fs.Inode) Role {
	switch in.Type() {
	case ext3fs.TypeDir:
		return RoleDir
	case ext3fs.TypeSymlink:
		return RoleSymlink
	}
	return RoleData
}

// span is how many file blocks one pointer of a map block at level covers (level 1 = IND).
func (r *Resolver) span(level int) uint64 {
	p := uint64(r.bs / 4)
	s := uint64(1)
	for i := 1; i < level; i++ {
		s *= p
	}
	return s
}

// mapBase is the first file block i_block[12+k] can map.
func (r *Resolver) mapBase(k int) uint64 {
	p := uint64(r.bs / 4)
	switch k {
	case 0:
		return 12
	case 1:
		return 12 + p
	}
	return 12 + p + p*p
}

var mapRoles = [4]Role{RoleData, RoleInd, RoleDInd, RoleTInd}

// diffPtrs updates ownership for a change of i_block from old to cur.
func (r *Resolver) diffPtrs(ino uint32, role Role, old, cur [15]uint32, blk uint64) {
	for k := 0; k < ext3fs.NDirBlocks; k++ {
		if old[k] != cur[k] {
			r.release(ino, uint64(old[k]), 0)
		}
	}
	for k := 0; k < 3; k++ {
		if old[12+k] != cur[12+k] {
			r.release(ino, uint64(old[12+k]), k+1)
		}
	}
	var rb runBuilder
	for k := 0; k < ext3fs.NDirBlocks; k++ {
		if old[k] != cur[k] && cur[k] != 0 {
			r.claimData(&rb, ino, role, uint64(cur[k]), uint64(k), blk)
		}
	}
	r.flushRun(&rb)
	for k := 0; k < 3; k++ {
		if old[12+k] != cur[12+k] && cur[12+k] != 0 {
			r.claimMap(ino, role, uint64(cur[12+k]), k+1, r.mapBase(k), blk)
		}
	}
}

// releasePtrs releases every block an i_block array maps.
func (r *Resolver) releasePtrs(ino uint32, ptrs [15]uint32) {
	for k := 0; k < ext3fs.NDirBlocks; k++ {
		r.release(ino, uint64(ptrs[k]), 0)
	}
	for k := 0; k < 3; k++ {
		r.release(ino, uint64(ptrs[12+k]), k+1)
	}
}

// release gives up block b (level 0 = data, 1..3 = map block and what it maps) if ino owns it.
func (r *Resolver) release(ino uint32, b uint64, level int) {
	if b == 0 || b >= r.nblk {
		return
	}
	o := r.blocks.idx.Lookup(b)
	if o.Ino != ino || o.Role == RoleFree {
		if s, ok := r.blocks.shadow[b]; ok && s.Ino == ino {
			// The first claimant lets go: the block is the other's alone. A map block
			// takes with it what it mapped for the first claimant (a file truncated whose
			// indirect block a new file took, the new file's inode written first).
			delete(r.blocks.shadow, b)
			if ptrs, ok := r.blocks.shadowMap[b]; ok && level > 0 {
				delete(r.blocks.shadowMap, b)
				for _, c := range ptrs {
					r.release(ino, uint64(c), level-1)
				}
			}
		}
		return
	}
	if level > 0 {
		for _, c := range r.mapPtrs(b) {
			r.release(ino, uint64(c), level-1)
		}
		delete(r.blocks.credMap, b)
	}
	if o.Role == RoleDir {
		r.releaseDirBlock(b, ino)
	}
	if s, ok := r.blocks.shadow[b]; ok {
		// A second claimant let go: the block returns to the first, with its pointers.
		delete(r.blocks.shadow, b)
		if ptrs, ok := r.blocks.shadowMap[b]; ok {
			delete(r.blocks.shadowMap, b)
			r.blocks.credMap[b] = ptrs
		}
		r.blocks.idx.Set(b, 1, s)
		return
	}
	r.blocks.idx.Clear(b, 1)
	if r.blocks.metaWritten[b] {
		c := bytes.Clone(r.blocks.m.block(b))
		r.blocks.m.drop(b)
		r.blocks.m.putUnowned(b, c)
		return
	}
	r.blocks.m.drop(b)
}

// mapPtrs returns the pointers of map block b as last credited.
func (r *Resolver) mapPtrs(b uint64) []uint32 {
	if p, ok := r.blocks.credMap[b]; ok {
		return p
	}
	return ext3fs.ParseIndirect(r.blocks.m.block(b))
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

// claimMap records that map block b (level 1..3) of ino maps from file block base, and claims
// what it points to. Its content is the model's only if it was written during the log: a block
// claimed before its content arrives is empty until then.
func (r *Resolver) claimMap(ino uint32, role Role, b uint64, level int, base uint64, blk uint64) {
	if prev := r.blocks.idx.Lookup(b); prev.Ino != 0 && prev.Ino != ino && prev.Role != RoleFree &&
		(prev.Role == RoleInd || prev.Role == RoleDInd || prev.Role == RoleTInd) {
		// About to be shadowed (see take): keep what it mapped for its first claimant.
		defer func(ptrs []uint32) {
			if s, ok := r.blocks.shadow[b]; ok && s.Ino == prev.Ino {
				r.blocks.shadowMap[b] = ptrs
			}
		}(r.mapPtrs(b))
	}
	if !r.take(ino, b, blk) {
		return
	}
	o := Owner{Role: mapRoles[level], Ino: ino, Logical: base}
	r.blocks.idx.Set(b, 1, o)
	r.blocks.claimed[b] = true
	r.blocks.m.owned(b)
	var ptrs []uint32
	if r.blocks.m.written(b) {
		ptrs = ext3fs.ParseIndirect(r.blocks.m.block(b))
	} else {
		ptrs = make([]uint32, r.bs/4)
	}
	r.blocks.credMap[b] = ptrs
	r.settlePending(b, o)
	r.claimChildren(ino, role, b, level, base, nil, ptrs)
}

// claimChildren claims the pointers of map block b that differ from old (nil: all).
func (r *Resolver) claimChildren(ino uint32, role Role, b uint64, level int, base uint64, old, cur []uint32) {
	sp := r.span(level)
	var rb runBuilder
	for i, p := range cur {
		if p == 0 || (old != nil && i < len(old) && old[i] == p) {
			continue
		}
		if level == 1 {
			r.claimData(&rb, ino, role, uint64(p), base+uint64(i), b)
		} else {
			r.claimMap(ino, role, uint64(p), level-1, base+uint64(i)*sp, b)
		}
	}
	r.flushRun(&rb)
}

// diffMapBlock handles a write to an indirect block its file already owned.
func (r *Resolver) diffMapBlock(b uint64, o Owner, old, cur []byte) {
	level := 1
	switch o.Role {
	case RoleDInd:
		level = 2
	case RoleTInd:
		level = 3
	}
	optrs, ok := r.blocks.credMap[b]
	if !ok {
		optrs = ext3fs.ParseIndirect(old)
	}
	nptrs := ext3fs.ParseIndirect(cur)
	in, _ := r.fs.ReadInode(o.Ino)
	role := RoleData
	if in != nil {
		role = dataRole(in)
	}
	for i := range optrs {
		if i < len(nptrs) && optrs[i] != nptrs[i] {
			r.release(o.Ino, uint64(optrs[i]), level-1)
		}
	}
	r.blocks.credMap[b] = nptrs
	r.claimChildren(o.Ino, role, b, level, o.Logical, optrs, nptrs)
}
