// Package check replays a block-I/O log against its starting image and verifies the file
// system's invariants at the points where the guest promises consistency, naming the request
// that introduced each problem it finds (docs/check.md).
//
// The disk is modelled as recovery would see it: home writes as they come, and each committed
// jbd2 transaction applied at its commit (the state a crash right after the commit would give
// after journal replay). It is checked after every record that commits a transaction, and at a
// device flush (and the end of the log) when home writes changed the disk since the last check
// and the superblock says the file system is clean (s_state VALID: a journal-less driver at
// unmount, or one that never marks the file system dirty): ext2 promises nothing in between.
package check

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

// Finding is one problem, reported once for the interval it was present. The jsonl fields are
// a public interface (docs/check.md).
type Finding struct {
	Seq  int64   `json:"seq"`  // request that introduced it (the last write to the structures involved)
	Time float64 `json:"time"` // its time, seconds
	// AtSeq is the record at which the problem became a promise of the guest (the commit or
	// the flush where it was checked).
	AtSeq  int64  `json:"at_seq"`
	Kind   string `json:"kind"`   // block-bitmap, inode-bitmap, links, directory, checksum, group-counts, superblock-counts, orphan, decode, ...
	Struct string `json:"struct"` // "block 2143", "inode 12", "directory inode 2 block 1234", "group 0"
	Block  uint64 `json:"block,omitempty"`
	Inode  uint32 `json:"inode,omitempty"`
	Group  *int   `json:"group,omitempty"`
	Path   string `json:"path,omitempty"`
	AtEnd  bool   `json:"at_end"` // still present at the last check
	Msg    string `json:"msg"`    // in e2fsck's terms
	// FixedSeq is the record whose check no longer found it (0 while present).
	FixedSeq int64 `json:"fixed_seq,omitempty"`
}

// Checker replays records and checks the file system at its consistency points.
type Checker struct {
	img  io.ReaderAt
	size int64
	bs   int
	nblk uint64
	over map[uint64][]byte // blocks written home since the image
	// plain: blocks written home whose content is plain file data, left out (plain.go); a
	// block is in over or in plain, not both. keep marks the starting image's metadata blocks,
	// never plain; refetch reads a record again (Options.Refetch), fetched is the last it read.
	plain     map[uint64]plainRef
	keep      []uint64
	filetype  bool
	seed      maphash.Seed
	refetch   func(int64) (blklog.Record, error)
	fetched   blklog.Record
	refetched int
	nPlain    int  // blocks left plain, all writes (tests)
	plainAll  bool // Options.plainAll
	// orig is the image's content under the record being applied, read at once when a block
	// left plain first needs it (plain.go, imageBlock); origFirst its first block, origN how
	// many it holds (0: not read).
	orig      []byte
	origFirst uint64
	origN     int
	origZero  bool   // the image is a hole there: every block of it is zero (Image.Zeros)
	zero      []byte // a block of zeros
	// live are the committed transactions recovery would still replay (from the journal
	// superblock's s_start); jview is their blocks as replay leaves them, jrec the record that
	// logged each copy.
	live  []resolver.Transaction
	jview map[uint64][]byte
	jrec  map[uint64]int64
	jblk  map[uint64]uint64 // fs block -> journal block
	jphys map[uint64]uint64 // journal block -> fs block
	jt    *resolver.JournalTracker
	dirty bool // home writes changed the disk since the last check
	// mountReplay: the blocks the mount's fast-commit replay rewrites in intermediate states
	// (ext3fs.Recovery.FastCommitBlocks), ignored until the guest's first commit; nil after.
	mountReplay map[uint64]bool
	recovery    *ext3fs.Recovery
	// fc follows the fast-commit area (nil without fast_commit); fcview is the live round's
	// fast commits replayed over the journal-replayed view, fcrec the request each of its
	// blocks is attributed to (fastcommit.go).
	fc        *fcArea
	fcview    map[uint64][]byte
	fcrec     map[uint64]int64
	fcLive    bool // the view has a round of fast commits replayed (fcview may be empty)
	isz       int
	noFC      bool // tests: fast commits ignored (the checker before they were followed)
	fcChecks  int  // consistency points made by a fast commit, checked
	fcSkipped int  // checks skipped: the live round could not be replayed

	last     map[uint64]int64 // fs block -> record that last wrote it (a journal copy: the record that logged it)
	times    map[int64]float64
	seq      int64
	t        float64
	checks   int
	active   map[string]*Finding
	findings []*Finding
	reported int // findings already returned by Pending
	prev     *scan
	// cache is what the last scans read; changed the blocks whose content (as recovery would
	// see it) changed since the last check: a check reads again only the structures on them.
	cache    cache
	changed  blockSet
	scanTime time.Duration
	full     bool // Options.Full: every check reads everything (the reference the cache is measured against)
	errs     []string
	onTx     func(resolver.Transaction) // tests: every committed transaction
}

// Stats counts what a run did.
type Stats struct {
	Records, Transactions, Checks int
	JournalErrors                 []string
}

// Options change what New does.
type Options struct {
	// NoRecovery starts from the image as it is, not as journal recovery leaves it.
	NoRecovery bool
	// Full makes every check read the whole file system again instead of only what changed
	// since the last check (same findings, slower: the reference for tests and benchmarks).
	Full bool
	// Refetch, if set, gives a record of the log again, whole, by its index
	// (blklog.PayloadSource.Record): the checker then keeps no copy of the plain file data of
	// large writes, and reads a block of it again in the rare case a check reads it (plain.go).
	// Without it, every block written home is kept in memory.
	Refetch func(index int64) (blklog.Record, error)
	// noFastCommits: tests, fast commits ignored (no check point at them, not in the view).
	noFastCommits bool
	// plainAll: tests, with Refetch: every full-block write whose content is plain data is left
	// plain, whatever the write's size and wherever the block (the starting image's metadata
	// too), so that checks read many blocks again.
	plainAll bool
}

// New starts a checker on the image (size bytes), from the state journal recovery leaves it in
// (what the guest's mount starts from, and what analyze starts from).
func New(img io.ReaderAt, size int64) (*Checker, error) { return NewWith(img, size, Options{}) }

// NewWith is New with options.
func NewWith(img io.ReaderAt, size int64, opt Options) (*Checker, error) {
	var rc *ext3fs.Recovery
	if !opt.NoRecovery {
		var err error
		if rc, err = ext3fs.Recover(img); err != nil {
			return nil, fmt.Errorf("check: journal recovery of the image: %w", err)
		}
		img = rc
	}
	fs, err := ext3fs.OpenWith(img, ext3fs.Options{InlineData: true})
	if err != nil {
		return nil, fmt.Errorf("check: opening the image: %w", err)
	}
	c := &Checker{img: img, size: size, recovery: rc, full: opt.Full, bs: fs.BlockSize(), nblk: fs.SB.BlocksCount,
		isz: fs.SB.InodeSize(), noFC: opt.noFastCommits,
		over: map[uint64][]byte{}, last: map[uint64]int64{}, times: map[int64]float64{},
		active: map[string]*Finding{}, jblk: map[uint64]uint64{}, jphys: map[uint64]uint64{}, jview: map[uint64][]byte{}, jrec: map[uint64]int64{}}
	if uint64(size) < c.nblk*uint64(c.bs) {
		return nil, fmt.Errorf("check: image is %d bytes, the file system needs %d", size, c.nblk*uint64(c.bs))
	}
	if opt.Refetch != nil {
		c.refetch = opt.Refetch
		if err := c.plainSetup(fs); err != nil {
			return nil, err
		}
		if opt.plainAll {
			clear(c.keep)
			c.plainAll = true
		}
	}
	if fs.SB.HasJournal() && fs.SB.JournalInum != 0 {
		jin, err := fs.ReadInode(fs.SB.JournalInum)
		if err != nil {
			return nil, fmt.Errorf("check: journal inode: %w", err)
		}
		err = fs.WalkBlocks(jin, func(br ext3fs.BlockRef) error {
			if br.Kind == ext3fs.BlockData {
				c.jblk[br.Phys] = br.Logical
				c.jphys[br.Logical] = br.Phys
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("check: journal inode %d: %w", fs.SB.JournalInum, err)
		}
		for phys, l := range c.jblk {
			if l == 0 {
				jsb, err := ext3fs.ParseJournalSuperblock(c.block(phys))
				if err != nil {
					return nil, fmt.Errorf("check: journal superblock at block %d: %w", phys, err)
				}
				c.jt = resolver.NewJournalTracker(jsb)
				c.fc = newFCArea(fs.SB, jsb)
			}
		}
	}
	// The mount replays the fast commits recovery replayed here, writing each block home in
	// the intermediate state of every record (flushed one at a time): those writes end where
	// the recovered starting state already is, and are no promise until the guest commits.
	if rc != nil && len(rc.FastCommitBlocks) > 0 && c.jt != nil {
		c.mountReplay = map[uint64]bool{}
		for _, b := range rc.FastCommitBlocks {
			c.mountReplay[b] = true
		}
	}
	// The starting image: its problems are the driver's starting point, not its doing.
	c.check(-1, false)
	return c, nil
}

// ReadAt reads the disk as recovery would see it now (fast commits replayed where they are, at
// a check).
func (c *Checker) ReadAt(p []byte, off int64) (int, error) { return c.readAt(p, off, c.fcview) }

// readAt reads the disk with the journal replayed and the blocks of top over it.
func (c *Checker) readAt(p []byte, off int64, top map[uint64][]byte) (int, error) {
	if off < 0 || off >= c.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= c.size {
			return n, io.EOF
		}
		b := uint64(pos / int64(c.bs))
		in := int(pos % int64(c.bs))
		if d, ok := top[b]; ok {
			n += copy(p[n:], d[in:])
			continue
		}
		if d, ok := c.jview[b]; ok {
			n += copy(p[n:], d[in:])
			continue
		}
		if d, ok := c.over[b]; ok {
			n += copy(p[n:], d[in:])
			continue
		}
		if ref, ok := c.plain[b]; ok {
			n += copy(p[n:], c.plainContent(b, ref)[in:])
			continue
		}
		k := min(len(p)-n, c.bs-in)
		if _, err := c.img.ReadAt(p[n:n+k], pos); err != nil && err != io.EOF {
			return n, err
		}
		n += k
	}
	return n, nil
}

func (c *Checker) block(b uint64) []byte {
	if d, ok := c.over[b]; ok {
		return d
	}
	if ref, ok := c.plain[b]; ok {
		return c.plainContent(b, ref)
	}
	d := make([]byte, c.bs)
	if _, err := c.img.ReadAt(d, int64(b)*int64(c.bs)); err != nil && err != io.EOF {
		c.errs = append(c.errs, fmt.Sprintf("reading block %d of the image: %v", b, err))
	}
	return d
}

// put stores a block's new content over old; it reports whether the content changed.
func (c *Checker) put(b uint64, old, d []byte, rec int64) bool {
	if bytes.Equal(old, d) {
		return false // a rewrite of the same content introduces nothing
	}
	c.last[b] = rec
	c.over[b] = d
	delete(c.plain, b)
	c.changed.add(b)
	return true
}

// Record applies the next record, and checks the file system if it is a consistency point.
func (c *Checker) Record(rec *blklog.Record) error {
	c.seq = rec.Index
	c.t = 0
	if rec.Flags&blklog.FlagHasTime != 0 {
		c.t = float64(rec.TimeNS) / 1e9
	}
	if err := blklog.CheckDeviceRange(rec, uint64(c.size)); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	switch rec.Type {
	case blklog.TypeWrite, blklog.TypeWriteZeroes, blklog.TypeDiscard:
		if rec.Type == blklog.TypeWrite && (rec.Flags&blklog.FlagNoPayload != 0 || len(rec.Data) < int(rec.Length)) {
			return fmt.Errorf("check: record %d: a write without its payload cannot be checked", rec.Index)
		}
		c.times[rec.Index] = c.t
		committed := c.write(rec)
		fast := c.scanFastCommits() > 0
		if committed || fast {
			c.check(rec.Index, fast && !committed)
		}
	case blklog.TypeFlush:
		if c.dirty && c.clean() {
			c.check(rec.Index, false)
		}
	}
	return nil
}

// write applies a write, write-zeroes or discard block by block; it reports whether it made
// a consistency point (see the return).
func (c *Checker) write(rec *blklog.Record) bool {
	start := int64(rec.Sector) * blklog.SectorSize
	end := start + int64(rec.Length)
	bs := int64(c.bs)
	var txs []resolver.Transaction
	c.origFirst, c.origN = uint64(start/bs), 0
	for pos := start; pos < end; {
		b := uint64(pos / bs)
		in := pos - int64(b)*bs
		n := min(end-pos, bs-in)
		if int(n) == c.bs && rec.Type == blklog.TypeWrite && (len(rec.Data) >= plainMin || c.plainAll) {
			if d := rec.Data[pos-start : pos-start+n]; c.isPlain(b, d) {
				if c.putPlain(b, d, rec.Index, end) {
					c.dirty = true
				}
				pos += n
				continue
			}
		}
		var old []byte
		if ref, ok := c.plain[b]; ok && int(n) == c.bs && rec.Type == blklog.TypeWrite {
			// A block left plain, overwritten whole: the hashes tell whether it changed, and it
			// is not read again from the log (nil: it did).
			if p := rec.Data[pos-start : pos-start+n]; maphash.Bytes(c.seed, p) == ref.sum {
				old = p
			}
		} else {
			old = c.block(b)
		}
		var d []byte
		if int(n) == c.bs && rec.Type == blklog.TypeWrite {
			d = bytes.Clone(rec.Data[pos-start : pos-start+n])
		} else {
			d = bytes.Clone(old)
			if rec.Type == blklog.TypeWrite {
				copy(d[in:in+n], rec.Data[pos-start:pos-start+n])
			} else {
				clear(d[in : in+n])
			}
		}
		if c.mountReplay[b] {
			pos += n
			continue
		}
		if l, ok := c.jblk[b]; ok && c.jt != nil {
			if c.fc.holds(l) {
				c.fc.dirty = true
			}
			ts, err := c.jt.WriteLogBlock(l, d, rec.Index)
			c.journalBlock(l, err)
			txs = append(txs, ts...)
			c.put(b, old, d, rec.Index)
		} else if c.put(b, old, d, rec.Index) {
			c.dirty = true
		}
		pos += n
	}
	if c.onTx != nil {
		for _, tx := range txs {
			c.onTx(tx)
		}
	}
	if len(txs) > 0 {
		c.mountReplay = nil
	}
	c.live = append(c.live, txs...)
	before := len(c.live)
	if c.jt != nil {
		c.replay()
	}
	// A commit, and a journal superblock that stops replaying committed transactions (their
	// home writes are done), are both points where the guest promises a consistent disk.
	return len(txs) > 0 || len(c.live) < before
}

// replay drops the transactions the journal superblock no longer asks recovery to replay
// (s_start 0: clean; tids before s_sequence: checkpointed) and rebuilds what replaying the rest
// over the home blocks gives, revoked copies left out. (A driver that logs the blocks' old
// contents, as U-Boot does, makes this the state before its unfinished home writes.)
func (c *Checker) replay() {
	jsb := c.jt.Superblock()
	keep := c.live[:0]
	for _, tx := range c.live {
		if jsb.Start != 0 && int32(tx.Seq-jsb.Sequence) >= 0 {
			keep = append(keep, tx)
		}
	}
	c.live = keep
	old := c.jview
	c.jview = make(map[uint64][]byte, len(old))
	clear(c.jrec)
	for _, tx := range c.live {
		for _, b := range tx.Revoked {
			delete(c.jview, b)
			delete(c.jrec, b)
		}
		for _, tb := range tx.Blocks {
			if tb.FSBlock >= c.nblk || len(tb.Data) != c.bs {
				c.errs = append(c.errs, fmt.Sprintf("journal transaction %d logs block %d, not a block of the file system", tx.Seq, tb.FSBlock))
				continue
			}
			c.jview[tb.FSBlock] = tb.Data
			c.jrec[tb.FSBlock] = tb.Rec
		}
	}
	// What recovery would replay changed where a block's replayed copy did.
	for b, d := range c.jview {
		if o, ok := old[b]; !ok || !sameSlice(o, d) {
			c.changed.add(b)
		}
	}
	for b := range old {
		if _, ok := c.jview[b]; !ok {
			c.changed.add(b)
		}
	}
}

// sameSlice reports a and b being the same bytes in memory (a logged copy is never modified).
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// lastWrite is the record that wrote the content of block b recovery would see.
func (c *Checker) lastWrite(b uint64) (int64, bool) {
	if r, ok := c.fcrec[b]; ok && r >= 0 {
		return r, true
	}
	if r, ok := c.jrec[b]; ok {
		return r, true
	}
	r, ok := c.last[b]
	return r, ok
}

// journalBlock records what the tracker said when journal block l was written: a block it
// cannot decode (a malformed descriptor, revoke or commit block, a bad journal checksum) is a
// finding of its own, named by the request that wrote that block and present until the block
// is rewritten. The tracker may repeat an error about an earlier block: it is reported once.
func (c *Checker) journalBlock(l uint64, err error) {
	key := fmt.Sprintf("journal %d", l)
	if f, ok := c.active[key]; ok {
		f.AtEnd, f.FixedSeq = false, c.seq
		delete(c.active, key)
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	for _, e := range errs {
		f := &Finding{Seq: c.seq, Time: c.t, AtSeq: c.seq, Kind: "journal", Struct: "journal", AtEnd: true,
			Msg: fmt.Sprintf("%v: e2fsck: journal transaction is corrupt", e)}
		k := "journal " + e.Error()
		var je *resolver.JournalError
		if errors.As(e, &je) {
			k = fmt.Sprintf("journal %d", je.LogBlock)
			f.Seq, f.Time = je.Rec, c.times[je.Rec]
			f.Struct = fmt.Sprintf("journal block %d", je.LogBlock)
			f.Block = c.jphys[je.LogBlock]
		}
		if _, ok := c.active[k]; ok {
			continue
		}
		c.active[k] = f
		c.findings = append(c.findings, f)
	}
}

// clean reports the superblock's s_state VALID bit (the file system marked clean).
func (c *Checker) clean() bool {
	var b [ext3fs.SuperblockSize]byte
	if _, err := c.ReadAt(b[:], ext3fs.SuperblockOffset); err != nil {
		return false
	}
	return b[0x3A]&1 != 0
}

// Finish checks the end of the log if it is a consistency point and returns every finding in
// the order found.
func (c *Checker) Finish() []Finding {
	if c.dirty && c.clean() {
		c.check(c.seq, false)
	}
	out := make([]Finding, len(c.findings))
	for i, f := range c.findings {
		out[i] = *f
	}
	return out
}

// Pending returns the findings found since the last call, in the order found (for a caller that
// reports them as the log goes, as analyze --check does). They are copies: a finding's AtEnd
// and FixedSeq are those of the moment it was found.
func (c *Checker) Pending() []Finding {
	out := make([]Finding, 0, len(c.findings)-c.reported)
	for _, f := range c.findings[c.reported:] {
		out = append(out, *f)
	}
	c.reported = len(c.findings)
	return out
}

// Recovery is what journal recovery did to the starting image (nil with Options.NoRecovery).
func (c *Checker) Recovery() *ext3fs.Recovery { return c.recovery }

// Reads is the number of structures (inodes, directory blocks, xattr blocks) the checks read
// from the disk model, all checks together: what the incremental checks save.
func (c *Checker) Reads() int { return c.cache.reads }

// ScanTime is the time spent checking, all checks together (the rest of a run is replaying).
func (c *Checker) ScanTime() time.Duration { return c.scanTime }

// Checks is the number of consistency points checked (the starting image included).
func (c *Checker) Checks() int { return c.checks }

// Errors are image read errors, transactions that log blocks outside the file system, and the
// consistency points not checked because their fast commits cannot be replayed as the kernel
// would ("fast commit at record N not checked: reason").
func (c *Checker) Errors() []string { return c.errs }

// FastCommits is the number of consistency points made by a complete fast commit that were
// checked, and the number of checks skipped because the fast commits recovery would replay
// there cannot be replayed (each said in Errors).
func (c *Checker) FastCommits() (checked, skipped int) { return c.fcChecks, c.fcSkipped }

// check scans the file system as it is now, at record at (-1: the starting image); fast says a
// fast commit made it a consistency point.
func (c *Checker) check(at int64, fast bool) {
	c.dirty = false
	if why := c.fastCommitView(); why != "" {
		// Not recovery's view: checking it could only give false findings. What changed stays
		// in c.changed for the next check.
		c.fcSkipped++
		if fast {
			c.errs = append(c.errs, fmt.Sprintf("fast commit at record %d not checked: %s", at, why))
		} else {
			c.errs = append(c.errs, fmt.Sprintf("check at record %d not done: the fast commits recovery would replay there cannot be: %s", at, why))
		}
		return
	}
	c.checks++
	if fast {
		c.fcChecks++
	}
	all := c.full || c.prev == nil
	t0 := time.Now()
	s := runScan(c, c.prev, &c.cache, func(b uint64) bool { return all || c.changed.has(b) })
	c.scanTime += time.Since(t0)
	c.changed.clear()
	c.prev = s
	seen := map[string]bool{}
	for _, p := range s.problems {
		seen[p.key] = true
		if f, ok := c.active[p.key]; ok {
			// The same problem, in its latest words, unless they only drop a detail an earlier
			// check could give (which inode owned a block before it leaked).
			if !strings.HasPrefix(f.Msg, p.msg) {
				f.Msg = p.msg
			}
			continue
		}
		f := &Finding{Seq: at, AtSeq: at, Kind: p.kind, Struct: p.strct, Block: p.block, Inode: p.ino,
			Path: p.path, AtEnd: true, Msg: p.msg}
		if p.group >= 0 {
			g := p.group
			f.Group = &g
		}
		if at >= 0 {
			f.Seq = c.introducedBy(p.evidence, at)
			f.Time = c.times[f.Seq]
		}
		c.active[p.key] = f
		if at >= 0 {
			c.findings = append(c.findings, f)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.active)) {
		if kd := c.active[k].Kind; !seen[k] && kd != "journal" && // journal findings end when their block is rewritten
			!(s.noCounts && (kd == "group-counts" || kd == "superblock-counts")) { // not compared, not fixed
			c.active[k].AtEnd = false
			c.active[k].FixedSeq = at
			delete(c.active, k)
		}
	}
}

// introducedBy is the last record that wrote one of the evidence blocks (what made the problem),
// or the checked record itself when none of them was written.
func (c *Checker) introducedBy(evidence []uint64, at int64) int64 {
	best := int64(-1)
	for _, b := range evidence {
		if r, ok := c.lastWrite(b); ok && r > best && r <= at {
			best = r
		}
	}
	if best < 0 {
		return at
	}
	return best
}

// Run checks a whole log.
func Run(img io.ReaderAt, size int64, log blklog.Reader) (*Checker, []Finding, error) {
	return RunWith(img, size, log, Options{})
}

// RunWith is Run with options.
func RunWith(img io.ReaderAt, size int64, log blklog.Reader, opt Options) (*Checker, []Finding, error) {
	c, err := NewWith(img, size, opt)
	if err != nil {
		return nil, nil, err
	}
	for {
		rec, err := log.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, c.Finish(), err
		}
		if err := c.Record(&rec); err != nil {
			return c, c.Finish(), err
		}
	}
	return c, c.Finish(), nil
}

// blockSet is the set of blocks changed since the last check: a bit per block (blockBits), and
// the list of those set, to clear them. Every check asks it once per structure it has read (an
// inode's table and map blocks, a directory's blocks): as a map, those lookups and the inserts of
// a large copy's blocks were a fifth of check's time on the bench's large case.
type blockSet struct {
	bits blockBits
	set  []uint64
}

func (s *blockSet) add(b uint64) {
	if !s.bits.has(b) {
		s.bits.set(b, true)
		s.set = append(s.set, b)
	}
}

func (s *blockSet) has(b uint64) bool { return s.bits.has(b) }

// clear empties the set, keeping its memory.
func (s *blockSet) clear() {
	for _, b := range s.set {
		s.bits[b/64] = 0
	}
	s.set = s.set[:0]
}
