package ops

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// FileStats is what one file went through during a run.
type FileStats struct {
	Path       string   `json:"path"`                 // first name seen
	Occurrence int      `json:"occurrence,omitempty"` // 2 for the second file that had this first name, ...
	Type       string   `json:"type,omitempty"`       // file, dir, symlink, node; empty when unknown
	Created    bool     `json:"created,omitempty"`    // got its first name during the run
	Data       Volume   `json:"data"`                 // its own bytes
	Metadata   Volume   `json:"metadata"`             // its dir, indirect and inode blocks
	FirstSeq   int64    `json:"first_seq"`
	LastSeq    int64    `json:"last_seq"`
	FirstT     float64  `json:"first_t,omitempty"`
	LastT      float64  `json:"last_t,omitempty"`
	History    []string `json:"history,omitempty"` // namespace ops in order: "create", "move -> /b", "truncate 0"
	State      string   `json:"state"`             // exists, deleted, moved to ..., unlinked
	Names      []string `json:"names,omitempty"`   // names at the end of the run
	Size       *uint64  `json:"size,omitempty"`    // last size set by a truncate
	Anomalies  int      `json:"anomalies,omitempty"`
}

// Key identifies the file across runs: "/a/b", or "/a/b #2" for the second
// file that first appeared as /a/b.
func (f *FileStats) Key() string {
	if f.Occurrence <= 1 {
		return f.Path
	}
	return fmt.Sprintf("%s #%d", f.Path, f.Occurrence)
}

// WriteAmplification is all bytes written for the file per byte of its
// data written (0 when it had no data written).
func (f *FileStats) WriteAmplification() float64 {
	return ratio(f.Data.WriteBytes+f.Metadata.WriteBytes, f.Data.WriteBytes)
}

// Stats is the per-file view of a run.
type Stats struct {
	Files     []*FileStats // in order of first appearance
	Totals    Totals
	Ops       int64
	Anomalies int64
	HasTime   bool // some op carries a time
	// Missing lists the kinds the run could not hold (Run.Missing, set by the caller): their
	// totals are not zero but unknown, and amplification cannot be computed.
	Missing []Kind
}

// BuildStats replays ops (in log order) into per-file statistics.
func BuildStats(all []Op) *Stats {
	t := track(all)
	s := &Stats{Totals: t.totals, Ops: t.ops, Anomalies: t.anomalies}
	for i := range all {
		if all[i].T != 0 {
			s.HasTime = true
			break
		}
	}
	for _, e := range t.entities {
		f := &FileStats{
			Path: e.first, Type: e.typ, Created: e.created,
			Data: e.data, Metadata: e.meta,
			FirstSeq: e.firstSeq, LastSeq: e.lastSeq, FirstT: e.firstT, LastT: e.lastT,
			History: e.history, State: e.state(), Size: e.size, Anomalies: e.anomalies,
		}
		if e.occurrence > 0 {
			f.Occurrence = e.occurrence + 1
		}
		f.Names = append([]string(nil), e.names...)
		sort.Strings(f.Names)
		s.Files = append(s.Files, f)
	}
	return s
}

// StatsOptions selects and orders the rows of a stats report.
type StatsOptions struct {
	By     string // "file" (default) or "dir"
	Depth  int    // with By "dir": directory components kept (0 = "/")
	Sort   string // "path" (default), "writes", "reads", "bytes"
	Top    int    // keep the first Top rows after sorting; 0 = all
	Prefix string // keep files with a name at or under this path
	Glob   string // keep files with a name matching this pattern (path.Match; without "/" it matches the base name)
}

// SortKeys lists the accepted StatsOptions.Sort values.
var SortKeys = []string{"path", "writes", "reads", "bytes"}

// Row is one line of a stats report: a file, or a directory roll-up.
type Row struct {
	Path     string
	Files    int // files rolled into the row (1 for a file row)
	File     *FileStats
	Data     Volume
	Metadata Volume
	FirstSeq int64
	LastSeq  int64
	FirstT   float64
	LastT    float64
	States   map[string]int // dir rows: final states of the files in it
}

// Bytes is all I/O bytes of the row.
func (r *Row) Bytes() int64 { return r.Data.Bytes() + r.Metadata.Bytes() }

// WriteAmplification is bytes written per byte of data written.
func (r *Row) WriteAmplification() float64 {
	return ratio(r.Data.WriteBytes+r.Metadata.WriteBytes, r.Data.WriteBytes)
}

// State is the final state of a file row, or a count of states for a dir.
func (r *Row) State() string {
	if r.File != nil {
		return r.File.State
	}
	keys := make([]string, 0, len(r.States))
	for k := range r.States {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", r.States[k], k)
	}
	return strings.Join(parts, ", ")
}

// Validate checks the options and fills defaults.
func (o *StatsOptions) Validate() error {
	switch o.By {
	case "":
		o.By = "file"
	case "file", "dir":
	default:
		return fmt.Errorf("--by %q: want file or dir", o.By)
	}
	if o.Depth < 0 {
		return fmt.Errorf("--depth %d: must be >= 0", o.Depth)
	}
	if o.Sort == "" {
		o.Sort = "path"
	}
	ok := false
	for _, k := range SortKeys {
		ok = ok || o.Sort == k
	}
	if !ok {
		return fmt.Errorf("--sort %q: want one of %s", o.Sort, strings.Join(SortKeys, ", "))
	}
	if o.Top < 0 {
		return fmt.Errorf("--top %d: must be >= 0", o.Top)
	}
	if o.Glob != "" {
		if _, err := path.Match(o.Glob, ""); err != nil {
			return fmt.Errorf("--glob %q: %v", o.Glob, err)
		}
	}
	return nil
}

// Match reports whether the file passes the prefix and glob filters: any
// of its first or final names is at or under Prefix and matches Glob.
func (o *StatsOptions) Match(f *FileStats) bool {
	names := append([]string{f.Path}, f.Names...)
	for _, n := range names {
		if o.Prefix != "" && !underPath(n, o.Prefix) {
			continue
		}
		if o.Glob != "" {
			target := n
			if !strings.Contains(o.Glob, "/") {
				target = path.Base(n)
			}
			if ok, _ := path.Match(o.Glob, target); !ok {
				continue
			}
		}
		return true
	}
	return false
}

// underPath reports whether p is dir or inside it, component-wise:
// "/home/deb" is not under "/home/d".
func underPath(p, dir string) bool {
	if dir == "/" || dir == "" || p == dir {
		return true
	}
	dir = strings.TrimSuffix(dir, "/")
	return strings.HasPrefix(p, dir+"/")
}

// groupDir is the directory a file rolls up into at the given depth: the
// first depth components of the directory holding it (of itself, for a
// directory).
func groupDir(f *FileStats, depth int) string {
	p := f.Path
	if f.Type != "dir" {
		p = path.Dir(p)
	}
	comps := strings.Split(strings.Trim(p, "/"), "/")
	if comps[0] == "" {
		comps = nil
	}
	if len(comps) > depth {
		comps = comps[:depth]
	}
	return "/" + strings.Join(comps, "/")
}

// Rows applies the options: filter, roll up, sort, cut.
func (s *Stats) Rows(o StatsOptions) ([]*Row, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var rows []*Row
	groups := map[string]*Row{}
	for _, f := range s.Files {
		if !o.Match(f) {
			continue
		}
		if o.By == "file" {
			rows = append(rows, &Row{Path: f.Key(), Files: 1, File: f, Data: f.Data, Metadata: f.Metadata,
				FirstSeq: f.FirstSeq, LastSeq: f.LastSeq, FirstT: f.FirstT, LastT: f.LastT})
			continue
		}
		g := groupDir(f, o.Depth)
		r := groups[g]
		if r == nil {
			r = &Row{Path: g, FirstSeq: f.FirstSeq, FirstT: f.FirstT, States: map[string]int{}}
			groups[g] = r
			rows = append(rows, r)
		}
		r.Files++
		r.Data.Merge(f.Data)
		r.Metadata.Merge(f.Metadata)
		if f.FirstSeq < r.FirstSeq {
			r.FirstSeq, r.FirstT = f.FirstSeq, f.FirstT
		}
		if f.LastSeq > r.LastSeq {
			r.LastSeq, r.LastT = f.LastSeq, f.LastT
		}
		st := f.State
		if strings.HasPrefix(st, "moved to ") {
			st = "moved"
		} else if strings.HasPrefix(st, "deleted") {
			st = "deleted"
		} else if strings.HasPrefix(st, "exists") {
			st = "exist"
		}
		r.States[st]++
	}
	less := func(a, b *Row) bool { return a.Path < b.Path }
	desc := func(x, y int64, a, b *Row) bool {
		if x != y {
			return x > y
		}
		return a.Path < b.Path
	}
	switch o.Sort {
	case "writes":
		less = func(a, b *Row) bool {
			return desc(a.Data.WriteBytes+a.Metadata.WriteBytes, b.Data.WriteBytes+b.Metadata.WriteBytes, a, b)
		}
	case "reads":
		less = func(a, b *Row) bool {
			return desc(a.Data.ReadBytes+a.Metadata.ReadBytes, b.Data.ReadBytes+b.Metadata.ReadBytes, a, b)
		}
	case "bytes":
		less = func(a, b *Row) bool { return desc(a.Bytes(), b.Bytes(), a, b) }
	}
	sort.SliceStable(rows, func(i, j int) bool { return less(rows[i], rows[j]) })
	if o.Top > 0 && len(rows) > o.Top {
		rows = rows[:o.Top]
	}
	return rows, nil
}
