package blklog

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleRecords returns a deterministic mix of every record kind, with
// enough payload to span several zstd frames.
func sampleRecords(n int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []Record
	for i := 0; i < n; i++ {
		r := Record{Sector: uint64(rng.IntN(1 << 20)), TimeNS: int64(i) * 1000, Flags: FlagHasTime}
		switch i % 7 {
		case 0, 1, 2:
			r.Type = TypeWrite
			r.Length = uint32(1+rng.IntN(256)) * SectorSize
			r.Data = make([]byte, r.Length)
			for j := 0; j < len(r.Data); j += 8 {
				v := rng.Uint64() & 0x0303030303030303 // compressible but not trivial
				for k := 0; k < 8; k++ {
					r.Data[j+k] = byte(v >> (8 * k))
				}
			}
			if i%5 == 0 {
				r.Flags |= FlagFUA
			}
		case 3:
			r.Type = TypeRead
			r.Length = 8 * SectorSize
		case 4:
			r.Type = TypeFlush
			r.Sector = 0
		case 5:
			r.Type = TypeDiscard
			r.Length = 64 * SectorSize
			if i%2 == 0 {
				r.Type = TypeWriteZeroes
			}
		case 6:
			r.Type = TypeMark
			r.Data = []byte("mark " + string(rune('a'+i%26)))
			r.Length = uint32(len(r.Data))
			r.Sector = 0
		}
		out = append(out, r)
	}
	return out
}

func writeLog(t testing.TB, recs []Record, flushEvery int) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := Header{DiskSize: 1 << 30, Source: "test", StartUnixNS: 12345}
	h.Image = ImageID{Known: true, Size: 1 << 30, RegionLen: RegionSize}
	h.Image.RegionSHA256[0] = 0xaa
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
		if flushEvery > 0 && i%flushEvery == flushEvery-1 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll returns the records read and the terminating error (nil for io.EOF).
func readAll(t testing.TB, b []byte) (Header, []Record, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), "mem.log")
	if err != nil {
		return Header{}, nil, err
	}
	defer r.Close()
	return drain(r, nil)
}

// drain reads r to its end, copying payloads; before copying the payload of
// record n it calls pause(n) when pause is set. The error is nil for io.EOF.
func drain(r Reader, pause func(n int, rec *Record)) (Header, []Record, error) {
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r.Header(), out, nil
		}
		if err != nil {
			return r.Header(), out, err
		}
		if pause != nil {
			pause(len(out), &rec)
		}
		rec.Data = bytes.Clone(rec.Data)
		out = append(out, rec)
	}
}

func sameRecord(t *testing.T, i int, got, want Record) {
	t.Helper()
	if got.Index != int64(i) || got.Type != want.Type || got.Flags != want.Flags || got.Sector != want.Sector ||
		got.Length != want.Length || got.TimeNS != want.TimeNS || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("record %d: got {%d %v %v s%d l%d t%d %dB}, want {%v %v s%d l%d t%d %dB}", i,
			got.Index, got.Type, got.Flags, got.Sector, got.Length, got.TimeNS, len(got.Data),
			want.Type, want.Flags, want.Sector, want.Length, want.TimeNS, len(want.Data))
	}
}

func TestRoundTrip(t *testing.T) {
	recs := sampleRecords(1500, 1)
	b := writeLog(t, recs, 50)
	h, got, err := readAll(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Format != FormatNative || h.Version != Version || h.DiskSize != 1<<30 || h.Source != "test" ||
		h.StartUnixNS != 12345 || !h.Image.Known || h.Image.RegionSHA256[0] != 0xaa || h.Image.HasFull {
		t.Fatalf("header %+v", h)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d records, wrote %d", len(got), len(recs))
	}
	for i := range recs {
		sameRecord(t, i, got[i], recs[i])
	}
	// The payload spans several frames: count zstd frame magics as a sanity check.
	if n := bytes.Count(b, zstdMagic); n < 3 {
		t.Errorf("only %d zstd frame magics in a log with flushes", n)
	}
}

func TestWriterRejectsInconsistentRecords(t *testing.T) {
	w, err := NewWriter(io.Discard, Header{})
	if err != nil {
		t.Fatal(err)
	}
	bad := []Record{
		{Type: TypeWrite, Length: 1024, Data: make([]byte, 512)},
		{Type: TypeWrite, Length: 100, Data: make([]byte, 100)},
		{Type: TypeFlush, Length: 512},
		{Type: Type(99)},
		{Type: TypeRead, Length: 512, Flags: 0x80},
	}
	for i := range bad {
		if err := w.Write(&bad[i]); err == nil {
			t.Errorf("record %+v accepted", bad[i])
		}
	}
}

// A log cut anywhere yields a prefix of the records, then a DamageError.
func TestTruncation(t *testing.T) {
	recs := sampleRecords(400, 2)
	b := writeLog(t, recs, 10)
	cuts := []int{len(b) - 1, len(b) - 5, len(b) / 2, len(b) / 3, 100, 40}
	for i := 0; i < 30; i++ {
		cuts = append(cuts, 50+i*(len(b)-50)/30)
	}
	prevBest := 0
	for _, cut := range cuts {
		_, got, err := readAll(t, b[:cut])
		var de *DamageError
		if !errors.As(err, &de) {
			t.Fatalf("cut at %d of %d: error %v, want *DamageError", cut, len(b), err)
		}
		if de.Record != int64(len(got)) || de.Path != "mem.log" {
			t.Fatalf("cut at %d: DamageError %+v after %d records", cut, de, len(got))
		}
		for i := range got {
			sameRecord(t, i, got[i], recs[i])
		}
		if cut == len(b)-1 && len(got) < len(recs)-10 {
			t.Errorf("cut of the last byte lost %d records; frames end at flushes", len(recs)-len(got))
		}
		prevBest = max(prevBest, len(got))
	}
	if prevBest == 0 {
		t.Fatal("no truncated log yielded any record")
	}
}

// A log whose writer never closed (killed recorder) reads to the last flush.
func TestUnclosedLog(t *testing.T) {
	recs := sampleRecords(100, 3)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
		if i == 59 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// No Close: only what was flushed is in buf (frames above FrameBytes aside).
	_, got, err := readAll(t, buf.Bytes())
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("error %v, want ErrTruncated", err)
	}
	if len(got) != 60 {
		t.Fatalf("read %d records, want the 60 before the last flush", len(got))
	}
}

// Flipping bytes of the uncompressed stream is caught by the record CRC.
func TestCorruptionRaw(t *testing.T) {
	recs := sampleRecords(200, 4)
	full := rawLog(t, writeLog(t, recs, 0))
	hb, _ := marshalHeader(&Header{DiskSize: 1 << 30, Source: "test", StartUnixNS: 12345,
		Image: ImageID{Known: true, Size: 1 << 30, RegionLen: RegionSize, RegionSHA256: [32]byte{0xaa}}})
	if !bytes.Equal(full[:len(hb)], hb) {
		t.Fatal("decompressed stream does not start with the header")
	}
	// The raw stream reads back fully.
	if _, got, err := readAll(t, full); err != nil || len(got) != len(recs) {
		t.Fatalf("raw stream: %d records, %v", len(got), err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 200; i++ {
		c := bytes.Clone(full)
		pos := len(hb) + rng.IntN(len(c)-len(hb))
		c[pos] ^= byte(1 + rng.IntN(255))
		_, got, err := readAll(t, c)
		var de *DamageError
		if !errors.As(err, &de) {
			t.Fatalf("flip at %d: error %v, want *DamageError", pos, err)
		}
		if de.Offset > int64(pos) {
			t.Fatalf("flip at %d reported at offset %d", pos, de.Offset)
		}
		for j := range got {
			sameRecord(t, j, got[j], recs[j])
		}
	}
}

// Corrupting the compressed file never yields a wrong record.
func TestCorruptionCompressed(t *testing.T) {
	recs := sampleRecords(200, 6)
	b := writeLog(t, recs, 20)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 100; i++ {
		c := bytes.Clone(b)
		pos := 60 + rng.IntN(len(c)-60)
		c[pos] ^= byte(1 + rng.IntN(255))
		_, got, err := readAll(t, c)
		if err == nil && len(got) == len(recs) {
			continue // flipped a bit zstd does not depend on (rare)
		}
		for j := range got {
			sameRecord(t, j, got[j], recs[j])
		}
	}
}

func TestHeaderErrors(t *testing.T) {
	hb, _ := marshalHeader(&Header{})
	bad := bytes.Clone(hb)
	bad[8] = 9 // version
	if _, err := NewReader(bytes.NewReader(bad), "x"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("version 9")) {
		t.Errorf("version 9: %v", err)
	}
	bad = bytes.Clone(hb)
	bad[20] ^= 1
	if _, err := NewReader(bytes.NewReader(bad), "x"); err == nil {
		t.Error("corrupt header accepted")
	}
	if _, err := NewReader(bytes.NewReader([]byte("hello world, not a log")), "x"); err == nil {
		t.Error("garbage accepted")
	}
	if _, err := NewReader(bytes.NewReader(hb[:10]), "x"); err == nil {
		t.Error("short file accepted")
	}
}

func TestOpenFileAndCheckImage(t *testing.T) {
	dir := t.TempDir()
	img := make([]byte, 1<<20)
	for i := range img {
		img[i] = byte(i * 7)
	}
	id, err := IdentifyImage(bytes.NewReader(img), int64(len(img)), true)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a.log.zst")
	w, err := Create(p, Header{DiskSize: uint64(len(img)), Image: id})
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{Type: TypeWrite, Sector: 8, Length: 512, Data: make([]byte, 512)}
	if err := w.Write(&rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header()
	r.Close()
	if err := CheckImageFull(h, bytes.NewReader(img), int64(len(img))); err != nil {
		t.Fatalf("same image: %v", err)
	}
	other := bytes.Clone(img)
	other[1024+56] ^= 1 // superblock region
	if err := CheckImage(h, bytes.NewReader(other), int64(len(other))); !errors.Is(err, ErrImageMismatch) {
		t.Fatalf("changed superblock: %v", err)
	}
	other = bytes.Clone(img)
	other[len(other)-1] ^= 1 // outside the region: only the full hash sees it
	if err := CheckImage(h, bytes.NewReader(other), int64(len(other))); err != nil {
		t.Fatalf("CheckImage looked past the region: %v", err)
	}
	if err := CheckImageFull(h, bytes.NewReader(other), int64(len(other))); !errors.Is(err, ErrImageMismatch) {
		t.Fatalf("changed content: %v", err)
	}
	if err := CheckImage(h, bytes.NewReader(img[:4096]), 4096); !errors.Is(err, ErrImageMismatch) {
		t.Fatalf("other size: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// Records larger than the reader's initial window, between small ones.
func TestLargeRecords(t *testing.T) {
	big := make([]byte, 20<<20)
	for i := range big {
		big[i] = byte(i / 4096)
	}
	recs := []Record{
		{Type: TypeWrite, Sector: 1, Length: 512, Data: bytes.Repeat([]byte{1}, 512)},
		{Type: TypeWrite, Sector: 2, Length: uint32(len(big)), Data: big},
		{Type: TypeFlush},
		{Type: TypeWrite, Sector: 3, Length: uint32(len(big) / 2), Data: big[:len(big)/2]},
		{Type: TypeWrite, Sector: 4, Length: 1024, Data: bytes.Repeat([]byte{4}, 1024)},
	}
	_, got, err := readAll(t, writeLog(t, recs, 0))
	if err != nil || len(got) != len(recs) {
		t.Fatalf("%d records, %v", len(got), err)
	}
	for i := range recs {
		sameRecord(t, i, got[i], recs[i])
	}
}

// Sector*512 used to wrap: a write at sector 2^55+32 read back as a write at byte 16384, exit
// 0. A record whose byte range overflows, or passes the header's disk size, is damage naming
// the record; CheckDeviceRange says the same to consumers that know the image.
func TestNativeRecordRange(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 4096)
	good := Record{Type: TypeWrite, Sector: 8, Length: 4096, Data: data}
	for _, c := range []struct {
		bad  Record
		want string
	}{
		{Record{Type: TypeWrite, Sector: 1<<55 + 32, Length: 4096, Data: data}, "overflows"},
		{Record{Type: TypeRead, Sector: 1<<54 - 1, Length: 4096}, "overflows"},
		{Record{Type: TypeWrite, Sector: (1 << 30) / SectorSize, Length: 4096, Data: data}, "beyond the end of the 1073741824-byte device"},
		{Record{Type: TypeDiscard, Sector: (1<<30)/SectorSize - 1, Length: 1024}, "beyond the end"},
	} {
		_, recs, err := readAll(t, writeLog(t, []Record{good, c.bad, good}, 0))
		var de *DamageError
		var re *RangeError
		if len(recs) != 1 || !errors.As(err, &de) || de.Record != 1 || !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v at sector %d: %d records, %v", c.bad.Type, c.bad.Sector, len(recs), err)
		}
		if err := CheckDeviceRange(&c.bad, 1<<30); err == nil {
			t.Errorf("CheckDeviceRange accepted %v at sector %d", c.bad.Type, c.bad.Sector)
		}
	}
	// The last sector of the device is inside; flushes and marks cover nothing.
	for _, r := range []Record{
		{Type: TypeWrite, Sector: (1<<30)/SectorSize - 8, Length: 4096},
		{Type: TypeFlush, Sector: 1 << 60},
		{Type: TypeMark, Sector: 1 << 60},
	} {
		if err := CheckDeviceRange(&r, 1<<30); err != nil {
			t.Errorf("%v: %v", r.Type, err)
		}
	}
}
