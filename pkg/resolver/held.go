// Writes that cannot be decided yet: to blocks nobody owns (pending until a claim), to blocks
// whose owner may change before the commit (held until it), and metadata writes that look broken
// (suspect until their owner is certain).

package resolver

import (
	"bytes"
	"sort"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

type pendWrite struct {
	seq       int64
	t         float64
	off, n    int32 // byte range written inside the block
	journaled bool  // seen as a journal copy only (data=journal): report only if it proves to be file data
}

// pendStamp is what the pending writes of one request share: a 1 MiB write to free blocks is
// 256 of them.
type pendStamp struct {
	seq       int64
	t         float64
	journaled bool
}

// pendRef is a pending write as the map holds it: its request's stamp (an index into
// heldIO.stamps) and its byte range. 12 bytes where pendWrite takes 32: at the cap (512 Ki
// writes) the map takes about half the memory, and inserting into it costs less.
type pendRef struct {
	stamp  uint32
	off, n int32
}

// stamp returns the index of p's stamp, appending it unless it is the last one. Stamps no pending
// write refers to any more are dropped when they outnumber the pending writes twice over.
func (h *heldIO) stamp(p pendWrite) uint32 {
	st := pendStamp{seq: p.seq, t: p.t, journaled: p.journaled}
	if n := len(h.stamps); n > 0 && h.stamps[n-1] == st {
		return uint32(n - 1)
	}
	if len(h.stamps) >= 2*len(h.pendW)+1024 {
		h.compactStamps()
	}
	h.stamps = append(h.stamps, st)
	return uint32(len(h.stamps) - 1)
}

// compactStamps keeps only the stamps pending writes refer to, in their order.
func (h *heldIO) compactStamps() {
	used := make([]bool, len(h.stamps))
	for _, ref := range h.pendW {
		used[ref.stamp] = true
	}
	renum := make([]uint32, len(h.stamps))
	kept := h.stamps[:0]
	for i, st := range h.stamps {
		if used[i] {
			renum[i] = uint32(len(kept))
			kept = append(kept, st)
		}
	}
	h.stamps = kept
	for b, ref := range h.pendW {
		ref.stamp = renum[ref.stamp]
		h.pendW[b] = ref
	}
}

// pend returns block b's first pending write, if it has one.
func (h *heldIO) pend(b uint64) (pendWrite, bool) {
	ref, ok := h.pendW[b]
	if !ok {
		return pendWrite{}, false
	}
	st := h.stamps[ref.stamp]
	return pendWrite{seq: st.seq, t: st.t, off: ref.off, n: ref.n, journaled: st.journaled}, true
}

// addPending holds a write to a block nobody owns until a claim or the end of the log.
func (r *Resolver) addPending(b uint64, p pendWrite) {
	if r.held.npend >= r.held.pendCap {
		r.flushRecord(false)
		r.reportUnowned()
	}
	r.held.npend++
	if _, ok := r.held.pendW[b]; ok {
		r.held.pendMore[b] = append(r.held.pendMore[b], p)
		return
	}
	r.held.pendW[b] = pendRef{stamp: r.held.stamp(p), off: p.off, n: p.n}
}

// settlePending reports the held writes of block b, now owned by o.
func (r *Resolver) settlePending(b uint64, o Owner) {
	p0, ok := r.held.pend(b)
	if !ok {
		return
	}
	delete(r.held.pendW, b)
	r.held.npend--
	r.settleOne(b, o, p0)
	if more, ok := r.held.pendMore[b]; ok {
		delete(r.held.pendMore, b)
		r.held.npend -= len(more)
		for _, p := range more {
			r.settleOne(b, o, p)
		}
	}
}

func (r *Resolver) settleOne(b uint64, o Owner, p pendWrite) {
	if p.journaled && o.Role != RoleData {
		// A metadata block (symlink targets are journaled like metadata) seen in the
		// journal: its I/O was reported as journal, and its checkpoint will be reported.
		return
	}
	if r.mode.claimsHeld() && o.Role == RoleData && !r.isSystemInode(o.Ino) {
		// Without a journal the claim may be undone in the same interval (an indirect block
		// rewritten for a new file while still its truncated first owner's): held like a
		// write to an owned block, it goes to whoever owns the block at the flush.
		r.holdWrite(b, int64(p.off), int64(p.n), o.Ino)
		return
	}
	s := int64(b)*int64(r.bs) + int64(p.off)
	r.ioOp(ops.Write, o, s, s+int64(p.n))
}

// heldWrite is a home write to blocks a file owned at the time, reported at the next commit
// (or flush without a journal): a block freed by one file and taken by another in the same
// transaction receives the new file's data before the commit says whose it is.
type heldWrite struct {
	b      uint64 // first block
	off, n int64  // byte range from the start of block b
	ino    uint32 // owner when written
	path   string // its path then
	seq    int64
	t      float64
	age    int // device flushes since it was written
}

// ageHeld counts a device flush for every held write and reports those written before the
// previous flush: a commit follows the data it orders after one flush (jbd2 flushes, then
// writes the commit block), so a write held longer waits for a commit that is not coming (or
// one the journal could not be followed through).
func (r *Resolver) ageHeld() {
	n := 0
	for i := range r.held.heldW {
		r.held.heldW[i].age++
		if r.held.heldW[i].age >= 2 {
			n = i + 1
		}
	}
	if n > 0 {
		rest := append([]heldWrite(nil), r.held.heldW[n:]...)
		r.held.heldW = r.held.heldW[:n]
		r.releaseHeld()
		r.held.heldW = append(r.held.heldW, rest...)
	}
}

func (r *Resolver) holdWrite(b uint64, off, n int64, ino uint32) {
	if k := len(r.held.heldW); k > 0 {
		h := &r.held.heldW[k-1]
		if h.ino == ino && h.seq == r.now.seq && int64(h.b)*int64(r.bs)+h.off+h.n == int64(b)*int64(r.bs)+off {
			h.n += n
			return
		}
	}
	r.held.heldW = append(r.held.heldW, heldWrite{b: b, off: off, n: n, ino: ino, path: r.ioPath(ino), seq: r.now.seq, t: r.now.t})
	if len(r.held.heldW) > maxHeld {
		r.releaseHeld()
	}
}

// releaseHeld reports the held writes, each block attributed to the file owning it now if that
// file took it since, else to the file that owned it when written.
func (r *Resolver) releaseHeld() {
	bs := int64(r.bs)
	for _, h := range r.held.heldW {
		start := int64(h.b)*bs + h.off
		end := start + h.n
		for pos := start; pos < end; {
			b := uint64(pos / bs)
			o, n := r.blocks.idx.LookupRun(b)
			if n == 0 {
				n = 1
			}
			runEnd := min(end, int64(b+n)*bs)
			switch {
			case o.Ino == h.ino && roleTable[o.Role].file:
				// Still the writer's file, maybe in another role now (a data block made one of
				// its map nodes in the same transaction): reported as what it became.
			case !(o.Role == RoleData && o.Ino != h.ino):
				o = Owner{Role: RoleData, Ino: h.ino}
			}
			op := ops.Op{Seq: r.now.seq, T: r.now.t, Op: ops.Write, Sector: uint64(pos) / blklog.SectorSize, Bytes: runEnd - pos,
				Kind: roleTable[o.Role].kind, Ino: o.Ino}
			if o.Ino == h.ino {
				op.Path = h.path
			} else {
				op.Path = r.ioPath(o.Ino)
			}
			if r.mode.decidedAtFlush() {
				r.held.nameless[o.Ino] = appendCoalesced(r.held.nameless[o.Ino], op)
			} else {
				r.output.ioBuf = appendCoalesced(r.output.ioBuf, op)
			}
			pos = runEnd
		}
	}
	r.held.heldW = r.held.heldW[:0]
}

// reportUnowned reports every held write to a block no file claimed, as unowned, in the order
// they were written, under the current record (ops come out in log order).
func (r *Resolver) reportUnowned() {
	blocks := make([]uint64, 0, len(r.held.pendW))
	for b := range r.held.pendW {
		blocks = append(blocks, b)
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i] < blocks[j] })
	type item struct {
		b uint64
		p pendWrite
	}
	var items []item
	for _, b := range blocks {
		p0, _ := r.held.pend(b)
		for _, p := range append([]pendWrite{p0}, r.held.pendMore[b]...) {
			if !p.journaled {
				items = append(items, item{b, p})
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].p.seq < items[j].p.seq })
	var unowned []ops.Op
	lastSeq := int64(-1)
	for _, it := range items {
		s := (int64(it.b)*int64(r.bs) + int64(it.p.off)) / blklog.SectorSize
		r.output.stats.UnattributedWriteBytes += int64(it.p.n)
		// Reported now, under the record that makes it certain no file claims the block (as
		// every held write is): the output stays in log order. Writes of one request are
		// merged as before.
		op := ops.Op{Seq: r.now.seq, T: r.now.t, Op: ops.Write, Sector: uint64(s), Bytes: int64(it.p.n), Kind: ops.KindUnowned}
		if n := len(unowned); n > 0 && lastSeq == it.p.seq {
			unowned = appendCoalesced(unowned, op)
		} else {
			unowned = append(unowned, op)
		}
		lastSeq = it.p.seq
	}
	r.held.pendW, r.held.pendMore, r.held.npend = map[uint64]pendRef{}, map[uint64][]pendWrite{}, 0
	r.held.stamps = r.held.stamps[:0]
	for i := range unowned {
		r.output.put(&unowned[i])
	}
}

// suspectWrite is a home write held by holdSuspects.
type suspectWrite struct {
	data   []byte
	seq    int64
	t      float64
	off, n int32
	owner  Owner
}

// holdSuspects takes out of a batch of home writes those to a directory or indirect block whose
// new content cannot be one (entries that do not chain, pointers outside the file system).
// Normally that is the data of a file that takes the block in the same transaction or
// interval: rmdir d and a new file given d's block, its data written home (data=ordered, or
// ext2 in any order) before the inode that frees the block. They are judged by judgeSuspects
// once the owner may have changed; only a block its directory still owns then is an anomaly.
func (r *Resolver) holdSuspects(batch []blockWrite) []blockWrite {
	out := batch[:0]
	for _, w := range batch {
		if w.data == nil || !r.implausible(w.role, w.data) {
			if s, ok := r.held.suspect[w.b]; ok {
				// Superseded by a write that fits: the held one was the owner's I/O.
				delete(r.held.suspect, w.b)
				st := int64(w.b)*int64(r.bs) + int64(s.off)
				r.ioOp(ops.Write, r.blocks.idx.Lookup(w.b), st, st+int64(s.n))
			}
			out = append(out, w)
			continue
		}
		if s, ok := r.held.suspect[w.b]; ok {
			st := int64(w.b)*int64(r.bs) + int64(s.off)
			r.ioOp(ops.Write, r.blocks.idx.Lookup(w.b), st, st+int64(s.n))
		}
		r.held.suspect[w.b] = suspectWrite{data: bytes.Clone(w.data), seq: r.now.seq, t: r.now.t, off: w.off, n: w.n,
			owner: Owner{Role: w.role, Ino: w.ino}}
	}
	return out
}

// implausible reports content that cannot be a block of the given metadata role.
func (r *Resolver) implausible(role Role, b []byte) bool {
	if role == RoleDir {
		return !ext3fs.IsDirBlock(b, r.ft)
	}
	if bm := roleTable[role].blockMap; bm != nil {
		return !bm.plausibleNode(r, role, b)
	}
	return false
}

// judgeSuspects settles the held suspect writes by the owner each block has now: its first
// owner still (applied as written: the anomaly it is), nobody (a pending write, as any write
// to a free block), or a file that took it (a write of that file).
func (r *Resolver) judgeSuspects() {
	if len(r.held.suspect) == 0 {
		return
	}
	blocks := make([]uint64, 0, len(r.held.suspect))
	for b := range r.held.suspect {
		blocks = append(blocks, b)
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i] < blocks[j] })
	seq, t := r.now.seq, r.now.t
	for _, b := range blocks {
		s := r.held.suspect[b]
		delete(r.held.suspect, b)
		o := r.blocks.idx.Lookup(b)
		st := int64(b)*int64(r.bs) + int64(s.off)
		switch {
		case o.Role == s.owner.Role && o.Ino == s.owner.Ino:
			r.now.seq, r.now.t = s.seq, s.t
			w := []blockWrite{{b: b, data: s.data, off: s.off, n: s.n, role: o.Role, ino: o.Ino}}
			r.applyBatch(w)
			r.ioOp(ops.Write, o, st, st+int64(s.n))
			r.now.seq, r.now.t = seq, t
		case o.Role == RoleFree:
			r.blocks.m.putUnowned(b, s.data)
			r.addPending(b, pendWrite{seq: s.seq, t: s.t, off: s.off, n: s.n})
		case o.Role == RoleData && !r.isSystemInode(o.Ino):
			r.holdWrite(b, int64(s.off), int64(s.n), o.Ino)
		default:
			r.ioOp(ops.Write, o, st, st+int64(s.n))
		}
	}
}

// heldIO is the writes that cannot be attributed yet.
type heldIO struct {
	pendW    map[uint64]pendRef     // writes to blocks nobody owns yet (the first per block)
	stamps   []pendStamp            // their requests (pendRef.stamp)
	pendMore map[uint64][]pendWrite // further writes to such blocks (rare)
	npend    int                    // writes in pendW and pendMore
	pendCap  int                    // bound on npend (maxPendingWrites; tests lower it)
	heldW    []heldWrite            // home writes of file data waiting for the next commit
	// suspect: home writes to a directory or map block whose content cannot be one
	// (see holdSuspects), judged once the owner may have changed.
	suspect  map[uint64]suspectWrite
	nameless map[uint32][]ops.Op // I/O of inodes that have no name yet
	drainGen uint64              // namesGen when nameless I/O was last given names
}

func newHeldIO() heldIO {
	return heldIO{pendW: make(map[uint64]pendRef), pendMore: make(map[uint64][]pendWrite), pendCap: maxPendingWrites,
		suspect: make(map[uint64]suspectWrite), nameless: make(map[uint32][]ops.Op)}
}
