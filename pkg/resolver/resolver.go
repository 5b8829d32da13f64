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

// Resolver consumes log records in order and emits ops. It is the coordinator of parts that
// each hold their own state (docs/architecture.md draws the data flow):
//
//   - blocks (ownership.go): who owns each block, the model of the disk's metadata, and what
//     was credited from directory and map blocks;
//   - ns (namespace.go): the names table and the name/inode events waiting to be paired;
//   - held (held.go): writes that cannot be attributed yet;
//   - output (output.go): the ops of the current record, in the order they come out;
//   - mode (mode.go): when a change written by the guest is certain (at a commit, or at a flush).
//
// The Resolver's own methods are the steps that need several parts: a write batch
// (batch.go), an inode change (inodes.go), a directory change (dirs.go), pairing (pairing.go)
// and attribution of I/O (attribute.go).
type Resolver struct {
	opt Options

	// Geometry of the file system, fixed for the run; fs decodes the model.
	fs   *ext3fs.FS
	bs   int
	spb  uint64 // sectors per block
	nblk uint64
	isz  int
	ft   bool // directory entries carry a file type

	jt   *JournalTracker // nil without a journal
	mode mode

	blocks ownership
	ns     namespace
	held   heldIO
	output output
	now    position
}

// position is where in the log the resolver is.
type position struct {
	seq     int64   // index of the current record
	t       float64 // its time, in seconds
	flushNo int64   // device flushes so far
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
		opt: opt, bs: bs, spb: uint64(bs / blklog.SectorSize), nblk: sb.BlocksCount,
		isz: sb.InodeSize(), ft: sb.HasFiletype(),
		blocks: newOwnership(), ns: newNamespace(), held: newHeldIO(), output: newOutput(emit),
	}
	r.blocks.m = newModel(image, size, bs, sb.BlocksCount, opt.UnownedCap)
	if r.fs, err = ext3fs.Open(r.blocks.m); err != nil {
		return nil, fmt.Errorf("resolver: opening the model: %w", err)
	}
	if r.blocks.idx, r.ns.names, err = Build(r.fs); err != nil {
		return nil, fmt.Errorf("resolver: indexing the image: %w", err)
	}
	if sb.HasJournal() && sb.JournalInum != 0 {
		if err := r.openJournal(); err != nil {
			return nil, err
		}
	}
	r.mode = startMode(r.jt != nil)
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
	jsb, err := ext3fs.ParseJournalSuperblock(r.blocks.m.block(first))
	if err != nil {
		return fmt.Errorf("resolver: journal superblock at block %d: %w", first, err)
	}
	r.jt = NewJournalTracker(jsb)
	return nil
}

// Stats returns the counters so far.
func (r *Resolver) Stats() Stats {
	s := r.output.stats
	s.DroppedUnowned = r.blocks.m.dropped
	if r.jt != nil {
		s.JournalPending = r.jt.Pending()
	}
	return s
}

// Record processes the next log record.
func (r *Resolver) Record(rec *blklog.Record) error {
	r.now.seq = rec.Index
	r.now.t = 0
	if rec.Flags&blklog.FlagHasTime != 0 {
		r.now.t = float64(rec.TimeNS) / 1e9
	}
	r.output.stats.Records++
	switch rec.Type {
	case blklog.TypeRead:
		r.output.stats.Reads++
		r.output.stats.BytesRead += int64(rec.Length)
		r.read(rec.Sector, int64(rec.Length))
	case blklog.TypeWrite, blklog.TypeWriteZeroes:
		r.output.stats.Writes++
		r.output.stats.BytesWritten += int64(rec.Length)
		data := rec.Data
		zero := rec.Type == blklog.TypeWriteZeroes
		if !zero && (rec.Flags&blklog.FlagNoPayload != 0 || len(data) < int(rec.Length)) {
			r.output.stats.NoPayloadWrites++
			data = nil
		}
		r.write(rec.Sector, int64(rec.Length), data, zero)
	case blklog.TypeFlush:
		r.output.stats.Flushes++
		// What the guest wrote before a flush is the state it wanted durable: decide the
		// pairing of what home writes changed here, on the whole interval, in any order.
		for ino := range r.ns.waitMove {
			r.ns.touched[ino] = true
		}
		if r.mode.decidedAtFlush() {
			r.judgeSuspects()
		}
		r.resolveTouched()
		r.now.flushNo++
		clear(r.blocks.metaWritten)
		for ino, n := range r.ns.inoWritten {
			if n < r.now.flushNo-2 {
				delete(r.ns.inoWritten, ino)
			}
		}
		if r.mode.decidedAtFlush() {
			r.releaseHeld()
		} else {
			r.ageHeld()
		}
		r.flushRecord(true)
	case blklog.TypeDiscard:
		r.output.stats.Discards++
	default:
		r.output.stats.Others++
	}
	return r.output.err
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
			content = r.blocks.m.zero
		case zero:
			content = bytes.Clone(r.blocks.m.block(b))
			clear(content[in : in+n])
		case data != nil:
			piece := data[pos-start : pos-start+n]
			if n == bs {
				content = piece
			} else {
				// Partial block: merge into the model's copy.
				content = bytes.Clone(r.blocks.m.block(b))
				copy(content[in:], piece)
			}
		}
		o := r.blocks.idx.Lookup(b)
		if o.Role == RoleJournal && r.jt != nil && content != nil {
			ts, err := r.jt.WriteLogBlock(o.Logical, content, r.now.seq)
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
	r.output.stats.Transactions++
	// A guest that commits transactions orders its metadata through the journal: back to the
	// journaled rules if home writes switched them off (a journal replayed at mount writes
	// its blocks home before the guest commits anything of its own).
	r.mode.committed()
	batch := make([]blockWrite, 0, len(tx.Blocks))
	for _, tb := range tx.Blocks {
		if tb.FSBlock >= r.nblk {
			r.anomaly("", 0, "journal transaction %d logs block %d past the end of the file system", tx.Seq, tb.FSBlock)
			continue
		}
		o := r.blocks.idx.Lookup(tb.FSBlock)
		batch = append(batch, blockWrite{b: tb.FSBlock, data: tb.Data, n: int32(r.bs), role: o.Role, ino: o.Ino, journaled: true})
	}
	r.applyBatch(batch)
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
	clear(r.blocks.claimed)
	for i := range batch {
		w := &batch[i]
		if w.data == nil {
			continue
		}
		switch w.role {
		case RoleInodeTable, RoleDir, RoleInd, RoleDInd, RoleTInd, RoleExtent, RoleSymlink,
			RoleSuper, RoleGDT:
			old := r.blocks.m.block(w.b)
			if bytes.Equal(old, w.data) {
				continue
			}
			w.old = bytes.Clone(old)
			w.changed = true
			r.blocks.m.put(w.b, w.data)
			switch w.role {
			case RoleInd, RoleDInd, RoleTInd, RoleDir:
				r.blocks.metaWritten[w.b] = true
			}
		case RoleFree:
			w.changed = true
			r.blocks.m.putUnowned(w.b, w.data)
		case RoleData, RoleJournal:
			r.blocks.m.drop(w.b)
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
			if _, ok := r.blocks.credDir[w.b]; !ok {
				if olds, err := r.parseDents(w.old); err == nil {
					r.blocks.credDir[w.b] = olds
				}
			}
		case RoleInd, RoleDInd, RoleTInd:
			if _, ok := r.blocks.credMap[w.b]; !ok {
				r.blocks.credMap[w.b] = ext3fs.ParseIndirect(w.old)
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
		if !w.changed || w.role == RoleInodeTable || r.blocks.claimed[w.b] {
			continue
		}
		o := r.blocks.idx.Lookup(w.b)
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
	if !r.mode.claimsHeld() {
		clear(r.blocks.metaWritten)
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

// Finish settles everything still pending at the end of the log and emits it.
func (r *Resolver) Finish() error {
	r.judgeSuspects()
	r.resolveTouched()
	r.releaseHeld()
	r.settleNamespace()
	r.flushRecord(true)
	r.reportUnowned()
	// I/O of inodes that never got a name.
	inos := make([]uint32, 0, len(r.held.nameless))
	for ino := range r.held.nameless {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		p := r.bestPath(ino)
		for _, op := range r.held.nameless[ino] {
			op.Path = p
			r.output.put(&op)
		}
	}
	r.held.nameless = map[uint32][]ops.Op{}
	// Blocks still claimed by two live inodes.
	for b, o := range r.blocks.shadow {
		cur := r.blocks.idx.Lookup(b)
		if cur.Ino != 0 && cur.Ino != o.Ino {
			r.anomaly(r.bestPath(cur.Ino), b, "block %d is owned by both inode %d and inode %d", b, o.Ino, cur.Ino)
		}
	}
	r.flushRecord(false)
	return r.output.err
}

// maxPendingBlocks bounds the writes held for blocks nobody owns (about 50 bytes each). Past it,
// they are reported as unowned at once: a log that writes that much outside any file is not
// writing files.
const maxPendingBlocks = 8 << 20
