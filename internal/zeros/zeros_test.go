package zeros

import "testing"

func TestIs(t *testing.T) {
	if !Is(nil) || !Is(make([]byte, 4097)) {
		t.Fatal("zero buffers reported non-zero")
	}
	// A single set byte anywhere, in the 8-byte words or in the tail, is seen.
	for n := 1; n <= 20; n++ {
		for i := 0; i < n; i++ {
			b := make([]byte, n)
			b[i] = 0x80
			if Is(b) {
				t.Fatalf("len %d, byte %d set: reported zero", n, i)
			}
		}
	}
}

func BenchmarkIs(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if !Is(buf) {
			b.Fatal("not zero")
		}
	}
}
