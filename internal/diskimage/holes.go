package diskimage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

// Decoding an image without writing out its long runs of zeros.
//
// zstd stores a 128 KiB block of one repeated byte as an RLE block: a 3-byte header and the
// byte. A file-system image is mostly such blocks of zeros (the 6 GiB bench image: 45,390 of
// its 49,230 blocks, 5.95 of its 6.44 GB), and a decoder spends nearly all its time writing
// them out (klauspost's fills them a byte at a time; zstd -dc takes 0.9 s on that image, most
// of it memset and hashing zeros).
//
// The output of a block depends on the blocks before it in two ways only (RFC 8878 section
// 3.1.1.3): its matches copy from the last Window_Size bytes of output, and its entropy tables
// and repeat offsets may be those of the last compressed block. RLE blocks change neither the
// tables nor the offsets. So a run of zero RLE blocks longer than the window can be replaced by
// a short one: the blocks after it can only reach back into the run, and see zeros either way,
// provided the short run is as long as their matches reach back. planHoles rewrites the frame
// so: each such run becomes one RLE block of holeKeep zeros, and the image gets the rest of the
// run as a hole, never decoded, stored or hashed byte by byte.
//
// Matches after a run reach no further back than holeKeep in practice (zstd's match finders
// keep the most recent position of a sequence, and inside a zero run that is the run's end;
// every fixture image and the bench image decode right keeping a single byte), but nothing in
// the format forbids a match reaching back a whole window. So the result is checked, as zstd
// checks what it writes: the frame's content checksum (XXH64) is computed over the image as
// stored, holes hashed as zeros without reading them (xxh64.Zeros), and compared with the
// frame's. A frame without a checksum is not decoded this way. A mismatch, or any other
// failure, and the image is decoded again the ordinary way, which also says where a damaged
// stream is damaged.
//
// The holes are put in the image in step with the decoder: the rewritten frame is read by
// klauspost's synchronous decoder, which reads a block only once the output of the blocks
// before it has been written (Decoder.WriteTo), so when it reads a short run's block, the
// image has been written up to that run's start. Were that to change, the checksum would fail,
// and the image be decoded again: slower, never wrong.

// holeKeep is how many zero bytes of a run replaced by a hole are still decoded, at the run's
// end: one block of the largest size, which windows under 128 KiB cap.
const holeKeep = 128 << 10

// holeMinDropped is the least number of bytes a frame must leave undecoded for planHoles to
// decode it so: below, the ordinary decoders do as well. A variable for the tests.
var holeMinDropped int64 = 1 << 20

// useHoles lets Open decode frames with holes; the tests turn it off to compare with the
// ordinary decoders.
var useHoles = true

// holePlan is a zstd frame rewritten to leave its long zero runs out.
type holePlan struct {
	header   []byte // the rewritten frame header: no content size, no checksum
	parts    []holePart
	dropped  int64 // bytes of zero runs not decoded
	kept     int64 // bytes decoded, compressed blocks counted at their largest
	size     int64 // the frame's content size, -1 when its header does not give it
	checksum uint32
	frameLen int64 // bytes of the file the frame takes, header to checksum
}

// holePart is a run of the frame's blocks copied as they are (file bytes [off, off+n)), then a
// zero run of hole bytes (0: none), run bytes of blocks in the file, that the rewritten frame
// replaces with one RLE block of keep zeros (flagged last when last).
type holePart struct {
	off, n    int64
	run, hole int64
	keep      int64
	last      bool
}

// planHoles plans the decoding of a file of one zstd frame with a content checksum, or returns
// nil when the file is anything else (several frames, skippable frames, a dictionary, a
// single-segment frame, damage) or would leave out less than holeMinDropped bytes or less
// than half of its content.
func planHoles(f io.ReaderAt, fileSize int64) *holePlan {
	pr := &peeker{r: f}
	if m, err := pr.peek(0, 4); err != nil || binary.LittleEndian.Uint32(m) != zstdframe.Magic {
		return nil
	}
	fh, ok := readFrameHeader(pr, 0)
	// A single-segment frame's window is its content: no run is longer. A dictionary is
	// not supported by the image decoders anyway.
	if !ok || fh.Single() || fh.Dictionary() || !fh.Checksum() {
		return nil
	}
	window, p := fh.Window, int64(fh.Len)
	keep := min(window, holeKeep)
	plan := &holePlan{
		// Magic, then the descriptor without content size (bits 6-7) or checksum (bit 2),
		// and the window descriptor.
		header: []byte{0x28, 0xB5, 0x2F, 0xFD, fh.Descriptor &^ 0xC4, fh.WindowDesc},
		size:   fh.Size,
	}
	var estimate int64 // the content's size, compressed blocks counted at their largest
	part := holePart{off: p}
	var runStart, run int64 // the zero RLE blocks just seen: where in the file, how many bytes
	for {
		bh, err := pr.peek(p, 4)
		if err != nil {
			if bh, err = pr.peek(p, 3); err != nil {
				return nil
			}
		}
		b := zstdframe.ParseBlock([3]byte(bh))
		last, bsize := b.Last, int64(b.Size)
		next := p + 3 + int64(b.Body())
		switch b.Type {
		case zstdframe.Raw:
			estimate += bsize
		case zstdframe.RLE:
			estimate += bsize
			if len(bh) == 4 && bh[3] == 0 {
				if run == 0 {
					runStart = p
				}
				run += bsize
			}
		case zstdframe.Compressed:
			estimate += min(window, zstdframe.MaxBlock)
		default:
			return nil
		}
		if next > fileSize {
			return nil
		}
		zero := b.Type == zstdframe.RLE && len(bh) == 4 && bh[3] == 0
		if !zero || last {
			if run > window {
				// The run ends before this block, or with it when it is the last.
				end := p
				if zero {
					end = next
				}
				part.n = runStart - part.off
				part.run, part.hole, part.keep = end-runStart, run-keep, keep
				part.last = zero && last
				plan.parts = append(plan.parts, part)
				plan.dropped += run - keep
				part = holePart{off: end}
			}
			run = 0
		}
		p = next
		if last {
			break
		}
	}
	if part.off < p {
		part.n = p - part.off // the frame's last block among them, flagged so
		plan.parts = append(plan.parts, part)
	}
	sum, err := pr.peek(p, 4)
	if err != nil || p+4 != fileSize {
		return nil
	}
	plan.checksum = binary.LittleEndian.Uint32(sum)
	plan.frameLen = p + 4
	plan.kept = estimate - plan.dropped
	if plan.dropped < holeMinDropped || plan.dropped*2 < estimate {
		return nil
	}
	return plan
}

// holeReader is the rewritten frame, read from the file: the header, each part's blocks as
// they are, each part's short zero run. hole is called with the bytes a run leaves out when the
// decoder comes to read the run's block.
type holeReader struct {
	plan *holePlan
	src  *bufio.Reader // the file from the end of the original header on
	hole func(n int64) error
	at   int   // the part being read
	left int64 // bytes of its blocks not yet read; -1: not started
	head bool  // the rewritten header is read
	buf  []byte
}

func (r *holeReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		switch {
		case !r.head:
			r.buf, r.head = r.plan.header, true
		case r.at == len(r.plan.parts):
			return 0, io.EOF
		case r.left < 0:
			r.left = r.plan.parts[r.at].n
		case r.left > 0:
			// This part's blocks, straight from the file.
			n, err := io.ReadFull(r.src, p[:min(int64(len(p)), r.left)])
			r.left -= int64(n)
			return n, err
		default:
			part := r.plan.parts[r.at]
			r.at, r.left = r.at+1, -1
			if part.run == 0 {
				continue
			}
			if _, err := r.src.Discard(int(part.run)); err != nil {
				return 0, err
			}
			if err := r.hole(part.hole); err != nil {
				return 0, err
			}
			v := uint32(part.keep)<<3 | 1<<1 // RLE
			if part.last {
				v |= 1
			}
			r.buf = []byte{byte(v), byte(v >> 8), byte(v >> 16), 0}
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// errHoleChecksum is a frame decoded with its zero runs left out whose checksum does not match.
var errHoleChecksum = errors.New("content checksum mismatch")

// decodeHoles decodes the frame plan describes from f into w, leaving its long zero runs out as
// holes, and checks its content checksum on what w stored. w must be new; w.flush is called.
func decodeHoles(f io.ReaderAt, plan *holePlan, w *seqWriter) error {
	w.sum = newXXH64()
	zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
	if err != nil {
		return err
	}
	defer zr.Close()
	start := plan.parts[0].off
	hr := &holeReader{
		plan: plan,
		src:  bufio.NewReaderSize(io.NewSectionReader(f, start, plan.frameLen-start), 1<<20),
		hole: w.Zeros,
		left: -1,
	}
	if err := zr.Reset(hr); err != nil {
		return err
	}
	if _, err := zr.WriteTo(w); err != nil {
		if w.werr != nil {
			return w.werr
		}
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	if plan.size >= 0 && w.off != plan.size {
		return fmt.Errorf("decoded %d bytes, the frame header says %d", w.off, plan.size)
	}
	w.sum.Zeros(w.off - w.summed)
	if got := uint32(w.sum.Sum64()); got != plan.checksum {
		return fmt.Errorf("%w: %08x, the frame says %08x", errHoleChecksum, got, plan.checksum)
	}
	return nil
}
