package resolver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

var trackerFormats = []struct {
	name     string
	incompat uint32
}{
	{"plain", 0},
	{"64bit", ext3fs.JournalIncompat64Bit},
	{"csum2", ext3fs.JournalIncompatCsumV2},
	{"csum2+64bit", ext3fs.JournalIncompatCsumV2 | ext3fs.JournalIncompat64Bit},
	{"csum3", ext3fs.JournalIncompatCsumV3},
	{"csum3+64bit", ext3fs.JournalIncompatCsumV3 | ext3fs.JournalIncompat64Bit},
}

func newTestJSB(bs, maxLen uint32, incompat uint32) *ext3fs.JournalSuperblock {
	j := &ext3fs.JournalSuperblock{BlockType: ext3fs.JournalSuperblockV2, BlockSize: bs, MaxLen: maxLen,
		First: 1, Sequence: 1, FeatureIncompat: ext3fs.JournalIncompatRevoke | incompat}
	copy(j.UUID[:], "journal-tracker!")
	return j
}

// logWrite is one write of a journal block, as the tracker will be fed it.
type logWrite struct {
	pos  uint64
	data []byte
	tx   int // index of the transaction in the builder, -1 for superblock writes
}

// jlog builds a jbd2 log the way the kernel lays it out: per transaction, revoke blocks, then
// descriptors each followed by their blocks, then the commit block; the next one starts after it.
type jlog struct {
	t      testing.TB
	jsb    *ext3fs.JournalSuperblock
	head   uint64
	writes []logWrite
	want   []Transaction // expected committed transactions (CommitRec filled by the feeder)
	ntx    int
}

func newJlog(t testing.TB, jsb *ext3fs.JournalSuperblock, head uint64) *jlog {
	return &jlog{t: t, jsb: jsb, head: head}
}

func (l *jlog) put(data []byte) {
	l.writes = append(l.writes, logWrite{pos: l.head, data: data, tx: l.ntx})
	l.head = l.jsb.WrapLogBlock(l.head + 1)
}

// blockData is recognisable content for fs block n in transaction seq; if magic it starts with
// the journal magic so that it must be escaped.
func blockData(bs uint32, seq uint32, n uint64, magic bool) []byte {
	b := make([]byte, bs)
	for i := range b {
		b[i] = byte(uint64(i) + n*31 + uint64(seq)*7)
	}
	if magic {
		binary.BigEndian.PutUint32(b, ext3fs.JournalMagic)
	}
	return b
}

// tx logs one transaction: blocks (escaped when their data starts with the magic, magicEvery-th
// block), revokes, and a commit block unless commit is false. perDesc limits tags per descriptor.
func (l *jlog) tx(seq uint32, blocks []uint64, revokes []uint64, commit bool, perDesc int) {
	l.t.Helper()
	want := Transaction{Seq: seq, Revoked: revokes, LogStart: l.head}
	if len(revokes) > 0 {
		r, err := ext3fs.BuildRevoke(l.jsb, seq, revokes)
		if err != nil {
			l.t.Fatal(err)
		}
		l.put(r)
	}
	revoked := map[uint64]bool{}
	for _, r := range revokes {
		revoked[r] = true
	}
	for len(blocks) > 0 {
		n := min(perDesc, len(blocks))
		var tags []ext3fs.JournalTag
		var datas [][]byte
		for _, fb := range blocks[:n] {
			data := blockData(l.jsb.BlockSize, seq, fb, fb%5 == 0)
			logged, esc := ext3fs.EscapeJournalBlock(data)
			tg := ext3fs.JournalTag{FSBlock: fb, Checksum: ext3fs.JournalTagChecksum(l.jsb, seq, logged)}
			if esc {
				tg.Flags = ext3fs.JournalFlagEscape
			}
			tags = append(tags, tg)
			datas = append(datas, logged)
			if !revoked[fb] {
				want.Blocks = append(want.Blocks, TxBlock{FSBlock: fb, Data: data})
			}
		}
		d, err := ext3fs.BuildDescriptor(l.jsb, seq, tags)
		if err != nil {
			l.t.Fatal(err)
		}
		l.put(d)
		for _, data := range datas {
			l.put(data)
		}
		blocks = blocks[n:]
	}
	if commit {
		want.LogEnd = l.head
		want.CommitSec = uint64(seq) * 100
		l.put(ext3fs.BuildCommit(l.jsb, seq, want.CommitSec, 0))
		l.want = append(l.want, want)
	}
	l.ntx++
}

// feed writes ws to tr in order and returns the transactions with the index of the write that
// completed each.
func feed(t *testing.T, tr *JournalTracker, ws []logWrite) []Transaction {
	t.Helper()
	var got []Transaction
	for i, w := range ws {
		txs, err := tr.WriteLogBlock(w.pos, w.data, int64(i))
		if err != nil {
			t.Fatalf("write %d (log block %d): %v", i, w.pos, err)
		}
		for _, tx := range txs {
			if tx.CommitRec != int64(i) {
				t.Errorf("tx %d: CommitRec %d, want %d", tx.Seq, tx.CommitRec, i)
			}
		}
		got = append(got, txs...)
	}
	return got
}

// sameTxs compares transactions by tid, log extent, revokes and block contents (not records).
func sameTxs(t *testing.T, got, want []Transaction) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d transactions %v, want %d %v", len(got), seqs(got), len(want), seqs(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.LogStart != w.LogStart || g.LogEnd != w.LogEnd || g.CommitSec != w.CommitSec ||
			fmt.Sprint(g.Revoked) != fmt.Sprint(w.Revoked) || len(g.Blocks) != len(w.Blocks) {
			t.Fatalf("tx %d: got seq %d log %d-%d revoked %v %d blocks commit %d; want seq %d log %d-%d revoked %v %d blocks commit %d",
				i, g.Seq, g.LogStart, g.LogEnd, g.Revoked, len(g.Blocks), g.CommitSec,
				w.Seq, w.LogStart, w.LogEnd, w.Revoked, len(w.Blocks), w.CommitSec)
		}
		for j := range w.Blocks {
			if g.Blocks[j].FSBlock != w.Blocks[j].FSBlock || !bytes.Equal(g.Blocks[j].Data, w.Blocks[j].Data) {
				t.Fatalf("tx %d block %d: got fs block %d (data %x...), want %d (data %x...)", g.Seq, j,
					g.Blocks[j].FSBlock, g.Blocks[j].Data[:8], w.Blocks[j].FSBlock, w.Blocks[j].Data[:8])
			}
		}
	}
}

func seqs(txs []Transaction) []uint32 {
	var s []uint32
	for _, tx := range txs {
		s = append(s, tx.Seq)
	}
	return s
}

// TestTrackerFormats: escape, revoke (in another and in the same transaction), multi-descriptor
// transactions, an uncommitted tail, for every tag layout.
func TestTrackerFormats(t *testing.T) {
	for _, f := range trackerFormats {
		for _, bs := range []uint32{1024, 4096} {
			t.Run(fmt.Sprintf("%s/%d", f.name, bs), func(t *testing.T) {
				jsb := newTestJSB(bs, 1024, f.incompat)
				l := newJlog(t, jsb, 1)
				hi := uint64(0)
				if jsb.Has64Bit() {
					hi = 1 << 33
				}
				l.tx(1, []uint64{2000, 2001, 2002, hi + 2005}, nil, true, 100)
				l.tx(2, []uint64{3000, 3001, 3002, 3003, 3004, 3005, 3006}, []uint64{2001, 3003}, true, 3)
				l.tx(3, []uint64{2001}, nil, true, 100)
				l.tx(4, []uint64{4000, 4001}, nil, false, 100) // never committed
				tr := NewJournalTracker(jsb)
				got := feed(t, tr, l.writes)
				sameTxs(t, got, l.want)
				if len(got[0].Blocks) != 4 || got[0].Blocks[3].FSBlock != hi+2005 {
					t.Errorf("tx 1 blocks %+v", got[0].Blocks)
				}
				// 2000 and 2005 start with the magic in the fs; the log copies were escaped.
				if binary.BigEndian.Uint32(got[0].Blocks[0].Data) != ext3fs.JournalMagic {
					t.Error("escaped block 2000 came back without its magic")
				}
				// Uncommitted tx 4: descriptor + 2 blocks still held.
				if tr.Pending() != 3 {
					t.Errorf("Pending %d, want 3", tr.Pending())
				}
				for i, tx := range got {
					if tx.Blocks[0].Rec <= 0 || tx.Blocks[0].Rec >= tx.CommitRec {
						t.Errorf("tx %d: block record %d, commit record %d", i, tx.Blocks[0].Rec, tx.CommitRec)
					}
				}
			})
		}
	}
}

// TestTrackerCommitFirst: the commit block reaches the disk before some of the transaction's
// blocks (async_commit, or reordering within a flush interval); the transaction completes with the
// last missing block.
func TestTrackerCommitFirst(t *testing.T) {
	jsb := newTestJSB(1024, 256, 0)
	l := newJlog(t, jsb, 1)
	l.tx(1, []uint64{10, 11, 12}, nil, true, 100)
	ws := l.writes // desc, 10, 11, 12, commit
	order := []logWrite{ws[4], ws[0], ws[2], ws[3], ws[1]}
	tr := NewJournalTracker(jsb)
	for i, w := range order {
		txs, err := tr.WriteLogBlock(w.pos, w.data, int64(i))
		if err != nil {
			t.Fatal(err)
		}
		if (len(txs) != 0) != (i == len(order)-1) {
			t.Fatalf("after write %d: %d transactions", i, len(txs))
		}
		if len(txs) == 1 {
			if txs[0].CommitRec != int64(i) || txs[0].Blocks[1].Rec != 1+1 {
				t.Errorf("CommitRec %d, block 11 record %d", txs[0].CommitRec, txs[0].Blocks[1].Rec)
			}
			sameTxs(t, txs, l.want)
		}
	}
	if tr.Pending() != 0 {
		t.Errorf("Pending %d after the only transaction returned", tr.Pending())
	}
}

// shuffleWithin permutes the writes of each group of consecutive transactions, as a device may
// complete the writes between two flushes in any order.
func shuffleWithin(ws []logWrite, group int, rng *rand.Rand) []logWrite {
	out := append([]logWrite(nil), ws...)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && out[j].tx/group == out[i].tx/group {
			j++
		}
		rng.Shuffle(j-i, func(a, b int) { out[i+a], out[i+b] = out[i+b], out[i+a] })
		i = j
	}
	return out
}

// TestTrackerWrapAndReuse: a small ring written around many times. Each transaction's writes (and,
// in a second pass, pairs of transactions) arrive shuffled; old log blocks are overwritten by
// newer transactions. Every committed transaction must come back intact, and memory must not grow.
func TestTrackerWrapAndReuse(t *testing.T) {
	for _, f := range trackerFormats {
		jsb := newTestJSB(1024, 80, f.incompat)
		l := newJlog(t, jsb, 1)
		rng := rand.New(rand.NewSource(1))
		for seq := uint32(1); seq <= 200; seq++ {
			n := 1 + rng.Intn(12)
			var blocks []uint64
			for i := 0; i < n; i++ {
				blocks = append(blocks, uint64(100+rng.Intn(500)))
			}
			var rev []uint64
			if seq%7 == 0 {
				rev = []uint64{blocks[0] + 1}
			}
			l.tx(seq, blocks, rev, true, 1+rng.Intn(6))
		}
		for _, group := range []int{1, 2} {
			for seed := int64(0); seed < 5; seed++ {
				ws := shuffleWithin(l.writes, group, rand.New(rand.NewSource(seed)))
				tr := NewJournalTracker(jsb)
				var got []Transaction
				maxPending := 0
				for i, w := range ws {
					txs, err := tr.WriteLogBlock(w.pos, w.data, int64(i))
					if err != nil {
						t.Fatalf("%s: write %d: %v", f.name, i, err)
					}
					got = append(got, txs...)
					maxPending = max(maxPending, tr.Pending())
				}
				sameTxs(t, got, l.want)
				if maxPending > 79 || tr.Pending() != 0 {
					t.Errorf("%s group %d seed %d: pending peaked at %d, ends at %d", f.name, group, seed,
						maxPending, tr.Pending())
				}
			}
		}
	}
}

// TestTrackerWrapInsideDescriptor: a descriptor near the end of the ring whose blocks continue at
// s_first, and a journal superblock with the log start near the end.
func TestTrackerWrapInsideDescriptor(t *testing.T) {
	jsb := newTestJSB(1024, 20, 0)
	jsb.Start, jsb.Sequence = 17, 50
	l := newJlog(t, jsb, 17)
	l.tx(50, []uint64{1, 2, 3, 4, 5}, nil, true, 100) // desc 17, blocks 18 19 1 2 3, commit 4
	l.tx(51, []uint64{6}, nil, true, 100)
	got := feed(t, NewJournalTracker(jsb), l.writes)
	sameTxs(t, got, l.want)
	if got[0].LogStart != 17 || got[0].LogEnd != 4 || got[1].LogStart != 5 {
		t.Errorf("log extents %d-%d, %d", got[0].LogStart, got[0].LogEnd, got[1].LogStart)
	}
}

// TestTrackerStaleBlocks: the ring still holds an old transaction when a new one reuses it, and
// the new commit arrives first: the old blocks (returned long ago) must not stand in for missing
// new ones, and an old header with another tid must not be taken for the new one.
func TestTrackerStaleBlocks(t *testing.T) {
	jsb := newTestJSB(1024, 12, 0)
	l := newJlog(t, jsb, 1)
	l.tx(1, []uint64{10, 11, 12, 13}, nil, true, 100) // 1..6
	l.tx(2, []uint64{20, 21, 22}, nil, true, 100)     // 7..11
	l.tx(3, []uint64{30, 31, 32, 33}, nil, true, 100) // 1..6 again
	tr := NewJournalTracker(jsb)
	got := feed(t, tr, l.writes[:11])
	sameTxs(t, got, l.want[:2])
	tx3 := l.writes[11:]
	// Commit of tx 3 first, then its descriptor, then blocks one by one.
	order := []logWrite{tx3[5], tx3[0], tx3[1], tx3[2], tx3[3], tx3[4]}
	for i, w := range order {
		txs, err := tr.WriteLogBlock(w.pos, w.data, int64(100+i))
		if err != nil {
			t.Fatal(err)
		}
		if (len(txs) == 1) != (i == len(order)-1) {
			t.Fatalf("write %d of tx 3 (log block %d) returned %d transactions", i, w.pos, len(txs))
		}
		if len(txs) == 1 {
			sameTxs(t, txs, l.want[2:])
		}
	}
}

// TestTrackerUncommittedThenReuse: a transaction that never commits is abandoned (the tail stays
// pending, nothing is returned), and the next one the kernel writes after a remount, announced
// by the journal superblock, is found at s_first.
func TestTrackerRemount(t *testing.T) {
	jsb := newTestJSB(1024, 64, 0)
	jsb.Sequence = 9 // clean journal on the starting image: first tid is whatever is written
	l := newJlog(t, jsb, 1)
	l.tx(10, []uint64{1, 2}, nil, true, 100)
	l.tx(11, []uint64{3}, nil, true, 100)
	// Unmount: superblock with s_start 0.
	empty := *jsb
	empty.Sequence, empty.Start = 12, 0
	l.writes = append(l.writes, logWrite{pos: 0, data: empty.Marshal(), tx: -1})
	// Remount: transactions restart at s_first with tid 13; the superblock naming the new start
	// reaches the disk after the descriptor but before the commit.
	l.head = 1
	l.tx(13, []uint64{7, 8}, nil, true, 100)
	reseat := *jsb
	reseat.Sequence, reseat.Start = 13, 1
	ws := l.writes
	n := len(ws)
	ws = append(ws[:n-3:n-3], logWrite{pos: 0, data: reseat.Marshal(), tx: -1}, ws[n-3], ws[n-2], ws[n-1])
	// A checkpoint moving the tail to tid 13 changes nothing.
	ws = append(ws, logWrite{pos: 0, data: reseat.Marshal(), tx: -1})
	tr := NewJournalTracker(jsb)
	got := feed(t, tr, ws)
	sameTxs(t, got, l.want)
	if tr.Pending() != 0 {
		t.Errorf("Pending %d", tr.Pending())
	}
}

// TestTrackerDirtyStart: the starting image's journal needs recovery (s_start set); the guest
// replays it at mount and resets the log, and only the new transactions come back.
func TestTrackerDirtyStart(t *testing.T) {
	jsb := newTestJSB(1024, 64, 0)
	jsb.Start, jsb.Sequence = 30, 4 // transactions 4.. are on the image, never written in the log
	l := newJlog(t, jsb, 1)
	reset := *jsb
	reset.Start, reset.Sequence = 1, 6
	l.writes = append(l.writes, logWrite{pos: 0, data: reset.Marshal(), tx: -1})
	l.tx(6, []uint64{5}, nil, true, 100)
	tr := NewJournalTracker(jsb)
	sameTxs(t, feed(t, tr, l.writes), l.want)
}

// TestTrackerErrors: undecodable writes are reported with their log block and record, and ignored.
func TestTrackerErrors(t *testing.T) {
	jsb := newTestJSB(1024, 64, ext3fs.JournalIncompatCsumV3)
	l := newJlog(t, jsb, 1)
	l.tx(1, []uint64{5, 6}, nil, true, 100)
	tr := NewJournalTracker(jsb)
	var je *JournalError
	if _, err := tr.WriteLogBlock(64, l.writes[1].data, 0); !errors.As(err, &je) || je.LogBlock != 64 {
		t.Errorf("block past the journal: %v", err)
	}
	if _, err := tr.WriteLogBlock(3, make([]byte, 100), 0); !errors.As(err, &je) || je.LogBlock != 3 {
		t.Errorf("short block: %v", err)
	}
	if _, err := tr.WriteLogBlock(0, make([]byte, 1024), 0); !errors.As(err, &je) || je.LogBlock != 0 {
		t.Errorf("bad superblock: %v", err)
	}
	// A descriptor with a bad checksum is reported when written but still followed (the guest
	// wrote it for this transaction); a logged block whose data fails its tag checksum is left
	// out, as recovery.c does, and reported when the transaction completes.
	bad := append([]byte(nil), l.writes[0].data...)
	bad[1020] ^= 1
	if _, err := tr.WriteLogBlock(1, bad, 1); !errors.As(err, &je) || je.LogBlock != 1 || je.Rec != 1 {
		t.Errorf("bad descriptor checksum: %v", err)
	}
	corrupt := append([]byte(nil), l.writes[1].data...) // block 5, at log block 2
	corrupt[100] ^= 1
	if _, err := tr.WriteLogBlock(2, corrupt, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.WriteLogBlock(3, l.writes[2].data, 3); err != nil {
		t.Fatal(err)
	}
	txs, err := tr.WriteLogBlock(4, l.writes[3].data, 4)
	if len(txs) != 1 || len(txs[0].Blocks) != 1 || txs[0].Blocks[0].FSBlock != 6 {
		t.Fatalf("got %d transactions %v", len(txs), seqs(txs))
	}
	if !errors.As(err, &je) || je.LogBlock != 2 || je.Rec != 2 {
		t.Errorf("tag checksum failure: %v", err)
	}
}

// TestTrackerV1Checksum: with COMPAT_CHECKSUM the commit carries crc32_be over the descriptor and
// logged blocks; a transaction whose blocks do not sum to it is still returned, with an error.
func TestTrackerV1Checksum(t *testing.T) {
	jsb := newTestJSB(1024, 64, 0)
	jsb.FeatureCompat = ext3fs.JournalCompatChecksum
	l := newJlog(t, jsb, 1)
	l.tx(1, []uint64{5, 6}, nil, true, 100)
	l.tx(2, []uint64{7}, nil, true, 100)
	for _, tx := range []int{0, 1} {
		// Fill in the commit checksum the way the kernel does.
		var commitIdx int
		sum := ext3fs.JournalV1ChecksumInit
		for i, w := range l.writes {
			if w.tx != tx {
				continue
			}
			if h, ok := ext3fs.ParseJournalHeader(w.data); ok && h.BlockType == ext3fs.JournalCommitBlock {
				commitIdx = i
				continue
			}
			sum = ext3fs.JournalV1Checksum(sum, w.data)
		}
		c := l.writes[commitIdx].data
		c[0x0C], c[0x0D] = 1, 4
		binary.BigEndian.PutUint32(c[0x10:], sum)
	}
	l.writes[len(l.writes)-2].data[7] ^= 1 // the block of tx 2: no longer sums to its commit
	tr := NewJournalTracker(jsb)
	var got []Transaction
	var errs []error
	for i, w := range l.writes {
		txs, err := tr.WriteLogBlock(w.pos, w.data, int64(i))
		got = append(got, txs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if fmt.Sprint(seqs(got)) != "[1 2]" {
		t.Fatalf("transactions %v", seqs(got))
	}
	var je *JournalError
	if len(errs) != 1 || !errors.As(errs[0], &je) || je.Rec != int64(len(l.writes)-1) {
		t.Errorf("errors %v, want one for the commit of tid 2", errs)
	}
}

// TestTrackerRewrittenDescriptor: a descriptor the walk already followed is rewritten (fewer
// tags) before the commit arrives where its second block was: the walk starts over.
func TestTrackerRewrittenDescriptor(t *testing.T) {
	jsb := newTestJSB(1024, 64, 0)
	jsb.Start = 1
	l := newJlog(t, jsb, 1)
	l.tx(1, []uint64{10, 11}, nil, false, 100) // desc 1, blocks 2 3
	first := l.writes
	l.writes, l.head = nil, 1
	l.tx(1, []uint64{10}, nil, true, 100) // desc 1, block 2, commit 3
	tr := NewJournalTracker(jsb)
	if got := feed(t, tr, first); len(got) != 0 {
		t.Fatalf("uncommitted transaction returned: %v", seqs(got))
	}
	sameTxs(t, feed(t, tr, l.writes), l.want)
}

// FuzzJournalTracker feeds arbitrary write sequences (valid journal blocks, mutated blocks and
// garbage at arbitrary positions) to a tracker: it must not panic, must hold no more blocks than
// its ring (the one its latest superblock names: a mutated superblock write may name another,
// as tune2fs re-creating the journal does) nor than the positions written, and must return
// transactions whose blocks each have a full block of data.
func FuzzJournalTracker(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, int64(1))
	f.Add([]byte{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0x80, 0x81}, int64(2))
	f.Fuzz(func(t *testing.T, prog []byte, seed int64) {
		jsb := newTestJSB(1024, 24, ext3fs.JournalIncompat64Bit)
		l := newJlog(t, jsb, 1)
		rng := rand.New(rand.NewSource(seed))
		for seq := uint32(1); seq <= 6; seq++ {
			l.tx(seq, []uint64{uint64(rng.Intn(50)), uint64(rng.Intn(50))}, []uint64{uint64(rng.Intn(50))},
				seq != 4, 1+rng.Intn(2))
		}
		// Superblock rewrites: a clean log, tail moves, features set lazily (REVOKE) or changing
		// the tag layout (CSUM_V3).
		for i, inc := range []uint32{ext3fs.JournalIncompatRevoke, 0, ext3fs.JournalIncompatCsumV3} {
			sb := *jsb
			sb.FeatureIncompat = ext3fs.JournalIncompat64Bit | inc
			sb.Start, sb.Sequence = uint32(i*5), uint32(1+i*2)
			l.writes = append(l.writes, logWrite{pos: 0, data: sb.Marshal(), tx: -1})
		}
		tr := NewJournalTracker(jsb)
		for i, op := range prog {
			w := l.writes[int(op&0x7F)%len(l.writes)]
			pos, data := w.pos, w.data
			if op&0x80 != 0 { // mutate: another position, or flipped bytes
				if rng.Intn(2) == 0 {
					pos = uint64(rng.Intn(int(jsb.MaxLen) + 2))
				} else {
					data = bytes.Clone(data)
					data[rng.Intn(len(data))] ^= byte(1 + rng.Intn(255))
				}
			}
			txs, _ := tr.WriteLogBlock(pos, data, int64(i))
			for _, tx := range txs {
				for _, b := range tx.Blocks {
					if len(b.Data) != int(jsb.BlockSize) {
						t.Fatalf("tid %d: block %d has %d bytes", tx.Seq, b.FSBlock, len(b.Data))
					}
				}
			}
			ring := int(tr.jsb.LogEnd()) - int(tr.jsb.First)
			if p := tr.Pending(); p > ring || p > int(jsb.MaxLen)+1 {
				t.Fatalf("%d blocks pending in a %d-block ring (%d positions written to)", p, ring, jsb.MaxLen+1)
			}
		}
	})
}

// benchLog is a 4 KiB-block journal of 400 transactions of 16 blocks each (ring of 8192 blocks,
// written once around), plain and csum v3.
func benchLog(b *testing.B, incompat uint32) (*ext3fs.JournalSuperblock, []logWrite) {
	jsb := newTestJSB(4096, 8192, incompat)
	l := newJlog(b, jsb, 1)
	for seq := uint32(1); seq <= 400; seq++ {
		var blocks []uint64
		for i := uint64(0); i < 16; i++ {
			blocks = append(blocks, 1000+uint64(seq)*16+i)
		}
		l.tx(seq, blocks, nil, true, 100)
	}
	return jsb, l.writes
}

// BenchmarkJournalTracker feeds a whole log through a tracker. Compare its ns/op with
// BenchmarkJournalCopyReference (the same bytes only copied once, the floor for a tracker that
// must keep its own copy of every block) from the same run.
func BenchmarkJournalTracker(b *testing.B) {
	for _, f := range []struct {
		name     string
		incompat uint32
	}{{"plain", 0}, {"csum3", ext3fs.JournalIncompatCsumV3}} {
		jsb, ws := benchLog(b, f.incompat)
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(ws) * int(jsb.BlockSize)))
			for b.Loop() {
				tr := NewJournalTracker(jsb)
				n := 0
				for i, w := range ws {
					txs, err := tr.WriteLogBlock(w.pos, w.data, int64(i))
					if err != nil {
						b.Fatal(err)
					}
					n += len(txs)
				}
				if n != 400 {
					b.Fatalf("%d transactions", n)
				}
			}
		})
	}
}

func BenchmarkJournalCopyReference(b *testing.B) {
	jsb, ws := benchLog(b, 0)
	b.SetBytes(int64(len(ws) * int(jsb.BlockSize)))
	var keep [][]byte
	for b.Loop() {
		keep = keep[:0]
		for _, w := range ws {
			keep = append(keep, bytes.Clone(w.data))
		}
	}
}

// TestTrackerLazyFeatures: jbd2 sets INCOMPAT_REVOKE at the first revoke of a mount and the flag
// reaches the disk only with the next superblock write, a checkpoint moving the tail to a
// transaction already returned (random-ext3-4k: tid 3 revokes, the superblock of record 457
// carries the flag with the tail at tid 46 after tid 47 committed). The log goes on: every
// later transaction must come back, also when the superblock lands in the middle of one.
func TestTrackerLazyFeatures(t *testing.T) {
	for _, mid := range []bool{false, true} {
		t.Run(fmt.Sprintf("mid-transaction=%v", mid), func(t *testing.T) {
			jsb := newTestJSB(1024, 64, 0)
			jsb.FeatureIncompat = 0 // as mke2fs leaves an ext3 journal
			jsb.Sequence = 1
			l := newJlog(t, jsb, 1)
			l.tx(2, []uint64{10, 11}, nil, true, 100)
			l.tx(3, []uint64{12}, []uint64{11}, true, 100)
			l.tx(4, []uint64{13, 14}, nil, true, 100)
			tail := *jsb
			tail.FeatureIncompat = ext3fs.JournalIncompatRevoke
			tail.Start, tail.Sequence = uint32(l.want[1].LogStart), 3
			sb := logWrite{pos: 0, data: tail.Marshal(), tx: -1}
			l.tx(5, []uint64{15, 16}, nil, true, 100)
			l.tx(6, []uint64{17}, []uint64{13}, true, 100)
			ws := l.writes
			at := len(ws) - 5 // before tid 5's descriptor
			if mid {
				at = len(ws) - 4 // after it
			}
			ws = append(ws[:at:at], append([]logWrite{sb}, ws[at:]...)...)
			tr := NewJournalTracker(jsb)
			sameTxs(t, feed(t, tr, ws), l.want)
			if tr.Pending() != 0 {
				t.Errorf("Pending %d", tr.Pending())
			}
		})
	}
}

// TestTrackerFeaturesAfterBlocks: a mount turned on checksums (the tag layout changes) and the
// superblock saying so arrives after the first transaction's descriptor (completion order
// within a flush interval is free): the held descriptor is decoded again under the new layout.
func TestTrackerFeaturesAfterBlocks(t *testing.T) {
	old := newTestJSB(1024, 64, 0)
	old.Sequence = 7
	jsb := *old
	jsb.FeatureIncompat |= ext3fs.JournalIncompatCsumV3
	jsb.ChecksumType = 4
	jsb.Start, jsb.Sequence = 1, 8
	l := newJlog(t, &jsb, 1)
	l.tx(8, []uint64{20, 21, 22}, nil, true, 100)
	l.tx(9, []uint64{23}, nil, true, 100)
	ws := append([]logWrite{l.writes[0], l.writes[1], {pos: 0, data: jsb.Marshal(), tx: -1}}, l.writes[2:]...)
	tr := NewJournalTracker(old)
	var got []Transaction
	for i, w := range ws {
		txs, err := tr.WriteLogBlock(w.pos, w.data, int64(i))
		if err != nil && i > 2 {
			// Before the superblock the descriptor may not decode under the old layout.
			t.Errorf("write %d (log block %d): %v", i, w.pos, err)
		}
		got = append(got, txs...)
	}
	sameTxs(t, got, l.want)
}

// TestTrackerFastCommitAfterBlocks: ext4 mounting with fast_commit sets INCOMPAT_FAST_COMMIT,
// which shortens the ring by the fast-commit area; the superblock saying so may complete after
// the first transaction's blocks (the fastcommit fixtures, permuted). The ring is not new: the
// held blocks stay and the transaction comes out; a block written past the new end (in what is
// now the fast-commit area) is no part of it.
func TestTrackerFastCommitAfterBlocks(t *testing.T) {
	old := newTestJSB(1024, 300, ext3fs.JournalIncompatCsumV3)
	old.ChecksumType, old.Sequence = 4, 7
	jsb := *old
	jsb.FeatureIncompat |= ext3fs.JournalIncompatFastCommit
	jsb.Start, jsb.Sequence = 1, 8
	l := newJlog(t, &jsb, 1)
	l.tx(8, []uint64{20, 21, 22}, nil, true, 100)
	l.tx(9, []uint64{23}, nil, true, 100)
	fcBlock := logWrite{pos: uint64(jsb.LogEnd()) + 1, data: blockData(1024, 1, 1, false), tx: -1}
	ws := append([]logWrite{l.writes[0], l.writes[1], fcBlock, {pos: 0, data: jsb.Marshal(), tx: -1}}, l.writes[2:]...)
	tr := NewJournalTracker(old)
	var got []Transaction
	for i, w := range ws {
		txs, err := tr.WriteLogBlock(w.pos, w.data, int64(i))
		if err != nil {
			t.Errorf("write %d (log block %d): %v", i, w.pos, err)
		}
		got = append(got, txs...)
	}
	sameTxs(t, got, l.want)
	if n := tr.Pending(); n != 0 {
		t.Errorf("%d blocks still held, want 0", n)
	}
	if last, ok := tr.LastCommitted(); !ok || last != 9 {
		t.Errorf("LastCommitted = %d, %v; want 9, true", last, ok)
	}
}
