package ext3fs

import (
	"errors"
	"testing"
)

// FuzzParseJournalSuperblock: any bytes either decode to a superblock whose geometry the log walk
// can rely on, or give a *FormatError; never a panic.
func FuzzParseJournalSuperblock(f *testing.F) {
	for _, fm := range journalFormats {
		f.Add(testJSB(1024, fm.incompat).Marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := ParseJournalSuperblock(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%T is not a *FormatError", err)
			}
			return
		}
		if j.First == 0 || j.First >= j.LogEnd() || (j.Start != 0 && (j.Start < j.First || j.Start >= j.LogEnd())) {
			t.Fatalf("accepted bad geometry %+v", *j)
		}
		for _, n := range []uint64{0, uint64(j.First), uint64(j.LogEnd()), 1 << 40} {
			if w := j.WrapLogBlock(n); n >= uint64(j.First) && (w < uint64(j.First) || w >= uint64(j.LogEnd())) {
				t.Fatalf("WrapLogBlock(%d) = %d outside [%d, %d)", n, w, j.First, j.LogEnd())
			}
		}
	})
}

// FuzzParseJournalBlocks feeds the same bytes to the descriptor, revoke and commit decoders under
// each tag format; the first byte picks the format and the rest is the 1 KiB block.
func FuzzParseJournalBlocks(f *testing.F) {
	for i, fm := range journalFormats {
		j := testJSB(1024, fm.incompat)
		d, _ := BuildDescriptor(j, 1, []JournalTag{{FSBlock: 1}, {FSBlock: 2, Flags: JournalFlagEscape}})
		r, _ := BuildRevoke(j, 1, []uint64{3, 4})
		f.Add(byte(i), d)
		f.Add(byte(i), r)
		f.Add(byte(i), BuildCommit(j, 1, 5, 6))
	}
	f.Fuzz(func(t *testing.T, sel byte, b []byte) {
		fm := journalFormats[int(sel)%len(journalFormats)]
		j := testJSB(1024, fm.incompat)
		if len(b) > 1024 {
			b = b[:1024]
		}
		tags, err := ParseDescriptor(b, j)
		if err == nil {
			for i, tg := range tags {
				if tg.Offset < JournalHeaderSize || tg.Offset+j.TagBytes() > len(b)-j.TailSize() {
					t.Fatalf("tag %d at byte %d outside the block", i, tg.Offset)
				}
				if !j.Has64Bit() && tg.FSBlock>>32 != 0 {
					t.Fatalf("tag %d: 64-bit block %d without 64BIT", i, tg.FSBlock)
				}
				if tg.LastTag() && i != len(tags)-1 {
					t.Fatalf("tags continue after LAST_TAG")
				}
			}
		}
		if recs, err := ParseRevoke(b, j); err == nil && len(recs) > (len(b)-16)/4 {
			t.Fatalf("%d revoke records in %d bytes", len(recs), len(b))
		}
		_, _ = ParseCommit(b, j)
		_ = VerifyJournalBlockChecksum(b, j)
	})
}
