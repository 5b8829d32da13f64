package blklog

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

// parFramesStreams are zstd streams whose frames take every path of parFrames: frames of raw
// blocks only (random bytes), frames compressed a little (random picks of random tokens: decoded
// by the workers) and much (zeros: decoded inline), frames that begin raw and go on compressed
// (served raw, then decoded skipping what was served) and the other way round (the first block
// decoded by the splitter, the rest served raw), and the streams of rawFramesStreams
// (with a skippable frame: the tail; and as the zstd program writes them). Its own frames are
// written as the log writer writes its own: by a streaming encoder, without a content size.
func parFramesStreams(t testing.TB, scale int) map[string][]byte {
	t.Helper()
	out := rawFramesStreams(t, scale)
	rng := rand.New(rand.NewPCG(uint64(scale), 11))
	k := scale << 10
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(FrameBytes))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{
		randomBytes(rng, 700*k),
		tokens(rng, 500*k), // decoded inline: workers take a frame only after one they could take
		tokens(rng, 300*k),
		tokens(rng, 200*k),
		make([]byte, 300*k),
		bytes.Join([][]byte{randomBytes(rng, 300*k), tokens(rng, 200*k)}, nil),
		tokens(rng, 400*k),
		bytes.Join([][]byte{tokens(rng, 60*k), randomBytes(rng, 400*k)}, nil), // compressed, then raw
		randomBytes(rng, 64*k+3),
		randomBytes(rng, 129*k),
	} {
		enc.Reset(&buf)
		if _, err := enc.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	out["every kind"] = buf.Bytes()
	out["small raw blocks"] = smallRawBlocks(randomBytes(rng, 40*k+7), 100)
	return out
}

// smallRawBlocks is a frame of p in raw blocks of n bytes, as no encoder writes it: more of them in
// a chunk of the raw frames' reading than a piece holds.
func smallRawBlocks(p []byte, n int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x30} // no content size, a 64 KiB window
	for len(p) > 0 || n > 0 {
		k := min(n, len(p))
		last := 0
		if k == len(p) {
			last, n = 1, 0
		}
		v := uint32(k)<<3 | uint32(last) // Raw_Block
		b = append(b, byte(v), byte(v>>8), byte(v>>16))
		b, p = append(b, p[:k]...), p[k:]
	}
	return b
}

// tokens is n bytes of random picks among 512 random 12-byte tokens: zstd compresses them about
// 3 to 1, as the payload of a real guest's copy.
func tokens(rng *rand.Rand, n int) []byte {
	words := randomBytes(rng, 512*12)
	b := make([]byte, 0, n+12)
	for len(b) < n {
		i := rng.IntN(512) * 12
		b = append(b, words[i:i+12]...)
	}
	return b[:n]
}

// decodeParFrames reads the file at path through parFrames, lending units of 4 KiB and reading
// pieces of odd sizes in turn: the content, the bytes lent, the error it ended with, and the
// parFrames (closed) for its counts.
func decodeParFrames(t testing.TB, path string) (out []byte, lent int, p *parFrames, err error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var counted int64 // only from this goroutine: the consumer's
	p = newParFrames(f, 0, st.Size(), func(n int64) { counted += n }, []zstd.DOption{zstd.IgnoreChecksum(true)})
	defer p.Close()
	out, _, lent, err = drainLending(t, p, true)
	if err == nil && counted != st.Size() {
		t.Fatalf("%d bytes of %d counted at the end", counted, st.Size())
	}
	return out, lent, p, err
}

// checkParFrames fails unless parFrames reads stream b as the Go decoder does (the frames'
// checksums not checked, as for a native log): the same content, then the same error.
func checkParFrames(t testing.TB, what string, b []byte) (int, *parFrames) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stream.zst")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want, werr := decodePlain(b, false)
	got, lent, p, gerr := decodeParFrames(t, path)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) || !bytes.Equal(got, want) {
		n := 0
		for n < min(len(got), len(want)) && got[n] == want[n] {
			n++
		}
		t.Fatalf("%s: %d bytes then %v; the decoder gives %d then %v (first difference at %d)", what, len(got), gerr, len(want), werr, n)
	}
	return lent, p
}

// TestParFrames: every stream, whole, cut at many points and with bytes flipped, reads as the Go
// decoder reads it; the whole streams' frames take every path, and their raw blocks and the
// content decoded by the workers are lent, not copied.
func TestParFrames(t *testing.T) {
	var kinds [frameTail + 1]int
	var skipped int64
	firsts := 0
	for name, b := range parFramesStreams(t, 1) {
		lent, p := checkParFrames(t, name, b)
		t.Logf("%s: %d bytes, %d of its content lent, frames by kind %v", name, len(b), lent, p.kinds)
		for k, n := range p.kinds {
			kinds[k] += n
		}
		skipped += p.skipped
		firsts += p.firsts
		if name == "every kind" && lent < 1<<20 {
			t.Errorf("%s: only %d bytes lent", name, lent)
		}
		// Of its four frames compressed a little, three in a row and one alone, the workers take
		// the second and third: a frame goes to them only after one that could have.
		if name == "every kind" && p.kinds[frameParallel] != 2 {
			t.Errorf("%s: %d frames decoded by the workers, want 2", name, p.kinds[frameParallel])
		}
		rng := rand.New(rand.NewPCG(uint64(len(b)), 3))
		for i := 0; i < 24; i++ {
			cut := rng.IntN(len(b))
			if i < 4 {
				cut = i // the first bytes: no frame header, or part of one
			}
			checkParFrames(t, fmt.Sprintf("%s cut at %d", name, cut), b[:cut])
			c := bytes.Clone(b)
			at := rng.IntN(len(c))
			if i%3 == 0 {
				at = rng.IntN(min(len(c), 64)) // the first frame's header and first block header
			}
			c[at] ^= byte(1 << rng.IntN(8))
			checkParFrames(t, fmt.Sprintf("%s flip at %d", name, at), c)
		}
	}
	for k, n := range kinds {
		if n == 0 {
			t.Errorf("no frame of kind %d in the whole streams (%v)", k, kinds)
		}
	}
	if skipped == 0 {
		t.Error("no frame began raw and went on compressed")
	}
	if firsts == 0 {
		t.Error("no frame began with a compressed block and went on raw")
	}
}

// FuzzParFrames: parFrames reads any input as the Go decoder does.
func FuzzParFrames(f *testing.F) {
	for _, b := range parFramesStreams(f, 0) {
		f.Add(b)
	}
	small := parFramesStreams(f, 1)["every kind"]
	f.Add(small[:len(small)/3])
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParFrames(t, "fuzz", b)
	})
}

// Close returns at any point of the reading, with the workers and the splitter waiting for the
// consumer: nothing is left running.
func TestParFramesClose(t *testing.T) {
	b := parFramesStreams(t, 4)["every kind"]
	path := filepath.Join(t.TempDir(), "stream.zst")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, after := range []int{0, 1, 100 << 10, 1 << 20, 3 << 20} {
		p := newParFrames(f, 0, int64(len(b)), nil, nil)
		if _, err := io.CopyN(io.Discard, p, int64(after)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // the workers fill what they may
		done := make(chan struct{})
		go func() { p.Close(); p.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Close after %d bytes does not return", after)
		}
	}
}

// A native log of incompressible payloads read from a file, filtered (its raw blocks lent to
// the filter) gives the records of the plain reader in memory, whole, cut and damaged.
func TestParFramesLog(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var recs []Record
	for i := 0; i < 120; i++ {
		r := Record{Type: TypeWrite, Sector: uint64(i*256 + 8*(i%3)), Flags: FlagHasTime, TimeNS: int64(i)}
		r.Length = uint32(4096 * (1 + i%40))
		r.Data = make([]byte, r.Length)
		tok := i%4 == 1 || i >= 40 && i < 80 // compressed a little: frames decoded by the workers
		if tok {
			r.Data = tokens(rng, len(r.Data))
		}
		for j := range r.Data {
			if !tok {
				r.Data[j] = byte(rng.Uint32())
			}
		}
		for u := 0; u < len(r.Data); u += 4096 * (1 + i%3) {
			r.Data[u] = 0xAA // units the test filter skips
		}
		recs = append(recs, r)
	}
	b := writeLog(t, recs, 7)
	path := filepath.Join(t.TempDir(), "io.log.zst")
	for i := 0; i < 16; i++ {
		c, what := b, "whole"
		if i > 0 {
			c = bytes.Clone(b)
			if i%2 == 0 {
				c, what = c[:rng.IntN(len(c))], fmt.Sprintf("cut at %d", len(c))
			} else {
				at := rng.IntN(len(c))
				c[at] ^= 0x10
				what = fmt.Sprintf("flip at %d", at)
			}
		}
		_, want, werr := readAll(t, c)
		if err := os.WriteFile(path, c, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			if strings.ReplaceAll(fmt.Sprint(err), path, "mem.log") != fmt.Sprint(werr) {
				t.Fatalf("%s: open: %v; in memory: %v", what, err, werr)
			}
			continue
		}
		nr, ok := r.(*fileReader).Reader.(*nativeReader)
		if !ok || nr.par == nil {
			t.Fatalf("%s: the log file is not read through parFrames", what)
		}
		n, gerr := readFilteredFrom(t, what, r, want, testFilter(4096, 8192))
		if strings.ReplaceAll(fmt.Sprint(gerr), path, "mem.log") != fmt.Sprint(werr) {
			t.Fatalf("%s: filtered read from the file ends with %v, in memory with %v", what, gerr, werr)
		}
		if i == 0 && (n == 0 || nr.par.kinds[frameRaw] == 0 || nr.par.kinds[frameParallel] == 0) {
			t.Fatalf("%d units left out, frames by kind %v: the test misses its point", n, nr.par.kinds)
		}
	}
}

// Every committed fixture log (real captures) reads from its file through parFrames as from
// memory.
func TestParFramesFixtures(t *testing.T) {
	paths, _ := filepath.Glob("../../fixtures/real/*/io.log.zst")
	if len(paths) == 0 {
		t.Skip("no fixtures")
	}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, want, werr := readAll(t, b)
		r, err := Open(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if nr, ok := r.(*fileReader).Reader.(*nativeReader); !ok || nr.par == nil {
			t.Fatalf("%s: not read through parFrames", path)
		}
		_, got, gerr := drain(r, nil)
		r.Close()
		if strings.ReplaceAll(fmt.Sprint(gerr), path, "mem.log") != fmt.Sprint(werr) || len(got) != len(want) {
			t.Fatalf("%s: %d records then %v; in memory %d then %v", path, len(got), gerr, len(want), werr)
		}
		for i := range want {
			sameRecord(t, i, got[i], want[i])
		}
	}
}

// A native log compressed again as one frame larger than the writer's is left to rawFrames
// (writerFrames); a log cut in its first frame is not.
func TestParFramesNotWriterFrames(t *testing.T) {
	dir := t.TempDir()
	// One frame of raw blocks larger than any of the writer's: only its headers are written (a
	// sparse file), which is all writerFrames reads.
	big, err := os.Create(filepath.Join(dir, "big.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if _, err := big.Write([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58}); err != nil { // 16 MiB window
		t.Fatal(err)
	}
	pos := int64(6)
	for pos < parMaxFrame+1<<20 {
		v := uint32(128<<10) << 3 // a raw block, not the last
		if _, err := big.WriteAt([]byte{byte(v), byte(v >> 8), byte(v >> 16)}, pos); err != nil {
			t.Fatal(err)
		}
		pos += 3 + 128<<10
	}
	if writerFrames(big, 0, pos) {
		t.Error("a first frame of more than parMaxFrame bytes taken for the writer's")
	}
	if !writerFrames(big, 0, 1<<20) {
		t.Error("a first frame cut by the file's end not taken for the writer's")
	}

}

// BenchmarkParFrames reads three streams through parFrames, lending what it lends, against the Go
// decoder's plain streaming of the same file (the reference, in the same run): frames of every
// kind (parFramesStreams at 16 times the tests' size, 30 MB of content), 16 frames of 4 MiB
// compressed about 3 to 1, as a real guest's copy is (the workers' case), and 10,000 frames of a
// few hundred bytes (decoded inline, back to back).
func BenchmarkParFrames(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	var entropy bytes.Buffer
	enc, err := zstd.NewWriter(&entropy, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(FrameBytes))
	if err != nil {
		b.Fatal(err)
	}
	for range 16 {
		enc.Reset(&entropy)
		if _, err := enc.Write(tokens(rng, FrameBytes)); err != nil {
			b.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			b.Fatal(err)
		}
	}
	// A log flushed every other record, as a guest that syncs often writes it: frames of a few
	// hundred bytes.
	var recs []Record
	data := make([]byte, 4096)
	for i := range 20000 {
		data[i%len(data)] = byte(i)
		recs = append(recs, Record{Type: TypeWrite, Sector: uint64(i%1000) * 8, Length: 4096, Data: bytes.Clone(data)})
	}
	small := writeLog(b, recs, 2)
	for _, c := range []struct {
		name string
		s    []byte
	}{{"every-kind", parFramesStreams(b, 16)["every kind"]}, {"entropy", entropy.Bytes()}, {"small-frames", small}} {
		path := filepath.Join(b.TempDir(), "stream.zst")
		if err := os.WriteFile(path, c.s, 0o644); err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		benchParFrames(b, c.name, f, c.s)
		f.Close()
	}
}

func benchParFrames(b *testing.B, name string, f *os.File, s []byte) {
	want, err := decodePlain(s, false)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	b.Run(name+"/go-decoder", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(want)))
		for range b.N {
			// Through a buffer, as the sequential reader reads: the decoder reads a few bytes at
			// a time.
			d, err := newZstdReader(bufio.NewReaderSize(io.NewSectionReader(f, 0, int64(len(s))), 256<<10), zstd.IgnoreChecksum(true))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{d}, buf); err != nil {
				b.Fatal(err)
			}
			d.Close()
		}
	})
	b.Run(name+"/parFrames", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(want)))
		for range b.N {
			p := newParFrames(f, 0, int64(len(s)), nil, []zstd.DOption{zstd.IgnoreChecksum(true)})
			_, n, _, err := drainLending(b, p, false)
			if err != nil {
				b.Fatal(err)
			}
			p.Close()
			if n != len(want) {
				b.Fatalf("%d bytes, want %d", n, len(want))
			}
		}
	})
}

// countedAt counts the reads of a file.
type countedAt struct {
	f     io.ReaderAt
	reads atomic.Int64
}

func (c *countedAt) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	return c.f.ReadAt(p, off)
}

// A log flushed every other record is frames of a few hundred bytes: their headers are read
// through the splitter's buffer, not a read or three each, and the consumer decodes them back to
// back as a few jobs, not one a frame.
func TestParFramesSmallFrames(t *testing.T) {
	var recs []Record
	data := make([]byte, 4096)
	for i := range 2000 {
		data[i%len(data)] = byte(i)
		recs = append(recs, Record{Type: TypeWrite, Sector: uint64(i%1000) * 8, Length: 4096, Data: bytes.Clone(data)})
	}
	b := writeLog(t, recs, 2)
	frames := 0
	for off := 0; off < len(b); frames++ {
		h, ok := zstdframe.ParseHeader(b[off:])
		if !ok {
			t.Fatalf("no frame at %d", off)
		}
		off += h.Len
		for {
			blk := zstdframe.ParseBlock([3]byte(b[off : off+3]))
			off += 3 + blk.Body()
			if blk.Last {
				break
			}
		}
		if h.Checksum() {
			off += 4
		}
	}
	path := filepath.Join(t.TempDir(), "small.zst")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &countedAt{f: f}
	p := newParFrames(c, 0, int64(len(b)), nil, []zstd.DOption{zstd.IgnoreChecksum(true)})
	got, _, _, err := drainLending(t, p, true)
	p.Close()
	want, werr := decodePlain(b, false)
	if err != nil || werr != nil || !bytes.Equal(got, want) {
		t.Fatalf("%d bytes then %v; the decoder gives %d then %v", len(got), err, len(want), werr)
	}
	jobs := p.kinds[frameInline] + p.kinds[frameRaw] + p.kinds[frameParallel]
	t.Logf("%d frames of %d bytes on average: %d reads, %d jobs (%v)", frames, len(b)/frames, c.reads.Load(), jobs, p.kinds)
	if frames < 900 || c.reads.Load() > int64(frames/4) || jobs > frames/20 {
		t.Fatalf("%d frames: %d reads of the file, %d jobs", frames, c.reads.Load(), jobs)
	}
}
