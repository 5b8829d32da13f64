package diskimage

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Zeros never calls a range zeros that is not, and finds the holes of a sparse raw image and the
// runs a decompressed image never stored (by the Go decoder, and by the zstd program writing a
// sparse file), so that the checker can leave them unread.
func TestZeros(t *testing.T) {
	const size = 64 << 20
	data := make([]byte, size)
	rng := rand.New(rand.NewSource(5))
	for _, at := range []int{0, 5 << 20, 5<<20 + 7<<10, 40 << 20, size - 1<<20} {
		rng.Read(data[at : at+64<<10])
	}
	raw := filepath.Join(t.TempDir(), "img.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < size; off += 64 << 10 { // only the non-zero pieces: the rest stays holes
		if p := data[off : off+64<<10]; !bytes.Equal(p, make([]byte, len(p))) {
			if _, err := f.WriteAt(p, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.Close()
	zst := writeZst(t, data)
	ways := map[string]func() (*Image, error){
		"raw":       func() (*Image, error) { return Open(raw) },
		"zst, Go":   func() (*Image, error) { t.Setenv(ZstdEnv, "go"); return Open(zst) },
		"zst, zstd": func() (*Image, error) { t.Setenv(ZstdEnv, "zstd"); return Open(zst) },
	}
	for name, open := range ways {
		if name == "zst, zstd" {
			if _, err := exec.LookPath("zstd"); err != nil {
				continue
			}
		}
		img, err := open()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		found := false
		for i := 0; i < 2000; i++ {
			off := rng.Int63n(size)
			n := 1 + rng.Int63n(min(size-off, 2<<20))
			if i%4 == 0 { // block-aligned ranges, as the checker asks
				off &^= 4095
				n = min(size-off, (n+4095)&^4095)
			}
			if !img.Zeros(off, n) {
				continue
			}
			if !bytes.Equal(data[off:off+n], make([]byte, n)) {
				t.Fatalf("%s: Zeros(%d, %d) with data in it", name, off, n)
			}
			found = found || n >= 1<<20
		}
		if img.Zeros(-1, 10) || img.Zeros(size-10, 20) {
			t.Errorf("%s: zeros outside the image", name)
		}
		if !found && runtime.GOOS == "linux" {
			t.Errorf("%s: no hole of 1 MiB or more found", name)
		}
		img.Close()
	}
}
