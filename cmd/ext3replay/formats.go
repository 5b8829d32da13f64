package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/opsparquet"
)

// Output formats of analyze beyond ops.NewWriter's: the text time column, The
// Sleuth Kit body file and Parquet (docs/output-formats.md, docs/parquet.md).

// newOpWriter returns analyze's writer for format, and a record tap that tells
// the time-aware formats whether the log has time (the first record says,
// before any op is emitted); it reads the record's flags, never its payload. The
// log's header is read first for its start time; a log on stdin has none here.
func newOpWriter(w io.Writer, format, timeMode, runID, logPath, output string) (ops.Writer, func(*blklog.Record), error) {
	if timeMode != "none" && timeMode != "" && format != "text" {
		return nil, nil, fmt.Errorf("--time is for the text format (jsonl and csv have t, body has times)")
	}
	clock := &ops.Clock{}
	if logPath != "-" && (format == "body" || timeMode == "abs") {
		h, err := readLogHeader(logPath)
		if err != nil {
			return nil, nil, err
		}
		clock.StartUnixNS = h.StartUnixNS
	}
	first := true
	tap := func(rec *blklog.Record) {
		if first {
			first = false
			clock.NoTime = rec.Flags&blklog.FlagHasTime == 0
		}
	}
	switch format {
	case "text", "":
		tw, err := ops.NewTextWriter(w, ops.TextOptions{Time: timeMode, Clock: clock})
		return tw, tap, err
	case "body":
		return ops.NewBodyWriter(w, clock), tap, nil
	case "parquet":
		id := runID
		if id == "" {
			id = defaultRunID(output, logPath)
		}
		return opsparquet.NewWriter(w, id), nil, nil
	}
	if !contains(ops.Formats, format) {
		return nil, nil, fmt.Errorf("unknown output format %q (want %s, body, parquet)", format, strings.Join(ops.Formats, ", "))
	}
	ow, err := ops.NewWriter(w, format)
	return ow, nil, err
}

// defaultRunID names a run after the file it is written to ("runs/a1.parquet" is
// run "a1"), or else after its input; "-" (stdin) gives "stdin".
func defaultRunID(output, input string) string {
	p := output
	if p == "" || p == "-" {
		p = input
	}
	if p == "-" {
		return "stdin"
	}
	base := filepath.Base(p)
	for _, ext := range []string{".zst", ".parquet", ".jsonl", ".log", ".lwlog", ".raw", ".img"} {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}

// writeStatsParquet writes stats' per-file rows as Parquet (--by file only: a
// query engine rolls files up by directory itself).
func writeStatsParquet(w io.Writer, run []ops.Op, o *statsOptions, args []string) error {
	opts := o.opts
	if opts.By != "file" {
		return &exitError{code: exitUsage, err: fmt.Errorf("--format parquet has one row per file: leave out --by dir and group by directory in the query")}
	}
	rows, err := ops.BuildStats(run).Rows(opts)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	id := o.runID
	if id == "" {
		id = defaultRunID(o.output, args[len(args)-1])
	}
	return opsparquet.WriteStats(w, id, rows)
}
