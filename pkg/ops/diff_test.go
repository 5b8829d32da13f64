package ops

import (
	"math/rand"
	"testing"
)

func mustDiff(t *testing.T, a, b []Op, o DiffOptions) *DiffReport {
	t.Helper()
	r, err := Diff(a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The variant has one extra written file and one rename missing; the later
// link of the renamed file, written under the other name, must still match.
func TestDiffVariantIsExactlyTwoDifferences(t *testing.T) {
	r := mustDiff(t, loadRun(t, "run-a.jsonl"), loadRun(t, "run-b.jsonl"), DiffOptions{Threshold: 0.2})
	if r.Differences != 2 {
		t.Errorf("%d differences, want 2", r.Differences)
	}
	if len(r.OnlyA) != 1 || r.OnlyA[0].Op != "move /home/debian/d/a -> /home/debian/d/c" {
		t.Errorf("only in A: %+v", r.OnlyA)
	}
	if len(r.OnlyB) != 1 || r.OnlyB[0].Op != "create /home/debian/d/extra" {
		t.Errorf("only in B: %+v", r.OnlyB)
	}
	if len(r.Order) != 0 {
		t.Errorf("order: %+v", r.Order)
	}
	for _, d := range r.Tree {
		if d.ExplainedBy == "" {
			t.Errorf("unexplained tree difference %+v", d)
		}
	}
	for _, d := range append(r.Files, r.Kinds...) {
		if d.Flagged {
			t.Errorf("flagged I/O %+v", d)
		}
	}
}

func TestDiffIgnoresBlocksTimesAndIndependentOrder(t *testing.T) {
	a := loadRun(t, "run-a.jsonl")
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		b := append([]Op(nil), a...)
		for j := range b {
			b[j].Sector += uint64(rng.Intn(1000)) * 8
			b[j].T *= 2
			b[j].Seq += 100
		}
		// Swap neighbours that concern different files (independent ops).
		for k := 0; k < 30; k++ {
			j := rng.Intn(len(b) - 1)
			if independent(&b[j], &b[j+1]) {
				b[j], b[j+1] = b[j+1], b[j]
			}
		}
		if r := mustDiff(t, a, b, DiffOptions{Threshold: 0.2}); !r.Same() {
			t.Fatalf("permutation %d: %d differences: %+v %+v %+v %+v", i, r.Differences, r.OnlyA, r.OnlyB, r.Order, r.Tree)
		}
	}
}

// independent reports whether two ops touch no common name or ancestor.
func independent(x, y *Op) bool {
	names := func(o *Op) []string { return []string{o.Path, o.To} }
	for _, p := range names(x) {
		for _, q := range names(y) {
			if p == "" || q == "" {
				continue
			}
			if underPath(p, q) || underPath(q, p) {
				return false
			}
		}
	}
	return x.IsIO() || y.IsIO() || x.Path != "" && y.Path != ""
}

func TestDiffOpOnlyInA(t *testing.T) {
	a := []Op{{Seq: 1, Op: Create, Path: "/f"}, {Seq: 2, Op: Create, Path: "/g"}, {Seq: 3, Op: Delete, Path: "/g"}}
	b := []Op{{Seq: 1, Op: Create, Path: "/f"}, {Seq: 2, Op: Create, Path: "/g"}}
	r := mustDiff(t, a, b, DiffOptions{Threshold: 0.2})
	if len(r.OnlyA) != 1 || r.OnlyA[0].Key != "delete /g" || len(r.OnlyB) != 0 {
		t.Fatalf("only A %+v only B %+v", r.OnlyA, r.OnlyB)
	}
	// /g absent in A and present in B is that same difference, not another.
	if len(r.Tree) != 1 || r.Tree[0].Path != "/g" || r.Tree[0].ExplainedBy != "delete /g" || r.Differences != 1 {
		t.Fatalf("tree %+v, %d differences", r.Tree, r.Differences)
	}
	// Counts matter: the same op twice in A, once in B.
	a = []Op{{Seq: 1, Op: Create, Path: "/f"}, {Seq: 2, Op: Delete, Path: "/f"}, {Seq: 3, Op: Create, Path: "/f"}, {Seq: 4, Op: Delete, Path: "/f"}}
	b = a[:2]
	r = mustDiff(t, a, b, DiffOptions{})
	if len(r.OnlyA) != 2 || r.OnlyA[0].Key != "create /f #2" || r.OnlyA[1].Key != "delete /f #2" {
		t.Fatalf("only A %+v", r.OnlyA)
	}
}

func TestDiffOrderOnOnePath(t *testing.T) {
	s0, s100 := uint64(0), uint64(100)
	a := []Op{{Seq: 1, Op: Create, Path: "/x"}, {Seq: 2, Op: Create, Path: "/f"},
		{Seq: 3, Op: Truncate, Path: "/f", Size: &s100}, {Seq: 4, Op: Truncate, Path: "/f", Size: &s0}}
	// B: /x and /f created in the other order (independent: not reported),
	// the two truncates of /f swapped (reported).
	b := []Op{{Seq: 1, Op: Create, Path: "/f"}, {Seq: 2, Op: Create, Path: "/x"},
		{Seq: 3, Op: Truncate, Path: "/f", Size: &s0}, {Seq: 4, Op: Truncate, Path: "/f", Size: &s100}}
	r := mustDiff(t, a, b, DiffOptions{Threshold: 0.2})
	if len(r.OnlyA)+len(r.OnlyB) != 0 {
		t.Fatalf("membership differences %+v %+v", r.OnlyA, r.OnlyB)
	}
	if len(r.Order) != 1 || r.Order[0].Path != "/f" ||
		r.Order[0].A[1] != "truncate /f size 100" || r.Order[0].B[1] != "truncate /f size 0" {
		t.Fatalf("order %+v", r.Order)
	}
	// The final size differs too, and nothing explains it away.
	if len(r.Tree) != 1 || r.Tree[0].A != "file size 0" || r.Tree[0].B != "file size 100" || r.Tree[0].ExplainedBy != "" {
		t.Fatalf("tree %+v", r.Tree)
	}
	if r.Differences != 2 {
		t.Fatalf("%d differences", r.Differences)
	}
}

func TestDiffThreshold(t *testing.T) {
	run := func(dataKiB, journalKiB int64) []Op {
		return []Op{{Seq: 1, Op: Create, Path: "/f"}, w(2, "/f", 100, dataKiB<<10),
			{Seq: 3, Op: Write, Sector: 9000, Bytes: journalKiB << 10, Kind: KindJournal}}
	}
	cases := []struct {
		a, b      []Op
		o         DiffOptions
		fileFlag  bool
		kindFlags int
	}{
		{run(100, 40), run(115, 40), DiffOptions{Threshold: 0.2}, false, 0},
		{run(100, 40), run(125, 40), DiffOptions{Threshold: 0.2}, true, 1}, // file and data kind
		{run(100, 40), run(85, 40), DiffOptions{Threshold: 0.1}, true, 1},  // shrinking counts too
		{run(100, 40), run(125, 40), DiffOptions{Threshold: 0.2, MinBytes: 32 << 10}, false, 0},
		{run(100, 40), run(100, 80), DiffOptions{Threshold: 0.2}, false, 1}, // journal only
		{run(100, 40), run(100, 48), DiffOptions{Threshold: 0.2}, false, 0}, // exactly 20% is not beyond
	}
	for i, c := range cases {
		r := mustDiff(t, c.a, c.b, c.o)
		ff := len(r.Files) == 1 && r.Files[0].Flagged
		kf := 0
		for _, k := range r.Kinds {
			if k.Flagged {
				kf++
			}
		}
		if ff != c.fileFlag || kf != c.kindFlags {
			t.Errorf("case %d: file flagged %v (want %v), %d kinds flagged (want %d): %+v", i, ff, c.fileFlag, kf, c.kindFlags, r.Kinds)
		}
		if want := kf + map[bool]int{true: 1}[ff]; r.Differences != want {
			t.Errorf("case %d: %d differences, want %d", i, r.Differences, want)
		}
	}
	// A file read in one run only, with no namespace op to explain it.
	a := []Op{{Seq: 1, Op: Read, Path: "/etc/passwd", Bytes: 4096, Kind: KindData}}
	r := mustDiff(t, a, nil, DiffOptions{Threshold: 0.2})
	if len(r.Files) != 1 || !r.Files[0].Flagged || r.Files[0].ReadChange == nil || *r.Files[0].ReadChange != -1 {
		t.Fatalf("%+v", r.Files)
	}
}

func TestParseThreshold(t *testing.T) {
	for in, want := range map[string]float64{"20%": 0.2, "0.2": 0.2, " 5 %": 0.05, "0": 0, "150%": 1.5} {
		if got, err := ParseThreshold(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "%", "-5%", "abc", "NaN", "Inf"} {
		if _, err := ParseThreshold(in); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}
}

func TestDiffSameRecordHasNoOrder(t *testing.T) {
	// A temporary file created and deleted in one journal transaction: both
	// ops are certain at the commit record, in whatever order the resolver
	// lists them.
	a := []Op{{Seq: 7, Op: Create, Path: "/t"}, {Seq: 7, Op: Delete, Path: "/t"}}
	b := []Op{{Seq: 9, Op: Delete, Path: "/t"}, {Seq: 9, Op: Create, Path: "/t"}}
	if r := mustDiff(t, a, b, DiffOptions{}); len(r.Order) != 0 {
		t.Fatalf("order %+v", r.Order)
	}
	// At different records the order is real.
	s0, s1 := uint64(0), uint64(1)
	a = []Op{{Seq: 7, Op: Truncate, Path: "/t", Size: &s0}, {Seq: 8, Op: Truncate, Path: "/t", Size: &s1}}
	b = []Op{{Seq: 7, Op: Truncate, Path: "/t", Size: &s1}, {Seq: 8, Op: Truncate, Path: "/t", Size: &s0}}
	if r := mustDiff(t, a, b, DiffOptions{}); len(r.Order) != 1 {
		t.Fatalf("order %+v", r.Order)
	}
	// B's two at one record are compatible with A's order.
	b[0].Seq, b[1].Seq = 9, 9
	if r := mustDiff(t, a, b, DiffOptions{}); len(r.Order) != 0 {
		t.Fatalf("order %+v", r.Order)
	}
}
