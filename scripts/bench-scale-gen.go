//go:build ignore

// bench-scale-gen writes a native log that takes disk image A to B and then B to C, as an ext2
// driver without a journal would: every 4 KiB block that differs written home, in block order,
// runs of up to 32 blocks in one request, a device flush every 4 MiB written and at each stage's
// end. bench-scale.sh makes A (empty), B (N files, mke2fs -d) and C (B with a third of the files
// renamed and half deleted, by debugfs) so that the log is a metadata-heavy run of a known shape.
//
//	go run scripts/bench-scale-gen.go A B C LOG
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/ext3replay/ext3replay/pkg/blklog"
)

const (
	bs       = 4096
	maxRun   = 32
	flushGap = 4 << 20
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/bench-scale-gen.go A B C LOG")
		os.Exit(2)
	}
	imgs := make([]*os.File, 3)
	for i, p := range os.Args[1:4] {
		f, err := os.Open(p)
		check(err)
		imgs[i] = f
	}
	fi, err := imgs[0].Stat()
	check(err)
	id, err := blklog.IdentifyImage(imgs[0], fi.Size(), false)
	check(err)
	w, err := blklog.Create(os.Args[4], blklog.Header{DiskSize: uint64(fi.Size()), Image: id,
		Source: "bench-scale-gen (synthetic: image diffs written home, ext2 style)"})
	check(err)
	var seq int64
	for stage := 0; stage < 2; stage++ {
		from, to := imgs[stage], imgs[stage+1]
		a, b := make([]byte, bs*maxRun), make([]byte, bs*maxRun)
		var run []byte
		var runStart int64 = -1
		var sinceFlush int
		emit := func() {
			if len(run) == 0 {
				return
			}
			check(w.Write(&blklog.Record{Index: seq, Type: blklog.TypeWrite, Sector: uint64(runStart * bs / blklog.SectorSize),
				Length: uint32(len(run)), Data: run}))
			seq++
			sinceFlush += len(run)
			run, runStart = run[:0], -1
			if sinceFlush >= flushGap {
				check(w.Write(&blklog.Record{Index: seq, Type: blklog.TypeFlush}))
				seq++
				sinceFlush = 0
			}
		}
		for off := int64(0); off < fi.Size(); off += int64(len(a)) {
			na, _ := from.ReadAt(a, off)
			nb, _ := to.ReadAt(b, off)
			if na != nb {
				check(fmt.Errorf("images differ in size at %d", off))
			}
			for i := 0; i+bs <= na; i += bs {
				blk := (off + int64(i)) / bs
				if bytes.Equal(a[i:i+bs], b[i:i+bs]) {
					emit()
					continue
				}
				if runStart >= 0 && (blk != runStart+int64(len(run)/bs) || len(run) == maxRun*bs) {
					emit()
				}
				if runStart < 0 {
					runStart = blk
				}
				run = append(run, b[i:i+bs]...)
			}
		}
		emit()
		check(w.Write(&blklog.Record{Index: seq, Type: blklog.TypeFlush}))
		seq++
	}
	check(w.Close())
}

func check(err error) {
	if err != nil && err != io.EOF {
		fmt.Fprintln(os.Stderr, "bench-scale-gen:", err)
		os.Exit(1)
	}
}
