// Package diskimage opens a disk image, raw or zstd-compressed, as an io.ReaderAt.
//
// A compressed image is decompressed once at Open: into memory while it is small, otherwise
// into an unlinked temporary file in which runs of zero bytes are skipped with seeks rather than
// written, so a mostly empty 6 GiB image stays a sparse file of a few hundred MB.
package diskimage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ext3replay/ext3replay/internal/sparse"
	"github.com/klauspost/compress/zstd"
)

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}

// MemoryLimit is the decompressed size up to which a compressed image is kept in memory.
var MemoryLimit int64 = 64 << 20

// Image is an opened disk image.
type Image struct {
	r    io.ReaderAt
	size int64
	f    *os.File // raw image or spill file, closed by Close
	path string
	// Compressed reports whether the image was zstd-compressed on disk.
	Compressed bool
}

// Open opens path. Files starting with the zstd magic are decompressed (whatever their name).
func Open(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var head [4]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("diskimage: %s: %w", path, err)
	}
	if n < 4 || !bytes.Equal(head[:], zstdMagic) {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		return &Image{r: f, size: st.Size(), f: f, path: path}, nil
	}
	defer f.Close()
	img, err := decompress(f, path)
	if err != nil {
		return nil, fmt.Errorf("diskimage: %s: %w", path, err)
	}
	return img, nil
}

func decompress(f *os.File, path string) (*Image, error) {
	zr, err := zstd.NewReader(bufio.NewReaderSize(f, 1<<20), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	// The error of a damaged or cut stream names how far decompression got, and the file size,
	// so a truncated copy is recognisable as one.
	var fileSize int64
	if st, err := f.Stat(); err == nil {
		fileSize = st.Size()
	}
	cr := &countReader{r: zr}
	zerr := func(err error) error {
		return fmt.Errorf("zstd stream (%d bytes on disk) damaged or cut short after %d decompressed bytes: %w", fileSize, cr.n, err)
	}
	// Small images: memory.
	var mem bytes.Buffer
	n, err := io.CopyN(&mem, cr, MemoryLimit+1)
	if err != nil && err != io.EOF {
		return nil, zerr(err)
	}
	if n <= MemoryLimit {
		b := mem.Bytes()
		return &Image{r: bytes.NewReader(b), size: int64(len(b)), path: path, Compressed: true}, nil
	}
	// Large images: a sparse, already unlinked temporary file.
	tmp, err := os.CreateTemp("", "ext3replay-image-*.raw")
	if err != nil {
		return nil, err
	}
	os.Remove(tmp.Name())
	size, err := sparse.Copy(tmp, io.MultiReader(&mem, cr), nil)
	if err == nil {
		err = tmp.Truncate(size) // materialise a trailing zero run
	}
	if err != nil {
		tmp.Close()
		var re *sparse.ReadError
		if errors.As(err, &re) {
			return nil, zerr(re.Err)
		}
		return nil, fmt.Errorf("decompressing to %s: %w", os.TempDir(), err)
	}
	return &Image{r: tmp, size: size, f: tmp, path: path, Compressed: true}, nil
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// ReadAt reads from the (decompressed) image.
func (m *Image) ReadAt(p []byte, off int64) (int, error) { return m.r.ReadAt(p, off) }

// Size is the (decompressed) image size in bytes.
func (m *Image) Size() int64 { return m.size }

// Path is the path the image was opened from.
func (m *Image) Path() string { return m.path }

// Close releases the file or memory behind the image.
func (m *Image) Close() error {
	m.r = bytes.NewReader(nil)
	if m.f != nil {
		err := m.f.Close()
		m.f = nil
		return err
	}
	return nil
}
