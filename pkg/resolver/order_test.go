package resolver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// readZstd decompresses a whole file.
func readZstd(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// realLogs lists both logs of every real scenario: the recorder's (reads, writes, flushes) and
// QEMU's dm-log-writes one (writes and flushes, in completion order).
func realLogs(t testing.TB) []string {
	t.Helper()
	native, _ := filepath.Glob("../../fixtures/real/*/io.log.zst")
	lw, _ := filepath.Glob("../../fixtures/real/*/writes.lwlog.zst")
	var logs []string
	for _, l := range append(native, lw...) {
		needs, err := scenario.Needs(filepath.Dir(l))
		if err != nil {
			t.Fatal(err)
		}
		if needs != "" {
			t.Logf("%s skipped: NEEDS=%s in scenario.env", l, needs)
			continue
		}
		if scenario.Partitioned(filepath.Dir(l)) {
			continue // a partitioned disk: pkg/analysis routes its partitions
		}
		logs = append(logs, l)
	}
	if len(logs) == 0 {
		t.Skip("no real fixtures")
	}
	return logs
}

// readLog returns every record of a log (payloads copied).
func readLog(t testing.TB, path string) []blklog.Record {
	t.Helper()
	lr, err := blklog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	var out []blklog.Record
	for {
		rec, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rec.Data = bytes.Clone(rec.Data)
		out = append(out, rec)
	}
}

// replay runs a resolver over recs (renumbered in the given order) to the end of the log.
func replay(t testing.TB, img []byte, recs []blklog.Record, opt Options, emit func(*ops.Op) error) *Resolver {
	t.Helper()
	r, err := New(bytes.NewReader(img), int64(len(img)), opt, emit)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		rec := recs[i]
		rec.Index = int64(i)
		if err := r.Record(&rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	return r
}

// analyzeRecords runs a resolver over recs (renumbered in the given order) and returns the ops,
// coalesced as the analyze command does.
func analyzeRecords(t testing.TB, img []byte, recs []blklog.Record, opt Options) []ops.Op {
	t.Helper()
	var out []ops.Op
	co := ops.NewCoalescer(func(op *ops.Op) error { out = append(out, *op); return nil })
	replay(t, img, recs, opt, co.Add)
	if err := co.Flush(); err != nil {
		t.Fatal(err)
	}
	return out
}

// permuteIntervals reorders the requests between two flushes as a device may complete them:
// any order, except that requests touching the same sectors keep their relative order.
func permuteIntervals(recs []blklog.Record, rng *rand.Rand) []blklog.Record {
	out := make([]blklog.Record, 0, len(recs))
	flushInterval := func(iv []blklog.Record) {
		key := make([]float64, len(iv))
		for i := range iv {
			key[i] = rng.Float64()
			for j := 0; j < i; j++ {
				if overlaps(&iv[i], &iv[j]) && key[i] <= key[j] {
					key[i] = key[j] + 1e-9 + rng.Float64()*1e-6
				}
			}
		}
		idx := make([]int, len(iv))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return key[idx[a]] < key[idx[b]] })
		for _, i := range idx {
			out = append(out, iv[i])
		}
	}
	start := 0
	for i := range recs {
		if recs[i].Type == blklog.TypeFlush || recs[i].Flags&blklog.FlagFUA != 0 {
			flushInterval(recs[start:i])
			out = append(out, recs[i])
			start = i + 1
		}
	}
	flushInterval(recs[start:])
	return out
}

func overlaps(a, b *blklog.Record) bool {
	if a.Type == blklog.TypeRead && b.Type == blklog.TypeRead {
		return false
	}
	ae := a.Sector*blklog.SectorSize + uint64(a.Length)
	be := b.Sector*blklog.SectorSize + uint64(b.Length)
	return a.Sector*blklog.SectorSize < be && b.Sector*blklog.SectorSize < ae
}

// meaning reduces ops to what must not depend on the order: namespace ops as a multiset and
// bytes read and written per path and kind.
func meaning(ol []ops.Op) (ns []string, io map[string]int64, anomalies []string) {
	io = map[string]int64{}
	for _, o := range ol {
		switch {
		case o.Op == ops.Anomaly:
			anomalies = append(anomalies, o.Path+": "+o.Reason)
		case o.Op == ops.Read && o.Kind != ops.KindData:
			// A read of a directory or indirect block whose owner changes in the same flush
			// interval (a directory freed and its block reused) belongs to whichever owner the
			// permutation puts first: no order is more right than another.
		case o.Op == ops.Write && (o.Kind == ops.KindDir || o.Kind == ops.KindIndirect):
			// Likewise a checkpoint write of a directory block that moves to another directory in
			// the same interval (rmdir, then mkdir elsewhere): only the total must agree.
			io[fmt.Sprintf("%s (%s) total", o.Op, o.Kind)] += o.Bytes
		case o.IsIO():
			io[fmt.Sprintf("%s %s (%s)", o.Op, o.Path, o.Kind)] += o.Bytes
		default:
			s := fmt.Sprintf("%s %s", o.Op, o.Path)
			if o.To != "" {
				s += " -> " + o.To
			}
			if o.Overwrite {
				s += " (overwrite)"
			}
			if o.Size != nil {
				s += fmt.Sprintf(" size=%d", *o.Size)
			}
			ns = append(ns, s)
		}
	}
	sort.Strings(ns)
	return ns, io, anomalies
}

// TestOrderIndependenceReal replays every real fixture with the requests of each flush interval
// permuted, many seeds, and checks that the same operations and the same attribution come out.
func TestOrderIndependenceReal(t *testing.T) {
	logs := realLogs(t)
	seeds := 20
	if testing.Short() {
		seeds = 3
	}
	for _, logPath := range logs {
		dir := filepath.Dir(logPath)
		name := filepath.Base(dir) + "/" + filepath.Base(logPath)
		t.Run(name, func(t *testing.T) {
			img := readZstd(t, filepath.Join(dir, "image.raw.zst"))
			recs := readLog(t, logPath)
			want := analyzeRecords(t, img, recs, Options{})
			wantNS, wantIO, wantAn := meaning(want)
			if len(wantAn) > 0 {
				t.Errorf("anomalies in log order: %v", wantAn)
			}
			if len(wantNS) == 0 {
				t.Fatal("no namespace ops at all in log order")
			}
			for seed := int64(1); seed <= int64(seeds); seed++ {
				perm := permuteIntervals(recs, rand.New(rand.NewSource(seed)))
				got := analyzeRecords(t, img, perm, Options{})
				gotNS, gotIO, gotAn := meaning(got)
				if !equalStrings(gotNS, wantNS) {
					t.Errorf("seed %d: namespace ops differ\n got: %q\nwant: %q", seed, gotNS, wantNS)
				}
				if len(gotAn) > 0 {
					t.Errorf("seed %d: anomalies: %v", seed, gotAn)
				}
				for k, v := range wantIO {
					if gotIO[k] != v {
						t.Errorf("seed %d: %s: %d bytes, in log order %d", seed, k, gotIO[k], v)
					}
				}
				for k, v := range gotIO {
					if _, ok := wantIO[k]; !ok {
						t.Errorf("seed %d: %s: %d bytes, none in log order", seed, k, v)
					}
				}
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
