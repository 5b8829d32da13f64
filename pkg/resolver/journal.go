package resolver

// JournalTracker follows the jbd2 log as the guest writes it and hands back each transaction once
// the disk holds all of it: its descriptor and revoke blocks, every logged block, and its commit
// block, in whatever order those writes arrived.
//
// The log is a ring of journal blocks [First, LogEnd). jbd2 writes a transaction as a contiguous
// run — revoke blocks, then descriptors each followed by the blocks its tags name, then a commit
// block — and starts the next transaction right after the commit. The tracker therefore keeps an
// anchor (log block, tid) where the next transaction must start and walks forward from it exactly
// like e2fsck/recovery.c's scan pass, except that a block not written yet is "wait" rather than
// "end of log". The anchor moves past each returned transaction, and is re-seated when the guest
// rewrites the journal superblock with a log start (first commit after mount or after a journal
// flush, recovery at mount, checkpoint tail moves).
//
// Only blocks written during the log are known: a transaction whose blocks were already on the
// starting image is never returned (the journal then needs recovery, which the guest's own mount
// performs with ordinary writes the caller sees anyway).
//
// Checksums (csum v2/v3 descriptor, revoke and commit blocks; v1 commit checksums) are verified
// and mismatches reported as errors without stopping: unlike recovery.c, which must distrust a
// log it finds after a crash, the tracker sees the guest write each block for the transaction
// being followed. A logged block failing its tag checksum is left out, as recovery.c does.
//
// Memory: one copy of each log block written and not yet part of a returned transaction, i.e. at
// most the ring size; returned blocks are handed over to the Transaction and forgotten.

import (
	"errors"
	"fmt"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// Transaction is one committed jbd2 transaction.
type Transaction struct {
	Seq        uint32    // tid
	CommitRec  int64     // log record whose write completed the transaction (commit or last block)
	Blocks     []TxBlock // in log order; blocks revoked by this same transaction are left out
	Revoked    []uint64  // file-system blocks this transaction revokes (replay rule: earlier copies are dead)
	CommitSec  uint64    // commit time from the commit block (debugfs writes it byte-swapped)
	CommitNsec uint32
	LogStart   uint64 // journal block of the transaction's first block
	LogEnd     uint64 // journal block of its commit block
}

// TxBlock is one file-system block logged by a transaction.
type TxBlock struct {
	FSBlock uint64
	Data    []byte // the block's new content, escape undone; owned by the receiver
	Rec     int64  // log record that wrote this copy into the journal
}

// JournalTracker follows journal writes; see the file comment. It is not safe for concurrent use.
type JournalTracker struct {
	jsb   *ext3fs.JournalSuperblock
	slots map[uint64]*logSlot // written log blocks not yet returned, by journal block number

	anchor logAnchor // where the next transaction starts
	walk   *logWalk  // progress of the walk from anchor; nil = restart from the anchor

	returned bool
	lastSeq  uint32 // tid of the last returned transaction
}

type logSlot struct {
	data []byte
	rec  int64
	hdr  ext3fs.JournalHeader
	kind uint32 // block type when data is a valid journal metadata block, else 0 (logged data)

	tags    []ext3fs.JournalTag // descriptor
	revoked []uint64            // revoke block
	commit  *ext3fs.JournalCommit
}

type logAnchor struct {
	pos    uint64
	seq    uint32
	anySeq bool // position known but not the tid: the journal was empty (s_start 0)
}

type logWalk struct {
	start   uint64
	pos     uint64 // next header position
	seq     uint32
	anySeq  bool
	desc    uint64              // position of the descriptor whose blocks are being collected
	tags    []ext3fs.JournalTag // its tags
	tagIdx  int                 // next tag whose block is needed
	blocks  []walkBlock
	revoked []uint64
	visited map[uint64]bool
	summed  []uint64 // descriptor and logged blocks in log order (v1 commit checksum)
}

type walkBlock struct {
	tag ext3fs.JournalTag
	pos uint64
}

// NewJournalTracker starts following a journal whose superblock, as on the starting image, is jsb.
// With a clean journal (s_start 0) the first transaction is expected at s_first with whatever tid
// it carries; otherwise at s_start with tid s_sequence.
func NewJournalTracker(jsb *ext3fs.JournalSuperblock) *JournalTracker {
	t := &JournalTracker{jsb: jsb, slots: make(map[uint64]*logSlot)}
	t.anchor = anchorFrom(jsb)
	return t
}

func anchorFrom(jsb *ext3fs.JournalSuperblock) logAnchor {
	if jsb.Start == 0 {
		return logAnchor{pos: uint64(jsb.First), seq: jsb.Sequence + 1, anySeq: true}
	}
	return logAnchor{pos: uint64(jsb.Start), seq: jsb.Sequence}
}

// Superblock is the journal superblock currently in force (the last valid one written).
func (t *JournalTracker) Superblock() *ext3fs.JournalSuperblock { return t.jsb }

// LastCommitted is the tid of the last transaction returned; ok is false before the first.
func (t *JournalTracker) LastCommitted() (tid uint32, ok bool) { return t.lastSeq, t.returned }

// Pending is the number of log blocks held for transactions not yet returned (uncommitted, or
// waiting for some of their blocks).
func (t *JournalTracker) Pending() int { return len(t.slots) }

// tidAfter reports a > b in jbd2's wrapping tid order (tid_gt).
func tidAfter(a, b uint32) bool { return int32(a-b) > 0 }

// JournalError describes a journal write the tracker could not use: the block is ignored, the
// tracker carries on.
type JournalError struct {
	LogBlock uint64
	Rec      int64
	Err      error
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("journal block %d (record %d): %v", e.LogBlock, e.Rec, e.Err)
}

func (e *JournalError) Unwrap() error { return e.Err }

// WriteLogBlock records that log record rec wrote data to journal block logBlock (0 = the journal
// superblock) and returns the transactions this write completed, oldest first. data is copied.
// An error (a *JournalError, or several joined) describes blocks that could not be decoded; the
// returned transactions are valid regardless.
func (t *JournalTracker) WriteLogBlock(logBlock uint64, data []byte, rec int64) ([]Transaction, error) {
	if logBlock == 0 {
		return t.writeSuperblock(data, rec)
	}
	if logBlock >= uint64(t.jsb.MaxLen) {
		return nil, &JournalError{logBlock, rec, fmt.Errorf("past the journal's %d blocks", t.jsb.MaxLen)}
	}
	if logBlock < uint64(t.jsb.First) || logBlock >= uint64(t.jsb.LogEnd()) {
		return nil, nil // fast-commit area or blocks before s_first: not part of the ring
	}
	if len(data) != int(t.jsb.BlockSize) {
		return nil, &JournalError{logBlock, rec, fmt.Errorf("%d bytes, want a %d-byte block", len(data), t.jsb.BlockSize)}
	}
	s := &logSlot{data: append([]byte(nil), data...), rec: rec}
	err := t.decodeSlot(s)
	if err != nil {
		err = &JournalError{logBlock, rec, err}
	}
	t.slots[logBlock] = s
	if t.walk != nil && t.walk.visited[logBlock] {
		t.walk = nil // a block the walk already accepted changed: walk again
	}
	txs, werr := t.advance(rec)
	return txs, errors.Join(err, werr)
}

// decodeSlot classifies a written log block. A block that carries the magic but does not decode
// is kept as data: it can still be a logged block of a transaction (escaping guarantees logged
// blocks never start with the magic, but the walk, not this guess, decides what a block is).
func (t *JournalTracker) decodeSlot(s *logSlot) error {
	h, ok := ext3fs.ParseJournalHeader(s.data)
	if !ok {
		return nil
	}
	s.hdr = h
	var err error
	switch h.BlockType {
	case ext3fs.JournalDescriptorBlock:
		s.tags, err = ext3fs.ParseDescriptor(s.data, t.jsb)
	case ext3fs.JournalRevokeBlock:
		s.revoked, err = ext3fs.ParseRevoke(s.data, t.jsb)
	case ext3fs.JournalCommitBlock:
		s.commit, err = ext3fs.ParseCommit(s.data, t.jsb)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	s.kind = h.BlockType
	// recovery.c stops replay at a block whose csum v2/v3 checksum fails. The guest wrote this
	// block where and when its transaction needed it, so it is used all the same (a live
	// kernel carries on with that transaction); the mismatch is reported.
	if !ext3fs.VerifyJournalBlockChecksum(s.data, t.jsb) {
		return fmt.Errorf("tid %d block type %d: checksum mismatch", h.Sequence, h.BlockType)
	}
	return nil
}

// writeSuperblock handles a rewrite of journal block 0: new geometry or features, and a new log
// start, which re-seats the anchor unless it only describes transactions already returned.
func (t *JournalTracker) writeSuperblock(data []byte, rec int64) ([]Transaction, error) {
	jsb, err := ext3fs.ParseJournalSuperblock(data)
	if err != nil {
		return nil, &JournalError{0, rec, err}
	}
	old := t.jsb
	t.jsb = jsb
	if jsb.BlockSize != old.BlockSize || jsb.First != old.First || jsb.MaxLen != old.MaxLen ||
		jsb.NumFCBlocks != old.NumFCBlocks || jsb.UUID != old.UUID {
		// A new ring (tune2fs, re-created journal): everything logged so far is moot.
		t.slots = make(map[uint64]*logSlot)
		t.anchor, t.walk = anchorFrom(jsb), nil
		return nil, nil
	}
	var errs []error
	rewalk := false
	if jsb.FeatureCompat != old.FeatureCompat || jsb.FeatureIncompat != old.FeatureIncompat ||
		jsb.ChecksumType != old.ChecksumType {
		// Features change on a live log. jbd2 sets them in its in-memory superblock and only the
		// next superblock write carries them: the first revoke of a mount sets INCOMPAT_REVOKE
		// (jbd2_journal_revoke -> jbd2_journal_set_features), which reaches the disk with the
		// next checkpoint tail update, many transactions later; mount options set checksum
		// features before the first commit. Neither starts a new log, so the held blocks and
		// the anchor stay. Blocks are decoded again in case the tag layout or checksums changed
		// (only possible at mount, with the log empty), and the walk restarts from the anchor.
		for pos, s := range t.slots {
			ns := &logSlot{data: s.data, rec: s.rec}
			if err := t.decodeSlot(ns); err != nil {
				errs = append(errs, &JournalError{pos, s.rec, err})
			}
			t.slots[pos] = ns
		}
		rewalk = true
	}
	if end := uint64(jsb.LogEnd()); end < uint64(old.LogEnd()) {
		// The ring got shorter without being re-created: ext4 mounting with fast_commit sets
		// INCOMPAT_FAST_COMMIT, which gives the ring's tail to the fast-commit area. The log is
		// empty then, but the first transaction's blocks may be written before this superblock:
		// they stay; blocks now in the fast-commit area were never part of the log.
		for pos := range t.slots {
			if pos >= end {
				delete(t.slots, pos)
			}
		}
	}
	if jsb.Start != 0 && !(t.returned && !tidAfter(jsb.Sequence, t.lastSeq)) &&
		(t.anchor.anySeq || t.anchor.seq != jsb.Sequence || t.anchor.pos != uint64(jsb.Start)) {
		// A log start ahead of the anchor: recovery at mount, or the first commit after the
		// log was emptied, names where the next transaction is.
		t.anchor = logAnchor{pos: uint64(jsb.Start), seq: jsb.Sequence}
		rewalk = true
	}
	// Otherwise the anchor stays: s_start 0 (flush or unmount) says the next transaction goes
	// at the current head after a flush or at s_first after a remount, and its first commit
	// rewrites the superblock with the real start; a start at or before the last returned tid
	// is a checkpoint moving the tail.
	if !rewalk {
		return nil, errors.Join(errs...)
	}
	t.walk = nil
	txs, err := t.advance(rec)
	return txs, errors.Join(append(errs, err)...)
}

// advance walks from the anchor as far as the written blocks allow and returns every transaction
// completed on the way.
func (t *JournalTracker) advance(rec int64) ([]Transaction, error) {
	var out []Transaction
	var errs []error
	for {
		tx, ok, err := t.step(rec)
		if err != nil {
			errs = append(errs, err)
		}
		if !ok {
			return out, errors.Join(errs...)
		}
		out = append(out, tx)
	}
}

// step continues the walk; ok is true when it reached a commit block.
func (t *JournalTracker) step(rec int64) (tx Transaction, ok bool, err error) {
	w := t.walk
	if w == nil {
		w = &logWalk{start: t.anchor.pos, pos: t.anchor.pos, seq: t.anchor.seq, anySeq: t.anchor.anySeq,
			visited: make(map[uint64]bool)}
		t.walk = w
	}
	// Each iteration visits a new log block or stops, so the walk ends within one turn of the ring.
	for {
		// Blocks named by the current descriptor's tags follow it, with wrap.
		if w.tagIdx < len(w.tags) {
			q := t.jsb.WrapLogBlock(w.desc + 1 + uint64(w.tagIdx))
			if t.slots[q] == nil || w.visited[q] {
				return tx, false, nil
			}
			w.blocks = append(w.blocks, walkBlock{w.tags[w.tagIdx], q})
			w.summed = append(w.summed, q)
			w.visited[q] = true
			w.tagIdx++
			continue
		}
		s := t.slots[w.pos]
		if s == nil || s.kind == 0 || w.visited[w.pos] {
			return tx, false, nil
		}
		if w.anySeq {
			// Empty journal: the first transaction written at the head defines the tid.
			w.seq, w.anySeq = s.hdr.Sequence, false
		}
		if s.hdr.Sequence != w.seq {
			return tx, false, nil // an older transaction's block: the new one is not written yet
		}
		w.visited[w.pos] = true
		switch s.kind {
		case ext3fs.JournalDescriptorBlock:
			w.desc, w.tags, w.tagIdx = w.pos, s.tags, 0
			w.summed = append(w.summed, w.pos)
			w.pos = t.jsb.WrapLogBlock(w.pos + 1 + uint64(len(s.tags)))
		case ext3fs.JournalRevokeBlock:
			w.revoked = append(w.revoked, s.revoked...)
			w.pos = t.jsb.WrapLogBlock(w.pos + 1)
		case ext3fs.JournalCommitBlock:
			tx, err = t.finish(w, s, rec)
			return tx, true, err
		default:
			// A superblock or fast-commit block inside the ring: recovery.c ends the log here.
			delete(w.visited, w.pos)
			return tx, false, nil
		}
	}
}

// finish builds the transaction the walk w found, forgets its blocks and moves the anchor past it.
func (t *JournalTracker) finish(w *logWalk, commit *logSlot, rec int64) (Transaction, error) {
	tx := Transaction{
		Seq: w.seq, CommitRec: rec, Revoked: w.revoked,
		CommitSec: commit.commit.CommitSec, CommitNsec: commit.commit.CommitNsec,
		LogStart: w.start, LogEnd: w.pos,
	}
	revoked := make(map[uint64]bool, len(w.revoked))
	for _, b := range w.revoked {
		revoked[b] = true
	}
	var errs []error
	if t.jsb.FeatureCompat&ext3fs.JournalCompatChecksum != 0 && !t.jsb.HasCsumV2V3() {
		// v1 checksum: crc32_be over descriptors and logged blocks as stored, in log order.
		sum := ext3fs.JournalV1ChecksumInit
		for _, pos := range w.summed {
			sum = ext3fs.JournalV1Checksum(sum, t.slots[pos].data)
		}
		if !ext3fs.VerifyJournalV1Commit(commit.commit, sum) {
			errs = append(errs, &JournalError{w.pos, commit.rec, fmt.Errorf(
				"tid %d: commit checksum %#x, transaction sums to %#x", w.seq, commit.commit.Checksum[0], sum)})
		}
	}
	for _, b := range w.blocks {
		s := t.slots[b.pos]
		if !ext3fs.VerifyJournalTagChecksum(t.jsb, w.seq, b.tag, s.data) {
			// recovery.c skips a logged block whose checksum fails and replays the rest.
			errs = append(errs, &JournalError{b.pos, s.rec,
				fmt.Errorf("tid %d: logged copy of block %d fails its tag checksum; not applied", w.seq, b.tag.FSBlock)})
			continue
		}
		if revoked[b.tag.FSBlock] {
			continue // revoked in its own transaction (replay rule: tx <= revoke tid)
		}
		data := s.data
		if b.tag.Escaped() {
			ext3fs.UnescapeJournalBlock(data)
		}
		tx.Blocks = append(tx.Blocks, TxBlock{FSBlock: b.tag.FSBlock, Data: data, Rec: s.rec})
	}
	for pos := range w.visited {
		delete(t.slots, pos)
	}
	t.anchor = logAnchor{pos: t.jsb.WrapLogBlock(w.pos + 1), seq: w.seq + 1}
	t.walk = nil
	t.returned, t.lastSeq = true, w.seq
	return tx, errors.Join(errs...)
}
