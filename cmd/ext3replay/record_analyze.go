package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

// record --analyze: the recorder's requests go through a blklog.Tee to analysis.Run on another
// goroutine, which prints operations as they become certain. The recorder never waits for it:
// when the analysis falls behind, its queue overflows and it continues from the log file. Its
// output is that of analyze on the log written, line for line (the jsonl header's log size
// aside: unknown while the log grows).

// liveAnalysis is a running record --analyze.
type liveAnalysis struct {
	tee   *blklog.Tee
	img   *diskimage.Image
	ow    ops.Writer
	out   *os.File // the --analyze-output file, nil for stdout
	ready chan struct{}
	done  chan struct{}
	res   *analysis.Result
	err   error
}

// checkLiveOptions refuses bad --analyze flags before anything is created.
func checkLiveOptions(o *recordOptions) error {
	if !o.analyze {
		if o.format != "text" || o.analyzeOutput != "" || o.metadata || o.splitSet {
			return usageErr("record: --format, --analyze-output, --metadata and --split-at-flush are for --analyze")
		}
		return nil
	}
	switch o.format {
	case "text", "jsonl", "csv":
	default:
		return usageErr("record --analyze: --format %q: want text, jsonl or csv", o.format)
	}
	return nil
}

// startLiveAnalysis opens the image and the output, starts the analysis on the records lw is
// given through the returned Tee, and waits until the image is indexed: an image the analysis
// refuses is an error here, before the recorder says ready.
func startLiveAnalysis(o *recordOptions, stdout, stderr io.Writer, lw *blklog.Writer, h blklog.Header) (*liveAnalysis, error) {
	img, err := openImage(o.image)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	la := &liveAnalysis{img: img, ready: make(chan struct{}), done: make(chan struct{})}
	w := stdout
	if o.analyzeOutput != "" && o.analyzeOutput != "-" {
		if la.out, err = os.Create(o.analyzeOutput); err != nil {
			img.Close()
			return nil, &exitError{code: exitUsage, err: err}
		}
		w = la.out
	}
	if la.ow, err = ops.NewWriter(w, o.format); err != nil {
		la.close()
		return nil, &exitError{code: exitUsage, err: err}
	}
	if o.format == "jsonl" {
		rh := runHeader(o.image, o.log, o.metadata)
		rh.Log = ops.Source{Name: filepath.Base(o.log)} // its size is not known yet
		if err := ops.WriteRunHeader(w, rh); err != nil {
			la.close()
			return nil, &exitError{code: exitInternal, err: err}
		}
	}
	// A small queue makes the analysis fall behind at once: for tests of the catching up.
	queue, _ := strconv.Atoi(os.Getenv("EXT3REPLAY_LIVE_QUEUE"))
	la.tee = blklog.NewTee(lw, o.log, h, queue, 0)
	la.tee.OnBehind = func(queued int64) {
		fmt.Fprintf(stderr, "ext3replay record: the live analysis fell behind (%s queued); recording goes on, the analysis continues from the log and its output comes later\n", ops.HumanBytes(queued))
	}
	fl, _ := la.ow.(ops.Flusher)
	var flushErr error
	lr := la.tee.Live(blklog.FollowOptions{OnWait: func() {
		if fl != nil && flushErr == nil {
			flushErr = fl.Flush()
		}
	}})
	go func() {
		defer close(la.done)
		defer lr.Close()
		res, err := analysis.Run(analysis.Input{Image: img, ImageSize: img.Size(), ImageName: o.image, Log: lr, LogName: o.log},
			analysis.Options{Resolver: resolver.Options{Metadata: o.metadata}, SplitAtFlush: o.split, Ready: func() { close(la.ready) }},
			func(op *ops.Op) error {
				if err := la.ow.Write(op); err != nil {
					return &exitError{code: exitInternal, err: err}
				}
				return nil
			})
		if err == nil && flushErr != nil {
			err = &exitError{code: exitInternal, err: flushErr}
		}
		var ie *analysis.InputError
		if errors.As(err, &ie) {
			err = &exitError{code: exitUsage, err: err}
		}
		la.res, la.err = res, err
		if err != nil {
			select {
			case <-la.ready:
				fmt.Fprintf(stderr, "ext3replay record: the live analysis stopped: %v; recording goes on\n", err)
			default:
			}
		}
	}()
	select {
	case <-la.ready:
		return la, nil
	case <-la.done:
		la.close()
		return nil, la.err
	}
}

func (la *liveAnalysis) close() {
	la.img.Close()
	if la.out != nil {
		la.out.Close()
	}
}

// finish ends the analysis once the log is finished (clean: it has its end record), waits for
// its last operations, and prints its summary. The error is the analysis's, if it failed.
func (la *liveAnalysis) finish(clean bool, stderr io.Writer, quiet bool) error {
	la.tee.Finish(clean)
	<-la.done
	defer la.close()
	err := la.err
	if cerr := la.ow.Close(); err == nil && cerr != nil {
		err = &exitError{code: exitInternal, err: cerr}
	}
	if la.out != nil {
		if cerr := la.out.Close(); err == nil && cerr != nil {
			err = &exitError{code: exitInternal, err: cerr}
		}
		la.out = nil
	}
	if la.res != nil && !quiet {
		printSummary(stderr, &analyzeStats{Result: la.res, elapsed: la.res.Elapsed})
	}
	if err == nil && la.res != nil && la.res.Damage != nil {
		err = &exitError{code: exitDamaged, err: fmt.Errorf("%w; operations up to there were reported", la.res.Damage)}
	}
	return err
}
