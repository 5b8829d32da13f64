package blklog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/klauspost/compress/zstd"
)

// readAllAhead reads b through ReadAhead. Every few records it waits for the
// producer to run ahead before copying Data, so a buffer reused too early
// shows as a wrong payload.
func readAllAhead(t testing.TB, b []byte) (Header, []Record, error) {
	t.Helper()
	pr, err := NewReader(bytes.NewReader(b), "mem.log")
	if err != nil {
		return Header{}, nil, err
	}
	r := ReadAhead(pr)
	defer r.Close()
	return drain(r, func(n int, rec *Record) {
		if len(rec.Data) > 0 && n%97 == 0 {
			time.Sleep(time.Millisecond)
		}
	})
}

// readAheadOn starts ReadAhead on the log in b; it is closed when the test ends.
func readAheadOn(t *testing.T, b []byte) *readAhead {
	t.Helper()
	pr, err := NewReader(bytes.NewReader(b), "mem.log")
	if err != nil {
		t.Fatal(err)
	}
	ra := ReadAhead(pr).(*readAhead)
	t.Cleanup(func() { ra.Close() })
	return ra
}

// sameAsPlain checks that ReadAhead yields exactly what the plain reader does.
func sameAsPlain(t *testing.T, name string, b []byte) {
	t.Helper()
	wh, want, werr := readAll(t, b)
	gh, got, gerr := readAllAhead(t, b)
	if fmt.Sprint(werr) != fmt.Sprint(gerr) {
		t.Fatalf("%s: read-ahead ends with %v, plain reader with %v", name, gerr, werr)
	}
	if werr == nil && gh != wh {
		t.Fatalf("%s: header %+v, want %+v", name, gh, wh)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: read-ahead gave %d records, plain reader %d", name, len(got), len(want))
	}
	for i := range want {
		sameRecord(t, i, got[i], want[i])
	}
}

func TestReadAheadNative(t *testing.T) {
	recs := sampleRecords(3000, 21) // 1300 writes of up to 128 KiB: many batch buffers
	b := writeLog(t, recs, 100)
	_, got, err := readAllAhead(t, b)
	if err != nil || len(got) != len(recs) {
		t.Fatalf("%d records of %d, %v", len(got), len(recs), err)
	}
	for i := range recs {
		sameRecord(t, i, got[i], recs[i])
	}
	// The raw (uncompressed) stream too.
	sameAsPlain(t, "raw", rawLog(t, b))
}

// Records larger than a batch buffer, and runs of records with no payload.
func TestReadAheadLargeAndEmpty(t *testing.T) {
	big := make([]byte, readAheadBuf+readAheadBuf/2+512)
	for i := range big {
		big[i] = byte(i/4096 + i)
	}
	var recs []Record
	for i := 0; i < 3; i++ {
		recs = append(recs, Record{Type: TypeWrite, Sector: uint64(i), Length: uint32(len(big)), Data: big})
		for j := 0; j < readAheadBuf/recHeaderSize+1000; j++ { // more than a buffer of headers
			recs = append(recs, Record{Type: TypeFlush})
		}
		recs = append(recs, Record{Type: TypeWrite, Sector: 9, Length: 512, Data: big[512*i : 512*(i+1)]})
	}
	sameAsPlain(t, "large", writeLog(t, recs, 1000))
}

// A native log of same-sized records is decoded into two buffers in turn once they have grown
// to size: the batch goes to the consumer before the next buffer is taken, which is then the one
// it gave back.
func TestReadAheadTwoBuffers(t *testing.T) {
	var recs []Record
	counters := make([]byte, 8*200+1<<20)
	for i := range 200 {
		binary.LittleEndian.PutUint64(counters[8*i:], uint64(i)+1)
		recs = append(recs, Record{Type: TypeWrite, Sector: uint64(i) << 12, Length: 1 << 20, Data: counters[8*i : 8*i+1<<20]})
	}
	for _, format := range []string{"native", "dm-log-writes"} {
		t.Run(format, func(t *testing.T) {
			b := writeDMLog(t, recs)
			if format == "native" {
				b = writeLog(t, recs, 10)
			}
			ra := readAheadOn(t, b)
			_, got, err := drain(ra, func(n int, _ *Record) {
				if n%7 == 0 {
					time.Sleep(100 * time.Microsecond) // a consumer slower than the decoder, at times
				}
			})
			if err != nil || len(got) != len(recs) {
				t.Fatalf("%d records of %d, %v", len(got), len(recs), err)
			}
			for i := range recs {
				sameRecord(t, i, got[i], recs[i])
			}
			<-ra.done
			// Those made while the size grows to hold four records, then the second of the
			// final size: 4 here for the native log, 3 for the dm-log-writes one, in every run;
			// taking the next buffer before handing the batch over made a fifth.
			if ra.made > 4 {
				t.Errorf("%d buffers made for 200 MiB of records of 1 MiB, want at most 4", ra.made)
			}
		})
	}
}

// A phase of large writes grows the buffers; a long phase of small ones after it brings them
// back down, and the large buffers held for the first phase are let go.
func TestReadAheadShrinks(t *testing.T) {
	for _, format := range []string{"native", "dm-log-writes"} {
		t.Run(format, func(t *testing.T) {
			payload := func(n, seed int) []byte {
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(i/512 + seed)
				}
				return p
			}
			var recs []Record
			for i := range 6 { // two larger than readAheadBuf: a big buffer
				n := 2 << 20
				if i%3 == 2 {
					n = readAheadBuf + 1<<20
				}
				recs = append(recs, Record{Type: TypeWrite, Sector: uint64(i) << 16, Length: uint32(n), Data: payload(n, i)})
			}
			// Enough small writes for readAheadCalm batches at each size from readAheadBuf down
			// to readAheadMinBuf (a batch is a buffer, which may be a recycled one up to twice
			// the size), with a margin. Their payloads are overlapping windows of one buffer of
			// counters, so that each differs from the next without 256 MiB of test data.
			n := readAheadCalm * 4 * readAheadBuf / (64 << 10)
			counters := make([]byte, 8*n+64<<10)
			for i := range n {
				binary.LittleEndian.PutUint64(counters[8*i:], uint64(i)+1)
			}
			for i := range n {
				recs = append(recs, Record{Type: TypeWrite, Sector: uint64(i) << 7, Length: 64 << 10, Data: counters[8*i : 8*i+64<<10]})
			}
			b := writeDMLog(t, recs)
			if format == "native" {
				b = writeLog(t, recs, 64)
			}
			ra := readAheadOn(t, b)
			_, got, err := drain(ra, nil)
			if err != nil || len(got) != len(recs) {
				t.Fatalf("%d records of %d, %v", len(got), len(recs), err)
			}
			for i := range recs {
				sameRecord(t, i, got[i], recs[i])
			}
			<-ra.done // the producer has stopped: its fields are the test's to read
			if ra.size != readAheadMinBuf {
				t.Errorf("buffer size %d after the small writes, want %d", ra.size, readAheadMinBuf)
			}
			if len(ra.big) != 0 {
				t.Errorf("%d buffers for large records still held", len(ra.big))
			}
		})
	}
}

// Damage ends the read-ahead where it ends the plain reader, with the same error, in both
// formats, compressed or not.
func TestReadAheadDamage(t *testing.T) {
	enc, _ := zstd.NewWriter(nil)
	dm := writeDMLog(t, dmRecords())
	for name, b := range map[string][]byte{
		"native":            writeLog(t, sampleRecords(400, 22), 10),
		"dm-log-writes":     dm,
		"dm-log-writes.zst": enc.EncodeAll(dm, nil),
	} {
		for i := 1; i < 20; i++ {
			sameAsPlain(t, fmt.Sprintf("%s cut %d", name, i), b[:i*len(b)/20])
		}
		c := bytes.Clone(b)
		c[len(c)/2] ^= 0x55
		sameAsPlain(t, name+" flip", c)
		_, _, err := readAllAhead(t, b[:len(b)/2])
		var de *DamageError
		if !errors.As(err, &de) {
			t.Fatalf("%s truncated: %v, want a *DamageError", name, err)
		}
	}
}

// A dm-log-writes log is read in place from its window, as a native log is.
func TestReadAheadDMLog(t *testing.T) {
	raw := writeDMLog(t, dmRecords())
	enc, _ := zstd.NewWriter(nil)
	sameAsPlain(t, "dm-log-writes", raw)
	sameAsPlain(t, "dm-log-writes.zst", enc.EncodeAll(raw, nil))
	sameAsPlain(t, "dm-log-writes cut", raw[:len(raw)*2/3])
}

// opaque hides a Reader's type, so that ReadAhead takes the copying path (the one of the
// other readers: tee, QEMU trace, a partition's part of a log).
type opaque struct{ Reader }

// Readers other than the two log formats' own have their payloads copied into the batches.
func TestReadAheadCopying(t *testing.T) {
	enc, _ := zstd.NewWriter(nil)
	for name, b := range map[string][]byte{
		"native":            writeLog(t, sampleRecords(3000, 25), 100),
		"dm-log-writes.zst": enc.EncodeAll(writeDMLog(t, dmRecords()), nil),
	} {
		_, want, werr := readAll(t, b)
		pr, err := NewReader(bytes.NewReader(b), "mem.log")
		if err != nil {
			t.Fatal(err)
		}
		r := ReadAhead(opaque{pr})
		_, got, gerr := drain(r, func(n int, rec *Record) {
			if len(rec.Data) > 0 && n%97 == 0 {
				time.Sleep(time.Millisecond) // let the producer run ahead: reused buffers show
			}
		})
		r.Close()
		if werr != nil || gerr != nil || len(got) != len(want) {
			t.Fatalf("%s: read-ahead %d records, %v; plain %d, %v", name, len(got), gerr, len(want), werr)
		}
		for i := range want {
			sameRecord(t, i, got[i], want[i])
		}
	}
}

// Close before the end stops the producer and closes the file.
func TestReadAheadCloseEarly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log.zst")
	if err := os.WriteFile(path, writeLog(t, sampleRecords(2000, 23), 50), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 500} {
		fr, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r := ReadAhead(fr)
		for i := 0; i < n; i++ {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatalf("close after %d records: %v", n, err)
		}
		if _, err := r.Next(); err == nil || err == io.EOF {
			t.Fatalf("Next after Close: %v, want an error", err)
		}
		if _, err := fr.(*fileReader).f.Stat(); err == nil {
			t.Fatal("Close left the file open")
		}
	}
}

// The zstd frame checksum is skipped for native logs only: their records
// carry CRC-32Cs. A dm-log-writes log has nothing else.
func TestFrameChecksum(t *testing.T) {
	recs := sampleRecords(100, 24)
	b := writeLog(t, recs, 0)
	b[len(b)-1] ^= 0xff // the last frame's XXH64, not its content
	if _, got, err := readAll(t, b); err != nil || len(got) != len(recs) {
		t.Fatalf("native log with a wrong frame checksum: %d records of %d, %v", len(got), len(recs), err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	dm := enc.EncodeAll(writeDMLog(t, dmRecords()), nil)
	dm[len(dm)-1] ^= 0xff
	if _, _, err := readAll(t, dm); err == nil {
		t.Fatal("dm-log-writes log with a wrong frame checksum read without error")
	}
}

// dm-log-writes entries are read in place from the window's buffers: writes with a preflush
// (the flush comes out first, the write's payload already read) across many batch and buffer
// boundaries, and payloads larger than the first buffers, all come out as the plain reader's.
func TestReadAheadDMLogPlaced(t *testing.T) {
	var buf bytes.Buffer
	sb := make([]byte, SectorSize)
	binary.LittleEndian.PutUint64(sb[0:], DMLogMagic)
	binary.LittleEndian.PutUint64(sb[8:], DMLogVersion)
	binary.LittleEndian.PutUint32(sb[24:], SectorSize)
	entries := 0
	entry := func(sector, nr, flags uint64, fill byte) {
		e := make([]byte, SectorSize)
		binary.LittleEndian.PutUint64(e[0:], sector)
		binary.LittleEndian.PutUint64(e[8:], nr)
		binary.LittleEndian.PutUint64(e[16:], flags)
		buf.Write(e)
		for i := uint64(0); i < nr*SectorSize; i++ {
			buf.WriteByte(fill + byte(i/SectorSize))
		}
		entries++
	}
	for i := 0; i < 3000; i++ {
		switch {
		case i%7 == 3:
			entry(uint64(i), uint64(1+i%64), DMLogFlush, byte(i)) // a write with a preflush
		case i%500 == 499:
			entry(uint64(i), 3<<20/SectorSize, 0, byte(i)) // larger than the first buffers
		case i%5 == 0:
			entry(0, 0, DMLogFlush, 0)
		default:
			entry(uint64(i), uint64(1+i%200), DMLogFUA, byte(i))
		}
	}
	binary.LittleEndian.PutUint64(sb[16:], uint64(entries))
	raw := append(sb, buf.Bytes()...)
	sameAsPlain(t, "dm-log-writes with preflushes", raw)
	enc, _ := zstd.NewWriter(nil)
	sameAsPlain(t, "dm-log-writes.zst with preflushes", enc.EncodeAll(raw, nil))

	// Whatever the timing, every record of a batch points into that batch's own buffers:
	// a payload in a buffer handed over with an earlier batch would be overwritten once
	// the consumer releases that batch.
	pr, err := NewReader(bytes.NewReader(raw), "mem.log")
	if err != nil {
		t.Fatal(err)
	}
	ra := ReadAhead(pr).(*readAhead)
	defer ra.Close()
	for n := 0; ; n++ {
		b, ok := <-ra.out
		if !ok {
			t.Fatal("producer ended without an error")
		}
		for i, rec := range b.recs {
			if len(rec.Data) > 0 && !within(rec.Data, b.bufs) {
				t.Fatalf("batch %d, record %d (%v, %d bytes): payload outside the batch's buffers", n, i, rec.Type, len(rec.Data))
			}
		}
		if b.err != nil {
			if b.err != io.EOF {
				t.Fatal(b.err)
			}
			break
		}
		ra.release(b)
	}
}

// within reports whether p lies inside one of bufs.
func within(p []byte, bufs [][]byte) bool {
	a := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	for _, b := range bufs {
		s := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		if a >= s && a+uintptr(len(p)) <= s+uintptr(cap(b)) {
			return true
		}
	}
	return false
}
