package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ext3replay/ext3replay/pkg/analysis"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

// analyze --follow: the same pipeline fed by a reader that waits at the end of a log another
// process is still writing (blklog.OpenFollow). Output is flushed whenever the reader waits,
// so every line comes out as soon as the analysis has made it certain.

// runFollow is runAnalyze for a growing log. It ends at the log's end record, on SIGINT or
// SIGTERM, or after idle without growth (0: never); what the log then holds is judged as
// analyze of the file as it is would judge it (no end record: damaged, exit status 4).
func runFollow(imagePath, logPath string, idle time.Duration, opt resolver.Options, emit func(*ops.Op) error, ow ops.Writer, tap func(*blklog.Record), split bool, tune ...func(*analysis.Options)) (*analyzeStats, error) {
	start := time.Now()
	if logPath == "-" {
		return nil, &exitError{code: exitUsage, err: errors.New("analyze --follow needs a log file, not standard input")}
	}
	img, err := openImage(imagePath)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	defer img.Close()
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ended := make(chan struct{})
	defer close(ended)
	var sigName string // written before stop is closed, read after
	go func() {
		select {
		case s := <-sigs:
			sigName = s.String()
			close(stop)
		case <-ended:
		}
	}()
	fl, _ := ow.(ops.Flusher)
	flushErr := error(nil)
	lr, err := blklog.OpenFollow(logPath, blklog.FollowOptions{Idle: idle, Stop: stop, OnWait: func() {
		if fl != nil && flushErr == nil {
			flushErr = fl.Flush()
		}
	}})
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	defer lr.Close()
	// No heap warmed (0): the log's size now says nothing of how far a live run goes.
	res, err := runPipeline(analysis.Input{Image: img, ImageSize: img.Size(), ImageName: imagePath, Log: lr, LogName: logPath},
		0, analysis.Options{Resolver: opt, Tap: tap, SplitAtFlush: split}, emit, tune)
	if err == nil && flushErr != nil {
		err = &exitError{code: exitInternal, err: flushErr}
	}
	if err != nil {
		return nil, err
	}
	if res.Damage != nil {
		why := "the log ends without its end record"
		select {
		case <-stop:
			why = "stopped by " + sigName
		default:
			if idle > 0 {
				why = fmt.Sprintf("%v without growth (--idle)", idle)
			}
		}
		res.Damage = fmt.Errorf("follow ended (%s): %w", why, res.Damage)
	}
	return &analyzeStats{Result: res, elapsed: time.Since(start)}, nil
}
