package resolver

import (
	"bytes"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

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
		if !r.inodeChecksumOK(first+uint32(i), b, cur[lo:hi]) {
			continue
		}
		r.inodeChanged(first+uint32(i), b, old[lo:hi], cur[lo:hi])
	}
}

// inodeChanged turns one inode's change into events: blocks claimed and released, allocation,
// free, link count and size changes.
func (r *Resolver) inodeChanged(ino uint32, blk uint64, ob, nb []byte) {
	if r.isSystemInode(ino) {
		return // the journal's, the resize inode's, the orphan file's: structure, not files
	}
	if r.mode.decidedAtFlush() {
		r.ns.inoWritten.set(ino, r.now.flushNo)
	}
	oi, err1 := ext3fs.ParseInode(ob)
	ni, err2 := ext3fs.ParseInode(nb)
	if err2 != nil {
		r.anomaly("", blk, "inode %d: %v", ino, err2)
		return
	}
	if _, ok := r.ns.orphanPath[ino]; ok && (!ni.Allocated() || ni.Live()) {
		delete(r.ns.orphanPath, ino) // freed at last, or the slot is a new file
	}
	if err1 != nil {
		oi = nil
	}
	reuse := oi.Live() && ni.Live() && (oi.Generation != ni.Generation || oi.Type() != ni.Type())
	// Blocks.
	oMap, nMap := mapOf(oi), mapOf(ni)
	r.diffBlockMap(ino, blk, oi, ni, oMap, nMap, reuse)
	r.diffInlineDir(ino, blk, oi, ni, ob, nb)
	r.inlineWrite(ino, blk, oi, ni, ob, nb)
	// Namespace evidence.
	// (Only inodes with such evidence get a pending entry: most inode writes are size and time
	// updates.)
	oLive, nLive := oi.Live(), ni.Live()
	p := r.ns.pend.get(ino)
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
		r.ns.touched.add(ino)
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
			r.output.ns.push(ops.Op{Seq: r.now.seq, T: r.now.t, Op: ops.Truncate, Path: path, Ino: ino, Size: &size})
		}
	}
}

// diffBlockMap updates block ownership for an inode's change from oi to ni, through the block
// map schemes of each (nil: no blocks followed). reuse: the slot now holds another file, so
// the first one's blocks all go and the new one's are all claimed.
func (r *Resolver) diffBlockMap(ino uint32, blk uint64, oi, ni *ext3fs.Inode, oMap, nMap blockMap, reuse bool) {
	var none, old, cur [15]uint32
	if oMap != nil && !reuse {
		old = oi.Block
	} else if oMap != nil && reuse {
		oMap.diffRoot(r, ino, dataRole(oi), oi.Block, none, blk)
	}
	if nMap != nil {
		cur = ni.Block
	}
	role := RoleData
	if nMap != nil {
		role = dataRole(ni)
	} else if oMap != nil {
		role = dataRole(oi)
	}
	if old == cur && !(reuse && nMap != nil) {
		return
	}
	if oMap != nil && !reuse && nMap != nil && (dataRole(oi) != dataRole(ni) || oMap != nMap) {
		// Another kind of file, or another scheme, in the same inode: nothing carries over.
		oMap.diffRoot(r, ino, role, old, none, blk)
		old = none
	}
	bm := nMap
	if bm == nil {
		bm = oMap
	}
	bm.diffRoot(r, ino, role, old, cur, blk)
}

// diffInlineDir turns a change of an inline directory's entries (stored in the inode, ext4
// inline_data) into name events, as a directory block's change is. A directory growing out of
// its inode into a block loses its inline entries here and gains them in the block: the same
// names, so no event survives (see cancelReturns).
func (r *Resolver) diffInlineDir(ino uint32, blk uint64, oi, ni *ext3fs.Inode, ob, nb []byte) {
	if (oi == nil || !oi.HasInlineData()) && !ni.HasInlineData() {
		return
	}
	olds, _ := inlineDents(oi, ob, r.ft)
	news, err := inlineDents(ni, nb, r.ft)
	if err != nil {
		// Keep the entries as they were: a broken inline directory says nothing reliable.
		r.anomaly(r.bestPath(ino), blk, "inline directory inode %d: %v", ino, err)
		return
	}
	r.applyDents(blk, ino, olds, news)
}

// inlineWrite reports a change of an inline file's data (ext4 inline_data: a small file's bytes
// live in its inode) as a write of that file: the disk writes them as part of the inode, so the
// op's sector and bytes are the inode's place in the table and the data's length.
func (r *Resolver) inlineWrite(ino uint32, blk uint64, oi, ni *ext3fs.Inode, ob, nb []byte) {
	if !ni.HasInlineData() || ni.Type() != ext3fs.TypeRegular || !ni.Live() {
		return
	}
	cur, err := ext3fs.InlineData(ni, nb)
	if err != nil || len(cur) == 0 {
		return
	}
	if oi != nil && oi.HasInlineData() && oi.Generation == ni.Generation {
		if old, err := ext3fs.InlineData(oi, ob); err == nil && bytes.Equal(old, cur) {
			return
		}
	}
	_, off := r.fs.InodeLocation(ino)
	start := int64(blk)*int64(r.bs) + int64(off)
	r.ioOp(ops.Write, Owner{Role: RoleData, Ino: ino}, start, start+int64(len(cur)))
}
