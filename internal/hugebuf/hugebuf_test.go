package hugebuf

import (
	"testing"
	"unsafe"
)

// TestMake: buffers of every size class come back zeroed and of the length asked, writable end
// to end (the advice covers only whole 2 MiB pages inside them, whatever their alignment).
func TestMake(t *testing.T) {
	for _, n := range []int{0, 1, 4095, minHuge - 1, minHuge, minHuge + 1, 3*hugePageSize + 12345, 16 << 20} {
		b := Make(n)
		if len(b) != n {
			t.Fatalf("Make(%d): len %d", n, len(b))
		}
		for i := 0; i < n; i += 4096 {
			if b[i] != 0 {
				t.Fatalf("Make(%d): byte %d is %d", n, i, b[i])
			}
			b[i] = 1
		}
		if n > 0 {
			b[n-1] = 1
		}
	}
}

// TestSlice: slices of every size come back zeroed, of the length asked, writable to their
// capacity; from 2 MiB on they begin within one element of a 2 MiB boundary, so that every 2 MiB
// page they span can be advised, and their capacity fills those pages.
func TestSlice(t *testing.T) {
	type rec struct { // 40 bytes, which does not divide 2 MiB
		a, b uint64
		c    [3]uint64
	}
	for _, n := range []int{0, 1, 1000, hugePageSize/40 - 1, hugePageSize/40 + 1, minHuge / 40, (3*hugePageSize + 12345) / 40} {
		s := Slice[rec](n)
		if len(s) != n || cap(s) < n {
			t.Fatalf("Slice(%d): len %d, cap %d", n, len(s), cap(s))
		}
		if want := (n*40 + hugePageSize - 1) / hugePageSize * hugePageSize / 40; n*40 >= hugePageSize && cap(s) != want {
			t.Fatalf("Slice(%d): cap %d, want %d (the 2 MiB pages it spans)", n, cap(s), want)
		}
		s = s[:cap(s)]
		for i := range s {
			if s[i] != (rec{}) {
				t.Fatalf("Slice(%d): element %d is %+v", n, i, s[i])
			}
			s[i].a = uint64(i)
		}
		if n*40 >= hugePageSize {
			off := uintptr(unsafe.Pointer(&s[0])) % hugePageSize
			if off >= 40 {
				t.Errorf("Slice(%d) begins %d bytes into a 2 MiB page", n, off)
			}
		}
	}
	// Elements larger than the runtime's 8 KiB pages (the names table's pages of links).
	type page [4096]uint64
	if p := Slice[page](100); len(p) != 100 || cap(p) != 128 || uintptr(unsafe.Pointer(&p[0]))%hugePageSize >= 32768 {
		t.Errorf("Slice of 100 32 KiB elements: len %d, cap %d, %d bytes into a 2 MiB page", len(p), cap(p), uintptr(unsafe.Pointer(&p[0]))%hugePageSize)
	} else {
		p[:cap(p)][127][4095] = 1
	}
	if b := Slice[byte](hugePageSize); uintptr(unsafe.Pointer(&b[0]))%hugePageSize != 0 {
		t.Errorf("Slice[byte](%d) does not begin at a 2 MiB boundary", hugePageSize)
	}
}

// hugePageSize is the huge page size the advice is computed for on Linux.
const hugePageSize = 2 << 20
