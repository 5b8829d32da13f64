package diskimage

import (
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// skippableMagic (low 4 bits aside) starts a skippable frame.
const skippableMagic = 0x184D2A50

// frame is one zstd frame of a file: where its compressed bytes lie, and its decompressed
// size when its header says (-1 when not).
type frame struct {
	off, len int64
	size     int64
}

// maxFrame bounds the decompressed size of one frame decoded whole in memory for parallel
// decoding; a file with a larger frame is decoded as one stream.
const maxFrame = 32 << 20

// scanFrames lists the frames of a zstd file by walking frame and block headers (RFC 8878
// section 3.1), without decoding, skipping skippable frames (pzstd writes one before each
// frame). It returns nil (decode as one stream) for a single frame, and for a damaged file:
// the streaming decoder then reports the damage where it is.
func scanFrames(f io.ReaderAt, size int64) []frame {
	frames := walkFrames(f, size, nil)
	if len(frames) < 2 {
		return nil
	}
	return frames
}

// contentSize is the decompressed size of a zstd file as its frame headers give it, or -1
// when a frame does not say or the file is damaged; a size of limit or more as soon as the
// frames so far reach it, so that a large file is not walked to its end.
func contentSize(f io.ReaderAt, size, limit int64) int64 {
	var n int64
	unknown := false
	frames := walkFrames(f, size, func(fr frame) bool {
		if fr.size < 0 {
			unknown = true
			return true
		}
		n += fr.size
		return n >= limit
	})
	if frames == nil || unknown {
		return -1
	}
	return n
}

// walkFrames is scanFrames' walk: every frame, nil for a damaged file. stop, when set, sees
// each frame's header (its len not yet known) and ends the walk early by returning true.
func walkFrames(f io.ReaderAt, size int64, stop func(frame) bool) []frame {
	pr := &peeker{r: f}
	var frames []frame
	for off := int64(0); off < size; {
		head, err := pr.peek(off, 4)
		if err != nil {
			return nil
		}
		magic := binary.LittleEndian.Uint32(head)
		if magic&0xFFFFFFF0 == skippableMagic {
			h, err := pr.peek(off+4, 4)
			if err != nil {
				return nil
			}
			off += 8 + int64(binary.LittleEndian.Uint32(h))
			continue
		}
		if magic != 0xFD2FB528 {
			return nil
		}
		fh, ok := readFrameHeader(pr, off)
		if !ok {
			return nil
		}
		fcs := fh.size
		p := off + fh.len
		if stop != nil && stop(frame{off: off, size: fcs}) {
			return append(frames, frame{off: off, size: fcs})
		}
		for {
			bh, err := pr.peek(p, 3)
			if err != nil {
				return nil
			}
			v := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
			last, typ, bsize := v&1 != 0, (v>>1)&3, int64(v>>3)
			switch typ {
			case 1: // RLE: one byte stands for bsize
				bsize = 1
			case 3:
				return nil
			}
			p += 3 + bsize
			if last {
				break
			}
		}
		if fh.checksum() {
			p += 4 // content checksum
		}
		if p > size {
			return nil
		}
		frames = append(frames, frame{off: off, len: p - off, size: fcs})
		off = p
	}
	return frames
}

// frameHeader is a zstd frame's header (RFC 8878 section 3.1.1.1).
type frameHeader struct {
	descriptor byte  // Frame_Header_Descriptor
	windowDesc byte  // Window_Descriptor; 0 in a single-segment frame, which has none
	window     int64 // the window size; for a single-segment frame its content size
	size       int64 // Frame_Content_Size, -1 when the header does not give it
	len        int64 // the header's length, magic included
}

func (h frameHeader) single() bool     { return h.descriptor&0x20 != 0 }
func (h frameHeader) checksum() bool   { return h.descriptor&0x04 != 0 }
func (h frameHeader) dictionary() bool { return h.descriptor&0x03 != 0 }

// readFrameHeader reads the header of the frame at off, whose magic the caller has checked;
// false when it is cut short or has its reserved bit set.
func readFrameHeader(pr *peeker, off int64) (frameHeader, bool) {
	h, err := pr.peek(off+4, 1)
	if err != nil {
		return frameHeader{}, false
	}
	fh := frameHeader{descriptor: h[0], size: -1}
	if fh.descriptor&0x08 != 0 { // reserved bit
		return frameHeader{}, false
	}
	fcsLen := [4]int64{0, 2, 4, 8}[fh.descriptor>>6]
	if fh.descriptor>>6 == 0 && fh.single() {
		fcsLen = 1
	}
	p := off + 5
	if !fh.single() {
		w, err := pr.peek(p, 1)
		if err != nil {
			return frameHeader{}, false
		}
		fh.windowDesc = w[0]
		fh.window = int64(1) << (10 + fh.windowDesc>>3)
		fh.window += fh.window / 8 * int64(fh.windowDesc&7)
		p++
	}
	p += [4]int64{0, 1, 2, 4}[fh.descriptor&3] // dictionary ID
	if fcsLen > 0 {
		b, err := pr.peek(p, int(fcsLen))
		if err != nil {
			return frameHeader{}, false
		}
		var v [8]byte
		copy(v[:], b)
		fh.size = int64(binary.LittleEndian.Uint64(v[:]))
		if fcsLen == 2 {
			fh.size += 256 // the 2-byte field is offset by 256
		}
		if fh.size < 0 {
			return frameHeader{}, false
		}
	}
	fh.len = p + fcsLen - off
	if fh.single() {
		fh.window = fh.size
	}
	return fh, true
}

// peeker serves small reads at increasing offsets from 64 KiB reads of the file, so walking
// the block headers of a well-compressed image costs few system calls.
type peeker struct {
	r   io.ReaderAt
	buf []byte
	at  int64
}

func (p *peeker) peek(off int64, n int) ([]byte, error) {
	if off < p.at || off+int64(n) > p.at+int64(len(p.buf)) {
		if p.buf == nil {
			p.buf = make([]byte, 64<<10)
		}
		p.buf = p.buf[:cap(p.buf)]
		k, err := p.r.ReadAt(p.buf, off)
		p.buf, p.at = p.buf[:k], off
		if k < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return p.buf[off-p.at : off-p.at+int64(n)], nil
}

// errFrameTooLarge stops parallel decoding: a frame holds more than maxFrame bytes.
var errFrameTooLarge = errors.New("frame larger than the parallel decoding bound")

// decodeFrames decodes the frames on all cores, each whole into memory, and hands their
// content to w in file order. The error is w's (its werr set) or the stream's, with w.off
// where the content stopped.
func decodeFrames(f io.ReaderAt, frames []frame, w *seqWriter) error {
	type result struct {
		data []byte
		err  error
	}
	workers := runtime.GOMAXPROCS(0)
	done := make([]chan result, len(frames))
	for i := range done {
		done[i] = make(chan result, 1)
	}
	type job struct {
		i   int
		buf []byte
	}
	jobs := make(chan job)
	stop := make(chan struct{})
	// A frame is decoded at most 2*workers frames ahead of the one being stored, which
	// bounds memory to about that many frames.
	slots := make(chan []byte, 2*workers)
	for range 2 * workers {
		slots <- nil
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30),
				zstd.WithDecoderMaxMemory(maxFrame))
			if err == nil {
				defer zr.Close()
			}
			var comp []byte
			for j := range jobs {
				i, buf := j.i, j.buf
				if err != nil {
					done[i] <- result{nil, err}
					continue
				}
				fr := frames[i]
				comp = slices.Grow(comp[:0], int(fr.len))[:fr.len]
				if _, rerr := f.ReadAt(comp, fr.off); rerr != nil {
					done[i] <- result{buf, rerr}
					continue
				}
				out, derr := zr.DecodeAll(comp, buf[:0])
				if errors.Is(derr, zstd.ErrDecoderSizeExceeded) || errors.Is(derr, zstd.ErrWindowSizeExceeded) {
					derr = errFrameTooLarge
				}
				done[i] <- result{out, derr}
			}
		}()
	}
	// Slots are taken in frame order, here, so the frame the consumer waits for always has one.
	go func() {
		defer close(jobs)
		for i := range frames {
			var buf []byte
			select {
			case buf = <-slots:
			case <-stop:
				return
			}
			select {
			case jobs <- job{i, buf}:
			case <-stop:
				return
			}
		}
	}()
	var err error
	for i := range frames {
		r := <-done[i]
		if r.err == nil {
			_, r.err = w.Write(r.data)
		}
		slots <- r.data
		if r.err != nil {
			err = r.err
			break
		}
	}
	close(stop)
	wg.Wait()
	if err == nil {
		err = w.flush()
	}
	return err
}
