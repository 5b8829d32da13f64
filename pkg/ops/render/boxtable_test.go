package render

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
)

// boxPieces are the fragments random cells are made of: plain ASCII, spaces (inner, leading,
// trailing), wide CJK, combining marks, emoji, zero-width and control characters, invalid UTF-8,
// and the box-drawing characters of the table itself.
var boxPieces = []string{
	"", "a", "inode", "12345", "/top00/dir000/file-000000.dat", " ", "  ", "-", "->", "[1,2]",
	"日本", "語", "e\u0301", "\u200b", "😀", "\t", "\n", "\x1b[31m", "\xff", "│", "─", "ß", "Ω",
	"\u00a0", "\u3000", strings.Repeat("x", 300), strings.Repeat("日", 100),
}

func randomBoxCell(r *rand.Rand) string {
	var b strings.Builder
	for n := r.Intn(4); n > 0; n-- {
		b.WriteString(boxPieces[r.Intn(len(boxPieces))])
	}
	return b.String()
}

// TestBoxTableMatchesRender: writeBoxTable draws every table byte for byte as tablewriter
// does: random cells of every kind, random alignments, 1 to 8 columns.
func TestBoxTableMatchesRender(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for n := 0; n < 3000; n++ {
		ncol := 1 + r.Intn(8)
		header := make([]string, ncol)
		right := make([]bool, r.Intn(ncol+2)) // shorter or longer than the header, too
		for i := range header {
			header[i] = randomBoxCell(r)
		}
		for i := range right {
			right[i] = r.Intn(2) == 0
		}
		rows := make([][]string, r.Intn(6))
		for i := range rows {
			rows[i] = make([]string, ncol)
			for j := range rows[i] {
				rows[i][j] = randomBoxCell(r)
			}
		}
		var footer []string
		if r.Intn(2) == 0 {
			footer = make([]string, ncol)
			for j := range footer {
				footer[j] = randomBoxCell(r)
			}
		}
		if want, got := bothTables(t, header, footer, rows, right); got != want {
			t.Fatalf("table %d: header %q rows %q footer %q right %v:\ntablewriter:\n%s\nwriteBoxTable:\n%s", n, header, rows, footer, right, want, got)
		}
	}
}

// TestBoxTableInspectShape: the table inspect draws, with its real columns and alignments.
func TestBoxTableInspectShape(t *testing.T) {
	header := []string{"INODE", "TYPE", "MODE", "LINKS", "SIZE", "BLOCKS", "PATH"}
	right := []bool{true, false, false, true, true, true, false}
	rows := [][]string{
		{"2", "dir", "0755", "3", "1024", "1", "/"},
		{"12", "dir(htree)", "0755", "2", "12288", "12", "/d"},
		{"13", "symlink", "0777", "1", "7", "0", "/d/l -> /target"},
		{"14", "char", "0644", "1", "0", "0", "/dev/null [1,3]"},
		{"1234567", "file", "0644", "2", "123456789012", "30145", `"/with space"`},
	}
	if want, got := bothTables(t, header, nil, rows, right); got != want {
		t.Fatalf("tablewriter:\n%s\nwriteBoxTable:\n%s", want, got)
	}
}

// bothTables draws the table with tablewriter (the reference) and with writeBoxTable.
func bothTables(t *testing.T, header, footer []string, rows [][]string, right []bool) (want, got string) {
	t.Helper()
	var w, g bytes.Buffer
	if err := tablewriterTable(&w, header, footer, rows, right); err != nil {
		t.Fatal(err)
	}
	if err := writeBoxTable(&g, header, footer, rows, right); err != nil {
		t.Fatal(err)
	}
	return w.String(), g.String()
}
