package diskimage

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// testImage is mostly zeros with scattered data, like a file-system image.
func testImage(size int) []byte {
	b := make([]byte, size)
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 50; i++ {
		off := rng.Intn(size - 10000)
		rng.Read(b[off : off+1+rng.Intn(9000)])
	}
	b[size-1] = 0 // trailing zeros must still count in Size
	return b
}

func writeZst(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.zst")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := zstd.NewWriter(f)
	zw.Write(data)
	zw.Close()
	f.Close()
	return p
}

func check(t *testing.T, img *Image, want []byte) {
	t.Helper()
	if img.Size() != int64(len(want)) {
		t.Fatalf("Size %d, want %d", img.Size(), len(want))
	}
	got := make([]byte, len(want))
	if _, err := img.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("contents differ")
	}
	if _, err := img.ReadAt(make([]byte, 10), int64(len(want))-5); err == nil {
		t.Error("ReadAt past the end: no error")
	}
}

func TestRaw(t *testing.T) {
	data := testImage(1 << 20)
	p := filepath.Join(t.TempDir(), "img")
	os.WriteFile(p, data, 0o644)
	img, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Compressed {
		t.Error("raw image reported as compressed")
	}
	check(t, img, data)
}

func TestZstdMemory(t *testing.T) {
	data := testImage(3 << 20)
	img, err := Open(writeZst(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if !img.Compressed || img.f != nil {
		t.Errorf("small image: compressed %v, spilled %v", img.Compressed, img.f != nil)
	}
	check(t, img, data)
}

func TestZstdSpillIsSparse(t *testing.T) {
	old := MemoryLimit
	MemoryLimit = 1 << 20
	defer func() { MemoryLimit = old }()
	data := testImage(32 << 20)
	img, err := Open(writeZst(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.f == nil {
		t.Fatal("large image was not spilled to a file")
	}
	check(t, img, data)
	var st syscall.Stat_t
	if err := syscall.Fstat(int(img.f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if alloc := st.Blocks * 512; alloc > int64(len(data))/4 {
		t.Errorf("spill file allocates %d bytes for a %d-byte mostly-zero image", alloc, len(data))
	}
}

func TestCorruptZstd(t *testing.T) {
	data := testImage(1 << 20)
	p := writeZst(t, data)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)/2], 0o644)
	img, err := Open(p)
	if err == nil {
		img.Close()
		t.Fatal("truncated zstd image opened without error")
	}
	// The error says the file is damaged or cut, and how far decompression got.
	if !strings.Contains(err.Error(), "cut short after ") {
		t.Fatalf("err = %v, want where decompression stopped", err)
	}
}

func TestCorruptZstdSpill(t *testing.T) {
	old := MemoryLimit
	MemoryLimit = 1 << 20
	defer func() { MemoryLimit = old }()
	p := writeZst(t, testImage(8<<20))
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)*3/4], 0o644)
	img, err := Open(p)
	if err == nil {
		img.Close()
		t.Fatal("truncated zstd image opened without error")
	}
	// The error says the file is damaged or cut, and how far decompression got.
	if !strings.Contains(err.Error(), "cut short after ") {
		t.Fatalf("err = %v, want where decompression stopped", err)
	}
}
