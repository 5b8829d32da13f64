package hugebuf

import (
	"testing"
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

// hugePageSize is the huge page size the advice is computed for on Linux.
const hugePageSize = 2 << 20
