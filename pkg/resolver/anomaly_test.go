package resolver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// inodeBlockOf returns the 1 KiB block holding inode ino and the inode's offset in it.
func inodeBlockOf(t *testing.T, img []byte, ino uint32) (uint64, int) {
	t.Helper()
	fs, err := ext3fs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	return fs.InodeLocation(ino)
}

func anomalies(l []ops.Op) []string {
	var out []string
	for _, o := range l {
		if o.Op == ops.Anomaly {
			out = append(out, o.Path+": "+o.Reason)
		}
	}
	return out
}

// TestAnomalies writes structures that cannot be valid and checks that each is reported as an
// anomaly naming the problem, and that analysis goes on.
func TestAnomalies(t *testing.T) {
	ext3fstest.Need(t)
	base := ext3fstest.SeedImage(t, "ext2")
	// The directory /d: its inode (12 in the seed image) and its first block.
	after := ext3fstest.DebugfsChange(t, base, "mkdir /d/probe\n")
	recs := blockWrites(base, after)
	fs, err := ext3fs.Open(bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	var dIno uint32
	err = fs.Walk(func(path string, ino uint32, in *ext3fs.Inode) error {
		if path == "/d" {
			dIno = ino
		}
		return nil
	})
	if err != nil || dIno == 0 {
		t.Fatalf("no /d in the seed image (%v)", err)
	}
	din, err := fs.ReadInode(dIno)
	if err != nil {
		t.Fatal(err)
	}
	dirBlk := uint64(din.Block[0])

	t.Run("directory block that does not chain", func(t *testing.T) {
		bad := make([]byte, 1024)
		copy(bad, base[dirBlk*1024:dirBlk*1024+1024])
		binary.LittleEndian.PutUint16(bad[4:], 3) // rec_len of "." = 3
		l := analyzeRecords(t, base, []blklog.Record{{Type: blklog.TypeWrite, Sector: dirBlk * 2, Length: 1024, Data: bad}, {Type: blklog.TypeFlush}}, Options{})
		an := anomalies(l)
		if len(an) != 1 || !strings.Contains(an[0], "rec_len") || !strings.HasPrefix(an[0], "/d: ") {
			t.Fatalf("anomalies %q, want one about rec_len in /d", an)
		}
		// The block's entries are kept: nothing was deleted.
		for _, o := range l {
			if o.IsNamespace() {
				t.Errorf("unexpected namespace op %+v", o)
			}
		}
	})

	t.Run("inode pointing outside the disk", func(t *testing.T) {
		blk, off := inodeBlockOf(t, base, dIno)
		bad := bytes.Clone(base[blk*1024 : blk*1024+1024])
		binary.LittleEndian.PutUint32(bad[off+0x28+4:], 0x7fffffff) // i_block[1]
		l := analyzeRecords(t, base, []blklog.Record{{Type: blklog.TypeWrite, Sector: blk * 2, Length: 1024, Data: bad}}, Options{})
		an := anomalies(l)
		if len(an) != 1 || !strings.Contains(an[0], "outside the file system") {
			t.Fatalf("anomalies %q, want one about a block outside the file system", an)
		}
	})

	t.Run("inode claiming the inode table", func(t *testing.T) {
		blk, off := inodeBlockOf(t, base, dIno)
		bad := bytes.Clone(base[blk*1024 : blk*1024+1024])
		binary.LittleEndian.PutUint32(bad[off+0x28+4:], uint32(blk))
		l := analyzeRecords(t, base, []blklog.Record{{Type: blklog.TypeWrite, Sector: blk * 2, Length: 1024, Data: bad}}, Options{})
		an := anomalies(l)
		if len(an) != 1 || !strings.Contains(an[0], "inode table") {
			t.Fatalf("anomalies %q, want one about the inode table", an)
		}
	})

	t.Run("block owned by two files", func(t *testing.T) {
		// Point /d's first block pointer at the first data block of another file, /x/y/z.
		var zIno uint32
		_ = fs.Walk(func(path string, ino uint32, in *ext3fs.Inode) error {
			if path == "/x/y/z" {
				zIno = ino
			}
			return nil
		})
		zin, err := fs.ReadInode(zIno)
		if err != nil || zin.Block[0] == 0 {
			t.Fatalf("no /x/y/z data block (%v)", err)
		}
		blk, off := inodeBlockOf(t, base, dIno)
		bad := bytes.Clone(base[blk*1024 : blk*1024+1024])
		binary.LittleEndian.PutUint32(bad[off+0x28+4:], zin.Block[0])
		l := analyzeRecords(t, base, []blklog.Record{{Type: blklog.TypeWrite, Sector: blk * 2, Length: 1024, Data: bad}}, Options{})
		an := anomalies(l)
		if len(an) != 1 || !strings.Contains(an[0], "owned by both") {
			t.Fatalf("anomalies %q, want one about a block owned by both", an)
		}
	})

	t.Run("map block that maps itself", func(t *testing.T) {
		// A free block filled with its own number, then /d's triple-indirect pointer set to it:
		// a loop the log builds (the image's own loops are refused when it is indexed). It
		// used to be claimed at every level, with an anomaly per pointer, until memory ran out.
		free := uint64(2000)
		if o, _ := func() (Owner, error) { x, _, err := Build(fs); return x.Lookup(free), err }(); o.Role != RoleFree {
			t.Fatalf("block %d is not free in the seed image", free)
		}
		loop := make([]byte, 1024)
		for i := 0; i < len(loop); i += 4 {
			binary.LittleEndian.PutUint32(loop[i:], uint32(free))
		}
		blk, off := inodeBlockOf(t, base, dIno)
		bad := bytes.Clone(base[blk*1024 : blk*1024+1024])
		binary.LittleEndian.PutUint32(bad[off+0x28+4*ext3fs.TIndBlock:], uint32(free))
		done := make(chan []ops.Op, 1)
		go func() {
			done <- analyzeRecords(t, base, []blklog.Record{
				{Type: blklog.TypeWrite, Sector: free * 2, Length: 1024, Data: loop},
				{Type: blklog.TypeWrite, Sector: blk * 2, Length: 1024, Data: bad}, {Type: blklog.TypeFlush}}, Options{})
		}()
		select {
		case l := <-done:
			an := anomalies(l)
			if len(an) != 1 || !strings.Contains(an[0], "loop") {
				t.Fatalf("%d anomalies (first %q), want one about a loop", len(an), an[:min(len(an), 1)])
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a self-mapping block is still being followed after 20 s")
		}
	})

	t.Run("garbage everywhere does not crash", func(t *testing.T) {
		// Every changed block of a real change, overwritten with a pattern, then the real change.
		var l []blklog.Record
		for i, r := range recs {
			g := bytes.Repeat([]byte{byte(i), 0xff, 0, 1}, 256)
			l = append(l, blklog.Record{Type: blklog.TypeWrite, Sector: r.Sector, Length: 1024, Data: g})
		}
		l = append(l, recs...)
		analyzeRecords(t, base, l, Options{Metadata: true})
	})
}

// FuzzResolver feeds arbitrary writes to a real image: the resolver must never panic or fail.
func FuzzResolver(f *testing.F) {
	img := fuzzImage(f)
	f.Add(uint16(5), []byte("\x00\x00\x00\x00\x0c\x00\x01\x02."))
	f.Add(uint16(20), bytes.Repeat([]byte{0xff}, 1024))
	f.Add(uint16(60), bytes.Repeat([]byte{1, 0, 0, 0}, 256))
	f.Fuzz(func(t *testing.T, block uint16, data []byte) {
		if len(data) == 0 || len(data) > 8192 {
			return
		}
		n := (len(data) + 511) / 512 * 512
		buf := make([]byte, n)
		copy(buf, data)
		sector := uint64(block%2048) * 2
		recs := []blklog.Record{
			{Type: blklog.TypeWrite, Sector: sector, Length: uint32(n), Data: buf},
			{Type: blklog.TypeRead, Sector: sector, Length: uint32(n)},
			{Type: blklog.TypeFlush},
			{Type: blklog.TypeWrite, Sector: sector + 2, Length: uint32(n), Data: buf},
			{Type: blklog.TypeWriteZeroes, Sector: sector + 1, Length: uint32(n)},
			{Type: blklog.TypeDiscard, Sector: sector, Length: uint32(n)},
		}
		analyzeRecords(t, img, recs, Options{Metadata: true})
	})
}

// fuzzImage is a seed image made with mke2fs; the fuzz target is skipped without the tools.
func fuzzImage(f *testing.F) []byte {
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			f.Skipf("%s not installed", tool)
		}
	}
	return ext3fstest.SeedImage(f, "ext2")
}

// A request the disk could not have served is an anomaly naming the record, not I/O of a file:
// a write whose byte offset overflows used to wrap onto a real file's block, and a read past
// the end was dropped silently. The requests around it are analysed as usual.
func TestOutOfRangeRequests(t *testing.T) {
	ext3fstest.Need(t)
	base := ext3fstest.SeedImage(t, "ext2")
	after := ext3fstest.DebugfsChange(t, base, "write CONTENT /d/new\n")
	recs := blockWrites(base, after)
	wrap := uint64(1)<<55 + recs[0].Sector // x512 wraps to recs[0]'s byte offset
	hostile := []blklog.Record{
		{Type: blklog.TypeWrite, Sector: wrap, Length: 1024, Data: make([]byte, 1024)},
		{Type: blklog.TypeRead, Sector: uint64(len(base)) / 512, Length: 4096},
		{Type: blklog.TypeWrite, Sector: uint64(len(base))/512 - 1, Length: 1024, Data: make([]byte, 1024)},
	}
	all := append(append([]blklog.Record{}, hostile...), recs...)
	all = append(all, blklog.Record{Type: blklog.TypeFlush})
	var got []ops.Op
	replay(t, base, all, Options{}, func(op *ops.Op) error { got = append(got, *op); return nil })
	as := anomalies(got)
	if len(as) != len(hostile) {
		t.Fatalf("anomalies %q, want one per hostile request (%d)", as, len(hostile))
	}
	for i, a := range as {
		if !strings.Contains(a, "record "+string(rune('0'+i))) {
			t.Errorf("anomaly %q does not name record %d", a, i)
		}
	}
	creates := 0
	for _, op := range got {
		if op.Op == ops.Create && op.Path == "/d/new" {
			creates++
		}
		if op.Seq < int64(len(hostile)) && op.Op != ops.Anomaly {
			t.Errorf("hostile record %d reported as %v %s", op.Seq, op.Op, op.Path)
		}
	}
	if creates != 1 {
		t.Errorf("create /d/new reported %d times after the hostile requests, want 1", creates)
	}
}

// One bad directory block in the starting image is an anomaly, not a refusal of the whole
// image: the rest is analysed (analyze refused such an image outright).
func TestBadDirectoryInImage(t *testing.T) {
	ext3fstest.Need(t)
	base := ext3fstest.SeedImage(t, "ext2")
	after := ext3fstest.DebugfsChange(t, base, "mkdir /e/newdir\n")
	recs := append(blockWrites(base, after), blklog.Record{Type: blklog.TypeFlush})
	fs, err := ext3fs.Open(bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	var dBlk uint64
	_ = fs.Walk(func(path string, ino uint32, in *ext3fs.Inode) error {
		if path == "/d" {
			dBlk = uint64(in.Block[0])
		}
		return nil
	})
	if _, _, err := Build(fs); err != nil {
		t.Fatalf("the seed image is already broken: %v", err)
	}
	broken := bytes.Clone(base)
	binary.LittleEndian.PutUint16(broken[dBlk*1024+12+4:], 5) // rec_len of ".." = 5
	bfs, err := ext3fs.Open(bytes.NewReader(broken))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Build(bfs); err == nil {
		t.Fatal("Build accepted the broken directory block")
	}
	var got []ops.Op
	replay(t, broken, recs, Options{}, func(op *ops.Op) error { got = append(got, *op); return nil })
	an := anomalies(got)
	if len(an) != 1 || !strings.Contains(an[0], "in the image") || !strings.Contains(an[0], "rec_len") {
		t.Errorf("anomalies %q, want one naming the bad directory block of the image", an)
	}
	mkdirs := 0
	for _, op := range got {
		if op.Op == ops.Mkdir && op.Path == "/e/newdir" {
			mkdirs++
		}
	}
	if mkdirs != 1 {
		t.Errorf("mkdir /e/newdir reported %d times, want once", mkdirs)
	}
}

// Writes to blocks nobody owns are held for a claim only up to a bound: past it they are
// reported as unowned at once, in log order, and memory stays bounded however long a guest
// fills its free space.
func TestPendingWritesBounded(t *testing.T) {
	ext3fstest.Need(t)
	base := ext3fstest.SeedImage(t, "ext2")
	r, err := New(bytes.NewReader(base), int64(len(base)), Options{}, func(*ops.Op) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	var got []ops.Op
	r.output.emit = func(op *ops.Op) error { got = append(got, *op); return nil }
	r.held.pendCap = 4
	data := bytes.Repeat([]byte{0xA5}, 1024)
	for i := 0; i < 10; i++ {
		rec := blklog.Record{Index: int64(i), Type: blklog.TypeWrite, Sector: uint64(1900+i) * 2, Length: 1024, Data: data}
		if err := r.Record(&rec); err != nil {
			t.Fatal(err)
		}
		if r.held.npend > 4 {
			t.Fatalf("after record %d, %d writes held (cap 4)", i, r.held.npend)
		}
	}
	early := len(got)
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	if early == 0 {
		t.Error("nothing reported before the end: the cap did not release the held writes")
	}
	var bytes int64
	last := int64(-1)
	for _, op := range got {
		if op.Op != ops.Write || op.Kind != ops.KindUnowned {
			t.Errorf("unexpected %v %v %s", op.Op, op.Kind, op.Path)
		}
		if op.Seq < last {
			t.Errorf("seq %d after seq %d: out of log order", op.Seq, last)
		}
		last = op.Seq
		bytes += op.Bytes
	}
	if bytes != 10*1024 {
		t.Errorf("%d bytes reported as unowned, want the 10 writes' %d", bytes, 10*1024)
	}
}

// What journal recovery of the starting image could not do (Options.RecoveryProblem) is an
// anomaly before the first request: the op stream says the starting state may be incomplete.
func TestRecoveryProblemIsAnomaly(t *testing.T) {
	img := readZstd(t, "../../fixtures/real/basic-ext3-4k/image.raw.zst")
	var got []string
	r := replay(t, img, nil, Options{RecoveryProblem: errors.New("fast commit of tid 5: not replayed")}, func(op *ops.Op) error {
		if op.Op == ops.Anomaly {
			got = append(got, op.Reason)
		}
		return nil
	})
	if len(got) != 1 || !strings.Contains(got[0], "journal recovery of the image: fast commit of tid 5") || r.Stats().Anomalies != 1 {
		t.Errorf("anomalies %q (%d counted), want the recovery problem once", got, r.Stats().Anomalies)
	}
}
