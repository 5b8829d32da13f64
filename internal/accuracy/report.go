package accuracy

import (
	"fmt"
	"io"
	"strings"
)

// Row is one scored analyzer run: a scenario analyzed from one of its logs.
type Row struct {
	Scenario string
	Log      string  // file name of the log analyzed
	NoReads  bool    // the log format cannot hold reads (dm-log-writes): reads are not scored
	Err      error   // analyze failed or its output did not parse
	Result   *Result // nil when Err != nil
}

// WriteTable prints rows as a Markdown table (readable as plain text too).
func WriteTable(w io.Writer, rows []Row) error {
	var b strings.Builder
	b.WriteString("| scenario | log | ns expected | ns reported | precision | recall | writes found | reads found | stray writes (bytes) | unattributed bytes | anomalies |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | %s | error: %s |||||||||\n", r.Scenario, r.Log, oneLine(r.Err.Error()))
			continue
		}
		s := r.Result
		reads := fmt.Sprintf("%d/%d", s.ReadsFound(), len(s.Reads))
		if r.NoReads {
			reads = "n/a"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.2f | %.2f | %d/%d | %s | %d (%d) | %d | %d |\n",
			r.Scenario, r.Log, s.NSExpected, s.NSReported, s.Precision(), s.Recall(),
			s.WritesFound(), len(s.Writes), reads,
			s.StrayWrites, s.StrayWriteBytes, s.UnattributedBytes, s.Anomalies)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteDetails lists, per row, what was missed or wrong (at most max items per list).
func WriteDetails(w io.Writer, rows []Row, max int) error {
	var b strings.Builder
	for _, r := range rows {
		if r.Err != nil || r.Result == nil {
			continue
		}
		s := r.Result
		var lines []string
		add := func(what string, items []string) {
			if len(items) == 0 {
				return
			}
			more := ""
			if len(items) > max {
				more = fmt.Sprintf(" … and %d more", len(items)-max)
				items = items[:max]
			}
			lines = append(lines, fmt.Sprintf("- %s: %s%s", what, strings.Join(items, "; "), more))
		}
		add("missing", keyStrings(s.Missing))
		add("extra", keyStrings(s.Extra))
		add("data writes not found", checkStrings(s.Writes))
		if !r.NoReads {
			add("reads not found", checkStrings(s.Reads))
		}
		add("stray write paths", s.StrayPaths)
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n**%s** (%s)\n\n%s\n", r.Scenario, r.Log, strings.Join(lines, "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func keyStrings(ks []Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = "`" + k.String() + "`"
	}
	return out
}

func checkStrings(cs []DataCheck) []string {
	var out []string
	for _, c := range cs {
		if !c.Found {
			out = append(out, fmt.Sprintf("`%s` needs %d bytes, got %d", c.Expected.Path, c.Need, c.Got))
		}
	}
	return out
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
