package diskimage

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// fileZeros reports whether f holds no data in [off, off+n): a hole of a sparse file (or of the
// memory file the zstd program writes), as lseek(SEEK_DATA) finds it. False where the file
// system does not say (it then calls every byte data).
func fileZeros(f *os.File, off, n int64) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	zero := false
	_ = rc.Control(func(fd uintptr) {
		// lseek moves the file's offset, which nothing here uses: the image is read at offsets.
		next, err := unix.Seek(int(fd), off, unix.SEEK_DATA)
		zero = errors.Is(err, unix.ENXIO) || (err == nil && next >= off+n)
	})
	return zero
}
