package sparse

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

func TestIsZero(t *testing.T) {
	if !IsZero(nil) || !IsZero(make([]byte, 4097)) {
		t.Fatal("zero buffers reported non-zero")
	}
	// A single set byte anywhere, in the 8-byte words or in the tail, is seen.
	for n := 1; n <= 20; n++ {
		for i := 0; i < n; i++ {
			b := make([]byte, n)
			b[i] = 0x80
			if IsZero(b) {
				t.Fatalf("len %d, byte %d set: reported zero", n, i)
			}
		}
	}
}

// Copy reproduces the source byte for byte, writes no zero chunk (the copy
// stays sparse), shows every byte to tee, and tells read failures apart.
func TestCopy(t *testing.T) {
	src := make([]byte, 3<<20+123)
	copy(src[5000:], "data in the second chunk")
	copy(src[2<<20+7:], "data across a piece boundary")
	src[len(src)-1] = 1
	f, err := os.Create(filepath.Join(t.TempDir(), "copy"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &countingWriterAt{w: f}
	var teed bytes.Buffer
	n, err := Copy(w, iotest.HalfReader(bytes.NewReader(src)), func(b []byte) { teed.Write(b) })
	if err != nil || n != int64(len(src)) {
		t.Fatalf("Copy = %d, %v; want %d, nil", n, err, len(src))
	}
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(f.Name())
	if !bytes.Equal(got, src) || !bytes.Equal(teed.Bytes(), src) {
		t.Fatal("copy or tee differs from the source")
	}
	if w.n > 4*Chunk {
		t.Fatalf("wrote %d bytes for 3 non-zero chunks and a tail: zero chunks were written", w.n)
	}

	boom := errors.New("boom")
	n, err = Copy(nil, io.MultiReader(bytes.NewReader(src[:100]), iotest.ErrReader(boom)), nil)
	var re *ReadError
	if !errors.As(err, &re) || !errors.Is(err, boom) || n != 100 {
		t.Fatalf("Copy of a failing reader = %d, %v; want 100 and a ReadError wrapping boom", n, err)
	}
}

type countingWriterAt struct {
	w io.WriterAt
	n int
}

func (c *countingWriterAt) WriteAt(p []byte, off int64) (int, error) {
	c.n += len(p)
	return c.w.WriteAt(p, off)
}

func BenchmarkIsZero(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if !IsZero(buf) {
			b.Fatal("not zero")
		}
	}
}
