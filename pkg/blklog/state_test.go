package blklog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
