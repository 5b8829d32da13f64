package blklog

import (
	"os"
	"syscall"
)

const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

// zeroRange makes [off, off+n) of f read as zeroes, punching a hole when
// the file system can (keeps the state file sparse).
func zeroRange(f *os.File, off, n int64) error {
	if n == 0 {
		return nil
	}
	if err := syscall.Fallocate(int(f.Fd()), fallocPunchHole|fallocKeepSize, off, n); err == nil {
		return nil
	}
	return writeZeroes(f, off, n)
}
