// Write batches: the blocks of one request, or of one committed transaction, applied to the
// model together and diffed, so that the order of blocks inside a batch cannot matter.

package resolver

import (
	"bytes"
	"slices"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// blockWrite is one block of a write batch.
type blockWrite struct {
	b      uint64
	data   []byte // full new content (nil: payload not captured)
	off, n int32  // part of the block the request wrote
	role   Role   // owner role before the batch
	ino    uint32 // owner before the batch
	old    []byte // previous content, for metadata blocks that changed (see oldBase)
	// oldBase: the previous content is the base image's (the overlay held nothing): old is nil
	// and r.oldOf reads it again where it is used, rather than a copy kept (see model.block).
	oldBase   bool
	changed   bool
	journaled bool
	// owned: data is the batch's to give away (a transaction's TxBlock.Data): the model keeps it
	// rather than a copy (new memory for each block a transaction logs was a tenth of the
	// replay's CPU on the large capture).
	owned bool
	// plain: the block is a free or data block's, its content one the payload filter left out
	// as plain data (payload.go): data is then no content, only what stands for it.
	plain bool
}

// write handles a write request: journal blocks go to the tracker, the rest is one batch.
// omitted marks the blocks of data the payload filter left out (nil: none).
func (r *Resolver) write(sector uint64, length int64, data []byte, omitted *blklog.Omissions, zero bool) {
	start := int64(sector) * blklog.SectorSize
	end := start + length
	bs := int64(r.bs)
	// One entry per block, in a buffer kept from one request to the next: a fresh one per
	// request was most of the per-block cost of a large copy (allocation, and the first touch
	// of new memory, which is slow on the machines this runs on; docs/performance.md).
	batch := r.writeBuf[:0]
	filled := 0                                                      // entries written before holdSuspects shortens batch
	defer func() { clear(batch[:filled]); r.writeBuf = batch[:0] }() // keeps no payload alive
	var txs []Transaction
	for pos := start; pos < end; {
		b := uint64(pos / bs)
		if b >= r.nblk {
			r.anomaly("", 0, "write at byte %d past the end of the file system (%d blocks)", pos, r.nblk)
			break
		}
		in := pos - int64(b)*bs
		n := min(end-pos, bs-in)
		var content []byte
		plain := false
		switch {
		case zero && n == bs:
			content = r.blocks.m.zero
		case zero:
			content = r.blocks.m.blockCopy(b)
			clear(content[in : in+n])
		case data != nil:
			piece := data[pos-start : pos-start+n]
			if n == bs {
				content = piece
				plain = omitted.Has(int(pos - start))
			} else {
				// Partial block: merge into the model's copy.
				content = r.blocks.m.blockCopy(b)
				copy(content[in:], piece)
			}
		}
		o := r.blocks.idx.Lookup(b)
		if plain && o.Role != RoleFree && o.Role != RoleData {
			// Left out as plain data, but the block is not a data block now: its content
			// counts, so the request is read again, whole.
			if data = r.payloadAgain(sector, length); data == nil {
				break
			}
			omitted, plain = nil, false
			content = data[pos-start : pos-start+n]
		}
		if o.Role == RoleJournal && r.jt != nil && content != nil && r.fc.holds(o.Logical) && n == bs {
			r.writeFastCommitBlock(o.Logical, content)
			r.ioOp(ops.Write, o, pos, pos+n)
		} else if o.Role == RoleJournal && r.jt != nil && content != nil {
			ts, err := r.jt.WriteLogBlock(o.Logical, content, r.now.seq)
			if err != nil {
				r.anomaly("", b, "journal block %d: %v", o.Logical, err)
			}
			txs = append(txs, ts...)
			r.ioOp(ops.Write, o, pos, pos+n)
		} else if r.mountReplay[b] {
			// An intermediate state of the mount's fast-commit replay: the model holds its end.
			r.ioOp(ops.Write, o, pos, pos+n)
		} else {
			if plain {
				r.output.stats.LeftOut++
			}
			batch = append(batch, blockWrite{b: b, data: content, off: int32(in), n: int32(n), role: o.Role, ino: o.Ino, plain: plain})
		}
		pos += n
	}
	filled = len(batch)
	r.noteHomeMeta(batch)
	batch = r.holdSuspects(batch)
	if len(batch) > 0 {
		done := r.mode.applying(homeBatch)
		r.applyBatch(batch)
		done()
		for i := range batch {
			w := &batch[i]
			bstart := int64(w.b)*bs + int64(w.off)
			o := r.blocks.idx.Lookup(w.b)
			switch {
			case o.Role == RoleFree:
				r.addPending(w.b, pendWrite{seq: r.now.seq, t: r.now.t, off: w.off, n: w.n})
			case (o.Role == RoleData || o.Role == RoleSymlink) && !r.isSystemInode(o.Ino):
				// (A slow symlink's block too: freed with the link, a new file may take it.)
				r.holdWrite(w.b, int64(w.off), int64(w.n), o.Ino)
			default:
				r.ioOp(ops.Write, o, bstart, bstart+int64(w.n))
			}
		}
	}
	for _, tx := range txs {
		r.applyTransaction(tx)
	}
	r.applyFastCommits()
	r.flushRecord(false)
}

// applyTransaction applies a committed journal transaction as one batch, so the order of its
// blocks cannot matter.
func (r *Resolver) applyTransaction(tx Transaction) {
	r.output.stats.Transactions++
	r.mountReplay = nil // the mount is over: the guest commits its own changes
	// A guest that commits transactions orders its metadata through the journal: back to the
	// journaled rules if home writes switched them off (a journal replayed at mount writes
	// its blocks home before the guest commits anything of its own).
	r.mode.committed()
	defer r.mode.applying(journalBatch)()
	batch := slices.Grow(r.txBuf[:0], len(tx.Blocks)) // reused as writeBuf is
	defer func() { clear(batch); r.txBuf = batch[:0] }()
	for _, tb := range tx.Blocks {
		if tb.FSBlock >= r.nblk {
			r.anomaly("", 0, "journal transaction %d logs block %d past the end of the file system", tx.Seq, tb.FSBlock)
			continue
		}
		o := r.blocks.idx.Lookup(tb.FSBlock)
		batch = append(batch, blockWrite{b: tb.FSBlock, data: tb.Data, n: int32(r.bs), role: o.Role, ino: o.Ino, journaled: true, owned: true})
	}
	r.applyBatch(batch)
	r.settleFastCommitNames(tx.Seq)
	r.judgeSuspects()
	// A committed transaction is atomic: decide at once.
	r.resolveTouched()
	r.releaseHeld()
	for i := range batch {
		w := &batch[i]
		o := r.blocks.idx.Lookup(w.b)
		switch {
		case o.Role == RoleFree:
			r.addPending(w.b, pendWrite{seq: r.now.seq, t: r.now.t, n: int32(r.bs), journaled: true})
		case o.Role == RoleData:
			// data=journal: the file's data passes through the journal.
			s := int64(w.b) * int64(r.bs)
			r.ioOp(ops.Write, o, s, s+int64(r.bs))
		}
	}
}

// applyBatch applies the blocks to the model, then diffs them: inode tables first (they claim
// and release blocks), then directory and indirect blocks by their owner after that.
func (r *Resolver) applyBatch(batch []blockWrite) {
	own := &r.blocks
	clear(own.claimed)
	for i := range batch {
		w := &batch[i]
		if w.data == nil {
			continue
		}
		ri := &roleTable[w.role]
		switch {
		case ri.kept:
			old := own.m.block(w.b)
			if bytes.Equal(old, w.data) {
				continue
			}
			adopt := w.owned && len(w.data) == len(old)
			switch {
			case !own.m.written(w.b):
				// The base image's, in block's buffer: read again where diffed (oldOf).
				old, w.oldBase = nil, true
			case own.m.isZeroed(w.b) || own.m.written(w.b) && !adopt:
				// The shared zero block, or the overlay's buffer, which put copies into;
				// adopt replaces the overlay's buffer (it is then the batch's alone).
				old = bytes.Clone(old)
			}
			w.old = old
			w.changed = true
			if adopt {
				own.m.adopt(w.b, w.data)
			} else {
				own.m.put(w.b, w.data)
			}
			if ri.credited {
				own.metaWritten[w.b] = true
			}
		case w.role == RoleFree && w.plain:
			w.changed = true
			own.m.drop(w.b) // what putUnowned does with plain data
		case w.role == RoleFree:
			w.changed = true
			own.m.putUnowned(w.b, w.data)
		case w.role == RoleData && !w.plain && own.m.couldBeMetadata(w.data):
			// It may be made a map node in this same batch (see ownership.dataKept).
			own.m.drop(w.b)
			own.m.putUnowned(w.b, w.data)
			own.dataKept[w.b] = true
		case w.role == RoleData || w.role == RoleJournal:
			own.m.drop(w.b)
		}
	}
	// A directory or map block rewritten in the batch that also frees it (the last entry
	// moved out of a directory removed in the same transaction, the pointers of an indirect
	// block zeroed by the truncate that frees it) is released by what it held before the
	// batch, not by its new content: credit the old content first.
	for i := range batch {
		w := &batch[i]
		if !w.changed {
			continue
		}
		switch {
		case w.role == RoleDir:
			if _, ok := own.credDir[w.b]; !ok {
				if olds, err := r.parseDents(r.oldOf(w)); err == nil {
					own.credDir[w.b] = olds
				}
			}
		case roleTable[w.role].blockMap != nil:
			if _, ok := own.credNode[w.b]; !ok {
				if w.oldBase {
					own.credNode[w.b] = bytes.Clone(r.oldOf(w))
				} else {
					own.credNode[w.b] = w.old
				}
			}
		}
	}
	for i := range batch {
		w := &batch[i]
		if w.changed && w.role == RoleInodeTable {
			r.diffInodeBlock(w.b, r.oldOf(w), w.data)
		}
	}
	for i := range batch {
		w := &batch[i]
		if !w.changed || w.role == RoleInodeTable || own.claimed[w.b] {
			continue
		}
		o := own.idx.Lookup(w.b)
		if o.Role != w.role || o.Ino != w.ino {
			continue // released in this batch, or claimed (and decoded) by a new owner
		}
		if !r.checksumOK(w.b, o, w.data) {
			continue
		}
		switch {
		case o.Role == RoleDir:
			r.diffDirBlock(w.b, o.Ino, r.oldOf(w), w.data)
		case roleTable[o.Role].blockMap != nil:
			r.diffNode(w.b, o, r.oldOf(w), w.data)
		}
	}
	if !r.mode.claimsHeld() {
		own.endBatch()
	}
}

// oldOf is w's content before the batch: w.old, or the base image's block read again into a
// buffer that the next call reuses (nothing keeps it: the diffs decode it and move on).
func (r *Resolver) oldOf(w *blockWrite) []byte {
	if !w.oldBase {
		return w.old
	}
	if r.oldBuf == nil {
		r.oldBuf = make([]byte, r.bs)
	}
	r.blocks.m.readBase(w.b, r.oldBuf)
	return r.oldBuf
}

// noteHomeMeta switches a journaled file system to the homeWrites rules at the first home
// write that changes an inode-table block (see mode.homeMetadataChanged). Only the inode table
// is looked at: it is never file data, while a directory or indirect block
// may legitimately receive a new file's data before the commit that frees it (data=ordered).
// Home writes before the switch in the same flush interval are held like the ext2 rules hold
// them (see mode.claimsHeld), so the decision at the flush does not depend on where the write came.
func (r *Resolver) noteHomeMeta(batch []blockWrite) {
	if r.mode.decidedAtFlush() {
		return
	}
	for i := range batch {
		w := &batch[i]
		if w.role == RoleInodeTable && w.data != nil && !bytes.Equal(r.blocks.m.block(w.b), w.data) {
			r.mode.homeMetadataChanged()
			return
		}
	}
}

// checksumOK verifies, on a metadata_csum file system, the checksum of a directory or extent
// block that a committed transaction writes, against its owner o (the checksum is seeded with
// the owner's inode number and generation). A bad one is an anomaly naming the structure, and
// the content is not decoded: a torn write or a driver bug, not a change to report. Home
// writes are not judged: without a transaction, the owner (and so the seed) may still change
// in the same interval.
func (r *Resolver) checksumOK(b uint64, o Owner, data []byte) bool {
	sb := r.fs.SB
	if !sb.HasMetadataCsum() || r.mode.batch != journalBatch || (o.Role != RoleDir && o.Role != RoleExtent) {
		return true
	}
	in, err := r.fs.ReadInode(o.Ino)
	if err != nil {
		return true
	}
	var c ext3fs.Checksum
	if o.Role == RoleDir {
		c, err = sb.DirBlockChecksum(o.Ino, in.Generation, data)
	} else {
		c, err = sb.ExtentBlockChecksum(o.Ino, in.Generation, data)
	}
	if err != nil || c.OK() {
		return true // not a checksummed form (an old-style block); its decoding judges it
	}
	r.anomaly(r.bestPath(o.Ino), b, "%s block %d of inode %d: %v; not decoded", o.Role, b, o.Ino, c.Err())
	return false
}

// inodeChecksumOK is checksumOK for one inode of an inode-table block (raw is the inode).
func (r *Resolver) inodeChecksumOK(ino uint32, blk uint64, raw []byte) bool {
	sb := r.fs.SB
	if !sb.HasMetadataCsum() || r.mode.batch != journalBatch {
		return true
	}
	c, err := sb.InodeChecksum(ino, raw)
	if err != nil || c.OK() {
		return true
	}
	r.anomaly(r.bestPath(ino), blk, "inode %d in block %d: %v; not decoded", ino, blk, c.Err())
	return false
}
