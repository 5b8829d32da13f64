package ops

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// DiffOptions sets what counts as a difference in I/O volume.
type DiffOptions struct {
	// Threshold is the relative change (0.2 = 20%) past which a volume
	// difference is flagged. Volumes that appear from nothing always are.
	Threshold float64
	// MinBytes ignores volume changes of at most this many bytes.
	MinBytes int64
	// WritesOnly leaves reads out of the comparison, for logs that have
	// none (a dm-log-writes capture) or runs whose page cache differed.
	WritesOnly bool
}

func withoutReads(run []Op) []Op {
	out := make([]Op, 0, len(run))
	for i := range run {
		if run[i].Op != Read {
			out = append(out, run[i])
		}
	}
	return out
}

// ParseThreshold reads "20%", "20 %" or "0.2".
func ParseThreshold(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	t = strings.TrimSpace(strings.TrimSuffix(t, "%"))
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, fmt.Errorf("threshold %q: want a percentage like 20%% or a fraction like 0.2", s)
	}
	if pct {
		f /= 100
	}
	return f, nil
}

// NSDiff is a namespace op found in one run only.
type NSDiff struct {
	Op    string `json:"op"`    // as the run printed it (text format)
	Key   string `json:"key"`   // how it was matched: names under their first names
	Count int    `json:"count"` // how many more times than in the other run
	Seq   int64  `json:"seq"`   // first occurrence in its run
}

// OrderDiff is a file whose common namespace ops came in another order.
type OrderDiff struct {
	Path string   `json:"path"`
	A    []string `json:"a"`
	B    []string `json:"b"`
}

// TreeDiff is a name whose final state differs.
type TreeDiff struct {
	Path        string `json:"path"`
	A           string `json:"a"` // absent, file, dir, symlink, node, exists; "size N" appended when known
	B           string `json:"b"`
	ExplainedBy string `json:"explained_by,omitempty"` // the namespace difference that accounts for it
}

// IODiff compares the I/O volume of one file or one kind.
type IODiff struct {
	Name        string   `json:"name"`
	A           Volume   `json:"a"`
	B           Volume   `json:"b"`
	AMeta       *Volume  `json:"a_metadata,omitempty"` // files: their metadata I/O
	BMeta       *Volume  `json:"b_metadata,omitempty"`
	ReadChange  *float64 `json:"read_change,omitempty"` // (B-A)/A; absent when A is 0 or nothing changed
	WriteChange *float64 `json:"write_change,omitempty"`
	MetaChange  *float64 `json:"metadata_change,omitempty"`
	Flagged     bool     `json:"flagged"`
	ExplainedBy string   `json:"explained_by,omitempty"`
}

// RunTotals is the I/O of one run with its amplification.
type RunTotals struct {
	Totals                Totals  `json:"totals"`
	WriteAmplification    float64 `json:"write_amplification"`
	MetadataAmplification float64 `json:"metadata_amplification"`
	JournalAmplification  float64 `json:"journal_amplification"`
	Ops                   int64   `json:"ops"`
	Anomalies             int64   `json:"anomalies"`
}

// DiffReport is the comparison of run A (the reference) with run B.
type DiffReport struct {
	Threshold   float64     `json:"threshold"`
	MinBytes    int64       `json:"min_bytes"`
	WritesOnly  bool        `json:"writes_only,omitempty"`
	OnlyA       []NSDiff    `json:"only_in_a"`
	OnlyB       []NSDiff    `json:"only_in_b"`
	Order       []OrderDiff `json:"order"`
	Tree        []TreeDiff  `json:"tree"`
	Files       []IODiff    `json:"files"` // files whose I/O changed at all
	Kinds       []IODiff    `json:"kinds"` // every kind seen in either run
	A           RunTotals   `json:"run_a"`
	B           RunTotals   `json:"run_b"`
	Differences int         `json:"differences"` // what the exit code is based on
	// Missing lists the kinds neither run could hold (both saved without --metadata; set by
	// the caller): their volumes and the amplification are unknown, not equal.
	Missing []Kind `json:"missing_kinds,omitempty"`
}

// Same reports whether nothing beyond the thresholds differs.
func (r *DiffReport) Same() bool { return r.Differences == 0 }

// Diff compares two runs (ops in log order) of the same workload from the
// same starting image. Block numbers, times, record numbers and the order
// of ops on different files are ignored.
func Diff(a, b []Op, o DiffOptions) (*DiffReport, error) {
	if o.Threshold < 0 || math.IsNaN(o.Threshold) {
		return nil, errors.New("diff: negative threshold")
	}
	if o.WritesOnly {
		a, b = withoutReads(a), withoutReads(b)
	}
	// The two runs are tracked side by side: each is a run through its ops and a few maps.
	var ta, tb *tracker
	done := make(chan struct{})
	go func() {
		defer close(done)
		tb = track(b)
	}()
	ta = track(a)
	<-done
	if ta.totals.All.Overflow || tb.totals.All.Overflow {
		return nil, fmt.Errorf("diff: %w", ErrOverflow)
	}
	r := &DiffReport{Threshold: o.Threshold, MinBytes: o.MinBytes, WritesOnly: o.WritesOnly,
		OnlyA: []NSDiff{}, OnlyB: []NSDiff{}, Order: []OrderDiff{}, Tree: []TreeDiff{}, Files: []IODiff{}, Kinds: []IODiff{}}
	r.A, r.B = runTotals(ta), runTotals(tb)

	// Namespace ops as multisets of run-independent keys.
	ca, cb := countKeys(ta.ns), countKeys(tb.ns)
	r.OnlyA = onlyIn(ta.ns, ca, cb)
	r.OnlyB = onlyIn(tb.ns, cb, ca)
	r.Order = orderDiffs(ta.ns, tb.ns, ca, cb)

	// Names that a namespace difference accounts for, with the op that
	// does: a name is explained by a difference on it or on a directory
	// above it.
	explainedBy := map[string]string{}
	for _, s := range []struct {
		ns   []nsOp
		only []NSDiff
	}{{ta.ns, r.OnlyA}, {tb.ns, r.OnlyB}} {
		keys := map[string]string{}
		for _, d := range s.only {
			keys[d.Key] = d.Op
		}
		for _, n := range s.ns {
			if text, ok := keys[n.key]; ok {
				for _, name := range append(n.names, n.subjects...) {
					if _, dup := explainedBy[name]; !dup && name != "" {
						explainedBy[name] = text
					}
				}
			}
		}
	}
	explain := func(names ...string) string {
		for _, p := range names {
			for p != "" {
				if text, ok := explainedBy[p]; ok {
					return text
				}
				if p == "/" {
					break
				}
				i := strings.LastIndexByte(p, '/')
				switch {
				case i < 0:
					p = ""
				case i == 0:
					p = "/"
				default:
					p = p[:i]
				}
			}
		}
		return ""
	}

	r.Tree = treeDiffs(ta, tb, explain)
	var exA, exB []*entity
	r.Files, exA, exB = fileDiffs(ta, tb, o, explain)
	r.Kinds = kindDiffs(&ta.totals, &tb.totals, exA, exB, o)

	r.Differences = len(r.OnlyA) + len(r.OnlyB) + len(r.Order)
	for _, d := range r.Tree {
		if d.ExplainedBy == "" {
			r.Differences++
		}
	}
	for _, d := range r.Files {
		if d.Flagged {
			r.Differences++
		}
	}
	for _, d := range r.Kinds {
		if d.Flagged {
			r.Differences++
		}
	}
	return r, nil
}

func runTotals(t *tracker) RunTotals {
	return RunTotals{Totals: t.totals, WriteAmplification: t.totals.WriteAmplification(),
		MetadataAmplification: t.totals.MetadataAmplification(),
		JournalAmplification:  t.totals.JournalAmplification(), Ops: t.ops, Anomalies: t.anomalies}
}

func countKeys(ns []nsOp) map[string]int {
	c := make(map[string]int, len(ns))
	for _, n := range ns {
		c[n.key]++
	}
	return c
}

// onlyIn lists the keys of ns that occur more often than in the other run,
// at their first occurrence, in log order.
func onlyIn(ns []nsOp, mine, other map[string]int) []NSDiff {
	out := []NSDiff{}
	done := map[string]bool{}
	for _, n := range ns {
		if extra := mine[n.key] - other[n.key]; extra > 0 && !done[n.key] {
			done[n.key] = true
			out = append(out, NSDiff{Op: n.op.String(), Key: n.key, Count: extra, Seq: n.op.Seq})
		}
	}
	return out
}

// orderDiffs compares, per name, the order of the namespace ops both runs
// have. Ops that only one run has are left out: they are reported already.
// Ops made certain by the same log record (same seq) have no order the
// disk could show, so they are compared sorted by key.
func orderDiffs(na, nb []nsOp, ca, cb map[string]int) []OrderDiff {
	type item struct {
		seq int64
		key string
	}
	both := make(map[string]int, len(ca))
	for k, n := range ca {
		if m := cb[k]; m > 0 {
			both[k] = min(n, m)
		}
	}
	common := func(ns []nsOp) map[string][]string {
		left := maps.Clone(both)
		per := map[string][]item{}
		for _, n := range ns {
			if left[n.key] == 0 {
				continue
			}
			left[n.key]--
			for i, s := range n.subjects {
				if !slices.Contains(n.subjects[:i], s) {
					per[s] = append(per[s], item{n.op.Seq, n.key})
				}
			}
		}
		out := make(map[string][]string, len(per))
		for p, items := range per {
			slices.SortStableFunc(items, func(x, y item) int {
				if c := cmp.Compare(x.seq, y.seq); c != 0 {
					return c
				}
				return strings.Compare(x.key, y.key)
			})
			keys := make([]string, len(items))
			for i, it := range items {
				keys[i] = it.key
			}
			out[p] = keys
		}
		return out
	}
	pa, pb := common(na), common(nb)
	paths := slices.Sorted(maps.Keys(pa))
	out := []OrderDiff{}
	for _, p := range paths {
		sa, sb := pa[p], pb[p]
		if !slices.Equal(sa, sb) {
			out = append(out, OrderDiff{Path: p, A: sa, B: sb})
		}
	}
	return out
}

// finalState describes name p at the end of run t, or "" when the run
// never touched it (and so left it as the starting image had it).
func finalState(t *tracker, p string) string {
	if e := t.byPath[p]; e != nil {
		s := e.typ
		if s == "" {
			s = "exists"
		}
		if e.size != nil {
			s += " size " + strconv.FormatUint(*e.size, 10)
		}
		return s
	}
	if _, ok := t.firstTouch[p]; ok {
		return "absent"
	}
	return ""
}

// sameState compares two final states, treating an unknown type or size
// on one side as matching.
func sameState(a, b string) bool {
	if a == b {
		return true
	}
	if (a == "absent") != (b == "absent") {
		return false
	}
	ta, sa, _ := strings.Cut(a, " size ")
	tb, sb, _ := strings.Cut(b, " size ")
	if ta != tb && ta != "exists" && tb != "exists" {
		return false
	}
	return sa == "" || sb == "" || sa == sb
}

func treeDiffs(ta, tb *tracker, explain func(...string) string) []TreeDiff {
	names := map[string]bool{}
	for _, t := range []*tracker{ta, tb} {
		for p := range t.byPath {
			names[p] = true
		}
		for p := range t.firstTouch {
			names[p] = true
		}
	}
	var sorted []string
	for p := range names {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	out := []TreeDiff{}
	for _, p := range sorted {
		sa, sb := finalState(ta, p), finalState(tb, p)
		// A name one run never touched is as the starting image had it,
		// which the other run shows by how it first used the name.
		if sa == "" {
			sa = startState(tb, p)
		}
		if sb == "" {
			sb = startState(ta, p)
		}
		if sa == "" || sb == "" || sameState(sa, sb) {
			continue
		}
		out = append(out, TreeDiff{Path: p, A: sa, B: sb, ExplainedBy: explain(p)})
	}
	return out
}

func startState(t *tracker, p string) string {
	existed, ok := t.firstTouch[p]
	switch {
	case !ok:
		return ""
	case existed:
		return "exists"
	}
	return "absent"
}

// change returns (b-a)/a, nil when a is 0.
func change(a, b int64) *float64 {
	if a == 0 || a == b {
		return nil
	}
	c := float64(b-a) / float64(a)
	return &c
}

func beyond(a, b int64, o DiffOptions) bool {
	d := b - a
	if d < 0 {
		d = -d
	}
	if d == 0 || d <= o.MinBytes {
		return false
	}
	if a == 0 {
		return true
	}
	return float64(d)/float64(a) > o.Threshold
}

// fileDiffs compares files matched by key. It also returns the files of
// each run that only that run has, accounted for by a namespace difference.
func fileDiffs(ta, tb *tracker, o DiffOptions, explain func(...string) string) (out []IODiff, exA, exB []*entity) {
	type pair struct{ a, b *entity }
	m := map[string]*pair{}
	var keys []string
	for i, t := range []*tracker{ta, tb} {
		for _, e := range t.entities {
			k := e.key()
			p := m[k]
			if p == nil {
				p = &pair{}
				m[k] = p
				keys = append(keys, k)
			}
			if i == 0 {
				p.a = e
			} else {
				p.b = e
			}
		}
	}
	sort.Strings(keys)
	out = []IODiff{}
	for _, k := range keys {
		p := m[k]
		var va, vb, ma, mb Volume
		var names []string
		if p.a != nil {
			va, ma = p.a.data, p.a.meta
			names = append(append(names, p.a.first), p.a.names...)
		}
		if p.b != nil {
			vb, mb = p.b.data, p.b.meta
			names = append(append(names, p.b.first), p.b.names...)
		}
		if va == vb && ma == mb {
			continue
		}
		d := IODiff{Name: k, A: va, B: vb, AMeta: &ma, BMeta: &mb,
			ReadChange: change(va.ReadBytes, vb.ReadBytes), WriteChange: change(va.WriteBytes, vb.WriteBytes),
			MetaChange: change(ma.Bytes(), mb.Bytes())}
		d.Flagged = beyond(va.ReadBytes, vb.ReadBytes, o) || beyond(va.WriteBytes, vb.WriteBytes, o) ||
			beyond(ma.Bytes(), mb.Bytes(), o)
		if d.Flagged && (p.a == nil || p.b == nil) {
			// A file only one run has is reported by the namespace
			// difference that made it, when there is one.
			if d.ExplainedBy = explain(names...); d.ExplainedBy != "" {
				d.Flagged = false
				if p.a != nil {
					exA = append(exA, p.a)
				} else {
					exB = append(exB, p.b)
				}
			}
		}
		out = append(out, d)
	}
	return out, exA, exB
}

// sub returns v minus u.
func sub(v, u Volume) Volume {
	return Volume{Reads: v.Reads - u.Reads, ReadBytes: v.ReadBytes - u.ReadBytes, Writes: v.Writes - u.Writes, WriteBytes: v.WriteBytes - u.WriteBytes}
}

// kindDiffs compares volumes per kind. Flags are computed without the I/O
// of files that only one run has because of a namespace difference (the
// difference is reported once, as that op); the volumes shown are whole.
func kindDiffs(a, b *Totals, exA, exB []*entity, o DiffOptions) []IODiff {
	out := []IODiff{}
	for _, k := range Kinds {
		va, oka := a.ByKind[k]
		vb, okb := b.ByKind[k]
		if !oka && !okb {
			continue
		}
		fa, fb := va, vb
		for _, e := range exA {
			fa = sub(fa, e.volume(k))
		}
		for _, e := range exB {
			fb = sub(fb, e.volume(k))
		}
		d := IODiff{Name: string(k), A: va, B: vb,
			ReadChange: change(va.ReadBytes, vb.ReadBytes), WriteChange: change(va.WriteBytes, vb.WriteBytes)}
		d.Flagged = beyond(fa.ReadBytes, fb.ReadBytes, o) || beyond(fa.WriteBytes, fb.WriteBytes, o)
		out = append(out, d)
	}
	return out
}
