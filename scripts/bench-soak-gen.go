//go:build ignore

// bench-soak-gen writes to standard output a native log of a guest filling its disk: writes of
// 1 MiB runs of the image's free blocks (blocks no inode owns), BYTES in all (default 20 GiB),
// a flush every 64 MiB, payloads stamped with their block number. It streams: nothing is held,
// so a 20 GiB log costs no disk when piped into analyze.
//
//	go run scripts/bench-soak-gen.go IMAGE [BYTES] | ext3replay analyze IMAGE -
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/bench-soak-gen.go IMAGE [BYTES] >LOG")
		os.Exit(2)
	}
	total := int64(20 << 30)
	if len(os.Args) > 2 {
		n, err := strconv.ParseInt(os.Args[2], 10, 64)
		check(err)
		total = n
	}
	f, err := os.Open(os.Args[1])
	check(err)
	fi, err := f.Stat()
	check(err)
	fsys, err := ext3fs.Open(f)
	check(err)
	bs := int64(fsys.BlockSize())

	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	w, err := blklog.NewWriter(out, blklog.Header{DiskSize: uint64(fi.Size()), Source: "bench-soak-gen (synthetic: writes to free blocks)"})
	check(err)
	const run = 1 << 20
	payload := make([]byte, run)
	for i := range payload {
		payload[i] = byte(i*131 + 17)
	}
	var written, sinceFlush int64
	bitmap := make([]byte, bs)
	var start, n int64 // current run of free blocks: first block, length
	emit := func() {
		if n == 0 || written >= total {
			n = 0
			return
		}
		length := min(n*bs, total-written) / 512 * 512
		p := payload[:length]
		for off := int64(0); off < length; off += bs {
			binary.LittleEndian.PutUint64(p[off:], uint64(start+off/bs)) // distinct blocks, distinct bytes
		}
		check(w.Write(&blklog.Record{Type: blklog.TypeWrite, Sector: uint64(start * bs / 512), Length: uint32(length), Data: p}))
		written += length
		if sinceFlush += length; sinceFlush >= 64<<20 {
			check(w.Write(&blklog.Record{Type: blklog.TypeFlush}))
			check(w.Flush())
			sinceFlush = 0
		}
		n = 0
	}
	for g := range fsys.Groups {
		check(fsys.ReadBlock(fsys.Groups[g].BlockBitmap, bitmap))
		first := int64(fsys.SB.FirstDataBlock) + int64(g)*int64(fsys.SB.BlocksPerGroup)
		for i := int64(0); i < int64(fsys.SB.BlocksPerGroup) && first+i < int64(fsys.SB.BlocksCount); i++ {
			b := first + i
			free := bitmap[i/8]&(1<<(i%8)) == 0
			if free && n > 0 && start+n == b && n*bs < run {
				n++
				continue
			}
			emit()
			if free {
				start, n = b, 1
			}
		}
		emit()
		if written >= total {
			break
		}
	}
	check(w.Write(&blklog.Record{Type: blklog.TypeFlush}))
	check(w.Close())
	check(out.Flush())
	if written < total {
		fmt.Fprintf(os.Stderr, "bench-soak-gen: only %d bytes of free blocks; wrote them once\n", written)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-soak-gen:", err)
		os.Exit(1)
	}
}
