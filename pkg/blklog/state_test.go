package blklog

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// A truncated .zst image is an error, not a shorter image: the zstd decoder reports a cut
// stream as io.ErrUnexpectedEOF, which io.ReadFull also uses for a short last read.
func TestIdentifyImageFileTruncatedZstd(t *testing.T) {
	img := bytes.Repeat([]byte("ext3replay image "), 1<<18) // 4.25 MiB, compresses well
	img = img[:4<<20]
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z, zstd.WithEncoderConcurrency(1))
	zw.Write(img)
	zw.Close()
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.zst")
	cut := filepath.Join(dir, "cut.zst")
	os.WriteFile(whole, z.Bytes(), 0o644)
	os.WriteFile(cut, z.Bytes()[:z.Len()-20], 0o644)
	id, err := IdentifyImageFile(whole)
	if err != nil || id.Size != uint64(len(img)) {
		t.Fatalf("whole image: size %d, %v; want %d", id.Size, err, len(img))
	}
	id, err = IdentifyImageFile(cut)
	if err == nil || !strings.Contains(err.Error(), "cut.zst") {
		t.Fatalf("truncated image: size %d, err %v; want an error naming the file", id.Size, err)
	}
	// The recorder's state file is made the same way.
	if st, _, err := PrepareState(cut, filepath.Join(dir, "state.img")); err == nil {
		st.Close()
		t.Fatal("state file made from a truncated image")
	}
}

// Create and PrepareState compare the opened output with the protected file
// by device and inode, so a hard link or symlink to it is refused untouched.
func TestOutputsRefuseLinksToBase(t *testing.T) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	want := makeBase(t, basePath, 1<<20)
	bi, err := os.Stat(basePath)
	if err != nil {
		t.Fatal(err)
	}
	hard, sym := filepath.Join(dir, "hard"), filepath.Join(dir, "sym")
	if err := os.Link(basePath, hard); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(basePath, sym); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{hard, sym, basePath} {
		var pe *ProtectedFileError
		if w, err := Create(p, Header{}, bi); !errors.As(err, &pe) {
			if w != nil {
				w.Close()
			}
			t.Errorf("Create(%s): %v, want a ProtectedFileError", p, err)
		}
		if f, _, err := PrepareState(basePath, p); err == nil || !strings.Contains(err.Error(), "base image itself") {
			if f != nil {
				f.Close()
			}
			t.Errorf("PrepareState(base, %s): %v", p, err)
		}
	}
	if got, _ := os.ReadFile(basePath); !bytes.Equal(got, want) {
		t.Fatalf("BASE changed: %d bytes", len(got))
	}
	// An unrelated output is still created.
	w, err := Create(filepath.Join(dir, "ok.zst"), Header{}, bi)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
}

// A 1 TiB sparse base was read and hashed hole by hole: no "ready" after minutes. Its data
// extents are now found with SEEK_DATA/SEEK_HOLE and copied alone; the identity is size plus
// region hash (no full hash), and the state file holds the data where the base has it.
func TestPrepareStateSparseBase(t *testing.T) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	f, err := os.Create(basePath)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 40
	if err := f.Truncate(size); err != nil {
		t.Skipf("no 1 TiB sparse file here: %v", err)
	}
	head := bytes.Repeat([]byte("superblock region "), 100)
	mid := []byte("data in the middle of the disk")
	f.WriteAt(head, 1024)
	f.WriteAt(mid, 512<<30+4096)
	f.WriteAt([]byte("last"), size-4)
	f.Close()
	start := time.Now()
	st, id, err := PrepareState(basePath, filepath.Join(dir, "state.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("PrepareState took %v", d)
	}
	if id.Size != size || id.HasFull || id.RegionLen != RegionSize {
		t.Fatalf("identity %+v", id)
	}
	want, _ := regionHash(t, basePath)
	if id.RegionSHA256 != want {
		t.Fatal("region hash differs from a plain read of the base")
	}
	for _, c := range []struct {
		off  int64
		want []byte
	}{{1024, head}, {512<<30 + 4096, mid}, {size - 4, []byte("last")}, {0, make([]byte, 1024)}, {1 << 35, make([]byte, 4096)}} {
		got := make([]byte, len(c.want))
		if _, err := st.ReadAt(got, c.off); err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("state at %d: %q, %v", c.off, got[:min(len(got), 40)], err)
		}
	}
	if fi, _ := st.Stat(); fi.Size() != size {
		t.Errorf("state file size %d", fi.Size())
	}
}

// regionHash hashes the first RegionSize bytes of the file at path by plain reading.
func regionHash(t *testing.T, path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, RegionSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b), nil
}
