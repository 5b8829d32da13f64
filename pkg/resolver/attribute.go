// I/O attribution: which file, path and kind a read or write belongs to at a given moment.

package resolver

import (
	"fmt"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// ioOp builds the read or write op for bytes [start,end) of the device owned by o, and queues it.
func (r *Resolver) ioOp(typ ops.Type, o Owner, start, end int64) {
	k := roleTable[o.Role].kind
	file := roleTable[o.Role].file
	if file && r.isSystemInode(o.Ino) {
		// Blocks of inodes that are file-system structure, not files: the journal's, the
		// resize inode's, ext4's orphan file (the list of inodes to free at mount).
		file = false
		switch o.Ino {
		case r.fs.SB.JournalInum:
			k = ops.KindJournal
		case r.fs.SB.OrphanFileInum:
			k = ops.KindInode
		default:
			k = ops.KindGDT
		}
	}
	if k.IsMetadata() && !file && !r.opt.Metadata {
		return
	}
	op := ops.Op{Seq: r.now.seq, T: r.now.t, Op: typ, Sector: uint64(start) / blklog.SectorSize, Bytes: end - start, Kind: k}
	if file {
		op.Ino = o.Ino
		op.Path = r.ioPath(o.Ino) // as a fallback: flushRecord prefers the path after this record
		if r.mode.decidedAtFlush() && typ == ops.Read {
			// Without a journal, names change block by block and are decided at the next flush;
			// a read is attributed by the last decided names, so that where the device put it
			// among the interval's writes does not matter.
			if p := r.settledPath(o.Ino); p != "" {
				op.Path = p
			}
		}
		if r.mode.decidedAtFlush() && typ == ops.Write {
			// The file has no name yet (its directory entry comes later), or, without a
			// journal, its inode may still turn out to be a new file: hold its I/O.
			r.held.nameless[o.Ino] = appendCoalesced(r.held.nameless[o.Ino], op)
			return
		}
	}
	r.output.io.pushCoalesced(op)
}

// ioPath is the path I/O of ino is reported under: its name, or for a file with several names
// the first in sort order (the disk cannot tell which name a program used; a fixed rule keeps
// the answer the same whatever order the names were written in).
func (r *Resolver) ioPath(ino uint32) string {
	if r.ns.pcIno == ino && r.ns.pcGen == r.ns.namesGen && r.ns.pcIno != 0 {
		return r.ns.pcPath // a run of blocks of one file: build its path once
	}
	p := r.ioPathSlow(ino)
	r.ns.pcIno, r.ns.pcGen, r.ns.pcPath = ino, r.ns.namesGen, p
	return p
}

// settledPath is ino's path by the names as last decided: links gained since are left out and
// links lost since still count (the new names of a file that had none are used), so that it does
// not depend on where the device put a request among the writes of the same interval.
func (r *Resolver) settledPath(ino uint32) string { return r.settledPathDepth(ino, 0) }

func (r *Resolver) settledPathDepth(ino uint32, depth int) string {
	if ino == ext3fs.RootIno {
		return "/"
	}
	if depth > 4096 {
		return ""
	}
	ls := r.ns.names.Links(ino)
	if p := r.ns.pend.get(ino); p != nil && (len(p.adds) > 0 || len(p.rems) > 0) {
		var kept []Link
		for _, l := range ls {
			if !p.hasAdd(l) {
				kept = append(kept, l)
			}
		}
		for _, m := range p.rems {
			kept = append(kept, m.l)
		}
		if len(kept) > 0 {
			ls = kept
		}
	}
	best := ""
	for _, l := range ls {
		dir := r.settledPathDepth(l.Parent, depth+1)
		if dir == "" {
			continue
		}
		p := joinPath(dir, l.Name)
		if best == "" || p < best {
			best = p
		}
	}
	return best
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func (r *Resolver) ioPathSlow(ino uint32) string {
	ls := r.ns.names.Links(ino)
	if len(ls) > 1 {
		best := ""
		for _, l := range ls {
			if !r.ns.names.HasPath(l.Parent) {
				continue
			}
			if p := r.linkPath(l); best == "" || p < best {
				best = p
			}
		}
		if best != "" {
			return best
		}
	}
	return r.ns.names.Path(ino)
}

// appendCoalesced appends op, merging it into the last one when it continues it.
func appendCoalesced(l []ops.Op, op ops.Op) []ops.Op {
	if n := len(l); n > 0 && ops.Extends(&l[n-1], &op) {
		l[n-1].Bytes += op.Bytes
		return l
	}
	return append(l, op)
}

// read attributes a read request, block run by block run.
func (r *Resolver) read(sector uint64, length int64) {
	start := int64(sector) * blklog.SectorSize
	end := start + length
	bs := int64(r.bs)
	for pos := start; pos < end; {
		b := uint64(pos / bs)
		if b >= r.nblk {
			break
		}
		o, n := r.blocks.idx.LookupRun(b)
		if n == 0 {
			n = 1
		}
		if o.Role == RoleFree && b < uint64(r.fs.SB.FirstDataBlock) {
			o.Role, n = RoleSuper, uint64(r.fs.SB.FirstDataBlock)-b // boot block of a 1 KiB fs
		}
		runEnd := min(end, int64(b+n)*bs)
		if o.Role == RoleFree {
			r.output.stats.UnattributedReadBytes += runEnd - pos
		}
		r.ioOp(ops.Read, o, pos, runEnd)
		pos = runEnd
	}
	r.flushRecord(false)
}

// bestPath names an inode for output even when it has no name any more.
func (r *Resolver) bestPath(ino uint32) string {
	if p := r.pathOrRemoved(ino, 0); p != "" {
		return p
	}
	return fmt.Sprintf("<inode %d>", ino)
}

// pathOrRemoved is the path of ino, taking for ino and for each directory above it whose name
// was removed but is not decided yet the path that name had: "rm -rf d" writes the blocks of
// d, d/sub and the root in any order, and d/sub/f's path must not depend on which came first.
func (r *Resolver) pathOrRemoved(ino uint32, depth int) string {
	if p := r.ns.names.Path(ino); p != "" {
		return p
	}
	if ls := r.ns.names.Links(ino); len(ls) > 0 && depth < namesMaxDepth {
		if dir := r.pathOrRemoved(ls[0].Parent, depth+1); dir != "" {
			if dir == "/" {
				return "/" + ls[0].Name
			}
			return dir + "/" + ls[0].Name
		}
	}
	if p := r.ns.pend.get(ino); p != nil && len(p.rems) > 0 {
		return p.rems[len(p.rems)-1].path
	}
	return r.ns.orphanPath[ino]
}

// isSystemInode reports inodes that hold file-system structure and have no name: the reserved
// inodes (but the root) and, with orphan_file, the orphan file (an ordinary inode number).
func (r *Resolver) isSystemInode(ino uint32) bool {
	sb := r.fs.SB
	return (ino < sb.FirstIno && ino != ext3fs.RootIno) ||
		(sb.FeatureCompat&ext3fs.CompatOrphanFile != 0 && ino == sb.OrphanFileInum)
}
