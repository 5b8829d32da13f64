package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/spf13/cobra"
)

type importOptions struct {
	from, out, blk, image string
}

func newImportCmd() *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import IN -o OUT.zst [--image BASE] [--blk PTR] [--from dm-log-writes|qemu-trace]",
		Short: "Convert a dm-log-writes log or a QEMU trace into a native log",
		Long: `import converts logs made by other tools into the native format
(docs/log-format.md); the input kind is recognised by its contents (--from
names it, for an input that is not):

  dm-log-writes  Linux dm-log-writes or QEMU blklogwrites log, raw or zstd:
                 writes with payload, flushes, FUA, discards, marks (no reads).
                 analyze also reads these directly.
  qemu-trace     QEMU -trace blk_co_preadv -trace blk_co_pwritev output:
                 offsets only; writes are marked no-payload. When the trace
                 holds several disks choose one with --blk (the "blk 0x..."
                 pointer); without it the only disk is taken, or the command
                 lists them.

With --image the output header records the identity of the starting image so
analyze can refuse a mismatched image. A damaged input is converted up to the
damage, followed by a mark record naming the damage and without the end
record, so that analyze and log info report the output damaged too; the
command exits with status 4. Any other failure leaves no output (it is
written to a temporary file next to OUT and renamed at the end).`,
		Example: `  ext3replay import writes.lwlog -o io.log.zst --image disk.img
  ext3replay import io.trace --blk 0x564f586a3360 -o io.log.zst`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd, args, &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "input kind: dm-log-writes (alias blklogwrites) or qemu-trace; detected when omitted")
	f.StringVarP(&o.out, "output", "o", "", "native log to write")
	f.StringVar(&o.blk, "blk", "", "qemu-trace: block backend pointer of the disk to import")
	f.StringVar(&o.image, "image", "", "starting image the log belongs to (recorded in the header)")
	return cmd
}

func runImport(cmd *cobra.Command, args []string, o *importOptions) error {
	fl := *o
	in := args[0]
	if fl.out == "" {
		return usageErr("import: -o OUT.zst is required")
	}
	if abs(fl.out) == abs(in) || sameFile(fl.out, in) {
		return usageErr("import: output would overwrite the input")
	}
	from := blklog.Format("")
	if fl.from == "" {
		f, err := blklog.DetectFile(in)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		if f == "" || f == blklog.FormatNative {
			return usageErr("import: %s is not a dm-log-writes log nor a QEMU trace (say which with --from)", in)
		}
		from = f
	} else {
		f, err := blklog.ParseFormat(fl.from)
		if err != nil {
			return usageErr("import: --from %q: want dm-log-writes or qemu-trace", fl.from)
		}
		from = f
	}
	// The bar follows the input's bytes: read once for dm-log-writes, twice for a trace (the
	// scan for its disks, then the conversion).
	var size int64
	if fi, err := os.Stat(in); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	passes := int64(1)
	if from == blklog.FormatQEMUTrace {
		passes = 2
	}
	total := int64(-1) // unknown: a spinner
	if size > 0 {
		total = size * passes
	}
	prog := newProgress(cmd.ErrOrStderr(), false, "importing", total, true)
	defer prog.Done()
	var r blklog.Reader
	switch from {
	case blklog.FormatDMLogWrites:
		if fl.blk != "" {
			return usageErr("import: --blk applies to --from qemu-trace only")
		}
		f, err := os.Open(in)
		if err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("blklog: %w", err)}
		}
		defer f.Close()
		r, err = blklog.NewReader(prog.Reader(f), in)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		if h := r.Header(); h.Format != blklog.FormatDMLogWrites {
			r.Close()
			return usageErr("import: %s is a %s log, not dm-log-writes", in, h.Format)
		}
	case blklog.FormatQEMUTrace:
		f, err := os.Open(in)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		defer f.Close()
		blk := fl.blk
		counts, err := blklog.ScanQEMUTrace(prog.Reader(f))
		if err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("import: %s: %w", in, err)}
		}
		ptrs := blklog.BlkPointers(counts)
		switch {
		case len(ptrs) == 0:
			return usageErr("import: %s has no blk_co_preadv/blk_co_pwritev events (run QEMU with -trace blk_co_preadv -trace blk_co_pwritev)", in)
		case blk == "" && len(ptrs) > 1:
			var l []string
			for _, p := range ptrs {
				l = append(l, fmt.Sprintf("%s (%d events)", p, counts[p]))
			}
			return usageErr("import: %s traces %d disks; choose one with --blk: %s", in, len(ptrs), strings.Join(l, ", "))
		case blk == "":
			blk = ptrs[0]
		case counts[blk] == 0:
			return usageErr("import: %s has no events for blk %s; it has %s", in, blk, strings.Join(ptrs, ", "))
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		r = blklog.NewQEMUTraceReader(prog.Reader(f), in, blk)
	default:
		return usageErr("import: --from %q: want dm-log-writes or qemu-trace (a native log needs no import)", fl.from)
	}
	defer r.Close()

	ih := r.Header()
	h := blklog.Header{StartUnixNS: ih.StartUnixNS, Source: "ext3replay import from " + ih.Source}
	if fl.image != "" {
		id, err := blklog.IdentifyImageFile(fl.image)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		h.Image, h.DiskSize = id, id.Size
	}
	// The output will vouch for the image: check first that the superblock the log writes is
	// this image's (the input itself names no image).
	var guard *analysis.SuperblockGuard
	if fl.image != "" {
		img, err := diskimage.Open(fl.image)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		guard, err = analysis.NewSuperblockGuard(ih, img, in)
		img.Close()
		if err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", fl.image, err)}
		}
	}
	// Write to a temporary file next to the output and rename it into place at the end: a failed
	// import leaves no output, and a damaged input leaves one that every reader reports damaged.
	tmp, err := os.CreateTemp(filepath.Dir(fl.out), "."+filepath.Base(fl.out)+".tmp-*")
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	tmp.Chmod(0o644) // CreateTemp makes it private; a log is an ordinary output
	w, err := blklog.NewFileWriter(tmp, h)
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return &exitError{code: exitUsage, err: err}
	}
	fail := func(code int, err error) error {
		w.CloseDamaged()
		os.Remove(tmp.Name())
		return &exitError{code: code, err: err}
	}
	var n int64
	var readErr error
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		if err := blklog.CheckDeviceRange(&rec, h.DiskSize); err != nil {
			return fail(exitUsage, fmt.Errorf("import: %w (image %s)", err, fl.image))
		}
		if err := guard.Check(&rec); err != nil {
			return fail(exitUsage, fmt.Errorf("import: %w (--image %s)", err, fl.image))
		}
		if err := w.Write(&rec); err != nil {
			return fail(exitInternal, err)
		}
		n++
		if rec.Type == blklog.TypeFlush {
			// Frame boundaries at flushes, as the recorder does.
			if err := w.Flush(); err != nil {
				return fail(exitInternal, err)
			}
		}
	}
	if readErr != nil {
		// Keep what was converted, followed by a mark saying why it stops, and no end record:
		// the output reads as damaged right after the mark, as the input is.
		msg := []byte(fmt.Sprintf("ext3replay import: input damaged after %d records: %v", n, readErr))
		msg = msg[:min(len(msg), 4096)]
		if err := w.Write(&blklog.Record{Type: blklog.TypeMark, Length: uint32(len(msg)), Data: msg}); err != nil {
			return fail(exitInternal, err)
		}
		if err := w.CloseDamaged(); err != nil {
			os.Remove(tmp.Name())
			return &exitError{code: exitInternal, err: err}
		}
	} else if err := w.Close(); err != nil {
		os.Remove(tmp.Name())
		return &exitError{code: exitInternal, err: err}
	}
	if err := os.Rename(tmp.Name(), fl.out); err != nil {
		os.Remove(tmp.Name())
		return &exitError{code: exitInternal, err: err}
	}
	prog.Done()
	fmt.Fprintf(cmd.ErrOrStderr(), "ext3replay import: %d records from %s (%s) to %s\n", n, in, ih.Format, fl.out)
	if readErr != nil {
		var de *blklog.DamageError
		if errors.As(readErr, &de) {
			return &exitError{code: exitDamaged, err: fmt.Errorf("import: input damaged, converted the %d records before it to %s, which is marked damaged (no end record): %w", n, fl.out, readErr)}
		}
		return &exitError{code: exitUsage, err: readErr}
	}
	return nil
}
