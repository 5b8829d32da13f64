// Package zeros tells all-zero byte ranges apart, eight bytes at a time:
// images are mostly holes, and keeping them sparse (in copies, in memory)
// hinges on this test.
package zeros

import "encoding/binary"

// Is reports whether every byte of b is zero.
func Is(b []byte) bool {
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
