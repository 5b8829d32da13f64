package diskimage

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// benchImage is the committed fixture image the benchmarks open: 64 MiB, mostly zeros, one
// zstd frame, as every fixture image is.
const benchImage = "../../fixtures/real/basic-ext3-4k/image.raw.zst"

// BenchmarkOpen opens the fixture image compressed (zst-go: by the Go decoder; zst-program: by
// the zstd program, when on PATH; zst-default: as Open chooses) and decompressed (raw); as the floors, the same file is
// decoded to io.Discard by the same Go decoder (zstd-floor) and by `zstd -dc` to /dev/null
// (zstd-cli). zst-go/zstd-floor is the cost of keeping the content; zst-program/zstd-cli that
// of the program's way of keeping it; zst/raw that of the image being compressed.
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
	benchOpen(b, benchImage, raw)
}

// BenchmarkOpenFile is BenchmarkOpen on the image named by $EXT3REPLAY_BENCH_ZST (a .zst file;
// skipped when unset), e.g. the 6 GiB image scripts/bench-image.sh compresses, without the raw
// case: the profile of a large open.
func BenchmarkOpenFile(b *testing.B) {
	path := os.Getenv("EXT3REPLAY_BENCH_ZST")
	if path == "" {
		b.Skip("EXT3REPLAY_BENCH_ZST not set")
	}
	benchOpen(b, path, "")
}

func benchOpen(b *testing.B, zst, raw string) {
	b.Run("zstd-floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := os.Open(zst)
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
	prog, err := exec.LookPath("zstd")
	if err == nil {
		b.Run("zstd-cli", func(b *testing.B) {
			for b.Loop() {
				if err := exec.Command(prog, "-q", "-d", "-c", zst).Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	type bcase struct{ name, path, env string }
	cases := []bcase{{"zst-go", zst, "go"}}
	if prog != "" {
		cases = append(cases, bcase{"zst-program", zst, prog}, bcase{"zst-default", zst, ""})
	}
	if raw != "" {
		cases = append(cases, bcase{"raw", raw, ""})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.Setenv(ZstdEnv, c.env)
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
