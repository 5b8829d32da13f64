package resolver

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// fcFixture is a hand-built fast commit: debugfs creates /d/new on an ext4 fast_commit image, and
// the fsync that made it durable is written as the kernel would: its data home, one fast-commit
// block (the new inode and its CREAT_DENTRY), and later the full commit of the same tid.
type fcFixture struct {
	base, after        []byte
	data               []blklog.Record // the file's data, home
	fc, fcTorn         blklog.Record   // the fast commit, and the same one with a bad crc
	journal, ckpt      []blklog.Record // the full commit, and its checkpoint
	removedJournal     []blklog.Record // the full commit had /d/new been removed without an fsync
	removedCheckpoints []blklog.Record
}

func newFCFixture(t *testing.T) *fcFixture {
	ext3fstest.Need(t)
	f := &fcFixture{base: ext3fstest.SeedImageArgs(t, "ext4", "-O", "fast_commit")}
	f.after = ext3fstest.DebugfsChange(t, f.base, "write CONTENT /d/new\n")
	var journal []blklog.Record
	f.data, journal, f.ckpt = journalize(t, f.base, f.after)
	f.journal = journal
	removed := ext3fstest.DebugfsChange(t, f.after, "rm /d/new\n")
	_, f.removedJournal, f.removedCheckpoints = journalize(t, f.base, removed)

	fs, err := ext3fs.Open(bytes.NewReader(f.after))
	if err != nil {
		t.Fatal(err)
	}
	inos := map[string]uint32{}
	_ = fs.Walk(func(p string, ino uint32, _ *ext3fs.Inode) error { inos[p] = ino; return nil })
	newIno, dIno := inos["/d/new"], inos["/d"]
	if newIno == 0 || dIno == 0 {
		t.Fatalf("debugfs made no /d/new: %v", inos)
	}
	raw := ext3fstest.FCInodeRecord(fs, f.after, newIno)
	// The fast commit carries the tid of the transaction running then: the one the full commit
	// closes. (jbd2 headers are big-endian: magic, block type, sequence.)
	tid := binary.BigEndian.Uint32(journal[len(journal)-1].Data[8:])
	var b ext3fstest.FCBuilder
	b.Head(tid)
	b.Inode(newIno, raw)
	b.Dentry(ext3fs.FCTagCreat, dIno, newIno, "new")
	area, _, _, err := ext3fstest.FastCommitArea(fs, f.base)
	if err != nil || len(area) == 0 {
		t.Fatalf("fast-commit area: %v (%d blocks)", err, len(area))
	}
	fcPhys := area[0]
	sector := fcPhys * uint64(fs.BlockSize()) / blklog.SectorSize
	f.fc = blklog.Record{Type: blklog.TypeWrite, Sector: sector, Length: uint32(fs.BlockSize()), Data: b.Block(tid, fs.BlockSize(), false)}
	f.fcTorn = f.fc
	f.fcTorn.Data = b.Block(tid, fs.BlockSize(), true)
	return f
}

// fsyncOrders is every order of the fsync's writes (data and the fast-commit block) the device
// may complete them in, then a flush.
func fsyncOrders(data []blklog.Record, fc blklog.Record, rng *rand.Rand) [][]blklog.Record {
	all := append(append([]blklog.Record(nil), data...), fc)
	var out [][]blklog.Record
	for _, p := range orders(len(all), rng) {
		var l []blklog.Record
		for _, i := range p {
			l = append(l, all[i])
		}
		out = append(out, append(l, blklog.Record{Type: blklog.TypeFlush}))
	}
	return out
}

// TestFastCommitHandBuilt: an fsync durable only through the fast-commit area comes out at once
// (the power may go before the full commit), once even when the full commit and its checkpoint
// follow, in any order of the fsync's writes; a fast commit whose crc does not match (torn) is
// not read; a file fast-committed and removed before the full commit is created and deleted.
func TestFastCommitHandBuilt(t *testing.T) {
	f := newFCFixture(t)
	rng := rand.New(rand.NewSource(3))
	check := func(name string, log []blklog.Record, want []string, wantData bool) {
		t.Helper()
		got := analyzeRecords(t, f.base, log, Options{})
		ns, io, an := meaning(got)
		if len(an) > 0 {
			t.Fatalf("%s: anomalies %q", name, an)
		}
		if !equalStrings(ns, want) {
			t.Fatalf("%s (%d records): namespace ops\n got %q\nwant %q", name, len(log), ns, want)
		}
		if got := io["write /d/new (data)"] > 0; got != wantData {
			t.Fatalf("%s: data attributed to /d/new: %v, want %v (%v)", name, got, wantData, io)
		}
	}
	for i, l := range fsyncOrders(f.data, f.fc, rng) {
		check("power cut after the fast commit", l, []string{"create /d/new"}, true)
		full := append(append(append([]blklog.Record(nil), l...), f.journal...), blklog.Record{Type: blklog.TypeFlush})
		check("full commit after it", full, []string{"create /d/new"}, true)
		check("and its checkpoint", append(full, f.ckpt...), []string{"create /d/new"}, true)
		// The directory block of the full commit confirmed the name: nothing is left in the
		// overlay, nor counted twice (a later removal of the entry must be an event).
		r := replay(t, f.base, append(full, f.ckpt...), Options{}, func(*ops.Op) error { return nil })
		if len(r.ns.fcLinks) != 0 || len(r.ns.linkCnt) != 0 {
			t.Fatalf("after the full commit: overlay %v, link counts %v; want both empty", r.ns.fcLinks, r.ns.linkCnt)
		}
		if i == 0 {
			gone := append(append(append([]blklog.Record(nil), l...), f.removedJournal...), blklog.Record{Type: blklog.TypeFlush})
			check("removed before the full commit", append(gone, f.removedCheckpoints...), []string{"create /d/new", "delete /d/new"}, true)
		}
	}
	for _, l := range fsyncOrders(f.data, f.fcTorn, rng) {
		check("torn fast commit", l, nil, false)
	}
}

// The op comes out at the fast commit, not at the end of the log: its sequence number is the
// fast-commit block's record.
func TestFastCommitTiming(t *testing.T) {
	f := newFCFixture(t)
	log := append(append(append([]blklog.Record(nil), f.data...), f.fc, blklog.Record{Type: blklog.TypeFlush}), f.journal...)
	fcSeq := int64(len(f.data))
	for _, op := range analyzeRecords(t, f.base, log, Options{}) {
		if op.Op == "create" && op.Seq != fcSeq {
			t.Errorf("create %s at record %d, want %d (the fast commit)", op.Path, op.Seq, fcSeq)
		}
	}
}
