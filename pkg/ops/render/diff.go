package render

import (
	"fmt"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"io"
	"strconv"
	"strings"
)

// MaxDiffFileRows bounds the file rows of a human diff report; flagged
// files come first, and json output always has every row.
const MaxDiffFileRows = 50

// DiffFormats lists the formats of a diff report.
var DiffFormats = []string{"table", "markdown", "json"}

func pct(c *float64, a, b int64) string {
	switch {
	case a == b:
		return "="
	case c == nil:
		return "new"
	}
	return strconv.FormatFloat(*c*100, 'f', 1, 64) + "%"
}

func flagText(d *ops.IODiff) string {
	switch {
	case d.Flagged:
		return "!"
	case d.ExplainedBy != "":
		return "see " + d.ExplainedBy
	}
	return ""
}

// Diff renders a diff report in format table, markdown or json.
func Diff(w io.Writer, r *ops.DiffReport, format string) error {
	if err := checkReportFormat(format, DiffFormats...); err != nil {
		return err
	}
	if format == "json" {
		return writeJSON(w, r)
	}
	p := &sectionPrinter{w: w, format: format}

	p.section(fmt.Sprintf("Namespace: %d op(s) only in A, %d only in B, %d order difference(s)",
		len(r.OnlyA), len(r.OnlyB), len(r.Order)))
	if len(r.OnlyA)+len(r.OnlyB) > 0 {
		t := &table{header: []string{"RUN", "OPERATION", "COUNT", "SEQ"}, right: []bool{false, false, true, true}}
		for _, d := range r.OnlyA {
			t.rows = append(t.rows, []string{"only A", d.Op, strconv.Itoa(d.Count), "#" + itoa(d.Seq)})
		}
		for _, d := range r.OnlyB {
			t.rows = append(t.rows, []string{"only B", d.Op, strconv.Itoa(d.Count), "#" + itoa(d.Seq)})
		}
		p.table(t)
	}
	if len(r.Order) > 0 {
		t := &table{header: []string{"FILE", "ORDER IN A", "ORDER IN B"}}
		for _, d := range r.Order {
			t.rows = append(t.rows, []string{ops.QuotePath(d.Path), strings.Join(d.A, "; "), strings.Join(d.B, "; ")})
		}
		p.table(t)
	}

	unexplained := 0
	for _, d := range r.Tree {
		if d.ExplainedBy == "" {
			unexplained++
		}
	}
	p.section(fmt.Sprintf("Final tree: %d name(s) differ, %d of them not explained by a namespace difference",
		len(r.Tree), unexplained))
	if len(r.Tree) > 0 {
		t := &table{header: []string{"PATH", "A", "B", "EXPLAINED BY"}}
		for _, d := range r.Tree {
			t.rows = append(t.rows, []string{ops.QuotePath(d.Path), d.A, d.B, d.ExplainedBy})
		}
		p.table(t)
	}

	flagged := 0
	for i := range r.Files {
		if r.Files[i].Flagged {
			flagged++
		}
	}
	p.section(fmt.Sprintf("File I/O: %d file(s) changed, %d beyond %s", len(r.Files), flagged, thresholdText(r)))
	if len(r.Files) > 0 {
		t := &table{header: []string{"FILE", "READ A", "READ B", "Δ", "WRITTEN A", "WRITTEN B", "Δ", "META A", "META B", "Δ", ""},
			right: []bool{false, true, true, true, true, true, true, true, true, true}}
		// Flagged files first; a long tail of small changes is cut (json has all).
		shown := make([]*ops.IODiff, 0, len(r.Files))
		for pass := 0; pass < 2; pass++ {
			for i := range r.Files {
				if d := &r.Files[i]; d.Flagged == (pass == 0) {
					shown = append(shown, d)
				}
			}
		}
		hidden := 0
		if len(shown) > MaxDiffFileRows {
			hidden = len(shown) - MaxDiffFileRows
			shown = shown[:MaxDiffFileRows]
		}
		for _, d := range shown {
			ma, mb := d.AMeta.Bytes(), d.BMeta.Bytes()
			t.rows = append(t.rows, []string{ops.QuotePath(d.Name),
				ops.HumanBytes(d.A.ReadBytes), ops.HumanBytes(d.B.ReadBytes), pct(d.ReadChange, d.A.ReadBytes, d.B.ReadBytes),
				ops.HumanBytes(d.A.WriteBytes), ops.HumanBytes(d.B.WriteBytes), pct(d.WriteChange, d.A.WriteBytes, d.B.WriteBytes),
				ops.HumanBytes(ma), ops.HumanBytes(mb), pct(d.MetaChange, ma, mb), flagText(d)})
		}
		p.table(t)
		if hidden > 0 && p.err == nil {
			_, p.err = fmt.Fprintf(p.w, "... and %d more file(s) with changes within the threshold (--format json lists all)\n", hidden)
		}
	}

	flagged = 0
	for i := range r.Kinds {
		if r.Kinds[i].Flagged {
			flagged++
		}
	}
	p.section(fmt.Sprintf("I/O by kind: %d kind(s) beyond %s", flagged, thresholdText(r)))
	if len(r.Kinds) > 0 {
		t := &table{header: []string{"KIND", "READ A", "READ B", "Δ", "WRITTEN A", "WRITTEN B", "Δ", ""},
			right: []bool{false, true, true, true, true, true, true}}
		for i := range r.Kinds {
			d := &r.Kinds[i]
			t.rows = append(t.rows, []string{d.Name,
				ops.HumanBytes(d.A.ReadBytes), ops.HumanBytes(d.B.ReadBytes), pct(d.ReadChange, d.A.ReadBytes, d.B.ReadBytes),
				ops.HumanBytes(d.A.WriteBytes), ops.HumanBytes(d.B.WriteBytes), pct(d.WriteChange, d.A.WriteBytes, d.B.WriteBytes),
				flagText(d)})
		}
		p.table(t)
	}

	p.section("Amplification (bytes written per byte of file data written)")
	t := &table{header: []string{"RUN", "FILE DATA", "METADATA", "JOURNAL", "ALL WRITES", "META", "JOURNAL", "TOTAL"},
		right: []bool{false, true, true, true, true, true, true, true}}
	for _, x := range []struct {
		name string
		t    *ops.RunTotals
	}{{"A", &r.A}, {"B", &r.B}} {
		tt := &x.t.Totals
		row := []string{x.name, ops.HumanBytes(tt.FileData.WriteBytes), ops.HumanBytes(tt.Metadata.WriteBytes),
			ops.HumanBytes(tt.Journal.WriteBytes), ops.HumanBytes(tt.All.WriteBytes),
			amp(x.t.MetadataAmplification), amp(x.t.JournalAmplification), amp(x.t.WriteAmplification)}
		if len(r.Missing) > 0 {
			// Unknown, not equal: neither run recorded these kinds.
			row[2] += " (dir, map)"
			row[3], row[5], row[6], row[7] = "not recorded", "n/a", "n/a", "n/a"
		}
		t.rows = append(t.rows, row)
	}
	p.table(t)
	if len(r.Missing) > 0 && p.err == nil {
		_, p.err = fmt.Fprintf(p.w, "Both runs were saved without --metadata: %s I/O was not recorded and is not compared.\n", kindList(r.Missing))
	}

	if p.err != nil {
		return p.err
	}
	var verdict string
	if r.Same() {
		verdict = fmt.Sprintf("\nSame: no difference beyond %s.\n", thresholdText(r))
	} else {
		verdict = fmt.Sprintf("\n%d difference(s) beyond %s.\n", r.Differences, thresholdText(r))
	}
	_, err := io.WriteString(w, verdict)
	return err
}

func thresholdText(r *ops.DiffReport) string {
	s := "threshold " + strconv.FormatFloat(r.Threshold*100, 'f', -1, 64) + "%"
	if r.MinBytes > 0 {
		s += ", min " + ops.HumanBytes(r.MinBytes)
	}
	if r.WritesOnly {
		s += ", writes only"
	}
	return s
}

// sectionPrinter writes titled tables and keeps the first error.
type sectionPrinter struct {
	w      io.Writer
	format string
	err    error
	n      int
}

func (p *sectionPrinter) section(title string) {
	if p.err != nil {
		return
	}
	sep := "\n"
	if p.n == 0 {
		sep = ""
	}
	p.n++
	if p.format == "markdown" {
		_, p.err = fmt.Fprintf(p.w, "%s### %s\n\n", sep, title)
	} else {
		_, p.err = fmt.Fprintf(p.w, "%s%s\n", sep, title)
	}
}

func (p *sectionPrinter) table(t *table) {
	if p.err != nil {
		return
	}
	p.err = t.render(p.w, p.format)
}
