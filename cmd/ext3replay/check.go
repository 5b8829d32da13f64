package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/check"
)

// Exit status 1 of check: the file system broke somewhere in the log (docs/check.md).
const exitFindings = 1

type checkOptions struct {
	format    string
	partition int
	output    string
}

func newCheckCmd() *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check IMAGE LOG",
		Short: "Find the request at which a driver broke the file system",
		Long: `check replays LOG against IMAGE as journal recovery would see the disk, and
runs e2fsck's checks (bitmaps against owners, link counts against names,
directory structure, metadata checksums, group descriptor counts) at every
point where the guest promises a consistent file system: after each committed
jbd2 transaction, and at a flush (or the end of the log) when a journal-less
driver has marked the file system clean. Each problem is reported once, with
the request that introduced it, the structure, the path where there is one,
and whether it was still there at the end.

Exit status: 0 clean, 1 findings, 2 error, 4 a damaged log (findings before the
damage were printed).`,
		Example: `  ext3replay check disk.img io.log.zst
  ext3replay check disk.img io.log.zst --format jsonl
  ext3replay check --partition 2 gpt-disk.img io.log.zst`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return runCheck(cmd, args, &o) },
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text|jsonl")
	cmd.Flags().IntVar(&o.partition, "partition", 0, "partitioned disk: check partition N's file system (the log's requests inside it)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "-", "write the findings to this file (- for stdout)")
	return cmd
}

func runCheck(cmd *cobra.Command, args []string, o *checkOptions) (err error) {
	if o.format != "text" && o.format != "jsonl" {
		return &exitError{code: exitUsage, err: fmt.Errorf("--format %q: want text or jsonl", o.format)}
	}
	img, err := openImageProgress(args[0], newProgress(cmd.ErrOrStderr(), false, "decompressing "+filepath.Base(args[0]), -1, true))
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	defer img.Close()
	prog := newProgress(cmd.ErrOrStderr(), false, "checking", -1, true)
	lr, err := openLogProgress(args[1], prog)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	defer lr.Close()
	dev, size, name, err := partitionDevice(img, args[0], o.partition)
	if err != nil {
		if pd, ok := asPartitioned(err); ok {
			return &exitError{code: exitUsage, err: fmt.Errorf("check: %w", pd)}
		}
		return err
	}
	var log blklog.Reader = lr
	if o.partition != 0 {
		p, err := partitionOf(img, o.partition)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		log = analysis.PartitionLog(lr, p)
	}
	var opt check.Options
	// A log that can be read again (whole: not a partition's part): the checker keeps no copy of
	// plain file data.
	if again := logAgain(args[1]); again != nil && o.partition == 0 {
		defer again.Close()
		opt.Refetch = again.Record
	}
	c, findings, err := check.RunWith(dev, size, log, opt)
	if c == nil && name != args[0] {
		err = fmt.Errorf("%s: %w", name, err)
	}
	prog.Done() // before the findings reach a terminal the bar is drawn on
	if c == nil {
		return &exitError{code: exitUsage, err: err}
	}
	dst := cmd.OutOrStdout()
	if o.output != "" && o.output != "-" {
		f, err := os.Create(o.output)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		defer func() {
			// A close that fails (a full disk, NFS) loses findings: exit 3 unless already worse.
			if cerr := f.Close(); cerr != nil {
				var ee *exitError
				if err == nil || errors.As(err, &ee) && ee.code == exitFindings {
					err = &exitError{code: exitInternal, err: cerr}
				}
			}
		}()
		dst = f
	}
	out := &outWriter{w: dst}
	// A damaged log: what was found before the damage, then the error.
	writeFindings(out, findings, o.format)
	if err != nil {
		var de *blklog.DamageError
		if errors.As(err, &de) {
			return &exitError{code: exitDamaged, err: err}
		}
		return &exitError{code: exitUsage, err: err}
	}
	if o.format == "text" {
		fmt.Fprintf(out, "ext3replay check: %d consistency points checked, %d findings\n", c.Checks(), len(findings))
		if n, skipped := c.FastCommits(); n+skipped > 0 {
			fmt.Fprintf(out, "ext3replay check: %d of them at fast commits; %d not checked (fast commits that cannot be replayed: warnings)\n", n, skipped)
		}
	}
	for _, e := range c.Errors() {
		fmt.Fprintln(cmd.ErrOrStderr(), "ext3replay check: warning:", e)
	}
	if out.err != nil {
		return &exitError{code: exitInternal, err: out.err}
	}
	if len(findings) > 0 {
		return &exitError{code: exitFindings}
	}
	return nil
}

func writeFindings(w io.Writer, findings []check.Finding, format string) {
	if format == "jsonl" {
		for i := range findings {
			// t and ino are analyze's names for time and inode (docs/cli.md), added after them.
			b, _ := json.Marshal(struct {
				*check.Finding
				T   float64 `json:"t"`
				Ino uint32  `json:"ino,omitempty"`
			}{&findings[i], findings[i].Time, findings[i].Inode})
			fmt.Fprintf(w, "%s\n", b)
		}
		return
	}
	// Text: a run of bitmap differences on consecutive blocks with the same story is one line,
	// as e2fsck prints +(a--b).
	for i := 0; i < len(findings); {
		f := findings[i]
		j := i + 1
		for j < len(findings) && sameRun(&findings[j-1], &findings[j]) {
			j++
		}
		where := f.Struct
		if j-i > 1 {
			where = fmt.Sprintf("blocks %d-%d", f.Block, findings[j-1].Block)
		}
		if f.Path != "" {
			where += " " + f.Path
		}
		msg := f.Msg
		if j-i > 1 {
			msg = strings.Replace(msg, fmt.Sprintf("%d (", f.Block), fmt.Sprintf("(%d--%d) (", f.Block, findings[j-1].Block), 1)
		}
		state := "still present at the end"
		if !f.AtEnd {
			state = fmt.Sprintf("gone at record %d", f.FixedSeq)
		}
		fmt.Fprintf(w, "record %d (t=%.6f, checked at record %d) %s [%s]: %s; %s\n", f.Seq, f.Time, f.AtSeq, where, f.Kind, msg, state)
		i = j
	}
}

// sameRun reports b continuing a's run: the next block, the same kind of difference, owner,
// request, check and end.
func sameRun(a, b *check.Finding) bool {
	return a.Kind == "block-bitmap" && b.Kind == a.Kind && b.Block == a.Block+1 && b.Seq == a.Seq &&
		b.AtSeq == a.AtSeq && b.Inode == a.Inode && b.AtEnd == a.AtEnd && b.FixedSeq == a.FixedSeq &&
		b.Path == a.Path && strings.Contains(b.Msg, "+") == strings.Contains(a.Msg, "+")
}
