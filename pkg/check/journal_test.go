package check

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// A malformed journal block (a revoke block whose count runs past the block, written where the
// log had a descriptor) is a finding named by the request that wrote it.
func TestJournalBlockFinding(t *testing.T) {
	disk, recs := capture(t, "../../fixtures/real/basic-ext3-4k")
	c, err := New(disk, int64(len(disk)))
	if err != nil {
		t.Fatal(err)
	}
	// The record holding the first descriptor block of the log.
	var at int64 = -1
	var off int
	for i := range recs {
		r := &recs[i]
		if r.Type != blklog.TypeWrite || at >= 0 {
			continue
		}
		for p := 0; p+4096 <= len(r.Data); p += 4096 {
			if h, ok := ext3fs.ParseJournalHeader(r.Data[p:]); ok && h.BlockType == 1 {
				if _, ok := c.jblk[r.Sector/8+uint64(p/4096)]; ok {
					at, off = r.Index, p
					r.Data = bytes.Clone(r.Data)
					// Made a revoke block whose r_count runs past the block.
					binary.BigEndian.PutUint32(r.Data[off+4:], ext3fs.JournalRevokeBlock)
					binary.BigEndian.PutUint32(r.Data[off+12:], 1<<20)
					break
				}
			}
		}
	}
	if at < 0 {
		t.Fatal("no descriptor block in the log")
	}
	_, findings, err := Run(disk, int64(len(disk)), &sliceLog{recs: recs})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range findings {
		t.Logf("%+v", f)
		if f.Kind == "journal" {
			n++
			if f.Seq != at || f.Block == 0 {
				t.Errorf("%+v: want record %d and the journal block's place on disk", f, at)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d journal findings, want 1", n)
	}
}
