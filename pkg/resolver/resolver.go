// Package resolver turns a block-request log into file operations: it
// replays the requests against a model of the disk that starts as the
// image, diffs every metadata block written against the model's previous
// version of it, and pairs the changes (names added and removed, inodes
// allocated and freed) into create, delete, move, link... with full paths,
// whatever order the guest wrote the blocks in. docs/how-it-works.md
// explains the method for users.
package resolver

import (
	"fmt"
	"io"
	"maps"
	"slices"
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
	// MountReplayBlocks are blocks the guest's mount rewrites in intermediate states while it
	// replays fast commits (ext3fs.Recovery.FastCommitBlocks, when the starting state is the
	// image after recovery). Home writes to them are I/O only, with no change to the model,
	// until the guest commits its first transaction: the starting state already holds where
	// that replay ends.
	MountReplayBlocks []uint64
	// RecoveryProblem, when the starting state is the image after journal recovery, is what
	// that recovery could not do (ext3fs.Recovery.Err, FastCommitErr): reported as an anomaly
	// before the first request, as problems of the image itself are, so the op stream says the
	// starting state may be incomplete.
	RecoveryProblem error
}

// openOptions are the file-system features the replay model follows beyond ext3fs.Open's:
// inline data (directories and files stored in the inode, see inodes.go).
var openOptions = ext3fs.Options{InlineData: true}

// DefaultUnownedCap is the default bound on content kept for unowned writes that could be
// metadata (model.go); with the bound on pending writes (maxPendingWrites) and the rest of
// the resolver's state it keeps analyze within its memory budget (docs/reliability.md).
const DefaultUnownedCap = 64 << 20

// Stats summarises a run.
type Stats struct {
	Records, Reads, Writes, Flushes, Discards, Others int64
	BytesRead, BytesWritten                           int64
	NoPayloadWrites                                   int64 // writes whose data was not captured
	LeftOut                                           int64 // data blocks the payload filter left out of writes (payload.go)
	ReadAgain                                         int64 // writes read again from the log for blocks the payload filter left out
	Transactions                                      int64 // committed journal transactions applied
	Ops                                               map[ops.Type]int64
	UnattributedWriteBytes                            int64 // written to blocks no file ever claimed
	UnattributedReadBytes                             int64 // read from blocks no file owned
	Anomalies                                         int64
	DroppedUnowned                                    int64 // unowned writes whose content was not kept (cap)
	JournalPending                                    int   // blocks of uncommitted transactions at the end
	FastCommits                                       int64 // ext4 fast commits applied
	FastCommitBlocks                                  int64 // blocks written to the fast-commit area
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

	// Geometry of the disk and its file system, fixed for the run; fs decodes the model.
	devSize int64 // bytes of the device (the image)
	fs      *ext3fs.FS
	bs      int
	spb     uint64 // sectors per block
	nblk    uint64
	isz     int
	ft      bool // directory entries carry a file type

	jt *JournalTracker // nil without a journal
	fc *fastCommits    // nil without ext4's fast-commit area
	// mountReplay: blocks the mount's fast-commit replay rewrites, until the first commit
	// (Options.MountReplayBlocks); nil after it.
	mountReplay map[uint64]bool
	mode        mode
	// refetch gives a record again, whole, once a payload filter is in use (PayloadFilter).
	refetch func(index int64) (blklog.Record, error)

	blocks ownership
	ns     namespace
	held   heldIO
	output output
	now    position

	// Buffers of the blocks of one write request and of one transaction (batch.go), and of
	// the inode resolve decides on (resolveInode), reused.
	writeBuf, txBuf []blockWrite
	oldBuf          []byte // oldOf's block read from the base
	dentScratch     []dent // parseDents' entries before their copy of the exact size
	inoBuf          []byte
	ino             ext3fs.Inode
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
	fs0, err := ext3fs.OpenWith(image, openOptions)
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
		opt: opt, devSize: size, bs: bs, spb: uint64(bs / blklog.SectorSize), nblk: sb.BlocksCount,
		isz: sb.InodeSize(), ft: sb.HasFiletype(),
		blocks: newOwnership(), ns: newNamespace(), held: newHeldIO(bs), output: newOutput(emit),
	}
	r.blocks.m = newModel(image, size, bs, sb.BlocksCount, sb.HasFiletype(), opt.UnownedCap)
	if r.fs, err = ext3fs.OpenWith(r.blocks.m, openOptions); err != nil {
		return nil, fmt.Errorf("resolver: opening the model: %w", err)
	}
	var problems []error
	if r.blocks.idx, r.ns.names, problems, err = BuildTolerant(r.fs); err != nil {
		return nil, fmt.Errorf("resolver: indexing the image: %w", err)
	}
	for _, p := range problems {
		// What the starting image itself gets wrong: reported before the first request, and
		// left out of the model as far as it is broken.
		r.anomaly("", 0, "in the image: %v", p)
	}
	if opt.RecoveryProblem != nil {
		r.anomaly("", 0, "journal recovery of the image: %v", opt.RecoveryProblem)
	}
	if sb.HasJournal() && sb.JournalInum != 0 {
		if err := r.openJournal(); err != nil {
			return nil, err
		}
	}
	r.mode = startMode(r.jt != nil)
	if len(opt.MountReplayBlocks) > 0 && r.jt != nil {
		r.mountReplay = make(map[uint64]bool, len(opt.MountReplayBlocks))
		for _, b := range opt.MountReplayBlocks {
			r.mountReplay[b] = true
		}
	}
	r.flushRecord(false)
	if r.output.err != nil {
		return nil, r.output.err
	}
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
	r.fc = newFastCommits(jsb, r.fs.SB)
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
	if err := blklog.CheckDeviceRange(rec, uint64(r.devSize)); err != nil {
		// A request the disk could not have served (a hostile or corrupt log; a sector whose
		// byte offset overflows would otherwise wrap onto a real file's blocks).
		r.anomaly("", 0, "%v", err)
		r.flushRecord(false)
		return r.output.err
	}
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
		r.write(rec.Sector, int64(rec.Length), data, rec.Omitted, zero)
	case blklog.TypeFlush:
		r.output.stats.Flushes++
		// What the guest wrote before a flush is the state it wanted durable: decide the
		// pairing of what home writes changed here, on the whole interval, in any order.
		for ino := range r.ns.waitMove {
			r.ns.touched.add(ino)
		}
		if r.mode.decidedAtFlush() {
			r.judgeSuspects()
		}
		r.resolveTouched()
		r.now.flushNo++
		r.blocks.endBatch()
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
	// Blocks still claimed by two live inodes, in block order.
	shadowed := slices.Sorted(maps.Keys(r.blocks.shadow))
	for _, b := range shadowed {
		o := r.blocks.shadow[b]
		cur := r.blocks.idx.Lookup(b)
		if cur.Ino != 0 && cur.Ino != o.Ino {
			r.anomaly(r.bestPath(cur.Ino), b, "block %d is owned by both inode %d and inode %d", b, o.Ino, cur.Ino)
		}
	}
	r.flushRecord(false)
	return r.output.err
}

// maxPendingWrites bounds the writes held for blocks nobody owns (pendW and pendMore, about
// 35 bytes each with their map entry, their request's stamp shared: under 20 MiB in all). Past it, they are reported as unowned at
// once: a log that writes 2 GiB (of 4 KiB blocks) outside any file before the metadata that
// claims them is not writing files (a guest filling its free space, or a file system the
// resolver cannot follow). A journaled guest claims its data at the next commit, seconds later.
const maxPendingWrites = 1 << 19
