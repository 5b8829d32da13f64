package resolver

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// fixtureJournalRun is what following a real guest's journal produced.
type fixtureJournalRun struct {
	txs        []Transaction
	blocks     int // logged blocks returned
	checkpoint int // home writes equal to the last committed copy
	stale      []string
	pending    int
	commits    map[uint32]bool // tids whose commit block the guest wrote into the log
}

// fixtureJournal is a scenario's starting image and where its journal lives.
type fixtureJournal struct {
	disk    []byte            // starting image, never modified
	logical map[uint64]uint64 // fs block -> journal block
	jsb     *ext3fs.JournalSuperblock
	bs      int
}

// loadFixtureJournal reads a scenario's image; nil if the file system has no journal.
func loadFixtureJournal(t *testing.T, dir string) *fixtureJournal {
	t.Helper()
	zimg, err := os.ReadFile(filepath.Join(dir, "image.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := dec.DecodeAll(zimg, nil)
	dec.Close()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext3fs.OpenWith(bytes.NewReader(disk), openOptions)
	if err != nil {
		t.Fatal(err)
	}
	if !fsys.SB.HasJournal() {
		return nil
	}
	jin, err := fsys.ReadInode(fsys.SB.JournalInum)
	if err != nil {
		t.Fatal(err)
	}
	fj := &fixtureJournal{disk: disk, logical: map[uint64]uint64{}, bs: fsys.BlockSize()}
	var first uint64
	err = fsys.WalkBlocks(jin, func(r ext3fs.BlockRef) error {
		if r.Kind == ext3fs.BlockData {
			fj.logical[r.Phys] = r.Logical
			if r.Logical == 0 {
				first = r.Phys
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fj.jsb, err = ext3fs.ParseJournalSuperblock(disk[int(first)*fj.bs : int(first+1)*fj.bs])
	if err != nil {
		t.Fatal(err)
	}
	return fj
}

// followFixtureJournal replays a captured log over the starting image (an overlay of written
// blocks), feeds every write that lands in the journal to a JournalTracker, and compares each
// later write of a journaled block at its home location (jbd2's checkpoint) with the last
// committed copy.
func followFixtureJournal(t *testing.T, fj *fixtureJournal, recs []blklog.Record) *fixtureJournalRun {
	t.Helper()
	bs := fj.bs
	tr := NewJournalTracker(fj.jsb)
	written := map[uint64][]byte{}
	block := func(b uint64) []byte {
		if w, ok := written[b]; ok {
			return w
		}
		w := bytes.Clone(fj.disk[int(b)*bs : int(b+1)*bs])
		written[b] = w
		return w
	}
	run := &fixtureJournalRun{commits: map[uint32]bool{}}
	committed := map[uint64][]byte{} // fs block -> last committed copy not yet seen at home
	for _, rec := range recs {
		if rec.Type != blklog.TypeWrite && rec.Type != blklog.TypeWriteZeroes && rec.Type != blklog.TypeDiscard {
			continue
		}
		start := int64(rec.Sector) * blklog.SectorSize
		end := start + int64(rec.Length)
		if end > int64(len(fj.disk)) {
			t.Fatalf("record %d writes past the disk", rec.Index)
		}
		if rec.Type == blklog.TypeWrite && rec.Flags&blklog.FlagNoPayload != 0 {
			t.Skip("log without write payloads")
		}
		for b := uint64(start) / uint64(bs); b*uint64(bs) < uint64(end); b++ {
			content := block(b)
			bstart := int64(b) * int64(bs)
			lo, hi := max(start, bstart), min(end, bstart+int64(bs))
			if rec.Type == blklog.TypeWrite {
				copy(content[lo-bstart:hi-bstart], rec.Data[lo-start:hi-start])
			} else {
				clear(content[lo-bstart : hi-bstart])
			}
			if lb, ok := fj.logical[b]; ok {
				// Found independently of the tracker: a complete journal block in the ring that
				// carries a commit header. The superblock and fast-commit area are not the ring.
				if h, ok := ext3fs.ParseJournalHeader(content); ok && h.BlockType == ext3fs.JournalCommitBlock &&
					lb >= uint64(fj.jsb.First) && lb < uint64(fj.jsb.LogEnd()) && hi-lo == int64(bs) {
					run.commits[h.Sequence] = true
				}
				txs, err := tr.WriteLogBlock(lb, content, rec.Index)
				if err != nil {
					t.Errorf("record %d: %v", rec.Index, err)
				}
				for _, tx := range txs {
					run.txs = append(run.txs, tx)
					run.blocks += len(tx.Blocks)
					for _, r := range tx.Revoked {
						delete(committed, r)
					}
					for _, tb := range tx.Blocks {
						committed[tb.FSBlock] = tb.Data
					}
				}
				continue
			}
			if want, ok := committed[b]; ok {
				if bytes.Equal(want, content) {
					run.checkpoint++
				} else {
					run.stale = append(run.stale, fmt.Sprintf("block %d at record %d", b, rec.Index))
				}
				delete(committed, b)
			}
		}
	}
	run.pending = tr.Pending()
	return run
}

// TestTrackerRealFixtures follows the journals of the captured ext3 scenarios: transactions must
// come back with consecutive tids and no undecodable block, and every checkpoint write of a
// journaled block must carry exactly the content its last transaction committed.
func TestTrackerRealFixtures(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(moduleRoot(t), "fixtures", "real", "*"))
	if len(dirs) == 0 {
		t.Skip("no fixtures")
	}
	for _, dir := range dirs {
		if needs, err := scenario.Needs(dir); err != nil {
			t.Fatal(err)
		} else if needs != "" {
			t.Logf("%s skipped: NEEDS=%s in scenario.env", filepath.Base(dir), needs)
			continue
		}
		if scenario.Partitioned(dir) {
			continue // a partitioned disk: pkg/analysis routes its partitions
		}
		// Both captures of a run: the NBD server's log and dm-log-writes inside the guest, which
		// see the same writes in different completion orders.
		for _, name := range []string{"io.log.zst", "writes.lwlog.zst"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				continue
			}
			t.Run(filepath.Base(dir)+"/"+strings.SplitN(name, ".", 2)[0], func(t *testing.T) {
				testTrackerFixture(t, dir, name)
			})
		}
	}
}

// testTrackerFixture follows one captured log of scenario dir; see TestTrackerRealFixtures.
func testTrackerFixture(t *testing.T, dir, logName string) {
	fj := loadFixtureJournal(t, dir)
	if fj == nil {
		t.Skip("no journal")
	}
	recs := readLog(t, filepath.Join(dir, logName))
	run := followFixtureJournal(t, fj, recs)
	env, err := scenario.Env(dir)
	if err != nil {
		t.Fatal(err)
	}
	// U-Boot's ext4 driver logs each block's previous content (its journal is an undo log),
	// commits, then writes home, and stamps no commit time: its transactions are real jbd2 ones,
	// but the checkpoint and time properties of a Linux journal do not hold.
	linux := env["WRITER"] != "uboot"
	wraps := 0
	for _, tx := range run.txs {
		if tx.LogEnd < tx.LogStart {
			wraps++
		}
	}
	t.Logf("%d transactions (%d wrap the %d-block ring), %d logged blocks, %d checkpoint writes match, %d differ, %d blocks pending",
		len(run.txs), wraps, fj.jsb.MaxLen, run.blocks, run.checkpoint, len(run.stale), run.pending)
	if strings.Contains(dir, "journal-wrap") && wraps == 0 {
		t.Error("no transaction wraps the ring in the journal-wrap scenario")
	}
	if len(run.txs) == 0 {
		t.Fatal("no transaction found in the journal")
	}
	// Every transaction whose commit block the guest wrote comes back exactly once (all
	// its blocks are written before its commit is issued, so none can be missing).
	returned := map[uint32]bool{}
	for _, tx := range run.txs {
		if returned[tx.Seq] {
			t.Errorf("tid %d returned twice", tx.Seq)
		}
		returned[tx.Seq] = true
		if !run.commits[tx.Seq] {
			t.Errorf("tid %d returned without its commit block in the log", tx.Seq)
		}
	}
	var missing []uint32
	for seq := range run.commits {
		if !returned[seq] {
			missing = append(missing, seq)
		}
	}
	if len(missing) != 0 {
		slices.Sort(missing)
		t.Errorf("%d committed transactions never returned: tids %v", len(missing), missing)
	}
	for i := 1; i < len(run.txs); i++ {
		a, b := run.txs[i-1], run.txs[i]
		if b.Seq != a.Seq+1 {
			t.Errorf("tid %d follows %d", b.Seq, a.Seq)
		}
		// The kernel stamps commits with the wall clock: never backwards, never 0.
		if linux && (b.CommitSec == 0 || b.CommitSec*1e9+uint64(b.CommitNsec) < a.CommitSec*1e9+uint64(a.CommitNsec)) {
			t.Errorf("tid %d committed at %d.%09d, tid %d at %d.%09d", a.Seq, a.CommitSec, a.CommitNsec,
				b.Seq, b.CommitSec, b.CommitNsec)
		}
	}
	// A run cut by a power cut right after its fsyncs (CRASH=1) may end before any checkpoint.
	if linux && (len(run.stale) != 0 || (run.checkpoint == 0 && env["CRASH"] != "1")) {
		t.Errorf("checkpoint writes: %d match the committed copy, %d differ (%v)", run.checkpoint,
			len(run.stale), run.stale)
	}
	// The device may complete the writes between two flushes in any order: the same
	// transactions must come back.
	for seed := int64(1); seed <= 3; seed++ {
		shRecs, n := shuffleFlushIntervals(recs, rand.New(rand.NewSource(seed)))
		if seed == 1 {
			t.Logf("%d of %d records in shuffled flush intervals", n, len(recs))
		}
		sh := followFixtureJournal(t, fj, shRecs)
		if len(sh.txs) != len(run.txs) {
			t.Fatalf("seed %d: %d transactions, in order %d", seed, len(sh.txs), len(run.txs))
		}
		for i := range run.txs {
			a, b := run.txs[i], sh.txs[i]
			if a.Seq != b.Seq || len(a.Blocks) != len(b.Blocks) {
				t.Fatalf("seed %d: tx %d is tid %d with %d blocks, in order tid %d with %d", seed, i,
					b.Seq, len(b.Blocks), a.Seq, len(a.Blocks))
			}
			for j := range a.Blocks {
				if a.Blocks[j].FSBlock != b.Blocks[j].FSBlock || !bytes.Equal(a.Blocks[j].Data, b.Blocks[j].Data) {
					t.Fatalf("seed %d: tid %d block %d differs", seed, a.Seq, j)
				}
			}
		}
	}
}

// moduleRoot is the directory holding go.mod, above the test's working directory.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Skip("go.mod not found")
		}
		dir = up
	}
}

// shuffleFlushIntervals permutes the records between consecutive flushes, as a device may complete
// them in any order (a FUA write included: FUA orders nothing). Intervals where two writes overlap
// are left alone: their order decides the content.
func shuffleFlushIntervals(recs []blklog.Record, rng *rand.Rand) ([]blklog.Record, int) {
	out := append([]blklog.Record(nil), recs...)
	i, shuffled := 0, 0
	for i < len(out) {
		j := i
		for j < len(out) && out[j].Type != blklog.TypeFlush {
			j++
		}
		if !overlapping(out[i:j]) {
			shuffled += j - i
			rng.Shuffle(j-i, func(a, b int) { out[i+a], out[i+b] = out[i+b], out[i+a] })
		}
		i = j + 1
	}
	return out, shuffled
}

func overlapping(recs []blklog.Record) bool {
	type span struct{ a, b uint64 }
	var spans []span
	for _, r := range recs {
		if r.Type == blklog.TypeRead || r.Type == blklog.TypeMark {
			continue
		}
		s := span{r.Sector, r.Sector + uint64(r.Length)/blklog.SectorSize}
		for _, o := range spans {
			if s.a < o.b && o.a < s.b {
				return true
			}
		}
		spans = append(spans, s)
	}
	return false
}

// Fast commits are followed: on the fast_commit fixtures every complete fast commit is applied
// (counted, no anomaly), on a file system without fast_commit nothing is counted, however long
// its journal.
func TestFastCommitsCounted(t *testing.T) {
	for dir, want := range map[string]bool{"fastcommit-ext4-4k": true, "fastcommit-crash-ext4-4k": true, "journal-wrap-ext3-4k": false, "basic-ext4-4k": false} {
		dir = filepath.Join("../../fixtures/real", dir)
		if _, err := os.Stat(dir); err != nil {
			t.Skipf("fixture %s missing", dir)
		}
		img := readZstd(t, filepath.Join(dir, "image.raw.zst"))
		anomalies := 0
		r := replay(t, img, readLog(t, filepath.Join(dir, "io.log.zst")), Options{}, func(op *ops.Op) error {
			if op.Op == ops.Anomaly {
				anomalies++
			}
			return nil
		})
		st := r.Stats()
		if got := st.FastCommitBlocks > 0 && st.FastCommits > 0; got != want {
			t.Errorf("%s: %d fast commits applied from %d blocks, want some: %v", filepath.Base(dir), st.FastCommits, st.FastCommitBlocks, want)
		}
		if anomalies != 0 {
			t.Errorf("%s: %d anomalies, want none", filepath.Base(dir), anomalies)
		}
	}
}
