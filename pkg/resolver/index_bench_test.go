package resolver

import (
	"os"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// BenchmarkBuildImage builds the index and names of $EXT3REPLAY_BENCH_IMAGE (scripts/bench-index.sh
// passes its 6 GiB image), or of a small generated image when unset. Each iteration opens the
// image afresh, so it measures everything `ext3replay blocks` does before answering.
func BenchmarkBuildImage(b *testing.B) {
	img := os.Getenv("EXT3REPLAY_BENCH_IMAGE")
	if img == "" {
		img, _ = ext3fstest.Build(b, ext3fstest.Image{Type: "ext3", BlockSize: 4096, Size: "16M"})
	}
	var runs, named int
	var blocks uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Open(img)
		if err != nil {
			b.Fatal(err)
		}
		fsys, err := ext3fs.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		x, names, err := Build(fsys)
		if err != nil {
			b.Fatal(err)
		}
		runs, named, blocks = x.Len(), names.Len(), fsys.SB.BlocksCount
		f.Close()
	}
	b.ReportMetric(float64(runs), "runs")
	b.ReportMetric(float64(named), "named-inodes")
	b.ReportMetric(float64(blocks), "fs-blocks")
}

// BenchmarkIndexLookup measures Lookup on an index with many runs.
func BenchmarkIndexLookup(b *testing.B) {
	x := NewIndex(1<<30, 16)
	for i := uint64(0); i < 200000; i++ {
		x.Set(i*10, 5, Owner{Role: RoleData, Ino: uint32(i), Logical: 0})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = x.Lookup(uint64(i*7919) % 2000000)
	}
}

// BenchmarkIndexLookupInOrder measures Lookup of consecutive blocks, as the claims of a file's
// blocks and the writes of its data come: most fall in the run or gap the lookup before found.
func BenchmarkIndexLookupInOrder(b *testing.B) {
	x := NewIndex(1<<30, 16)
	for i := uint64(0); i < 200000; i++ {
		x.Set(i*10, 5, Owner{Role: RoleData, Ino: uint32(i), Logical: 0})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = x.Lookup(uint64(i) % 2000000)
	}
}

// BenchmarkIndexSet measures Set of single blocks scattered over an index with many runs, as the
// resolver does when writes arrive.
func BenchmarkIndexSet(b *testing.B) {
	x := NewIndex(1<<30, 16)
	for i := uint64(0); i < 200000; i++ {
		x.Set(i*10, 5, Owner{Role: RoleData, Ino: uint32(i), Logical: 0})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		blk := uint64(i*7919) % 2000000
		x.Set(blk, 1, Owner{Role: RoleDir, Ino: 5, Logical: uint64(i)})
	}
}
