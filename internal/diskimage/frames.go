package diskimage

import (
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

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
		if zstdframe.IsSkippable(magic) {
			h, err := pr.peek(off+4, 4)
			if err != nil {
				return nil
			}
			off += 8 + int64(binary.LittleEndian.Uint32(h))
			continue
		}
		if magic != zstdframe.Magic {
			return nil
		}
		fh, ok := readFrameHeader(pr, off)
		if !ok {
			return nil
		}
		fcs := fh.Size
		p := off + int64(fh.Len)
		if stop != nil && stop(frame{off: off, size: fcs}) {
			return append(frames, frame{off: off, size: fcs})
		}
		for {
			bh, err := pr.peek(p, 3)
			if err != nil {
				return nil
			}
			b := zstdframe.ParseBlock([3]byte(bh))
			if b.Type == zstdframe.Reserved {
				return nil
			}
			p += 3 + int64(b.Body())
			if b.Last {
				break
			}
		}
		if fh.Checksum() {
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

// readFrameHeader reads the header of the frame at off, whose magic the caller has checked;
// false when it is cut short or has its reserved bit set.
func readFrameHeader(pr *peeker, off int64) (zstdframe.Header, bool) {
	d, err := pr.peek(off+4, 1)
	if err != nil {
		return zstdframe.Header{}, false
	}
	b, err := pr.peek(off, zstdframe.HeaderLen(d[0]))
	if err != nil {
		return zstdframe.Header{}, false
	}
	return zstdframe.ParseHeader(b)
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
