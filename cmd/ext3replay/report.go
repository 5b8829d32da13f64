package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/ops/render"
	"github.com/ext3replay/ext3replay/pkg/report"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

type reportOptions struct {
	output string
	title  string
}

func newReportCmd() *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "report (IMAGE LOG | RUN.jsonl) -o run.html",
		Short: "Draw a run as one self-contained HTML page (timeline, sector plot, volumes)",
		Long: `report draws a run as one HTML file that works offline (no network, all of it
inline): a timeline with one lane per file or directory (collapsible by
directory), namespace operations as marks and reads and writes as bars sized by
their bytes, flushes and journal commits on the time axis; a sector x time plot
coloured by the kind of block (data, directory, inode table, bitmaps, journal,
unowned) with the path under the pointer; bytes read and written per directory;
the run's summary and anomalies; and a filter by path.

From IMAGE LOG the run is analyzed here with --metadata, and flushes and
journal commits are taken from the log. A saved jsonl has no flushes or
commits, and only one saved with "analyze --format jsonl --metadata" has the
inode-table, bitmap and journal I/O for a complete sector plot; the page says
what is missing.`,
		Example: `  ext3replay report disk.img io.log.zst -o run.html
  ext3replay analyze --format jsonl --metadata -o run.jsonl disk.img io.log.zst
  ext3replay report run.jsonl -o run.html`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(cmd, args, &o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "-", "write the page to this file (- for stdout)")
	f.StringVar(&o.title, "title", "", "page title (default: the run's file name)")
	return cmd
}

func runReport(cmd *cobra.Command, args []string, o *reportOptions) error {
	var run report.Run
	var err error
	if len(args) == 2 {
		run, err = reportFromLog(args[0], args[1], newProgress(cmd.ErrOrStderr(), false, "analyzing", -1, true))
	} else {
		run.Name = args[0]
		var saved *ops.Run
		if saved, err = readRun(args[0]); saved != nil {
			run.Ops = saved.Ops
		}
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	title := o.title
	if title == "" {
		title = "ext3replay report: " + filepath.Base(run.Name)
	}
	err = withOutput(o.output, cmd.OutOrStdout(), func(w io.Writer) error {
		return report.Write(w, []report.Run{run}, report.Options{Title: title})
	})
	return outputError(err)
}

// reportFromLog analyzes a log with --metadata (the sector plot wants every kind of
// block) and collects its flushes and journal commits on the way.
func reportFromLog(imagePath, logPath string, prog *progress) (report.Run, error) {
	run := report.Run{Name: logPath, FromLog: true}
	if logPath != "-" {
		if h, err := readLogHeader(logPath); err == nil {
			run.StartUnixNS = h.StartUnixNS
		}
	}
	var cand []report.Event
	var candSector []uint64
	tap := func(rec *blklog.Record) {
		ev := report.Event{Seq: rec.Index}
		if rec.Flags&blklog.FlagHasTime != 0 {
			ev.T = float64(rec.TimeNS) / 1e9
		}
		switch rec.Type {
		case blklog.TypeFlush:
			run.Flushes = append(run.Flushes, ev)
		case blklog.TypeWrite:
			if s, ok := commitSector(rec); ok {
				cand = append(cand, ev)
				candSector = append(candSector, s)
			}
		}
	}
	st, err := runAnalyze(imagePath, logPath, resolver.Options{Metadata: true}, func(op *ops.Op) error {
		run.Ops = append(run.Ops, *op)
		return nil
	}, prog, tap, func(o *analysis.Options) { o.TapReadsKept = true }) // commitSector skips what was left out
	if err == nil && st.Damage != nil {
		err = st.Damage
	}
	if err != nil {
		return run, err
	}
	run.Commits = inJournal(run.Ops, cand, candSector)
	var sum strings.Builder
	printSummary(&sum, st)
	run.Summary = strings.Split(strings.TrimRight(sum.String(), "\n"), "\n")
	return run, nil
}

// commitSector finds a jbd2 commit block in a write: a block (checked at every 1 KiB,
// the smallest block size) starting with the journal magic and the commit type. It
// returns the sector of the block. File data can look like that too; inJournal keeps
// only those analyze attributed to the journal. Blocks the payload filter left out are
// plain file data, never a commit block, and are not looked at.
func commitSector(rec *blklog.Record) (uint64, bool) {
	for off := 0; off+ext3fs.JournalHeaderSize <= len(rec.Data); off += 1024 {
		if rec.Omitted.Has(off) {
			continue
		}
		if binary.BigEndian.Uint32(rec.Data[off:]) == ext3fs.JournalMagic &&
			binary.BigEndian.Uint32(rec.Data[off+4:]) == ext3fs.JournalCommitBlock {
			return rec.Sector + uint64(off/blklog.SectorSize), true
		}
	}
	return 0, false
}

// inJournal keeps the candidate commits whose sector lies in a write analyze
// reported as journal I/O.
func inJournal(run []ops.Op, cand []report.Event, sectors []uint64) []report.Event {
	type span struct{ a, b uint64 }
	var js []span
	for i := range run {
		if run[i].Op == ops.Write && run[i].Kind == ops.KindJournal {
			js = append(js, span{run[i].Sector, run[i].Sector + uint64(run[i].Bytes)/blklog.SectorSize})
		}
	}
	sort.Slice(js, func(i, j int) bool { return js[i].a < js[j].a })
	// The union of the spans (the journal is rewritten, so they overlap), then one
	// binary search per candidate.
	var u []span
	for _, x := range js {
		if n := len(u); n > 0 && x.a <= u[n-1].b {
			u[n-1].b = max(u[n-1].b, x.b)
			continue
		}
		u = append(u, x)
	}
	var out []report.Event
	for i, s := range sectors {
		k := sort.Search(len(u), func(j int) bool { return u[j].a > s })
		if k > 0 && s < u[k-1].b {
			out = append(out, cand[i])
		}
	}
	return out
}

// readLogHeader reads only the header of a log file.
func readLogHeader(path string) (blklog.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return blklog.Header{}, err
	}
	defer f.Close()
	lr, err := blklog.NewReader(f, path)
	if err != nil {
		return blklog.Header{}, fmt.Errorf("%s: %w", path, err)
	}
	defer lr.Close()
	return lr.Header(), nil
}

// writeDiffHTML draws two runs side by side on the same axes, with diff's
// table under them.
func writeDiffHTML(w io.Writer, names []string, runs [2][]ops.Op, rep *ops.DiffReport) error {
	var text strings.Builder
	if err := render.Diff(&text, rep, "table"); err != nil {
		return err
	}
	rs := []report.Run{{Name: "A: " + names[0], Ops: runs[0]}, {Name: "B: " + names[1], Ops: runs[1]}}
	return report.Write(w, rs, report.Options{Title: "ext3replay diff: " + filepath.Base(names[0]) + " vs " + filepath.Base(names[1]), Text: text.String()})
}
