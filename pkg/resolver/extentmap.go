package resolver

import (
	"encoding/binary"
	"slices"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// extentMap is ext4's block map: i_block holds the root of an extent tree (a 12-byte header
// and up to 4 entries); a leaf entry maps a run of file blocks to a run of physical blocks,
// an index entry points at a child node block (RoleExtent) whose own header gives its depth
// (Documentation/filesystems/ext4/dynamic.rst, e2fsprogs lib/ext2fs/extent.c).
//
// A change of a node (the root, or a node block rewritten) is diffed as ranges: a block stays
// with its file when the new content still maps the same logical block to it, everything the
// old content mapped otherwise is released and everything the new content maps otherwise is
// claimed. So a leaf that grows by appending claims only the new blocks, a split moves
// entries between nodes without releasing their blocks when both nodes change in one batch
// (the old node's content is credited before the batch, see applyBatch), and unwritten
// (fallocated) extents own their blocks like written ones: converting one on write changes
// no ownership.
type extentMap struct{}

// extRun is one thing an extent node maps: n file blocks from logical to physical blocks
// from phys (a leaf entry), or a child node at phys covering file blocks from logical (an
// index entry, n 0).
type extRun struct {
	logical, phys uint64
	n             uint64
}

// extentRuns decodes node content c (a root or a tree block) into what it maps, sorted by
// logical block, data runs and child nodes apart. ok is false for content that is no extent
// node: it maps nothing.
func extentRuns(c []byte) (data, nodes []extRun, ok bool) {
	_, ext, idx, err := ext3fs.ParseExtentNode(c)
	if err != nil {
		return nil, nil, false
	}
	for _, e := range ext {
		if e.Len > 0 {
			data = append(data, extRun{uint64(e.Block), e.Start, uint64(e.Len)})
		}
	}
	for _, x := range idx {
		nodes = append(nodes, extRun{logical: uint64(x.Block), phys: x.Leaf})
	}
	slices.SortFunc(data, func(a, b extRun) int { return cmpU64(a.logical, b.logical) })
	return data, nodes, true
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rootBytes is i_block as the 60 bytes of an extent root.
func rootBytes(root [15]uint32) []byte {
	b := make([]byte, 60)
	for i, v := range root {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// dataOnlyIn calls fn for every stretch of a's data runs that b does not map identically
// (the same logical block to the same physical block). Both are sorted by logical block.
func dataOnlyIn(a, b []extRun, fn func(logical, phys, n uint64)) {
	j := 0
	for _, r := range a {
		pos, end := r.logical, r.logical+r.n
		for pos < end {
			for j < len(b) && b[j].logical+b[j].n <= pos {
				j++
			}
			if j == len(b) || b[j].logical >= end {
				fn(pos, r.phys+(pos-r.logical), end-pos)
				break
			}
			o := b[j]
			if o.logical > pos {
				// A gap in b before its next run.
				fn(pos, r.phys+(pos-r.logical), o.logical-pos)
				pos = o.logical
				continue
			}
			// b's run o covers pos up to stop.
			stop := min(end, o.logical+o.n)
			if o.phys-o.logical != r.phys-r.logical {
				fn(pos, r.phys+(pos-r.logical), stop-pos)
			}
			pos = stop
		}
	}
}

// nodesOnlyIn returns the child nodes of a that b does not have (by physical block).
func nodesOnlyIn(a, b []extRun) []extRun {
	var out []extRun
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y extRun) bool { return y.phys == x.phys }) {
			out = append(out, x)
		}
	}
	return out
}

func (extentMap) diffRoot(r *Resolver, ino uint32, role Role, old, cur [15]uint32, blk uint64) {
	var oc, cc []byte
	if old != ([15]uint32{}) {
		oc = rootBytes(old)
	}
	if cur != ([15]uint32{}) {
		cc = rootBytes(cur)
	}
	if oc != nil {
		extentMap{}.releaseChanged(r, ino, RoleExtent, oc, cc)
	}
	if cc != nil {
		// The root lives in the inode: blk (its inode-table block) stands for the node.
		extentMap{}.claimChildren(r, ino, role, blk, RoleExtent, 0, oc, cc)
	}
}

func (extentMap) releaseChanged(r *Resolver, ino uint32, _ Role, old, cur []byte) {
	od, on, ok := extentRuns(old)
	if !ok {
		return
	}
	var cd, cn []extRun
	if cur != nil {
		cd, cn, _ = extentRuns(cur)
	}
	dataOnlyIn(od, cd, func(_, phys, n uint64) {
		for b := phys; b < phys+n && b < r.nblk; b++ {
			r.release(ino, b, RoleData)
		}
	})
	for _, x := range nodesOnlyIn(on, cn) {
		r.release(ino, x.phys, RoleExtent)
	}
}

func (extentMap) claimChildren(r *Resolver, ino uint32, role Role, b uint64, _ Role, _ uint64, old, cur []byte) {
	cd, cn, ok := extentRuns(cur)
	if !ok {
		return
	}
	var od, on []extRun
	if old != nil {
		od, on, _ = extentRuns(old)
	}
	var rb runBuilder
	dataOnlyIn(cd, od, func(logical, phys, n uint64) {
		if phys+n > r.nblk || phys+n < phys {
			// Claimed block by block, the first outside the disk would be one anomaly per
			// block: one for the run.
			r.anomaly(r.bestPath(ino), b, "inode %d maps file blocks %d.. to blocks %d..%d, past the end of the file system (%d blocks)",
				ino, logical, phys, phys+n-1, r.nblk)
			return
		}
		for i := uint64(0); i < n; i++ {
			r.claimData(&rb, ino, role, phys+i, logical+i, b)
		}
	})
	r.flushRun(&rb)
	for _, x := range nodesOnlyIn(cn, on) {
		if !r.claimNode(ino, role, x.phys, RoleExtent, x.logical, b) {
			break
		}
	}
}

func (extentMap) plausibleNode(_ *Resolver, _ Role, c []byte) bool {
	_, _, ok := extentRuns(c)
	return ok
}
