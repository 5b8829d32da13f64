package diskimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// sparseImage is an image of size bytes with data at the given offsets (pieces of 5-70 KiB,
// not chunk-aligned) and zeros elsewhere: long zero runs between them.
func sparseImage(size int, at ...int) []byte {
	b := make([]byte, size)
	rng := rand.New(rand.NewSource(3))
	for _, off := range at {
		n := min(5000+rng.Intn(65000), size-off)
		for i := range n {
			b[off+i] = byte(rng.Intn(4)) // compressible, as file-system metadata is
		}
	}
	return b
}

// compress writes data compressed by the zstd program with the given arguments. The Go
// encoder writes no RLE blocks, so its frames have no holes.
func compress(t *testing.T, data []byte, args ...string) string {
	t.Helper()
	prog, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("no zstd program")
	}
	raw := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prog, append(append([]string{"-q", "-f"}, args...), raw, "-o", raw+".zst")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", prog, err, out)
	}
	return raw + ".zst"
}

// openWith opens path with frames decoded with holes (holes) or not.
func openWith(t *testing.T, path string, holes bool) (*Image, error) {
	t.Helper()
	old := useHoles
	useHoles = holes
	defer func() { useHoles = old }()
	return Open(path)
}

func plan(t *testing.T, path string) *holePlan {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	return planHoles(f, st.Size())
}

// sameImages fails unless a and b (opened the ways named aWay and bWay) read the same, MiB by
// MiB.
func sameImages(t *testing.T, what, aWay, bWay string, a, b *Image) {
	t.Helper()
	if a.Size() != b.Size() {
		t.Fatalf("%s: size %d %s, %d %s", what, a.Size(), aWay, b.Size(), bWay)
	}
	x, y := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < a.Size(); off += int64(len(x)) {
		n := min(int64(len(x)), a.Size()-off)
		if _, err := a.ReadAt(x[:n], off); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ReadAt(y[:n], off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x[:n], y[:n]) {
			t.Fatalf("%s: %s and %s differ in the MiB at %d", what, aWay, bWay, off)
		}
	}
}

// Every committed image (compressed by the zstd program) reads the same decoded with holes,
// where its zero runs allow, and by the ordinary stream decoder.
func TestHolesFixtures(t *testing.T) {
	t.Setenv(ZstdEnv, "go")
	paths, _ := filepath.Glob("../../fixtures/real/*/image.raw.zst")
	if len(paths) == 0 {
		t.Skip("no fixtures")
	}
	if testing.Short() {
		paths = paths[:3]
	}
	planned := 0
	for _, p := range paths {
		if plan(t, p) != nil {
			planned++
		}
		var reported int64
		holes, err := OpenProgress(p, func(n int64) { reported += n })
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(p); reported != st.Size() {
			t.Errorf("%s: progress told of %d bytes of %d", p, reported, st.Size())
		}
		plain, err := openWith(t, p, false)
		if err != nil {
			t.Fatal(err)
		}
		sameImages(t, p, "with holes", "without", holes, plain)
		holes.Close()
		plain.Close()
	}
	// Those on 1 KiB blocks have metadata every 8 MiB, the window: no run is longer.
	if planned < len(paths)/2 {
		t.Errorf("%d of %d images decoded with holes", planned, len(paths))
	}
	t.Logf("%d of %d images decoded with holes", planned, len(paths))
}

// Images made by both encoders, with and without data at the ends, several zero runs longer
// than the window and shorter ones: the image is exactly the data, its long runs never decoded.
func TestHolesEncoders(t *testing.T) {
	t.Setenv(ZstdEnv, "go")
	const M = 1 << 20
	images := map[string][]byte{
		"data at both ends": sparseImage(12*M, 0, 3*M+17, 3*M+200_000, 5*M+5, 8*M, 12*M-70_000),
		"zeros at the end":  sparseImage(12*M, 1024, 3*M+1, 6*M),
		"zeros first":       sparseImage(12*M, 9*M+4095),
		"odd size":          sparseImage(12*M+1234, 0, 6*M),
	}
	// A 1 MiB window, so that runs of a few MiB are longer than it; without, level 3's is 2 MiB.
	levels := [][]string{{"-3"}, {"-3", "--zstd=wlog=20"}, {"-19", "--zstd=wlog=20"}, {"-T2", "-6", "--zstd=wlog=20"}}
	for name, data := range images {
		for _, args := range levels {
			what := name + ", zstd " + strings.Join(args, " ")
			p := compress(t, data, args...)
			pl := plan(t, p)
			if pl == nil {
				t.Fatalf("%s: no plan", what)
			}
			if pl.dropped < int64(len(data))/2 {
				t.Errorf("%s: %d of %d bytes left out", what, pl.dropped, len(data))
			}
			img, err := openWith(t, p, true)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			check(t, img, data)
			img.Close()
		}
	}
}

// The checksum is what makes the result exact: a hole moved by one chunk, the image keeping
// its size, fails it; so does a checksum that is not the content's. Open then decodes the
// image the ordinary way, which finds the damage, or the image right.
func TestHolesChecksum(t *testing.T) {
	t.Setenv(ZstdEnv, "go")
	const M = 1 << 20
	data := sparseImage(40*M, 0, 12*M, 30*M)
	p := compress(t, data, "--zstd=wlog=20")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()

	pl := planHoles(f, st.Size())
	if pl == nil || len(pl.parts) < 2 || pl.parts[0].hole == 0 || pl.parts[len(pl.parts)-1].hole == 0 {
		t.Fatalf("plan %+v: want holes first and last", pl)
	}
	// The data at 12 and 30 MiB comes a chunk early.
	pl.parts[0].hole -= chunk
	pl.parts[len(pl.parts)-1].hole += chunk
	img, _, err := decompressHoles(f, pl, p, nil)
	if !errors.Is(err, errHoleChecksum) {
		t.Fatalf("a hole moved: err = %v, want a checksum mismatch", err)
	}
	if img != nil {
		img.Close()
	}

	// The frame's checksum changed: the holes fail, and so does the ordinary decoder.
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 0x40
	bad := filepath.Join(t.TempDir(), "bad.zst")
	os.WriteFile(bad, b, 0o644)
	g, _ := os.Open(bad)
	defer g.Close()
	if _, _, err := decompressHoles(g, planHoles(g, int64(len(b))), bad, nil); !errors.Is(err, errHoleChecksum) {
		t.Fatalf("checksum changed: err = %v, want a checksum mismatch", err)
	}
	if img, err := Open(bad); err == nil {
		img.Close()
		t.Fatal("an image whose checksum does not match opened")
	} else if !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("err = %v, want the file and where it is damaged", err)
	}
}

// A frame with no checksum, several frames, or too few zeros is decoded the ordinary way.
func TestHolesNotPlanned(t *testing.T) {
	const M = 1 << 20
	data := sparseImage(40*M, 0, 20*M)
	noSum := compress(t, data, "--zstd=wlog=20", "--no-check")
	one := compress(t, data, "--zstd=wlog=20")
	b, _ := os.ReadFile(one)
	two := filepath.Join(t.TempDir(), "two.zst")
	os.WriteFile(two, append(bytes.Clone(b), b...), 0o644)
	dense := make([]byte, 4*M)
	rand.New(rand.NewSource(4)).Read(dense)
	for what, p := range map[string]string{
		"no checksum": noSum,
		"two frames":  two,
		"dense":       compress(t, dense, "--zstd=wlog=20"),
		"short runs":  compress(t, sparseImage(8*M, 0, M/2, M, 3*M/2, 2*M, 5*M/2, 3*M, 7*M/2, 4*M, 9*M/2, 5*M, 11*M/2, 6*M, 13*M/2, 7*M, 15*M/2), "--zstd=wlog=20"),
	} {
		if pl := plan(t, p); pl != nil {
			t.Errorf("%s: planned (%d bytes left out)", what, pl.dropped)
		}
	}
}

// holeFrame is a zstd frame with a 1 KiB window and zero runs of 10 KiB and 3 KiB between raw
// blocks, the frame ending with the second, as a seed for FuzzOpenZstd: both runs become holes
// (with holeMinDropped 0).
func holeFrame() []byte {
	b := []byte{0x28, 0xB5, 0x2F, 0xFD, 0x04, 0x00} // checksum, window 1 KiB
	var content []byte
	block := func(last bool, typ int, size int, payload []byte) {
		v := uint32(size)<<3 | uint32(typ)<<1
		if last {
			v |= 1
		}
		b = append(b, byte(v), byte(v>>8), byte(v>>16))
		b = append(b, payload...)
		if typ == 1 {
			content = append(content, bytes.Repeat(payload, size)...)
		} else {
			content = append(content, payload...)
		}
	}
	block(false, 0, 5, []byte("hello"))
	for range 10 {
		block(false, 1, 1024, []byte{0})
	}
	block(false, 0, 5, []byte("world"))
	for i := range 3 {
		block(i == 2, 1, 1024, []byte{0})
	}
	return binary.LittleEndian.AppendUint32(b, uint32(xxhash.Sum64(content)))
}

func TestHoleFrame(t *testing.T) {
	p := filepath.Join(t.TempDir(), "seed.zst")
	os.WriteFile(p, holeFrame(), 0o644)
	old := holeMinDropped
	holeMinDropped = 0
	defer func() { holeMinDropped = old }()
	pl := plan(t, p)
	if pl == nil || pl.dropped != 13*1024-2*1024 || !pl.parts[len(pl.parts)-1].last {
		t.Fatalf("plan %+v: want both runs left out but their last KiB, the last run's block last", pl)
	}
	img, err := openWith(t, p, true)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	want := append(append(append([]byte("hello"), make([]byte, 10*1024)...), "world"...), make([]byte, 3*1024)...)
	check(t, img, want)
}

// A damaged or cut copy of a file the holes would decode fails as the ordinary decoders make
// it fail: an error naming the file and how far decompression got, never a wrong image.
func TestHolesDamaged(t *testing.T) {
	t.Setenv(ZstdEnv, "go")
	const M = 1 << 20
	data := sparseImage(12*M, 0, 3*M+17, 8*M)
	b, err := os.ReadFile(compress(t, data, "--zstd=wlog=20"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, cut := range []int{len(b) - 1, len(b) - 4, len(b) / 2, 40} {
		p := filepath.Join(dir, "cut.zst")
		os.WriteFile(p, b[:cut], 0o644)
		if img, err := Open(p); err == nil {
			img.Close()
			t.Fatalf("cut %d at %d of %d bytes: opened", i, cut, len(b))
		} else if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "decompressed bytes") {
			t.Fatalf("cut at %d: err = %v, want the file and how far decompression got", cut, err)
		}
	}
	// A flipped byte anywhere in the blocks: an error, or (where zstd cannot tell) the image
	// the ordinary decoder gives, never one of the holes' own.
	for off := 20; off < len(b)-4; off += len(b) / 23 {
		c := bytes.Clone(b)
		c[off] ^= 0x5A
		p := filepath.Join(dir, "flip.zst")
		os.WriteFile(p, c, 0o644)
		holes, herr := openWith(t, p, true)
		plain, perr := openWith(t, p, false)
		if (herr == nil) != (perr == nil) {
			t.Fatalf("byte %d flipped: with holes %v, without %v", off, herr, perr)
		}
		if herr == nil {
			sameImages(t, p, "with holes", "without", holes, plain)
			holes.Close()
			plain.Close()
		}
	}
}
