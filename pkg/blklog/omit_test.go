package blklog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// omitRecords are large writes of 4 KiB units, each unit either "plain" (its first byte
// 0xAA: what the test filter skips) or not, some writes not on a unit boundary, some with a
// tail shorter than a unit, between small records.
func omitRecords(n int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 2))
	var out []Record
	for i := range n {
		if i%3 == 2 {
			out = append(out, Record{Type: TypeFlush})
			continue
		}
		r := Record{Type: TypeWrite, Sector: uint64(rng.IntN(1<<18)) * 8, Length: uint32(1+rng.IntN(96)) * 4096}
		switch i % 5 {
		case 1:
			r.Sector++ // not on a unit boundary: read whole
		case 2:
			r.Length += 1536 // a tail of three sectors
		case 3:
			r.Length = 8 * SectorSize // too small to filter
		}
		r.Data = make([]byte, r.Length)
		for u := 0; u < len(r.Data); u += 4096 {
			unit := r.Data[u:min(u+4096, len(r.Data))]
			for j := range unit {
				unit[j] = byte(rng.Uint32())
			}
			if rng.IntN(3) > 0 {
				unit[0] = 0xAA
			} else if unit[0] == 0xAA {
				unit[0] = 0
			}
		}
		out = append(out, r)
	}
	return out
}

// testFilter skips the units that start with 0xAA.
func testFilter(unit, minimum int) PayloadFilter {
	return PayloadFilter{Unit: unit, Min: minimum, Skip: func(off uint64, p []byte) bool {
		return p[0] == 0xAA && len(p) == unit && off%uint64(unit) == 0
	}}
}

// readFiltered reads b through ReadAhead with the test filter of 4 KiB units, checking against
// want (the plain reader's records) that every byte kept is the payload's, that only units the
// filter skips are marked, and that nothing else differs; it returns the error the read ended
// with.
func readFiltered(t *testing.T, name string, b []byte, want []Record) (int, error) {
	return readFilteredBy(t, name, b, want, testFilter(4096, 8192))
}

func readFilteredBy(t *testing.T, name string, b []byte, want []Record, f PayloadFilter) (int, error) {
	t.Helper()
	pr, err := NewReader(bytes.NewReader(b), "mem.log")
	if err != nil {
		return 0, err
	}
	return readFilteredFrom(t, name, pr, want, f)
}

// readFilteredFrom is readFilteredBy on a reader opened already.
func readFilteredFrom(t *testing.T, name string, pr Reader, want []Record, f PayloadFilter) (int, error) {
	t.Helper()
	r := ReadAhead(pr)
	defer r.Close()
	if !SetPayloadFilter(r, f) {
		return -1, nil // not a native log
	}
	unit := f.Unit
	omitted := 0
	for i := 0; ; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			return omitted, nil
		}
		if err != nil {
			return omitted, err
		}
		if i >= len(want) {
			t.Fatalf("%s: record %d, past the plain reader's %d", name, i, len(want))
		}
		w := want[i]
		if rec.Index != w.Index || rec.Type != w.Type || rec.Sector != w.Sector || rec.Length != w.Length || len(rec.Data) != len(w.Data) {
			t.Fatalf("%s: record %d is {%d %v s%d l%d %dB}, want {%d %v s%d l%d %dB}", name, i,
				rec.Index, rec.Type, rec.Sector, rec.Length, len(rec.Data), w.Index, w.Type, w.Sector, w.Length, len(w.Data))
		}
		filtered := rec.Type == TypeWrite && rec.Sector*SectorSize%uint64(unit) == 0 && len(rec.Data) >= f.Min
		for u := 0; u < len(w.Data); u += unit {
			end := min(u+unit, len(w.Data))
			skip := filtered && f.Skip(rec.Sector*SectorSize+uint64(u), w.Data[u:end])
			if rec.Omitted.Has(u) {
				if !skip {
					t.Fatalf("%s: record %d: unit at %d left out, the filter kept it", name, i, u)
				}
				omitted++
				continue
			}
			if !bytes.Equal(rec.Data[u:end], w.Data[u:end]) {
				t.Fatalf("%s: record %d: unit at %d kept, and not the payload's", name, i, u)
			}
		}
	}
}

// A filtered log, native or dm-log-writes, gives the plain reader's records, less only units
// the filter skips (those the window held already are kept), and ends where the plain reader
// ends, with the same error, when cut or damaged.
func TestPayloadFilterReader(t *testing.T) {
	recs := omitRecords(300, 7)
	dm := writeDMLog(t, recs)
	enc, _ := zstd.NewWriter(nil)
	for name, b := range map[string][]byte{
		"native":            writeLog(t, recs, 5),
		"dm-log-writes":     dm,
		"dm-log-writes.zst": enc.EncodeAll(dm, nil),
	} {
		_, want, err := readAll(t, b)
		if err != nil {
			t.Fatal(err)
		}
		n, err := readFiltered(t, name, b, want)
		if err != nil {
			t.Fatal(err)
		}
		if n < 1000 {
			t.Fatalf("%s: only %d units left out of %d records", name, n, len(want))
		}
		for i := 1; i < 20; i++ {
			c := b[:i*len(b)/20]
			_, wantC, werr := readAll(t, c)
			if _, gerr := readFiltered(t, fmt.Sprintf("%s cut %d", name, i), c, wantC); fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Fatalf("%s cut %d: filtered read ends with %v, plain reader with %v", name, i, gerr, werr)
			}
		}
		for _, at := range []int{len(b) / 3, len(b) / 2, len(b) * 4 / 5} {
			c := bytes.Clone(b)
			c[at] ^= 0x55
			_, wantC, werr := readAll(t, c) // dm-log-writes has no checksum: its records change
			if _, gerr := readFiltered(t, fmt.Sprintf("%s flip at %d", name, at), c, wantC); fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Fatalf("%s flip at %d: filtered read ends with %v, plain reader with %v", name, at, gerr, werr)
			}
		}
	}
}

// A native log's reader takes a filter, a dm-log-writes log's when read in place (by
// ReadAhead); nothing else does, and only a sane filter.
func TestSetPayloadFilterRefuses(t *testing.T) {
	native := writeLog(t, sampleRecords(10, 1), 0)
	dm := writeDMLog(t, dmRecords())
	skip := func(uint64, []byte) bool { return true }
	for name, c := range map[string]struct {
		log  []byte
		wrap func(Reader) Reader
		f    PayloadFilter
		ok   bool
	}{
		"native":                 {native, ReadAhead, PayloadFilter{Unit: 4096, Skip: skip}, true},
		"native, no read-ahead":  {native, nil, PayloadFilter{Unit: 4096, Skip: skip}, true},
		"no Skip":                {native, ReadAhead, PayloadFilter{Unit: 4096}, false},
		"unit 3000":              {native, ReadAhead, PayloadFilter{Unit: 3000, Skip: skip}, false},
		"unit 256":               {native, ReadAhead, PayloadFilter{Unit: 256, Skip: skip}, false},
		"unit 128 KiB":           {native, ReadAhead, PayloadFilter{Unit: 128 << 10, Skip: skip}, false},
		"dm-log-writes":          {dm, ReadAhead, PayloadFilter{Unit: 4096, Skip: skip}, true},
		"dm-log-writes, copying": {dm, nil, PayloadFilter{Unit: 4096, Skip: skip}, false},
		"another reader":         {native, func(r Reader) Reader { return ReadAhead(opaque{r}) }, PayloadFilter{Unit: 4096, Skip: skip}, false},
	} {
		r, err := NewReader(bytes.NewReader(c.log), "mem.log")
		if err != nil {
			t.Fatal(err)
		}
		if c.wrap != nil {
			r = c.wrap(r)
		}
		if got := SetPayloadFilter(r, c.f); got != c.ok {
			t.Errorf("%s: SetPayloadFilter %v, want %v", name, got, c.ok)
		}
		r.Close()
	}
}

// PayloadSource gives any record again, whole, forward and back.
func TestPayloadSource(t *testing.T) {
	recs := omitRecords(60, 3)
	path := filepath.Join(t.TempDir(), "io.log.zst")
	if err := os.WriteFile(path, writeLog(t, recs, 4), 0o644); err != nil {
		t.Fatal(err)
	}
	opened := 0
	s := NewPayloadSource(func() (Reader, error) { opened++; return Open(path) })
	defer s.Close()
	for _, i := range []int64{3, 4, 30, 59, 10, 10, 11} {
		rec, err := s.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		w := recs[i]
		if rec.Index != i || rec.Type != w.Type || rec.Sector != w.Sector || !bytes.Equal(rec.Data, w.Data) {
			t.Fatalf("record %d: got record %d (%v at %d)", i, rec.Index, rec.Type, rec.Sector)
		}
	}
	if opened != 3 { // at the start, back to 10, back to 10 again
		t.Errorf("the log was opened %d times, want 3", opened)
	}
	if _, err := s.Record(60); err == nil {
		t.Error("record 60 of 60: no error")
	}
}

// A record with units left out is not written, to either format.
func TestWritersRefuseOmitted(t *testing.T) {
	rec := Record{Type: TypeWrite, Sector: 8, Length: 4096, Data: make([]byte, 4096), Omitted: &Omissions{Unit: 4096, bits: []uint64{1}}}
	w, err := NewWriter(io.Discard, Header{DiskSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&rec); !errors.Is(err, errOmitted) {
		t.Errorf("native writer: %v", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "lw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dw, err := NewDMLogWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := dw.Write(&rec); !errors.Is(err, errOmitted) {
		t.Errorf("dm-log-writes writer: %v", err)
	}
}

// A window with a filter reads little ahead, so that writes of 64 KiB, the smallest filtered,
// are mostly left out rather than read whole with the record before them.
func TestPayloadFilterReadsLittleAhead(t *testing.T) {
	var recs []Record
	for i := range 200 {
		data := bytes.Repeat([]byte{0xAA}, 64<<10)
		recs = append(recs, Record{Type: TypeWrite, Sector: uint64(i) * 128, Length: uint32(len(data)), Data: data})
	}
	b := writeLog(t, recs, 10)
	_, want, err := readAll(t, b)
	if err != nil {
		t.Fatal(err)
	}
	n, err := readFilteredBy(t, "64 KiB writes", b, want, testFilter(4096, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if all := 200 * 16; n < all*2/3 {
		t.Fatalf("%d units of %d left out", n, all)
	}
}

// An Omissions not made by a reader (its unit unset) has nothing left out, rather than a
// division by zero.
func TestOmissionsZeroValue(t *testing.T) {
	var none *Omissions
	for _, o := range []*Omissions{none, {}, {Unit: 4096}} {
		if o.Has(0) || o.Has(8192) || o.Units() != 0 {
			t.Errorf("%+v: something left out", o)
		}
	}
}
