package resolver

import (
	"slices"
	"strings"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// Pairing. Directory blocks give name events (entry added, entry removed) and inode-table
// blocks give inode events (allocated, freed, link count). The guest may write them in any
// order, far apart, so each inode collects the events it cannot explain yet, and resolve turns
// them into ops as soon as the evidence is conclusive:
//
//	name removed + name added (same inode)        move (overwrite if the new name replaced a file)
//	name added, inode had no name, inode live      create / mkdir / symlink / mknod
//	name added, inode has others, links grew       link
//	name removed, inode freed (links 0)            delete / rmdir (unlink for all but the last name)
//	name removed, inode live, links dropped to     unlink
//	  the names that remain
//
// Anything else waits: a removal may be the first half of a move, an add may land on an inode
// not allocated yet. The end of the log settles what is left by the final state (settleNamespace).

// nameEv is one name gained or lost.
type nameEv struct {
	l          Link
	path       string // removals: the full path when the name went away
	seq        int64
	ord        int64  // global order of name events
	displaced  uint32 // adds: the inode this name pointed to before, in the same block
	replacedBy uint32 // removals: the inode that took this name, in the same block
	implied    bool   // removals: explained by a move over this name; reported as the move
}

// inoPend is what one inode has that is not explained yet.
type inoPend struct {
	adds, rems []nameEv
	lastType   ext3fs.FileType // type while it was last live (for delete vs rmdir)
	freed      bool            // went from live to not live
	freedType  ext3fs.FileType // its type then
	reused     bool            // slot went from one live file to another
	since      int64           // flush interval of the oldest unexplained name event
	reusedType ext3fs.FileType // type of the first incarnation
}

func (p *inoPend) hasAdd(l Link) bool {
	for _, a := range p.adds {
		if a.l == l {
			return true
		}
	}
	return false
}

// noteEvent records the interval of a name event on an inode with nothing unexplained yet.
func (r *Resolver) noteEvent(p *inoPend, ino uint32) {
	if len(p.adds) == 0 && len(p.rems) == 0 {
		p.since = r.now.flushNo
	}
}

func (r *Resolver) pendFor(ino uint32) *inoPend {
	p := r.ns.pend.get(ino)
	if p == nil {
		if n := len(r.ns.spare); n > 0 {
			p = r.ns.spare[n-1]
			r.ns.spare = r.ns.spare[:n-1]
		} else {
			p = &inoPend{}
		}
		r.ns.pend.set(ino, p)
	}
	return p
}

// maxSparePend bounds the explained entries kept for reuse, and maxSpareEvents the events an
// entry's slices may hold to be kept with it (an inode with thousands of links must not pin
// them). A transaction's name events all come before its first resolve, so the entries it
// explains serve the transactions and records after it: on the large bench log, the untar's
// 20,000 and the deletions' 50,000 entries were each an allocation and a slice grown from
// nothing.
const (
	maxSparePend   = 4096
	maxSpareEvents = 16
)

// settled removes ino's entry, explained, and keeps it for pendFor to reuse, emptied: resolve
// is its only remover, and no one holds an entry across a resolve.
func (r *Resolver) settled(ino uint32, p *inoPend) {
	r.ns.pend.set(ino, nil)
	if len(r.ns.spare) >= maxSparePend {
		return
	}
	*p = inoPend{adds: emptied(p.adds), rems: emptied(p.rems)}
	r.ns.spare = append(r.ns.spare, p)
}

// emptied is l cleared to its capacity (no name or path kept alive) with length 0, or nil when
// it is too large to keep.
func emptied(l []nameEv) []nameEv {
	if cap(l) > maxSpareEvents {
		return nil
	}
	clear(l[:cap(l)])
	return l[:0]
}

// resolveTouched resolves every inode with new evidence. Inodes that gained names go first: a
// move over an existing name decides whether the replaced inode's removal is reported at all.
func (r *Resolver) resolveTouched() {
	for round := 0; r.ns.touched.len() > 0 && round < 8; round++ {
		inos := r.ns.touched.take(make([]uint32, 0, r.ns.touched.len()))
		r.sortForResolve(inos)
		for _, ino := range inos {
			r.resolve(ino, false)
		}
		// Names that waited for their directory's own name may be decidable now.
		if r.ns.touched.len() == 0 && len(r.ns.waitParent) > 0 {
			for ino := range r.ns.waitParent {
				if r.parentsKnown(r.ns.pend.get(ino)) {
					r.ns.touched.add(ino)
				}
			}
		}
	}
	r.ns.touched.take(nil)
}

// parentsKnown reports whether every name p gained is in a directory that has a path.
func (r *Resolver) parentsKnown(p *inoPend) bool {
	if p == nil {
		return true
	}
	for _, a := range p.adds {
		if !r.ns.names.HasPath(a.l.Parent) {
			return false
		}
	}
	return true
}

// sortForResolve puts inodes with added names first, each part in inode order. The key is
// looked up once per inode (inodes are distinct), not twice per comparison.
func (r *Resolver) sortForResolve(inos []uint32) {
	keys := make([]uint64, len(inos))
	for i, ino := range inos {
		keys[i] = uint64(ino)
		if p := r.ns.pend.get(ino); p == nil || len(p.adds) == 0 {
			keys[i] |= 1 << 32
		}
	}
	slices.Sort(keys)
	for i, k := range keys {
		inos[i] = uint32(k)
	}
}

// settleNamespace resolves everything still pending at the end of the log by the final state.
func (r *Resolver) settleNamespace() {
	inos := r.ns.pend.inos(make([]uint32, 0, r.ns.pend.len()))
	r.sortForResolve(inos)
	for _, ino := range inos {
		r.resolve(ino, true)
	}
	// Removals that waited on a replacement resolved just now (in inode order: a map's order
	// must not reach the output).
	inos = r.ns.pend.inos(inos[:0]) // in inode order
	for _, ino := range inos {
		r.resolve(ino, true)
	}
}

func createType(t ext3fs.FileType) ops.Type {
	switch t {
	case ext3fs.TypeDir:
		return ops.Mkdir
	case ext3fs.TypeSymlink:
		return ops.Symlink
	case ext3fs.TypeChar, ext3fs.TypeBlock, ext3fs.TypeFIFO, ext3fs.TypeSocket:
		return ops.Mknod
	}
	return ops.Create
}

// inoState is what resolve knows of an inode while deciding: its evidence and its state now.
type inoState struct {
	ino    uint32
	p      *inoPend
	in     *ext3fs.Inode // nil if unreadable
	isLive bool
	typ    ext3fs.FileType // its type now, or while it was last live
	final  bool            // the end of the log: decide by the current state
}

// resolve turns what inode ino has pending into ops where the evidence allows; final forces a
// decision by the current state. The steps run in this order, each on what the ones before
// left: a reused slot, names that left and came back, moves, added names, removed names, and
// (at the end) a file freed whose names were never rewritten.
func (r *Resolver) resolve(ino uint32, final bool) {
	p := r.ns.pend.get(ino)
	if p == nil {
		return
	}
	in := r.resolveInode(ino)
	s := &inoState{ino: ino, p: p, in: in, isLive: in.Live(), typ: p.lastType, final: final}
	if s.isLive {
		s.typ = in.Type()
	}
	delete(r.ns.waitParent, ino)
	if !final && !r.parentsKnown(p) {
		// A new name inside a directory whose own name is not known yet (mkdir d, then d/f,
		// written in the other order): wait, the path would be wrong.
		r.ns.waitParent[ino] = true
		return
	}
	r.resolveReuse(s)
	r.cancelReturns(s)
	nNames := r.ns.names.Count(ino)
	if !r.resolveMoves(s) {
		return
	}
	r.resolveAdds(s, nNames)
	r.resolveRemovals(s, nNames)
	if final {
		r.resolveFreedUnwritten(s, nNames)
	}
	if len(p.adds) == 0 && len(p.rems) == 0 && (!p.freed || s.isLive || final) {
		r.settled(ino, p)
	}
}

// resolveInode is r.fs.ReadInode(ino) (nil if it fails) into a buffer and an Inode that resolve
// reuses from one call to the next (two allocations per decision were a tenth of the replay's
// CPU on a log deleting 50,000 files): valid until the next call, and resolve is not reentered.
func (r *Resolver) resolveInode(ino uint32) *ext3fs.Inode {
	if ino == 0 || ino > r.fs.SB.InodesCount {
		return nil
	}
	if len(r.inoBuf) != r.isz {
		r.inoBuf = make([]byte, r.isz)
	}
	blk, off := r.fs.InodeLocation(ino)
	pos := int64(blk)*int64(r.bs) + int64(off)
	if _, err := r.blocks.m.ReadAt(r.inoBuf, pos); err != nil {
		return nil
	}
	if err := r.fs.DecodeInodeInto(ino, r.inoBuf, pos, &r.ino); err != nil {
		return nil
	}
	return &r.ino
}

// resolveReuse handles a slot that went from one file to another: the first incarnation's
// names are removed (and reported), the names it still has are the new file's first.
func (r *Resolver) resolveReuse(s *inoState) {
	p, ino := s.p, s.ino
	if p.freed && s.isLive {
		// Freed and allocated again since the names last added up (both slot versions were
		// written): a new file in the old one's inode, as when the generation changes.
		p.freed, p.reused, p.reusedType = false, true, p.freedType
	}
	if !p.reused {
		return
	}
	// The first incarnation is gone: its removed names and the names still recorded
	// that this inode did not just gain were its own.
	p.reused = false
	// A name the directory still has that this inode did not just gain was the first
	// incarnation's and is now the new one's too: "rm f; create f" reuses the freed inode
	// number and, in the same directory slot, leaves the entry byte for byte as it was
	// (or changes only its file type). On ext3 the transaction, on ext2 the flush
	// interval, is applied whole when this runs, so a name still here stays.
	var kept []nameEv
	if s.isLive {
		for _, l := range r.ns.names.Links(ino) {
			if !p.hasAdd(l) {
				r.ns.evOrd++
				p.rems = append(p.rems, nameEv{l: l, path: r.linkPath(l), seq: r.now.seq, ord: r.ns.evOrd})
				r.ns.evOrd++
				kept = append(kept, nameEv{l: l, seq: r.now.seq, ord: r.ns.evOrd})
			}
		}
	} else {
		for _, l := range r.ns.names.Links(ino) {
			if !p.hasAdd(l) {
				r.ns.evOrd++
				p.rems = append(p.rems, nameEv{l: l, path: r.linkPath(l), seq: r.now.seq, ord: r.ns.evOrd})
				r.dropLink(l, ino)
			}
		}
	}
	var rems []nameEv
	for _, m := range p.rems {
		if !p.hasAdd(m.l) {
			rems = append(rems, m)
		}
	}
	p.rems = rems
	r.emitRemovals(s, p.reusedType, true)
	// The kept names are the new file's first: it is created under them.
	p.adds = append(kept, p.adds...)
}

// cancelReturns drops a name that went and came back (an htree split written in two steps):
// no change. A name that came and went, on an inode that is gone now, is a file created and
// deleted.
func (r *Resolver) cancelReturns(s *inoState) {
	p := s.p
	for i := 0; i < len(p.adds); i++ {
		for j := 0; j < len(p.rems); j++ {
			a, m := p.adds[i], p.rems[j]
			if a.l != m.l || m.implied {
				continue
			}
			if a.ord < m.ord && !s.isLive {
				r.nsOp(createType(s.typ), s.ino, m.path)
				t := ops.Delete
				if s.typ == ext3fs.TypeDir {
					t = ops.Rmdir
				}
				r.nsRemoval(t, s.ino, m.path)
			}
			p.adds = append(p.adds[:i], p.adds[i+1:]...)
			p.rems = append(p.rems[:j], p.rems[j+1:]...)
			i--
			break
		}
	}
}

// resolveMoves pairs a name lost with a name gained by the same inode into a move. Under the
// homeWrites rules, a name moved to an inode number that was freed and reused looks the same
// until the inode's slot is written (with its new generation); a real rename rewrites the
// slot too (ctime), so it waits for that write, at most one more flush interval: then it
// reports false and resolve stops there.
func (r *Resolver) resolveMoves(s *inoState) bool {
	p, ino := s.p, s.ino
	w, written := r.ns.inoWritten.since(ino, r.now.flushNo-2)
	if len(p.adds) > 0 && len(p.rems) > 0 && s.isLive && !s.final && r.mode.decidedAtFlush() &&
		(!written || w < p.since) && r.now.flushNo-p.since < 2 {
		r.ns.waitMove[ino] = true
		return false
	}
	delete(r.ns.waitMove, ino)
	for len(p.adds) > 0 && len(p.rems) > 0 && (s.isLive || s.final) {
		a, m := p.adds[0], p.rems[0]
		p.adds, p.rems = p.adds[1:], p.rems[1:]
		op := r.nsOp(ops.Move, ino, m.path)
		op.To = r.linkPath(a.l)
		if a.displaced != 0 {
			op.Overwrite = true
			r.markImplied(a.displaced, a.l)
		}
	}
	return true
}

// resolveAdds reports names gained with none lost: a create (the inode had no other name), a
// link (it had, and its link count says so), or at the end an anomaly.
func (r *Resolver) resolveAdds(s *inoState, nNames int) {
	p, ino := s.p, s.ino
	if len(p.adds) == 0 || len(p.rems) > 0 {
		return
	}
	switch {
	case !s.isLive:
		if s.final {
			for _, a := range p.adds {
				r.anomaly(r.linkPath(a.l), 0, "directory entry points to inode %d, which is not in use", ino)
			}
			p.adds = nil
		}
	case nNames-len(p.adds) <= 0:
		first := p.adds[0]
		r.nsOp(createType(s.typ), ino, r.linkPath(first.l))
		if first.displaced != 0 {
			r.ns.touched.add(first.displaced) // its removal is a delete of its own
		}
		for _, a := range p.adds[1:] {
			op := r.nsOp(ops.Link, ino, r.linkPath(first.l))
			op.To = r.linkPath(a.l)
		}
		p.adds = nil
	case s.typ != ext3fs.TypeDir && (int(s.in.LinksCount) >= nNames || s.final):
		// The existing name the link was made from: the disk cannot tell; take the first in
		// sort order, as for I/O.
		from := ""
		for _, l := range r.ns.names.Links(ino) {
			if !p.hasAdd(l) {
				if lp := r.linkPath(l); from == "" || lp < from {
					from = lp
				}
			}
		}
		for _, a := range p.adds {
			op := r.nsOp(ops.Link, ino, from)
			op.To = r.linkPath(a.l)
		}
		p.adds = nil
	case s.final:
		for _, a := range p.adds {
			r.anomaly(r.linkPath(a.l), 0, "directory inode %d has a second name", ino)
		}
		p.adds = nil
	}
}

// resolveRemovals reports names lost with none gained: a delete or rmdir when the inode is
// gone, an unlink when names remain and the link count agrees.
func (r *Resolver) resolveRemovals(s *inoState, nNames int) {
	p := s.p
	if len(p.rems) == 0 || len(p.adds) > 0 {
		return
	}
	switch {
	case !s.isLive:
		r.emitRemovals(s, s.typ, nNames == 0 || s.final)
	case s.typ != ext3fs.TypeDir && nNames > 0 && (int(s.in.LinksCount) <= nNames || s.final):
		r.emitRemovals(s, s.typ, false)
	case s.final:
		r.emitRemovals(s, s.typ, nNames == 0)
	}
}

// resolveFreedUnwritten settles, at the end of the log, an inode freed whose directory entries
// were never rewritten: the file is gone all the same.
func (r *Resolver) resolveFreedUnwritten(s *inoState, nNames int) {
	p, ino := s.p, s.ino
	if !p.freed || s.isLive || len(p.rems) > 0 || nNames == 0 {
		return
	}
	links := r.ns.names.Links(ino)
	for i, l := range links {
		t := ops.Unlink
		if i == len(links)-1 {
			t = ops.Delete
			if s.typ == ext3fs.TypeDir {
				t = ops.Rmdir
			}
		}
		r.nsRemoval(t, ino, r.linkPath(l))
	}
	for _, l := range links {
		r.dropLink(l, ino)
	}
}

// markImplied flags the removal of name l from inode ino as part of a move over it.
func (r *Resolver) markImplied(ino uint32, l Link) {
	p := r.ns.pend.get(ino)
	if p == nil {
		return
	}
	for i := range p.rems {
		if p.rems[i].l == l {
			p.rems[i].implied = true
		}
	}
	r.ns.touched.add(ino)
}

// emitRemovals reports the removed names of s's inode: unlink for each, except delete/rmdir for
// the last when lastGone. Removals whose replacement is still undecided wait; implied ones are
// dropped.
func (r *Resolver) emitRemovals(s *inoState, typ ext3fs.FileType, lastGone bool) {
	ino, p := s.ino, s.p
	var keep []nameEv
	var stack [4]nameEv // a deleted file has one name mostly: no allocation for the list
	todo := stack[:0]
	for _, m := range p.rems {
		switch {
		case m.implied:
		case m.replacedBy != 0 && r.replacementPending(m.replacedBy, ino, m.l):
			keep = append(keep, m)
		default:
			todo = append(todo, m)
		}
	}
	p.rems = keep
	// Several names gone at once: which one was last the disk cannot tell, and the order
	// their blocks were written in must not decide it; the last in path order is the delete.
	slices.SortStableFunc(todo, func(a, b nameEv) int { return strings.Compare(a.path, b.path) })
	for i, m := range todo {
		t := ops.Unlink
		if lastGone && i == len(todo)-1 && len(keep) == 0 {
			t = ops.Delete
			if typ == ext3fs.TypeDir {
				t = ops.Rmdir
			}
			if s.in.Allocated() && !s.in.Live() { // s.in: the inode as resolve read it, unchanged since
				r.ns.orphanPath[ino] = m.path // still open: its I/O goes on under this path
			}
		}
		r.nsRemoval(t, ino, m.path)
	}
	if len(keep) == 0 {
		p.freed = false
	}
}

// replacementPending reports whether inode by still has the unexplained add of l that displaced
// inode ino.
func (r *Resolver) replacementPending(by, ino uint32, l Link) bool {
	p := r.ns.pend.get(by)
	if p == nil {
		return false
	}
	for _, a := range p.adds {
		if a.l == l && a.displaced == ino {
			return true
		}
	}
	return false
}
