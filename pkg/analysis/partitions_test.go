package analysis

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/partition"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

// The test disk: two real captures' starting images as partitions 1 and 2 of a GPT disk, a
// swap partition 3, the gap before partition 1 unpartitioned.
const (
	p1Start, p2Start, p3Start = 2048, 133120, 264192 // sectors
	partSectors, swapSectors  = 131072, 16384
	diskSectors               = p3Start + swapSectors + 2048
)

var (
	sceneA = "basic-ext4-4k" // partition 1
	sceneB = "basic-ext2-1k" // partition 2
)

// gptDisk writes the disk to a sparse file: the table by sfdisk, each image into its partition.
func gptDisk(t testing.TB) *os.File { return gptDiskOf(t, sceneA, sceneB) }

// gptDiskOf is gptDisk with the scenes given for partitions 1 and 2 ("" leaves one empty).
func gptDiskOf(t testing.TB, scenes ...string) *os.File {
	t.Helper()
	sf, err := exec.LookPath("sfdisk")
	if err != nil {
		t.Skip("sfdisk missing (package fdisk)")
	}
	for _, s := range []string{sceneA, sceneB} {
		if _, err := os.Stat(filepath.Join(fixtures, s, "writes.lwlog.zst")); err != nil {
			t.Skipf("fixture %s not present", s)
		}
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	must(t, os.WriteFile(p, nil, 0o644))
	must(t, os.Truncate(p, diskSectors*512))
	cmd := exec.Command(sf, "-q", p)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("label: gpt\nstart=%d, size=%d, type=linux\nstart=%d, size=%d, type=linux\nstart=%d, size=%d, type=swap\n",
		p1Start, partSectors, p2Start, partSectors, p3Start, swapSectors))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	for i, s := range scenes {
		if s == "" {
			continue
		}
		d, err := scenario.StartImage(filepath.Join(fixtures, s))
		must(t, err)
		if len(d) != partSectors*512 {
			t.Fatalf("%s: image of %d bytes, the partition has %d", s, len(d), partSectors*512)
		}
		at := int64([]int{p1Start, p2Start}[i]) * 512
		for off := 0; off < len(d); off += 1 << 16 {
			c := d[off : off+1<<16]
			if strings.Trim(string(c), "\x00") != "" {
				_, err := f.WriteAt(c, at+int64(off))
				must(t, err)
			}
		}
	}
	return f
}

// shifted is a log read as if its disk were a partition starting at sector shift.
type shifted struct {
	blklog.Reader
	shift uint64
}

func (s *shifted) Next() (blklog.Record, error) {
	r, err := s.Reader.Next()
	if err == nil && r.Type != blklog.TypeFlush && r.Type != blklog.TypeMark {
		r.Sector += s.shift
	}
	return r, err
}

// interleaved alternates the records of two logs (renumbered), remembering where each came from.
type interleaved struct {
	logs   [2]blklog.Reader
	done   [2]bool
	turn   int
	n      int64
	origin []int // origin[i]: which log record i came from
}

func (l *interleaved) Header() blklog.Header { return l.logs[0].Header() }
func (l *interleaved) Close() error          { return nil }
func (l *interleaved) Next() (blklog.Record, error) {
	for range 2 {
		w := l.turn
		l.turn = 1 - l.turn
		if l.done[w] {
			continue
		}
		r, err := l.logs[w].Next()
		if err == io.EOF {
			l.done[w] = true
			continue
		}
		if err != nil {
			return r, err
		}
		r.Index = l.n
		l.n++
		l.origin = append(l.origin, w)
		return r, nil
	}
	return blklog.Record{}, io.EOF
}

func runOn(t *testing.T, img io.ReaderAt, size int64, lr blklog.Reader, opt Options) ([]ops.Op, *Result) {
	t.Helper()
	var out []ops.Op
	res, err := Run(Input{Image: img, ImageSize: size, ImageName: "disk", Log: lr, LogName: "log"}, opt,
		func(op *ops.Op) error {
			// In log order, as ops.ReadJSONL requires of a saved run, though several file
			// systems emit them.
			if k := len(out); k > 0 && op.Seq < out[k-1].Seq {
				t.Errorf("op %v (seq %d t %g) after seq %d (t %g): out of log order", op, op.Seq, op.T, out[k-1].Seq, out[k-1].T)
			}
			out = append(out, *op)
			return nil
		})
	must(t, err)
	return out, res
}

// TestPartitionOneLog: the log of partition 1's capture, shifted to where the partition is,
// gives the very ops the bare image gives, with disk sectors and the partition number; the
// paths are plain (mounted at /).
func TestPartitionOneLog(t *testing.T) {
	f := gptDisk(t)
	bare, _, err := run(t, openImage(t, sceneA), filepath.Join(fixtures, sceneA, "writes.lwlog.zst"))
	must(t, err)
	got, res := runOn(t, f, diskSectors*512, &shifted{openLog(t, filepath.Join(fixtures, sceneA, "writes.lwlog.zst")), p1Start},
		Options{Mounts: map[int]string{1: "/"}})
	check(t, res.Table != nil && res.Table.Scheme == partition.GPT && len(res.Volumes) == 2, "table %+v, volumes %+v", res.Table, res.Volumes)
	check(t, len(got) == len(bare) && len(bare) > 10, "%d ops, the bare image gives %d", len(got), len(bare))
	for i := range bare {
		w := bare[i]
		w.Partition = 1
		if w.IsIO() {
			w.Sector += p1Start
		}
		if fmt.Sprint(got[i]) != fmt.Sprint(w) {
			t.Fatalf("op %d: %v, want %v", i, got[i], w)
		}
	}
}

// TestPartitionTwoLogs: both captures interleaved in one log, partition 2 mounted at /boot:
// each partition's namespace ops and data volumes are those of its own capture, under its
// mount point; I/O to the table and swap is reported as such, not as an error.
func TestPartitionTwoLogs(t *testing.T) {
	f := gptDisk(t)
	want := map[string]int{}
	wantData := map[string]int64{}
	for i, s := range []string{sceneA, sceneB} {
		bare, _, err := run(t, openImage(t, s), filepath.Join(fixtures, s, "writes.lwlog.zst"))
		must(t, err)
		for _, o := range bare {
			p, to := o.Path, o.To
			if i == 1 {
				p, to = prefixPath("/boot", p), prefixPath("/boot", to)
			}
			if o.IsNamespace() {
				want[fmt.Sprintf("%d %s %s %s", i+1, o.Op, p, to)]++
			} else if o.IsIO() && o.Path != "" {
				wantData[fmt.Sprintf("%d %s %s %s", i+1, o.Op, p, o.Kind)] += o.Bytes
			}
		}
	}
	il := &interleaved{logs: [2]blklog.Reader{
		&shifted{openLog(t, filepath.Join(fixtures, sceneA, "writes.lwlog.zst")), p1Start},
		&shifted{openLog(t, filepath.Join(fixtures, sceneB, "writes.lwlog.zst")), p2Start}}}
	lr := &extra{Reader: il}
	got, res := runOn(t, f, diskSectors*512, lr, Options{Mounts: map[int]string{1: "/", 2: "/boot"}, Resolver: resolver.Options{Metadata: true}})
	gotNS := map[string]int{}
	gotData := map[string]int64{}
	kinds := map[ops.Kind]int{}
	for _, o := range got {
		if o.IsNamespace() {
			gotNS[fmt.Sprintf("%d %s %s %s", o.Partition, o.Op, o.Path, o.To)]++
		} else if o.IsIO() && o.Path != "" {
			gotData[fmt.Sprintf("%d %s %s %s", o.Partition, o.Op, o.Path, o.Kind)] += o.Bytes
		}
		if o.Op == ops.Anomaly {
			t.Errorf("anomaly: %v", o)
		}
		kinds[o.Kind]++
	}
	if fmt.Sprint(sortedKeys(gotNS, want)) != fmt.Sprint(sortedKeys(want, nil)) {
		t.Errorf("namespace:\n got %v\nwant %v", sortedKeys(gotNS, want), sortedKeys(want, nil))
	}
	for k, n := range wantData {
		if gotData[k] != n {
			t.Errorf("%s: %d bytes, the bare run %d", k, gotData[k], n)
		}
	}
	check(t, len(want) > 10, "only %d namespace ops expected", len(want))
	for _, k := range []ops.Kind{ops.KindPartitionTable, ops.KindSwap, ops.KindUnpartitioned} {
		check(t, kinds[k] > 0, "no I/O of kind %s: %v", k, kinds)
	}
	check(t, res.Records == il.n+int64(len(lr.recs)) && res.Anomalies == 0, "records %d (want %d), anomalies %d", res.Records, il.n+int64(len(lr.recs)), res.Anomalies)
}

// sortedKeys lists m's keys with their counts (and, with also, the keys of also m lacks).
func sortedKeys(m, also map[string]int) []string {
	var ks []string
	for k, n := range m {
		ks = append(ks, fmt.Sprintf("%s x%d", k, n))
	}
	for k := range also {
		if _, ok := m[k]; !ok {
			ks = append(ks, k+" x0")
		}
	}
	sort.Strings(ks)
	return ks
}

// extra appends reads and writes outside the file systems, as a guest's partition scan and
// swap do: the protective MBR and GPT header, the gap before partition 1, the swap partition.
type extra struct {
	blklog.Reader
	recs []blklog.Record
	i    int
}

func (e *extra) Next() (blklog.Record, error) {
	if e.recs == nil {
		e.recs = []blklog.Record{
			{Type: blklog.TypeRead, Sector: 0, Length: 4096},   // MBR + header + entries
			{Type: blklog.TypeRead, Sector: 100, Length: 1024}, // the gap
			{Type: blklog.TypeWrite, Sector: p3Start, Length: 4096, Data: make([]byte, 4096)},
			{Type: blklog.TypeRead, Sector: p2Start - 2, Length: 2048}, // straddles the end of p1... the start of p2
		}
	}
	r, err := e.Reader.Next()
	if err != io.EOF {
		return r, err
	}
	if e.i == len(e.recs) {
		return r, io.EOF
	}
	r = e.recs[e.i]
	r.Index = e.Reader.(*interleaved).n + int64(e.i)
	e.i++
	return r, nil
}

// sliceLog is a log of the records given.
type sliceLog struct {
	recs []blklog.Record
	i    int
}

func (l *sliceLog) Header() blklog.Header { return blklog.Header{SectorSize: 512} }
func (l *sliceLog) Close() error          { return nil }
func (l *sliceLog) Next() (blklog.Record, error) {
	if l.i == len(l.recs) {
		return blklog.Record{}, io.EOF
	}
	r := l.recs[l.i]
	r.Index = int64(l.i)
	l.i++
	return r, nil
}

// TestPartitionTableRewrite: writing the table's sectors again as they are is I/O; changing
// them (a guest's growpart or fdisk) is an anomaly naming the record and the sectors it
// changed, once per record.
func TestPartitionTableRewrite(t *testing.T) {
	f := gptDisk(t)
	hdr := make([]byte, 1024) // sectors 1-2: the GPT header and the first entries
	_, err := f.ReadAt(hdr, 512)
	must(t, err)
	changed := append([]byte(nil), hdr...)
	changed[512+32] ^= 1 // entry 1's first LBA
	lr := &sliceLog{recs: []blklog.Record{
		{Type: blklog.TypeWrite, Sector: 1, Length: 1024, Data: hdr},
		{Type: blklog.TypeFlush},
		{Type: blklog.TypeWrite, Sector: 1, Length: 1024, Data: changed},
		{Type: blklog.TypeWrite, Sector: 1, Length: 1024, Data: changed}, // again: no change now
		{Type: blklog.TypeWriteZeroes, Sector: 0, Length: 512},
	}}
	got, res := runOn(t, f, diskSectors*512, lr, Options{Resolver: resolver.Options{Metadata: true}})
	var anomalies []string
	writes := 0
	for _, o := range got {
		switch {
		case o.Op == ops.Anomaly:
			anomalies = append(anomalies, fmt.Sprintf("%d %s", o.Seq, o.Reason))
		case o.Op == ops.Write && o.Kind == ops.KindPartitionTable:
			writes++
		}
	}
	want := []string{
		"2 record 2 rewrites the partition table (sectors 2-2): partitions are read once, from the starting image; one added, moved or resized during the run is not followed",
		"4 record 4 rewrites the partition table (sectors 0-0): partitions are read once, from the starting image; one added, moved or resized during the run is not followed",
	}
	if fmt.Sprint(anomalies) != fmt.Sprint(want) || res.Anomalies != 2 {
		t.Errorf("anomalies (%d):\n%s\nwant\n%s", res.Anomalies, strings.Join(anomalies, "\n"), strings.Join(want, "\n"))
	}
	check(t, writes >= 3, "%d partition-table writes reported, want the 4 requests", writes)
}

// TestPartitionLog: partition 2's view of the interleaved log is its own capture's log again,
// sectors and payloads, with the interleaved log's record numbers.
func TestPartitionLog(t *testing.T) {
	f := gptDisk(t)
	tab, err := partition.Read(f, diskSectors*512)
	must(t, err)
	p2, ok := tab.Partition(2)
	check(t, ok, "no partition 2")
	il := &interleaved{logs: [2]blklog.Reader{
		&shifted{openLog(t, filepath.Join(fixtures, sceneA, "writes.lwlog.zst")), p1Start},
		&shifted{openLog(t, filepath.Join(fixtures, sceneB, "writes.lwlog.zst")), p2Start}}}
	view := PartitionLog(il, p2)
	check(t, !view.Header().Image.Known && view.Header().DiskSize == uint64(p2.Size), "header %+v", view.Header())
	own := openLog(t, filepath.Join(fixtures, sceneB, "writes.lwlog.zst"))
	n, flushes := 0, 0
	for {
		got, err := view.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if got.Type == blklog.TypeFlush {
			if il.origin[got.Index] == 0 {
				flushes++ // partition 1's flushes come through too
				continue
			}
		}
		want, err := own.Next()
		must(t, err)
		if got.Type != want.Type || got.Sector != want.Sector || got.Length != want.Length || string(got.Data) != string(want.Data) || il.origin[got.Index] != 1 {
			t.Fatalf("record %d: %v %d+%d, want %v %d+%d (from log %d)", got.Index, got.Type, got.Sector, got.Length, want.Type, want.Sector, want.Length, il.origin[got.Index])
		}
		n++
	}
	if _, err := own.Next(); err != io.EOF {
		t.Errorf("the view ended before partition 2's own log (%d records)", n)
	}
	check(t, n > 10 && flushes > 0, "%d records, %d flushes of the other partition", n, flushes)
}

// TestPartitionMkfs: a guest making an ext file system in a partition that had none (here the
// swap partition, blanked first: its type still says swap) is reported once, as not followed.
func TestPartitionMkfs(t *testing.T) {
	f := gptDisk(t)
	_, err := f.WriteAt(make([]byte, 8192), p3Start*512) // partition 3 holds nothing now
	must(t, err)
	sb := make([]byte, 4096)
	sb[1024+56], sb[1024+57] = 0x53, 0xEF
	lr := &sliceLog{recs: []blklog.Record{
		{Type: blklog.TypeWrite, Sector: p3Start + 8, Length: 4096, Data: make([]byte, 4096)},
		{Type: blklog.TypeWrite, Sector: p3Start, Length: 4096, Data: sb},
		{Type: blklog.TypeWrite, Sector: p3Start, Length: 4096, Data: sb},
	}}
	got, _ := runOn(t, f, diskSectors*512, lr, Options{})
	var anomalies []string
	for _, o := range got {
		if o.Op == ops.Anomaly {
			anomalies = append(anomalies, fmt.Sprintf("%d %s", o.Seq, o.Reason))
		} else if o.Kind != ops.KindSwap || o.Partition != 3 {
			t.Errorf("op %v: want writes of kind swap in partition 3", o)
		}
	}
	want := "[1 record 1 writes an ext2/3/4 superblock into partition 3, which held no ext file system at the start (mkfs during the run): its file operations are not followed]"
	if fmt.Sprint(anomalies) != want {
		t.Errorf("anomalies %v, want %s", anomalies, want)
	}
}

// TestPartitionedOrderIndependence: the partitioned captures give the same namespace ops and
// data volumes per path whatever order the requests between two flushes come in (as
// pkg/resolver's test asserts for the bare captures): the routing adds no dependence on order.
func TestPartitionedOrderIndependence(t *testing.T) {
	for _, name := range []string{"gpt-ext4-boot-swap", "mbr-ext3-boot-swap"} {
		dir := filepath.Join(fixtures, name)
		if _, err := os.Stat(filepath.Join(dir, "writes.lwlog.zst")); err != nil {
			t.Skipf("fixture %s not present", name)
		}
		mounts, err := scenario.Mounts(dir)
		must(t, err)
		img, err := scenario.StartImage(dir)
		must(t, err)
		for _, logName := range []string{"io.log.zst", "writes.lwlog.zst"} {
			lr := openLog(t, filepath.Join(dir, logName))
			var recs []blklog.Record
			for {
				r, err := lr.Next()
				if err == io.EOF {
					break
				}
				must(t, err)
				r.Data = append([]byte(nil), r.Data...)
				recs = append(recs, r)
			}
			summary := func(recs []blklog.Record) string {
				got, res := runOn(t, img, int64(len(img)), &sliceLog{recs: recs}, Options{Mounts: mounts})
				check(t, res.Anomalies == 0, "%s/%s: %d anomalies", name, logName, res.Anomalies)
				var lines []string
				data := map[string]int64{}
				for _, o := range got {
					if o.IsNamespace() {
						lines = append(lines, fmt.Sprintf("%s %s %s %d", o.Op, o.Path, o.To, o.Partition))
					} else if o.IsIO() && o.Path != "" && o.Kind == ops.KindData {
						data[fmt.Sprintf("%s %s", o.Op, o.Path)] += o.Bytes
					}
				}
				sort.Strings(lines)
				for k, v := range data {
					lines = append(lines, fmt.Sprintf("%s %d", k, v))
				}
				sort.Strings(lines[len(lines)-len(data):])
				return strings.Join(lines, "\n")
			}
			want := summary(recs)
			check(t, strings.Count(want, "\n") > 15, "%s/%s: only\n%s", name, logName, want)
			for seed := int64(1); seed <= 10; seed++ {
				rng := rand.New(rand.NewSource(seed))
				sh := append([]blklog.Record(nil), recs...)
				for i := 0; i < len(sh); {
					j := i
					for j < len(sh) && sh[j].Type != blklog.TypeFlush {
						j++
					}
					rng.Shuffle(j-i, func(a, b int) { sh[i+a], sh[i+b] = sh[i+b], sh[i+a] })
					i = j + 1
				}
				if got := summary(sh); got != want {
					t.Errorf("%s/%s seed %d:\n%s\nwant\n%s", name, logName, seed, got, want)
				}
			}
		}
	}
}

// TestPartitionFinishInOrder: what a file system reports only at the end of the log (here an
// unowned write in partition 2, held to the end) comes out with the log's last record, after
// partition 1's later ops, not with the last record partition 2 saw.
func TestPartitionFinishInOrder(t *testing.T) {
	f := gptDisk(t)
	lr := &sliceLog{recs: []blklog.Record{
		{Type: blklog.TypeWrite, Sector: p2Start + 120000, Length: 1024, Data: bytes.Repeat([]byte{7}, 1024)},
		{Type: blklog.TypeFlush},
		{Type: blklog.TypeRead, Sector: p1Start + 2, Length: 1024},
	}}
	got, _ := runOn(t, f, diskSectors*512, lr, Options{Resolver: resolver.Options{Metadata: true}})
	var last *ops.Op
	for i := range got {
		if got[i].Partition == 2 && got[i].Kind == ops.KindUnowned {
			last = &got[i]
		}
	}
	check(t, last != nil && last.Seq == 2, "partition 2's unowned write: %v (ops %v)", last, got)
}
