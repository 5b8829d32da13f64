package blklog

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/ext3replay/ext3replay/internal/sparse"
)

// PrepareState copies the starting image at basePath (raw, or
// zstd-compressed) to a new sparse file at statePath, which the recorder
// then serves and modifies; the base is only read. It returns the state file
// (open read-write) and the identity of the base, full hash included.
func PrepareState(basePath, statePath string) (*os.File, ImageID, error) {
	base, err := os.Open(basePath)
	if err != nil {
		return nil, ImageID{}, fmt.Errorf("blklog: %w", err)
	}
	defer base.Close()
	bst, err := base.Stat()
	if err != nil {
		return nil, ImageID{}, fmt.Errorf("blklog: %w", err)
	}
	// Compare the opened state file with the base before truncating it: a
	// symlink or hard link to the base must not destroy it.
	st, err := os.OpenFile(statePath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, ImageID{}, fmt.Errorf("blklog: %w", err)
	}
	if sst, err := st.Stat(); err != nil || os.SameFile(sst, bst) {
		st.Close()
		if err != nil {
			return nil, ImageID{}, fmt.Errorf("blklog: %w", err)
		}
		return nil, ImageID{}, fmt.Errorf("blklog: state file %s is the base image itself; the base must stay unmodified", statePath)
	}
	if err := st.Truncate(0); err != nil {
		st.Close()
		return nil, ImageID{}, fmt.Errorf("blklog: %w", err)
	}
	var id ImageID
	if ext, size, ok := sparseRaw(base); ok {
		id, err = copySparse(base, size, ext, basePath, st)
	} else {
		id, err = identifyStream(base, basePath, st)
	}
	if err == nil {
		if err = st.Truncate(int64(id.Size)); err == nil {
			err = st.Sync()
		}
		if err != nil {
			err = fmt.Errorf("blklog: state file %s: %w", statePath, err)
		}
	}
	if err != nil {
		st.Close()
		os.Remove(statePath)
		return nil, ImageID{}, err
	}
	return st, id, nil
}

// IdentifyImageFile computes the identity, full hash included, of the raw or
// zstd-compressed image file at path, streaming it once.
func IdentifyImageFile(path string) (ImageID, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImageID{}, fmt.Errorf("blklog: %w", err)
	}
	defer f.Close()
	return identifyStream(f, path, nil)
}

// identifyStream hashes the image read from r (zstd-compressed or raw) and,
// if dst is not nil, copies it there leaving all-zero MiB runs as holes.
func identifyStream(r io.Reader, name string, dst *os.File) (ImageID, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var src io.Reader = br
	if p, _ := br.Peek(4); bytes.Equal(p, zstdMagic) {
		d, err := newZstdReader(br)
		if err != nil {
			return ImageID{}, fmt.Errorf("blklog: %s: %w", name, err)
		}
		defer d.Close()
		src = d
	}
	full := sha256.New()
	region := make([]byte, 0, RegionSize)
	var w io.WriterAt
	if dst != nil {
		w = dst
	}
	size, err := sparse.Copy(w, src, func(b []byte) {
		full.Write(b)
		if len(region) < RegionSize {
			region = append(region, b[:min(len(b), RegionSize-len(region))]...)
		}
	})
	if err != nil {
		var re *sparse.ReadError
		if errors.As(err, &re) {
			// Including io.ErrUnexpectedEOF: the zstd decoder's word for a cut stream.
			return ImageID{}, fmt.Errorf("blklog: reading %s: damaged or cut short after %d bytes of image: %w", name, size, re.Err)
		}
		return ImageID{}, fmt.Errorf("blklog: writing state file: %w", err)
	}
	if size == 0 || size%SectorSize != 0 {
		return ImageID{}, fmt.Errorf("blklog: %s: image size %d is not a positive multiple of %d", name, size, SectorSize)
	}
	id := ImageID{Known: true, Size: uint64(size), RegionLen: uint32(len(region)), HasFull: true}
	id.RegionSHA256 = sha256.Sum256(region)
	copy(id.FullSHA256[:], full.Sum(nil))
	return id, nil
}

// SparseHashLimit is the amount of holes in a raw base image past which the recorder does not
// hash its whole content: SHA-256 cannot skip a hole, and hashing 1 TiB of zeros before "ready"
// takes many minutes. Such an image is identified by its size and the hash of its first
// RegionSize bytes (ImageID.HasFull false), and copied extent by extent.
const SparseHashLimit = 1 << 30

// extent is a byte range of a file that holds data.
type extent struct{ off, end int64 }

// Whence values of lseek(2) for sparse files (Linux, the BSDs, Solaris); where they are
// unsupported Seek fails and the image is read whole.
const (
	seekData = 3
	seekHole = 4
)

// sparseRaw reports whether f is a raw (not zstd) image with more than SparseHashLimit bytes of
// holes, and if so its size and data extents, found with SEEK_DATA/SEEK_HOLE.
func sparseRaw(f *os.File) ([]extent, int64, bool) {
	var magic [4]byte
	if n, _ := f.ReadAt(magic[:], 0); n == 4 && bytes.Equal(magic[:], zstdMagic) {
		return nil, 0, false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, 0, false
	}
	size := fi.Size()
	var ext []extent
	var data int64
	for off := int64(0); off < size; {
		d, err := f.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // no data after off
		}
		if err != nil {
			return nil, 0, false // SEEK_DATA unsupported here: read the image whole
		}
		h, err := f.Seek(d, seekHole)
		if err != nil {
			return nil, 0, false
		}
		h = min(h, size)
		ext = append(ext, extent{d, h})
		data += h - d
		off = h
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, false
	}
	if size-data <= SparseHashLimit {
		return nil, 0, false
	}
	return ext, size, true
}

// offsetWriterAt shifts writes by off.
type offsetWriterAt struct {
	w   io.WriterAt
	off int64
}

func (o offsetWriterAt) WriteAt(p []byte, off int64) (int, error) { return o.w.WriteAt(p, o.off+off) }

// copySparse copies the data extents of the raw image base (size bytes) to dst and identifies
// the image by size and region hash only (see SparseHashLimit).
func copySparse(base *os.File, size int64, ext []extent, name string, dst *os.File) (ImageID, error) {
	if size == 0 || size%SectorSize != 0 {
		return ImageID{}, fmt.Errorf("blklog: %s: image size %d is not a positive multiple of %d", name, size, SectorSize)
	}
	for _, e := range ext {
		n, err := sparse.Copy(offsetWriterAt{dst, e.off}, io.NewSectionReader(base, e.off, e.end-e.off), nil)
		if err != nil {
			var re *sparse.ReadError
			if errors.As(err, &re) {
				return ImageID{}, fmt.Errorf("blklog: reading %s at byte %d: %w", name, e.off+n, re.Err)
			}
			return ImageID{}, fmt.Errorf("blklog: writing state file: %w", err)
		}
	}
	id, err := IdentifyImage(base, size, false)
	if err != nil {
		return ImageID{}, fmt.Errorf("blklog: %s: %w", name, err)
	}
	return id, nil
}
