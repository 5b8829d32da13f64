package ext3fs

// jbd2 journal recovery over a read-only image: the three passes of e2fsprogs' e2fsck/recovery.c
// (the kernel's fs/jbd2/recovery.c), writing into an overlay instead of the device, and the
// superblock edits e2fsck's journal.c makes afterwards (needs_recovery cleared; the journal
// superblock's s_start = 0 and s_sequence = the next tid). See docs/recovery.md.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// Superblock fields recovery edits (byte offsets in the 1024-byte superblock).
const (
	sbOffState           = 0x3A
	sbOffFeatureIncompat = 0x60
	sbOffChecksum        = 0x3FC

	stateValidFS = 0x1 // EXT2_VALID_FS
	stateErrorFS = 0x2 // EXT2_ERROR_FS
)

// Recovery is the result of replaying a journal: what was done and a view of the image after it.
type Recovery struct {
	// Needed is false when the superblock has no needs_recovery (or the journal's s_start is 0):
	// the view is then the image itself, untouched.
	Needed bool
	// Transactions replayed: tids FirstSequence .. LastSequence (LastSequence = FirstSequence-1
	// when none). NextSequence is the tid the journal superblock now expects (s_sequence).
	Transactions  int
	FirstSequence uint32
	LastSequence  uint32
	NextSequence  uint32
	// BlocksReplayed counts the log blocks written to their home (recovery.c nr_replays, a block
	// logged by several transactions counts each time); Blocks is the sorted set of file-system
	// blocks the view changes, the two superblocks included.
	BlocksReplayed int
	Blocks         []uint64
	// Revokes counts revoke records read (nr_revokes); RevokeHits the logged blocks they kept
	// from being replayed (nr_revoke_hits).
	Revokes    int
	RevokeHits int
	// FailedCommit is the tid whose commit block failed its checksum (HasFailedCommit): the scan
	// ended there, that transaction and the ones after it were not replayed, and the file system
	// is marked with errors (e2fsck: "journal transaction N was corrupt, replay was aborted").
	FailedCommit    uint32
	HasFailedCommit bool
	// Err is the error recovery.c would return (a logged block whose tag checksum does not match,
	// a corrupt revoke block, a bad descriptor checksum in a live transaction). What could be
	// replayed was; the file system is then marked not clean, as e2fsck leaves it.
	Err error
	// Fast commits after the last full commit, replayed after it (fcreplay.go): FastCommits
	// counts the complete fast commits (a TAIL with a good checksum, the tid after the last full
	// commit) found in the area, FastCommitRecords their records. FastCommitErr says what of
	// them could not be replayed (the rest was).
	FastCommits       int
	FastCommitRecords int
	FastCommitErr     error
	// FastCommitBlocks are the file-system blocks the fast-commit replay wrote, sorted. The
	// kernel's replay writes each of them home in intermediate states, flushed one record at a
	// time, before the mount is done (see resolver.Options.MountReplayBlocks).
	FastCommitBlocks []uint64

	base io.ReaderAt
	bs   int64
	over map[uint64][]byte // file-system block -> content after recovery
}

// ReadAt reads the image as recovery leaves it: the overlay's blocks over the base image.
func (rc *Recovery) ReadAt(p []byte, off int64) (int, error) {
	n, err := rc.base.ReadAt(p, off)
	if len(rc.over) == 0 || off < 0 {
		return n, err
	}
	end := off + int64(n)
	for blk := uint64(off / rc.bs); int64(blk)*rc.bs < end; blk++ {
		b, ok := rc.over[blk]
		if !ok {
			continue
		}
		bstart := int64(blk) * rc.bs
		lo, hi := max(off, bstart), min(end, bstart+rc.bs)
		copy(p[lo-off:hi-off], b[lo-bstart:hi-bstart])
	}
	return n, err
}

// Zeros reports whether the n bytes at off are known to read as zeros without reading them: no
// block recovery wrote is among them, and the base image says so (a diskimage.Image's Zeros);
// false says nothing.
func (rc *Recovery) Zeros(off, n int64) bool {
	z, ok := rc.base.(interface{ Zeros(off, n int64) bool })
	if !ok || off < 0 || n <= 0 {
		return false
	}
	if len(rc.Blocks) != len(rc.over) {
		return false // a recovery that did not finish: Blocks does not list the overlay
	}
	first, last := uint64(off/rc.bs), uint64((off+n-1)/rc.bs)
	if i, _ := slices.BinarySearch(rc.Blocks, first); i < len(rc.Blocks) && rc.Blocks[i] <= last {
		return false
	}
	return z.Zeros(off, n)
}

// Summary is one line for humans: what recovery did.
func (rc *Recovery) Summary() string {
	if !rc.Needed {
		return "no journal recovery needed"
	}
	s := fmt.Sprintf("journal recovered: %d transactions replayed (tids %d-%d), %d blocks written, %d revoked, next tid %d",
		rc.Transactions, rc.FirstSequence, rc.LastSequence, rc.BlocksReplayed, rc.RevokeHits, rc.NextSequence)
	if rc.Transactions == 0 {
		s = fmt.Sprintf("journal recovered: no committed transaction to replay, next tid %d", rc.NextSequence)
	}
	if rc.HasFailedCommit {
		s += fmt.Sprintf("; transaction %d has a bad commit checksum: replay stopped there", rc.FailedCommit)
	}
	if rc.Err != nil {
		s += fmt.Sprintf("; recovery error: %v", rc.Err)
	}
	if rc.FastCommits > 0 {
		s += fmt.Sprintf("; %d fast commits replayed (%d records)", rc.FastCommits, rc.FastCommitRecords)
	}
	if rc.FastCommitErr != nil {
		s += fmt.Sprintf("; fast-commit replay incomplete: %v", rc.FastCommitErr)
	}
	return s
}

// ErrExternalJournal is returned by Recover for a file system whose journal is on another device.
var ErrExternalJournal = errors.New("external journal")

// Recover replays the journal of the image r when its superblock says needs_recovery, as
// e2fsck -fy does before checking, and returns the view of the image after it. r is only read.
// Without needs_recovery the view is r itself and Needed is false.
func Recover(r io.ReaderAt) (*Recovery, error) {
	fs, err := OpenWith(r, Options{InlineData: true})
	if err != nil {
		return nil, err
	}
	rc := &Recovery{base: r, bs: int64(fs.BlockSize()), over: map[uint64][]byte{}}
	sb := fs.SB
	if !sb.NeedsRecovery() {
		return rc, nil
	}
	if !sb.HasJournal() || sb.JournalInum == 0 {
		if sb.JournalDev != 0 || sb.JournalUUID != [16]byte{} {
			return nil, &FormatError{Struct: "superblock", Offset: SuperblockOffset + 0xE4,
				Msg: "needs recovery from a journal on another device", Err: ErrExternalJournal}
		}
		return nil, formatErr("superblock", SuperblockOffset+0x60, "needs_recovery without a journal")
	}
	j, err := openJournal(fs, rc)
	if err != nil {
		return nil, err
	}
	if j.jsb.Start == 0 {
		// jbd2_journal_recover with an empty log: nothing replayed, the next tid is s_sequence+1.
		rc.Needed = true
		rc.NextSequence = j.jsb.Sequence + 1
		rc.FirstSequence, rc.LastSequence = j.jsb.Sequence, j.jsb.Sequence-1
		return rc, rc.finish(fs, j, false)
	}
	rc.Needed = true
	if err := j.recover(); err != nil {
		rc.Err = err
	}
	return rc, rc.finish(fs, j, rc.Err != nil)
}

// journal is the state of one recovery (recovery.c's journal_t and recovery_info).
type journal struct {
	rc        *Recovery
	jsb       *JournalSuperblock
	phys      []uint64 // journal block -> file-system block
	bs        int
	first     uint64
	end       uint64 // one past the last log block (j_last)
	revoked   map[uint64]uint32
	inodeSize int
	errno     int32 // the journal superblock's s_errno before recovery

	startTID, endTID uint32
	endSet           bool
}

func openJournal(fs *FS, rc *Recovery) (*journal, error) {
	jin, err := fs.ReadInode(fs.SB.JournalInum)
	if err != nil {
		return nil, fmt.Errorf("journal inode %d: %w", fs.SB.JournalInum, err)
	}
	var phys []uint64
	err = fs.WalkBlocks(jin, func(br BlockRef) error {
		if br.Kind != BlockData {
			return nil
		}
		if br.Logical >= 1<<24 {
			return formatErr(fmt.Sprintf("journal inode %d", fs.SB.JournalInum), 0,
				"logical block %d beyond any journal", br.Logical)
		}
		for uint64(len(phys)) <= br.Logical {
			phys = append(phys, 0)
		}
		phys[br.Logical] = br.Phys
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal inode %d: %w", fs.SB.JournalInum, err)
	}
	if len(phys) == 0 || phys[0] == 0 {
		return nil, formatErr(fmt.Sprintf("journal inode %d", fs.SB.JournalInum), 0, "no block 0")
	}
	j := &journal{rc: rc, phys: phys, bs: fs.BlockSize(), revoked: map[uint64]uint32{}, inodeSize: fs.SB.InodeSize()}
	b, err := j.read(0)
	if err != nil {
		return nil, err
	}
	jsb, err := ParseJournalSuperblock(b)
	if err != nil {
		return nil, err
	}
	if int(jsb.BlockSize) != j.bs {
		return nil, formatErr("journal superblock", 0x0C, "block size %d, the file system's is %d", jsb.BlockSize, j.bs)
	}
	if uint64(jsb.MaxLen) > uint64(len(phys)) {
		return nil, formatErr("journal superblock", 0x10, "s_maxlen %d blocks, the journal inode maps %d", jsb.MaxLen, len(phys))
	}
	j.jsb, j.first, j.end, j.errno = jsb, uint64(jsb.First), uint64(jsb.LogEnd()), jsb.Errno
	return j, nil
}

// read returns journal block n as the device holds it now: through the overlay, as the kernel
// reads the log through the same buffer cache that replay writes into.
func (j *journal) read(n uint64) ([]byte, error) {
	if n >= uint64(len(j.phys)) || j.phys[n] == 0 {
		return nil, formatErr("journal", int64(n)*int64(j.bs), "journal block %d is not mapped", n)
	}
	b := make([]byte, j.bs)
	off := int64(j.phys[n]) * int64(j.bs)
	if _, err := j.rc.ReadAt(b, off); err != nil {
		return nil, &FormatError{Struct: "journal", Offset: off, Msg: fmt.Sprintf("reading journal block %d", n), Err: err}
	}
	return b, nil
}

func (j *journal) wrap(n uint64) uint64 {
	if j.end > j.first && n >= j.end {
		n -= j.end - j.first
	}
	return n
}

type recoveryPass int

const (
	passScan recoveryPass = iota
	passRevoke
	passReplay
)

func tidGT(x, y uint32) bool  { return int32(x-y) > 0 }
func tidGEQ(x, y uint32) bool { return int32(x-y) >= 0 }

// recover is jbd2_journal_recover: the three passes, then the next tid.
func (j *journal) recover() error {
	rc := j.rc
	err := j.pass(passScan)
	if err == nil {
		err = j.pass(passRevoke)
	}
	if err == nil {
		err = j.pass(passReplay)
	}
	rc.FirstSequence = j.startTID
	rc.LastSequence = j.endTID - 1
	rc.Transactions = int(j.endTID - j.startTID)
	rc.NextSequence = j.endTID + 1
	if err != nil {
		// recover_ext3_journal jumps over j_tail_sequence = j_transaction_sequence: the journal
		// keeps its s_sequence.
		rc.NextSequence = j.jsb.Sequence
		if !j.endSet {
			rc.Transactions = 0
			rc.LastSequence = rc.FirstSequence - 1
		}
	}
	return err
}

// pass is recovery.c's do_one_pass. Log blocks are followed from s_start; a block that is not a
// journal block of the expected tid ends the log.
func (j *journal) pass(p recoveryPass) error {
	jsb, rc := j.jsb, j.rc
	next := jsb.Sequence
	blk := uint64(jsb.Start)
	if p == passScan {
		j.startTID = next
	}
	csum := jsb.HasCsumV2V3()
	var crc32Sum uint32 = JournalV1ChecksumInit
	needCheckCommitTime := false
	var lastCommitTime uint64
	var result error
	blockError := false
	// A crafted log can chain descriptors of one tid around the ring forever (the kernel would
	// loop); no real transaction is longer than the log.
	ring := j.end - j.first
	inTxn := uint64(0)
	lastTxn := next

loop:
	for {
		if p != passScan && tidGEQ(next, j.endTID) {
			break
		}
		if next != lastTxn {
			lastTxn, inTxn = next, 0
		}
		if inTxn > ring {
			if p == passScan {
				result = formatErr("journal", int64(blk)*int64(j.bs), "transaction %d runs around the whole log", next)
				break
			}
			return formatErr("journal", int64(blk)*int64(j.bs), "transaction %d runs around the whole log", next)
		}
		b, err := j.read(blk)
		if err != nil {
			return err
		}
		at := blk
		blk = j.wrap(blk + 1)
		inTxn++
		h, ok := ParseJournalHeader(b)
		if !ok || h.Sequence != next {
			break
		}
		switch h.BlockType {
		case JournalDescriptorBlock:
			tags, _ := ParseDescriptor(b, jsb) // cannot fail: b is a whole descriptor block
			if csum && !VerifyJournalBlockChecksum(b, jsb) {
				if p != passScan {
					return formatErr("journal descriptor block", int64(at)*int64(j.bs), "checksum mismatch (tid %d, log block %d)", next, at)
				}
				needCheckCommitTime = true
			}
			if p != passReplay {
				if p == passScan && jsb.FeatureCompat&JournalCompatChecksum != 0 && !needCheckCommitTime && !j.endSet {
					crc32Sum = JournalV1Checksum(crc32Sum, b)
					for range tags {
						ob, err := j.read(blk)
						if err != nil {
							break loop
						}
						blk = j.wrap(blk + 1)
						inTxn++
						crc32Sum = JournalV1Checksum(crc32Sum, ob)
					}
					continue
				}
				blk = j.wrap(blk + uint64(len(tags)))
				inTxn += uint64(len(tags))
				continue
			}
			for _, t := range tags {
				io := blk
				blk = j.wrap(blk + 1)
				inTxn++
				ob, err := j.read(io)
				if err != nil {
					result = err // recover what we can, report the failure at the end
					continue
				}
				if seq, ok := j.revoked[t.FSBlock]; ok && !tidGT(next, seq) {
					rc.RevokeHits++
					continue
				}
				if !VerifyJournalTagChecksum(jsb, h.Sequence, t, ob) {
					result = formatErr("journal", int64(j.phys[io])*int64(j.bs),
						"tag checksum mismatch for block %d (tid %d, log block %d): not replayed", t.FSBlock, next, io)
					blockError = true
					continue
				}
				if t.Escaped() {
					UnescapeJournalBlock(ob)
				}
				if err := j.write(t.FSBlock, ob); err != nil {
					return err
				}
				rc.BlocksReplayed++
			}
		case JournalCommitBlock:
			commitTime := binary.BigEndian.Uint64(b[0x30:])
			if needCheckCommitTime {
				if commitTime >= lastCommitTime {
					return formatErr("journal commit block", int64(at)*int64(j.bs),
						"invalid checksum found in transaction %d", next)
				}
				break loop // a stale block of an older journal: the log ends here
			}
			bad := false
			if p == passScan && jsb.FeatureCompat&JournalCompatChecksum != 0 {
				if j.endSet {
					// recovery.c's break leaves the switch only: the scan goes on at the same tid
					// and ends at the next block of another tid.
					rc.FailedCommit, rc.HasFailedCommit = j.endTID, true
					continue
				}
				c, _ := ParseCommit(b, jsb)
				if !VerifyJournalV1Commit(c, crc32Sum) {
					bad = true
				}
				crc32Sum = JournalV1ChecksumInit
			}
			if !bad && p == passScan && !VerifyJournalBlockChecksum(b, jsb) {
				bad = true
			}
			if bad {
				if commitTime < lastCommitTime {
					break loop
				}
				j.endTID, j.endSet = next, true
				if !jsb.HasAsyncCommit() {
					rc.FailedCommit, rc.HasFailedCommit = next, true
					continue // as above: the tid does not advance
				}
			}
			if p == passScan {
				lastCommitTime = commitTime
			}
			next++
		case JournalRevokeBlock:
			if p == passScan && !VerifyJournalBlockChecksum(b, jsb) {
				needCheckCommitTime = true
			}
			if p != passRevoke {
				continue
			}
			blocks, err := ParseRevoke(b, jsb)
			if err != nil {
				return err
			}
			for _, n := range blocks {
				if seq, ok := j.revoked[n]; !ok || tidGT(next, seq) {
					j.revoked[n] = next
				}
				rc.Revokes++
			}
		default:
			break loop
		}
	}
	if p == passScan {
		if !j.endSet {
			j.endTID, j.endSet = next, true
		}
	} else if j.endTID != next && result == nil {
		result = formatErr("journal", 0, "recovery pass %d ended at transaction %d, expected %d", p, next, j.endTID)
	}
	if p == passReplay && jsb.HasFastCommit() {
		j.scanFastCommits()
	}
	if blockError && result == nil {
		result = formatErr("journal", 0, "a logged block failed its checksum")
	}
	return result
}

// scanFastCommits finds the complete fast commits as the kernel's replay scan does
// (ext4_fc_replay_scan expects the tid after the last full commit: endTID) and replays them.
func (j *journal) scanFastCommits() {
	first, end, ok := j.jsb.FastCommitArea()
	if !ok {
		return
	}
	var blocks [][]byte
	for n := uint64(first); n < uint64(end); n++ {
		b, err := j.read(n)
		if err != nil {
			break
		}
		blocks = append(blocks, b)
	}
	s := ScanFastCommits(blocks, j.endTID, j.inodeSize)
	j.rc.FastCommits = len(s.Commits)
	for _, c := range s.Commits {
		j.rc.FastCommitRecords += len(c.Records)
	}
	if len(s.Commits) > 0 {
		j.rc.FastCommitErr = j.rc.replayFastCommits(s.Commits)
	}
}

func (j *journal) write(fsBlock uint64, b []byte) error {
	j.rc.over[fsBlock] = append([]byte(nil), b...)
	return nil
}

// finish makes the superblock edits e2fsck makes after replay and lists the changed blocks.
func (rc *Recovery) finish(fs *FS, j *journal, failed bool) error {
	// The fs superblock, possibly just replayed: needs_recovery cleared (e2fsck_clear_recover),
	// not clean after a recovery error, errors after a corrupt transaction (the journal's
	// s_errno = -EINVAL, which e2fsck_check_ext3_journal then moves into s_state).
	sb := make([]byte, SuperblockSize)
	if _, err := rc.ReadAt(sb, SuperblockOffset); err != nil {
		return &FormatError{Struct: "superblock", Offset: SuperblockOffset, Msg: "read failed", Err: err}
	}
	le := binary.LittleEndian
	le.PutUint32(sb[sbOffFeatureIncompat:], le.Uint32(sb[sbOffFeatureIncompat:])&^IncompatRecover)
	state := le.Uint16(sb[sbOffState:])
	if failed {
		state &^= stateValidFS
	}
	if (rc.HasFailedCommit && !failed) || j.errno != 0 {
		state |= stateErrorFS
	}
	le.PutUint16(sb[sbOffState:], state)
	if le.Uint32(sb[0x64:])&RoCompatMetadataCsum != 0 {
		le.PutUint32(sb[sbOffChecksum:], Crc32c(^uint32(0), sb[:sbOffChecksum]))
	}
	rc.patch(SuperblockOffset, sb)

	// The journal superblock: empty (s_start 0), s_sequence the next tid, s_errno 0.
	jb, err := j.read(0)
	if err != nil {
		return err
	}
	be := binary.BigEndian
	be.PutUint32(jb[0x18:], rc.NextSequence)
	be.PutUint32(jb[0x1C:], 0)
	be.PutUint32(jb[0x20:], 0)
	if j.jsb.Version() == 2 && j.jsb.HasCsumV2V3() {
		be.PutUint32(jb[0xFC:], 0)
		be.PutUint32(jb[0xFC:], journalCRC(^uint32(0), jb[:JournalSuperblockSize]))
	}
	if err := j.write(j.phys[0], jb); err != nil {
		return err
	}
	rc.Blocks = rc.Blocks[:0]
	for b := range rc.over {
		rc.Blocks = append(rc.Blocks, b)
	}
	sort.Slice(rc.Blocks, func(a, b int) bool { return rc.Blocks[a] < rc.Blocks[b] })
	return nil
}

// patch writes p at byte off of the view (within blocks already read or not).
func (rc *Recovery) patch(off int64, p []byte) {
	for len(p) > 0 {
		blk := uint64(off / rc.bs)
		b, ok := rc.over[blk]
		if !ok {
			b = make([]byte, rc.bs)
			// A short read past the end of the image leaves zeroes, as the device would not exist.
			_, _ = rc.base.ReadAt(b, int64(blk)*rc.bs)
			rc.over[blk] = b
		}
		in := off - int64(blk)*rc.bs
		n := copy(b[in:], p)
		p, off = p[n:], off+int64(n)
	}
}
