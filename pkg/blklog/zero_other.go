//go:build !linux

package blklog

import "os"

// zeroRange makes [off, off+n) of f read as zeroes.
func zeroRange(f *os.File, off, n int64) error { return writeZeroes(f, off, n) }
