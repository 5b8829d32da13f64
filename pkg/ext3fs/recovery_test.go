package ext3fs_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// Hand-made journals replayed by Recover and by e2fsck (e2fsck -y -E journal_only on a copy: the
// journal replay and e2fsck's superblock edits, nothing of the check that follows); the two images
// must be equal byte for byte but for the superblock fields e2fsck writes for its own bookkeeping:
// s_wtime (0x30), s_kbytes_written (0x178) and, with metadata_csum, s_checksum (0x3FC), which covers
// them (ours is checked to be valid instead). The blocks Recover changes must also equal what a
// full `e2fsck -fy` leaves in them (the test writes only file data blocks, which the check leaves).

// jtxn is one transaction to log.
type jtxn struct {
	writes    []jwrite
	revokes   []uint64
	badCommit bool // corrupt the commit block's checksum
}

type jwrite struct {
	block uint64
	data  []byte
}

// jfeatures picks a journal format.
type jfeatures struct {
	name            string
	incompat        uint32
	compat          uint32
	metadataCsumImg bool // ext4 image with metadata_csum
}

var journalFormats = []jfeatures{
	{name: "plain", incompat: ext3fs.JournalIncompatRevoke},
	{name: "v1-checksum", incompat: ext3fs.JournalIncompatRevoke, compat: ext3fs.JournalCompatChecksum},
	{name: "csum2", incompat: ext3fs.JournalIncompatRevoke | ext3fs.JournalIncompatCsumV2},
	{name: "csum3-64bit", incompat: ext3fs.JournalIncompatRevoke | ext3fs.JournalIncompatCsumV3 | ext3fs.JournalIncompat64Bit,
		metadataCsumImg: true},
}

// journalImage is a seed image with a journal, its journal block map and some file data blocks.
type journalImage struct {
	img   []byte
	bs    int
	phys  []uint64
	jsb   *ext3fs.JournalSuperblock
	data  []uint64 // data blocks of regular files, safe to overwrite
	jsbAt uint64
}

func newJournalImage(t testing.TB, f jfeatures) *journalImage {
	t.Helper()
	var img []byte
	if f.metadataCsumImg {
		img = ext3fstest.SeedImageArgs(t, "ext4", "-O", "metadata_csum,64bit")
	} else {
		img = ext3fstest.SeedImageArgs(t, "ext3")
	}
	fs, err := ext3fs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	ji := &journalImage{img: img, bs: fs.BlockSize()}
	jin, err := fs.ReadInode(fs.SB.JournalInum)
	if err != nil {
		t.Fatal(err)
	}
	err = fs.WalkBlocks(jin, func(br ext3fs.BlockRef) error {
		if br.Kind == ext3fs.BlockData {
			for uint64(len(ji.phys)) <= br.Logical {
				ji.phys = append(ji.phys, 0)
			}
			ji.phys[br.Logical] = br.Phys
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ji.jsbAt = ji.phys[0]
	ji.jsb, err = ext3fs.ParseJournalSuperblock(img[int(ji.jsbAt)*ji.bs:])
	if err != nil {
		t.Fatal(err)
	}
	ji.jsb.FeatureIncompat = f.incompat
	ji.jsb.FeatureCompat = f.compat
	if ji.jsb.HasCsumV2V3() {
		ji.jsb.ChecksumType = 4 // crc32c, which e2fsck requires of CSUM_V2/V3
	}
	err = fs.Walk(func(path string, ino uint32, in *ext3fs.Inode) error {
		if in.Type() != ext3fs.TypeRegular {
			return nil
		}
		return fs.WalkBlocks(in, func(br ext3fs.BlockRef) error {
			if br.Kind == ext3fs.BlockData {
				ji.data = append(ji.data, br.Phys)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ji.data) < 4 {
		t.Fatalf("seed image has %d file data blocks, want 4", len(ji.data))
	}
	return ji
}

// content is a recognisable block.
func (ji *journalImage) content(tag string) []byte {
	return bytes.Repeat([]byte(tag+" "), ji.bs/(len(tag)+1)+1)[:ji.bs]
}

// log writes txns into the journal from log block start (wrapping at the end of the log), tids
// from seq, sets s_start/s_sequence and the file system's needs_recovery.
func (ji *journalImage) log(t testing.TB, start, seq uint32, txns []jtxn) {
	t.Helper()
	jsb := ji.jsb
	jsb.Start, jsb.Sequence = start, seq
	pos := uint64(start)
	put := func(b []byte) {
		copy(ji.img[int(ji.phys[pos])*ji.bs:], b)
		pos = jsb.WrapLogBlock(pos + 1)
	}
	for i, tx := range txns {
		tid := seq + uint32(i)
		sum := ext3fs.JournalV1ChecksumInit
		if len(tx.revokes) > 0 {
			rb, err := ext3fs.BuildRevoke(jsb, tid, tx.revokes)
			if err != nil {
				t.Fatal(err)
			}
			put(rb)
		}
		if len(tx.writes) > 0 {
			var tags []ext3fs.JournalTag
			var logged [][]byte
			for _, w := range tx.writes {
				l, esc := ext3fs.EscapeJournalBlock(w.data)
				tg := ext3fs.JournalTag{FSBlock: w.block, Checksum: ext3fs.JournalTagChecksum(jsb, tid, l)}
				if esc {
					tg.Flags |= ext3fs.JournalFlagEscape
				}
				tags, logged = append(tags, tg), append(logged, l)
			}
			d, err := ext3fs.BuildDescriptor(jsb, tid, tags)
			if err != nil {
				t.Fatal(err)
			}
			put(d)
			sum = ext3fs.JournalV1Checksum(sum, d)
			for _, l := range logged {
				put(l)
				sum = ext3fs.JournalV1Checksum(sum, l)
			}
		}
		c := ext3fs.BuildCommit(jsb, tid, 1700000000+uint64(i), 0)
		if jsb.FeatureCompat&ext3fs.JournalCompatChecksum != 0 {
			c[0x0C], c[0x0D] = 1, 4
			binary.BigEndian.PutUint32(c[0x10:], sum)
		}
		if tx.badCommit {
			c[0x10] ^= 0xFF
		}
		put(c)
	}
	// The block after the last commit must not look like a continuation.
	clear(ji.img[int(ji.phys[pos])*ji.bs : int(ji.phys[pos]+1)*ji.bs])
	copy(ji.img[int(ji.jsbAt)*ji.bs:], jsb.Marshal()[:ext3fs.JournalSuperblockSize])
	sb := ji.img[ext3fs.SuperblockOffset : ext3fs.SuperblockOffset+ext3fs.SuperblockSize]
	binary.LittleEndian.PutUint32(sb[0x60:], binary.LittleEndian.Uint32(sb[0x60:])|ext3fs.IncompatRecover)
	if binary.LittleEndian.Uint32(sb[0x64:])&ext3fs.RoCompatMetadataCsum != 0 {
		binary.LittleEndian.PutUint32(sb[0x3FC:], ext3fs.Crc32c(^uint32(0), sb[:0x3FC]))
	}
}

func (ji *journalImage) block(img []byte, n uint64) []byte {
	return img[int(n)*ji.bs : int(n+1)*ji.bs]
}

// recovered returns the whole view.
func recovered(t *testing.T, rc *ext3fs.Recovery, size int) []byte {
	t.Helper()
	out := make([]byte, size)
	if n, err := rc.ReadAt(out, 0); err != nil || n != size {
		t.Fatalf("reading the view: %d bytes, %v", n, err)
	}
	return out
}

// e2fsck runs e2fsck with args on a copy of img and returns the result.
func e2fsck(t *testing.T, img []byte, args ...string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("e2fsck", append(args, p)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() >= 8) {
		t.Fatalf("e2fsck %v: %v\n%s", args, err, out)
	}
	t.Logf("e2fsck %v:\n%s", args, out)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sbIgnored are the superblock bytes (offsets in the superblock) e2fsck writes for its own reasons.
var sbIgnored = [][2]int{{0x30, 0x34}, {0x178, 0x180}, {0x3FC, 0x400}}

func compareWithE2fsck(t *testing.T, ji *journalImage, ours []byte) {
	t.Helper()
	theirs := e2fsck(t, ji.img, "-y", "-E", "journal_only")
	a, b := append([]byte(nil), ours...), append([]byte(nil), theirs...)
	for _, r := range sbIgnored {
		clear(a[ext3fs.SuperblockOffset+r[0] : ext3fs.SuperblockOffset+r[1]])
		clear(b[ext3fs.SuperblockOffset+r[0] : ext3fs.SuperblockOffset+r[1]])
	}
	if !bytes.Equal(a, b) {
		n := 0
		for i := range a {
			if a[i] != b[i] && n < 20 {
				t.Errorf("byte %d (block %d +%d): ours %#02x, e2fsck %#02x", i, i/ji.bs, i%ji.bs, a[i], b[i])
				n++
			}
		}
		t.Fatalf("the recovered view differs from e2fsck -E journal_only")
	}
	sb := ours[ext3fs.SuperblockOffset : ext3fs.SuperblockOffset+ext3fs.SuperblockSize]
	if binary.LittleEndian.Uint32(sb[0x64:])&ext3fs.RoCompatMetadataCsum != 0 {
		c, err := ext3fs.SuperblockChecksum(sb)
		if err != nil || !c.OK() {
			t.Errorf("recovered superblock checksum: %v %v", c, err)
		}
	}
	full := e2fsck(t, ji.img, "-fy")
	fs, err := ext3fs.Open(bytes.NewReader(ours))
	if err != nil {
		t.Fatalf("the recovered view does not open: %v", err)
	}
	if fs.SB.NeedsRecovery() {
		t.Errorf("the recovered view still needs recovery")
	}
	for _, n := range ji.data {
		if !bytes.Equal(ji.block(ours, n), ji.block(full, n)) {
			t.Errorf("file data block %d: ours differs from e2fsck -fy", n)
		}
	}
}

func TestRecoverAgainstE2fsck(t *testing.T) {
	ext3fstest.Need(t)
	magic := func(ji *journalImage, tag string) []byte {
		b := ji.content(tag)
		binary.BigEndian.PutUint32(b, ext3fs.JournalMagic)
		return b
	}
	type want struct {
		txns, replayed, revokeHits int
		failed                     bool
		blocks                     map[int]string // index in ji.data -> content tag ("" = untouched)
	}
	cases := []struct {
		name  string
		start func(ji *journalImage) uint32
		txns  func(ji *journalImage) []jtxn
		want  want
	}{
		{
			name: "revoke",
			txns: func(ji *journalImage) []jtxn {
				d := ji.data
				return []jtxn{
					{writes: []jwrite{{d[0], ji.content("t1a")}, {d[1], ji.content("t1b")}}},
					{revokes: []uint64{d[1]}, writes: []jwrite{{d[2], ji.content("t2c")}}},
					{writes: []jwrite{{d[0], ji.content("t3a")}}},
				}
			},
			want: want{txns: 3, replayed: 3, revokeHits: 1, blocks: map[int]string{0: "t3a", 1: "", 2: "t2c"}},
		},
		{
			name: "revoke-then-rewrite",
			txns: func(ji *journalImage) []jtxn {
				d := ji.data
				return []jtxn{
					{revokes: []uint64{d[0]}, writes: []jwrite{{d[1], ji.content("t1b")}}},
					{writes: []jwrite{{d[0], ji.content("t2a")}}}, // after the revoke: replayed
				}
			},
			want: want{txns: 2, replayed: 2, blocks: map[int]string{0: "t2a", 1: "t1b"}},
		},
		{
			name: "bad-commit-ends-replay",
			txns: func(ji *journalImage) []jtxn {
				d := ji.data
				return []jtxn{
					{writes: []jwrite{{d[0], ji.content("t1a")}}},
					{writes: []jwrite{{d[1], ji.content("t2b")}}, badCommit: true},
					{writes: []jwrite{{d[2], ji.content("t3c")}}},
				}
			},
			want: want{txns: 1, replayed: 1, failed: true, blocks: map[int]string{0: "t1a", 1: "", 2: ""}},
		},
		{
			name:  "wrapped",
			start: func(ji *journalImage) uint32 { return ji.jsb.LogEnd() - 3 }, // the first transaction wraps
			txns: func(ji *journalImage) []jtxn {
				d := ji.data
				return []jtxn{
					{writes: []jwrite{{d[0], ji.content("w1a")}, {d[1], ji.content("w1b")}, {d[2], ji.content("w1c")}}},
					{writes: []jwrite{{d[3], ji.content("w2d")}}},
				}
			},
			want: want{txns: 2, replayed: 4, blocks: map[int]string{0: "w1a", 1: "w1b", 2: "w1c", 3: "w2d"}},
		},
		{
			name: "escaped",
			txns: func(ji *journalImage) []jtxn {
				d := ji.data
				return []jtxn{{writes: []jwrite{{d[0], magic(ji, "esc")}, {d[1], ji.content("plain")}}}}
			},
			want: want{txns: 1, replayed: 2, blocks: map[int]string{0: "magic:esc", 1: "plain"}},
		},
	}
	for _, f := range journalFormats {
		for _, c := range cases {
			if c.name == "bad-commit-ends-replay" && f.compat == 0 && f.incompat&(ext3fs.JournalIncompatCsumV2|ext3fs.JournalIncompatCsumV3) == 0 {
				continue // no commit checksum to corrupt
			}
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				ji := newJournalImage(t, f)
				orig := append([]byte(nil), ji.img...)
				start := ji.jsb.First + 5
				if c.start != nil {
					start = c.start(ji)
				}
				ji.log(t, start, 40, c.txns(ji))
				logged := append([]byte(nil), ji.img...)
				rc, err := ext3fs.Recover(bytes.NewReader(ji.img))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(ji.img, logged) {
					t.Fatal("Recover changed the image")
				}
				t.Log(rc.Summary())
				if !rc.Needed || rc.Transactions != c.want.txns || rc.BlocksReplayed != c.want.replayed ||
					rc.RevokeHits != c.want.revokeHits || rc.HasFailedCommit != c.want.failed || rc.Err != nil {
					t.Errorf("got %+v, want %+v", rc, c.want)
				}
				if rc.FirstSequence != 40 || rc.LastSequence != 40+uint32(c.want.txns)-1 {
					t.Errorf("tids %d-%d, want 40-%d", rc.FirstSequence, rc.LastSequence, 40+c.want.txns-1)
				}
				if c.want.failed && rc.FailedCommit != 41 {
					t.Errorf("failed commit %d, want 41", rc.FailedCommit)
				}
				ours := recovered(t, rc, len(ji.img))
				for i, tag := range c.want.blocks {
					exp := ji.block(orig, ji.data[i])
					switch {
					case len(tag) > 6 && tag[:6] == "magic:":
						exp = magic(ji, tag[6:])
					case tag != "":
						exp = ji.content(tag)
					}
					if !bytes.Equal(ji.block(ours, ji.data[i]), exp) {
						t.Errorf("block %d (data %d): not %q after recovery", ji.data[i], i, tag)
					}
				}
				compareWithE2fsck(t, ji, ours)
			})
		}
	}
}

// A clean image is its own view.
func TestRecoverNotNeeded(t *testing.T) {
	ext3fstest.Need(t)
	img := ext3fstest.SeedImage(t, "ext3")
	rc, err := ext3fs.Recover(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Needed || len(rc.Blocks) != 0 || !bytes.Equal(recovered(t, rc, len(img)), img) {
		t.Fatalf("clean image: %+v", rc)
	}
}

// FuzzRecover replays fuzzed journals: the input replaces the first blocks of the journal of a
// seed image (its superblock included) marked needs_recovery. Recover must not panic nor write to
// the image, must end (a log chaining one tid around the ring is cut), and a view it returns reads
// the whole image.
func FuzzRecover(f *testing.F) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		f.Skip("mke2fs not installed")
	}
	var base *journalImage
	for _, fm := range journalFormats {
		ji := newJournalImage(f, fm)
		d := ji.data
		ji.log(f, ji.jsb.First, 7, []jtxn{
			{writes: []jwrite{{d[0], ji.content("a")}, {d[1], ji.content("b")}}},
			{revokes: []uint64{d[0]}, writes: []jwrite{{d[2], ji.content("c")}}},
		})
		var seed []byte
		for i := 0; i < 8; i++ {
			seed = append(seed, ji.block(ji.img, ji.phys[i])...)
		}
		f.Add(seed)
		if base == nil {
			base = ji
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		img := append([]byte(nil), base.img...)
		for i := 0; len(in) > 0 && i < len(base.phys); i++ {
			n := copy(img[int(base.phys[i])*base.bs:int(base.phys[i]+1)*base.bs], in)
			in = in[n:]
		}
		before := append([]byte(nil), img...)
		rc, err := ext3fs.Recover(bytes.NewReader(img))
		if !bytes.Equal(img, before) {
			t.Fatal("Recover wrote to the image")
		}
		if err != nil {
			return
		}
		out := make([]byte, len(img))
		if n, err := rc.ReadAt(out, 0); n != len(img) || err != nil {
			t.Fatalf("view: %d bytes, %v", n, err)
		}
		if rc.Needed && out[ext3fs.SuperblockOffset+0x60]&ext3fs.IncompatRecover != 0 {
			t.Fatal("the view still says needs_recovery")
		}
	})
}

// TestRecoverPowerCutCaptures: the final disk of every committed power-cut capture whose journal
// e2fsprogs can replay (no fast_commit) is recovered exactly as debugfs journal_run and (without
// orphans) e2fsck -y -E journal_only recover a copy: the whole image equal but for the superblock
// fields e2fsck writes for itself (sbIgnored).
// On metadata_csum images every checksum of the recovered view verifies.
func TestRecoverPowerCutCaptures(t *testing.T) {
	ext3fstest.Need(t)
	if testing.Short() {
		t.Skip("replays the power-cut captures")
	}
	dirs, _ := filepath.Glob("../../fixtures/real/*")
	n := 0
	for _, dir := range dirs {
		env, err := scenario.Env(dir)
		if err != nil {
			t.Fatal(err)
		}
		if env["CRASH"] != "1" || strings.Contains(env["MKFS_OPTS"], "fast_commit") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "writes.lwlog.zst")); err != nil {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			final, err := os.ReadFile(replayCapture(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := ext3fs.Recover(bytes.NewReader(final))
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rc.Summary())
			if !rc.Needed || rc.Err != nil || rc.HasFailedCommit {
				t.Fatalf("recovery: %+v", rc)
			}
			ours := recovered(t, rc, len(final))
			fsys, err := ext3fs.Open(rc)
			if err != nil {
				t.Fatal(err)
			}
			// debugfs journal_run is the same recovery.c and superblock edits; e2fsck -E journal_only
			// also frees the orphans left (as the kernel's mount does), so it is compared only
			// when there are none.
			refs := map[string][]byte{"debugfs journal_run": debugfsJournalRun(t, final)}
			if fsys.SB.LastOrphan == 0 {
				refs["e2fsck -E journal_only"] = e2fsck(t, final, "-y", "-E", "journal_only")
			}
			for _, r := range sbIgnored {
				clear(ours[ext3fs.SuperblockOffset+r[0] : ext3fs.SuperblockOffset+r[1]])
			}
			for name, theirs := range refs {
				for _, r := range sbIgnored {
					clear(theirs[ext3fs.SuperblockOffset+r[0] : ext3fs.SuperblockOffset+r[1]])
				}
				if !bytes.Equal(ours, theirs) {
					for i := range ours {
						if ours[i] != theirs[i] {
							t.Fatalf("%s: first difference at byte %d: ours %#02x, theirs %#02x", name, i, ours[i], theirs[i])
						}
					}
				}
			}
			if fsys.SB.HasMetadataCsum() {
				if err := fsys.Checksums(func(c ext3fs.Checksum) error {
					if !c.OK() {
						t.Errorf("recovered view: %v", c.Err())
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if n < 3 {
		t.Fatalf("only %d power-cut captures", n)
	}
}

// debugfsJournalRun replays the journal of a copy of img with debugfs -w -R journal_run.
func debugfsJournalRun(t *testing.T, img []byte) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("debugfs", "-w", "-R", "journal_run", p).CombinedOutput(); err != nil {
		t.Fatalf("debugfs journal_run: %v\n%s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// allZeros is an image that says every range of it reads as zeros (as a diskimage.Image says of
// its holes), true or not: what Recovery.Zeros adds to it is under test.
type allZeros struct{ *bytes.Reader }

func (allZeros) Zeros(off, n int64) bool { return true }

// Recovery.Zeros passes the base image's answer on, except where recovery wrote a block: those
// blocks read as the journal left them, not as the image.
func TestRecoveryZeros(t *testing.T) {
	ext3fstest.Need(t)
	ji := newJournalImage(t, journalFormats[0])
	d := ji.data
	ji.log(t, ji.jsb.First, 7, []jtxn{{writes: []jwrite{{d[0], ji.content("a")}, {d[1], ji.content("b")}}}})
	rc, err := ext3fs.Recover(allZeros{bytes.NewReader(ji.img)})
	if err != nil || !rc.Needed {
		t.Fatalf("recovery: %v, needed %v", err, rc.Needed)
	}
	bs := int64(ji.bs)
	for _, b := range rc.Blocks {
		if rc.Zeros(int64(b)*bs, bs) || rc.Zeros(int64(b)*bs-3*bs, 8*bs) {
			t.Errorf("block %d, written by recovery, reads as the base image's zeros", b)
		}
	}
	free := rc.Blocks[len(rc.Blocks)-1] + 10
	if !rc.Zeros(int64(free)*bs, bs) {
		t.Errorf("block %d, not written by recovery: the base image's answer was not passed on", free)
	}
	plain, err := ext3fs.Recover(bytes.NewReader(ji.img))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Zeros(int64(free)*bs, bs) {
		t.Error("a base image that says nothing of zeros: Zeros is true")
	}
}
