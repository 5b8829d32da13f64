package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/partition"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

type analyzeOptions struct {
	format   string
	metadata bool
	output   string
	quiet    bool
	time     string // text format: the time column
	runID    string // parquet format: the run_id column

	failOnAnomaly bool
	mounts        []string // PART=DIR, partitioned disks
	check         bool

	follow bool          // --follow: LOG is still being written
	split  bool          // --split-at-flush
	idle   time.Duration // --follow: end after this long without growth
}

func newAnalyzeCmd() *cobra.Command {
	var o analyzeOptions
	cmd := &cobra.Command{
		Use:   "analyze IMAGE LOG",
		Short: "Reconstruct the file operations of a block-I/O log",
		Long: `analyze replays LOG (the requests a guest sent to its disk) against IMAGE
(the disk as it was when the recording started) and prints the file operations
they amount to: create, mkdir, symlink, mknod, delete, rmdir, move, link,
unlink, truncate, and reads and writes of file data with the file's path at
that moment. The order the guest wrote blocks in does not matter (see
docs/how-it-works.md).

IMAGE is a raw image, optionally zstd-compressed. LOG is a native log (.zst) or
a dm-log-writes log, raw or zstd-compressed, recognised by its magic; - reads
it from standard input. A log that records the identity of its starting image
is refused with any other image.

A summary goes to stderr at the end, and while a run takes more than a second a
progress bar with the rate and the time left, when stderr is a terminal and the
operations go elsewhere (-o, a pipe); --quiet silences both.`,
		Example: `  ext3replay analyze disk.img io.log.zst
  ext3replay analyze --format jsonl -o ops.jsonl disk.img.zst io.log.zst
  ext3replay analyze --metadata disk.img writes.lwlog | grep '(dir)'
  zstdcat io.log.zst | ext3replay analyze disk.img -`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := o
			var w io.Writer = cmd.OutOrStdout()
			if f.output != "" && f.output != "-" {
				fh, err := os.Create(f.output)
				if err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				defer fh.Close()
				w = fh
			}
			ow, tap, err := newOpWriter(w, f.format, f.time, f.runID, args[1], f.output)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if f.format == "jsonl" {
				// The run says what it holds, so stats and diff can tell unlike runs apart.
				h := runHeader(args[0], args[1], f.metadata)
				if f.follow {
					h.Log.Size = 0 // still growing: unknown, as for stdin
				}
				if err := ops.WriteRunHeader(w, h); err != nil {
					return &exitError{code: exitInternal, err: err}
				}
			}
			// Ops streamed to the terminal the bar would be drawn on show the progress themselves.
			toTerminal := (f.output == "" || f.output == "-") && isTerminalWriter(cmd.OutOrStdout())
			prog := newProgress(cmd.ErrOrStderr(), f.quiet || toTerminal, "analyzing", -1, true)
			// Output failures are exit status 3, whatever layer they surface through.
			var anomalies int64
			emit := func(op *ops.Op) error {
				if op.Op == ops.Anomaly {
					anomalies++
				}
				if err := ow.Write(op); err != nil {
					return &exitError{code: exitInternal, err: err}
				}
				return nil
			}
			mounts, err := parseMounts(f.mounts)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			var ck *analyzeCheck
			if f.check {
				if ck, err = withCheck(args[0], args[1], emit, tap); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				emit, tap = ck.Emit, ck.Tap
			}
			if f.follow && !cmd.Flags().Changed("split-at-flush") {
				// Live output: no line waits past the next flush (docs/capture.md).
				f.split = true
			}
			tune := f.pipeline(ow, mounts, ck)
			var st *analyzeStats
			if f.follow {
				st, err = runFollow(args[0], args[1], f.idle, resolver.Options{Metadata: f.metadata}, emit, ow, tap, f.split, tune...)
			} else {
				st, err = runAnalyze(args[0], args[1], resolver.Options{Metadata: f.metadata}, emit, prog, tap, tune...)
			}
			if ck != nil && err == nil {
				err = ck.Finish(cmd.ErrOrStderr())
			}
			if cerr := ow.Close(); err == nil && cerr != nil {
				err = &exitError{code: exitInternal, err: cerr}
			}
			if st != nil && !f.quiet {
				printSummary(cmd.ErrOrStderr(), st)
				if ck != nil {
					ck.Summary(cmd.ErrOrStderr())
				}
			}
			if err == nil && st != nil && st.Damage != nil {
				// The operations before the damage were written and are right; the
				// exit status still says the log did not end where it should have.
				err = &exitError{code: exitDamaged, err: fmt.Errorf("%w; operations up to there were reported", st.Damage)}
			}
			if err == nil && f.failOnAnomaly && anomalies > 0 {
				err = &exitError{code: exitAnomaly, err: fmt.Errorf("%d anomalies (--fail-on-anomaly)", anomalies)}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.format, "format", "text", "output format: text|jsonl|csv|body|parquet (body: The Sleuth Kit's mactime input)")
	fl.BoolVar(&o.metadata, "metadata", false, "also report I/O on inode tables, bitmaps, superblocks, group descriptors and the journal")
	fl.StringVarP(&o.output, "output", "o", "-", "write the operations to this file (- for stdout)")
	fl.BoolVar(&o.quiet, "quiet", false, "no progress and no summary on stderr")
	fl.BoolVar(&o.failOnAnomaly, "fail-on-anomaly", false, "exit with status 5 when the run has anomalies (for CI; the output is complete)")
	fl.BoolVar(&o.check, "check", false, "also check the file system's consistency as check does, each finding an anomaly line (docs/check.md)")
	fl.StringVar(&o.time, "time", "none", "text format: a time column first, as blkparse has: rel (seconds from the start of the log), abs (UTC wall clock, from the log's start time) or none")
	fl.StringArrayVar(&o.mounts, "mount", nil, "partitioned disk: report partition N's paths under DIR, as the guest mounted it (N=DIR, repeatable: --mount 1=/ --mount 2=/boot)")
	fl.BoolVar(&o.follow, "follow", false, "LOG is still being written (by record, or QEMU's blklogwrites): wait for more at its end; stop at its end record, on SIGINT or after --idle")
	fl.BoolVar(&o.split, "split-at-flush", false, "end every merged run of I/O at each device flush: no line waits past the next flush, runs spanning a flush print as several lines (the default with --follow)")
	fl.DurationVar(&o.idle, "idle", 0, "with --follow: stop after the log has not grown for this long (e.g. 30s; 0: never)")
	fl.StringVar(&o.runID, "run-id", "", "parquet format: the run_id column (default: the output file's name without extension, else the log's)")
	return cmd
}

// runHeader describes a run of analyze for its jsonl header.
func runHeader(imagePath, logPath string, metadata bool) ops.RunHeader {
	src := func(p string) ops.Source {
		if p == "-" {
			return ops.Source{Name: "-"}
		}
		s := ops.Source{Name: filepath.Base(p)}
		if fi, err := os.Stat(p); err == nil {
			s.Size = fi.Size()
		}
		return s
	}
	return ops.RunHeader{Version: buildVersion(), Image: src(imagePath), Log: src(logPath), Metadata: metadata}
}

// analyzeToOps runs analyze and returns the (coalesced) ops; used by stats and diff.
// A damaged log is an error here: statistics or a comparison of a run cut
// short would be silently wrong. prog (nil: none) shows the log read; more adjusts the analysis
// options (a partitioned disk's mounts).
func analyzeToOps(imagePath, logPath string, metadata bool, prog *progress, more ...func(*analysis.Options)) ([]ops.Op, error) {
	var out []ops.Op
	st, err := runAnalyze(imagePath, logPath, resolver.Options{Metadata: metadata}, func(op *ops.Op) error {
		out = append(out, *op)
		return nil
	}, prog, nil, append([]func(*analysis.Options){emitAsync(true)}, more...)...)
	if err == nil && st.Damage != nil {
		err = &exitError{code: exitUsage, err: st.Damage}
	}
	return out, err
}

// analyzeStats is what the closing summary reports.
type analyzeStats struct {
	*analysis.Result
	elapsed time.Duration // the whole command, image opening included
}

// runAnalyze opens the image and the log and runs the analysis pipeline into emit. tap, when not
// nil, sees every record before the resolver does (report uses it for flushes and journal commits).
// tune adjusts the pipeline's options (analyze's --mount, --split-at-flush).
func runAnalyze(imagePath, logPath string, opt resolver.Options, emit func(*ops.Op) error, prog *progress, tap func(*blklog.Record), tune ...func(*analysis.Options)) (*analyzeStats, error) {
	start := time.Now()
	img, err := openImageProgress(imagePath, prog.Phase("decompressing "+filepath.Base(imagePath)))
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	defer img.Close()
	lf := os.Stdin
	if logPath != "-" {
		if lf, err = os.Open(logPath); err != nil {
			return nil, &exitError{code: exitUsage, err: err}
		}
		defer lf.Close()
	}
	var reopen func() (blklog.Reader, error)
	var logBytes int64 // the log's size as stored; 0 for a pipe
	if fi, err := lf.Stat(); err == nil && fi.Mode().IsRegular() {
		logBytes = fi.Size()
		prog.SetTotal(fi.Size()) // the log's bytes as stored: compressed or not, they are read once
		if logPath != "-" {
			reopen = func() (blklog.Reader, error) { return blklog.Open(logPath) }
		}
	}
	defer prog.Done()
	lr, err := blklog.NewReader(prog.Reader(lf), logPath)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	// Decoding the log (zstd, record CRCs) and resolving run on two goroutines: on two cores
	// the resolver's work mostly hides behind decoding.
	lr = blklog.ReadAhead(lr)
	defer lr.Close()
	res, err := runPipeline(analysis.Input{Image: img, ImageSize: img.Size(), ImageName: imagePath, Log: lr, LogName: logPath, Reopen: reopen},
		logBytes, analysis.Options{Resolver: opt, Tap: tap}, emit, tune)
	if err != nil {
		return nil, err
	}
	return &analyzeStats{Result: res, elapsed: time.Since(start)}, nil
}

// runPipeline runs analysis.Run the way analyze and analyze --follow both do: the heap warmed for a
// log of logBytes and the memory budget set once the image is indexed, the callers' tuning
// applied, an input error (image and log that do not belong together) exit status 2.
func runPipeline(in analysis.Input, logBytes int64, ao analysis.Options, emit func(*ops.Op) error, tune []func(*analysis.Options)) (*analysis.Result, error) {
	warmed := analysis.WarmHeap(logBytes) // while the image is indexed
	ao.Ready = func() {
		warmed()
		analysis.SetMemoryBudget(analysis.LogBudget) // its collection hands the warmed pages to the heap
	}
	for _, f := range tune {
		f(&ao)
	}
	res, err := analysis.Run(in, ao, emit)
	var ie *analysis.InputError
	if errors.As(err, &ie) {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return res, err
}

// pipeline is the analysis options analyze's flags ask for, its output written by ow and, with
// --check, checked by ck.
func (f *analyzeOptions) pipeline(ow ops.Writer, mounts map[int]string, ck *analyzeCheck) []func(*analysis.Options) {
	return []func(*analysis.Options){
		func(o *analysis.Options) {
			o.Mounts = mounts
			o.Partitioned = func(*partition.Table) { ops.SetPartitioned(ow) }
		},
		splitAtFlush(f.split),
		// The output is written on a goroutine of its own, except with --check, whose tap and
		// emit share its findings, and with --follow, which flushes it while the log waits.
		emitAsync(ck == nil && !f.follow),
		// The formats' taps (newOpWriter) read a record's flags only, so plain file data may be
		// left out of the log's reading; the checker reads every payload whole.
		func(o *analysis.Options) { o.TapReadsKept = ck == nil },
	}
}

// splitAtFlush sets analysis.Options.SplitAtFlush (analyze --split-at-flush).
func splitAtFlush(on bool) func(*analysis.Options) {
	return func(o *analysis.Options) { o.SplitAtFlush = on }
}

func emitAsync(on bool) func(*analysis.Options) {
	return func(o *analysis.Options) { o.EmitAsync = on }
}

func printSummary(w io.Writer, st *analyzeStats) {
	fmt.Fprintf(w, "ext3replay analyze: %d requests (%d reads, %d writes, %d flushes), %s read, %s written, %d journal transactions, %.2fs\n",
		st.Records, st.Reads, st.Writes, st.Flushes, ops.HumanBytes(st.BytesRead), ops.HumanBytes(st.BytesWritten), st.Transactions, st.elapsed.Seconds())
	var kinds []string
	for t, n := range st.Printed {
		kinds = append(kinds, fmt.Sprintf("%s %d", t, n))
	}
	sort.Strings(kinds)
	if len(kinds) == 0 {
		kinds = []string{"none"}
	}
	fmt.Fprintf(w, "  operations: %s\n", strings.Join(kinds, ", "))
	fmt.Fprintf(w, "  never attributed: %s written, %s read; anomalies: %d\n",
		ops.HumanBytes(st.UnattributedWriteBytes), ops.HumanBytes(st.UnattributedReadBytes), st.Anomalies)
	if st.NoPayloadWrites > 0 {
		fmt.Fprintf(w, "  %d writes had no payload in the log: their content could not be decoded\n", st.NoPayloadWrites)
	}
	if st.DroppedUnowned > 0 {
		fmt.Fprintf(w, "  %d unowned blocks that could be metadata were not kept (memory cap)\n", st.DroppedUnowned)
	}
	if st.FastCommitBlocks > 0 {
		fmt.Fprintf(w, "  fast commits: %d applied (%d blocks written to the fast-commit area)\n", st.FastCommits, st.FastCommitBlocks)
	}
	if st.Table != nil {
		for _, v := range st.Volumes {
			where := "paths plain"
			if v.Prefix != "" {
				where = "paths under " + v.Prefix
			}
			fmt.Fprintf(w, "  partition %d (%s, %s): ext file system, %s\n", v.Partition.Number, st.Table.Scheme, ops.HumanBytes(v.Partition.Size), where)
			if v.Recovery != nil && v.Recovery.Needed {
				fmt.Fprintf(w, "    starting state: after journal recovery: %s\n", v.Recovery.Summary())
			}
		}
	} else if st.Recovery != nil && st.Recovery.Needed {
		fmt.Fprintf(w, "  starting state: the image after journal recovery: %s\n", st.Recovery.Summary())
	}
	if st.JournalPending > 0 {
		fmt.Fprintf(w, "  %d journal blocks belong to transactions never committed (ignored)\n", st.JournalPending)
	}
}

// parseMounts parses analyze's --mount values into partition number -> mount point.
func parseMounts(vals []string) (map[int]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := map[int]string{}
	for _, v := range vals {
		n, dir, err := analysis.ParseMount(v)
		if err != nil {
			return nil, err
		}
		if old, ok := m[n]; ok {
			return nil, fmt.Errorf("--mount: partition %d given twice (%s and %s)", n, old, dir)
		}
		m[n] = dir
	}
	return m, nil
}

// openImage opens a raw, zstd-compressed or qemu-img image, refusing a log given in its place.
func openImage(path string) (*diskimage.Image, error) { return openImageProgress(path, nil) }

// openImageProgress is openImage with prog (nil: none) following the decompression of a .zst
// image.
func openImageProgress(path string, prog *progress) (*diskimage.Image, error) {
	if fi, err := os.Stat(path); err == nil {
		prog.SetTotal(fi.Size())
	}
	img, err := diskimage.OpenProgress(path, prog.AddFunc())
	prog.Done()
	if err != nil {
		return nil, err
	}
	if err := notALog(img, path); err != nil {
		img.Close()
		return nil, err
	}
	return img, nil
}

// notALog refuses a block-I/O log given where an image belongs (IMAGE and LOG swapped), which
// would otherwise read as an image with a bad superblock or a mismatched one.
func notALog(img io.ReaderAt, path string) error {
	var head [512]byte
	n, _ := img.ReadAt(head[:], 0)
	if f := blklog.Detect(head[:n]); f != "" {
		return fmt.Errorf("%s is a block-I/O log, not a disk image (the arguments are IMAGE LOG; it is a %s log)", path, f)
	}
	return nil
}
