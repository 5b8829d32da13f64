// Package hugebuf allocates the large, long-lived byte buffers of the log readers so that the
// kernel may back them with transparent huge pages.
//
// Fresh memory is dear on the virtual machines this tool runs on: the first touch of each 4 KiB
// page of a new buffer is a page fault, and measured on the project's 2-core VM 64 MiB of new Go
// heap took 630-780 ms to touch once (about 40 us a fault), 22-100 ms when the range was advised
// MADV_HUGEPAGE (2 MiB pages). A one-pass analyze of a 1 GiB log touches about 100 MB of new
// buffers (its read-ahead batches, the decoding window), so it paid most of its time in faults
// that a second pass over the same memory does not pay. The Go runtime does not ask for huge
// pages itself, and transparent huge pages are often in "madvise" mode (Debian's default).
package hugebuf

import (
	"runtime"
	"unsafe"
)

// Make returns a zeroed buffer of n bytes; on Linux the 2 MiB-aligned part of a buffer of at
// least 4 MiB is advised MADV_HUGEPAGE before anything touches it. The buffer is ordinary Go
// memory: the collector frees it as any other.
func Make(n int) []byte {
	b := make([]byte, n)
	if n >= minHuge {
		adviseHuge(b)
	}
	return b
}

// Slice is Make for a slice of n elements of any type (a large table of fixed-size records, as
// the block index's runs), with all of it in advised pages: from 2 MiB on it begins at a 2 MiB
// boundary (or within one element after it), and its capacity is what the 2 MiB pages it spans
// hold, so its last page is its own; 2 MiB more are allocated for the alignment, and never
// touched. Only the pages it touches become resident, in whole 2 MiB pages where the kernel has
// them.
func Slice[T any](n int) []T {
	es := int(unsafe.Sizeof(*new(T)))
	if es == 0 || n*es < hugePage {
		return make([]T, n)
	}
	span := (n*es + hugePage - 1) &^ (hugePage - 1) // the 2 MiB pages the slice spans
	c := span / es                                  // the elements they hold
	// The elements s[skip:skip+c] begin less than 2 MiB + es into s and take at most span bytes.
	s := make([]T, (span+hugePage+es-1)/es+1)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	boundary := (base + hugePage - 1) &^ (hugePage - 1)
	skip := (int(boundary-base) + es - 1) / es
	adviseHuge(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s)), boundary-base)), span))
	return s[skip : skip+n : skip+c]
}

// hugePage is the size of a transparent huge page on amd64 and arm64 (4 KiB base pages).
const hugePage = 2 << 20

// minHuge is the smallest buffer worth advising: it must hold at least one aligned 2 MiB page.
const minHuge = 4 << 20

// Warm maps n bytes of new Go heap in advised pages, touches each 4 KiB page once and lets the
// memory go: once the next collection has run (the caller's runtime.GC), the heap serves its
// allocations from pages already mapped (in 2 MiB pages where the kernel had them; the touch maps
// the rest where it has none) instead of taking a fault for each fresh 4 KiB page as it grows:
// 16 MiB of 4 KiB objects, 4,400 faults in a fresh process and 200 after Warm(32 MiB)
// (TestWarm). It is for a run about to allocate at least n bytes of small objects (the
// resolver's model of the metadata a log rewrites: 4 KiB blocks, tables, queues), which Make
// cannot reach. The pages stay the process's until the runtime's scavenger returns them, so a
// run that would not have grown by n pays n of resident memory.
func Warm(n int) {
	b := Slice[byte](n) // whole 2 MiB pages: Make's unaligned head and tail were 560 small faults of 64 MiB
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
}
