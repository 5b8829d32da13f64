package diskimage

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ext3replay/ext3replay/internal/zstdframe"
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
	t.Setenv(ZstdEnv, "go") // the Go decoder's store
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
	// Only the non-zero chunks are kept.
	nonzero := 0
	for off := 0; off < len(data); off += chunk {
		if !bytes.Equal(data[off:min(off+chunk, len(data))], make([]byte, min(chunk, len(data)-off))) {
			nonzero++
		}
	}
	if s := img.r.(*store); s.used != nonzero {
		t.Errorf("kept %d chunks, the image has %d non-zero ones", s.used, nonzero)
	}
}

func TestZstdSpillIsSparse(t *testing.T) {
	t.Setenv(ZstdEnv, "go") // the Go decoder's store
	old := MemoryLimit
	MemoryLimit = 64 << 10 // below the image's non-zero content
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

// writeFrames compresses data as one zstd frame per piece of the given size, each after a
// skippable frame holding its compressed size, as pzstd writes them.
func writeFrames(t *testing.T, data []byte, piece int) string {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for off := 0; off < len(data); off += piece {
		fr := enc.EncodeAll(data[off:min(off+piece, len(data))], nil)
		out = binary.LittleEndian.AppendUint32(out, zstdframe.SkippableMagic)
		out = binary.LittleEndian.AppendUint32(out, 4)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(fr)))
		out = append(out, fr...)
	}
	p := filepath.Join(t.TempDir(), "frames.zst")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A file of several frames, even starting with a skippable frame and with frames that do not
// end on chunk boundaries, is split into them and decoded frame by frame (in parallel), in
// memory and spilled.
func TestZstdFrames(t *testing.T) {
	t.Setenv(ZstdEnv, "go") // the Go decoder's store
	data := testImage(9<<20 + 1000)
	for _, piece := range []int{1 << 20, 1<<20 + 1} {
		p := writeFrames(t, data, piece)
		f, _ := os.Open(p)
		st, _ := f.Stat()
		frames := scanFrames(f, st.Size())
		f.Close()
		if want := (len(data) + piece - 1) / piece; len(frames) != want {
			t.Fatalf("scanFrames found %d frames, want %d", len(frames), want)
		}
		for _, limit := range []int64{64 << 20, 64 << 10} {
			old := MemoryLimit
			MemoryLimit = limit
			img, err := Open(p)
			MemoryLimit = old
			if err != nil {
				t.Fatal(err)
			}
			if spilled := img.f != nil; spilled != (limit < 1<<20) {
				t.Errorf("limit %d: spilled %v", limit, spilled)
			}
			check(t, img, data)
			img.Close()
		}
	}
}

// A frame larger than the parallel bound: the file is decoded as one stream instead.
func TestZstdFramesLarge(t *testing.T) {
	t.Setenv(ZstdEnv, "go") // the Go decoder's store
	data := make([]byte, 2*maxFrame+3*chunk)
	for i := 0; i < len(data); i += 1 << 20 {
		data[i] = byte(i>>20) | 1
	}
	p := writeFrames(t, data, maxFrame+chunk)
	img, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	check(t, img, data)
}

// A damaged frame among several is reported with the decompressed offset it reached.
func TestCorruptZstdFrames(t *testing.T) {
	data := testImage(4 << 20)
	for i := range data {
		data[i] ^= byte(i % 251) // no zero runs: every frame is large
	}
	p := writeFrames(t, data, 1<<20)
	b, _ := os.ReadFile(p)
	f, _ := os.Open(p)
	frames := scanFrames(f, int64(len(b)))
	f.Close()
	if len(frames) != 4 {
		t.Fatalf("%d frames, want 4", len(frames))
	}
	// Flip bytes in the middle of the third frame's compressed data: the walk still finds
	// the frames (block sizes intact) unless a block header is hit, and decoding fails.
	mid := frames[2].off + frames[2].len/2
	for i := mid; i < mid+64; i++ {
		b[i] ^= 0x5a
	}
	os.WriteFile(p, b, 0o644)
	img, err := Open(p)
	if err == nil {
		img.Close()
		t.Fatal("damaged multi-frame image opened without error")
	}
	if !strings.Contains(err.Error(), "damaged or cut short after ") {
		t.Fatalf("err = %v, want where decompression stopped", err)
	}
	// Cut inside the last frame: the walk fails, the stream decoder reports the cut.
	os.WriteFile(p, b[:frames[3].off+10], 0o644)
	if img, err := Open(p); err == nil {
		img.Close()
		t.Fatal("cut multi-frame image opened without error")
	}
}

// ReadAt of an in-memory image: across chunk boundaries, at the end, past the end.
func TestStoreReadAt(t *testing.T) {
	t.Setenv(ZstdEnv, "go") // the Go decoder's store
	data := testImage(1<<20 + 77)
	img, err := Open(writeZst(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 2000; i++ {
		off := rng.Intn(len(data))
		n := rng.Intn(3 * chunk)
		got := make([]byte, n)
		k, err := img.ReadAt(got, int64(off))
		want := data[off:min(off+n, len(data))]
		if k != len(want) || !bytes.Equal(got[:k], want) || (k < n) != (err != nil) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, k, err)
		}
	}
	if _, err := img.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("negative offset: no error")
	}
}

// OpenProgress counts the compressed bytes read: all of a one-frame file, all the frames of a
// pzstd-style file (their skippable headers are read by the scan, not counted), none of a raw
// image; the image is the same as Open's.
func TestOpenProgress(t *testing.T) {
	data := testImage(3<<20 + 100)
	one := writeZst(t, data)
	frames := writeFrames(t, data, 1<<20)
	raw := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path       string
		minPercent int64  // of the file size
		prog       string // ZstdEnv: the Go decoder, or the zstd program
	}{{one, 100, "go"}, {frames, 95, "go"}, {raw, 0, "go"}, {one, 100, "zstd"}, {frames, 100, "zstd"}} {
		t.Setenv(ZstdEnv, c.prog)
		var n atomic.Int64
		calls := 0
		var mu sync.Mutex
		img, err := OpenProgress(c.path, func(k int64) {
			n.Add(k)
			mu.Lock()
			calls++
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		check(t, img, data)
		img.Close()
		st, _ := os.Stat(c.path)
		if c.minPercent == 0 {
			if calls != 0 {
				t.Errorf("raw image: %d progress calls", calls)
			}
			continue
		}
		if got := n.Load(); got > st.Size() || got*100 < st.Size()*c.minPercent || calls == 0 {
			t.Errorf("%s: %d bytes counted in %d calls, file %d bytes", filepath.Base(c.path), got, calls, st.Size())
		}
	}
}
