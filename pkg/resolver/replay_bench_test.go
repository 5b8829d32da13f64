package resolver

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// BenchmarkReplay replays the records of every real fixture's recorder log, already decoded in memory,
// through a resolver: the cost of the model, the diffs and the pairing without log decoding or
// output. Compare builds with benchstat; bytes/op and allocs/op show the hot paths' garbage.
func BenchmarkReplay(b *testing.B) {
	type run struct {
		img  []byte
		recs []blklog.Record
	}
	var runs []run
	var n int64
	logs, _ := filepath.Glob("../../fixtures/real/*/io.log.zst")
	if len(logs) == 0 {
		b.Skip("no real fixtures")
	}
	for _, lp := range logs {
		img := readZstd(b, filepath.Join(filepath.Dir(lp), "image.raw.zst"))
		if _, err := ext3fs.Open(bytes.NewReader(img)); err != nil {
			continue // a partitioned disk: pkg/analysis cuts its log for each file system
		}
		recs := readLog(b, lp)
		runs = append(runs, run{img, recs})
		n += int64(len(recs))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, r := range runs {
			res, err := New(bytes.NewReader(r.img), int64(len(r.img)), Options{}, func(*ops.Op) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			for i := range r.recs {
				if err := res.Record(&r.recs[i]); err != nil {
					b.Fatal(err)
				}
			}
			if err := res.Finish(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n), "records/op")
}

// BenchmarkReplayLog is BenchmarkReplay on one large capture outside the corpus, for the
// resolver's share of a big run: EXT3REPLAY_BENCH_DIR names a directory holding image.raw and
// io.log.zst (scripts/bench-analyze.sh caches its captures so: ~/.cache/ext3replay-bench/large).
// The log is decoded into memory once; the image is read from its file.
func BenchmarkReplayLog(b *testing.B) {
	dir := os.Getenv("EXT3REPLAY_BENCH_DIR")
	if dir == "" {
		b.Skip("EXT3REPLAY_BENCH_DIR not set")
	}
	img, err := os.Open(filepath.Join(dir, "image.raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	fi, err := img.Stat()
	if err != nil {
		b.Fatal(err)
	}
	recs := readLog(b, filepath.Join(dir, "io.log.zst"))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res, err := New(img, fi.Size(), Options{}, func(*ops.Op) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		for i := range recs {
			if err := res.Record(&recs[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := res.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs)), "records/op")
}
