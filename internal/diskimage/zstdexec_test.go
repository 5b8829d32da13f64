package diskimage

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// needZstd skips a test of the zstd program path where the program is not installed.
func needZstd(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("zstd not on PATH")
	}
}

// The zstd program and the Go decoder give the same image, one frame or several; the program's
// output is a sparse file.
func TestZstdProgram(t *testing.T) {
	needZstd(t)
	data := testImage(32<<20 + 100)
	for _, p := range []string{writeZst(t, data), writeFrames(t, data, 1<<20)} {
		t.Setenv(ZstdEnv, "")
		img, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := img.r.(*os.File); !ok || !img.Compressed {
			t.Fatalf("%s: not decompressed by the program into a file (%T)", p, img.r)
		}
		check(t, img, data)
		var st syscall.Stat_t
		if err := syscall.Fstat(int(img.f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		if alloc := st.Blocks * 512; alloc > int64(len(data))/4 {
			t.Errorf("zstd's output allocates %d bytes for a %d-byte mostly-zero image", alloc, len(data))
		}
		img.Close()
	}
}

// A committed fixture decompresses to the same bytes by either path.
func TestZstdProgramFixture(t *testing.T) {
	needZstd(t)
	sum := func(prog string) [32]byte {
		t.Setenv(ZstdEnv, prog)
		img, err := Open(benchImage)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		buf := make([]byte, img.Size())
		if _, err := img.ReadAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(buf)
	}
	if a, b := sum("zstd"), sum("go"); a != b {
		t.Fatalf("%s: the zstd program and the Go decoder differ", benchImage)
	}
}

// A program that fails, or exits well without output, leaves the image to the Go decoder; a
// missing one is not used.
func TestZstdProgramFallback(t *testing.T) {
	data := testImage(2<<20 + 5)
	p := writeZst(t, data)
	for _, prog := range []string{"false", "true", "no-such-zstd-program"} {
		if prog != "no-such-zstd-program" {
			if _, err := exec.LookPath(prog); err != nil {
				t.Skip(err)
			}
		}
		t.Setenv(ZstdEnv, prog)
		img, err := Open(p)
		if err != nil {
			t.Fatalf("%s: %v", prog, err)
		}
		if _, ok := img.r.(*store); !ok {
			t.Errorf("%s: image read from %T, want the Go decoder's store", prog, img.r)
		}
		check(t, img, data)
		img.Close()
	}
}

// A damaged or cut stream fails in the program and then in the Go decoder, whose error names
// the file and how far decompression got, whatever the damage.
func TestZstdProgramCorrupt(t *testing.T) {
	needZstd(t)
	t.Setenv(ZstdEnv, "")
	data := testImage(4 << 20)
	for i := range data {
		data[i] ^= byte(i % 251)
	}
	good, err := os.ReadFile(writeZst(t, data))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"cut", good[:len(good)*2/3]},
		{"flipped", func() []byte {
			b := bytes.Clone(good)
			for i := len(b) / 2; i < len(b)/2+64; i++ {
				b[i] ^= 0x5a
			}
			return b
		}()},
		{"trailing", append(bytes.Clone(good), 0x28, 0xB5, 0x2F, 0xFD, 0x00)},
	} {
		p := filepath.Join(dir, c.name+".zst")
		if err := os.WriteFile(p, c.b, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := Open(p)
		if err == nil {
			img.Close()
			t.Errorf("%s: opened without error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "decompressed bytes") {
			t.Errorf("%s: err = %v, want the file and the offset reached", c.name, err)
		}
	}
}

// skipFirst leaves out exactly the bytes already reported, across calls.
func TestSkipFirst(t *testing.T) {
	var got []int64
	f := skipFirst(func(n int64) { got = append(got, n) }, 10)
	for _, n := range []int64{4, 4, 4, 4} {
		f(n)
	}
	if len(got) != 2 || got[0] != 2 || got[1] != 4 {
		t.Fatalf("reported %v, want [2 4]", got)
	}
}
