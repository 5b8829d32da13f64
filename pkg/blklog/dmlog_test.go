package blklog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// dmRecords are records dm-log-writes can represent exactly.
func dmRecords() []Record {
	var out []Record
	for _, r := range sampleRecords(300, 9) {
		switch r.Type {
		case TypeRead, TypeWriteZeroes:
			continue
		}
		r.Flags &^= FlagHasTime
		r.TimeNS = 0
		out = append(out, r)
	}
	return out
}

func writeDMLog(t testing.TB, recs []Record) []byte {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "lw")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewDMLogWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDMLogRoundTrip(t *testing.T) {
	recs := dmRecords()
	raw := writeDMLog(t, recs)
	enc, _ := zstd.NewWriter(nil)
	comp := enc.EncodeAll(raw, nil)
	dir := t.TempDir()
	for name, b := range map[string][]byte{"raw.lwlog": raw, "comp.lwlog.zst": comp} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if h := r.Header(); h.Format != FormatDMLogWrites || h.Image.Known {
			t.Fatalf("%s: header %+v", name, h)
		}
		for i := range recs {
			got, err := r.Next()
			if err != nil {
				t.Fatalf("%s: record %d: %v", name, i, err)
			}
			sameRecord(t, i, got, recs[i])
		}
		if _, err := r.Next(); err == nil || err.Error() != "EOF" {
			t.Fatalf("%s: after last record: %v", name, err)
		}
		r.Close()
	}
}

// QEMU's log as it stands between super block updates: entries beyond
// nr_entries are read; a zeroed tail ends the log.
func TestDMLogStaleCountAndZeroTail(t *testing.T) {
	recs := dmRecords()[:20]
	raw := writeDMLog(t, recs)
	stale := bytes.Clone(raw)
	stale[16] = 3 // nr_entries: 3
	stale = append(stale, make([]byte, 4096)...)
	_, got, err := readAll(t, stale)
	if err != nil || len(got) != len(recs) {
		t.Fatalf("%d records, %v", len(got), err)
	}
}

func TestDMLogTruncated(t *testing.T) {
	recs := dmRecords()
	raw := writeDMLog(t, recs)
	for _, cut := range []int{len(raw) - 1, len(raw) - 511, len(raw) / 2, 700} {
		_, got, err := readAll(t, raw[:cut])
		var de *DamageError
		if !errors.As(err, &de) || de.Record != int64(len(got)) {
			t.Fatalf("cut %d: %d records, %v", cut, len(got), err)
		}
		for i := range got {
			sameRecord(t, i, got[i], recs[i])
		}
	}
}

func TestDMLogFlushFUAWrite(t *testing.T) {
	// A Linux-style write entry with FLUSH|FUA: preflush, then a FUA write.
	raw := writeDMLog(t, nil)
	sec := make([]byte, 512)
	sec[0] = 16 // sector
	sec[8] = 1  // nr_sectors
	sec[16] = DMLogFlush | DMLogFUA
	raw = append(raw, sec...)
	raw = append(raw, bytes.Repeat([]byte{0x5a}, 512)...)
	_, got, err := readAll(t, raw)
	if err != nil || len(got) != 2 || got[0].Type != TypeFlush || got[1].Type != TypeWrite ||
		got[1].Flags != FlagFUA || got[1].Sector != 16 || got[1].Data[0] != 0x5a {
		t.Fatalf("%+v, %v", got, err)
	}
}
