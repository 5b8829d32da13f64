package render

import (
	"bufio"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter/pkg/twwidth"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// writeBoxTable writes exactly what tablewriter writes for Table (its light box style, header
// left-aligned, the right columns right-aligned, every cell through ops.SafeText and
// ops.TruncateCell), but computes the column widths once and writes each row directly:
// tablewriter costs about 25 µs a row, seconds for inspect's 100,000-file listing.
// Tables it has not been checked to draw identically (no rows, East Asian width mode, where
// tablewriter also narrows its own borders) go to tablewriter; boxtable_test.go compares the
// two on random tables.
//
// footer, when not empty, is a last row under a rule of its own (the stats reports' totals).
func writeBoxTable(w io.Writer, header, footer []string, rows [][]string, right []bool) error {
	for _, r := range rows {
		if len(r) != len(header) {
			return tablewriterTable(w, header, footer, rows, right)
		}
	}
	return boxTable(w, header, footer, right, len(rows), func(i int, cells []string) { copy(cells, rows[i]) })
}

// TableRows is Table for n rows made by fill (called twice per row: once to measure, once to
// write), so that a 100,000-row table is never held in memory as cells.
func TableRows(w io.Writer, header []string, right []bool, n int, fill func(i int, cells []string)) error {
	return boxTable(w, header, nil, right, n, fill)
}

// boxTable is TableRows with an optional footer.
func boxTable(w io.Writer, header, footer []string, right []bool, n int, fill func(i int, cells []string)) error {
	ncol := len(header)
	cells := make([]string, ncol)
	if n == 0 || ncol == 0 || twwidth.IsEastAsian() || (len(footer) > 0 && len(footer) != ncol) {
		return tablewriterTable(w, header, footer, materialize(n, ncol, fill), right)
	}
	widths := make([]int, ncol)
	for i, h := range header {
		_, widths[i] = boxCell(h)
	}
	for k := 0; k < n; k++ {
		fill(k, cells)
		for i, c := range cells {
			_, wd := boxCell(c)
			widths[i] = max(widths[i], wd)
		}
	}
	for i, c := range footer {
		_, wd := boxCell(c)
		widths[i] = max(widths[i], wd)
	}
	for _, wd := range widths {
		if wd == 0 {
			// An empty column: tablewriter's own rules for it are not worth copying.
			return tablewriterTable(w, header, footer, materialize(n, ncol, fill), right)
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	rule := func(l, m, r string) {
		bw.WriteString(l)
		for i, wd := range widths {
			if i > 0 {
				bw.WriteString(m)
			}
			for k := 0; k < wd+2; k++ {
				bw.WriteString("─")
			}
		}
		bw.WriteString(r)
		bw.WriteByte('\n')
	}
	line := func(cs []string, alignRight bool) {
		for i, c := range cs {
			text, wd := boxCell(c)
			bw.WriteString("│ ")
			pad := widths[i] - wd
			rightHere := alignRight && i < len(right) && right[i]
			if rightHere {
				writeSpaces(bw, pad)
			}
			bw.WriteString(text)
			if !rightHere {
				writeSpaces(bw, pad)
			}
			bw.WriteByte(' ')
		}
		bw.WriteString("│\n")
	}
	rule("┌", "┬", "┐")
	line(header, false)
	rule("├", "┼", "┤")
	for k := 0; k < n; k++ {
		fill(k, cells)
		line(cells, true)
	}
	if len(footer) > 0 {
		rule("├", "┼", "┤")
		line(footer, true)
	}
	rule("└", "┴", "┘")
	return bw.Flush()
}

func materialize(n, ncol int, fill func(i int, cells []string)) [][]string {
	rows := make([][]string, n)
	for k := range rows {
		rows[k] = make([]string, ncol)
		fill(k, rows[k])
	}
	return rows
}

// boxCell prepares a cell as Table does (safe, truncated, trimmed as tablewriter trims)
// and measures it: printable ASCII is one column a byte, anything else is measured by
// tablewriter's own width function.
func boxCell(s string) (string, int) {
	ascii := len(s) <= ops.MaxCellBytes && (len(s) == 0 || s[0] != ' ' && s[len(s)-1] != ' ')
	for k := 0; ascii && k < len(s); k++ {
		ascii = s[k] >= 0x20 && s[k] < 0x7f
	}
	if ascii {
		// What SafeText, TruncateCell and TrimSpace leave as it is: most cells, and the
		// rune-by-rune SafeText was a tenth of inspect's time.
		return s, len(s)
	}
	s = strings.TrimSpace(ops.TruncateCell(ops.SafeText(s)))
	for k := 0; k < len(s); k++ {
		if c := s[k]; c < 0x20 || c >= 0x7f {
			return s, twwidth.Width(s)
		}
	}
	return s, len(s)
}

const boxSpaces = "                                                                "

func writeSpaces(bw *bufio.Writer, n int) {
	for n > len(boxSpaces) {
		bw.WriteString(boxSpaces)
		n -= len(boxSpaces)
	}
	bw.WriteString(boxSpaces[:n])
}
