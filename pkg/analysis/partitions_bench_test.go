package analysis

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// BenchmarkPartitioned: the cost of routing. The same capture (basic-ext4-4k's dm-log-writes
// log) analysed on its bare image and as partition 1 of a GPT disk whose other partitions hold
// no file system (the log shifted there), both images read from a file. Report the ratio
// partition/bare of the two ns/op.
func BenchmarkPartitioned(b *testing.B) {
	disk := gptDiskOf(b, sceneA, "")
	d, err := scenario.StartImage(filepath.Join(fixtures, sceneA))
	must(b, err)
	bare := filepath.Join(b.TempDir(), "bare.img")
	must(b, os.WriteFile(bare, d, 0o644))
	bf, err := os.Open(bare)
	must(b, err)
	defer bf.Close()
	logPath := filepath.Join(fixtures, sceneA, "writes.lwlog.zst")
	run := func(b *testing.B, img *os.File, size int64, shift uint64) {
		// CPU time too: on a shared machine wall time mostly measures the neighbours.
		var r0, r1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
		defer func() {
			syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) / time.Duration(b.N)
			b.ReportMetric(float64(cpu.Nanoseconds()), "cpu-ns/op")
		}()
		for b.Loop() {
			lr, err := blklog.Open(logPath)
			must(b, err)
			var log blklog.Reader = lr
			if shift != 0 {
				log = &shifted{lr, shift}
			}
			n := 0
			_, err = Run(Input{Image: img, ImageSize: size, ImageName: "disk", Log: log, LogName: "log"},
				Options{}, func(*ops.Op) error { n++; return nil })
			lr.Close()
			must(b, err)
			if n == 0 {
				b.Fatal("no ops")
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, bf, int64(len(d)), 0) })
	b.Run("gpt-partition", func(b *testing.B) { run(b, disk, diskSectors*512, p1Start) })
}
