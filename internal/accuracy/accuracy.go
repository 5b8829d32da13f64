// Package accuracy scores what `ext3replay analyze` reported for a captured
// scenario against the ground truth the scenario's workload printed while it
// ran (fixtures/real/<name>/expected.jsonl).
//
// Namespace operations (create, mkdir, symlink, move, link, unlink, delete,
// rmdir, truncate, mknod) are compared as multisets of (op, path, to):
// precision is the share of reported operations that the workload performed,
// recall the share of the workload's mandatory operations that were reported.
// Expected lines marked "optional" never count as missing, and a reported
// operation that matches one is neither right nor wrong (it is left out of
// precision). A line's "aka" names (other hard links of the file) are
// accepted in place of its path.
//
// File data cannot be matched one request to one step (the kernel merges,
// splits and delays block writes), so data is scored by volume, per path and
// in the workload's order: the k-th expected write to a path is found when the
// data bytes reported as written to that path add up to at least the sum of
// min_bytes of its first k expected writes. Reads likewise. A write to a file
// with several hard links lists the other names in "aka": bytes reported
// under any of them count.
package accuracy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// Expected is one line of expected.jsonl.
type Expected struct {
	Op        ops.Type `json:"op"`
	Path      string   `json:"path"`
	To        string   `json:"to,omitempty"`
	MinBytes  int64    `json:"min_bytes,omitempty"` // write/read: at least this many data bytes reach the disk
	Overwrite bool     `json:"overwrite,omitempty"` // move: replaced an existing file
	Size      *uint64  `json:"size,omitempty"`      // truncate: the new size
	Optional  bool     `json:"optional,omitempty"`  // the disk may legitimately not show it
	Aka       []string `json:"aka,omitempty"`       // the file's other names (hard links): equally right as path
}

// names is the path and its aliases.
func (e *Expected) names() []string { return append([]string{e.Path}, e.Aka...) }

// IsNamespace reports whether the expected operation changes the tree or a size.
func (e *Expected) IsNamespace() bool {
	o := ops.Op{Op: e.Op}
	return o.IsNamespace()
}

// ReadExpected parses expected.jsonl. name is used in error messages.
func ReadExpected(r io.Reader, name string) ([]Expected, error) {
	var out []Expected
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e Expected
		d := json.NewDecoder(bytes.NewReader(line))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, fmt.Errorf("%s:%d: not an expected op: %w", name, n, err)
		}
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func (e *Expected) validate() error {
	if e.Path == "" || e.Path[0] != '/' {
		return fmt.Errorf("%s: path %q is not absolute", e.Op, e.Path)
	}
	for _, a := range e.Aka {
		if a == "" || a[0] != '/' {
			return fmt.Errorf("%s %s: aka %q is not absolute", e.Op, e.Path, a)
		}
	}
	switch e.Op {
	case ops.Read, ops.Write:
		if e.MinBytes <= 0 {
			return fmt.Errorf("%s %s: min_bytes must be > 0", e.Op, e.Path)
		}
	case ops.Move, ops.Link:
		if e.To == "" || e.To[0] != '/' {
			return fmt.Errorf("%s %s: to %q is not absolute", e.Op, e.Path, e.To)
		}
	case ops.Truncate:
		if e.Size == nil {
			return fmt.Errorf("truncate %s: size missing", e.Path)
		}
	case ops.Create, ops.Mkdir, ops.Symlink, ops.Mknod, ops.Delete, ops.Rmdir, ops.Unlink:
	default:
		return fmt.Errorf("unknown op %q", e.Op)
	}
	return nil
}

// Key identifies a namespace operation for matching.
type Key struct {
	Op       ops.Type
	Path, To string
}

func (k Key) String() string {
	if k.To != "" {
		return fmt.Sprintf("%s %s -> %s", k.Op, k.Path, k.To)
	}
	return fmt.Sprintf("%s %s", k.Op, k.Path)
}

// DataCheck is the outcome for one expected write or read.
type DataCheck struct {
	Expected Expected
	Need     int64 // cumulative min_bytes up to this step for its path
	Got      int64 // data bytes reported for the path, all steps together
	Found    bool
}

// Result is the score of one analyzer run against one scenario's ground truth.
type Result struct {
	NSExpected int   // mandatory namespace ops expected
	NSReported int   // reported namespace ops, less those matching only optional lines
	NSMatched  int   // reported ops matching mandatory expected ones
	Missing    []Key // mandatory expected, not reported
	Extra      []Key // reported, not expected (not even optionally)

	Writes, Reads []DataCheck // mandatory expected data steps, in workload order

	// Data writes attributed to a path the workload never wrote (no expected write, optional or not).
	StrayWrites     int
	StrayWriteBytes int64
	StrayPaths      []string
	// Data-kind or unowned reads and writes reported without a path.
	UnattributedBytes int64
	Anomalies         int
}

// Precision of namespace ops; 1 when nothing was reported and nothing was expected.
func (r *Result) Precision() float64 { return ratio(r.NSMatched, r.NSReported) }

// Recall of namespace ops; 1 when nothing was expected.
func (r *Result) Recall() float64 { return ratio(r.NSMatched, r.NSExpected) }

// WritesFound counts expected writes whose bytes were reported.
func (r *Result) WritesFound() int { return countFound(r.Writes) }

// ReadsFound counts expected reads whose bytes were reported.
func (r *Result) ReadsFound() int { return countFound(r.Reads) }

func ratio(a, b int) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return 0
	}
	return float64(a) / float64(b)
}

func countFound(cs []DataCheck) int {
	n := 0
	for _, c := range cs {
		if c.Found {
			n++
		}
	}
	return n
}

// isData reports whether a reported read/write carries a file's own bytes.
func isData(o *ops.Op) bool { return o.IsIO() && !o.Kind.IsMetadata() && o.Kind != ops.KindUnowned }

// Score compares reported ops with the expected ones.
func Score(expected []Expected, reported []ops.Op) *Result {
	r := &Result{}

	// Namespace. A reported op is matched, in this order of preference, to a
	// mandatory line with the same (op, path, to); to a mandatory line naming
	// its path among the file's other names ("aka"); to an optional line.
	// Mandatory first, so that an op the workload both may and must show (a
	// burst's intermediate step that is also its net effect) is credited to
	// the mandatory line; exact names first, so that an alias cannot take a
	// line another op matches exactly.
	var mand, opt []*Expected
	for i := range expected {
		e := &expected[i]
		if !e.IsNamespace() {
			continue
		}
		if e.Optional {
			opt = append(opt, e)
		} else {
			mand = append(mand, e)
		}
	}
	r.NSExpected = len(mand)
	index := func(lines []*Expected, alias bool) map[Key][]int {
		m := map[Key][]int{}
		for i, e := range lines {
			if !alias {
				k := Key{e.Op, e.Path, e.To}
				m[k] = append(m[k], i)
				continue
			}
			for _, a := range e.Aka {
				k := Key{e.Op, a, e.To}
				m[k] = append(m[k], i)
			}
		}
		return m
	}
	passes := []struct {
		lines []*Expected
		idx   map[Key][]int
		count bool // a match is a true positive (mandatory line)
	}{
		{mand, index(mand, false), true},
		{mand, index(mand, true), true},
		{opt, index(opt, false), false},
		{opt, index(opt, true), false},
	}
	used := map[*Expected]bool{}
	take := func(idx map[Key][]int, lines []*Expected, k Key) bool {
		for _, i := range idx[k] {
			if !used[lines[i]] {
				used[lines[i]] = true
				return true
			}
		}
		return false
	}
	var ns []*ops.Op
	for i := range reported {
		o := &reported[i]
		if o.Op == ops.Anomaly {
			r.Anomalies++
		} else if o.IsNamespace() {
			ns = append(ns, o)
		}
	}
	matched := make([]bool, len(ns))
	for _, p := range passes {
		for j, o := range ns {
			if matched[j] || !take(p.idx, p.lines, Key{o.Op, o.Path, o.To}) {
				continue
			}
			matched[j] = true
			if p.count {
				r.NSMatched++
				r.NSReported++
			}
		}
	}
	for j, o := range ns {
		if !matched[j] {
			r.Extra = append(r.Extra, Key{o.Op, o.Path, o.To})
			r.NSReported++
		}
	}
	for _, e := range mand {
		if !used[e] {
			r.Missing = append(r.Missing, Key{e.Op, e.Path, e.To})
		}
	}

	// Data by volume per path.
	written := map[string]int64{}
	read := map[string]int64{}
	for i := range reported {
		o := &reported[i]
		if !o.IsIO() {
			continue
		}
		if o.Path == "" {
			if o.Kind == ops.KindData || o.Kind == ops.KindUnowned || o.Kind == "" {
				r.UnattributedBytes += o.Bytes
			}
			continue
		}
		if !isData(o) {
			continue
		}
		if o.Op == ops.Write {
			written[o.Path] += o.Bytes
		} else {
			read[o.Path] += o.Bytes
		}
	}
	// A file with several names: its bytes count under any of them, and the
	// need accumulates per file (the set of names), not per name.
	sum := func(m map[string]int64, names []string) int64 {
		var n int64
		for _, p := range names {
			n += m[p]
		}
		return n
	}
	wroteByWorkload := map[string]bool{}
	needW := map[string]int64{}
	needR := map[string]int64{}
	for _, e := range expected {
		names := e.names()
		key := strings.Join(names, "\x00")
		switch e.Op {
		case ops.Write:
			for _, p := range names {
				wroteByWorkload[p] = true
			}
			if !e.Optional {
				needW[key] += e.MinBytes
				got := sum(written, names)
				r.Writes = append(r.Writes, DataCheck{Expected: e, Need: needW[key], Got: got, Found: got >= needW[key]})
			}
		case ops.Read:
			if !e.Optional {
				needR[key] += e.MinBytes
				got := sum(read, names)
				r.Reads = append(r.Reads, DataCheck{Expected: e, Need: needR[key], Got: got, Found: got >= needR[key]})
			}
		}
	}
	stray := map[string]bool{}
	for i := range reported {
		o := &reported[i]
		if o.Op == ops.Write && o.Path != "" && isData(o) && !wroteByWorkload[o.Path] {
			r.StrayWrites++
			r.StrayWriteBytes += o.Bytes
			stray[o.Path] = true
		}
	}
	for p := range stray {
		r.StrayPaths = append(r.StrayPaths, p)
	}
	sort.Strings(r.StrayPaths)
	return r
}
