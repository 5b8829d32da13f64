package hugebuf

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHuge advises the whole 2 MiB pages inside b. Advice only: an error (a kernel without
// transparent huge pages) changes nothing but speed.
func adviseHuge(b []byte) {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	first := (start + hugePage - 1) &^ (hugePage - 1)
	end := (start + uintptr(len(b))) &^ (hugePage - 1)
	if end <= first {
		return
	}
	_ = unix.Madvise(b[first-start:end-start], unix.MADV_HUGEPAGE)
}
