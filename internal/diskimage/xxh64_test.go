package diskimage

import (
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestXXH64Vectors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
	}{
		{"", 0xEF46DB3751D8E999},
		{"a", 0xD24EC4F1A98C6E5B},
		{"abc", 0x44BC2CF5AD770999},
	} {
		h := newXXH64()
		h.Write([]byte(c.in))
		if got := h.Sum64(); got != c.want {
			t.Errorf("XXH64(%q) = %#x, want %#x", c.in, got, c.want)
		}
	}
}

// TestXXH64Zeros checks writes and zero runs of every alignment against a reference
// implementation hashing the same bytes written out.
func TestXXH64Zeros(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		h := newXXH64()
		var whole []byte
		for range rng.IntN(6) + 1 {
			if rng.IntN(2) == 0 {
				b := make([]byte, rng.IntN(100))
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				h.Write(b)
				whole = append(whole, b...)
			} else {
				n := rng.IntN(300)
				h.Zeros(int64(n))
				whole = append(whole, make([]byte, n)...)
			}
		}
		if got, want := h.Sum64(), xxhash.Sum64(whole); got != want {
			t.Fatalf("case %d (%d bytes): %#x, want %#x", i, len(whole), got, want)
		}
	}
}

func BenchmarkXXH64Zeros(b *testing.B) {
	const n = 64 << 20
	b.SetBytes(n)
	for b.Loop() {
		newXXH64().Zeros(n)
	}
}
