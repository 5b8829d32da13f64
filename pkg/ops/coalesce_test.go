package ops

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func w(seq int64, path string, sector uint64, n int64) Op {
	return Op{Seq: seq, Op: Write, Path: path, Sector: sector, Bytes: n, Kind: KindData}
}

func TestCoalesce(t *testing.T) {
	meta := func(seq int64, path string, sector uint64) Op {
		return Op{Seq: seq, Op: Write, Path: path, Sector: sector, Bytes: 4096, Kind: KindIndirect}
	}
	read := func(seq int64, path string, sector uint64) Op {
		return Op{Seq: seq, Op: Read, Path: path, Sector: sector, Bytes: 4096, Kind: KindData}
	}
	journal := func(seq int64, sector uint64) Op {
		return Op{Seq: seq, Op: Write, Sector: sector, Bytes: 4096, Kind: KindJournal}
	}
	cases := []struct {
		name string
		in   []Op
		want []Op
	}{
		{"contiguous run merges, keeps first seq",
			[]Op{w(1, "/a", 100, 4096), w(2, "/a", 108, 4096), w(3, "/a", 116, 8192)},
			[]Op{w(1, "/a", 100, 16384)}},
		{"non-contiguous sector breaks",
			[]Op{w(1, "/a", 100, 4096), w(2, "/a", 200, 4096), w(3, "/a", 208, 4096)},
			[]Op{w(1, "/a", 100, 4096), w(2, "/a", 200, 8192)}},
		{"backwards is not contiguous",
			[]Op{w(1, "/a", 108, 4096), w(2, "/a", 100, 4096)},
			[]Op{w(1, "/a", 108, 4096), w(2, "/a", 100, 4096)}},
		{"different path breaks even if contiguous",
			[]Op{w(1, "/a", 100, 4096), w(2, "/b", 108, 4096)},
			[]Op{w(1, "/a", 100, 4096), w(2, "/b", 108, 4096)}},
		{"interleaved files keep their runs, output in first-op order",
			[]Op{w(1, "/a", 100, 4096), w(2, "/b", 500, 4096), w(3, "/a", 108, 4096), w(4, "/b", 508, 4096)},
			[]Op{w(1, "/a", 100, 8192), w(2, "/b", 500, 8192)}},
		{"another op on the same file in between breaks",
			[]Op{w(1, "/a", 100, 4096), meta(2, "/a", 900), w(3, "/a", 108, 4096)},
			[]Op{w(1, "/a", 100, 4096), meta(2, "/a", 900), w(3, "/a", 108, 4096)}},
		{"a read in between breaks",
			[]Op{w(1, "/a", 100, 4096), read(2, "/a", 300), w(3, "/a", 108, 4096)},
			[]Op{w(1, "/a", 100, 4096), read(2, "/a", 300), w(3, "/a", 108, 4096)}},
		{"a namespace op on another file does not break the run",
			[]Op{w(1, "/a", 100, 4096), {Seq: 2, Op: Create, Path: "/b"}, w(3, "/a", 108, 4096)},
			[]Op{w(1, "/a", 100, 8192), {Seq: 2, Op: Create, Path: "/b"}}},
		{"a namespace op on the file breaks it",
			[]Op{w(1, "/a", 100, 4096), {Seq: 2, Op: Delete, Path: "/a"}, w(3, "/a", 108, 4096)},
			[]Op{w(1, "/a", 100, 4096), {Seq: 2, Op: Delete, Path: "/a"}, w(3, "/a", 108, 4096)}},
		{"a move to the file's name breaks it",
			[]Op{w(1, "/a", 100, 4096), {Seq: 2, Op: Move, Path: "/x", To: "/a", Overwrite: true}, w(3, "/a", 108, 4096)},
			[]Op{w(1, "/a", 100, 4096), {Seq: 2, Op: Move, Path: "/x", To: "/a", Overwrite: true}, w(3, "/a", 108, 4096)}},
		{"a move of a directory above breaks it",
			[]Op{w(1, "/d/a", 100, 4096), {Seq: 2, Op: Move, Path: "/d", To: "/e"}, w(3, "/d/a", 108, 4096)},
			[]Op{w(1, "/d/a", 100, 4096), {Seq: 2, Op: Move, Path: "/d", To: "/e"}, w(3, "/d/a", 108, 4096)}},
		{"a pathless anomaly breaks every run",
			[]Op{w(1, "/a", 100, 4096), {Seq: 2, Op: Anomaly, Reason: "x"}, w(3, "/a", 108, 4096)},
			[]Op{w(1, "/a", 100, 4096), {Seq: 2, Op: Anomaly, Reason: "x"}, w(3, "/a", 108, 4096)}},
		{"pathless I/O merges by kind",
			[]Op{journal(1, 800), w(2, "/a", 100, 4096), journal(3, 808)},
			[]Op{{Seq: 1, Op: Write, Sector: 800, Bytes: 8192, Kind: KindJournal}, w(2, "/a", 100, 4096)}},
		{"odd length cannot be extended",
			[]Op{w(1, "/a", 100, 1000), w(2, "/a", 102, 4096)},
			[]Op{w(1, "/a", 100, 1000), w(2, "/a", 102, 4096)}},
	}
	for _, c := range cases {
		if got := Coalesce(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.want)
		}
	}
}

func TestCoalescerMaxPending(t *testing.T) {
	var out []Op
	c := NewCoalescer(func(op *Op) error { out = append(out, *op); return nil })
	c.MaxPending = 3
	// /a's run stays open while other files are written; the bound forces
	// it out, and later /a writes start a new run.
	ops := []Op{w(1, "/a", 100, 512), w(2, "/b", 1000, 512), w(3, "/c", 2000, 512), w(4, "/d", 3000, 512), w(5, "/a", 101, 512)}
	for i := range ops {
		if err := c.Add(&ops[i]); err != nil {
			t.Fatal(err)
		}
		if i == 3 && (len(out) != 1 || out[0] != ops[0]) {
			t.Fatalf("after 4 pending ops with MaxPending 3, emitted %v", out)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []Op{ops[0], ops[1], ops[2], ops[3], ops[4]}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %v", out)
	}
	for i := 1; i < len(out); i++ {
		if out[i].Seq < out[i-1].Seq {
			t.Fatalf("output out of order: %v", out)
		}
	}
}

// Namespace ops queued behind an open run count against MaxPending too: a run of one file
// held open while a transaction deletes 50,000 others must not hold the 50,000 deletes.
func TestCoalescerMaxPendingNamespace(t *testing.T) {
	var out []Op
	c := NewCoalescer(func(op *Op) error { out = append(out, *op); return nil })
	c.MaxPending = 3
	a := w(1, "/a", 100, 512)
	if err := c.Add(&a); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		del := Op{Seq: int64(2 + i), Op: Delete, Path: fmt.Sprintf("/old/f%d", i)}
		if err := c.Add(&del); err != nil {
			t.Fatal(err)
		}
		if held := int64(2+i) - int64(len(out)); held > int64(c.MaxPending)+1 {
			t.Fatalf("after delete %d: %d ops emitted, %d held (MaxPending %d)", i, len(out), held, c.MaxPending)
		}
	}
	if len(out) == 0 || out[0] != a {
		t.Fatalf("the open run was not ended by the bound: %v", out)
	}
}

func TestCoalescePreservesVolume(t *testing.T) {
	run := loadRun(t, "run-a.jsonl")
	before := BuildStats(run).Totals
	after := Coalesce(run)
	got := BuildStats(after).Totals
	if before.All.ReadBytes != got.All.ReadBytes || before.All.WriteBytes != got.All.WriteBytes {
		t.Fatalf("coalescing changed the byte totals: %+v -> %+v", before.All, got.All)
	}
}

// refCoalesce is the Coalescer's rule written as a plain scan of every open
// run, the way it was before open runs were indexed by directory. Emission
// is in queue order, so the output is the queue.
func refCoalesce(in []Op, maxPending int) []Op {
	type run struct {
		op     Op
		closed bool
		key    string
	}
	var queue []*run
	head := 0 // first run not emitted yet
	open := map[string]*run{}
	for i := range in {
		op := in[i]
		if !op.IsIO() {
			for k, p := range open {
				if (op.Path == "" && op.To == "") || (p.op.Path != "" &&
					((op.Path != "" && underPath(p.op.Path, op.Path)) || (op.To != "" && underPath(p.op.Path, op.To)))) {
					p.closed = true
					delete(open, k)
				}
			}
			queue = append(queue, &run{op: op, closed: true})
		} else {
			key := runKey(&op)
			if p := open[key]; p != nil {
				if Extends(&p.op, &op) {
					p.op.Bytes += op.Bytes
					continue
				}
				p.closed = true
				delete(open, key)
			}
			p := &run{op: op, key: key}
			queue = append(queue, p)
			open[key] = p
		}
		if h := queue[head]; len(queue)-head > maxPending && !h.closed {
			h.closed = true
			delete(open, h.key)
		}
		for head < len(queue) && queue[head].closed {
			head++
		}
	}
	out := make([]Op, len(queue))
	for i, q := range queue {
		out[i] = q.op
	}
	return out
}

// The indexed Coalescer ends exactly the runs the plain scan does, on random
// mixes of I/O and namespace ops over a small tree (names of directories and
// files, "/", trailing slashes, pathless ops).
func TestCoalescerMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"/", "/a", "/a/", "/a/b", "/a/b/c", "/a/bc", "/ab", "/a/b/c/d", "/x", "/x/a", "//", "rel", ""}
	files := []string{"/a", "/a/b", "/a/b/c", "/a/bc", "/ab", "/a/b/c/d", "/x/a", "/x/y", "rel", "", "/a/", "//a"}
	kinds := []Kind{KindData, KindDir, KindIndirect, KindJournal}
	nsOps := []Type{Create, Delete, Move, Link, Mkdir, Rmdir, Truncate, Anomaly}
	for round := 0; round < 300; round++ {
		var in []Op
		next := map[string]uint64{}
		for i := 0; i < 400; i++ {
			if rng.IntN(6) == 0 {
				op := Op{Seq: int64(i), Op: nsOps[rng.IntN(len(nsOps))], Path: names[rng.IntN(len(names))]}
				if op.Op == Move || op.Op == Link {
					op.To = names[rng.IntN(len(names))]
				}
				in = append(in, op)
				continue
			}
			f := files[rng.IntN(len(files))]
			k := kinds[rng.IntN(len(kinds))]
			s := next[f+string(k)]
			if rng.IntN(4) == 0 {
				s = uint64(rng.IntN(1000)) * 8
			}
			typ := Write
			if rng.IntN(5) == 0 {
				typ = Read
			}
			in = append(in, Op{Seq: int64(i), Op: typ, Path: f, Kind: k, Sector: s, Bytes: 4096})
			next[f+string(k)] = s + 8
		}
		maxPending := 1 + rng.IntN(40)
		var got []Op
		c := NewCoalescer(func(op *Op) error { got = append(got, *op); return nil })
		c.MaxPending = maxPending
		for i := range in {
			if err := c.Add(&in[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		if want := refCoalesce(in, maxPending); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d (MaxPending %d): %d ops out, the scan gives %d\n got %v\nwant %v", round, maxPending, len(got), len(want), got, want)
		}
	}
}
