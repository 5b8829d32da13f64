package blklog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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

// dmEntryLog is a raw dm-log-writes log (512-byte sectors) of the given entry headers, data-less.
func dmEntryLog(entries ...[4]uint64) []byte {
	le := binary.LittleEndian
	b := make([]byte, SectorSize*(1+len(entries)))
	le.PutUint64(b[0:], DMLogMagic)
	le.PutUint64(b[8:], DMLogVersion)
	le.PutUint64(b[16:], uint64(len(entries)))
	le.PutUint32(b[24:], SectorSize)
	for i, e := range entries {
		p := b[SectorSize*(1+i):]
		for j, v := range e {
			le.PutUint64(p[8*j:], v)
		}
	}
	return b
}

// A 1 KiB log whose discard claims 2^53 sectors was split into 2^31 records held in memory.
// Beyond the largest discard any block layer issues it is damage, at that entry; a large but
// possible one (2 TiB) is streamed in 2 GiB pieces without memory growing with it.
func TestDMLogHugeDiscard(t *testing.T) {
	b := dmEntryLog([4]uint64{8, 0, DMLogFlush, 0}, [4]uint64{0, 1 << 53, DMLogDiscard | DMLogFlush, 0})
	recs, err := readDM(t, b)
	var de *DamageError
	if len(recs) != 1 || !errors.As(err, &de) || de.Record != 1 || de.Offset != 2*SectorSize ||
		!strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), "largest single discard") {
		t.Fatalf("%d records, err %v", len(recs), err)
	}

	b = dmEntryLog([4]uint64{16, 1 << 32, DMLogDiscard, 0})
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	recs, err = readDM(t, b)
	runtime.ReadMemStats(&ms1)
	if err != nil || len(recs) != 1024 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	sec := uint64(16)
	for _, r := range recs {
		if r.Type != TypeDiscard || r.Sector != sec || r.Length != 1<<31 {
			t.Fatalf("piece %+v, want a 2 GiB discard at sector %d", r, sec)
		}
		sec += 1 << 31 / SectorSize
	}
	if grown := ms1.TotalAlloc - ms0.TotalAlloc; grown > 4<<20 {
		t.Fatalf("reading one discard entry allocated %d bytes", grown)
	}
}

// An entry whose byte range passes the end of any addressable device is damage (the sector
// arithmetic used to be checked only half-way).
func TestDMLogSectorOverflow(t *testing.T) {
	for _, e := range [][4]uint64{
		{1 << 54, 1, DMLogDiscard, 0},
		{1<<54 - 1, 2, DMLogDiscard, 0},
		{1 << 62, 0, DMLogFlush, 0},
	} {
		_, err := readDM(t, dmEntryLog(e))
		var de *DamageError
		if !errors.As(err, &de) || de.Record != 0 || !strings.Contains(err.Error(), "byte range beyond") {
			t.Errorf("entry %v: %v", e, err)
		}
	}
}

// readDM reads every record of the raw dm-log-writes log b, keeping headers only.
func readDM(t *testing.T, b []byte) ([]Record, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), "t.lwlog")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		rec.Data = nil
		out = append(out, rec)
	}
}
