// Writes that cannot be decided yet: to blocks nobody owns (pending until a claim), to blocks
// whose owner may change before the commit (held until it), and metadata writes that look broken
// (suspect until their owner is certain).

package resolver

import (
	"bytes"
	"cmp"
	"math"
	"slices"
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

// pendRun is the first pending writes of consecutive blocks start..start+n-1, each written
// whole by the request of one stamp. A large copy into free blocks, claimed at the next commit,
// is a few runs where one map entry per block cost a hash and a cache miss at every add and
// settle (a tenth of analyze's CPU on a 1 GiB copy).
type pendRun struct {
	start uint64
	n     uint32
	stamp uint32
}

func (p *pendRun) end() uint64 { return p.start + uint64(p.n) }

// maxPendRuns bounds runs (16 bytes each): a run is inserted in place, so a log of scattered
// writes must not make thousands; past it, blocks go to pendW.
const maxPendRuns = 4096

// stamp returns the index of p's stamp, appending it unless it is the last one. Stamps no pending
// write refers to any more are dropped when they outnumber the pending writes twice over.
func (h *heldIO) stamp(p pendWrite) uint32 {
	st := pendStamp{seq: p.seq, t: p.t, journaled: p.journaled}
	if n := len(h.stamps); n > 0 && h.stamps[n-1] == st {
		return uint32(n - 1)
	}
	if len(h.stamps) >= 2*(len(h.pendW)+h.inRuns)+1024 {
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
	for _, run := range h.runs {
		used[run.stamp] = true
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
	for i := range h.runs {
		h.runs[i].stamp = renum[h.runs[i].stamp]
	}
}

// runAt is the index of the run holding block b, -1 if none. Blocks are added and claimed in
// order mostly: the run last used and the next are tried before a search.
func (h *heldIO) runAt(b uint64) int {
	if i := h.last; i < len(h.runs) && h.runs[i].start <= b {
		if b < h.runs[i].end() {
			return i
		}
		if i+1 < len(h.runs) && h.runs[i+1].start <= b && b < h.runs[i+1].end() {
			h.last = i + 1
			return i + 1
		}
	}
	i, _ := slices.BinarySearchFunc(h.runs, b, func(r pendRun, b uint64) int { return cmp.Compare(r.start, b) })
	// i: the first run starting at or after b.
	if i < len(h.runs) && h.runs[i].start == b {
		h.last = i
		return i
	}
	if i > 0 && b < h.runs[i-1].end() {
		h.last = i - 1
		return i - 1
	}
	return -1
}

// add holds p, the write of block b, as its first pending write; false if b has one already.
func (h *heldIO) add(b uint64, p pendWrite) bool {
	if h.runAt(b) >= 0 {
		return false
	}
	if _, ok := h.pendW[b]; ok {
		return false
	}
	st := h.stamp(p)
	if p.off == 0 && p.n == h.bs {
		// A whole block: extends the run of the same request that ends at b (b is in no run),
		// or starts one.
		if i := h.last; i < len(h.runs) && h.runs[i].stamp == st && h.runs[i].end() == b && h.runs[i].n < math.MaxUint32 {
			h.runs[i].n++
			h.inRuns++
			return true
		}
		if len(h.runs) < maxPendRuns {
			i, _ := slices.BinarySearchFunc(h.runs, b, func(r pendRun, b uint64) int { return cmp.Compare(r.start, b) })
			h.runs = slices.Insert(h.runs, i, pendRun{start: b, n: 1, stamp: st})
			h.last = i
			h.inRuns++
			return true
		}
	}
	h.pendW[b] = pendRef{stamp: st, off: p.off, n: p.n}
	return true
}

// pend returns block b's first pending write, if it has one.
func (h *heldIO) pend(b uint64) (pendWrite, bool) {
	if i := h.runAt(b); i >= 0 {
		st := h.stamps[h.runs[i].stamp]
		return pendWrite{seq: st.seq, t: st.t, n: h.bs, journaled: st.journaled}, true
	}
	ref, ok := h.pendW[b]
	if !ok {
		return pendWrite{}, false
	}
	st := h.stamps[ref.stamp]
	return pendWrite{seq: st.seq, t: st.t, off: ref.off, n: ref.n, journaled: st.journaled}, true
}

// take returns block b's first pending write, if it has one, and forgets it.
func (h *heldIO) take(b uint64) (pendWrite, bool) {
	i := h.runAt(b)
	if i < 0 {
		ref, ok := h.pendW[b]
		if !ok {
			return pendWrite{}, false
		}
		delete(h.pendW, b)
		st := h.stamps[ref.stamp]
		return pendWrite{seq: st.seq, t: st.t, off: ref.off, n: ref.n, journaled: st.journaled}, true
	}
	run := &h.runs[i]
	st := h.stamps[run.stamp]
	h.inRuns--
	switch {
	case run.n == 1:
		h.runs = slices.Delete(h.runs, i, i+1)
	case b == run.start:
		run.start++
		run.n--
	case b == run.end()-1:
		run.n--
	default:
		rest := pendRun{start: b + 1, n: uint32(run.end() - b - 1), stamp: run.stamp}
		run.n = uint32(b - run.start)
		if len(h.runs) < maxPendRuns {
			h.runs = slices.Insert(h.runs, i+1, rest)
			h.last = i + 1
			break
		}
		// No room for another run (claims out of order cutting runs up must not make
		// thousands, each inserted in place): the rest goes to pendW, once.
		for blk := rest.start; blk < rest.end(); blk++ {
			h.pendW[blk] = pendRef{stamp: rest.stamp, n: h.bs}
		}
		h.inRuns -= int(rest.n)
	}
	return pendWrite{seq: st.seq, t: st.t, n: h.bs, journaled: st.journaled}, true
}

// addPending holds a write to a block nobody owns until a claim or the end of the log.
func (r *Resolver) addPending(b uint64, p pendWrite) {
	if r.held.npend >= r.held.pendCap {
		r.flushRecord(false)
		r.reportUnowned()
	}
	r.held.npend++
	if !r.held.add(b, p) {
		r.held.pendMore[b] = append(r.held.pendMore[b], p)
	}
}

// settlePending reports the held writes of block b, now owned by o.
func (r *Resolver) settlePending(b uint64, o Owner) {
	p0, ok := r.held.take(b)
	if !ok {
		return
	}
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
				r.output.io.pushCoalesced(op)
			}
			pos = runEnd
		}
	}
	r.held.heldW = r.held.heldW[:0]
}

// reportUnowned reports every held write to a block no file claimed, as unowned, in the order
// they were written, under the current record (ops come out in log order).
func (r *Resolver) reportUnowned() {
	blocks := make([]uint64, 0, len(r.held.pendW)+r.held.inRuns)
	for b := range r.held.pendW {
		blocks = append(blocks, b)
	}
	for _, run := range r.held.runs {
		for b := run.start; b < run.end(); b++ {
			blocks = append(blocks, b)
		}
	}
	slices.Sort(blocks)
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
	r.held.runs, r.held.inRuns = r.held.runs[:0], 0
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
	pendW    map[uint64]pendRef     // writes to blocks nobody owns yet (the first per block)...
	runs     []pendRun              // ...or for whole blocks, in runs (sorted, disjoint, none in pendW)
	inRuns   int                    // blocks in runs
	last     int                    // the run last used (a hint)
	bs       int32                  // block size: what a write in a run wrote
	stamps   []pendStamp            // their requests (pendRef.stamp, pendRun.stamp)
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

func newHeldIO(bs int) heldIO {
	return heldIO{bs: int32(bs), pendW: make(map[uint64]pendRef), pendMore: make(map[uint64][]pendWrite), pendCap: maxPendingWrites,
		suspect: make(map[uint64]suspectWrite), nameless: make(map[uint32][]ops.Op)}
}
