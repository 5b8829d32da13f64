// Package resolver turns a block-request log into file operations: it
// replays the requests against a model of the disk that starts as the
// image, diffs every metadata block written against the model's previous
// version of it, and pairs the changes (names added and removed, inodes
// allocated and freed) into create, delete, move, link... with full paths,
// whatever order the guest wrote the blocks in. docs/how-it-works.md
// explains the method for users.
package resolver

import (
	"bytes"
	"fmt"
	"io"
	"sort"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// Options tune a Resolver.
type Options struct {
	// Metadata reports I/O on inode tables, bitmaps, superblocks, group
	// descriptors and the journal (directory and indirect blocks are always
	// reported, attributed to their file).
	Metadata bool
	// UnownedCap bounds the bytes kept for writes to blocks nobody owned yet
	// that could be metadata (see model); 0 means DefaultUnownedCap.
	UnownedCap int64
}

// DefaultUnownedCap is the default bound on content kept for unowned writes.
const DefaultUnownedCap = 256 << 20

// Stats summarises a run.
type Stats struct {
	Records, Reads, Writes, Flushes, Discards, Others int64
	BytesRead, BytesWritten                           int64
	NoPayloadWrites                                   int64 // writes whose data was not captured
	Transactions                                      int64 // committed journal transactions applied
	Ops                                               map[ops.Type]int64
	UnattributedWriteBytes                            int64 // written to blocks no file ever claimed
	UnattributedReadBytes                             int64 // read from blocks no file owned
	Anomalies                                         int64
	DroppedUnowned                                    int64 // unowned writes whose content was not kept (cap)
	JournalPending                                    int   // blocks of uncommitted transactions at the end
}

// Resolver consumes log records in order and emits ops.
type Resolver struct {
	opt   Options
	emit  func(*ops.Op) error
	err   error // first error from emit
	m     *model
	fs    *ext3fs.FS
	idx   *Index
	names *Names
	bs    int
	spb   uint64 // sectors per block
	nblk  uint64
	isz   int
	ft    bool // directory entries carry a file type

	jt      *JournalTracker
	journal bool
	// holdIO: metadata goes home without the journal (ext2, or an ext3 image written by a driver
	// that ignores the journal): file I/O gets its path at the next flush, when names are settled,
	// and what home writes changed is decided there. Set on ext3 by the first inode-table write
	// that changes the model outside a committed transaction (see noteHomeMeta), cleared by
	// the next commit.
	holdIO bool
	// home: the batch being applied is home writes, not a committed transaction. Claims it makes
	// are held like writes to owned blocks (a journal-less driver may undo them in the same
	// interval); on a journaled guest home writes are checkpoints that change nothing.
	home bool

	credDir map[uint64][]dent   // directory blocks: entries as last credited
	credMap map[uint64][]uint32 // indirect blocks: pointers as last credited
	linkCnt map[linkKey]int     // links seen in more than one block or differing from names
	shadow  map[uint64]Owner    // blocks claimed by a second inode: the first claimant
	// shadowMap: map blocks claimed by a second inode: the pointers the first claimant
	// had in them, released with it (the second claimant's content replaced credMap).
	shadowMap map[uint64][]uint32
	// metaWritten: directory and indirect blocks written in the current batch (a journal
	// transaction) or, without a journal, flush interval. One freed there keeps that content,
	// as if written unowned: it may be for the file that takes the block next (a file
	// truncated and a new one given its indirect block in one transaction).
	metaWritten map[uint64]bool
	// suspect: home writes to a directory or indirect block whose content cannot be one
	// (see holdSuspect), judged once the owner may have changed.
	suspect map[uint64]suspectWrite
	// orphanPath: the last path of files deleted while still allocated (unlinked while
	// open): their I/O until the last close is reported under it.
	orphanPath map[uint32]string

	pendW    map[uint64]pendWrite   // writes to blocks nobody owns yet (the first per block)
	pendMore map[uint64][]pendWrite // further writes to such blocks (rare)
	nameless map[uint32][]ops.Op    // I/O of inodes that have no name yet
	pend     map[uint32]*inoPend    // namespace changes not yet explained
	touched  map[uint32]bool        // inodes with new evidence in the current batch
	claimed  map[uint64]bool        // blocks claimed in the current batch
	nsBuf    []ops.Op               // namespace ops of the current batch
	heldW    []heldWrite            // home writes of file data waiting for the next commit
	ioBuf    []ops.Op               // I/O ops of the current record

	seq   int64
	t     float64
	evOrd int64 // order of name events

	waitParent map[uint32]bool  // inodes whose new name's directory has no path yet
	waitMove   map[uint32]bool  // no journal: moves waiting for their inode's slot to be written
	inoWritten map[uint32]int64 // no journal: flush interval in which each inode slot last changed
	flushNo    int64            // device flushes so far

	namesGen uint64 // bumped on every change of the names table
	drainGen uint64 // namesGen when held I/O was last given names
	pcIno    uint32 // ioPath cache
	pcGen    uint64
	pcPath   string

	stats Stats
}

// New starts a resolver on image (size bytes). emit receives every op in order; the *Op is only
// valid during the call.
func New(image io.ReaderAt, size int64, opt Options, emit func(*ops.Op) error) (*Resolver, error) {
	if opt.UnownedCap <= 0 {
		opt.UnownedCap = DefaultUnownedCap
	}
	fs0, err := ext3fs.Open(image)
	if err != nil {
		return nil, fmt.Errorf("resolver: opening the image: %w", err)
	}
	sb := fs0.SB
	bs := fs0.BlockSize()
	if uint64(size) < sb.BlocksCount*uint64(bs) {
		// A truncated image would make every read past its end fail later.
		return nil, fmt.Errorf("resolver: image is %d bytes, the file system needs %d", size, sb.BlocksCount*uint64(bs))
	}
	r := &Resolver{
		opt: opt, emit: emit, bs: bs, spb: uint64(bs / blklog.SectorSize), nblk: sb.BlocksCount,
		isz: sb.InodeSize(), ft: sb.HasFiletype(),
		credDir: make(map[uint64][]dent), credMap: make(map[uint64][]uint32), linkCnt: make(map[linkKey]int),
		shadow: make(map[uint64]Owner), shadowMap: make(map[uint64][]uint32), metaWritten: make(map[uint64]bool), suspect: make(map[uint64]suspectWrite), orphanPath: make(map[uint32]string), pendW: make(map[uint64]pendWrite), pendMore: make(map[uint64][]pendWrite), nameless: make(map[uint32][]ops.Op),
		pend: make(map[uint32]*inoPend), touched: make(map[uint32]bool), claimed: make(map[uint64]bool), waitParent: make(map[uint32]bool), waitMove: make(map[uint32]bool), inoWritten: make(map[uint32]int64),
	}
	r.stats.Ops = make(map[ops.Type]int64)
	r.m = newModel(image, size, bs, sb.BlocksCount, opt.UnownedCap)
	if r.fs, err = ext3fs.Open(r.m); err != nil {
		return nil, fmt.Errorf("resolver: opening the model: %w", err)
	}
	if r.idx, r.names, err = Build(r.fs); err != nil {
		return nil, fmt.Errorf("resolver: indexing the image: %w", err)
	}
	if sb.HasJournal() && sb.JournalInum != 0 {
		if err := r.openJournal(); err != nil {
			return nil, err
		}
	}
	r.holdIO = !r.journal
	return r, nil
}

// openJournal reads the journal superblock and starts the transaction tracker.
func (r *Resolver) openJournal() error {
	jin, err := r.fs.ReadInode(r.fs.SB.JournalInum)
	if err != nil {
		return fmt.Errorf("resolver: journal inode: %w", err)
	}
	first := uint64(0)
	err = r.fs.WalkBlocks(jin, func(br ext3fs.BlockRef) error {
		if br.Kind == ext3fs.BlockData && br.Logical == 0 {
			first = br.Phys
			return ext3fs.ErrStop
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("resolver: journal inode %d: %w", r.fs.SB.JournalInum, err)
	}
	if first == 0 {
		return fmt.Errorf("resolver: journal inode %d has no block 0", r.fs.SB.JournalInum)
	}
	jsb, err := ext3fs.ParseJournalSuperblock(r.m.block(first))
	if err != nil {
		return fmt.Errorf("resolver: journal superblock at block %d: %w", first, err)
	}
	r.jt = NewJournalTracker(jsb)
	r.journal = true
	return nil
}

// Stats returns the counters so far.
func (r *Resolver) Stats() Stats {
	s := r.stats
	s.DroppedUnowned = r.m.dropped
	if r.jt != nil {
		s.JournalPending = r.jt.Pending()
	}
	return s
}

func (r *Resolver) out(op *ops.Op) {
	r.stats.Ops[op.Op]++
	if op.Op == ops.Anomaly {
		r.stats.Anomalies++
	}
	if r.err == nil {
		r.err = r.emit(op)
	}
}

// anomaly reports a structure that cannot be valid.
func (r *Resolver) anomaly(path string, block uint64, format string, args ...any) {
	op := ops.Op{Seq: r.seq, T: r.t, Op: ops.Anomaly, Path: path, Reason: fmt.Sprintf(format, args...)}
	if block != 0 {
		op.Sector = block * r.spb
	}
	r.nsBuf = append(r.nsBuf, op)
}

// Record processes the next log record.
func (r *Resolver) Record(rec *blklog.Record) error {
	r.seq = rec.Index
	r.t = 0
	if rec.Flags&blklog.FlagHasTime != 0 {
		r.t = float64(rec.TimeNS) / 1e9
	}
	r.stats.Records++
	switch rec.Type {
	case blklog.TypeRead:
		r.stats.Reads++
		r.stats.BytesRead += int64(rec.Length)
		r.read(rec.Sector, int64(rec.Length))
	case blklog.TypeWrite, blklog.TypeWriteZeroes:
		r.stats.Writes++
		r.stats.BytesWritten += int64(rec.Length)
		data := rec.Data
		zero := rec.Type == blklog.TypeWriteZeroes
		if !zero && (rec.Flags&blklog.FlagNoPayload != 0 || len(data) < int(rec.Length)) {
			r.stats.NoPayloadWrites++
			data = nil
		}
		r.write(rec.Sector, int64(rec.Length), data, zero)
	case blklog.TypeFlush:
		r.stats.Flushes++
		// What the guest wrote before a flush is the state it wanted durable: decide the
		// pairing of what home writes changed here, on the whole interval, in any order.
		for ino := range r.waitMove {
			r.touched[ino] = true
		}
		if r.holdIO {
			r.judgeSuspects()
		}
		r.resolveTouched()
		r.flushNo++
		clear(r.metaWritten)
		for ino, n := range r.inoWritten {
			if n < r.flushNo-2 {
				delete(r.inoWritten, ino)
			}
		}
		if r.holdIO {
			r.releaseHeld()
		} else {
			r.ageHeld()
		}
		r.flushRecord(true)
	case blklog.TypeDiscard:
		r.stats.Discards++
	default:
		r.stats.Others++
	}
	return r.err
}

// blockWrite is one block of a write batch.
type blockWrite struct {
	b         uint64
	data      []byte // full new content (nil: payload not captured)
	off, n    int32  // part of the block the request wrote
	role      Role   // owner role before the batch
	ino       uint32 // owner before the batch
	old       []byte // previous content, for metadata blocks that changed
	changed   bool
	journaled bool
}

// write handles a write request: journal blocks go to the tracker, the rest is one batch.
func (r *Resolver) write(sector uint64, length int64, data []byte, zero bool) {
	start := int64(sector) * blklog.SectorSize
	end := start + length
	bs := int64(r.bs)
	var batch []blockWrite
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
		switch {
		case zero && n == bs:
			content = r.m.zero
		case zero:
			content = bytes.Clone(r.m.block(b))
			clear(content[in : in+n])
		case data != nil:
			piece := data[pos-start : pos-start+n]
			if n == bs {
				content = piece
			} else {
				// Partial block: merge into the model's copy.
				content = bytes.Clone(r.m.block(b))
				copy(content[in:], piece)
			}
		}
		o := r.idx.Lookup(b)
		if o.Role == RoleJournal && r.jt != nil && content != nil {
			ts, err := r.jt.WriteLogBlock(o.Logical, content, r.seq)
			if err != nil {
				r.anomaly("", b, "journal block %d: %v", o.Logical, err)
			}
			txs = append(txs, ts...)
			r.ioOp(ops.Write, o, pos, pos+n)
		} else {
			batch = append(batch, blockWrite{b: b, data: content, off: int32(in), n: int32(n), role: o.Role, ino: o.Ino})
		}
		pos += n
	}
	r.noteHomeMeta(batch)
	batch = r.holdSuspects(batch)
	if len(batch) > 0 {
		r.home = true
		r.applyBatch(batch)
		r.home = false
		for i := range batch {
			w := &batch[i]
			bstart := int64(w.b)*bs + int64(w.off)
			o := r.idx.Lookup(w.b)
			switch {
			case o.Role == RoleFree:
				r.addPending(w.b, pendWrite{seq: r.seq, t: r.t, off: w.off, n: w.n})
			case (o.Role == RoleData || o.Role == RoleSymlink) && o.Ino >= r.fs.SB.FirstIno:
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
	r.flushRecord(false)
}

// applyTransaction applies a committed journal transaction as one batch, so the order of its
// blocks cannot matter.
func (r *Resolver) applyTransaction(tx Transaction) {
	r.stats.Transactions++
	// A guest that commits transactions orders its metadata through the journal: back to the
	// journaled rules if home writes switched them off (a journal replayed at mount writes
	// its blocks home before the guest commits anything of its own).
	r.holdIO = false
	batch := make([]blockWrite, 0, len(tx.Blocks))
	for _, tb := range tx.Blocks {
		if tb.FSBlock >= r.nblk {
			r.anomaly("", 0, "journal transaction %d logs block %d past the end of the file system", tx.Seq, tb.FSBlock)
			continue
		}
		o := r.idx.Lookup(tb.FSBlock)
		batch = append(batch, blockWrite{b: tb.FSBlock, data: tb.Data, n: int32(r.bs), role: o.Role, ino: o.Ino, journaled: true})
	}
	r.applyBatch(batch)
	r.judgeSuspects()
	// A committed transaction is atomic: decide at once.
	r.resolveTouched()
	r.releaseHeld()
	for i := range batch {
		w := &batch[i]
		o := r.idx.Lookup(w.b)
		switch {
		case o.Role == RoleFree:
			r.addPending(w.b, pendWrite{seq: r.seq, t: r.t, n: int32(r.bs), journaled: true})
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
	clear(r.claimed)
	for i := range batch {
		w := &batch[i]
		if w.data == nil {
			continue
		}
		switch w.role {
		case RoleInodeTable, RoleDir, RoleInd, RoleDInd, RoleTInd, RoleExtent, RoleSymlink,
			RoleSuper, RoleGDT:
			old := r.m.block(w.b)
			if bytes.Equal(old, w.data) {
				continue
			}
			w.old = bytes.Clone(old)
			w.changed = true
			r.m.put(w.b, w.data)
			switch w.role {
			case RoleInd, RoleDInd, RoleTInd, RoleDir:
				r.metaWritten[w.b] = true
			}
		case RoleFree:
			w.changed = true
			r.m.putUnowned(w.b, w.data)
		case RoleData, RoleJournal:
			r.m.drop(w.b)
		}
	}
	// A directory or indirect block rewritten in the batch that also frees it (the last
	// entry moved out of a directory removed in the same transaction, the pointers of an
	// indirect block zeroed by the truncate that frees it) is released by what it held
	// before the batch, not by its new content: credit the old content first.
	for i := range batch {
		w := &batch[i]
		if !w.changed {
			continue
		}
		switch w.role {
		case RoleDir:
			if _, ok := r.credDir[w.b]; !ok {
				if olds, err := r.parseDents(w.old); err == nil {
					r.credDir[w.b] = olds
				}
			}
		case RoleInd, RoleDInd, RoleTInd:
			if _, ok := r.credMap[w.b]; !ok {
				r.credMap[w.b] = ext3fs.ParseIndirect(w.old)
			}
		}
	}
	for i := range batch {
		w := &batch[i]
		if w.changed && w.role == RoleInodeTable {
			r.diffInodeBlock(w.b, w.old, w.data)
		}
	}
	for i := range batch {
		w := &batch[i]
		if !w.changed || w.role == RoleInodeTable || r.claimed[w.b] {
			continue
		}
		o := r.idx.Lookup(w.b)
		if o.Role != w.role || o.Ino != w.ino {
			continue // released in this batch, or claimed (and decoded) by a new owner
		}
		switch o.Role {
		case RoleDir:
			r.diffDirBlock(w.b, o.Ino, w.old, w.data)
		case RoleInd, RoleDInd, RoleTInd:
			r.diffMapBlock(w.b, o, w.old, w.data)
		}
	}
	if !r.holdIO && !r.home {
		clear(r.metaWritten)
	}
}

// noteHomeMeta switches a journaled file system to the ext2 rules (holdIO) at the first home
// write that changes an inode-table block: jbd2 writes metadata home only as a checkpoint of a
// committed transaction, already applied, so such a write means the guest's driver ignores the
// journal (an ext2 driver mounting ext3, as on BSD or Windows) and orders nothing through it.
// Only the inode table is looked at: it is never file data, while a directory or indirect block
// may legitimately receive a new file's data before the commit that frees it (data=ordered).
// Home writes before the switch in the same flush interval are held like the ext2 rules hold
// them (see home), so the decision at the flush does not depend on where the write came.
func (r *Resolver) noteHomeMeta(batch []blockWrite) {
	if r.holdIO {
		return
	}
	for i := range batch {
		w := &batch[i]
		if w.role == RoleInodeTable && w.data != nil && !bytes.Equal(r.m.block(w.b), w.data) {
			r.holdIO = true
			return
		}
	}
}

// flushRecord emits the ops the current record made certain: namespace ops first (sorted so
// that a batch reads naturally), then held I/O of inodes that just got a name, then I/O.
func (r *Resolver) flushRecord(drainHeld bool) {
	if len(r.nsBuf) > 0 {
		sort.SliceStable(r.nsBuf, func(i, j int) bool { return nsRank(&r.nsBuf[i]) < nsRank(&r.nsBuf[j]) })
		for i := range r.nsBuf {
			r.out(&r.nsBuf[i])
		}
		r.nsBuf = r.nsBuf[:0]
	}
	if len(r.nameless) > 0 && (drainHeld || (!r.holdIO && r.namesGen != r.drainGen)) {
		r.drainGen = r.namesGen // nothing held can get a name until the names change
		inos := make([]uint32, 0, len(r.nameless))
		for ino := range r.nameless {
			inos = append(inos, ino)
		}
		sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
		for _, ino := range inos {
			l := r.nameless[ino]
			p := r.ioPath(ino)
			if p == "" {
				p = r.orphanPath[ino]
			}
			var keep []ops.Op
			for i := range l {
				switch {
				case p != "":
					l[i].Path = p
				case l[i].Path == "":
					// Still no name: keep holding (the end of the log names it at the latest).
					keep = append(keep, l[i])
					continue
				}
				// else: the file lost its name since; report the path it had then.
				l[i].Seq, l[i].T = r.seq, r.t
				r.out(&l[i])
			}
			if len(keep) == 0 {
				delete(r.nameless, ino)
			} else {
				r.nameless[ino] = keep
			}
		}
	}
	for i := range r.ioBuf {
		op := &r.ioBuf[i]
		if op.Ino != 0 && !(r.holdIO && op.Op == ops.Read) {
			// Paths as they are once this record's namespace changes are decided (a block
			// claimed by a file whose name the same transaction gives).
			p := r.ioPath(op.Ino)
			if len(r.touched) > 0 {
				// Name changes written home are decided at the next flush: until then
				// report the names as last decided.
				p = r.settledPath(op.Ino)
			}
			if p == "" {
				p = r.orphanPath[op.Ino]
			}
			if p != "" {
				op.Path = p
			}
			if op.Path == "" {
				r.nameless[op.Ino] = appendCoalesced(r.nameless[op.Ino], *op)
				continue
			}
		}
		r.out(op)
	}
	r.ioBuf = r.ioBuf[:0]
}

// maxHeld bounds heldW; past it the oldest are reported by their owner at that moment.
const maxHeld = 1 << 16

// nsRank orders the namespace ops made certain by one record: removals, then directories
// created (parents first), moves, files created, links, directories removed (children first).
func nsRank(op *ops.Op) int {
	depth := bytes.Count([]byte(op.Path), []byte{'/'})
	switch op.Op {
	case ops.Delete, ops.Unlink:
		return 0
	case ops.Mkdir:
		return 1000 + depth
	case ops.Move:
		return 3000
	case ops.Create, ops.Symlink, ops.Mknod:
		return 4000
	case ops.Link:
		return 5000
	case ops.Rmdir:
		return 7000 - depth
	case ops.Truncate:
		return 8000
	}
	return 9000
}

// Finish settles everything still pending at the end of the log and emits it.
func (r *Resolver) Finish() error {
	r.judgeSuspects()
	r.resolveTouched()
	r.releaseHeld()
	r.settleNamespace()
	r.flushRecord(true)
	r.reportUnowned()
	// I/O of inodes that never got a name.
	inos := make([]uint32, 0, len(r.nameless))
	for ino := range r.nameless {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		p := r.bestPath(ino)
		for _, op := range r.nameless[ino] {
			op.Path = p
			r.out(&op)
		}
	}
	r.nameless = map[uint32][]ops.Op{}
	// Blocks still claimed by two live inodes.
	for b, o := range r.shadow {
		cur := r.idx.Lookup(b)
		if cur.Ino != 0 && cur.Ino != o.Ino {
			r.anomaly(r.bestPath(cur.Ino), b, "block %d is owned by both inode %d and inode %d", b, o.Ino, cur.Ino)
		}
	}
	r.flushRecord(false)
	return r.err
}

// maxPendingBlocks bounds the writes held for blocks nobody owns (about 50 bytes each). Past it,
// they are reported as unowned at once: a log that writes that much outside any file is not
// writing files.
const maxPendingBlocks = 8 << 20
