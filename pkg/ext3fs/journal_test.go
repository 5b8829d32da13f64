package ext3fs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// journalFormats are the six tag layouts jbd2 can produce, with the tag size the kernel's
// journal_tag_bytes() gives for each (jbd2.h: tag 12 bytes, -4 without 64BIT, +2 for CSUM_V2; tag3 16).
var journalFormats = []struct {
	name     string
	incompat uint32
	tagBytes int
}{
	{"plain", 0, 8},
	{"64bit", JournalIncompat64Bit, 12},
	{"csum2", JournalIncompatCsumV2, 10},
	{"csum2+64bit", JournalIncompatCsumV2 | JournalIncompat64Bit, 14},
	{"csum3", JournalIncompatCsumV3, 16},
	{"csum3+64bit", JournalIncompatCsumV3 | JournalIncompat64Bit, 16},
}

func testJSB(bs uint32, incompat uint32) *JournalSuperblock {
	j := &JournalSuperblock{BlockType: JournalSuperblockV2, BlockSize: bs, MaxLen: 1024, First: 1,
		Sequence: 7, Start: 1, FeatureIncompat: JournalIncompatRevoke | incompat}
	copy(j.UUID[:], "0123456789abcdef")
	if j.HasCsumV2V3() {
		j.ChecksumType = 4
	}
	return j
}

func TestJournalSuperblockRoundTrip(t *testing.T) {
	for _, f := range journalFormats {
		j := testJSB(4096, f.incompat)
		j.Head, j.NrUsers = 5, 1
		b := j.Marshal()
		got, err := ParseJournalSuperblock(b)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		j.Checksum = got.Checksum // recomputed by Marshal
		if *got != *j {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", f.name, *got, *j)
		}
		if got.TagBytes() != f.tagBytes {
			t.Errorf("%s: TagBytes %d, want %d", f.name, got.TagBytes(), f.tagBytes)
		}
		if !VerifyJournalSuperblockChecksum(b, got) {
			t.Errorf("%s: superblock checksum does not verify", f.name)
		}
		if got.HasCsumV2V3() {
			b[0x40] ^= 1
			if VerifyJournalSuperblockChecksum(b, got) {
				t.Errorf("%s: corrupted superblock checksum verifies", f.name)
			}
		}
	}
}

func TestJournalSuperblockV1(t *testing.T) {
	j := testJSB(1024, 0)
	b := j.Marshal()
	binary.BigEndian.PutUint32(b[4:], JournalSuperblockV1)
	binary.BigEndian.PutUint32(b[0x28:], 0xFFFF) // v2 fields are ignored on v1
	got, err := ParseJournalSuperblock(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version() != 1 || got.FeatureIncompat != 0 || got.TagBytes() != 8 || got.Sequence != 7 {
		t.Errorf("v1 superblock decoded as %+v", *got)
	}
}

func TestJournalSuperblockErrors(t *testing.T) {
	good := testJSB(1024, 0).Marshal()
	cases := []struct {
		name   string
		edit   func(b []byte) []byte
		offset int64
		unsupp bool
	}{
		{"short", func(b []byte) []byte { return b[:1000] }, 0, false},
		{"magic", func(b []byte) []byte { b[0] = 0; return b }, 0, false},
		{"type", func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 1); return b }, 4, false},
		{"blocksize", func(b []byte) []byte { binary.BigEndian.PutUint32(b[0xC:], 3000); return b }, 0xC, false},
		{"incompat", func(b []byte) []byte { binary.BigEndian.PutUint32(b[0x28:], 0x100); return b }, 0x28, true},
		{"first0", func(b []byte) []byte { binary.BigEndian.PutUint32(b[0x14:], 0); return b }, 0x14, false},
		{"first>=maxlen", func(b []byte) []byte { binary.BigEndian.PutUint32(b[0x14:], 1024); return b }, 0x14, false},
		{"start>=maxlen", func(b []byte) []byte { binary.BigEndian.PutUint32(b[0x1C:], 5000); return b }, 0x1C, false},
		{"fc area too big", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[0x28:], JournalIncompatFastCommit)
			binary.BigEndian.PutUint32(b[0x54:], 1024)
			return b
		}, 0x14, false},
	}
	for _, c := range cases {
		b := c.edit(append([]byte(nil), good...))
		_, err := ParseJournalSuperblock(b)
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v, want a *FormatError", c.name, err)
			continue
		}
		if fe.Offset != c.offset {
			t.Errorf("%s: error at byte %d, want %d (%v)", c.name, fe.Offset, c.offset, err)
		}
		if errors.Is(err, ErrUnsupported) != c.unsupp {
			t.Errorf("%s: errors.Is(ErrUnsupported) = %v", c.name, !c.unsupp)
		}
	}
}

func TestJournalLogEndAndWrap(t *testing.T) {
	j := testJSB(1024, 0)
	if j.LogEnd() != 1024 {
		t.Errorf("LogEnd %d", j.LogEnd())
	}
	for in, want := range map[uint64]uint64{1: 1, 1023: 1023, 1024: 1, 1025: 2, 2047: 1, 2048: 2} {
		if got := j.WrapLogBlock(in); got != want {
			t.Errorf("WrapLogBlock(%d) = %d, want %d", in, got, want)
		}
	}
	j.FeatureIncompat |= JournalIncompatFastCommit
	if j.LogEnd() != 1024-256 {
		t.Errorf("fast commit default area: LogEnd %d", j.LogEnd())
	}
	j.NumFCBlocks = 24
	if j.LogEnd() != 1000 || j.WrapLogBlock(1000) != 1 {
		t.Errorf("fast commit area of 24: LogEnd %d, wrap(1000) %d", j.LogEnd(), j.WrapLogBlock(1000))
	}
}

func TestJournalDescriptorFormats(t *testing.T) {
	for _, bs := range []uint32{1024, 4096} {
		for _, f := range journalFormats {
			j := testJSB(bs, f.incompat)
			want := []JournalTag{
				{FSBlock: 2000, Checksum: 0x1234abcd},
				{FSBlock: 2001, Flags: JournalFlagEscape, Checksum: 0x55aa0001},
				{FSBlock: 0xFFFFFFFF, Flags: JournalFlagDeleted},
				{FSBlock: 2002},
			}
			if j.Has64Bit() {
				want[3].FSBlock = 0x1_2345_6789
			}
			b, err := BuildDescriptor(j, 9, want)
			if err != nil {
				t.Fatal(err)
			}
			// The layout is fixed by jbd2.h: check the raw bytes, not only the round trip.
			tb := f.tagBytes
			if v := binary.BigEndian.Uint32(b[12+tb+16:]); v != 2001 {
				t.Errorf("%s/%d: second tag blocknr at byte %d = %d", f.name, bs, 12+tb+16, v)
			}
			if v := binary.BigEndian.Uint16(b[12+tb+16+6:]); v != JournalFlagEscape|JournalFlagSameUUID {
				t.Errorf("%s/%d: second tag flags %#x", f.name, bs, v)
			}
			if !bytes.Equal(b[12+tb:12+tb+16], j.UUID[:]) {
				t.Errorf("%s/%d: first tag is not followed by the UUID", f.name, bs)
			}
			got, err := ParseDescriptor(b, j)
			if err != nil {
				t.Fatalf("%s/%d: %v", f.name, bs, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s/%d: %d tags, want %d", f.name, bs, len(got), len(want))
			}
			for i, g := range got {
				w := want[i]
				wantFlags := w.Flags
				if i > 0 {
					wantFlags |= JournalFlagSameUUID
				}
				if i == len(want)-1 {
					wantFlags |= JournalFlagLastTag
				}
				wantSum := uint32(0)
				switch {
				case j.HasCsumV3():
					wantSum = w.Checksum
				case j.HasCsumV2():
					wantSum = w.Checksum & 0xFFFF
				}
				if g.FSBlock != w.FSBlock || g.Flags != wantFlags || g.Checksum != wantSum || g.HasUUID != (i == 0) {
					t.Errorf("%s/%d tag %d: got %+v, want block %d flags %#x csum %#x", f.name, bs, i, g,
						w.FSBlock, wantFlags, wantSum)
				}
			}
			if !got[1].Escaped() || got[0].Escaped() || !got[3].LastTag() || !got[2].SameUUID() {
				t.Errorf("%s/%d: flag accessors wrong: %+v", f.name, bs, got)
			}
			if !VerifyJournalBlockChecksum(b, j) {
				t.Errorf("%s/%d: descriptor tail checksum does not verify", f.name, bs)
			}
			if j.HasCsumV2V3() {
				b[20] ^= 0x40
				if VerifyJournalBlockChecksum(b, j) {
					t.Errorf("%s/%d: corrupted descriptor verifies", f.name, bs)
				}
			}
		}
	}
}

// Without LAST_TAG, recovery.c's count_tags stops when the next tag would run into the checksum
// tail: a 1 KiB block holds 1 tag+UUID at 12..36 and then 123 8-byte tags (plain), or 1 tag+UUID at
// 12..44 and then 61 16-byte tags before the 4-byte tail (csum v3).
func TestJournalDescriptorFull(t *testing.T) {
	for _, c := range []struct {
		incompat uint32
		want     int
	}{{0, 124}, {JournalIncompatCsumV3, 62}, {JournalIncompat64Bit, 1 + (1024-40)/12}} {
		j := testJSB(1024, c.incompat)
		b := make([]byte, 1024)
		putJournalHeader(b, JournalDescriptorBlock, 1)
		tb := j.TagBytes()
		for off, i := 12, 0; off+tb <= 1024-j.TailSize(); i++ {
			binary.BigEndian.PutUint32(b[off:], uint32(100+i))
			if i > 0 {
				binary.BigEndian.PutUint16(b[off+6:], JournalFlagSameUUID)
				off += tb
			} else {
				off += tb + 16
			}
		}
		tags, err := ParseDescriptor(b, j)
		if err != nil {
			t.Fatal(err)
		}
		if len(tags) != c.want {
			t.Errorf("incompat %#x: %d tags, want %d", c.incompat, len(tags), c.want)
		}
		for i, tg := range tags {
			if tg.FSBlock != uint64(100+i) {
				t.Fatalf("tag %d: block %d", i, tg.FSBlock)
			}
		}
		// One more tag would be too many for BuildDescriptor.
		if _, err := BuildDescriptor(j, 1, make([]JournalTag, c.want+1)); err == nil {
			t.Errorf("incompat %#x: BuildDescriptor accepted %d tags", c.incompat, c.want+1)
		}
		if _, err := BuildDescriptor(j, 1, make([]JournalTag, c.want)); err != nil {
			t.Errorf("incompat %#x: BuildDescriptor refused %d tags: %v", c.incompat, c.want, err)
		}
	}
}

func TestJournalDescriptorErrors(t *testing.T) {
	j := testJSB(1024, 0)
	b, _ := BuildDescriptor(j, 1, []JournalTag{{FSBlock: 5}})
	for name, bad := range map[string][]byte{
		"short":     b[:512],
		"magic":     append([]byte{0}, b[1:]...),
		"blocktype": append(append([]byte(nil), b[:4]...), append([]byte{0, 0, 0, 2}, b[8:]...)...),
	} {
		if _, err := ParseDescriptor(bad, j); err == nil {
			t.Errorf("%s: no error", name)
		} else if fe := (*FormatError)(nil); !errors.As(err, &fe) {
			t.Errorf("%s: %T is not a *FormatError", name, err)
		}
	}
	if _, err := ParseDescriptor(b, nil); err == nil {
		t.Error("nil superblock accepted")
	}
	if _, err := BuildDescriptor(j, 1, []JournalTag{{FSBlock: 1 << 32}}); err == nil {
		t.Error("64-bit block accepted without 64BIT")
	}
}

func TestJournalRevoke(t *testing.T) {
	for _, f := range journalFormats {
		j := testJSB(1024, f.incompat)
		want := []uint64{2001, 7, 0xFFFFFFFF}
		if j.Has64Bit() {
			want = append(want, 1<<40)
		}
		b, err := BuildRevoke(j, 3, want)
		if err != nil {
			t.Fatal(err)
		}
		rec := 4
		if j.Has64Bit() {
			rec = 8
		}
		if c := binary.BigEndian.Uint32(b[12:]); int(c) != 16+rec*len(want) {
			t.Errorf("%s: r_count %d", f.name, c)
		}
		got, err := ParseRevoke(b, j)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: revoked %v, want %v", f.name, got, want)
		}
		if !VerifyJournalBlockChecksum(b, j) {
			t.Errorf("%s: revoke checksum does not verify", f.name)
		}
		// r_count past the usable bytes (the tail is not usable with csum) is an error at byte 12.
		binary.BigEndian.PutUint32(b[12:], uint32(1024-j.TailSize()+1))
		_, err = ParseRevoke(b, j)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Offset != 12 {
			t.Errorf("%s: oversized r_count: %v", f.name, err)
		}
	}
	// A trailing partial record is ignored, as in scan_revoke_records.
	j := testJSB(1024, 0)
	b, _ := BuildRevoke(j, 3, []uint64{10, 11})
	binary.BigEndian.PutUint32(b[12:], 16+4+2)
	if got, err := ParseRevoke(b, j); err != nil || len(got) != 1 || got[0] != 10 {
		t.Errorf("partial record: %v %v", got, err)
	}
}

func TestJournalCommit(t *testing.T) {
	for _, f := range journalFormats {
		j := testJSB(4096, f.incompat)
		b := BuildCommit(j, 42, 1_700_000_000, 123)
		c, err := ParseCommit(b, j)
		if err != nil {
			t.Fatal(err)
		}
		if c.Sequence != 42 || c.CommitSec != 1_700_000_000 || c.CommitNsec != 123 {
			t.Errorf("%s: %+v", f.name, *c)
		}
		if j.HasCsumV2V3() != (c.ChecksumType == 4 && c.Checksum[0] != 0) {
			t.Errorf("%s: checksum type %d value %#x", f.name, c.ChecksumType, c.Checksum[0])
		}
		if !VerifyJournalBlockChecksum(b, j) {
			t.Errorf("%s: commit checksum does not verify", f.name)
		}
		if _, err := ParseCommit(b, testJSB(1024, f.incompat)); err == nil {
			t.Errorf("%s: 4 KiB commit accepted for a 1 KiB journal", f.name)
		}
	}
}

func TestJournalEscape(t *testing.T) {
	data := []byte{0xC0, 0x3B, 0x39, 0x98, 'x', 'y'}
	logged, esc := EscapeJournalBlock(data)
	if !esc || !bytes.Equal(logged, []byte{0, 0, 0, 0, 'x', 'y'}) || data[0] != 0xC0 {
		t.Fatalf("escape: %x %v (input %x)", logged, esc, data)
	}
	UnescapeJournalBlock(logged)
	if !bytes.Equal(logged, data) {
		t.Errorf("unescape: %x", logged)
	}
	if _, esc := EscapeJournalBlock([]byte("plain data")); esc {
		t.Error("plain data escaped")
	}
}

// debugfsJournal makes a file system with mke2fs, logs transactions into its journal with
// debugfs's jo/jw/jc and returns the journal file (inode 8) as bytes.
func debugfsJournal(t *testing.T, mkfs []string, cmds string) []byte {
	t.Helper()
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	run := func(name string, args ...string) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("mke2fs", append(append([]string{"-q", "-F"}, mkfs...), img, "64M")...)
	cmdFile := filepath.Join(dir, "cmds")
	if err := os.WriteFile(cmdFile, []byte(fmt.Sprintf(cmds, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return writeDataFiles(t, dir, func() []byte {
		run("debugfs", "-w", "-f", cmdFile, img)
		run("debugfs", "-R", "dump <8> "+filepath.Join(dir, "journal"), img)
		j, err := os.ReadFile(filepath.Join(dir, "journal"))
		if err != nil {
			t.Fatal(err)
		}
		return j
	})
}

// writeDataFiles creates DIR/A (3 blocks of a pattern) and DIR/E (a block starting with the
// journal magic) for the jw commands, then runs f.
func writeDataFiles(t *testing.T, dir string, f func() []byte) []byte {
	a := make([]byte, 3*65536)
	for i := range a {
		a[i] = byte(i*7 + i/1024)
	}
	e := make([]byte, 65536)
	copy(e, []byte{0xC0, 0x3B, 0x39, 0x98, 'e', 's', 'c'})
	if err := os.WriteFile(filepath.Join(dir, "A"), a, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "E"), e, 0o644); err != nil {
		t.Fatal(err)
	}
	return f()
}

const debugfsCmds = `jo%[2]s
jw -b 2000,2001,2002 %[1]s/A
jw -r 2001
jw -b 2004 %[1]s/E
jw -b 2003 -c %[1]s/A
jc
`

// TestJournalDebugfs walks journals written by debugfs (plain ext3, and ext4 with csum v2/v3) the
// way recovery.c's scan pass does, and checks every block type and checksum the decoders see.
func TestJournalDebugfs(t *testing.T) {
	cases := []struct {
		name string
		mkfs []string
		jo   string
		inc  uint32
	}{
		{"ext3-1k", []string{"-t", "ext3", "-b", "1024"}, "", 0},
		{"ext3-4k", []string{"-t", "ext3", "-b", "4096"}, "", 0},
		{"ext3-csum1", []string{"-t", "ext3", "-b", "1024"}, " -c", 0}, // COMPAT_CHECKSUM
		{"ext4-64bit", []string{"-t", "ext4", "-O", "64bit,^metadata_csum", "-b", "4096"}, "", JournalIncompat64Bit},
		{"ext4-csum2", []string{"-t", "ext4", "-O", "64bit,metadata_csum", "-b", "1024"}, " -c -v 2",
			JournalIncompat64Bit | JournalIncompatCsumV2},
		{"ext4-csum3", []string{"-t", "ext4", "-O", "64bit,metadata_csum", "-b", "4096"}, " -c -v 3",
			JournalIncompat64Bit | JournalIncompatCsumV3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			jr := debugfsJournal(t, c.mkfs, fmt.Sprintf(debugfsCmds, "%[1]s", c.jo))
			jsb, err := ParseJournalSuperblock(jr)
			if err != nil {
				t.Fatal(err)
			}
			if jsb.FeatureIncompat&^JournalIncompatRevoke != c.inc {
				t.Fatalf("journal incompat %#x, want %#x", jsb.FeatureIncompat, c.inc|JournalIncompatRevoke)
			}
			if !VerifyJournalSuperblockChecksum(jr[:1024], jsb) {
				t.Error("superblock checksum")
			}
			bs := int(jsb.BlockSize)
			block := func(n uint64) []byte { return jr[int(n)*bs : int(n+1)*bs] }
			var got []string
			if (jsb.FeatureCompat&JournalCompatChecksum != 0) != (c.name == "ext3-csum1") {
				t.Fatalf("journal compat %#x", jsb.FeatureCompat)
			}
			v1, revokes := JournalV1ChecksumInit, false
			pos, seq := uint64(jsb.Start), jsb.Sequence
			for steps := 0; steps < 100; steps++ {
				b := block(pos)
				h, ok := ParseJournalHeader(b)
				if !ok || h.Sequence != seq {
					break
				}
				if !VerifyJournalBlockChecksum(b, jsb) {
					t.Errorf("block %d (type %d): checksum does not verify", pos, h.BlockType)
				}
				switch h.BlockType {
				case JournalDescriptorBlock:
					tags, err := ParseDescriptor(b, jsb)
					if err != nil {
						t.Fatal(err)
					}
					v1 = JournalV1Checksum(v1, b)
					for i, tg := range tags {
						data := block(jsb.WrapLogBlock(pos + 1 + uint64(i)))
						v1 = JournalV1Checksum(v1, data)
						if !VerifyJournalTagChecksum(jsb, seq, tg, data) {
							t.Errorf("tx %d block %d: data checksum does not verify", seq, tg.FSBlock)
						}
						if jsb.HasCsumV2V3() && VerifyJournalTagChecksum(jsb, seq+1, tg, data) {
							t.Errorf("tx %d block %d: data checksum verifies with the wrong tid", seq, tg.FSBlock)
						}
						got = append(got, fmt.Sprintf("%d:w%d/%x", seq, tg.FSBlock, tg.Flags))
					}
					pos = jsb.WrapLogBlock(pos + 1 + uint64(len(tags)))
					continue
				case JournalRevokeBlock:
					r, err := ParseRevoke(b, jsb)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, fmt.Sprintf("%d:r%v", seq, r))
					revokes = true
				case JournalCommitBlock:
					cm, err := ParseCommit(b, jsb)
					if err != nil {
						t.Fatal(err)
					}
					// debugfs also folds revoke blocks into the v1 sum, which the kernel and
					// recovery.c do not (e2fsck then calls such a transaction corrupt): only check
					// transactions without revokes.
					if jsb.FeatureCompat&JournalCompatChecksum != 0 && !revokes {
						if !VerifyJournalV1Commit(cm, v1) || cm.ChecksumType != 1 {
							t.Errorf("tx %d: v1 commit checksum %#x (type %d), computed %#x", seq, cm.Checksum[0],
								cm.ChecksumType, v1)
						}
						if VerifyJournalV1Commit(cm, v1+1) {
							t.Errorf("tx %d: v1 commit checksum verifies with a wrong sum", seq)
						}
					}
					v1 = JournalV1ChecksumInit
					got = append(got, fmt.Sprintf("%d:c", seq))
					seq++
				default:
					t.Fatalf("block %d: type %d", pos, h.BlockType)
				}
				pos = jsb.WrapLogBlock(pos + 1)
			}
			// debugfs: first tag carries the UUID (flags 0), later ones SAME_UUID (2), the last
			// LAST_TAG (8); the E block starts with the magic, so it is escaped (1).
			want := "[1:w2000/0 1:w2001/2 1:w2002/a 1:c 2:r[2001] 2:c 3:w2004/9 3:c 4:w2003/8]"
			if fmt.Sprint(got) != want {
				t.Errorf("walk\n got %v\nwant %s", got, want)
			}
		})
	}
}
