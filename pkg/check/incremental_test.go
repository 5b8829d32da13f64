package check

import (
	"bytes"
	"fmt"
	"github.com/ext3replay/ext3replay/internal/scenario"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// TestIncrementalSameAsFull: on every real capture, and on each injected fault, the incremental
// checks find exactly what checks reading the whole file system every time find, and read
// fewer structures.
func TestIncrementalSameAsFull(t *testing.T) {
	if testing.Short() {
		t.Skip("replays every real capture twice")
	}
	dirs, _ := filepath.Glob("../../fixtures/real/*")
	var fullT, incT, fullS, incS time.Duration
	var fullR, incR int
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if scenario.Partitioned(dir) {
				// A whole partitioned disk is no file system; TestRealCapturesClean checks its
				// partitions one by one.
				t.Skip("partitioned disk")
			}
			disk, recs := capture(t, dir)
			run := func(full bool) (*Checker, []Finding, time.Duration) {
				start := time.Now()
				c, fs, err := RunWith(disk, int64(len(disk)), &sliceLog{recs: recs}, Options{Full: full})
				if err != nil {
					t.Fatal(err)
				}
				return c, fs, time.Since(start)
			}
			cf, ff, df := run(true)
			ci, fi, di := run(false)
			fullT, incT, fullR, incR = fullT+df, incT+di, fullR+cf.Reads(), incR+ci.Reads()
			fullS, incS = fullS+cf.ScanTime(), incS+ci.ScanTime()
			if findingsText(ff) != findingsText(fi) {
				t.Errorf("full checks found %v, incremental %v", ff, fi)
			}
			if cf.Checks() != ci.Checks() {
				t.Errorf("%d checks against %d", cf.Checks(), ci.Checks())
			}
			if cf.Checks() > 1 && ci.Reads() >= cf.Reads() {
				t.Errorf("incremental checks read %d structures, full ones %d", ci.Reads(), cf.Reads())
			}
		})
	}
	t.Logf("all captures: full checks %v (checking %v), %d structures read; incremental %v (checking %v), %d read; time ratio %.2f, checking alone %.2f",
		fullT, fullS, fullR, incT, incS, incR, float64(incT)/float64(fullT), float64(incS)/float64(fullS))
}

// BenchmarkCheck compares full and incremental checks on the capture with the most
// consistency points (random-ext4-4k) and the biggest directory (htree-ext4-4k).
func BenchmarkCheck(b *testing.B) {
	for _, name := range []string{"random-ext4-4k", "htree-ext4-4k"} {
		t := &testing.T{}
		disk, recs := capture(t, filepath.Join("../../fixtures/real", name))
		for _, full := range []bool{true, false} {
			mode := "incremental"
			if full {
				mode = "full"
			}
			b.Run(name+"/"+mode, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					c, _, err := RunWith(disk, int64(len(disk)), &sliceLog{recs: recs}, Options{Full: full})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(c.Reads()), "reads/op")
					b.ReportMetric(float64(c.Checks()), "checks/op")
				}
			})
		}
	}
}

var _ blklog.Reader = (*sliceLog)(nil)

// TestCheckCostBig measures full against incremental checks on a big capture outside the
// corpus (EXT3REPLAY_CHECK_BIG=dir holding image.raw[.zst] and io.log.zst, e.g. the big4
// capture of scripts/bench-analyze.sh): same findings, time and structures read, in one run.
func TestCheckCostBig(t *testing.T) {
	dir := os.Getenv("EXT3REPLAY_CHECK_BIG")
	if dir == "" {
		t.Skip("EXT3REPLAY_CHECK_BIG not set")
	}
	imgPath := filepath.Join(dir, "image.raw")
	if _, err := os.Stat(imgPath); err != nil {
		imgPath += ".zst"
	}
	var res [2]string
	var dur, scan [2]time.Duration
	for i, full := range []bool{true, false} {
		img, err := diskimage.Open(imgPath)
		if err != nil {
			t.Fatal(err)
		}
		lr, err := blklog.Open(filepath.Join(dir, "io.log.zst"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c, fs, err := RunWith(img, img.Size(), lr, Options{Full: full})
		dur[i] = time.Since(start)
		lr.Close()
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		res[i] = findingsText(fs)
		t.Logf("full=%v: %v, of which checking %v; %d checks, %d structures read, %d findings", full, dur[i], c.ScanTime(), c.Checks(), c.Reads(), len(fs))
		scan[i] = c.ScanTime()
	}
	if res[0] != res[1] {
		t.Errorf("full and incremental checks differ:\n%s\n%s", res[0], res[1])
	}
	t.Logf("incremental/full: whole run %.3f, checking alone %.3f", float64(dur[1])/float64(dur[0]), float64(scan[1])/float64(scan[0]))
}

// findingsText prints findings by value (Group is a pointer: fmt would print its address).
func findingsText(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		g := "-"
		if f.Group != nil {
			g = fmt.Sprint(*f.Group)
		}
		f.Group = nil
		fmt.Fprintf(&b, "%+v group=%s\n", f, g)
	}
	return b.String()
}

// TestPlainDataSameFindings: on every real capture, a checker that leaves plain file data out
// (Options.Refetch) finds exactly what one keeping every block finds, with the same errors; and
// so does one that leaves out every block it can, the starting image's metadata and small
// writes included, so that its checks read many blocks again from the log.
func TestPlainDataSameFindings(t *testing.T) {
	if testing.Short() {
		t.Skip("replays every real capture three times")
	}
	dirs, _ := filepath.Glob("../../fixtures/real/*")
	var plain, again, plainAll, againAll int
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if scenario.Partitioned(dir) {
				t.Skip("partitioned disk")
			}
			disk, recs := capture(t, dir)
			refetch := func(i int64) (blklog.Record, error) {
				if i < 0 || i >= int64(len(recs)) || recs[i].Index != i {
					return blklog.Record{}, fmt.Errorf("no record %d", i)
				}
				return recs[i], nil
			}
			run := func(opt Options) (*Checker, string) {
				c, fs, err := RunWith(disk, int64(len(disk)), &sliceLog{recs: recs}, opt)
				if err != nil {
					t.Fatal(err)
				}
				return c, findingsText(fs) + strings.Join(c.Errors(), "\n")
			}
			_, want := run(Options{})
			cp, got := run(Options{Refetch: refetch})
			if got != want {
				t.Errorf("leaving plain data out, check found\n%s\nkeeping every block\n%s", got, want)
			}
			ca, gotAll := run(Options{Refetch: refetch, plainAll: true})
			if gotAll != want {
				t.Errorf("leaving every plain block out, check found\n%s\nkeeping every block\n%s", gotAll, want)
			}
			plain, again, plainAll, againAll = plain+cp.nPlain, again+cp.Refetched(), plainAll+ca.nPlain, againAll+ca.Refetched()
		})
	}
	t.Logf("blocks left plain %d, read again %d; leaving out every plain block: %d, read again %d", plain, again, plainAll, againAll)
	if plain == 0 || againAll == 0 {
		t.Errorf("nothing left plain (%d) or nothing read again (%d): the test tests nothing", plain, againAll)
	}
}

// A block left plain and written again reads as its last content, read again from the record
// that wrote it; a rewrite of the same content introduces nothing, another one does.
func TestPlainBlockRewritten(t *testing.T) {
	disk, _ := capture(t, "../../fixtures/real/basic-ext4-4k")
	var recs []blklog.Record
	refetch := func(i int64) (blklog.Record, error) { return recs[i], nil }
	c, err := NewWith(disk, int64(len(disk)), Options{Refetch: refetch})
	if err != nil {
		t.Fatal(err)
	}
	first := c.nblk - 16
	for b := first; b < c.nblk; b++ {
		if c.keep[b/64]&(1<<(b%64)) != 0 {
			t.Skipf("block %d is the image's metadata", b)
		}
	}
	payload := func(seed uint64) []byte {
		p := make([]byte, 16*c.bs)
		for i := range p {
			p[i] = byte(seed + uint64(i*7+i/13))
		}
		return p
	}
	write := func(p []byte) {
		r := blklog.Record{Index: int64(len(recs)), Type: blklog.TypeWrite, Sector: first * uint64(c.bs) / blklog.SectorSize, Length: uint32(len(p)), Data: p}
		recs = append(recs, r)
		if err := c.Record(&recs[len(recs)-1]); err != nil {
			t.Fatal(err)
		}
	}
	a, b := payload(1), payload(2)
	write(a)
	write(bytes.Clone(a)) // the same content again
	if c.nPlain != 16 || c.last[first] != 0 {
		t.Fatalf("%d blocks left plain, block %d last written by record %d; want 16 and record 0", c.nPlain, first, c.last[first])
	}
	write(b)
	if c.nPlain != 32 || c.last[first] != 2 {
		t.Fatalf("%d blocks left plain, block %d last written by record %d; want 32 and record 2", c.nPlain, first, c.last[first])
	}
	got := make([]byte, len(b))
	if _, err := c.ReadAt(got, int64(first)*int64(c.bs)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) || c.Refetched() != 16 {
		t.Fatalf("read %d blocks again (want 16), content the last write's: %v", c.Refetched(), bytes.Equal(got, b))
	}
}

// TestPlainBlockAsInImage: a large write whose blocks are in part what the image already holds
// changes only the others (the image under the write is read at once, imageBlock), whether the
// write starts on a block the image holds or not.
func TestPlainBlockAsInImage(t *testing.T) {
	for _, startSame := range []bool{true, false} {
		disk, _ := capture(t, "../../fixtures/real/basic-ext4-4k")
		c0, err := NewWith(disk, int64(len(disk)), Options{Refetch: func(int64) (blklog.Record, error) { return blklog.Record{}, nil }})
		if err != nil {
			t.Fatal(err)
		}
		bs, first := c0.bs, c0.nblk-16
		for b := first; b < c0.nblk; b++ {
			if c0.keep[b/64]&(1<<(b%64)) != 0 {
				t.Skipf("block %d is the image's metadata", b)
			}
		}
		p := make([]byte, 16*bs)
		for i := range p {
			p[i] = byte(3 + i*5 + i/11)
		}
		same := map[uint64]bool{}
		for k := range 16 {
			if (k%2 == 0) == startSame {
				b := first + uint64(k)
				same[b] = true
				copy(disk[int(b)*bs:], p[k*bs:(k+1)*bs])
			}
		}
		c, err := NewWith(disk, int64(len(disk)), Options{Refetch: func(int64) (blklog.Record, error) { return blklog.Record{}, nil }})
		if err != nil {
			t.Fatal(err)
		}
		r := blklog.Record{Index: 7, Type: blklog.TypeWrite, Sector: first * uint64(bs) / blklog.SectorSize, Length: uint32(len(p)), Data: p}
		if err := c.Record(&r); err != nil {
			t.Fatal(err)
		}
		for b := first; b < c.nblk; b++ {
			if _, written := c.last[b]; written == same[b] || c.changed.has(b) == same[b] {
				t.Errorf("start same %v: block %d, as in the image %v: last written %v, changed %v", startSame, b, same[b], written, c.changed.has(b))
			}
		}
		if c.nPlain != 8 {
			t.Errorf("start same %v: %d blocks left plain, want 8", startSame, c.nPlain)
		}
	}
}
