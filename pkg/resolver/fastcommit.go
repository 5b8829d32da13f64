// Fast commits (ext4 fast_commit). An fsync may make its changes durable by writing tagged
// records to the fast-commit area after the jbd2 log (ext3fs/fastcommit.go) instead of
// committing a transaction; the changes reach their home blocks only with the next full commit,
// seconds or minutes later, or never if the power goes first. The resolver follows the area as
// the kernel's replay (fs/ext4/fast_commit.c, ext4_fc_replay_scan) would read it after a crash:
//
//   - Every write to the area is kept; after it, the area is scanned from its first block with
//     the tid of its HEAD record, which must be newer than the last full commit seen (a HEAD of
//     a committed tid is a stale round). Fast commits of that round not applied yet — each ends
//     with a TAIL whose crc32c covers its records, so a half-written one is not read — are
//     applied now, at the record that completed them.
//   - Applying one is a batch like a committed transaction: each INODE record's raw inode is
//     copied into the model's inode-table block (its i_block is the in-memory extent root, the
//     one the next full commit writes), so allocation, links, size and claimed blocks are
//     diffed as for any inode write; CREAT_DENTRY, ADD_ENTRY and DEL_ENTRY are name events
//     like a directory block's. The data the fsync wrote before the fast commit is attributed
//     by those claims.
//   - The directory blocks that hold those names come only with the full commit. Until then
//     a name a fast commit added or removed is an overlay (namespace.fcLinks): the first
//     directory block that shows the same change confirms it without a second event. When the
//     round's transaction commits, what no block confirmed was undone in between (a file created
//     and fsynced, then removed without an fsync): that is reported then.
//
// ADD_RANGE and DEL_RANGE records are not needed: the INODE record that follows them carries
// the resulting extent root. (A tree of depth > 0 names index and leaf blocks that the full
// commit writes; until then their data waits like any data written before its metadata.)

package resolver

import (
	"cmp"
	"maps"
	"slices"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// fcLink is how a fast commit changed a name that no directory block shows yet.
type fcLink uint8

const (
	fcAdded   fcLink = iota + 1 // the name was added (CREAT_DENTRY, ADD_ENTRY)
	fcRemoved                   // the name was removed (DEL_ENTRY)
)

// fastCommits follows the fast-commit area.
type fastCommits struct {
	first, end uint32            // the area, in journal blocks: [first, end)
	blocks     map[uint32][]byte // area blocks written during the log, by index in the area
	dirty      bool              // written since the last scan
	round      uint32            // tid of the round being applied
	inRound    bool
	applied    int // fast commits of the round applied
}

func newFastCommits(jsb *ext3fs.JournalSuperblock, sb *ext3fs.Superblock) *fastCommits {
	if sb.FeatureCompat&ext3fs.CompatFastCommit == 0 {
		return nil
	}
	first, end, ok := jsb.FastCommitArea()
	if !ok {
		return nil
	}
	return &fastCommits{first: first, end: end, blocks: make(map[uint32][]byte)}
}

// holds reports whether journal block logical is in the area.
func (f *fastCommits) holds(logical uint64) bool {
	return f != nil && logical >= uint64(f.first) && logical < uint64(f.end)
}

// put keeps a write to the area.
func (f *fastCommits) put(logical uint64, data []byte) {
	i := uint32(logical) - f.first
	f.blocks[i] = append(f.blocks[i][:0], data...)
	f.dirty = true
}

// scan returns the fast commits of the current round not applied yet. committed is the tid of
// the last full commit seen, if any.
func (f *fastCommits) scan(committed uint32, anyCommitted bool, inodeSize int) []ext3fs.FCCommit {
	if f == nil || !f.dirty {
		return nil
	}
	f.dirty = false
	b0 := f.blocks[0]
	if b0 == nil {
		return nil
	}
	head, err := ext3fs.ParseFCRecord(b0, 0, inodeSize)
	if err != nil || head.Tag != ext3fs.FCTagHead {
		return nil
	}
	if anyCommitted && !tidAfter(head.TID, committed) {
		return nil // a round whose transaction has committed since: stale
	}
	if !f.inRound || head.TID != f.round {
		f.round, f.inRound, f.applied = head.TID, true, 0
	}
	// Blocks in order up to the first one never written (the scan stops there).
	var blocks [][]byte
	for i := uint32(0); i < f.end-f.first; i++ {
		b := f.blocks[i]
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	s := ext3fs.ScanFastCommits(blocks, head.TID, inodeSize)
	if len(s.Commits) <= f.applied {
		return nil
	}
	news := s.Commits[f.applied:]
	f.applied = len(s.Commits)
	return news
}

// roundCommitted reports whether the full commit tid ends the current round, and ends it.
func (f *fastCommits) roundCommitted(tid uint32) bool {
	if f == nil || !f.inRound || tidAfter(f.round, tid) {
		return false
	}
	f.inRound, f.applied = false, 0
	return true
}

// writeFastCommitBlock keeps a write to the fast-commit area (journal block logical).
func (r *Resolver) writeFastCommitBlock(logical uint64, data []byte) {
	r.fc.put(logical, data)
	r.output.stats.FastCommitBlocks++
}

// applyFastCommits applies the fast commits that the writes of this record completed.
func (r *Resolver) applyFastCommits() {
	if r.fc == nil || !r.fc.dirty {
		return
	}
	last, any := r.jt.LastCommitted()
	for _, c := range r.fc.scan(last, any, r.isz) {
		r.applyFastCommit(c)
	}
}

// applyFastCommit applies one fast commit as one batch (see the file comment).
func (r *Resolver) applyFastCommit(c ext3fs.FCCommit) {
	r.output.stats.FastCommits++
	// Fast commits are the journal's: the guest orders its metadata through it.
	r.mode.committed()
	defer r.mode.applying(fastCommitBatch)()
	slots := map[uint64][]byte{}
	var order []uint64
	for _, rec := range c.Records {
		if rec.Tag != ext3fs.FCTagInode {
			continue
		}
		if rec.Ino == 0 || rec.Ino > r.fs.SB.InodesCount {
			r.anomaly("", 0, "fast commit of tid %d: INODE record for inode %d, which does not exist", c.TID, rec.Ino)
			continue
		}
		b, off := r.fs.InodeLocation(rec.Ino)
		buf, ok := slots[b]
		if !ok {
			buf = append([]byte(nil), r.blocks.m.block(b)...)
			slots[b] = buf
			order = append(order, b)
		}
		copy(buf[off:off+min(len(rec.RawInode), r.isz)], rec.RawInode)
	}
	batch := make([]blockWrite, 0, len(order))
	for _, b := range order {
		o := r.blocks.idx.Lookup(b)
		batch = append(batch, blockWrite{b: b, data: slots[b], n: int32(r.bs), role: o.Role, ino: o.Ino, journaled: true})
	}
	r.applyBatch(batch)
	for _, rec := range c.Records {
		switch rec.Tag {
		case ext3fs.FCTagCreat, ext3fs.FCTagLink:
			r.fcAddName(rec.Parent, rec.Name, rec.Ino)
		case ext3fs.FCTagUnlink:
			r.fcRemoveName(rec.Parent, rec.Name, rec.Ino)
		}
	}
	r.judgeSuspects()
	r.resolveTouched()
	r.releaseHeld()
}

// fcAddName is a name a fast commit added.
func (r *Resolver) fcAddName(dir uint32, name string, ino uint32) {
	k := linkKey{dir, name, ino}
	switch r.ns.fcLinks[k] {
	case fcAdded:
		return
	case fcRemoved:
		// Removed by an earlier fast commit and back before any block showed it gone: the
		// blocks still hold it, so no overlay is left.
		delete(r.ns.fcLinks, k)
		r.linkName(dir, name, ino, 0, 0)
		return
	}
	if r.cnt(k) > 0 {
		return // the blocks already show it
	}
	r.linkName(dir, name, ino, 0, 0)
	r.ns.fcLinks[k] = fcAdded
}

// fcRemoveName is a name a fast commit removed.
func (r *Resolver) fcRemoveName(dir uint32, name string, ino uint32) {
	k := linkKey{dir, name, ino}
	switch r.ns.fcLinks[k] {
	case fcRemoved:
		return
	case fcAdded:
		// Added by an earlier fast commit, which no block showed yet: gone again.
		delete(r.ns.fcLinks, k)
		r.unlinkName(dir, name, ino, 0, 0)
		return
	}
	if r.cnt(k) == 0 {
		return // no block shows it: nothing to remove
	}
	r.setCnt(k, 1)
	r.unlinkName(dir, name, ino, 0, 0)
	r.ns.fcLinks[k] = fcRemoved
}

// fcConfirmed reports whether a directory block's change to name k is one a fast commit already
// reported (change is fcAdded for an entry appearing, fcRemoved for one going), and consumes it.
func (r *Resolver) fcConfirmed(k linkKey, change fcLink) bool {
	if len(r.ns.fcLinks) == 0 || r.ns.fcLinks[k] != change {
		return false
	}
	delete(r.ns.fcLinks, k)
	return true
}

// settleFastCommitNames ends a round of fast commits at the full commit of its transaction: the
// names no directory block confirmed changed back in between.
func (r *Resolver) settleFastCommitNames(tid uint32) {
	if !r.fc.roundCommitted(tid) {
		return
	}
	keys := slices.SortedFunc(maps.Keys(r.ns.fcLinks), func(a, b linkKey) int {
		return cmp.Or(cmp.Compare(a.parent, b.parent), cmp.Compare(a.name, b.name), cmp.Compare(a.ino, b.ino))
	})
	for _, k := range keys {
		c := r.ns.fcLinks[k]
		delete(r.ns.fcLinks, k)
		if c == fcAdded {
			r.unlinkName(k.parent, k.name, k.ino, 0, 0)
		} else {
			r.linkName(k.parent, k.name, k.ino, 0, 0)
		}
	}
}
