package resolver

import (
	"slices"
)

// Owner says who owns a block. Ino is the owning inode for inode-owned roles. Logical is the file
// block (data, dir, symlink, journal), the first file block a map block can map (ind, dind,
// tind, extent), the first inode of the block (inode table), or the block's index within the
// table (group descriptors, reserved gdt). Group is the block group for per-group metadata.
type Owner struct {
	Role    Role
	Ino     uint32
	Logical uint64
	Group   uint32
}

// ixRun is n contiguous blocks from start; o describes block start and advance() the rest.
type ixRun struct {
	start, n uint64
	o        Owner
}

func (r *ixRun) end() uint64 { return r.start + r.n }

// Chunk sizes of the two-level run list: a chunk is split when it grows past ixMaxChunk runs, so an
// update costs O(log chunks + ixMaxChunk) instead of shifting one big slice.
const (
	ixMaxChunk = 256
)

// Index maps every block to its Owner. It stores runs of contiguous blocks with the same owner
// (one run per file extent, not one entry per block) in a sorted two-level list: a slice of
// chunks, each a sorted slice of at most ixMaxChunk runs. Blocks not covered by any run are free.
// An Index is not safe for concurrent use, lookups included (they move its hint).
type Index struct {
	chunks         [][]ixRun
	keys           []uint64 // keys[c] = chunks[c][0].start, searched without touching the chunks
	inodesPerBlock uint64
	blocks         uint64
	// hint is where the last lookup landed, valid until the next change: a file's blocks are
	// claimed, and its writes looked up, in block order, so most lookups fall in the run (or
	// the gap after it) that the one before found, and skip the two binary searches.
	hint ixHint
}

// ixHint is run i of chunk c (i -1: before the chunk's first run), with the blocks [lo, hi)
// from its start up to the next run's; ok is false when it is stale.
type ixHint struct {
	c, i   int
	lo, hi uint64
	ok     bool
}

// NewIndex returns an empty index (every block free) for a file system of the given geometry.
func NewIndex(blocks uint64, inodesPerBlock int) *Index {
	return &Index{blocks: blocks, inodesPerBlock: uint64(inodesPerBlock)}
}

// Blocks is the number of blocks of the file system the index describes.
func (x *Index) Blocks() uint64 { return x.blocks }

// step is how much Logical advances from one block of a run to the next.
func (x *Index) step(r Role) uint64 {
	switch roleTable[r].step {
	case stepBlock:
		return 1
	case stepInodes:
		return x.inodesPerBlock
	}
	return 0
}

func (x *Index) advance(o Owner, k uint64) Owner {
	o.Logical += k * x.step(o.Role)
	return o
}

// chunkFor is the last chunk whose first run starts at or before b (0 if none does).
func (x *Index) chunkFor(b uint64) int {
	lo, hi := 0, len(x.keys) // first chunk starting after b is in [lo, hi]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.keys[m] > b {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return max(lo-1, 0)
}

// lastAtOrBefore is the index of the last run starting at or before b, -1 if none.
func lastAtOrBefore(rs []ixRun, b uint64) int {
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].start > b {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// locate returns the chunk holding the last run starting at or before b and that run's index
// in it (-1 if none does); the index must not be empty.
func (x *Index) locate(b uint64) (int, int) {
	if h := &x.hint; h.ok && h.lo <= b && b < h.hi {
		return h.c, h.i
	}
	ci := x.chunkFor(b)
	rs := x.chunks[ci]
	i := lastAtOrBefore(rs, b)
	h := ixHint{c: ci, i: i, hi: x.blocks, ok: true}
	if i >= 0 {
		h.lo = rs[i].start
	}
	if i+1 < len(rs) {
		h.hi = rs[i+1].start
	} else if ci+1 < len(x.chunks) {
		h.hi = x.keys[ci+1]
	}
	x.hint = h
	return ci, i
}

// Lookup returns the owner of block b, with Logical adjusted to b; RoleFree if no run covers it.
func (x *Index) Lookup(b uint64) Owner {
	if len(x.chunks) == 0 {
		return Owner{}
	}
	ci, i := x.locate(b)
	rs := x.chunks[ci]
	if i < 0 || b >= rs[i].end() {
		return Owner{}
	}
	return x.advance(rs[i].o, b-rs[i].start)
}

// LookupRun returns the owner of block b and how many blocks from b on share it (contiguous
// with Logical advancing). For free blocks n counts up to the next owned block or the end of the
// file system.
func (x *Index) LookupRun(b uint64) (o Owner, n uint64) {
	if len(x.chunks) == 0 {
		return Owner{}, x.blocks - min(b, x.blocks)
	}
	ci, i := x.locate(b)
	rs := x.chunks[ci]
	if i >= 0 && b < rs[i].end() {
		return x.advance(rs[i].o, b-rs[i].start), rs[i].end() - b
	}
	next := x.blocks
	if i+1 < len(rs) {
		next = rs[i+1].start
	} else if ci+1 < len(x.chunks) {
		next = x.chunks[ci+1][0].start
	}
	if next < b {
		return Owner{}, 0
	}
	return Owner{}, next - b
}

// Set records that blocks start..start+n-1 belong to o, o describing block start (Logical
// advances along the run as Lookup reports it). Whatever owned those blocks before is replaced.
func (x *Index) Set(start, n uint64, o Owner) {
	if n == 0 {
		return
	}
	if o.Role == RoleFree {
		x.Clear(start, n)
		return
	}
	x.splice(start, start+n, &ixRun{start, n, o})
}

// Clear marks blocks start..start+n-1 free.
func (x *Index) Clear(start, n uint64) {
	if n == 0 {
		return
	}
	x.splice(start, start+n, nil)
}

// Runs calls fn for every owned run in block order until fn returns false. Adjacent runs may
// describe the same owner; free gaps are not reported.
func (x *Index) Runs(fn func(start, n uint64, o Owner) bool) {
	for _, rs := range x.chunks {
		for _, r := range rs {
			if !fn(r.start, r.n, r.o) {
				return
			}
		}
	}
}

// Len is the number of stored runs (a measure of the index's memory: about 40 bytes each).
func (x *Index) Len() int {
	n := 0
	for _, rs := range x.chunks {
		n += len(rs)
	}
	return n
}

// splice removes [start,end) from every run and, if nr is not nil, inserts nr there.
func (x *Index) splice(start, end uint64, nr *ixRun) {
	x.hint.ok = false
	if len(x.chunks) == 0 {
		if nr != nil {
			x.chunks = [][]ixRun{{*nr}}
			x.keys = []uint64{nr.start}
		}
		return
	}
	ci := x.chunkFor(start)
	inserted := nr == nil
	type window struct{ c, lo, hi int } // runs lo..hi of chunk c may now merge with neighbours
	var wbuf [4]window
	touched := wbuf[:0]
	for c := ci; c < len(x.chunks); c++ {
		rs := x.chunks[c]
		if c > ci && rs[0].start >= end {
			break
		}
		// Runs i..j-1 overlap [start,end).
		i := lastAtOrBefore(rs, start)
		if i < 0 || rs[i].end() <= start {
			i++
		}
		j := i
		for j < len(rs) && rs[j].start < end {
			j++
		}
		if i == j && inserted {
			continue
		}
		// Replacement for rs[i:j]: left remainder, new run, right remainder. Inserting into
		// chunk ci keeps the order: every later chunk starts after start.
		var mid [3]ixRun
		m := mid[:0]
		if i < j && rs[i].start < start {
			l := rs[i]
			l.n = start - l.start
			m = append(m, l)
		}
		if !inserted {
			m = append(m, *nr)
			inserted = true
		}
		if i < j && rs[j-1].end() > end {
			r := rs[j-1]
			k := end - r.start
			r.o = x.advance(r.o, k)
			r.start, r.n = end, r.n-k
			m = append(m, r)
		}
		x.chunks[c] = slices.Replace(rs, i, j, m...)
		touched = append(touched, window{c, i - 1, i + len(m)})
	}
	// Fix up the touched chunks from the last, so deleting or splitting one leaves the
	// indices of the earlier ones valid.
	reshaped := false
	for t := len(touched) - 1; t >= 0; t-- {
		w := touched[t]
		rs := x.chunks[w.c]
		if len(rs) == 0 {
			x.chunks = slices.Delete(x.chunks, w.c, w.c+1)
			reshaped = true
			continue
		}
		for k := min(w.hi, len(rs)-1); k > max(w.lo, 0); k-- {
			p := &rs[k-1]
			if p.end() == rs[k].start && x.advance(p.o, p.n) == rs[k].o {
				p.n += rs[k].n
				rs = slices.Delete(rs, k, k+1)
			}
		}
		x.chunks[w.c] = rs
		if len(rs) > ixMaxChunk {
			h := len(rs) / 2
			second := append(make([]ixRun, 0, ixMaxChunk), rs[h:]...)
			x.chunks[w.c] = rs[:h:h]
			x.chunks = slices.Insert(x.chunks, w.c+1, second)
			reshaped = true
		}
	}
	if reshaped {
		x.keys = x.keys[:0]
		for _, rs := range x.chunks {
			x.keys = append(x.keys, rs[0].start)
		}
		return
	}
	for _, w := range touched {
		x.keys[w.c] = x.chunks[w.c][0].start
	}
}

// buildFrom replaces the index contents with runs (any order), taking over their memory: the
// chunks are windows of it, so the build does not copy 100,000 runs twice more (fresh memory is
// dear: a page fault costs about 40 us on the VMs this runs on). Overlapping runs are applied in
// the given order through Set, so later ones win, as they would for a sequence of writes.
func (x *Index) buildFrom(runs []ixRun) {
	x.hint.ok = false
	// The scan produces a few long ascending stretches (the geometry of every group, then the
	// inodes' blocks, nearly in order): find them, and merge them in place once it is known
	// that no two runs overlap, since the fallback needs the runs in their given order.
	seqs := ascendingStretches(runs)
	if runsOverlap(runs, seqs) {
		x.chunks, x.keys = nil, nil
		for _, r := range runs {
			x.Set(r.start, r.n, r.o)
		}
		return
	}
	mergeStretches(runs, seqs)
	merged := runs[:0]
	for _, r := range runs {
		if k := len(merged); k > 0 {
			p := &merged[k-1]
			if p.end() == r.start && x.advance(p.o, p.n) == r.o {
				p.n += r.n
				continue
			}
		}
		merged = append(merged, r)
	}
	// Chunks of half the maximum, so later inserts do not split them at once; each is capped at
	// its own length, so an insert that grows one moves it to memory of its own.
	x.chunks = make([][]ixRun, 0, (len(merged)+ixMaxChunk/2-1)/(ixMaxChunk/2))
	x.keys = make([]uint64, 0, cap(x.chunks))
	for len(merged) > 0 {
		k := min(len(merged), ixMaxChunk/2)
		x.chunks = append(x.chunks, merged[:k:k])
		x.keys = append(x.keys, merged[0].start)
		merged = merged[k:]
	}
}

// ascendingStretches returns where each maximal stretch of runs with ascending starts begins,
// followed by len(runs).
func ascendingStretches(runs []ixRun) []int {
	seqs := []int{0}
	for i := 1; i < len(runs); i++ {
		if runs[i].start < runs[i-1].start {
			seqs = append(seqs, i)
		}
	}
	return append(seqs, len(runs))
}

// runsOverlap reports whether two runs share a block, reading the stretches (bounds from
// ascendingStretches) in merged order without moving anything: in start order, a run that
// overlaps any earlier one overlaps the one just before it, or one that ends later still.
func runsOverlap(runs []ixRun, seqs []int) bool {
	// A binary min-heap of the stretches' cursors, by the start of the run each points at.
	type cursor struct{ i, end int }
	h := make([]cursor, 0, len(seqs)-1)
	less := func(a, b cursor) bool { return runs[a.i].start < runs[b.i].start }
	down := func(k int) {
		for {
			c := 2*k + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && less(h[c+1], h[c]) {
				c++
			}
			if !less(h[c], h[k]) {
				return
			}
			h[k], h[c] = h[c], h[k]
			k = c
		}
	}
	for s := 0; s+1 < len(seqs); s++ {
		if seqs[s] < seqs[s+1] {
			h = append(h, cursor{seqs[s], seqs[s+1]})
		}
	}
	for k := len(h)/2 - 1; k >= 0; k-- {
		down(k)
	}
	var end uint64 // the furthest end of the runs taken so far
	for len(h) > 0 {
		r := &runs[h[0].i]
		if r.start < end {
			return true
		}
		end = max(end, r.end())
		if h[0].i++; h[0].i == h[0].end {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
	return false
}

// mergeStretches sorts runs by start in place, merging the ascending stretches (bounds from
// ascendingStretches) pairwise, round after round: O(n log stretches) moves, and room for the
// shorter side of each merge only (a few hundred runs on a freshly made file system). The starts
// must be distinct, as they are when no runs overlap.
func mergeStretches(runs []ixRun, seqs []int) {
	var tmp []ixRun
	for len(seqs) > 2 {
		next := seqs[:1]
		for s := 0; s+1 < len(seqs); s += 2 {
			if s+2 < len(seqs) {
				tmp = mergeAdjacent(runs, seqs[s], seqs[s+1], seqs[s+2], tmp)
				next = append(next, seqs[s+2])
			} else {
				next = append(next, seqs[s+1])
			}
		}
		seqs = next
	}
}

// mergeAdjacent merges the sorted runs[lo:mid] and runs[mid:hi] in place, with tmp (returned,
// grown as needed) holding the shorter side of what actually interleaves.
func mergeAdjacent(runs []ixRun, lo, mid, hi int, tmp []ixRun) []ixRun {
	// Runs of the left side before the right's first, and of the right side after the left's
	// last, are already in place.
	lo += sortSearchRuns(runs[lo:mid], runs[mid].start)
	hi = mid + sortSearchRuns(runs[mid:hi], runs[mid-1].start)
	if lo == mid || mid == hi {
		return tmp
	}
	if mid-lo <= hi-mid {
		tmp = append(tmp[:0], runs[lo:mid]...)
		i, j, k := 0, mid, lo
		for i < len(tmp) && j < hi {
			if runs[j].start < tmp[i].start {
				runs[k] = runs[j]
				j++
			} else {
				runs[k] = tmp[i]
				i++
			}
			k++
		}
		copy(runs[k:], tmp[i:])
		return tmp
	}
	tmp = append(tmp[:0], runs[mid:hi]...)
	i, j, k := mid-1, len(tmp)-1, hi-1
	for i >= lo && j >= 0 {
		if runs[i].start > tmp[j].start {
			runs[k] = runs[i]
			i--
		} else {
			runs[k] = tmp[j]
			j--
		}
		k--
	}
	copy(runs[lo:], tmp[:j+1])
	return tmp
}

// sortSearchRuns is the number of runs of the sorted rs that start before b.
func sortSearchRuns(rs []ixRun, b uint64) int {
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].start < b {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
