package blklog

// parFrames decodes the zstd frames of a native log file on two goroutines at once, and hands
// their content to the window in order.
//
// The native writer ends a zstd frame at every flush and every 4 MiB (Writer, FrameBytes), and a
// frame depends on nothing before it. So a log whose payload costs real entropy decoding (the
// bench's `real` capture: 1.1 GB stored as 420 MB, which the Go decoder turns out at about
// 1 GB/s, the whole run's bound) can be decoded nearly twice as fast on two cores: a splitter
// walks the frame and block headers ahead (RFC 8878 3.1.1: each block header gives the size of
// its body, so nothing is decoded to find where a frame ends), and two workers each decode a
// frame from its offset, with a streaming decoder of their own. Their content goes to the window
// through small chunks (parChunk), at most parAhead of them ahead per frame, so that it is read
// while still in the caches it was written to and memory stays bounded whatever the frames'
// sizes: a frame decoded ahead waits for the one before it after parAhead chunks. Three earlier
// attempts decoded whole frames into buffers of their size (docs/performance.md, "decoding whole
// frames"): the consumer then read the content from memory, and lost more than the second core
// gave.
//
// Not every frame is worth a worker (frameKind): a frame of raw blocks (incompressible payload)
// has nothing to decode, and its blocks' bodies are lent in place from the splitter's reading of
// the file (rawReads), as rawFrames lends them; a frame compressed parInlineRatio to 1 or more
// (zeros, file system metadata) costs the Go decoder little and is decoded by the consumer
// itself, when its turn comes, as is a frame alone among others of the kinds above.
//
// Anything the splitter does not expect (a skippable frame, a dictionary, a reserved bit or
// block type, a block larger than the format allows, the file's end inside a frame) ends the
// splitting: from that frame on, the rest of the file goes to one streaming decoder, in order
// after the frames before it, which decodes or fails as the sequential reader would, after the
// same content (TestParFrames, FuzzParFrames). The frames' XXH64 checksums are not checked: the
// native records carry a CRC-32C of all their bytes (as for the sequential reader, newReader's
// IgnoreChecksum).

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ext3replay/ext3replay/internal/sparse"
	"github.com/ext3replay/ext3replay/internal/zstdblock"
	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

const (
	// parWorkers is how many frames are decoded at once: the machines this runs on have 2 cores,
	// and the consumer's work (records' CRCs, the replay) is light beside entropy decoding.
	parWorkers = 2
	// parChunk is the size of the chunks a frame's content is decoded into: small enough to be
	// read back from the caches.
	parChunk = 256 << 10
	// parAhead is how many chunks of a frame may wait for the consumer: a worker that decodes a
	// frame ahead of the one being read stops there until its turn.
	parAhead = 16
	// parRawChunk is the size of the reads of raw frames, parRawAhead how many are read ahead
	// (the prefetcher's sizes, which the sequential reader reads such frames through:
	// prefetch.go), and parRawChunks how many there are, those read ahead and those that wait
	// for the consumer.
	parRawChunk  = 1 << 20
	parRawAhead  = 3
	parRawChunks = 2 * parRawAhead
	// parJobs is how many frames may wait for the consumer besides the one it reads: one per
	// worker.
	parJobs = parWorkers
)

// frameKind is how a frame's content reaches the consumer.
type frameKind int

const (
	// frameRaw: a frame that begins with a Raw_Block (or with one compressed or RLE block,
	// which the splitter decodes, and then a raw one), its bodies lent where the splitter read
	// them (rawReads), their headers with them: it finds where the frame ends as it reads it. A
	// frame that turns out to hold other blocks after them, or to end with the file, is
	// followed by a job of the next kinds that skips what was served.
	frameRaw frameKind = iota
	// frameParallel: compressed less than parInlineRatio to 1, after a frame that was too,
	// decoded by a worker.
	frameParallel
	// frameInline: compressed more (or alone among frames of other kinds), decoded by the
	// consumer itself when its turn comes: such content costs little to decode (long matches
	// copied) and more to read back from another core's chunks. Such frames back to back are
	// one job, up to parInlineRun bytes, read by the consumer's decoder as one stream.
	frameInline
	// frameTail: the rest of the file, from a frame the splitter did not expect, decoded by the
	// consumer in sequence.
	frameTail
)

// parInlineRun is the most bytes of frames decoded inline, back to back, that make one job.
const parInlineRun = 1 << 20

// parInlineRatio is the compression ratio from which a frame is decoded inline rather than by a
// worker, as the block headers bound it: its compressed blocks' content over their size, each
// counted full (128 KiB, or the frame's window).
const parInlineRatio = 8

// frameJob is a frame (or frames decoded inline, back to back): its bytes in the file, and for
// a worker's or a frameRaw, the channel its content comes back through, in order.
type frameJob struct {
	kind   frameKind
	off, n int64
	skip   int64 // frameInline and frameTail: content a frameRaw job served before, of the same frame
	out    chan piece
}

// piece is content of a frame: parts of a chunk, that chunk to recycle once they are read (nil
// while later pieces hold parts of it too), or an error after the content before it. A value
// with its parts in place: the raw frames' reading sends one a chunk, 1,000 a gigabyte.
type piece struct {
	parts [parParts][]byte
	n     int
	chunk []byte
	err   error
}

// parParts is the most parts a piece holds: a chunk of raw frames' reading holds 8 or 9 blocks'
// bodies of 128 KiB (smaller blocks take more pieces).
const parParts = 12

// add appends part b; false if the piece is full.
func (pc *piece) add(b []byte) bool {
	if pc.n == len(pc.parts) {
		return false
	}
	pc.parts[pc.n] = b
	pc.n++
	return true
}

type parFrames struct {
	f     io.ReaderAt
	size  int64
	count func(int64) // a CountedFile's Count, or nil
	opts  []zstd.DOption

	jobs   chan *frameJob // to the workers
	order  chan *frameJob // to the consumer, in file order
	chunks chan []byte    // free chunks
	raws   chan []byte    // free chunks of raw frames' reading
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	made, madeRaw atomic.Int32 // chunks allocated so far, of each pool

	// The splitter's: the chunk of raw frames' reading it holds, and its offset in the file.
	sc      []byte
	scStart int64
	rr      rawReads          // the splitter's
	hr      headReads         // the splitter's reads of headers
	blk     zstdblock.Decoder // the first block of a frameRaw job that is not raw
	body    []byte            // its compressed bytes

	// The consumer's side.
	cur  *frameJob
	seg  []byte        // the unread bytes of the current part
	pc   piece         // the current piece
	pi   int           // its next part
	held []byte        // the current piece's chunk, recycled when the next piece is taken
	dec  *zstd.Decoder // the consumer's own, for frames decoded inline
	in   *bufio.Reader // their input
	err  error         // sticky; io.EOF at the clean end

	kinds   [frameTail + 1]int // frames read, by kind (for the tests)
	skipped int64              // content a frameRaw served before the frame's decoding
	firsts  int                // frameRaw jobs whose first block the splitter decoded (its own)
}

// newParFrames decodes the zstd stream of f from byte start to size.
func newParFrames(f io.ReaderAt, start, size int64, count func(int64), opts []zstd.DOption) *parFrames {
	p := &parFrames{
		f: f, size: size, count: count, opts: opts,
		jobs:   make(chan *frameJob),
		order:  make(chan *frameJob, parJobs),
		chunks: make(chan []byte, parWorkers*parAhead+parWorkers),
		raws:   make(chan []byte, parRawChunks),
		stop:   make(chan struct{}),
	}
	p.rr.p = p
	p.hr.f, p.hr.size = f, size
	p.wg.Add(1 + parWorkers)
	go p.split(start)
	for range parWorkers {
		go p.work()
	}
	return p
}

// split walks the frames from off and hands them out, in order, to the consumer and the workers.
func (p *parFrames) split(off int64) {
	defer p.wg.Done()
	defer close(p.jobs)
	defer close(p.order)
	var raw *frameJob // a frame of raw blocks whose channel stays open until the next frame's kind is known
	var run *frameJob // frames decoded inline, not queued yet
	lastEligible := false
	for off < p.size {
		j, first, pos := p.head(off)
		if j == nil {
			j = p.walk(off, 0, pos, first)
		}
		// A worker decodes a frame only after one that could have been too: a frame alone
		// among others (the bench's large case has four such among 260) is decoded inline,
		// which spares the workers' decoders their buffers, a window each of fresh memory.
		eligible := j.kind == frameParallel
		if eligible && !lastEligible {
			j.kind, j.out = frameInline, nil
		}
		lastEligible = eligible
		if raw != nil {
			// The chunk the last frame ended in goes on to this frame if it begins raw too;
			// otherwise the last frame gives it back.
			if j.kind != frameRaw && !p.dropChunk(raw) {
				return
			}
			close(raw.out)
			raw = nil
		}
		if j.kind == frameInline {
			// Frames the consumer decodes, one after the other, are one job for it, up to
			// parInlineRun bytes: a frame a job, each a decoder reset, was 150,000 of them
			// in a log of small flushes.
			if run != nil && run.n+j.n <= parInlineRun {
				run.n += j.n
			} else {
				if run != nil && !p.queue(run) {
					return
				}
				run = j
			}
			off += j.n
			continue
		}
		if run != nil {
			if !p.queue(run) {
				return
			}
			run = nil
		}
		if !p.queue(j) {
			return
		}
		if j.kind == frameRaw {
			rest := p.readRaw(j, pos)
			if rest == nil {
				return
			}
			if rest == j {
				raw = j
				off += j.n
				continue
			}
			close(j.out)
			if j = rest; !p.queue(j) {
				return
			}
		}
		if j.kind == frameTail {
			return
		}
		off += j.n
	}
	if raw != nil && p.dropChunk(raw) {
		close(raw.out)
	}
	if run != nil {
		p.queue(run)
	}
}

// dropChunk gives back the chunk the splitter holds, after the content of j, which it holds
// part of: false if the reader was closed.
func (p *parFrames) dropChunk(j *frameJob) bool {
	c := p.sc
	p.sc = nil
	return c == nil || p.send(j, piece{chunk: c})
}

// queue hands j to the consumer, and to the workers if it is theirs; false if the reader was
// closed.
func (p *parFrames) queue(j *frameJob) bool {
	select {
	case p.order <- j:
	case <-p.stop:
		return false
	}
	if j.kind != frameParallel {
		return true
	}
	select {
	case p.jobs <- j:
		return true
	case <-p.stop:
		return false
	}
}

// head reads the header of the frame at off and its first block's: the tail or, for a frame
// that begins raw, a frameRaw job (nil otherwise), the first block, and the offset of its
// header.
func (p *parFrames) head(off int64) (*frameJob, zstdframe.Block, int64) {
	var hb [18 + 3]byte // the longest frame header, and a block header
	k, _ := p.hr.ReadAt(hb[:min(int64(len(hb)), p.size-off)], off)
	h, ok := zstdframe.ParseHeader(hb[:k])
	if !ok || h.Dictionary() || h.Window > maxFrameWindow || k < h.Len+3 {
		return p.tail(off, 0), zstdframe.Block{}, 0
	}
	b := zstdframe.ParseBlock([3]byte(hb[h.Len : h.Len+3]))
	pos := off + int64(h.Len)
	// A frame that gives its content size is the decoder's: it checks the blocks against it
	// (the writer's frames do not give it).
	if h.Size >= 0 || b.Size > blockLimit(h) {
		return nil, b, pos
	}
	raw := func() *frameJob { return &frameJob{kind: frameRaw, off: off, out: make(chan piece, parAhead)} }
	if b.Type == zstdframe.Raw {
		return raw(), b, pos
	}
	// A compressed or RLE block followed by a raw one: the start of a large write after a
	// record's header (in the bench's large case, frames of 2-3 MB, 99% raw, that the decoder
	// copied three times on the consumer's goroutine). Decoded here, with nothing before it.
	if b.Last || b.Type == zstdframe.Reserved || h.Window > maxOwnWindow {
		return nil, b, pos
	}
	var nb [3]byte
	if at := pos + 3 + int64(b.Body()); at+3 > p.size {
		return nil, b, pos
	} else if _, err := p.hr.ReadAt(nb[:], at); err != nil || zstdframe.ParseBlock(nb).Type != zstdframe.Raw {
		return nil, b, pos
	}
	return raw(), b, pos
}

// tail is the job of the rest of the file from the frame at off, skip bytes of whose content a
// frameRaw job served.
func (p *parFrames) tail(off, skip int64) *frameJob {
	return &frameJob{kind: frameTail, off: off, n: p.size - off, skip: skip}
}

// blockLimit is the largest block the frame may hold (RFC 8878 3.1.1.2.4).
func blockLimit(h zstdframe.Header) int { return int(min(h.Window, zstdframe.MaxBlock)) }

// walk reads the block headers of the frame at off from the one at pos (b, already read), and
// tells how its content is to be had: the tail for anything the streaming decoder should see
// instead (see the file comment). skip is content a frameRaw job served already.
func (p *parFrames) walk(off, skip, pos int64, b zstdframe.Block) *frameJob {
	tail := func() *frameJob { return p.tail(off, skip) }
	var hb [18]byte
	k, _ := p.hr.ReadAt(hb[:min(int64(len(hb)), p.size-off)], off)
	h, ok := zstdframe.ParseHeader(hb[:k])
	if !ok {
		return tail()
	}
	limit := blockLimit(h)
	var blocks, compressed int64
	for {
		if b.Type == zstdframe.Reserved || b.Size > limit {
			return tail()
		}
		if b.Type == zstdframe.Compressed {
			blocks++
			compressed += int64(b.Size)
		}
		pos += 3 + int64(b.Body())
		if pos > p.size {
			return tail()
		}
		if b.Last {
			break
		}
		var bh [3]byte
		if pos+3 > p.size {
			return tail()
		}
		if _, err := p.hr.ReadAt(bh[:], pos); err != nil {
			return tail()
		}
		b = zstdframe.ParseBlock(bh)
	}
	if h.Checksum() {
		pos += 4
	}
	if pos > p.size {
		return tail()
	}
	j := &frameJob{kind: frameInline, off: off, n: pos - off, skip: skip}
	// Less than parInlineRatio to 1 even if every block held the most it may; and a window no
	// larger than rawFrames decodes itself (the writer's is 4 MiB), which bounds the memory of
	// the workers' decoders, a history of two windows each.
	if skip == 0 && h.Window <= maxOwnWindow && compressed*parInlineRatio > blocks*int64(limit) {
		j.kind, j.out = frameParallel, make(chan piece, parAhead)
	}
	return j
}

// readRaw serves the raw blocks of j's frame, whose first block header is at pos, from the
// splitter's reading ahead (rawReads): the blocks' bodies where they lie, their headers read with
// them. It returns j, its length now known, the chunk it ended in still held (p.sc: the next frame
// may begin in it); or, its channel to be closed, the job that decodes the rest of the frame, when
// another kind of block follows or the frame ends with the file; nil if the reader was closed.
func (p *parFrames) readRaw(j *frameJob, pos int64) *frameJob {
	var hb [18]byte
	k, _ := p.hr.ReadAt(hb[:min(int64(len(hb)), p.size-j.off)], j.off)
	h, _ := zstdframe.ParseHeader(hb[:k])
	limit := blockLimit(h)
	var (
		c      = p.sc // the chunk read, holding the file from cstart
		cstart = p.scStart
		pc     piece // its parts so far
		served int64
	)
	p.sc = nil
	// flush sends the chunk's parts, and the chunk to be given back after them; false if the
	// reader was closed.
	flush := func() bool {
		if c == nil {
			return true
		}
		pc.chunk, c = c, nil
		ok := p.send(j, pc)
		pc = piece{}
		return ok
	}
	// add adds a part of the chunk, sending the parts so far first if the piece is full; false
	// if the reader was closed.
	add := func(b []byte) bool {
		if pc.add(b) {
			return true
		}
		if !p.send(j, pc) {
			return false
		}
		pc = piece{}
		return pc.add(b)
	}
	end := func() int64 { return cstart + int64(len(c)) }
	// load makes the chunk holding the file at `at` current, the one before sent: false if the
	// reader was closed. At the file's end the chunk is empty.
	load := func(at int64) bool {
		if !flush() {
			return false
		}
		var ok bool
		c, cstart, ok = p.rr.take(at)
		return ok
	}
	tail := func() *frameJob {
		if !flush() {
			return nil
		}
		return p.tail(j.off, served)
	}
	if first := p.firstBlock(j, h, pos); first != nil {
		if first.n < 0 { // not decoded here: the decoder's, from the frame's start
			if !flush() {
				return nil
			}
			return p.walk(j.off, 0, pos, first.b)
		}
		if first.n > 0 && !p.send(j, first.pc) {
			return nil
		}
		p.firsts++
		served, pos = int64(first.n), pos+3+int64(first.b.Body())
	}
	for {
		// The block header, which may lie across two chunks.
		if c == nil || pos >= end() {
			if !load(pos) {
				return nil
			}
		}
		var bh [3]byte
		got := copy(bh[:], c[pos-cstart:])
		if got < 3 {
			if !load(end()) {
				return nil
			}
			got += copy(bh[got:], c)
			if got < 3 {
				return tail() // the file ends
			}
		}
		b := zstdframe.ParseBlock(bh)
		if b.Type != zstdframe.Raw || b.Size > limit || pos+3+int64(b.Size)+trailer(h, b) > p.size {
			// (The decoder withholds a frame's last block until it has read its checksum.)
			if !flush() {
				return nil
			}
			// Anything else the streaming decoder decodes, after what was served here.
			return p.walk(j.off, served, pos, b)
		}
		body, bend := pos+3, pos+3+int64(b.Size)
		if body >= end() && b.Size > 0 {
			if !load(body) {
				return nil
			}
		}
		if bend > end() { // the body goes on past the chunk
			if !add(c[body-cstart:]) {
				return nil
			}
			from := end()
			if !load(from) {
				return nil
			}
			if bend > end() {
				return tail() // cannot happen: the file holds the body, and a chunk more than a block
			}
			if !add(c[from-cstart : bend-cstart]) {
				return nil
			}
		} else if b.Size > 0 && !add(c[body-cstart:bend-cstart]) {
			return nil
		}
		served += int64(b.Size)
		pos = bend
		if b.Last {
			if pc.n > 0 && !p.send(j, pc) { // the chunk kept
				return nil
			}
			p.sc, p.scStart = c, cstart
			j.n = pos + trailer(h, b) - j.off
			return j
		}
	}
}

// decodedFirst is the first block of a frameRaw job that is not raw: n bytes of content in a
// chunk, in pc (-1: not decoded).
type decodedFirst struct {
	b  zstdframe.Block
	pc piece
	n  int
}

// firstBlock decodes the first block of j's frame at pos if it is not raw (head saw a raw one
// after it), with zstdblock, as rawFrames decodes such blocks; nil for a raw one.
func (p *parFrames) firstBlock(j *frameJob, h zstdframe.Header, pos int64) *decodedFirst {
	var bh [3]byte
	if _, err := p.hr.ReadAt(bh[:], pos); err != nil {
		return &decodedFirst{n: -1}
	}
	d := &decodedFirst{b: zstdframe.ParseBlock(bh), n: -1}
	if d.b.Type == zstdframe.Raw {
		return nil
	}
	if p.body == nil {
		p.body = make([]byte, zstdframe.MaxBlock)
	}
	body := p.body[:d.b.Body()]
	if k, _ := p.f.ReadAt(body, pos+3); k < len(body) {
		return d
	}
	p.blk.Reset(int(h.Window))
	var out []byte
	if d.b.Type == zstdframe.RLE {
		out = p.blk.RLE(body[0], d.b.Size)
	} else {
		var err error
		if out, err = p.blk.Compressed(body, blockLimit(h)); err != nil {
			return d
		}
	}
	if len(out) == 0 {
		d.n = 0
		return d
	}
	c, ok := p.chunk()
	if !ok {
		return d
	}
	d.n = copy(c, out) // a block's content fits a chunk
	d.pc.add(c[:d.n])
	d.pc.chunk = c
	return d
}

// headReads serves the splitter's reads of frame and block headers from a small buffer of the
// file: a log written with a flush every few records is frames of 100-300 bytes (the committed
// captures), and three reads of a few bytes each for every frame cost more than decoding it (a
// log of 150,000 such frames: 1.2 s against 0.67 s for the sequential reader).
type headReads struct {
	f    io.ReaderAt
	size int64
	buf  []byte
	off  int64 // the file offset of buf[0]
}

// headBuf is how much the splitter reads at once for headers: tens of small frames, or one
// block header with a little more where the blocks are large.
const headBuf = 4 << 10

// ReadAt reads len(p) bytes at off (fewer at the file's end), from the buffer when it holds them.
func (h *headReads) ReadAt(p []byte, off int64) (int, error) {
	if off < h.off || off+int64(len(p)) > h.off+int64(len(h.buf)) {
		want := max(headBuf, len(p))
		if cap(h.buf) < want {
			h.buf = make([]byte, want)
		}
		n, err := h.f.ReadAt(h.buf[:min(int64(want), max(h.size-off, 0))], off)
		h.buf, h.off = h.buf[:n], off
		if n < len(p) {
			k := copy(p, h.buf)
			if err == nil {
				err = io.EOF
			}
			return k, err
		}
	}
	return copy(p, h.buf[off-h.off:]), nil
}

// trailer is the length of what follows block b in its frame h: the checksum after the last.
func trailer(h zstdframe.Header, b zstdframe.Block) int64 {
	if b.Last && h.Checksum() {
		return 4
	}
	return 0
}

// rawReads reads the file ahead of the splitter's reading of raw frames, parRawChunk bytes at a
// time on parWorkers goroutines, from where it last read on: such frames lie back to back (a large
// copy), with small frames between them that the consumer decodes, and one goroutine's copies out
// of the page cache did not keep up with the consumer (an execution trace of the bench's large
// case: the splitter busy all through the copy, 220 ms where the sequential reader's two
// goroutines took 160).
type rawReads struct {
	p     *parFrames
	reqs  chan *rawRead
	queue []*rawRead // asked for, in file order
	next  int64      // where the next one reads
	once  sync.Once
}

// rawRead is a chunk of the file being read.
type rawRead struct {
	off  int64
	c    []byte
	done chan struct{}
}

// take returns the chunk holding the file at `at` (empty at its end) and its offset, the ones
// before it recycled: the caller owns it. False if the reader was closed.
func (r *rawReads) take(at int64) ([]byte, int64, bool) {
	r.once.Do(r.start)
	for {
		switch {
		case len(r.queue) > 0 && at < r.queue[0].off && r.queue[0].off-at <= parRawChunk:
			// The rest of a chunk the last frame ended in, given back with it: read again.
			if !r.ask(at, r.queue[0].off-at, true) {
				return nil, 0, false
			}
		case len(r.queue) == 0 || at < r.queue[0].off || at >= r.next:
			if !r.restart(at) {
				return nil, 0, false
			}
		}
		h := r.queue[0]
		select {
		case <-h.done:
		case <-r.p.stop:
			return nil, 0, false
		}
		r.queue = r.queue[1:]
		if at < h.off+int64(len(h.c)) || len(h.c) == 0 {
			return h.c, h.off, r.fill()
		}
		r.p.recycle(h.c) // before at: a frame the consumer decodes lay there
		if !r.fill() {
			return nil, 0, false
		}
	}
}

// restart drops what was read ahead and reads on from at.
func (r *rawReads) restart(at int64) bool {
	for _, q := range r.queue {
		select {
		case <-q.done:
		case <-r.p.stop:
			return false
		}
		r.p.recycle(q.c)
	}
	r.queue, r.next = r.queue[:0], at
	return r.fill()
}

// fill asks for the chunks after the last one asked for, up to parRawAhead.
func (r *rawReads) fill() bool {
	for len(r.queue) < parRawAhead && (r.next < r.p.size || len(r.queue) == 0) {
		n := min(parRawChunk, max(r.p.size-r.next, 0))
		if !r.ask(r.next, n, false) {
			return false
		}
		r.next += n
	}
	return true
}

// ask queues the reading of n bytes at off, first or last in the queue.
func (r *rawReads) ask(off, n int64, first bool) bool {
	c, ok := r.p.take(r.p.raws, &r.p.madeRaw, parRawChunk)
	if !ok {
		return false
	}
	q := &rawRead{off: off, c: c[:n], done: make(chan struct{})}
	select {
	case r.reqs <- q:
	case <-r.p.stop:
		return false
	}
	if first {
		r.queue = append([]*rawRead{q}, r.queue...)
	} else {
		r.queue = append(r.queue, q)
	}
	return true
}

// start starts the reading goroutines, once the first raw frame comes.
func (r *rawReads) start() {
	r.reqs = make(chan *rawRead, parRawAhead)
	r.p.wg.Add(parWorkers)
	for range parWorkers {
		go r.read()
	}
}

// read is a reading goroutine.
func (r *rawReads) read() {
	defer r.p.wg.Done()
	for {
		select {
		case q := <-r.reqs:
			n, _ := r.p.f.ReadAt(q.c, q.off)
			q.c = q.c[:n]
			close(q.done)
		case <-r.p.stop:
			return
		}
	}
}

// work decodes the frames it is handed, each into its job's channel.
func (p *parFrames) work() {
	defer p.wg.Done()
	var dec *zstd.Decoder
	defer func() {
		if dec != nil {
			dec.Close()
		}
	}()
	// The compressed bytes are read as the sequential reader reads them, through a buffer that
	// stays in the cache: whole frames read at once were tens of MiB of buffers, fresh memory.
	in := bufio.NewReaderSize(nil, 256<<10)
	for j := range p.jobs {
		if dec == nil {
			d, err := newZstdReader(nil, p.opts...)
			if err != nil {
				p.send(j, piece{err: err})
				close(j.out)
				continue
			}
			dec = d
		}
		in.Reset(io.NewSectionReader(p.f, j.off, j.n))
		if !p.decode(j, dec, in) {
			return
		}
		close(j.out)
	}
}

// decode puts the content of j's frame, read from in, into j.out; false if the reader was closed.
func (p *parFrames) decode(j *frameJob, dec *zstd.Decoder, in io.Reader) bool {
	if err := dec.Reset(in); err != nil {
		return p.send(j, piece{err: err})
	}

	for {
		c, ok := p.chunk()
		if !ok {
			return false
		}
		n, err := sparse.Fill(dec, c) // short only at the frame's end (io.EOF) or an error
		if err == io.EOF {
			err = nil
			if n == 0 {
				p.chunks <- c // never blocks: the chunk came from there
				return true
			}
		}
		pc := piece{chunk: c, err: err}
		pc.add(c[:n])
		if !p.send(j, pc) {
			return false
		}
		if err != nil || n < len(c) {
			return true
		}
	}
}

// chunk takes a free chunk; false if the reader was closed.
func (p *parFrames) chunk() ([]byte, bool) { return p.take(p.chunks, &p.made, parChunk) }

// take takes a free chunk of size bytes from pool, or makes one while fewer than the pool holds
// were made; false if the reader was closed. Made as they are needed, from the Go heap (which
// analyze warms: analysis.WarmHeap): a log of small frames decoded inline needs none, and one
// slab of all of them in fresh huge pages took longer to map than the run it served.
func (p *parFrames) take(pool chan []byte, made *atomic.Int32, size int) ([]byte, bool) {
	select {
	case c := <-pool:
		return c, true
	default:
	}
	if made.Add(1) <= int32(cap(pool)) {
		return make([]byte, size), true
	}
	select {
	case c := <-pool:
		return c, true
	case <-p.stop:
		return nil, false
	}
}

// send queues a piece of j's content; false if the reader was closed.
func (p *parFrames) send(j *frameJob, pc piece) bool {
	select {
	case j.out <- pc:
		return true
	case <-p.stop:
		return false
	}
}

// inline reports whether the consumer decodes the current frame itself.
func (p *parFrames) inline() bool {
	return p.cur != nil && (p.cur.kind == frameInline || p.cur.kind == frameTail)
}

// next moves to the next part of content, or to the next frame: false at the stream's end or
// an error (p.err).
func (p *parFrames) next() bool {
	if p.pi < p.pc.n {
		p.seg = p.pc.parts[p.pi]
		p.pi++
		return true
	}
	if p.held != nil {
		p.recycle(p.held)
		p.held = nil
	}
	for p.err == nil {
		if p.cur == nil {
			j, ok := <-p.order
			if !ok {
				p.err = io.EOF
				return false
			}
			p.cur = j
			p.kinds[j.kind]++
			p.skipped += j.skip
			if p.inline() {
				p.err = p.startInline(j)
				return p.err == nil
			}
		}
		pc, ok := <-p.cur.out
		if !ok {
			p.done()
			continue
		}
		p.held, p.err = pc.chunk, pc.err
		if pc.n > 0 {
			p.pc, p.pi = pc, 1
			p.seg = pc.parts[0]
			return true
		}
		if p.held != nil {
			p.recycle(p.held)
			p.held = nil
		}
	}
	return false
}

// recycle gives a chunk back to its pool; never blocks: each has room for all its chunks.
func (p *parFrames) recycle(c []byte) {
	if cap(c) == parRawChunk {
		p.raws <- c[:cap(c)]
	} else {
		p.chunks <- c[:cap(c)]
	}
}

// done ends the current frame. Its bytes are counted (count) now: the splitter and the workers
// read ahead, and some bytes twice (where a frame turns out to be the decoder's after all); a
// frame that turned out so (its length unknown: 0) is counted by the job that follows it, and
// the tail as it is read.
func (p *parFrames) done() {
	if p.count != nil && p.cur.n > 0 && p.cur.kind != frameTail {
		p.count(p.cur.n)
	}
	p.cur = nil
}

// startInline readies the consumer's decoder for j.
func (p *parFrames) startInline(j *frameJob) error {
	if p.dec == nil {
		d, err := newZstdReader(nil, p.opts...)
		if err != nil {
			return err
		}
		p.dec, p.in = d, bufio.NewReaderSize(nil, 256<<10)
	}
	var in io.Reader = io.NewSectionReader(p.f, j.off, j.n)
	if j.kind == frameTail {
		in = &countedSection{in.(*io.SectionReader), p.count} // its frames are not known
	}
	p.in.Reset(in)
	if err := p.dec.Reset(p.in); err != nil {
		return err
	}
	// Content a frameRaw job served already: decoded again (raw blocks, a copy) and dropped.
	if _, err := io.CopyN(io.Discard, p.dec, j.skip); err != nil {
		return noEOF(err)
	}
	return nil
}

func (p *parFrames) Read(b []byte) (int, error) {
	for {
		if len(p.seg) > 0 {
			n := copy(b, p.seg)
			p.seg = p.seg[n:]
			return n, nil
		}
		if p.err != nil {
			return 0, p.err
		}
		if p.inline() {
			n, err := p.dec.Read(b)
			if err == io.EOF && p.cur.kind == frameInline {
				p.done()
				err = nil
			}
			p.err = err
			if n > 0 {
				return n, nil
			}
			continue
		}
		p.next()
	}
}

// lend is lender's: the next bytes where they lie, in a chunk; nil in a frame decoded inline.
func (p *parFrames) lend(n, unit int) []byte {
	for len(p.seg) == 0 {
		if p.err != nil || p.inline() || !p.next() || p.inline() {
			return nil
		}
	}
	k := min(len(p.seg), n) &^ (unit - 1)
	if k == 0 {
		return nil // less than a unit left in this piece: the window copies one across
	}
	s := p.seg[:k]
	p.seg = p.seg[k:]
	return s
}

// lending is lender's: the content of the frames not decoded inline lies in chunks lend lends.
func (p *parFrames) lending() bool { return !p.inline() }

// Close stops the splitter and the workers and waits for them; safe on nil and more than once.
func (p *parFrames) Close() {
	if p == nil {
		return
	}
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
	if p.dec != nil {
		p.dec.Close()
		p.dec = nil
	}
}

// countedSection counts what is read from a section of the file, for a progress bar.
type countedSection struct {
	r     *io.SectionReader
	count func(int64)
}

func (c *countedSection) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if c.count != nil && n > 0 {
		c.count(int64(n))
	}
	return n, err
}

// parallelNative returns the frames of r decoding in parallel when r is a regular file holding a
// native log compressed by zstd (the writer's frames), or nil.
func parallelNative(r io.Reader) *parFrames {
	f, start, size, count := regularFile(r)
	if f == nil {
		return nil
	}
	peek := make([]byte, min(256<<10, max(size-start, 0)))
	if k, _ := f.ReadAt(peek, start); k < len(peek) || !bytes.HasPrefix(peek, zstdMagic) || !nativeInside(peek) {
		return nil
	}
	if !writerFrames(f, start, size) {
		return nil
	}
	// Every native record carries a CRC-32C of all its bytes: the frames' XXH64 add nothing.
	return newParFrames(f, start, size, count, []zstd.DOption{zstd.IgnoreChecksum(true)})
}

// writerFrames reports whether the first frame of the stream at start looks like the native
// writer's: at most parMaxFrame bytes (its frames end after the record that crosses
// FrameBytes). A log compressed again as one frame (by the zstd program: a gigabyte in one frame,
// raw and compressed blocks mixed) or by pzstd (a skippable frame first) is left to rawFrames,
// which reads such frames in place, and a frame that turns from raw to compressed without
// decoding it twice.
func writerFrames(f io.ReaderAt, start, size int64) bool {
	var hb [18]byte
	k, _ := f.ReadAt(hb[:min(int64(len(hb)), size-start)], start)
	h, ok := zstdframe.ParseHeader(hb[:k])
	if !ok || h.Dictionary() {
		return false
	}
	for pos := start + int64(h.Len); pos-start <= parMaxFrame; {
		var bh [3]byte
		if pos+3 > size {
			return true // the file ends in the first frame: either reader reads it as the decoder
		}
		if n, _ := f.ReadAt(bh[:], pos); n < 3 {
			return true
		}
		b := zstdframe.ParseBlock(bh)
		if b.Last {
			return true
		}
		pos += 3 + int64(b.Body())
	}
	return false
}

// parMaxFrame bounds the writer's frames: FrameBytes of records, then the record that crosses
// it (MaxRecordData and its header), compressed no larger than stored raw.
const parMaxFrame = FrameBytes + MaxRecordData + 1<<20

// newParNative reads the native log that par decodes.
func newParNative(par *parFrames, name string) (Reader, error) {
	win := &window{src: par}
	nr, err := newNativeReader(win, name)
	if err != nil {
		par.Close()
		var de *DamageError
		if errors.As(err, &de) {
			de.Compressed = true
		}
		return nil, err
	}
	nr.par, nr.compressed = par, true
	return nr, nil
}
