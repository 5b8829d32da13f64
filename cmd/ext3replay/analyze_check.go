package main

import (
	"fmt"
	"io"
	"os"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/check"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/partition"
)

// analyzeCheck runs check alongside analyze (analyze --check): each record goes to a
// check.Checker as well, and each finding becomes an anomaly op whose seq is the record whose
// check found it and whose reason starts with "check " (docs/output-formats.md). Findings are
// held until the resolver's ops reach their seq, so seq never decreases in the stream.
type analyzeCheck struct {
	c       *check.Checker
	img     io.Closer
	again   *blklog.PayloadSource // the log read again for the checker (nil: not a file)
	emit    func(*ops.Op) error
	tap     func(*blklog.Record)
	pending []check.Finding
	err     error // the first record check could not take; checking stopped there
	n       int
}

// withCheck wraps analyze's emit and tap for --check. The image is opened a second time: the
// checker keeps its own model of the disk. A log file (logPath not "-") is opened again when the
// checker needs a plain data block it did not keep (check.Options.Refetch).
func withCheck(imagePath, logPath string, emit func(*ops.Op) error, tap func(*blklog.Record)) (*analyzeCheck, error) {
	img, err := openImage(imagePath)
	if err != nil {
		return nil, err
	}
	if tab, err := partition.Read(img, img.Size()); err == nil && tab.Scheme != partition.None {
		img.Close()
		return nil, fmt.Errorf("%s: --check is for a bare file system; this disk has a %s partition table (check --partition N IMAGE LOG checks one partition)", imagePath, tab.Scheme)
	}
	var opt check.Options
	again := logAgain(logPath)
	if again != nil {
		opt.Refetch = again.Record
	}
	c, err := check.NewWith(img, img.Size(), opt)
	if err != nil {
		img.Close()
		return nil, err
	}
	return &analyzeCheck{c: c, img: img, again: again, emit: emit, tap: tap}, nil
}

// logAgain is the log at path read again, record by record, for a checker that keeps no copy of
// plain file data (check.Options.Refetch); nil when the log cannot be read again (standard input,
// a pipe).
func logAgain(path string) *blklog.PayloadSource {
	if fi, err := os.Stat(path); path == "-" || err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	return blklog.NewPayloadSource(func() (blklog.Reader, error) { return blklog.Open(path) })
}

// Tap sees every record before the resolver does.
func (a *analyzeCheck) Tap(rec *blklog.Record) {
	if a.tap != nil {
		a.tap(rec)
	}
	if a.err != nil {
		return
	}
	if err := a.c.Record(rec); err != nil {
		a.err = err
		return
	}
	a.pending = append(a.pending, a.c.Pending()...)
}

// Emit writes the findings whose seq the stream has reached, then op.
func (a *analyzeCheck) Emit(op *ops.Op) error {
	if err := a.release(op.Seq); err != nil {
		return err
	}
	return a.emit(op)
}

func (a *analyzeCheck) release(upTo int64) error {
	k := 0
	for ; k < len(a.pending) && a.pending[k].AtSeq <= upTo; k++ {
		if err := a.emit(findingOp(&a.pending[k])); err != nil {
			return err
		}
		a.n++
	}
	a.pending = a.pending[k:]
	return nil
}

// Finish checks the end of the log and writes what is left; a record check could not take is
// a warning on w.
func (a *analyzeCheck) Finish(w io.Writer) error {
	defer a.img.Close()
	if a.again != nil {
		defer a.again.Close()
	}
	if a.err == nil {
		a.c.Finish()
		a.pending = append(a.pending, a.c.Pending()...)
	}
	if err := a.release(1<<63 - 1); err != nil {
		return err
	}
	if a.err != nil {
		fmt.Fprintf(w, "ext3replay analyze: warning: --check stopped: %v\n", a.err)
	}
	return nil
}

// Summary is the line added to analyze's summary.
func (a *analyzeCheck) Summary(w io.Writer) {
	fmt.Fprintf(w, "  check: %d consistency points checked, %d findings (anomalies starting \"check \")\n", a.c.Checks(), a.n)
	if n, skipped := a.c.FastCommits(); n+skipped > 0 {
		fmt.Fprintf(w, "  check: %d of them at fast commits; %d not checked (fast commits that cannot be replayed)\n", n, skipped)
	}
	for _, e := range a.c.Errors() {
		fmt.Fprintf(w, "  check: warning: %s\n", e)
	}
}

// findingOp is a finding as an op: an anomaly at the record whose check found it, on the path
// and inode the finding names.
func findingOp(f *check.Finding) *ops.Op {
	return &ops.Op{Seq: max(f.AtSeq, 0), T: f.Time, Op: ops.Anomaly, Path: f.Path, Ino: f.Inode,
		Reason: fmt.Sprintf("check %s: %s [%s]; introduced by record %d", f.Kind, f.Msg, f.Struct, f.Seq)}
}
