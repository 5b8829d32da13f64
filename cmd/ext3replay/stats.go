package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/ops/render"
)

type statsOptions struct {
	opts   ops.StatsOptions
	format string
	output string
	runID  string // parquet run_id
}

func newStatsCmd() *cobra.Command {
	var o statsOptions
	cmd := &cobra.Command{
		Use:   "stats (IMAGE LOG | RUN.jsonl)",
		Short: "Per-file I/O and history of a run, with totals and write amplification",
		Long: `stats reports, for every file a run touched, its reads and writes (count
and bytes), its metadata I/O, when it was first and last touched, the
namespace operations it went through and how it ended (exists, deleted,
moved to ...). A totals table splits all I/O into file data, metadata,
journal and unattributed bytes and gives the run's write amplification.

The run is either analyzed from IMAGE and LOG, or read from the jsonl that
"analyze --format jsonl" saved ("-" reads it from stdin).`,
		Example: `  ext3replay stats disk.img io.log.zst
  ext3replay stats run.jsonl --sort writes --top 10
  ext3replay stats run.jsonl --by dir --depth 2 --format markdown
  ext3replay stats run.jsonl --prefix /home/debian --glob '*.txt' --format csv`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStats(cmd, args, &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.opts.By, "by", "file", "rows per file or per directory: file|dir")
	f.IntVar(&o.opts.Depth, "depth", 1, "with --by dir: directory levels kept (0 = everything under /)")
	f.StringVar(&o.opts.Sort, "sort", "path", "order rows by "+strings.Join(ops.SortKeys, "|")+" (bytes: largest first)")
	f.IntVar(&o.opts.Top, "top", 0, "show only the first N rows after sorting (0 = all)")
	f.StringVar(&o.opts.Prefix, "prefix", "", "only files at or under this path")
	f.StringVar(&o.opts.Glob, "glob", "", "only files whose path (or base name, if the pattern has no /) matches")
	f.StringVar(&o.format, "format", "table", "output format: "+strings.Join(render.StatsFormats, "|")+"|parquet")
	f.StringVarP(&o.output, "output", "o", "-", "write the report to this file")
	f.StringVar(&o.runID, "run-id", "", "parquet format: the run_id column (default: the output file's name without extension, else the run's)")
	return cmd
}

func runStats(cmd *cobra.Command, args []string, o *statsOptions) error {
	o.format = humanFormat(o.format, "table")
	opts := o.opts
	if err := opts.Validate(); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if !contains(render.StatsFormats, o.format) && o.format != "parquet" {
		return &exitError{code: exitUsage, err: fmt.Errorf("--format %q: want %s, parquet", o.format, strings.Join(render.StatsFormats, ", "))}
	}
	var saved *ops.Run
	var err error
	if len(args) == 2 {
		saved, err = analyzedRun(args[0], args[1], cmd.ErrOrStderr())
	} else {
		saved, err = readRun(args[0])
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	run := saved.Ops
	missing := saved.Missing()
	if o.format != "table" && o.format != "markdown" {
		missingNote(cmd.ErrOrStderr(), args[0], missing)
	}
	err = withOutput(o.output, cmd.OutOrStdout(), func(w io.Writer) error {
		if o.format == "parquet" {
			return writeStatsParquet(w, run, o, args)
		}
		s := ops.BuildStats(run)
		s.Missing = missing
		return render.Stats(w, s, o.format, opts)
	})
	return outputError(err)
}

// outputError gives a failure to write a report the internal-error exit
// code, unless it already has one.
func outputError(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitInternal, err: err}
}

// readRun reads a saved jsonl run and its header; "-" is stdin.
func readRun(path string) (*ops.Run, error) {
	if path == "-" {
		return ops.ReadRun(os.Stdin, "stdin")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ops.ReadRun(f, path)
}

// readRuns reads two saved runs side by side (decoding 90,000 ops takes about 0.1 s), and
// returns the first error in argument order.
func readRuns(paths []string) ([2]*ops.Run, error) {
	var runs [2]*ops.Run
	var errs [2]error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runs[1], errs[1] = readRun(paths[1])
	}()
	runs[0], errs[0] = readRun(paths[0])
	<-done
	if errs[0] != nil {
		return runs, errs[0]
	}
	return runs, errs[1]
}

// analyzedRun is a run analyzed here from IMAGE and LOG with --metadata: nothing is missing. A
// progress bar shows on stderr when it is a terminal and the analysis takes a while.
func analyzedRun(imagePath, logPath string, stderr io.Writer) (*ops.Run, error) {
	o, err := analyzeToOps(imagePath, logPath, true, newProgress(stderr, false, "analyzing "+filepath.Base(logPath), -1, true))
	h := runHeader(imagePath, logPath, true)
	return &ops.Run{Header: &h, Ops: o}, err
}

// missingNote says on stderr which kinds a saved run lacks, for the formats that cannot say
// it in their own output.
func missingNote(stderr io.Writer, name string, missing []ops.Kind) {
	if len(missing) == 0 {
		return
	}
	var k []string
	for _, m := range missing {
		k = append(k, string(m))
	}
	fmt.Fprintf(stderr, "ext3replay: note: %s was saved without --metadata: it has no %s I/O, so its totals count only what was recorded and its amplification is unknown\n",
		name, strings.Join(k, ", "))
}

// withOutput runs fn on stdout ("-" or "") or on a new file, which it
// closes, reporting a failed close.
func withOutput(path string, stdout io.Writer, fn func(io.Writer) error) error {
	if path == "" || path == "-" {
		return fn(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
