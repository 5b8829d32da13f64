package blklog

// rawFrames decodes the zstd stream of a native log file and lends the content of its Raw_Blocks
// in place, out of the prefetcher's buffers, instead of copying it.
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
// back into earlier content; compressed blocks reuse earlier tables), and a raw block depends on
// nothing. So this reader follows the frames itself, header by header: while every block of a
// frame so far is raw, it returns the blocks' bytes from its input, and lends them (lend) without
// a copy to a caller that can use them where they lie. The first block that is not raw, or
// anything this reader does not expect (a skippable frame, a dictionary, a reserved bit or block
// type, a size out of bounds, the file's end), hands the stream to the Go decoder: from the start
// of the frame, whose blocks already returned are read again from the file (the decoder needs
// them as history) and whose content already returned is decoded again and dropped. The decoder
// then keeps the stream, frame after frame, until a frame begins with a raw block, where this
// reader takes it back; the decoder's input is given to it through feed, which follows the same
// headers to know where its frames end. So the content returned is the decoder's, and a damaged
// stream fails as the decoder makes it fail, after the same content.
//
// The frames' XXH64 checksums are not checked, as the decoder does not check them for a native
// log either (newReader): every record carries a CRC-32C of all its bytes. Only a regular file is
// read so (reading again needs its offsets, and the file's size tells that a block is whole
// before its first byte is returned).

import (
	"bytes"
	"encoding/binary"
	"io"

	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

// frameState is where the stream stands for rawFrames.
type frameState int

const (
	atBoundary    frameState = iota // the next byte is a frame's first (or the stream's end)
	inRawFrame                      // in a frame whose blocks so far are raw: returned from the input
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
	left   int       // in inRawFrame: bytes of the current raw block not returned yet
	last   bool      // the current raw block is the frame's last
	served int64     // content of the current frame returned so far

	dec     *zstd.Decoder  // made at the first frame that needs it
	opts    []zstd.DOption // its options
	feed    feed           // its input
	discard int64          // the decoder's content to drop: a frame begun here, decoded again
	ahead   *frameHead     // a frame the feed found beginning raw: taken back once the decoder ends
	aheadB  blockHead      // that frame's first block
	drop    []byte         // where the dropped content is read
}

// newRawFrames decodes the zstd stream of in, a regular file read ahead (in.pre.file is set).
func newRawFrames(in *prefetched, opts []zstd.DOption) *rawFrames {
	r := &rawFrames{in: in, file: in.pre.file, size: in.pre.size, opts: opts}
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

// ownable reports whether raw block b, starting at the current input offset after served bytes
// of its frame's content, can be returned from the input: the decoder would return it (within
// the frame's bounds and content size; the decoder withholds a block that passes the size, or a
// last block that misses it) and it is whole in the file, with the checksum after a last block.
func (r *rawFrames) ownable(h *frameHead, served int64, b blockHead) bool {
	end := r.in.off + int64(b.Size)
	if b.Last && h.Checksum() {
		end += 4
	}
	if h.Size >= 0 && (served+int64(b.Size) > h.Size || b.Last && served+int64(b.Size) != h.Size) {
		return false
	}
	return b.Type == zstdframe.Raw && b.Size <= h.maxBlock() && end <= r.size
}

// startFrame reads the next frame's header and first block header and decides who reads the
// frame. It returns true if this reader does (state inRawFrame); otherwise the decoder's input
// is set up to begin with what was read.
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
	case r.ownable(&h, 0, b):
		r.head, r.served = h, 0
		r.left, r.last = b.Size, b.Last
		return true, nil
	default:
		r.feed.restart(h.raw[:h.n], nil, true, b.raw[:], &frameCursor{head: h, block: b})
	}
	return false, nil
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

// nextRawBlock moves past a raw block returned whole: to the next block of the frame, or past
// the frame. It may hand the stream to the decoder.
func (r *rawFrames) nextRawBlock() error {
	h := &r.head
	if r.last {
		if h.Checksum() {
			var sum [4]byte
			if n, err := io.ReadFull(r.in, sum[:]); err != nil {
				return r.toDecoder(sum[:n], nil)
			}
		}
		r.state = atBoundary
		return nil
	}
	b, n, ok := r.readBlockHead()
	switch {
	case !ok:
		return r.toDecoder(b.raw[:n], nil)
	case r.ownable(h, r.served, b):
		r.left, r.last = b.Size, b.Last
		return nil
	case b.Type == zstdframe.Raw || b.Type == zstdframe.Reserved: // raw but out of bounds or size, or reserved: the decoder's to judge
		return r.toDecoder(b.raw[:], nil)
	}
	return r.toDecoder(b.raw[:], &frameCursor{head: *h, block: b})
}

// step moves to where content can be returned: a raw block with bytes left, or the decoder.
func (r *rawFrames) step() error {
	for {
		switch r.state {
		case inRawFrame:
			if r.left > 0 {
				return nil
			}
			if err := r.nextRawBlock(); err != nil {
				return err
			}
		case atBoundary:
			own, err := r.startFrame()
			if err != nil {
				return err
			}
			if own {
				r.state = inRawFrame
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
		if r.state == inRawFrame {
			a, err := r.in.avail()
			if err != nil {
				r.state, r.err = streamEnded, noEOF(err)
				continue
			}
			n := copy(p, a[:min(len(a), r.left)])
			r.in.consume(n)
			r.left -= n
			r.served += int64(n)
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
			// The feed stopped before a frame that begins raw: take the stream back.
			r.head, r.served = *r.ahead, 0
			r.left, r.last = r.aheadB.Size, r.aheadB.Last
			r.ahead = nil
			r.state = inRawFrame
			err = nil
		}
		if err != nil {
			r.state, r.err = streamEnded, err
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// lend is lender's: the bytes of a raw block in memory.
func (r *rawFrames) lend(n, unit int) []byte {
	if r.state != inRawFrame || r.left < unit {
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
	r.served += int64(k)
	return a[:k]
}

// lending reports whether the content comes from a raw block, where lend may lend the next units.
func (r *rawFrames) lending() bool { return r.state == inRawFrame }

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
	if r.ownable(&h, 0, b) {
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
