package blklog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzRead reads every record of b and checks the reader's promises: no
// panic, records consistent with their lengths, termination by io.EOF or a
// DamageError naming the right record.
func fuzzRead(t *testing.T, b []byte) {
	r, err := NewReader(bytes.NewReader(b), "fuzz")
	if err != nil {
		return
	}
	defer r.Close()
	for n := int64(0); ; n++ {
		rec, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			var de *DamageError
			if !errors.As(err, &de) {
				t.Fatalf("error is not a *DamageError: %v", err)
			}
			if de.Record != n {
				t.Fatalf("DamageError names record %d after %d good ones", de.Record, n)
			}
			return
		}
		if rec.Index != n {
			t.Fatalf("record index %d, want %d", rec.Index, n)
		}
		if err := checkRecord(&rec); err != nil {
			t.Fatalf("reader returned an inconsistent record: %v", err)
		}
		if err := CheckDeviceRange(&rec, 0); err != nil {
			t.Fatalf("reader returned a record beyond any device: %v", err)
		}
		if n > 1<<16 {
			return // a 2 TiB discard streams 1,024 records; more means nothing new
		}
	}
}

// fuzzReadAhead checks that ReadAhead yields what the plain reader does:
// the same records, payloads and final error.
func fuzzReadAhead(t *testing.T, b []byte) {
	_, want, werr := readAll(t, b)
	_, got, gerr := readAllAhead(t, b)
	if fmt.Sprint(werr) != fmt.Sprint(gerr) || len(got) != len(want) {
		t.Fatalf("read-ahead: %d records then %v; plain reader: %d records then %v", len(got), gerr, len(want), werr)
	}
	for i := range want {
		if g, w := got[i], want[i]; g.Index != w.Index || g.Type != w.Type || g.Flags != w.Flags || g.Sector != w.Sector ||
			g.Length != w.Length || g.TimeNS != w.TimeNS || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("read-ahead record %d differs from the plain reader's", i)
		}
	}
}

func fuzzBoth(t *testing.T, b []byte) {
	fuzzRead(t, b)
	fuzzReadAhead(t, b)
	fuzzFiltered(t, b)
	fuzzFilteredFile(t, b)
}

// fuzzFilteredFile is fuzzFiltered with the log read from a file, as analyze reads it: read
// ahead, its payloads lent in place (raw logs, and zstd's raw blocks through rawFrames).
func fuzzFilteredFile(t *testing.T, b []byte) {
	_, want, werr := readAll(t, b)
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		if werr == nil || strings.ReplaceAll(err.Error(), path, "mem.log") != werr.Error() {
			t.Fatalf("open: %v; in memory: %v", err, werr)
		}
		return
	}
	n, gerr := readFilteredFrom(t, "fuzz file", r, want, testFilter(SectorSize, SectorSize))
	if n >= 0 && strings.ReplaceAll(fmt.Sprint(gerr), path, "mem.log") != fmt.Sprint(werr) {
		t.Fatalf("filtered read from the file ends with %v, in memory with %v", gerr, werr)
	}
}

// fuzzFiltered checks that a payload filter changes nothing but the units it skips, and ends
// the read where the plain reader ends it, with the same error.
func fuzzFiltered(t *testing.T, b []byte) {
	_, want, werr := readAll(t, b)
	if n, gerr := readFilteredBy(t, "fuzz", b, want, testFilter(SectorSize, SectorSize)); n >= 0 && fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("filtered read ends with %v, plain reader with %v", gerr, werr)
	}
}

func FuzzNativeReader(f *testing.F) {
	f.Add(writeLog(f, smallRecords(sampleRecords(20, 11)), 3))
	f.Add(writeLog(f, nil, 0))
	hb, _ := marshalHeader(&Header{Source: "raw"})
	f.Add(hb)
	f.Fuzz(fuzzBoth)
}

func FuzzDMLogReader(f *testing.F) {
	recs := smallRecords(dmRecords()[:12])
	f.Add(writeDMLog(f, recs))
	f.Add(writeDMLog(f, nil))
	// Issue 17: a discard of 2^53 sectors, one of 2^32 (legal, streamed), byte ranges past 2^63.
	f.Add(dmEntryLog([4]uint64{0, 1 << 53, DMLogDiscard, 0}))
	f.Add(dmEntryLog([4]uint64{0, 1 << 32, DMLogDiscard | DMLogFlush, 0}, [4]uint64{8, 0, DMLogFlush, 0}))
	f.Add(dmEntryLog([4]uint64{1<<54 - 1, 2, DMLogDiscard, 0}))
	f.Fuzz(fuzzBoth)
}

// smallRecords trims payloads to one sector: small seeds make fast fuzzing.
func smallRecords(recs []Record) []Record {
	for i := range recs {
		r := &recs[i]
		if r.Type == TypeWrite || r.Type == TypeRead || r.Type == TypeDiscard || r.Type == TypeWriteZeroes {
			r.Length = SectorSize
			if len(r.Data) > 0 {
				r.Data = r.Data[:SectorSize]
			}
		}
	}
	return recs
}

func FuzzQEMUTrace(f *testing.F) {
	f.Add([]byte("13800@1795727464.902507:blk_co_preadv blk 0x564f586a3360 bs 0x564f57b9d040 offset 4096 bytes 4096 flags 0x8\n" +
		"blk_co_pwritev blk 0x564f586a3360 bs 0x1 offset 8192 bytes 1000 flags 0x12\nnoise\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		counts, err := ScanQEMUTrace(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, blk := range BlkPointers(counts) {
			r := NewQEMUTraceReader(bytes.NewReader(b), "fuzz", blk)
			var n int64
			for {
				rec, err := r.Next()
				if err != nil {
					if err != io.EOF {
						t.Fatalf("trace that scanned cleanly failed: %v", err)
					}
					break
				}
				if err := checkRecord(&rec); err != nil {
					t.Fatalf("inconsistent record: %v", err)
				}
				n++
			}
			if n != counts[blk] {
				t.Fatalf("read %d records for %s, scan counted %d", n, blk, counts[blk])
			}
		}
	})
}
