package main

import (
	"bufio"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter/pkg/twwidth"

	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/ops/render"
)

// writeBoxTable writes exactly what render.Table writes (tablewriter's light box style, header
// left-aligned, the right columns right-aligned, every cell through ops.SafeText and
// ops.TruncateCell), but computes the column widths once and writes each row directly:
// tablewriter costs about 25 µs a row, seconds for inspect's 100,000-file listing.
// Tables it has not been checked to draw identically (no rows, East Asian width mode, where
// tablewriter also narrows its own borders) go to render.Table; boxtable_test.go compares the
// two on random tables.
func writeBoxTable(w io.Writer, header []string, rows [][]string, right []bool) error {
	if len(rows) == 0 || len(header) == 0 || twwidth.IsEastAsian() {
		return render.Table(w, header, rows, right)
	}
	ncol := len(header)
	for _, r := range rows {
		if len(r) != ncol {
			return render.Table(w, header, rows, right)
		}
	}
	hdr := boxCells(header)
	widths := make([]int, ncol)
	for i, c := range hdr {
		widths[i] = c.width
	}
	cells := make([]boxCell, 0, len(rows)*ncol)
	for _, r := range rows {
		for i, c := range boxCells(r) {
			widths[i] = max(widths[i], c.width)
			cells = append(cells, c)
		}
	}
	for _, wd := range widths {
		if wd == 0 {
			// An empty column: tablewriter's own rules for it are not worth copying.
			return render.Table(w, header, rows, right)
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
	line := func(cs []boxCell, alignRight bool) {
		for i, c := range cs {
			bw.WriteString("│ ")
			pad := widths[i] - c.width
			rightHere := alignRight && i < len(right) && right[i]
			if rightHere {
				writeSpaces(bw, pad)
			}
			bw.WriteString(c.text)
			if !rightHere {
				writeSpaces(bw, pad)
			}
			bw.WriteByte(' ')
		}
		bw.WriteString("│\n")
	}
	rule("┌", "┬", "┐")
	line(hdr, false)
	rule("├", "┼", "┤")
	for k := 0; k < len(rows); k++ {
		line(cells[k*ncol:(k+1)*ncol], true)
	}
	rule("└", "┴", "┘")
	return bw.Flush()
}

type boxCell struct {
	text  string
	width int
}

// boxCells prepares cells as render.Table does (safe, truncated, trimmed as tablewriter trims)
// and measures them: printable ASCII is one column a byte, anything else is measured by
// tablewriter's own width function.
func boxCells(in []string) []boxCell {
	out := make([]boxCell, len(in))
	for i, s := range in {
		s = strings.TrimSpace(ops.TruncateCell(ops.SafeText(s)))
		out[i] = boxCell{s, len(s)}
		for k := 0; k < len(s); k++ {
			if c := s[k]; c < 0x20 || c >= 0x7f {
				out[i].width = twwidth.Width(s)
				break
			}
		}
	}
	return out
}

const boxSpaces = "                                                                "

func writeSpaces(bw *bufio.Writer, n int) {
	for n > len(boxSpaces) {
		bw.WriteString(boxSpaces)
		n -= len(boxSpaces)
	}
	bw.WriteString(boxSpaces[:n])
}
