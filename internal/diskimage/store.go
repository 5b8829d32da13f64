package diskimage

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/ext3replay/ext3replay/internal/hugebuf"
	"github.com/ext3replay/ext3replay/internal/sparse"
)

// chunk is the granularity at which zeros are dropped: one 4 KiB file-system block.
const chunk = sparse.Chunk

// slabChunks is how many chunks one memory slab holds (1 MiB): content is kept in slabs
// rather than one growing slice so that keeping more never copies what is kept.
const slabChunks = 256

// store keeps the non-zero chunks of a decompressed image: in memory (slabs, with an index
// from chunk number to slot) up to limit bytes; past that, when the image's size is known
// beforehand (hint) and memory holds it (memFile), in a file in memory where the slots follow
// each other as in the slabs (compact), else in a sparse temporary file at their offsets in the
// image. keepRuns may be called from several goroutines, for disjoint chunk-aligned ranges.
//
// The compact file is written a batch at a time, 1 MiB in one pwrite, whatever the chunks'
// offsets in the image: on the 6 GiB bench image, whose 446 MiB of non-zero chunks are mostly
// alone between zeros, one pwrite per chunk into a memfd took 0.39 s and 1 MiB ones 0.09 s,
// where touching as much fresh anonymous memory took 2 s (a page fault costs about 17 us on
// these virtual machines).
type store struct {
	mu      sync.Mutex
	limit   int64
	size    int64
	idx     []uint32 // chunk number -> slot+1; 0: all zero (or not in memory)
	slabs   [][]byte
	compact *os.File // the slots, once limit is passed, when hint allows
	used    int      // slots used
	file    *os.File // the sparse spill file, once limit is passed, when compact cannot be
	hint    int64    // the image's size when known beforehand (0 or less: not), for memFile
	handed  bool     // its files belong to an Image
}

// newStore is a store for an image of size bytes (-1: not known) of which about kept bytes
// may not be zero (-1: not known). When both are known and kept is more than MemoryLimit, the
// store starts in a file in memory rather than moving there once memory is full; its index is
// made for the whole image at once, in huge pages.
func newStore(size, kept int64) *store {
	s := &store{limit: MemoryLimit, hint: size}
	if size > 0 {
		s.idx = hugebuf.Slice[uint32](int((size + chunk - 1) / chunk))
		if kept > s.limit {
			s.compact = memFile(size)
		}
	}
	return s
}

// grow records that the image is at least n bytes long.
func (s *store) grow(n int64) {
	s.mu.Lock()
	s.size = max(s.size, n)
	s.mu.Unlock()
}

// keepRuns stores runs of non-zero chunks, in image order, whose bytes follow each other in
// data (a batch).
func (s *store) keepRuns(runs []span, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil && s.compact == nil && int64(s.used)*chunk+int64(len(data)) > s.limit {
		if err := s.spill(); err != nil {
			return err
		}
	}
	switch {
	case s.file != nil:
		for _, r := range runs {
			if _, err := s.file.WriteAt(data[r.at:r.at+r.n], r.off); err != nil {
				return fmt.Errorf("decompressing to %s: %w", os.TempDir(), err)
			}
		}
		return nil
	case s.compact != nil:
		// Every run but an image's last is whole chunks, so the runs' slots follow each
		// other as their bytes do in data.
		if _, err := s.compact.WriteAt(data, int64(s.used)*chunk); err != nil {
			return fmt.Errorf("decompressing into memory: %w", err)
		}
		for _, r := range runs {
			s.index(r.off, r.n)
		}
		return nil
	}
	for _, r := range runs {
		slot := s.used
		s.index(r.off, r.n)
		for c := 0; c*chunk < r.n; c++ {
			if (slot+c)/slabChunks == len(s.slabs) {
				s.slabs = append(s.slabs, make([]byte, slabChunks*chunk))
			}
			src := data[r.at+c*chunk : r.at+min((c+1)*chunk, r.n)]
			copy(s.slabs[(slot+c)/slabChunks][(slot+c)%slabChunks*chunk:], src)
		}
	}
	return nil
}

// index gives the n bytes of chunks at off the next slots.
func (s *store) index(off int64, n int) {
	first := int(off / chunk)
	last := first + (n-1)/chunk
	if last >= len(s.idx) {
		s.idx = append(s.idx, make([]uint32, last+1-len(s.idx))...)
	}
	for c := first; c <= last; c++ {
		s.used++
		s.idx[c] = uint32(s.used)
	}
}

// spill moves the chunks kept in memory to a file in memory, slot after slot (compact), or to
// a new, already unlinked, sparse temporary file.
func (s *store) spill() error {
	if s.hint > 0 {
		if m := memFile(s.hint); m != nil {
			for i, slab := range s.slabs {
				if _, err := m.WriteAt(slab, int64(i)*slabChunks*chunk); err != nil {
					m.Close()
					return fmt.Errorf("decompressing into memory: %w", err)
				}
			}
			s.compact, s.slabs = m, nil
			return nil
		}
	}
	tmp, err := os.CreateTemp("", "ext3replay-image-*.raw")
	if err != nil {
		return fmt.Errorf("decompressing to %s: %w", os.TempDir(), err)
	}
	os.Remove(tmp.Name())
	for c := 0; c < len(s.idx); {
		if s.idx[c] == 0 {
			c++
			continue
		}
		// Chunks kept one after the other in the same slab go out in one write.
		slot := int(s.idx[c] - 1)
		n := 1
		for c+n < len(s.idx) && int(s.idx[c+n]) == slot+n+1 && (slot+n)%slabChunks != 0 {
			n++
		}
		b := s.slabs[slot/slabChunks][slot%slabChunks*chunk : (slot%slabChunks+n)*chunk]
		if _, err := tmp.WriteAt(b, int64(c)*chunk); err != nil {
			tmp.Close()
			return fmt.Errorf("decompressing to %s: %w", os.TempDir(), err)
		}
		c += n
	}
	s.file, s.idx, s.slabs, s.used = tmp, nil, nil, 0
	return nil
}

// abort releases the files of a store that was not handed to an Image.
func (s *store) abort() {
	if s.handed {
		return
	}
	for _, f := range []**os.File{&s.file, &s.compact} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// zeros reports whether no chunk of [off, off+n) was stored: they read as zeros.
func (s *store) zeros(off, n int64) bool {
	for c := off / chunk; c*chunk < off+n; c++ {
		if c < int64(len(s.idx)) && s.idx[c] != 0 {
			return false
		}
	}
	return true
}

// ReadAt reads the image kept in memory: zeros where no chunk was kept.
func (s *store) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("diskimage: negative offset %d", off)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	for done := 0; done < n; {
		c := (off + int64(done)) / chunk
		in := int((off + int64(done)) % chunk)
		k := min(chunk-in, n-done)
		if c >= int64(len(s.idx)) || s.idx[c] == 0 {
			clear(p[done : done+k])
			done += k
			continue
		}
		slot := int(s.idx[c] - 1)
		if s.compact == nil {
			copy(p[done:done+k], s.slabs[slot/slabChunks][slot%slabChunks*chunk+in:])
			done += k
			continue
		}
		// Chunks whose slots follow each other: one read.
		start := int64(slot)*chunk + int64(in)
		for last := slot; done+k < n && c+1 < int64(len(s.idx)) && int(s.idx[c+1]) == last+2; last++ {
			c++
			k += min(chunk, n-done-k)
		}
		if _, err := s.compact.ReadAt(p[done:done+k], start); err != nil {
			return done, fmt.Errorf("diskimage: reading the image kept in memory: %w", err)
		}
		done += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
