package diskimage

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// benchImage is the committed fixture image the benchmarks open: 64 MiB, mostly zeros, one
// zstd frame, as every fixture image is.
const benchImage = "../../fixtures/real/basic-ext3-4k/image.raw.zst"

// BenchmarkOpen opens the fixture image compressed (zst) and decompressed (raw), and, as the
// floor, decodes the same file to io.Discard with the same decoder (zstd-floor). The ratio
// zst/zstd-floor is the cost of keeping the content; zst/raw that of it being compressed.
func BenchmarkOpen(b *testing.B) {
	raw := filepath.Join(b.TempDir(), "image.raw")
	{
		f, err := os.Open(benchImage)
		if err != nil {
			b.Skip(err)
		}
		zr, _ := zstd.NewReader(f)
		out, _ := os.Create(raw)
		if _, err := io.Copy(out, zr); err != nil {
			b.Fatal(err)
		}
		zr.Close()
		out.Close()
		f.Close()
	}
	b.Run("zstd-floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, _ := os.Open(benchImage)
			zr, _ := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
			if _, err := zr.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
			zr.Close()
			f.Close()
		}
	})
	for _, c := range []struct{ name, path string }{{"zst", benchImage}, {"raw", raw}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 4096)
			for b.Loop() {
				img, err := Open(c.path)
				if err != nil {
					b.Fatal(err)
				}
				// The superblock and first group descriptors, as every command reads them.
				if _, err := img.ReadAt(buf, 1024); err != nil {
					b.Fatal(err)
				}
				img.Close()
			}
		})
	}
}

// BenchmarkReadAt reads 4 KiB blocks of an in-memory decompressed image, as the index build
// and the resolver's model do.
func BenchmarkReadAt(b *testing.B) {
	img, err := Open(benchImage)
	if err != nil {
		b.Skip(err)
	}
	defer img.Close()
	buf := make([]byte, 4096)
	blocks := img.Size() / 4096
	b.SetBytes(4096)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		if _, err := img.ReadAt(buf, (i%blocks)*4096); err != nil {
			b.Fatal(err)
		}
		i += 7
	}
}

// BenchmarkOpenFile is BenchmarkOpen's zstd-floor and zst cases on the image named by
// $EXT3REPLAY_BENCH_IMAGE (a .zst file; skipped when unset), e.g. the 6 GiB image
// scripts/bench-image.sh compresses: the profile of a large open.
func BenchmarkOpenFile(b *testing.B) {
	path := os.Getenv("EXT3REPLAY_BENCH_IMAGE")
	if path == "" {
		b.Skip("EXT3REPLAY_BENCH_IMAGE not set")
	}
	b.Run("zstd-floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			zr, _ := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
			if _, err := zr.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
			zr.Close()
			f.Close()
		}
	})
	b.Run("zst", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			img, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			img.Close()
		}
	})
}
