package blklog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/klauspost/compress/zstd"
)

// hidden hides a reader's Len, so that newReader reads it ahead as it does a file.
type hidden struct{ io.Reader }

// The bytes and the final error come through unchanged, whatever the source's reads look like.
func TestPrefetchBytes(t *testing.T) {
	content := make([]byte, 3*prefetchChunk+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	sources := map[string]func() io.Reader{
		"whole":    func() io.Reader { return hidden{bytes.NewReader(content)} },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(content[:100_000])) },
		"halves":   func() io.Reader { return iotest.HalfReader(bytes.NewReader(content)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(content)) },
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			want, _ := io.ReadAll(src())
			p := prefetch(src())
			defer p.close()
			if err := iotest.TestReader(p, want); err != nil {
				t.Fatal(err)
			}
		})
	}
	broken := errors.New("disk on fire")
	p := prefetch(io.MultiReader(hidden{bytes.NewReader(content)}, iotest.ErrReader(broken)))
	defer p.close()
	got, err := io.ReadAll(p)
	if !errors.Is(err, broken) || !bytes.Equal(got, content) {
		t.Fatalf("%d bytes then %v; want %d bytes then %v", len(got), err, len(content), broken)
	}
	if n, err := p.Read(make([]byte, 10)); n != 0 || !errors.Is(err, broken) {
		t.Fatalf("read after the error: %d, %v; want it again", n, err)
	}
	q := prefetch(hidden{bytes.NewReader(content)})
	q.close()
	q.close()
	if _, err := io.ReadAll(q); err == nil {
		t.Fatal("read after close: no error")
	}
}

// A regular file, read by two goroutines at offsets, comes through whole and in order, from the
// file's offset at the start, whatever its size against the chunks.
func TestPrefetchFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	content := make([]byte, 4*prefetchChunk+1)
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "f")
	for _, size := range []int{0, 1, prefetchChunk - 1, prefetchChunk, prefetchChunk + 1, 2 * prefetchChunk,
		3*prefetchChunk + 12345, 4 * prefetchChunk, 4*prefetchChunk + 1} {
		for _, skip := range []int64{0, 1000} {
			for _, counted := range []bool{false, true} {
				if err := os.WriteFile(path, content[:size], 0o644); err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.Seek(skip, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				var src io.Reader = f
				var n atomic.Int64
				if counted {
					src = &CountedFile{File: f, Count: func(k int64) { n.Add(k) }}
				}
				p := prefetch(src)
				if p.readers != prefetchReaders {
					t.Fatalf("a regular file (counted %v) read by %d goroutines", counted, p.readers)
				}
				want := content[min(int(skip), size):size]
				if err := iotest.TestReader(p, want); err != nil {
					t.Fatalf("size %d from %d: %v", size, skip, err)
				}
				// Every chunk is counted before it is handed over, and all were read.
				if counted && n.Load() != int64(len(want)) {
					t.Errorf("size %d from %d: %d bytes counted, %d read", size, skip, n.Load(), len(want))
				}
				p.close()
				f.Close()
			}
		}
	}
}

// A log read from a file (read ahead) gives what the same bytes in memory give, whole or cut,
// through the plain reader and through ReadAhead, for both formats.
func TestPrefetchedLogs(t *testing.T) {
	logs := map[string][]byte{
		"native":        writeLog(t, sampleRecords(2000, 31), 50),
		"dm-log-writes": writeDMLog(t, dmRecords()),
	}
	logs["native raw"] = rawLog(t, logs["native"])
	dir := t.TempDir()
	for name, b := range logs {
		for _, cut := range []int{len(b), len(b) * 2 / 3, len(b) / 7} {
			c := b[:cut]
			path := filepath.Join(dir, "log")
			if err := os.WriteFile(path, c, 0o644); err != nil {
				t.Fatal(err)
			}
			var want []Record
			mr, werr := NewReader(bytes.NewReader(c), path)
			if werr == nil {
				_, want, werr = drain(mr, nil)
				mr.Close()
			}
			for _, ahead := range []bool{false, true} {
				what := fmt.Sprintf("%s cut at %d of %d, read-ahead %v", name, cut, len(b), ahead)
				r, err := Open(path)
				if err != nil {
					if werr == nil || fmt.Sprint(err) != fmt.Sprint(werr) {
						t.Fatalf("%s: open: %v; in memory: %v", what, err, werr)
					}
					continue
				}
				if ahead {
					r = ReadAhead(r)
				}
				_, got, gerr := drain(r, nil)
				r.Close()
				if fmt.Sprint(gerr) != fmt.Sprint(werr) || len(got) != len(want) {
					t.Fatalf("%s: %d records then %v; in memory %d then %v", what, len(got), gerr, len(want), werr)
				}
				for i := range want {
					sameRecord(t, i, got[i], want[i])
				}
			}
		}
	}
}

// rawLog is the decompressed stream of a native log.
func rawLog(t *testing.T, b []byte) []byte {
	t.Helper()
	d, err := newZstdReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	raw, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A CountedFile that is no regular file (a pipe) is read as a pipe is, each read counted.
func TestPrefetchCountedPipe(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	content := bytes.Repeat([]byte("counted "), 300000)
	go func() {
		_, _ = pw.Write(content)
		pw.Close()
	}()
	var n atomic.Int64
	p := prefetch(&CountedFile{File: pr, Count: func(k int64) { n.Add(k) }})
	defer p.close()
	if p.readers != 1 {
		t.Fatalf("a pipe read by %d goroutines", p.readers)
	}
	got, err := io.ReadAll(p)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(content))
	}
	if n.Load() != int64(len(content)) {
		t.Errorf("%d bytes counted, %d read", n.Load(), len(content))
	}
}

// A log stored uncompressed is lent from the prefetcher's chunks: lend gives the stream's bytes
// in order, in place (inside the chunk they were read into), whole units only, and nil where
// less than a unit is left in a chunk, which a read by copy gets past.
func TestPrefetchedLend(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	content := make([]byte, 3*prefetchChunk+777)
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	pre := prefetchedFile(t, content)
	in := pre.input(nil)
	got := make([]byte, 100, len(content))
	if _, err := io.ReadFull(in, got); err != nil { // units no longer aligned with the chunks
		t.Fatal(err)
	}
	var lent, gaps int
	for len(got) < len(content) {
		s := in.lend(48<<10, 4096)
		if s == nil {
			gaps++
			u := make([]byte, min(4096, len(content)-len(got)))
			if _, err := io.ReadFull(in, u); err != nil {
				t.Fatal(err)
			}
			got = append(got, u...)
			continue
		}
		if len(s)%4096 != 0 || len(s) > 48<<10 {
			t.Fatalf("lent %d bytes, want whole units of 4096, at most 48 KiB", len(s))
		}
		buf := pre.buf[:cap(pre.buf)]
		if at := uintptr(unsafe.Pointer(&s[0])) - uintptr(unsafe.Pointer(&buf[0])); at >= uintptr(len(buf)) {
			t.Fatal("lent bytes are not in the chunk they were read into")
		}
		lent += len(s)
		got = append(got, s...)
	}
	if !bytes.Equal(got, content) {
		t.Fatal("the bytes lent and read are not the file's")
	}
	if !in.lending() || lent < len(content)*9/10 || gaps == 0 || gaps > 4 {
		t.Fatalf("%d bytes lent, %d gaps at chunk ends (4 chunks)", lent, gaps)
	}
}

// Logs stored uncompressed, native and dm-log-writes, read from their files with a payload
// filter (units lent in place) give the records read from memory, whole, cut and damaged.
func TestPrefetchedLogsFiltered(t *testing.T) {
	recs := omitRecords(150, 12)
	enc, _ := zstd.NewWriter(nil)
	logs := map[string][]byte{
		"native raw":    rawLog(t, writeLog(t, recs, 5)),
		"dm-log-writes": writeDMLog(t, recs),
		// Compressed whole (one frame), as `zstd writes.lwlog` leaves it.
		"dm-log-writes.zst": enc.EncodeAll(writeDMLog(t, recs), nil),
	}
	path := filepath.Join(t.TempDir(), "log")
	for name, b := range logs {
		for i, cut := range []int{len(b), len(b) * 2 / 3, len(b)/5 + 3, -1} {
			c, what := b, fmt.Sprintf("%s whole", name)
			switch {
			case cut < 0:
				c = bytes.Clone(b)
				c[len(c)/2] ^= 0x20
				what = fmt.Sprintf("%s flipped at %d", name, len(c)/2)
			case i > 0:
				c, what = b[:cut], fmt.Sprintf("%s cut at %d", name, cut)
			}
			_, want, werr := readAll(t, c)
			if err := os.WriteFile(path, c, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			n, gerr := readFilteredFrom(t, what, r, want, testFilter(4096, 8192))
			if strings.ReplaceAll(fmt.Sprint(gerr), path, "mem.log") != fmt.Sprint(werr) {
				t.Fatalf("%s: filtered read from the file ends with %v, in memory with %v", what, gerr, werr)
			}
			if i == 0 && n <= 0 {
				t.Fatalf("%s: nothing left out (%d)", what, n)
			}
		}
	}
}

// prefetchedFile writes b to a file and reads it ahead, both gone when t ends.
func prefetchedFile(t *testing.T, b []byte) *prefetcher {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pre := prefetch(f)
	t.Cleanup(func() { pre.close(); f.Close() })
	return pre
}
