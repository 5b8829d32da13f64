package blklog

import (
	"bufio"
	"io"
	"os"
	"sync"

	"github.com/ext3replay/ext3replay/internal/hugebuf"
)

// prefetcher reads a log's bytes on its own goroutine, up to prefetchChunks chunks of
// prefetchChunk bytes ahead of the decoder, as the zstd program does with its asynchronous
// I/O. The kernel's copy of a log file into memory is a third to a half of what `zstd -dc`
// takes on a 1 GiB log stored raw (its system time); without this it ran on the decoding
// goroutine, in turn with decoding, and now it runs beside it. analyze of the 1 GiB
// random-payload capture went from 0.53 to 0.45 s (medians of 15 alternating runs, 2026-12-02;
// zstd -dc 0.34 s); where decoding alone bounds the run (a 3 MB log of 1 GiB, a 400 MB one of
// real data) it changed nothing.
//
// Each Read of the source is passed on as it returns, so a pipe fed live is not held back until
// a chunk fills. close stops the goroutines at their next step; it does not close the source, nor
// wait for a Read of it in progress (the caller closes the file after).
//
// A regular file is read by two goroutines, chunk by chunk in turn at their offsets (pread):
// with the payload filter reading incompressible blocks in place (rawframes.go), the kernel's
// copy of the file into memory became what the decoding goroutine waits for while a guest's
// large copy lasts (an execution trace of the bench's `large` case: the decoder blocked in fill
// for longer than it ran), and on 2 cores the other core has room for half of it. analyze of
// `large` 0.35 -> 0.32 s (medians of 11 alternating runs, 2026-12-03; zstd -dc 0.27 s), the
// other bench logs unchanged.
type prefetcher struct {
	full [prefetchReaders]chan chunk // chunk i comes from full[i%readers]
	free [prefetchReaders]chan []byte
	stop chan struct{}
	once sync.Once

	readers int // 1, or prefetchReaders for a file read at offsets
	next    int // the reader whose chunk comes next

	file        io.ReaderAt // the source as a regular file, or nil
	start, size int64       // its offset when reading began, and its size
	count       func(int64) // a CountedFile's Count, told of every chunk read at offsets

	buf  []byte // the chunk being read, whole, to recycle once consumed
	from int    // the reader it came from
	cur  []byte // its bytes not read yet
	err  error  // sticky: the source's error, after cur
}

// prefetchReaders is the number of goroutines reading a regular file.
const prefetchReaders = 2

// A chunk of 1 MiB keeps the buffers in the caches the decoder reads them from; four let the
// reading run a few milliseconds ahead. They are cut from one buffer of advised huge pages (see
// hugebuf: four plain 1 MiB buffers cost 30-40 ms of page faults here, on every run).
const (
	prefetchChunk  = 1 << 20
	prefetchChunks = 4
)

type chunk struct {
	b   []byte
	err error // the source's error after b
}

// prefetch starts reading r ahead.
func prefetch(r io.Reader) *prefetcher {
	p := &prefetcher{stop: make(chan struct{}), readers: 1}
	p.file, p.start, p.size, p.count = regularFile(r)
	if p.file != nil {
		p.readers = prefetchReaders
	}
	for i := range p.readers {
		p.full[i] = make(chan chunk, prefetchChunks)
		p.free[i] = make(chan []byte, prefetchChunks)
	}
	slab := hugebuf.Slice[byte](prefetchChunks * prefetchChunk) // two whole 2 MiB pages
	for i := range prefetchChunks {
		p.free[i%p.readers] <- slab[i*prefetchChunk : (i+1)*prefetchChunk : (i+1)*prefetchChunk]
	}
	if p.file == nil {
		if f, _ := osFile(r); f != nil {
			widenPipe(f)
		}
		go p.run(r)
		return p
	}
	for i := range p.readers {
		go p.runAt(p.file, p.start+int64(i)*prefetchChunk, i)
	}
	return p
}

// runAt is reader i of a file read at offsets: the chunks at off, off + readers chunks, and so
// on. A chunk short of the file's end carries io.EOF; the consumer stops at the first chunk
// with an error, in file order, whatever the other reader read after it.
func (p *prefetcher) runAt(f io.ReaderAt, off int64, i int) {
	for {
		var b []byte
		select {
		case b = <-p.free[i]:
		case <-p.stop:
			return
		}
		n, err := f.ReadAt(b, off)
		if p.count != nil && n > 0 {
			p.count(int64(n))
		}
		if n == len(b) {
			err = nil // a full chunk: the end, if it is one, is the next chunk's
		}
		select {
		case p.full[i] <- chunk{b[:n], err}:
		case <-p.stop:
			return
		}
		if err != nil {
			return
		}
		off += int64(p.readers * prefetchChunk)
	}
}

// inMemory reports whether r reads from memory (bytes.Reader and the like), where reading ahead
// only adds a copy.
func inMemory(r io.Reader) bool {
	_, ok := r.(interface{ Len() int })
	return ok
}

func (p *prefetcher) run(r io.Reader) {
	for {
		var b []byte
		select {
		case b = <-p.free[0]:
		case <-p.stop:
			return
		}
		n, err := r.Read(b)
		for n == 0 && err == nil {
			n, err = r.Read(b)
		}
		select {
		case p.full[0] <- chunk{b[:n], err}:
		case <-p.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (p *prefetcher) Read(b []byte) (int, error) {
	if len(p.cur) == 0 && len(b) == 0 {
		return 0, nil
	}
	if err := p.fill(); err != nil {
		return 0, err
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// fill makes cur hold at least one byte, recycling the chunk read to its end, unless the source
// ended or failed (its error) or the prefetcher was closed.
func (p *prefetcher) fill() error {
	for len(p.cur) == 0 {
		if p.buf != nil {
			p.free[p.from] <- p.buf[:cap(p.buf)] // never blocks: prefetchChunks buffers at most
			p.buf = nil
		}
		if p.err != nil {
			return p.err
		}
		select {
		case c := <-p.full[p.next]:
			p.buf, p.cur, p.err, p.from = c.b, c.b, c.err, p.next
			p.next = (p.next + 1) % p.readers
		case <-p.stop:
			return io.ErrClosedPipe
		}
	}
	return nil
}

// close stops the reading ahead; safe to call more than once, and on nil.
func (p *prefetcher) close() {
	if p != nil {
		p.once.Do(func() { close(p.stop) })
	}
}

// prefetched reads what br, the format's detection, buffered from a prefetcher, then the
// prefetcher's chunks directly: no second buffer once the detection's peeks are done (a copy of
// every byte saved), and the chunks' bytes can be lent in place (avail, consume).
type prefetched struct {
	br  *bufio.Reader // nil once drained
	pre *prefetcher
	off int64 // the file offset of the next byte (for a regular file)
}

// input is the stream of p after br (nil: nothing was read from p yet), which read from p.
func (p *prefetcher) input(br *bufio.Reader) *prefetched {
	return &prefetched{br: br, pre: p, off: p.start}
}

// avail returns the next bytes in memory, at least one unless the stream ends or fails; they
// stay there until consume moves past them.
func (in *prefetched) avail() ([]byte, error) {
	if in.br != nil {
		if n := in.br.Buffered(); n > 0 {
			p, _ := in.br.Peek(n)
			return p, nil
		}
		in.br = nil
	}
	if err := in.pre.fill(); err != nil {
		return nil, err
	}
	return in.pre.cur, nil
}

// consume moves past n bytes of what avail returned.
func (in *prefetched) consume(n int) {
	if in.br != nil {
		_, _ = in.br.Discard(n)
	} else {
		in.pre.cur = in.pre.cur[n:]
	}
	in.off += int64(n)
}

func (in *prefetched) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	a, err := in.avail()
	if err != nil {
		return 0, err
	}
	n := copy(p, a)
	in.consume(n)
	return n, nil
}

// lend is lender's, for a log stored uncompressed (a window reads it straight from the
// prefetched stream): the next bytes where they lie, in a chunk or in the detection's buffer.
// They stay valid until the next call: a chunk is recycled only when avail has to move past it.
func (in *prefetched) lend(n, unit int) []byte {
	a, err := in.avail()
	if err != nil {
		return nil
	}
	k := min(len(a), n) &^ (unit - 1)
	if k == 0 {
		return nil // less than a unit left in this chunk: the window copies one across
	}
	in.consume(k)
	return a[:k]
}

// lending is lender's: every byte of the stream lies in a buffer lend can lend from.
func (in *prefetched) lending() bool { return true }

// CountedFile is a log file whose reading is counted, for a progress bar. NewReader reads it as it
// reads File itself (a regular file at offsets, ahead of the decoder, by goroutines of their own)
// and passes the size of each read to Count, from the goroutine that made it: Count must be safe
// for concurrent use. A counting io.Reader around the file would hide it, and the log would be
// read as a pipe is, on one goroutine, nothing lent in place (analyze of the bench's large case
// with the progress bar shown: 0.49 s against 0.42 s quiet, before CountedFile).
type CountedFile struct {
	File  *os.File
	Count func(n int64)
}

// Read reads from File and counts what it read.
func (c *CountedFile) Read(p []byte) (int, error) {
	n, err := c.File.Read(p)
	if n > 0 {
		c.Count(int64(n))
	}
	return n, err
}

// regularFile returns r as a regular file, with its offset, its size and, for a CountedFile, the
// function its reads are counted by; or nil.
func regularFile(r io.Reader) (io.ReaderAt, int64, int64, func(int64)) {
	f, count := osFile(r)
	if f == nil {
		return nil, 0, 0, nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, 0, 0, nil
	}
	at, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, 0, nil
	}
	return f, at, st.Size(), count
}

// osFile is the file r reads, itself or inside a CountedFile (with its count), or nil.
func osFile(r io.Reader) (*os.File, func(int64)) {
	switch f := r.(type) {
	case *os.File:
		return f, nil
	case *CountedFile:
		return f.File, f.Count
	}
	return nil, nil
}
