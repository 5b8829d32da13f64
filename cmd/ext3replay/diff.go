package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/ops/render"
)

type diffOptions struct {
	image     string
	threshold string
	minBytes  sizeValue
	writes    bool
	format    string
	output    string
}

func newDiffCmd() *cobra.Command {
	var o diffOptions
	cmd := &cobra.Command{
		Use:   "diff (A.jsonl B.jsonl | --image BASE LOG_A LOG_B)",
		Short: "Compare two runs of a workload: namespace, final tree and I/O volumes",
		Long: `diff compares run A (the reference) with run B of the same workload from
the same starting image, for example the same script on two kernels, or on
ext3 data=ordered and data=journal. It reports:

  - namespace operations found in one run only, and files whose operations
    came in a different order;
  - names whose final state (existence, type, size) differs;
  - per-file and per-kind I/O volumes, flagged when they change by more
    than --threshold;
  - the metadata and journal amplification of each run.

Block numbers, times, record numbers and the order of operations on
different files are ignored. Runs are saved jsonl from "analyze --format
jsonl", or two logs analyzed from one starting image with --image.

Exit status: 0 same, 1 differences beyond the thresholds, 2 usage or input
error.`,
		Example: `  ext3replay diff ordered.jsonl journal.jsonl
  ext3replay diff --threshold 5% --format json a.jsonl b.jsonl
  ext3replay diff --image base.img linux-6.1.log.zst linux-6.12.log.zst
  ext3replay diff --writes-only --image disk.img io.log.zst writes.lwlog.zst`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd, args, &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.image, "image", "", "starting image: the two arguments are then logs recorded from it")
	f.StringVar(&o.threshold, "threshold", "20%", "flag I/O volume changes beyond this relative change (20% or 0.2)")
	f.Var(&o.minBytes, "min-bytes", "ignore I/O volume changes of at most this many bytes (4096, 64K, 1.5M)")
	f.BoolVar(&o.writes, "writes-only", false, "compare writes only (for a log without reads, e.g. dm-log-writes)")
	f.StringVar(&o.format, "format", "table", "output format: "+strings.Join(render.DiffFormats, "|")+"|html")
	f.StringVarP(&o.output, "output", "o", "-", "write the report to this file")
	return cmd
}

func runDiff(cmd *cobra.Command, args []string, o *diffOptions) error {
	o.format = humanFormat(o.format, "table")
	if len(args) != 2 {
		return &exitError{code: exitUsage, err: fmt.Errorf("diff wants two runs, got %d argument(s); see --help", len(args))}
	}
	th, err := ops.ParseThreshold(o.threshold)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("--threshold: %w", err)}
	}
	if o.minBytes < 0 {
		return &exitError{code: exitUsage, err: fmt.Errorf("--min-bytes %d: must be >= 0", o.minBytes)}
	}
	if !contains(render.DiffFormats, o.format) && o.format != "html" {
		return &exitError{code: exitUsage, err: fmt.Errorf("--format %q: want %s, html", o.format, strings.Join(render.DiffFormats, ", "))}
	}
	if args[0] == "-" && args[1] == "-" {
		return &exitError{code: exitUsage, err: fmt.Errorf("only one of the runs can be read from stdin")}
	}
	var runs [2][]ops.Op
	var saved [2]*ops.Run
	if o.image != "" {
		for i, a := range args {
			if saved[i], err = analyzedRun(o.image, a, cmd.ErrOrStderr()); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
		}
	} else if saved, err = readRuns(args); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	for i := range saved {
		runs[i] = saved[i].Ops
	}
	missing, err := comparable(args, saved, cmd.ErrOrStderr())
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	rep, err := ops.Diff(runs[0], runs[1], ops.DiffOptions{Threshold: th, MinBytes: int64(o.minBytes), WritesOnly: o.writes})
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	rep.Missing = missing
	err = withOutput(o.output, cmd.OutOrStdout(), func(w io.Writer) error {
		if o.format == "html" {
			return writeDiffHTML(w, args, runs, rep)
		}
		return render.Diff(w, rep, o.format)
	})
	if err != nil {
		return outputError(err)
	}
	if !rep.Same() {
		return &exitError{code: exitDiffers}
	}
	return nil
}

// comparable refuses two runs that do not hold the same kinds of I/O (one saved with
// --metadata, one without: every metadata and journal byte would read as a difference, or,
// both without, as equal zeros), and notes on stderr runs written by different versions. It
// returns the kinds neither run holds.
func comparable(names []string, runs [2]*ops.Run, stderr io.Writer) ([]ops.Kind, error) {
	ma, mb := runs[0].Missing(), runs[1].Missing()
	if len(ma) != len(mb) {
		with, without := names[0], names[1]
		if len(ma) > 0 {
			with, without = without, with
		}
		return nil, fmt.Errorf("%s holds metadata and journal I/O and %s does not (saved without --metadata): they cannot be compared; save both with analyze --format jsonl --metadata, or compare the logs with --image", with, without)
	}
	if ha, hb := runs[0].Header, runs[1].Header; ha != nil && hb != nil && ha.Version != hb.Version {
		fmt.Fprintf(stderr, "ext3replay: note: %s was written by ext3replay %s and %s by %s\n", names[0], ha.Version, names[1], hb.Version)
	}
	return ma, nil
}
