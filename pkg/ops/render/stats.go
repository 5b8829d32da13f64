// Package render draws stats and diff reports as tables (boxed or markdown), csv and json.
// It is apart from pkg/ops so that the op core, which the resolver and the pipeline import,
// does not pull in tablewriter.
package render

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// StatsFormats lists the formats of a stats report.
var StatsFormats = []string{"table", "markdown", "csv", "json"}

func checkReportFormat(f string, allowed ...string) error {
	for _, a := range allowed {
		if f == a {
			return nil
		}
	}
	return fmt.Errorf("unknown report format %q (want %s)", f, strings.Join(allowed, ", "))
}

// table renders one human table, boxed ("table") or as GitHub markdown.
// right marks the columns to align right (numbers).
type table struct {
	header []string
	rows   [][]string
	footer []string
	right  []bool
}

// safeCells returns the cells as a human table shows them: non-printable text quoted (ops.SafeText),
// long cells cut (ops.TruncateCell). Callers quote paths themselves (ops.QuotePath); this is the last
// guard for every cell of every table.
func safeCells(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = ops.TruncateCell(ops.SafeText(c))
	}
	return out
}

func (t *table) render(w io.Writer, format string) error {
	if format == "table" {
		return writeBoxTable(w, t.header, t.footer, t.rows, t.right)
	}
	return t.tablewriter(w, format)
}

// tablewriter is render by tablewriter: the markdown tables, and the boxed tables writeBoxTable
// does not draw itself (tablewriterTable).
func (t *table) tablewriter(w io.Writer, format string) error {
	align := make([]tw.Align, len(t.header))
	for i := range align {
		align[i] = tw.AlignLeft
		if i < len(t.right) && t.right[i] {
			align[i] = tw.AlignRight
		}
	}
	var r tw.Renderer
	if format == "markdown" {
		r = renderer.NewMarkdown()
	} else {
		r = renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleLight)})
	}
	tbl := tablewriter.NewTable(w,
		tablewriter.WithRenderer(r),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithFooterAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithFooterAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
	)
	tbl.Header(toAny(safeCells(t.header))...)
	for _, row := range t.rows {
		if err := tbl.Append(safeCells(row)); err != nil {
			return err
		}
	}
	if len(t.footer) > 0 {
		tbl.Footer(toAny(safeCells(t.footer))...)
	}
	return tbl.Render()
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

func writeJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func amp(f float64) string {
	if f == 0 {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

func when(seq int64, t float64, hasTime bool) string {
	if hasTime {
		return fmt.Sprintf("#%d %.3fs", seq, t)
	}
	return "#" + itoa(seq)
}

// StatsReport is the json form of a stats report.
type StatsReport struct {
	By                    string      `json:"by"`
	Depth                 int         `json:"depth,omitempty"`
	FilesTotal            int         `json:"files_total"` // files in the run, before filters
	Rows                  []any       `json:"rows"`        // FileRow or DirRow
	Totals                ops.Totals  `json:"totals"`
	WriteAmplification    float64     `json:"write_amplification"`
	MetadataAmplification float64     `json:"metadata_amplification"`
	JournalAmplification  float64     `json:"journal_amplification"`
	Anomalies             int64       `json:"anomalies"`
	Options               StatsFilter `json:"filter,omitzero"`
	// MissingKinds lists the kinds the run could not hold (saved without --metadata): the
	// totals and amplifications above then count only what was recorded.
	MissingKinds []ops.Kind `json:"missing_kinds,omitempty"`
}

// StatsFilter records the filters of a report.
type StatsFilter struct {
	Sort   string `json:"sort,omitempty"`
	Top    int    `json:"top,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Glob   string `json:"glob,omitempty"`
}

// FileRow is a json row of a per-file report.
type FileRow struct {
	*ops.FileStats
	WriteAmplification float64 `json:"write_amplification"`
}

// DirRow is a json row of a per-directory report.
type DirRow struct {
	Path               string         `json:"path"`
	Files              int            `json:"files"`
	Data               ops.Volume     `json:"data"`
	Metadata           ops.Volume     `json:"metadata"`
	FirstSeq           int64          `json:"first_seq"`
	LastSeq            int64          `json:"last_seq"`
	FirstT             float64        `json:"first_t,omitempty"`
	LastT              float64        `json:"last_t,omitempty"`
	States             map[string]int `json:"states"`
	WriteAmplification float64        `json:"write_amplification"`
}

// Stats renders a stats report in format table, markdown, csv or json.
func Stats(w io.Writer, s *ops.Stats, format string, o ops.StatsOptions) error {
	if err := checkReportFormat(format, StatsFormats...); err != nil {
		return err
	}
	rows, err := s.Rows(o)
	if err != nil {
		return err
	}
	if s.Totals.All.Overflow {
		return fmt.Errorf("stats: %w", ops.ErrOverflow)
	}
	for _, r := range rows {
		if r.Data.Overflow || r.Metadata.Overflow {
			return fmt.Errorf("stats: %s: %w", ops.QuotePath(r.Path), ops.ErrOverflow)
		}
	}
	_ = o.Validate() // defaults, already checked by Rows
	dir := o.By == "dir"
	switch format {
	case "json":
		rep := StatsReport{By: o.By, FilesTotal: len(s.Files), Totals: s.Totals,
			WriteAmplification:    s.Totals.WriteAmplification(),
			MetadataAmplification: s.Totals.MetadataAmplification(),
			JournalAmplification:  s.Totals.JournalAmplification(),
			Anomalies:             s.Anomalies,
			Options:               StatsFilter{Sort: o.Sort, Top: o.Top, Prefix: o.Prefix, Glob: o.Glob},
			Rows:                  []any{},
			MissingKinds:          s.Missing}
		if dir {
			rep.Depth = o.Depth
		}
		for _, r := range rows {
			if dir {
				rep.Rows = append(rep.Rows, DirRow{Path: r.Path, Files: r.Files, Data: r.Data, Metadata: r.Metadata,
					FirstSeq: r.FirstSeq, LastSeq: r.LastSeq, FirstT: r.FirstT, LastT: r.LastT, States: r.States,
					WriteAmplification: r.WriteAmplification()})
			} else {
				rep.Rows = append(rep.Rows, FileRow{FileStats: r.File, WriteAmplification: r.WriteAmplification()})
			}
		}
		return writeJSON(w, rep)
	case "csv":
		header := []string{"path", "type", "reads", "read_bytes", "writes", "write_bytes",
			"meta_reads", "meta_read_bytes", "meta_writes", "meta_write_bytes", "write_amplification",
			"first_seq", "last_seq", "first_t", "last_t", "history", "state"}
		if dir {
			header[1] = "files"
			header = append(header[:len(header)-2], "states") // no history or state per directory
		}
		var out [][]string
		for _, r := range rows {
			rec := []string{r.Path, "", itoa(r.Data.Reads), itoa(r.Data.ReadBytes), itoa(r.Data.Writes),
				itoa(r.Data.WriteBytes), itoa(r.Metadata.Reads), itoa(r.Metadata.ReadBytes),
				itoa(r.Metadata.Writes), itoa(r.Metadata.WriteBytes),
				strconv.FormatFloat(r.WriteAmplification(), 'f', 4, 64),
				itoa(r.FirstSeq), itoa(r.LastSeq), "", ""}
			if s.HasTime {
				rec[13] = strconv.FormatFloat(r.FirstT, 'f', -1, 64)
				rec[14] = strconv.FormatFloat(r.LastT, 'f', -1, 64)
			}
			if dir {
				rec[1] = strconv.Itoa(r.Files)
				rec = append(rec, r.State())
			} else {
				rec[0] = r.File.Path
				rec[1] = r.File.Type
				rec = append(rec, strings.Join(r.File.History, "; "), r.File.State)
			}
			out = append(out, rec)
		}
		return writeCSV(w, header, out)
	}

	t := &table{}
	if dir {
		t.header = []string{"DIRECTORY", "FILES", "READS", "READ", "WRITES", "WRITTEN", "META", "AMP", "FIRST", "LAST", "STATES"}
		t.right = []bool{false, true, true, true, true, true, true, true}
	} else {
		t.header = []string{"PATH", "TYPE", "READS", "READ", "WRITES", "WRITTEN", "META", "AMP", "FIRST", "LAST", "HISTORY", "STATE"}
		t.right = []bool{false, false, true, true, true, true, true, true}
	}
	var sum ops.Row
	for _, r := range rows {
		sum.Files += r.Files
		sum.Data.Merge(r.Data)
		sum.Metadata.Merge(r.Metadata)
		cells := []string{ops.QuotePath(r.Path), "", itoa(r.Data.Reads), ops.HumanBytes(r.Data.ReadBytes), itoa(r.Data.Writes),
			ops.HumanBytes(r.Data.WriteBytes), ops.HumanBytes(r.Metadata.Bytes()), amp(r.WriteAmplification()),
			when(r.FirstSeq, r.FirstT, s.HasTime), when(r.LastSeq, r.LastT, s.HasTime)}
		if dir {
			cells[1] = strconv.Itoa(r.Files)
			cells = append(cells, r.State())
		} else {
			cells[1] = r.File.Type
			cells = append(cells, strings.Join(r.File.History, ", "), r.File.State)
		}
		t.rows = append(t.rows, cells)
	}
	if sum.Data.Overflow || sum.Metadata.Overflow {
		return fmt.Errorf("stats: column totals: %w", ops.ErrOverflow)
	}
	t.footer = make([]string, len(t.header))
	t.footer[0] = fmt.Sprintf("%d of %d files", sum.Files, len(s.Files))
	t.footer[2], t.footer[3] = itoa(sum.Data.Reads), ops.HumanBytes(sum.Data.ReadBytes)
	t.footer[4], t.footer[5] = itoa(sum.Data.Writes), ops.HumanBytes(sum.Data.WriteBytes)
	t.footer[6], t.footer[7] = ops.HumanBytes(sum.Metadata.Bytes()), amp(sum.WriteAmplification())
	if err := t.render(w, format); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return writeTotals(w, format, &s.Totals, s.Anomalies, s.Missing)
}

// writeTotals renders the run-level I/O classes and amplification.
// Kinds the run could not hold are shown as not recorded, never as zero.
func writeTotals(w io.Writer, format string, tot *ops.Totals, anomalies int64, missing []ops.Kind) error {
	t := &table{
		header: []string{"RUN I/O", "READS", "READ", "WRITES", "WRITTEN"},
		right:  []bool{false, true, true, true, true},
	}
	add := func(name string, v ops.Volume) {
		t.rows = append(t.rows, []string{name, itoa(v.Reads), ops.HumanBytes(v.ReadBytes), itoa(v.Writes), ops.HumanBytes(v.WriteBytes)})
	}
	add("file data", tot.FileData)
	if len(missing) == 0 {
		add("metadata", tot.Metadata)
		add("journal", tot.Journal)
	} else {
		// Unknown, not zero: the run was saved without these kinds.
		add("metadata (dir, map only)", tot.Metadata)
		t.rows = append(t.rows, []string{"journal", "not recorded", "", "", ""})
	}
	add("unattributed", tot.Unattributed)
	a := tot.All
	t.footer = []string{"total", itoa(a.Reads), ops.HumanBytes(a.ReadBytes), itoa(a.Writes), ops.HumanBytes(a.WriteBytes)}
	if len(missing) > 0 {
		t.footer[0] = "total recorded"
	}
	if err := t.render(w, format); err != nil {
		return err
	}
	if len(missing) > 0 {
		_, err := fmt.Fprintf(w, "\nwrite amplification n/a: the run was saved without --metadata, so it has no %s I/O (analyze --metadata, or stats IMAGE LOG, has it); anomalies %d\n",
			kindList(missing), anomalies)
		return err
	}
	_, err := fmt.Fprintf(w, "\nwrite amplification %s (metadata %s, journal %s per byte of file data written); anomalies %d\n",
		amp(tot.WriteAmplification()), amp(tot.MetadataAmplification()), amp(tot.JournalAmplification()), anomalies)
	return err
}

// kindList is "inode, bitmap and journal".
func kindList(kinds []ops.Kind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// Table draws one boxed table the way the stats and diff reports do: the one table style of
// every command (docs/cli.md). right marks the columns to align right (numbers); cells pass
// through the same guards (SafeText, TruncateCell).
func Table(w io.Writer, header []string, rows [][]string, right []bool) error {
	return writeBoxTable(w, header, nil, rows, right)
}

// tablewriterTable is a boxed table (footer: none if empty) drawn by tablewriter: the reference
// writeBoxTable is tested against, and what it falls back to for the tables it does not draw
// itself.
func tablewriterTable(w io.Writer, header, footer []string, rows [][]string, right []bool) error {
	t := table{header: header, rows: rows, footer: footer, right: right}
	return t.tablewriter(w, "table")
}
