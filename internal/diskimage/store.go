package diskimage

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/ext3replay/ext3replay/internal/sparse"
)

// chunk is the granularity at which zeros are dropped: one 4 KiB file-system block.
const chunk = sparse.Chunk

// slabChunks is how many chunks one memory slab holds (1 MiB): content is kept in slabs
// rather than one growing slice so that keeping more never copies what is kept.
const slabChunks = 256

// store keeps the non-zero chunks of a decompressed image: in memory (slabs, with an index
// from chunk number to slot) up to limit bytes, then in a sparse temporary file. keep may be
// called from several goroutines, for disjoint chunk-aligned ranges.
type store struct {
	mu    sync.Mutex
	limit int64
	size  int64
	idx   []uint32 // chunk number -> slot+1; 0: all zero (or not in memory)
	slabs [][]byte
	used  int      // slots used
	file  *os.File // the spill file, once limit is passed
}

// grow records that the image is at least n bytes long.
func (s *store) grow(n int64) {
	s.mu.Lock()
	s.size = max(s.size, n)
	s.mu.Unlock()
}

// keep stores a run of non-zero chunks starting at off.
func (s *store) keep(off int64, run []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil && int64(s.used)*chunk+int64(len(run)) > s.limit {
		if err := s.spill(); err != nil {
			return err
		}
	}
	if s.file != nil {
		if _, err := s.file.WriteAt(run, off); err != nil {
			return fmt.Errorf("decompressing to %s: %w", os.TempDir(), err)
		}
		return nil
	}
	first := int(off / chunk)
	last := first + (len(run)-1)/chunk
	if last >= len(s.idx) {
		s.idx = append(s.idx, make([]uint32, last+1-len(s.idx))...)
	}
	for c := first; c <= last; c++ {
		slot := s.used
		if slot/slabChunks == len(s.slabs) {
			s.slabs = append(s.slabs, make([]byte, slabChunks*chunk))
		}
		src := run[(c-first)*chunk : min((c-first+1)*chunk, len(run))]
		copy(s.slabs[slot/slabChunks][slot%slabChunks*chunk:], src)
		s.idx[c] = uint32(slot + 1)
		s.used++
	}
	return nil
}

// spill moves the chunks kept in memory to a new, already unlinked, temporary file.
func (s *store) spill() error {
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

// abort releases the spill file of a store that was not handed to an Image.
func (s *store) abort() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
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
		if c < int64(len(s.idx)) && s.idx[c] != 0 {
			slot := int(s.idx[c] - 1)
			copy(p[done:done+k], s.slabs[slot/slabChunks][slot%slabChunks*chunk+in:])
		} else {
			clear(p[done : done+k])
		}
		done += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
