package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes are part of the public interface (docs/output-formats.md).
const (
	exitOK       = 0
	exitDiffers  = 1 // diff: differences beyond thresholds
	exitUsage    = 2 // usage or input error
	exitInternal = 3
	exitDamaged  = 4 // a damaged or cut-short log: the partial result before the damage was written
	exitAnomaly  = 5 // analyze --fail-on-anomaly: the run had anomalies (the output is complete)
)

// exitError lets a command choose its exit code without printing twice.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// newRootCmd builds the command tree afresh: each command's options live in its
// factory, so a test runs a command line on a new tree and no flag leaks between runs.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ext3replay",
		Short: "Reconstruct file operations on an ext2/ext3 disk from its block-I/O log",
		Long: `ext3replay takes the starting image of a virtual disk and a log of every
request the guest sent to it (sector, length, payload of writes), replays the
requests and reports the file operations they amount to — create, mkdir,
delete, rmdir, move, link, truncate, read and write — with full paths.`,
		Example: `  ext3replay analyze disk.img io.log.zst
  ext3replay inspect disk.img
  ext3replay blocks disk.img 1234 5678`,
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newAnalyzeCmd(), newStatsCmd(), newDiffCmd(), newReportCmd(), newInspectCmd(),
		newBlocksCmd(), newLogCmd(), newImportCmd(), newRecordCmd(), newCheckCmd())
	settle(root)
	return root
}

func execute() int {
	return executeArgs(os.Args[1:], os.Stdout, os.Stderr)
}

// executeArgs runs one command line on a new command tree and returns its exit status;
// errors go to stderr.
func executeArgs(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return exitCode(root.Execute(), stderr)
}

// exitCode prints err (unless it is a bare exit status) and returns the status it stands for.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "ext3replay:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "ext3replay:", err)
	return exitUsage
}

// outWriter remembers the first error writing a command's output.
type outWriter struct {
	w   io.Writer
	err error
}

func (o *outWriter) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	if err != nil {
		o.err = err
	}
	return n, err
}

// checkedOutput adapts a command that writes to out: a failure writing it (a full disk, a
// closed pipe) is exit status 3, where fmt.Fprint's ignored errors used to exit 0 or 2.
func checkedOutput(run func(cmd *cobra.Command, args []string, out io.Writer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ow := &outWriter{w: cmd.OutOrStdout()}
		err := run(cmd, args, ow)
		if ow.err != nil {
			return &exitError{code: exitInternal, err: ow.err}
		}
		return err
	}
}
