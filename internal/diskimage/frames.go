package diskimage

import (
	"encoding/binary"
	"io"
	"runtime"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// frame is one zstd frame of a file: where it lies and where its content goes.
type frame struct {
	off, len int64 // compressed bytes in the file
	out, n   int64 // decompressed offset and size (the frame header's Frame_Content_Size)
}

// scanFrames lists the frames of a zstd file by walking frame and block headers (RFC 8878
// section 3.1), without decoding. It returns nil (decode as one stream) unless every frame
// states its content size and every frame's content starts on a chunk boundary: only then can
// the frames be decoded independently, each to its own place. A damaged file also gives nil:
// the streaming decoder then reports the damage where it is.
func scanFrames(f io.ReaderAt, size int64) []frame {
	pr := &peeker{r: f}
	var frames []frame
	var out int64
	for off := int64(0); off < size; {
		head, err := pr.peek(off, 4)
		if err != nil {
			return nil
		}
		magic := binary.LittleEndian.Uint32(head)
		if magic&0xFFFFFFF0 == 0x184D2A50 { // skippable frame
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
		h, err := pr.peek(off+4, 1)
		if err != nil {
			return nil
		}
		fhd := h[0]
		single := fhd&0x20 != 0
		fcsLen := [4]int{0, 2, 4, 8}[fhd>>6]
		if fhd>>6 == 0 && single {
			fcsLen = 1
		}
		if fcsLen == 0 || fhd&0x08 != 0 { // no content size, or the reserved bit set
			return nil
		}
		p := off + 5
		if !single {
			p++ // window descriptor
		}
		p += int64([4]int{0, 1, 2, 4}[fhd&3]) // dictionary ID
		fb, err := pr.peek(p, fcsLen)
		if err != nil {
			return nil
		}
		var n uint64
		switch fcsLen {
		case 1:
			n = uint64(fb[0])
		case 2:
			n = uint64(binary.LittleEndian.Uint16(fb)) + 256
		case 4:
			n = uint64(binary.LittleEndian.Uint32(fb))
		case 8:
			n = binary.LittleEndian.Uint64(fb)
		}
		p += int64(fcsLen)
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
		if fhd&0x04 != 0 {
			p += 4 // content checksum
		}
		if p > size || out%chunk != 0 || n > 1<<40 {
			return nil
		}
		frames = append(frames, frame{off: off, len: p - off, out: out, n: int64(n)})
		out += int64(n)
		off = p
	}
	return frames
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

// frameError is a frame that failed to decode, with the decompressed offset it reached.
type frameError struct {
	at    int64
	err   error
	store bool // the failure was keeping the content (the spill file), not the stream
}

func (e *frameError) Error() string { return e.err.Error() }

// decodeFrames decodes the frames on all cores, each into its place in s.
func decodeFrames(f io.ReaderAt, frames []frame, s *store) error {
	last := frames[len(frames)-1]
	s.grow(last.out + last.n)
	workers := min(runtime.GOMAXPROCS(0), len(frames))
	next := make(chan frame)
	var mu sync.Mutex
	var errs []*frameError
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
			if err != nil {
				mu.Lock()
				errs = append(errs, &frameError{err: err})
				mu.Unlock()
				for range next {
				}
				return
			}
			defer zr.Close()
			for fr := range next {
				if err := decodeFrame(zr, f, fr, s); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, fr := range frames {
		next <- fr
	}
	close(next)
	wg.Wait()
	if len(errs) == 0 {
		return nil
	}
	// The first damage in the image is the one to report.
	sort.Slice(errs, func(i, j int) bool { return errs[i].at < errs[j].at })
	return errs[0]
}

// decodeFrame decodes one frame to its place, checking that it holds the size it states.
func decodeFrame(zr *zstd.Decoder, f io.ReaderAt, fr frame, s *store) *frameError {
	if err := zr.Reset(io.NewSectionReader(f, fr.off, fr.len)); err != nil {
		return &frameError{at: fr.out, err: err}
	}
	w := &seqWriter{s: s, off: fr.out}
	_, err := zr.WriteTo(w)
	if err == nil {
		err = w.flush()
	}
	if err == nil && w.off-fr.out != fr.n {
		err = io.ErrUnexpectedEOF
	}
	if w.werr != nil {
		return &frameError{at: w.off, err: w.werr, store: true}
	}
	if err != nil {
		return &frameError{at: w.off, err: err}
	}
	return nil
}
