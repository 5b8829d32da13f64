// Package report renders runs as one self-contained HTML page: a timeline with
// one lane per file or directory, a sector x time plot coloured by the kind of
// block, per-directory volumes, the summary and the anomalies.
//
// The page works offline: its script and style sheet are embedded in the
// binary (go:embed) and written inline, and the run is embedded as compact,
// column-oriented JSON that the script draws on canvases, so a run of 100,000
// operations is a few megabytes and one DOM node per operation is never made.
package report

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"path"
	"sort"
	"text/template"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

//go:embed assets/page.html assets/report.js assets/report.css
var assets embed.FS

// Event is a moment on the time axis that is not an operation: a flush
// request or the write of a journal commit block.
type Event struct {
	Seq int64
	T   float64
}

// Run is one run to draw.
type Run struct {
	Name string   // label shown above the run
	Ops  []ops.Op // in log order, as analyze emits them

	// FromLog says the run was analyzed from its log with the flushes and
	// commits collected, so Flushes and Commits are known; a saved jsonl has
	// neither, and diff does not collect them.
	FromLog bool
	Flushes []Event
	Commits []Event

	// StartUnixNS is the wall-clock start of the capture, 0 when unknown.
	StartUnixNS int64
	// Summary is free lines shown under the run's name (the analyze summary).
	Summary []string
}

// Options are page-wide settings.
type Options struct {
	Title string
	// Text is shown as preformatted text under the plots (diff's table).
	Text string
}

// Op codes and kind codes in the embedded JSON (the script has the same tables).
var (
	opCodes   = []ops.Type{ops.Read, ops.Write, ops.Create, ops.Mkdir, ops.Symlink, ops.Mknod, ops.Delete, ops.Rmdir, ops.Move, ops.Link, ops.Unlink, ops.Truncate, ops.Anomaly}
	kindCodes = []ops.Kind{"", ops.KindData, ops.KindDir, ops.KindIndirect, ops.KindInode, ops.KindBitmap, ops.KindSuper, ops.KindGDT, ops.KindJournal, ops.KindUnowned,
		ops.KindExtent, ops.KindPartitionTable, ops.KindSwap, ops.KindPartition, ops.KindUnpartitioned}
)

// runJSON is a run as the script reads it: one array per field, so that
// 100,000 operations cost numbers and commas, not repeated key names.
type runJSON struct {
	Name     string     `json:"name"`
	Axis     string     `json:"axis"` // "t" (seconds) or "seq" (record numbers, when the log has no time)
	Start    int64      `json:"start,omitempty"`
	FromLog  bool       `json:"fromLog"`
	Metadata bool       `json:"metadata"` // the run has metadata and journal I/O (saved with --metadata)
	Summary  []string   `json:"summary"`
	Paths    []string   `json:"paths"` // index 0 is "no path"
	Op       []int      `json:"op"`
	X        []float64  `json:"x"`
	Seq      []int64    `json:"seq"`
	Path     []int      `json:"p"`
	To       []int      `json:"to"`
	Sector   []uint64   `json:"sec"`
	Bytes    []int64    `json:"b"`
	Kind     []int      `json:"k"`
	Flushes  []float64  `json:"flush"`
	Commits  []float64  `json:"commit"`
	Dirs     []dirJSON  `json:"dirs"`
	Anoms    []anomJSON `json:"anom"`
	NSCount  int        `json:"ns"`
	IOCount  int        `json:"io"`
	Totals   ops.Totals `json:"totals"`
	MaxSect  uint64     `json:"maxSector"`
	RunFiles int        `json:"files"`
}

type dirJSON struct {
	Path       string `json:"path"`
	Files      int    `json:"files"`
	ReadBytes  int64  `json:"r"`
	WriteBytes int64  `json:"w"`
	// Totals including every directory below.
	AllRead  int64 `json:"rAll"`
	AllWrite int64 `json:"wAll"`
}

type anomJSON struct {
	Seq    int64  `json:"seq"`
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Sector uint64 `json:"sector"`
	Reason string `json:"reason"`
}

// HasMetadata reports whether a run holds I/O only analyze --metadata
// reports (inode tables, bitmaps, super/gdt, journal).
func HasMetadata(run []ops.Op) bool {
	for i := range run {
		switch run[i].Kind {
		case ops.KindInode, ops.KindBitmap, ops.KindSuper, ops.KindGDT, ops.KindJournal:
			return true
		}
	}
	return false
}

func encodeRun(r *Run) (*runJSON, error) {
	opIdx := map[ops.Type]int{}
	for i, t := range opCodes {
		opIdx[t] = i
	}
	kindIdx := map[ops.Kind]int{}
	for i, k := range kindCodes {
		kindIdx[k] = i
	}
	n := len(r.Ops)
	j := &runJSON{Name: r.Name, Axis: "seq", Start: r.StartUnixNS, FromLog: r.FromLog, Summary: r.Summary,
		Paths: []string{""}, Op: make([]int, n), X: make([]float64, n), Seq: make([]int64, n), Path: make([]int, n),
		To: make([]int, n), Sector: make([]uint64, n), Bytes: make([]int64, n), Kind: make([]int, n),
		Metadata: HasMetadata(r.Ops), Flushes: []float64{}, Commits: []float64{}, Dirs: []dirJSON{}, Anoms: []anomJSON{}}
	if j.Summary == nil {
		j.Summary = []string{}
	}
	for i := range r.Ops {
		if r.Ops[i].T != 0 {
			j.Axis = "t"
			break
		}
	}
	pathIdx := map[string]int{"": 0}
	intern := func(p string) int {
		if k, ok := pathIdx[p]; ok {
			return k
		}
		pathIdx[p] = len(j.Paths)
		j.Paths = append(j.Paths, p)
		return len(j.Paths) - 1
	}
	x := func(seq int64, t float64) float64 {
		if j.Axis == "t" {
			return t
		}
		return float64(seq)
	}
	for i := range r.Ops {
		o := &r.Ops[i]
		code, ok := opIdx[o.Op]
		if !ok {
			return nil, fmt.Errorf("op %d (seq %d): unknown op %q", i, o.Seq, o.Op)
		}
		kc, ok := kindIdx[o.Kind]
		if !ok {
			return nil, fmt.Errorf("op %d (seq %d): unknown kind %q", i, o.Seq, o.Kind)
		}
		j.Op[i], j.Kind[i] = code, kc
		j.X[i], j.Seq[i] = x(o.Seq, o.T), o.Seq
		j.Path[i], j.To[i] = intern(o.Path), intern(o.To)
		j.Sector[i], j.Bytes[i] = o.Sector, o.Bytes
		if o.Op == ops.Truncate && o.Size != nil {
			j.Bytes[i] = int64(*o.Size)
		}
		switch {
		case o.IsIO():
			j.IOCount++
			if end := o.Sector + uint64(o.Bytes+511)/512; end > j.MaxSect {
				j.MaxSect = end
			}
		case o.IsNamespace():
			j.NSCount++
		case o.Op == ops.Anomaly:
			j.Anoms = append(j.Anoms, anomJSON{Seq: o.Seq, Path: o.Path, Kind: string(o.Kind), Sector: o.Sector, Reason: o.Reason})
		}
	}
	for _, e := range r.Flushes {
		j.Flushes = append(j.Flushes, x(e.Seq, e.T))
	}
	for _, e := range r.Commits {
		j.Commits = append(j.Commits, x(e.Seq, e.T))
	}
	st := ops.BuildStats(r.Ops)
	j.Totals, j.RunFiles = st.Totals, len(st.Files)
	j.Dirs = dirVolumes(st)
	return j, nil
}

// dirVolumes is the bytes read and written in each directory: by the files
// directly in it (its own directory blocks included), and with everything
// below it.
func dirVolumes(st *ops.Stats) []dirJSON {
	rows, err := st.Rows(ops.StatsOptions{By: "dir", Depth: 1 << 20})
	if err != nil {
		return []dirJSON{} // the options above are valid; an empty table otherwise
	}
	byPath := map[string]*dirJSON{}
	var out []*dirJSON
	get := func(p string) *dirJSON {
		d := byPath[p]
		if d == nil {
			d = &dirJSON{Path: p}
			byPath[p] = d
			out = append(out, d)
		}
		return d
	}
	for _, r := range rows {
		d := get(r.Path)
		d.Files += r.Files
		d.ReadBytes += r.Data.ReadBytes + r.Metadata.ReadBytes
		d.WriteBytes += r.Data.WriteBytes + r.Metadata.WriteBytes
	}
	// Roll every directory's own volume up into its ancestors.
	for _, d := range append([]*dirJSON(nil), out...) {
		for p := d.Path; ; p = path.Dir(p) {
			a := get(p)
			a.AllRead += d.ReadBytes
			a.AllWrite += d.WriteBytes
			if p == "/" || p == "." {
				break
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Path < out[b].Path })
	res := make([]dirJSON, len(out))
	for i, d := range out {
		res[i] = *d
	}
	return res
}

type pageData struct {
	Title string // HTML-escaped
	CSS   string
	JS    string
	Data  string // JSON, HTML-safe (json.Marshal escapes <, > and &)
	Text  string // HTML-escaped
}

// Write renders runs (one, or two side by side on the same axes) as one
// HTML page.
func Write(w io.Writer, runs []Run, opt Options) error {
	if len(runs) == 0 {
		return fmt.Errorf("report: no run to draw")
	}
	enc := make([]*runJSON, len(runs))
	for i := range runs {
		var err error
		if enc[i], err = encodeRun(&runs[i]); err != nil {
			return fmt.Errorf("report: run %q: %w", runs[i].Name, err)
		}
	}
	// json.Marshal escapes <, > and & as \u003c..., so a path holding
	// "</script>" cannot end the script element it is embedded in.
	data, err := json.Marshal(map[string]any{"runs": enc, "title": opt.Title})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var page, js, css []byte
	for _, a := range []struct {
		name string
		dst  *[]byte
	}{{"assets/page.html", &page}, {"assets/report.js", &js}, {"assets/report.css", &css}} {
		if *a.dst, err = assets.ReadFile(a.name); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	if bytes.Contains(js, []byte("</script")) || bytes.Contains(css, []byte("</style")) {
		return fmt.Errorf("report: an embedded asset would end its element early")
	}
	// text/template, not html/template: the script, style and JSON are
	// inserted verbatim (already safe above); the two strings are escaped here.
	tpl, err := template.New("page").Parse(string(page))
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, pageData{Title: html.EscapeString(opt.Title), CSS: string(css), JS: string(js),
		Data: string(data), Text: html.EscapeString(opt.Text)}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}
