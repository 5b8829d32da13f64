package resolver

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// BenchmarkPendingCopy holds the writes of a large copy into free blocks (64 requests of 256
// whole blocks each, as a guest writes 1 MiB at a time) and settles them in block order, as the
// commit that claims them does: the per-block cost of a copy before any metadata.
func BenchmarkPendingCopy(b *testing.B) {
	img := readZstd(b, "../../fixtures/real/basic-ext3-4k/image.raw.zst")
	r, err := New(bytes.NewReader(img), int64(len(img)), Options{}, func(*ops.Op) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	const reqs, per = 64, 256
	o := Owner{Role: RoleData, Ino: 12}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for q := range reqs {
			for k := range per {
				r.addPending(uint64(1000+q*per+k), pendWrite{seq: int64(q), t: float64(q), n: int32(r.bs)})
			}
		}
		for blk := uint64(1000); blk < 1000+reqs*per; blk++ {
			r.settlePending(blk, o)
		}
		r.output.io.reset()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*reqs*per), "ns/block")
}

// BenchmarkModelBaseBlocks reads 4096 blocks of an image file through a fresh model, in block
// order, as the first diffs of a transaction's inode-table blocks do: the cost of reading the
// base image (a file, as analyze opens it).
func BenchmarkModelBaseBlocks(b *testing.B) {
	img := readZstd(b, "../../fixtures/real/basic-ext3-4k/image.raw.zst")
	path := filepath.Join(b.TempDir(), "image.raw")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const bs, n = 4096, 4096
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m := newModel(f, int64(len(img)), bs, uint64(len(img)/bs), true, DefaultUnownedCap)
		for blk := uint64(100); blk < 100+n; blk++ {
			if len(m.block(blk)) != bs {
				b.Fatal("short block")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/block")
}
