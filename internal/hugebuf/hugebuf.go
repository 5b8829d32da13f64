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

// minHuge is the smallest buffer worth advising: it must hold at least one aligned 2 MiB page.
const minHuge = 4 << 20
