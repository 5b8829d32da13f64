package check

// Fast commits (ext4 fast_commit; ext3fs/fastcommit.go, resolver/fastcommit.go). An fsync may
// make its changes durable by writing records to the journal's fast-commit area instead of
// committing a transaction: after a crash, recovery replays the jbd2 log and then the complete
// fast commits of the transaction after the last full commit (a HEAD of that tid, records up to
// a TAIL whose crc matches). So while such a round is in the area, the state recovery would give
// is the checker's journal-replayed view plus the fast-commit replay, and the record that
// completes a fast commit is a consistency point of its own.
//
// The area is read as recovery reads it, from the disk as it is now (the image and the log's
// writes), and scanned with the tid recovery would expect (the one after the last live
// transaction, or s_sequence). At every check while a round is live, its fast commits are
// replayed afresh by ext3fs.ReplayFastCommits over the journal-replayed view (which home writes
// may have changed since), one area block's records at a time, so that each block the replay
// writes is attributed to the request that wrote the area block whose records changed it last.
// Where the replay cannot do what the kernel would (ext3fs: an extent tree deeper than the root,
// a name needing a new directory block), the check is skipped and said so (Errors): a view
// that is not recovery's could only give false findings.
//
// Counters: the kernel's replay (ext4_fc_set_bitmaps_and_counters) and e2fsck's (which ends with
// ext2fs_calculate_summary_stats, "update bg also") recompute the group descriptors' free
// counts and the superblock's totals from the bitmaps, so in a state with fast commits replayed
// they are no promise of the driver and are not compared (scanner.noCounts).

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// fcArea follows the fast-commit area of the journal.
type fcArea struct {
	first, end uint32 // the area, in journal blocks: [first, end)
	dirty      bool   // written since the last scan
	// What the last scan was made with: recovery would run (ok) expecting tid.
	scanned, ok bool
	tid         uint32
	// The round recovery would replay now: live is false when it would replay none (no
	// recovery, or no complete fast commit of the tid it expects).
	live    bool
	commits []ext3fs.FCCommit
	// steps are the commits' records split by the area block holding them, in order, each
	// with the request that last wrote that block.
	steps []fcStep
	seen  int // complete fast commits of the round already counted
}

// fcStep is the records of one area block, of one commit.
type fcStep struct {
	commit ext3fs.FCCommit // its TID and the records in the block
	block  int             // area block index
	rec    int64           // the request that last wrote the area block
	done   int64           // the request that completed the commit (its TAIL's block)
}

// newFCArea is the area of a file system with fast_commit whose journal has one, else nil.
func newFCArea(sb *ext3fs.Superblock, jsb *ext3fs.JournalSuperblock) *fcArea {
	if sb.FeatureCompat&ext3fs.CompatFastCommit == 0 {
		return nil
	}
	first, end, ok := jsb.FastCommitArea()
	if !ok {
		return nil
	}
	return &fcArea{first: first, end: end}
}

// holds reports whether journal block l is in the area.
func (a *fcArea) holds(l uint64) bool {
	return a != nil && l >= uint64(a.first) && l < uint64(a.end)
}

// expectedTID is the tid whose fast commits recovery would replay after the jbd2 passes (the one
// after the last transaction it replays, s_sequence when none); ok is false when recovery would
// not run (s_start 0: an empty journal, nothing replayed, fast commits neither).
func (c *Checker) expectedTID() (tid uint32, ok bool) {
	jsb := c.jt.Superblock()
	if jsb.Start == 0 {
		return 0, false
	}
	if n := len(c.live); n > 0 {
		return c.live[n-1].Seq + 1, true
	}
	return jsb.Sequence, true
}

// scanFastCommits rescans the area after a write record when it or the tid recovery expects
// changed; it reports the number of complete fast commits that record made (a fast-commit
// consistency point when > 0).
func (c *Checker) scanFastCommits() int {
	a := c.fc
	if a == nil || c.noFC {
		return 0
	}
	tid, ok := c.expectedTID()
	if !a.dirty && a.scanned && ok == a.ok && (!ok || tid == a.tid) {
		return 0 // the area reads the same and recovery expects the same
	}
	wrote := a.dirty
	a.dirty = false
	prevLive, prevTID := a.live, a.tid
	a.scanned, a.ok, a.tid = true, ok, tid
	a.live, a.commits, a.steps = false, nil, nil
	if !ok {
		a.seen = 0
		return 0
	}
	blocks := make([][]byte, 0, a.end-a.first)
	for l := a.first; l < a.end; l++ {
		p, ok := c.jphys[uint64(l)]
		if !ok {
			break
		}
		blocks = append(blocks, c.block(p))
	}
	s := ext3fs.ScanFastCommits(blocks, tid, c.isz)
	if !prevLive || prevTID != tid || len(s.Commits) < a.seen {
		a.seen = 0 // a new round (or the area rewritten under the same tid)
	}
	if len(s.Commits) == 0 {
		return 0
	}
	a.live, a.commits = true, s.Commits
	for _, cm := range s.Commits {
		first := len(a.steps)
		bi, prevOff := cm.Block, -1
		for _, r := range cm.Records {
			// Records never cross a block; a PAD (left out) ends a block, so a record at an
			// offset not past the previous one starts the next block.
			if r.Offset <= prevOff {
				bi++
			}
			prevOff = r.Offset
			if n := len(a.steps); n == first || a.steps[n-1].block != bi {
				rec := int64(-1)
				if p, ok := c.jphys[uint64(a.first)+uint64(bi)]; ok {
					if r, ok := c.last[p]; ok {
						rec = r
					}
				}
				a.steps = append(a.steps, fcStep{commit: ext3fs.FCCommit{TID: cm.TID, Block: bi}, block: bi, rec: rec})
			}
			st := &a.steps[len(a.steps)-1]
			st.commit.Records = append(st.commit.Records, r)
		}
		for i := first; i < len(a.steps); i++ {
			a.steps[i].done = a.steps[len(a.steps)-1].rec
		}
	}
	n := len(s.Commits) - a.seen
	a.seen = len(s.Commits)
	if !wrote {
		return 0 // the round became live by a journal superblock write: no fast commit made here
	}
	return n
}

// fastCommitView replays the live round over the journal-replayed view into c.fcview (and
// c.fcrec), noting what changed for the incremental scan. It returns why the round cannot be
// replayed as the kernel would ("" when it can, or when no round is live).
func (c *Checker) fastCommitView() string {
	old := c.fcview
	c.fcview, c.fcrec = nil, nil
	c.fcLive = c.fc != nil && c.fc.live
	var why []string
	if c.fcLive {
		view := map[uint64][]byte{}
		rec := map[uint64]int64{}
		base := &fcBase{c: c, over: view}
		for _, st := range c.fc.steps {
			rc, err := ext3fs.ReplayFastCommits(base, []ext3fs.FCCommit{st.commit})
			if err != nil {
				why = append(why, fmt.Sprintf("fast commit completed at record %d: %v", st.done, err))
				break
			}
			if rc.FastCommitErr != nil {
				why = append(why, fmt.Sprintf("fast commit completed at record %d: %v", st.done, rc.FastCommitErr))
			}
			for _, b := range rc.FastCommitBlocks {
				if b >= c.nblk {
					continue
				}
				d := make([]byte, c.bs)
				if _, err := rc.ReadAt(d, int64(b)*int64(c.bs)); err != nil {
					why = append(why, fmt.Sprintf("reading block %d after the fast-commit replay: %v", b, err))
					continue
				}
				view[b] = d
				rec[b] = st.rec
			}
		}
		c.fcview, c.fcrec = view, rec
		why = append(why, c.fcUninit(base)...)
	}
	for b, d := range old {
		if n, ok := c.fcview[b]; !ok || !slices.Equal(n, d) {
			c.changed.add(b)
		}
	}
	for b := range c.fcview {
		if _, ok := old[b]; !ok {
			c.changed.add(b)
		}
	}
	return strings.Join(why, "; ")
}

// fcUninit says where the replayed inodes map blocks in a group whose block bitmap is still
// uninitialised (BLOCK_UNINIT): the kernel's replay (ext4_mb_mark_bb) initialises the bitmap and
// marks them, ext3fs's leaves the group alone, so the view would show them owned but free.
func (c *Checker) fcUninit(view io.ReaderAt) []string {
	fs, err := ext3fs.OpenWith(view, ext3fs.Options{InlineData: true})
	if err != nil || !(fs.SB.HasGDTCsum() || fs.SB.HasMetadataCsum()) {
		return nil
	}
	var why []string
	done := map[uint32]bool{}
	for _, st := range c.fc.steps {
		for _, r := range st.commit.Records {
			if r.Tag != ext3fs.FCTagInode || done[r.Ino] {
				continue
			}
			done[r.Ino] = true
			in, err := fs.ReadInode(r.Ino)
			if err != nil || !in.Live() {
				continue
			}
			_ = fs.WalkBlocks(in, func(br ext3fs.BlockRef) error {
				if br.Phys < uint64(fs.SB.FirstDataBlock) {
					return nil
				}
				g := (br.Phys - uint64(fs.SB.FirstDataBlock)) / uint64(fs.SB.BlocksPerGroup)
				if g < uint64(len(fs.Groups)) && fs.Groups[g].Flags&ext3fs.BGBlockUninit != 0 {
					why = append(why, fmt.Sprintf("inode %d maps block %d in group %d, whose block bitmap is uninitialised (BLOCK_UNINIT): the kernel's replay initialises it, ext3fs's does not", r.Ino, br.Phys, g))
					return ext3fs.ErrStop
				}
				return nil
			})
		}
	}
	return why
}

// fcBase reads the journal-replayed view with the replay's blocks so far over it.
type fcBase struct {
	c    *Checker
	over map[uint64][]byte
}

func (v *fcBase) ReadAt(p []byte, off int64) (int, error) {
	return v.c.readAt(p, off, v.over)
}
