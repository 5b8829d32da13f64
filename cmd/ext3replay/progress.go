package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// progressDelay is how long a command runs before its progress bar appears: a run that ends
// sooner never draws one (and a test sets it to 0).
var progressDelay = time.Second

// progress is a progress bar on stderr with the rate and the time left, drawn by
// schollz/progressbar. It exists only where stderr is a terminal (not a pipe, a file or
// /dev/null) and --quiet was not given; its methods do nothing on a nil *progress, so callers
// need not check.
type progress struct {
	bar  *progressbar.ProgressBar
	w    *delayedWriter
	done bool
}

// newProgress returns a bar titled desc for total units (bytes if bytes is set, else names
// walked; total < 0: unknown, a spinner), or nil when stderr is not a terminal or quiet is set.
func newProgress(stderr io.Writer, quiet bool, desc string, total int64, bytes bool) *progress {
	if quiet || !isTerminalWriter(stderr) {
		return nil
	}
	f := stderr.(*os.File)
	dw := &delayedWriter{w: f, after: time.Now().Add(progressDelay)}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(dw),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
		// The spinner turns as the bar is drawn, with no goroutine of its own: progressbar
		// v3.19.1's reads the bar's start time without the lock the first draw writes it under
		// (go test -race saw it).
		progressbar.OptionSetSpinnerChangeInterval(0),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true), progressbar.OptionUseIECUnits(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("names"))
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...), w: dw}
}

// isTerminalWriter reports whether w is a terminal.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// Phase is a new bar on the same terminal, for the next step of a command (nil if p is).
func (p *progress) Phase(desc string) *progress {
	if p == nil {
		return nil
	}
	return newProgress(p.w.w, false, desc, -1, true)
}

// AddFunc returns Add as a func, or nil for a nil bar (callees skip a nil func).
func (p *progress) AddFunc() func(int64) {
	if p == nil {
		return nil
	}
	return p.Add
}

// SetTotal sets the amount of work once it is known.
func (p *progress) SetTotal(n int64) {
	if p != nil && n > 0 {
		p.bar.ChangeMax64(n)
	}
}

// Add counts n units done.
func (p *progress) Add(n int64) {
	if p != nil {
		_ = p.bar.Add64(n)
	}
}

// Reader counts the bytes read through r.
func (p *progress) Reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	if f, ok := r.(*os.File); ok {
		// The log reader must still see the file, to read it ahead at offsets.
		return &blklog.CountedFile{File: f, Count: p.Add}
	}
	return &progressReader{r: r, p: p}
}

// Done removes the bar (if it was ever drawn), leaving the line for what follows; once.
func (p *progress) Done() {
	if p == nil || p.done {
		return
	}
	p.done = true
	// Finish, not Exit alone: a bar of unknown total is redrawn by the library's own goroutine
	// until it is finished. With OptionClearOnFinish, finishing clears the line if it was drawn.
	_ = p.bar.Finish()
	_ = p.bar.Exit() // counts still arriving (a reader draining) draw nothing
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (c *progressReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Add(int64(n))
	return n, err
}

// delayedWriter drops what the bar draws until after, so a quick command leaves no trace.
type delayedWriter struct {
	w     io.Writer
	after time.Time
	shown atomic.Bool
}

func (d *delayedWriter) Write(b []byte) (int, error) {
	if !d.shown.Load() {
		if time.Now().Before(d.after) {
			return len(b), nil
		}
		d.shown.Store(true)
	}
	return d.w.Write(b)
}

// openLogProgress is openLogArg with the log's bytes counted by prog (nil: none).
func openLogProgress(path string, prog *progress) (blklog.Reader, error) {
	if prog == nil {
		return openLogArg(path)
	}
	if path == "-" {
		return blklog.NewReader(prog.Reader(os.Stdin), "stdin")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("blklog: %w", err)
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		prog.SetTotal(fi.Size())
	}
	r, err := blklog.NewReader(prog.Reader(f), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &closingReader{Reader: r, f: f, p: prog}, nil
}

// closingReader closes the file under a log reader, and ends its progress bar.
type closingReader struct {
	blklog.Reader
	f *os.File
	p *progress
}

func (r *closingReader) Close() error {
	r.p.Done()
	err := r.Reader.Close()
	if e := r.f.Close(); e != nil && err == nil {
		err = e
	}
	return err
}
