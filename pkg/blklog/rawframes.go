package blklog

// rawFrames decodes the zstd stream of a log file and lends the content of its Raw_Blocks in
// place, out of the prefetcher's buffers, instead of copying it. Since 2026-12-04 a native log's
// frames, which the writer keeps small and independent, are decoded by parFrames (parframes.go),
// on two cores; rawFrames reads the rest, a dm-log-writes log compressed by zstd above all.
//
// zstd stores a block as it is (a Raw_Block: a 3-byte header, then the bytes) when compressing it
// would not make it smaller: the payload of a guest copying random or encrypted data. The Go
// decoder copies such a block three times on its way out (from its input into the block's buffer,
// into its history window, into the caller's buffer), and a payload filter then reads it once more
// only to leave most of it out (omit.go). On the 1 GiB random copy of the bench's `large` case
// (1.03 of its 1.07 GB in 178 frames of raw blocks only) those copies were 160 ms of the decoding
// goroutine's 250 ms per run, and that goroutine bounds the run while the copy lasts.
//
// A frame's blocks depend on one another only through the history of the frame (matches reach
// back into earlier content; compressed blocks reuse earlier tables and repeat offsets), and a
// raw block depends on nothing. So this reader follows the frames itself, header by header. A
// frame mostly raw (owns: one that begins raw, or whose first blocks store their content as it
// is 64 to 1) it reads itself: it returns raw blocks' bytes from its input, lending them (lend)
// to a caller that can use them where they lie, and decodes the other blocks with zstdblock, whose
// history gets the last window of the raw blocks before them, read again from the file only
// when such a block comes (matches seldom reach into them, but may). That is the shape of a
// dm-log-writes log compressed by `zstd`: one frame of 1.2 GB whose 948 compressed blocks lie
// between 8185 raw ones, where the Go decoder's copies and hashing took 0.26 s of CPU in a run
// of 0.43 s (a profile of analyze, 2026-12-03).
// A frame mostly compressed goes to the Go decoder, which is faster at it (3x on real logs).
//
// Anything this reader does not expect (a skippable frame, a dictionary, a reserved bit or block
// type, a size out of bounds, the file's end, a block zstdblock refuses) hands the stream to the
// Go decoder: from the start of the frame, whose blocks already returned are read again from the
// file (the decoder needs them as history) and whose content already returned is decoded again
// and dropped. The decoder then keeps the stream, frame after frame, until a frame this reader
// owns, where it takes the stream back; the decoder's input is given to it through feed, which
// follows the same headers to know where its frames end. So the content returned is what the
// decoder returns, and a damaged stream fails as the decoder makes it fail, after the same
// content.
//
// The frames' XXH64 checksums are checked (verify) for a log whose records carry no checksum of
// their own (dm-log-writes), and before a frame's last block is returned, as the decoder
// withholds it; a native log's records carry a CRC-32C of all their bytes, so its frames' are
// not, by either. Only a regular file is read so (reading again needs its offsets, and the
// file's size tells that a block is whole before its first byte is returned).

import (
	"bytes"
	"encoding/binary"
	"io"

	"github.com/cespare/xxhash/v2"
	"github.com/ext3replay/ext3replay/internal/zstdblock"
	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

// frameState is where the stream stands for rawFrames.
type frameState int

const (
	atBoundary    frameState = iota // the next byte is a frame's first (or the stream's end)
	inFrame                         // in a frame read here: raw blocks returned from the input, others decoded here
	decoding                        // the decoder has the stream, up to a frame that begins raw
	decodingToEnd                   // the decoder has the rest of the stream
	streamEnded                     // the stream ended, cleanly or not: err says
)

// maxFrameWindow is newZstdReader's WithDecoderMaxWindow: a larger window is the decoder's to refuse.
const maxFrameWindow = 128 << 20

// frameHead is a frame header as read from the stream, with its bytes.
type frameHead struct {
	zstdframe.Header
	raw   [18]byte // its bytes, for the decoder if it gets the frame
	n     int      // how many of raw were read
	start int64    // file offset of the frame
}

// blocks is the file offset of the frame's first block.
func (h *frameHead) blocks() int64 { return h.start + int64(h.n) }

// maxBlock is the largest block the frame may hold.
func (h *frameHead) maxBlock() int { return int(min(h.Window, zstdframe.MaxBlock)) }

// blockHead is a block header with its bytes.
type blockHead struct {
	zstdframe.Block
	raw [3]byte
}

type rawFrames struct {
	in   *prefetched
	file io.ReaderAt // the same bytes by offset
	size int64       // the file's size

	state frameState
	err   error // the error after the stream's end (io.EOF when clean)

	head   frameHead // the frame being read
	left   int       // in inFrame: bytes of the current raw block not returned yet
	out    []byte    // in inFrame: content of the current decoded block not returned yet
	last   bool      // the current block is the frame's last
	served int64     // content of the current frame returned so far

	blk      *zstdblock.Decoder // decodes the frame's other blocks; made at the first one
	blkReady bool               // blk was reset for the current frame
	hist     []span             // raw content since the last block blk decoded: its history
	histN    int                // bytes in hist
	body     []byte             // a block's input, for blk
	scan     []byte             // owns's buffer
	verify   bool               // check the frames' checksums (the records carry no CRC)
	sum      xxhash.Digest      // the current frame's content before its last block, when verify

	dec     *zstd.Decoder  // made at the first frame that needs it
	opts    []zstd.DOption // its options
	feed    feed           // its input
	discard int64          // the decoder's content to drop: a frame begun here, decoded again
	ahead   *frameHead     // a frame the feed found this reader reads: taken back once the decoder ends
	aheadB  blockHead      // that frame's first block
	drop    []byte         // where the dropped content is read
}

// span is content at a file offset: a raw block, or the end of one.
type span struct {
	off int64
	n   int
}

// newRawFrames decodes the zstd stream of in, a regular file read ahead (in.pre.file is set).
// With verify, the frames' checksums are checked, here or by the decoder.
func newRawFrames(in *prefetched, opts []zstd.DOption, verify bool) *rawFrames {
	r := &rawFrames{in: in, file: in.pre.file, size: in.pre.size, opts: opts, verify: verify}
	r.feed.r = r
	return r
}

// readHead reads a frame header, keeping its bytes. ok is false for anything but a zstd frame
// this reader can follow (the bytes read are then in h.raw[:h.n]); err is io.EOF only at the
// clean end of the stream.
func (r *rawFrames) readHead() (h frameHead, ok bool, err error) {
	h.start = r.in.off
	read := func(k int) bool {
		m, e := io.ReadFull(r.in, h.raw[h.n:h.n+k])
		h.n += m
		err = e
		return e == nil
	}
	if !read(4) {
		if h.n == 0 && err == io.EOF {
			return h, false, io.EOF
		}
		return h, false, nil
	}
	if binary.LittleEndian.Uint32(h.raw[:4]) != zstdframe.Magic || !read(1) ||
		!read(zstdframe.HeaderLen(h.raw[4])-5) {
		return h, false, nil
	}
	if h.Header, ok = zstdframe.ParseHeader(h.raw[:h.n]); !ok || h.Dictionary() ||
		h.Window > maxFrameWindow || h.Window < 1<<10 {
		return h, false, nil
	}
	return h, true, nil
}

// readBlockHead reads a block header; ok is false if the stream ends or fails first.
func (r *rawFrames) readBlockHead() (b blockHead, n int, ok bool) {
	n, err := io.ReadFull(r.in, b.raw[:])
	if err != nil {
		return b, n, false
	}
	b.Block = zstdframe.ParseBlock(b.raw)
	return b, 3, true
}

// blockOK reports whether block b, starting at the current input offset after served bytes of
// its frame's content, can be read here: the decoder would return its content (within the
// frame's bounds and content size; the decoder withholds a block that passes the size, or a last
// block that misses it; a decoded block's size is checked once decoded) and its bytes are whole
// in the file, with the checksum after a last block.
func (r *rawFrames) blockOK(h *frameHead, served int64, b blockHead) bool {
	if b.Type == zstdframe.Reserved || b.Size > h.maxBlock() {
		return false
	}
	end := r.in.off + int64(b.Body())
	if b.Last && h.Checksum() {
		end += 4
	}
	if b.Type != zstdframe.Compressed && h.Size >= 0 &&
		(served+int64(b.Size) > h.Size || b.Last && served+int64(b.Size) != h.Size) {
		return false
	}
	return end <= r.size
}

// maxOwnWindow bounds the window of a frame whose compressed blocks are decoded here (blk keeps
// two windows); a larger one's are the decoder's.
const maxOwnWindow = 16 << 20

// owns reports whether this reader reads the frame h, whose first block is b (the input just
// after b's header): when its content stored as it is (raw blocks, raw literals) outweighs the
// rest ownRawRatio to 1, as the Go decoder copies a raw block three times and is faster than blk
// at the rest. A frame that begins raw is
// taken as such; another is judged by its first ownScanBlocks blocks, whose headers are read
// ahead from the file (a frame that ends early or breaks a rule counts what came before).
// A wrong guess costs time, not content: blk and the decoder decode alike.
func (r *rawFrames) owns(h *frameHead, b blockHead) bool {
	if !r.blockOK(h, 0, b) {
		return false
	}
	if b.Type == zstdframe.Raw {
		return true
	}
	if h.Window > maxOwnWindow {
		return false
	}
	// cheap: the bytes of raw blocks, and of compressed blocks' raw literals (the first block
	// after a run of metadata holds the start of the next raw run so); dear: the rest.
	var cheap, dear int64
	off := r.in.off // the current block's body
	var lits [3]byte
	n, _ := r.file.ReadAt(lits[:], off)
	lit := lits[:n] // the first bytes of the current block's body
	// The headers are read in pieces of ownScan bytes, as a compressed frame's lie close
	// together, or alone (with the next body's first bytes) after a block of a quarter of that
	// or more.
	var buf []byte
	var bufOff int64
	for i := 0; i < ownScanBlocks; i++ {
		switch b.Type {
		case zstdframe.Raw:
			cheap += int64(b.Size)
		case zstdframe.Compressed:
			k := min(int64(zstdblock.RawLiterals(lit)), int64(b.Size))
			cheap += k
			dear += int64(b.Size) - k
		default:
			dear++
		}
		off += int64(b.Body())
		if b.Last || dear > cheap+ownScanLead {
			break
		}
		if off < bufOff || off+6 > bufOff+int64(len(buf)) {
			if r.scan == nil {
				r.scan = make([]byte, ownScan)
			}
			piece := r.scan
			if b.Body() >= ownScan/4 {
				piece = piece[:6] // after a large block another is likely
			}
			n, _ := r.file.ReadAt(piece, off)
			buf, bufOff = r.scan[:n], off
			if n < 3 {
				break
			}
		}
		at := off - bufOff
		off += 3
		if b = (blockHead{Block: zstdframe.ParseBlock([3]byte(buf[at : at+3]))}); b.Type == zstdframe.Reserved {
			break
		}
		lit = buf[at+3 : min(at+6, int64(len(buf)))]
	}
	return dear*ownRawRatio <= cheap
}

// ownScanBlocks blocks of a frame are read ahead to judge it (8 MiB of content at most: the
// dm-log-writes log of the bench's large case is past 99% raw by then, as it is whole), or
// fewer once its dear bytes lead the cheap ones by ownScanLead: a frame of real data,
// compressed blocks of tens of KiB each, is judged in a few reads (before that bound, the scan
// was 10,000 reads of the `real` bench log, 739 reads in all before the scan).
const (
	ownScanBlocks = 64
	ownScanLead   = 256 << 10
)

// ownRawRatio is how many bytes of raw blocks a frame must hold for each byte of its other
// blocks to be read here. zstdblock spends about 4.6 ns more than the Go decoder per byte of a
// compressed block of real data (BenchmarkDecodeFile on the bench's real log: 2.95 s against
// 1.0 s for 420 MB), and saves it about 0.1 ns per byte of a raw block (39 ms against 120 ms on
// the large dm-log-writes log, 1.07 GB raw): even at 46 to 1. That log's frame holds 324 to 1.
const ownRawRatio = 64

// ownScan is the piece of a frame owns reads at once.
const ownScan = 16 << 10

// startFrame reads the next frame's header and first block header and decides who reads the
// frame. It returns true if this reader does (state inFrame, at its first block); otherwise the
// decoder's input is set up to begin with what was read.
func (r *rawFrames) startFrame() (own bool, err error) {
	h, ok, err := r.readHead()
	if err == io.EOF {
		return false, io.EOF
	}
	if !ok {
		r.feed.restart(h.raw[:h.n], nil, false, nil, nil)
		return false, nil
	}
	b, n, ok := r.readBlockHead()
	switch {
	case !ok:
		r.feed.restart(h.raw[:h.n], nil, false, b.raw[:n], nil)
	case r.owns(&h, b):
		r.beginFrame(h)
		return true, r.startBlock(b)
	default:
		r.feed.restart(h.raw[:h.n], nil, true, b.raw[:], &frameCursor{head: h, block: b})
	}
	return false, nil
}

// beginFrame starts reading frame h here.
func (r *rawFrames) beginFrame(h frameHead) {
	r.head, r.served = h, 0
	r.state = inFrame
	r.blkReady = false
	r.hist, r.histN = r.hist[:0], 0
	r.sum.Reset()
}

// startBlock reads block b of the current frame, whose header was just read: a raw block is
// returned from the input, another decoded by blk. What cannot be read so goes to the decoder.
func (r *rawFrames) startBlock(b blockHead) error {
	h := &r.head
	if !r.blockOK(h, r.served, b) {
		if b.Type == zstdframe.Raw || b.Type == zstdframe.Reserved { // the decoder's to judge
			return r.toDecoder(b.raw[:], nil)
		}
		return r.toDecoder(b.raw[:], &frameCursor{head: *h, block: b})
	}
	r.last = b.Last
	if b.Type == zstdframe.Raw {
		r.left = b.Size
		r.noteRaw(r.in.off, b.Size)
		return r.checkLast(nil)
	}
	if h.Window > maxOwnWindow {
		return r.toDecoder(b.raw[:], &frameCursor{head: *h, block: b})
	}
	body, err := r.blockBody(b.Body())
	if err != nil {
		return r.toDecoder(append(b.raw[:], body...), nil)
	}
	if err := r.history(); err != nil {
		return r.toDecoder(nil, nil)
	}
	var out []byte
	if b.Type == zstdframe.RLE {
		out = r.blk.RLE(body[0], b.Size)
	} else {
		var err error
		if out, err = r.blk.Compressed(body, h.maxBlock()); err != nil {
			// Damage, or a frame blk does not read: the decoder reads it from its start and
			// decides.
			return r.toDecoder(nil, nil)
		}
		if h.Size >= 0 && (r.served+int64(len(out)) > h.Size || b.Last && r.served+int64(len(out)) != h.Size) {
			return r.toDecoder(nil, nil)
		}
	}
	r.out = out
	return r.checkLast(out)
}

// blockBody reads the next n bytes of the input, a block's body, for this call only: where
// they lie whole in the chunk at hand, in place (the chunk stays until the input's next read,
// and the body is decoded before that); else copied into body. (On the bench's large
// dm-log-writes log, 948 such bodies of nearly 128 KiB each were copied, 12 ms a run on the
// decoding goroutine.) On an error, what was read.
func (r *rawFrames) blockBody(n int) ([]byte, error) {
	if a, err := r.in.avail(); err == nil && len(a) >= n {
		r.in.consume(n)
		return a[:n], nil
	}
	if cap(r.body) < n {
		r.body = make([]byte, zstdframe.MaxBlock)
	}
	body := r.body[:n]
	k, err := io.ReadFull(r.in, body)
	return body[:k], err
}

// checkLast checks the frame's checksum before its last block is returned, as the decoder does
// (it withholds the block of a frame whose checksum fails): content is the block's, or nil for
// a raw block, read again from the file.
func (r *rawFrames) checkLast(content []byte) error {
	h := &r.head
	if !r.verify || !r.last || !h.Checksum() {
		return nil
	}
	at := r.in.off // the checksum's offset
	if content == nil {
		if cap(r.body) < r.left {
			r.body = make([]byte, zstdframe.MaxBlock)
		}
		content = r.body[:r.left]
		if _, err := r.file.ReadAt(content, r.in.off); err != nil {
			return err
		}
		at += int64(r.left)
	}
	var want [4]byte
	if _, err := r.file.ReadAt(want[:], at); err != nil {
		return err
	}
	d := r.sum
	_, _ = d.Write(content)
	if binary.LittleEndian.Uint32(want[:]) != uint32(d.Sum64()) {
		return zstd.ErrCRCMismatch
	}
	return nil
}

// noteRaw records a raw block's content (n bytes at file offset off) for blk's history: only
// the last window of it can be reached, and it is read again from the file only if a block that
// can reach it follows.
func (r *rawFrames) noteRaw(off int64, n int) {
	r.hist = append(r.hist, span{off, n})
	r.histN += n
	w := int(min(r.head.Window, maxOwnWindow))
	for len(r.hist) > 1 && r.histN-r.hist[0].n >= w {
		r.histN -= r.hist[0].n
		r.hist = append(r.hist[:0], r.hist[1:]...)
	}
}

// history prepares blk for the frame's next block: reset at the frame's first, then given the
// raw content since the last block it decoded.
func (r *rawFrames) history() error {
	if r.blk == nil {
		r.blk = new(zstdblock.Decoder)
	}
	w := int(r.head.Window)
	if !r.blkReady {
		r.blk.Reset(w)
		r.blkReady = true
	}
	skip := max(0, r.histN-w)
	for _, s := range r.hist {
		d := min(skip, s.n)
		skip -= d
		if s.n -= d; s.n == 0 {
			continue
		}
		if _, err := r.file.ReadAt(r.blk.Extend(s.n), s.off+int64(d)); err != nil {
			return err
		}
	}
	r.hist, r.histN = r.hist[:0], 0
	return nil
}

// toDecoder gives the current frame to the decoder, from its start: the header, the blocks
// already returned (read again from the file, up to the input's offset before tail), then tail
// (bytes read from the input after them) and the rest of the stream, followed as the frame's
// block b when cur is set. The content already returned is dropped from the decoder's output.
func (r *rawFrames) toDecoder(tail []byte, cur *frameCursor) error {
	h := &r.head
	again := io.NewSectionReader(r.file, h.blocks(), r.in.off-int64(len(tail))-h.blocks())
	r.feed.restart(h.raw[:h.n], again, cur != nil, tail, cur)
	r.discard = r.served
	return r.startDecoder()
}

// startDecoder starts (or restarts) the decoder on the feed.
func (r *rawFrames) startDecoder() error {
	r.state = decoding
	if !r.feed.follow {
		r.state = decodingToEnd
	}
	if r.dec == nil {
		d, err := newZstdReader(&r.feed, r.opts...)
		if err != nil {
			return err
		}
		r.dec = d
		return nil
	}
	return r.dec.Reset(&r.feed)
}

// nextBlock moves past a block returned whole: to the next block of the frame, or past the
// frame. It may hand the stream to the decoder.
func (r *rawFrames) nextBlock() error {
	h := &r.head
	if r.last {
		if h.Checksum() {
			var sum [4]byte
			if n, err := io.ReadFull(r.in, sum[:]); err != nil {
				return r.toDecoder(sum[:n], nil)
			} // checked by checkLast, before the last block was returned
		}
		r.state = atBoundary
		return nil
	}
	b, n, ok := r.readBlockHead()
	if !ok {
		return r.toDecoder(b.raw[:n], nil)
	}
	return r.startBlock(b)
}

// step moves to where content can be returned: a raw block with bytes left, or the decoder.
func (r *rawFrames) step() error {
	for {
		switch r.state {
		case inFrame:
			if r.left > 0 || len(r.out) > 0 {
				return nil
			}
			if err := r.nextBlock(); err != nil {
				return err
			}
		case atBoundary:
			own, err := r.startFrame()
			if err != nil {
				return err
			}
			if own {
				continue
			}
			r.discard = 0
			if err := r.startDecoder(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (r *rawFrames) Read(p []byte) (int, error) {
	for {
		if r.state == streamEnded {
			return 0, r.err
		}
		if err := r.step(); err != nil {
			r.state, r.err = streamEnded, err
			continue
		}
		if r.state == inFrame {
			if len(r.out) > 0 {
				n := copy(p, r.out)
				r.out = r.out[n:]
				r.returned(p[:n])
				return n, nil
			}
			a, err := r.in.avail()
			if err != nil {
				r.state, r.err = streamEnded, noEOF(err)
				continue
			}
			n := copy(p, a[:min(len(a), r.left)])
			r.in.consume(n)
			r.left -= n
			r.returned(p[:n])
			return n, nil
		}
		if r.discard > 0 {
			if r.drop == nil {
				r.drop = make([]byte, 32<<10)
			}
			n, err := r.dec.Read(r.drop[:min(int64(len(r.drop)), r.discard)])
			r.discard -= int64(n)
			if err != nil {
				r.state, r.err = streamEnded, noEOF(err)
			}
			continue
		}
		n, err := r.dec.Read(p)
		if err == io.EOF && r.ahead != nil {
			// The feed stopped before a frame this reader reads: take the stream back.
			r.beginFrame(*r.ahead)
			r.ahead = nil
			err = r.startBlock(r.aheadB)
		}
		if err != nil {
			r.state, r.err = streamEnded, err
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// returned counts content p returned from the current frame.
func (r *rawFrames) returned(p []byte) {
	r.served += int64(len(p))
	if r.verify && !r.last { // checkLast hashed the last block whole
		_, _ = r.sum.Write(p)
	}
}

// lend is lender's: the bytes of a raw block in memory, or of a block decoded here.
func (r *rawFrames) lend(n, unit int) []byte {
	if r.state != inFrame {
		return nil
	}
	if len(r.out) > 0 { // a decoded block's content, in blk's history until the next block
		k := min(len(r.out), n) &^ (unit - 1)
		if k == 0 {
			return nil
		}
		s := r.out[:k]
		r.out = r.out[k:]
		r.returned(s)
		return s
	}
	if r.left < unit {
		return nil
	}
	a, err := r.in.avail()
	if err != nil {
		return nil
	}
	k := min(len(a), r.left, n) &^ (unit - 1)
	if k == 0 {
		return nil
	}
	r.in.consume(k)
	r.left -= k
	r.returned(a[:k])
	return a[:k]
}

// lending reports whether the content comes from a frame read here, where lend may lend the next
// units: a raw block's, in place in the input, or a block's decoded here.
func (r *rawFrames) lending() bool { return r.state == inFrame }

// Close releases the decoder; safe on nil.
func (r *rawFrames) Close() {
	if r != nil && r.dec != nil {
		r.dec.Close()
		r.dec = nil
	}
}

// frameCursor is where the feed stands in a frame it follows: the frame's header and the block
// whose body it passes.
type frameCursor struct {
	head  frameHead
	block blockHead
}

// feed is the decoder's input: bytes already read from the stream (or read again from the file),
// then the stream itself. While it follows the frames (follow), it reads the stream's headers
// as they pass, and ends (io.EOF, to the decoder a clean end) before a frame that begins with a
// raw block, leaving that frame to rawFrames.
type feed struct {
	r      *rawFrames
	first  io.Reader // what goes before the stream
	follow bool
	cur    frameHead
	left   int64 // bytes of the stream to pass before the next header
	next   feedNext
	queue  []byte // header bytes read from the stream, to pass next
	qbuf   [32]byte
	ended  bool
}

// feedNext is what comes after the bytes the feed passes.
type feedNext int

const (
	nextBlock    feedNext = iota // a block header
	nextChecksum                 // the frame's checksum
	nextFrame                    // a frame header
)

// restart sets the feed to pass head, again and tail, then the stream; following the frames
// if follow, from cur's block body (or, cur nil, from a frame boundary).
func (f *feed) restart(head []byte, again io.Reader, follow bool, tail []byte, cur *frameCursor) {
	parts := []io.Reader{bytes.NewReader(bytes.Clone(head))}
	if again != nil {
		parts = append(parts, again)
	}
	if len(tail) > 0 {
		parts = append(parts, bytes.NewReader(bytes.Clone(tail)))
	}
	f.first = io.MultiReader(parts...)
	f.follow, f.queue, f.ended = follow, nil, false
	f.left, f.next = 0, nextFrame
	if cur != nil {
		f.cur = cur.head
		f.afterBlockHead(cur.block)
	}
}

// afterBlockHead sets the feed to pass block b's body, then what follows it.
func (f *feed) afterBlockHead(b blockHead) {
	f.left = int64(b.Body())
	switch {
	case !b.Last:
		f.next = nextBlock
	case f.cur.Checksum():
		f.next = nextChecksum
	default:
		f.next = nextFrame
	}
}

func (f *feed) Read(p []byte) (int, error) {
	if f.first != nil {
		n, err := f.first.Read(p)
		if err == io.EOF {
			f.first, err = nil, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	if len(f.queue) > 0 {
		n := copy(p, f.queue)
		f.queue = f.queue[n:]
		return n, nil
	}
	if f.ended {
		return 0, io.EOF
	}
	for f.follow && f.left == 0 {
		if err := f.header(); err != nil {
			return 0, err
		}
		if len(f.queue) > 0 {
			return f.Read(p)
		}
	}
	if !f.follow {
		return f.r.in.Read(p)
	}
	n, err := f.r.in.Read(p[:min(int64(len(p)), f.left)])
	f.left -= int64(n)
	return n, err
}

// header reads the next header of the stream into the queue and sets what follows it. At a
// frame boundary before a frame that begins raw, it ends the feed and leaves the frame ahead.
func (f *feed) header() error {
	r := f.r
	switch f.next {
	case nextChecksum:
		f.left, f.next = 4, nextFrame
		return nil
	case nextBlock:
		b, n, ok := r.readBlockHead()
		f.queue = append(f.qbuf[:0], b.raw[:n]...)
		if !ok || b.Type == zstdframe.Reserved {
			f.follow = false // the decoder reports it
			return nil
		}
		f.afterBlockHead(b)
		return nil
	}
	h, ok, err := r.readHead()
	if err == io.EOF {
		f.ended = true
		return io.EOF
	}
	f.queue = append(f.qbuf[:0], h.raw[:h.n]...)
	if !ok {
		f.follow = false
		return nil
	}
	b, n, ok := r.readBlockHead()
	if !ok {
		f.queue = append(f.queue, b.raw[:n]...)
		f.follow = false
		return nil
	}
	if r.owns(&h, b) {
		r.ahead, r.aheadB = &h, b
		f.queue, f.ended = nil, true
		return io.EOF
	}
	f.queue = append(f.queue, b.raw[:]...)
	if b.Type == zstdframe.Reserved {
		f.follow = false
		return nil
	}
	f.cur = h
	f.afterBlockHead(b)
	return nil
}
