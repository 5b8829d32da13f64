// Package sparse copies disk images without writing their holes: images are
// mostly zeros, and keeping copies of them sparse (the recorder's state file,
// a decompressed image spilled to disk) hinges on telling zero ranges apart.
package sparse

import (
	"encoding/binary"
	"io"
)

// Chunk is the granularity at which Copy looks for zeros: one 4 KiB file-system block.
const Chunk = 4096

// IsZero reports whether every byte of b is zero, eight bytes at a time.
func IsZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Fill reads until buf is full or r fails. Unlike io.ReadFull it returns io.EOF after a short
// last read and leaves io.ErrUnexpectedEOF to mean what r meant by it (a zstd decoder's word for
// a cut stream) instead of turning a short last read into it.
func Fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadError is a failure of Copy's source, as opposed to one writing the copy.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// Copy reads r to its end in 1 MiB pieces and writes to w, from offset 0, only the Chunk-sized
// pieces that are not all zero, leaving holes for the rest (the caller sets w's final size). w may
// be nil, to read only. tee, when set, sees every piece read, in order. Copy returns the bytes
// read; a failure of r comes back as a *ReadError.
func Copy(w io.WriterAt, r io.Reader, tee func([]byte)) (int64, error) {
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := Fill(r, buf)
		if n > 0 && tee != nil {
			tee(buf[:n])
		}
		for i := 0; w != nil && i < n; i += Chunk {
			c := buf[i:min(i+Chunk, n)]
			if !IsZero(c) {
				if _, werr := w.WriteAt(c, off+int64(i)); werr != nil {
					return off, werr
				}
			}
		}
		off += int64(n)
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return off, &ReadError{err}
		}
	}
}
