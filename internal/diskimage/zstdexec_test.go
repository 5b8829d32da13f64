package diskimage

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// needZstd skips a test of the zstd program path where the program is not installed, and
// names it in the environment: it then decompresses images of every size.
func needZstd(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("zstd not on PATH")
	}
	t.Setenv(ZstdEnv, "zstd")
}

// The zstd program and the Go decoder give the same image, one frame or several; the program's
// output is a sparse file.
func TestZstdProgram(t *testing.T) {
	needZstd(t)
	data := testImage(32<<20 + 100)
	// The zstd program writes the content size in the frame header, a streaming writer not.
	raw := filepath.Join(t.TempDir(), "sized")
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("zstd", "-q", raw).CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v: %s", err, out)
	}
	for _, p := range []string{writeZst(t, data), writeFrames(t, data, 1<<20), raw + ".zst"} {
		img, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		files := img.more // several frames: decoded in parts
		if img.f != nil {
			files = append(files, img.f)
		}
		if _, ok := img.r.(*store); ok || len(files) == 0 || !img.Compressed {
			t.Fatalf("%s: not decompressed by the program into files (%T)", p, img.r)
		}
		// A size in the frame header (one frame from zstd): a file in memory where there is one.
		if f, err := os.Open(p); err == nil {
			st, _ := f.Stat()
			known := contentSize(f, st.Size(), 1<<62) >= 0
			f.Close()
			memfd := memFile(0)
			if memfd != nil {
				memfd.Close()
			}
			if inMem := strings.HasPrefix(files[0].Name(), "memfd:"); inMem != (known && memfd != nil) {
				t.Errorf("%s: content size known %v, decompressed into %s", p, known, files[0].Name())
			}
			t.Logf("%s: content size known %v, decompressed into %s", filepath.Base(p), known, files[0].Name())
		}
		check(t, img, data)
		var alloc int64
		for _, f := range files {
			var st syscall.Stat_t
			if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			alloc += st.Blocks * 512
		}
		if alloc > int64(len(data))/4 {
			t.Errorf("zstd's output allocates %d bytes for a %d-byte mostly-zero image", alloc, len(data))
		}
		img.Close()
	}
}

// Every committed fixture image decompresses to the same bytes by either path (-short: one).
func TestZstdProgramFixtures(t *testing.T) {
	needZstd(t)
	paths, _ := filepath.Glob("../../fixtures/real/*/image.raw.zst")
	if len(paths) == 0 {
		t.Skip("no fixtures")
	}
	if testing.Short() {
		paths = []string{benchImage}
	}
	open := func(path, prog string) *Image {
		t.Setenv(ZstdEnv, prog)
		img, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	for _, p := range paths {
		prog, gd := open(p, "zstd"), open(p, "go")
		if _, ok := prog.r.(*os.File); !ok {
			t.Fatalf("%s: not decompressed by the program", p)
		}
		sameImages(t, p, "the zstd program", "the Go decoder", prog, gd)
		prog.Close()
		gd.Close()
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

// The frame headers' content sizes: a file of frames that give theirs, one that does not (a
// streaming encoder's), a damaged one.
func TestContentSize(t *testing.T) {
	data := testImage(3<<20 + 100<<10) // (klauspost leaves the size out of a frame of a few bytes)
	for _, c := range []struct {
		name string
		path string
		want int64
	}{
		{"frames", writeFrames(t, data, 1<<20), int64(len(data))},
		{"fixture", benchImage, 64 << 20},
		{"stream", writeZst(t, data), -1},
	} {
		f, err := os.Open(c.path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		got := contentSize(f, st.Size(), 1<<40)
		if got != c.want {
			t.Errorf("%s: contentSize %d, want %d", c.name, got, c.want)
		}
		if c.name == "frames" {
			if got := contentSize(f, st.Size()-3, 1<<40); got != -1 {
				t.Errorf("cut file: contentSize %d, want -1", got)
			}
			// The walk stops at the frame that reaches the limit: the damage after it
			// is not seen.
			if got := contentSize(f, st.Size()-3, 2<<20); got != 2<<20 {
				t.Errorf("limit 2 MiB: contentSize %d, want %d", got, 2<<20)
			}
		}
		f.Close()
	}
}

// By default a small image (its size in its header) goes to the Go decoder, into memory, and
// one whose size is unknown to the program.
func TestProgramChoice(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("zstd not on PATH")
	}
	t.Setenv(ZstdEnv, "")
	data := testImage(3<<20 + 100<<10)
	for _, c := range []struct {
		path    string
		program bool
	}{{writeFrames(t, data, 1<<20), false}, {writeZst(t, data), true}} {
		img, err := Open(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if _, isFile := img.r.(*os.File); isFile != c.program {
			t.Errorf("%s: decompressed by the program %v, want %v", filepath.Base(c.path), isFile, c.program)
		}
		check(t, img, data)
		img.Close()
	}
}

// FuzzOpenZstd: whatever the file holds, the Go decoder returns an image or an error naming
// the file, never panics; where the zstd program is installed it is run too (named, so
// whatever the size) and they agree on success and on the content. The seeds are small: a
// 64 MiB image takes seconds in the fuzzer's instrumented decoder.
func FuzzOpenZstd(f *testing.F) {
	good := func(data []byte) []byte {
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
		return buf.Bytes()
	}
	one := good(testImage(64 << 10))
	f.Add(one)
	f.Add(one[:len(one)/2])
	f.Add(append(bytes.Clone(one), one...))
	f.Add(zstdMagic)
	f.Add(holeFrame())
	_, noProgram := exec.LookPath("zstd")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		p := filepath.Join(dir, "fuzz.zst")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		old := MemoryLimit
		MemoryLimit = 1 << 20 // spill too
		defer func() { MemoryLimit = old }()
		t.Setenv(ZstdEnv, "go")
		gd, gerr := openWith(t, p, false)
		if gerr != nil {
			if !strings.Contains(gerr.Error(), p) {
				t.Fatalf("error without the file: %v", gerr)
			}
		} else {
			defer gd.Close()
		}
		// Decoded with holes wherever a run is longer than the window: the same image, or
		// the same failure.
		oldMin := holeMinDropped
		holeMinDropped = 0
		hd, herr := openWith(t, p, true)
		holeMinDropped = oldMin
		if (herr == nil) != (gerr == nil) {
			t.Fatalf("with holes: %v; without: %v", herr, gerr)
		}
		if herr == nil {
			defer hd.Close()
			if hd.Size() != gd.Size() {
				t.Fatalf("size %d with holes, %d without", hd.Size(), gd.Size())
			}
			if gd.Size() <= 256<<20 {
				a, c := make([]byte, gd.Size()), make([]byte, gd.Size())
				hd.ReadAt(a, 0)
				gd.ReadAt(c, 0)
				if !bytes.Equal(a, c) {
					t.Fatal("with and without holes differ")
				}
			}
		}
		if noProgram != nil {
			return
		}
		t.Setenv(ZstdEnv, "zstd")
		prog, perr := Open(p)
		if (perr == nil) != (gerr == nil) {
			t.Fatalf("program: %v; Go decoder: %v", perr, gerr)
		}
		if perr != nil {
			return
		}
		defer prog.Close()
		if prog.Size() != gd.Size() {
			t.Fatalf("size %d by the program, %d by the Go decoder", prog.Size(), gd.Size())
		}
		if gd.Size() > 256<<20 {
			return
		}
		a, c := make([]byte, gd.Size()), make([]byte, gd.Size())
		prog.ReadAt(a, 0)
		gd.ReadAt(c, 0)
		if !bytes.Equal(a, c) {
			t.Fatal("the program and the Go decoder differ")
		}
	})
}

// A file of several frames decoded in parts, more parts than cores and frames that do not end on
// chunk boundaries: the parts end to end are the image, read across their joins and past the
// end; a part that fails leaves the whole to the Go decoder.
func TestZstdProgramParts(t *testing.T) {
	needZstd(t)
	data := testImage(5<<20 + 333)
	p := writeFrames(t, data, 1<<20+1)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	frames := scanFrames(f, st.Size())
	for _, parts := range []int{2, 3, len(frames), len(frames) + 4} {
		var counted atomic.Int64
		img, reported, err := decompressProgramParts("zstd", f, frames, parts, p, func(n int64) { counted.Add(n) })
		if err != nil {
			t.Fatal(err)
		}
		if reported != st.Size() || counted.Load() != st.Size() {
			t.Errorf("%d parts: progress %d (returned %d), file %d bytes", parts, counted.Load(), reported, st.Size())
		}
		if want := min(parts, len(frames)); len(img.more) != want {
			t.Errorf("%d parts: %d files, want %d", parts, len(img.more), want)
		}
		check(t, img, data)
		rng := rand.New(rand.NewSource(int64(parts)))
		for range 500 {
			off := rng.Intn(len(data))
			n := rng.Intn(3 << 20)
			got := make([]byte, n)
			k, err := img.ReadAt(got, int64(off))
			want := data[off:min(off+n, len(data))]
			if k != len(want) || !bytes.Equal(got[:k], want) || (k < n) != (err != nil) {
				t.Fatalf("%d parts: ReadAt(%d bytes at %d) = %d, %v", parts, n, off, k, err)
			}
		}
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// One part damaged: the program fails there, the Go decoder names where.
	b, _ := os.ReadFile(p)
	for i := frames[3].off + frames[3].len/2; i < frames[3].off+frames[3].len/2+32; i++ {
		b[i] ^= 0x5a
	}
	bad := filepath.Join(t.TempDir(), "bad.zst")
	os.WriteFile(bad, b, 0o644)
	if img, err := Open(bad); err == nil {
		img.Close()
		t.Fatal("damaged multi-frame image opened without error")
	} else if !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "decompressed bytes") {
		t.Errorf("err = %v, want the file and the offset reached", err)
	}
}
