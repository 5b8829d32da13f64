// Package analysis is the analyze pipeline as an API: a starting image and a block-I/O log
// in, file operations out. It joins pkg/blklog (the records) and pkg/resolver (the replay
// model), checks that the log belongs to the image, coalesces the resolver's ops and reports
// a damaged log's partial result. cmd/ext3replay's analyze, stats and diff call it; so can a
// live recorder, by handing it a blklog.Reader fed as the guest runs.
package analysis

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/partition"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

// Input is what a run replays: the starting image and the log recorded against it.
type Input struct {
	Image     io.ReaderAt
	ImageSize int64
	ImageName string // for messages
	Log       blklog.Reader
	LogName   string // for messages
	// Reopen, if set, opens the log again from its start (a log file's path). The resolver
	// then lets the log reader leave plain file data out of large writes, and reads a write
	// again through it in the rare case where it needs what was left out
	// (resolver.Resolver.PayloadFilter). Not with a Tap that reads every payload whole
	// (Options.TapReadsKept).
	Reopen func() (blklog.Reader, error)
}

// Options tune a run.
type Options struct {
	Resolver resolver.Options
	// MaxPending bounds the ops the coalescer holds back behind the oldest open run; 0 means
	// DefaultMaxPending.
	MaxPending int
	// Tap, if set, sees every record (after the identity checks) before the resolver does:
	// the HTML report takes flushes and journal commits from it. Its payloads are whole
	// unless TapReadsKept is set.
	Tap func(*blklog.Record)
	// TapReadsKept says that Tap reads no part of a payload that Record.Omitted marks, so
	// that the payload filter (Input.Reopen) may stay on with it.
	TapReadsKept bool
	// Ready, if set, is called once the image is indexed, before the first record: what is
	// live then grows with the image (the index, the names), what comes after is bounded by
	// the resolver's caps (see SetMemoryBudget).
	Ready func()
	// NoRecovery models the image as it is even when its journal needs recovery. By default
	// such an image is replayed first (ext3fs.Recover) and the state after recovery is the
	// starting state: the guest's own replay at mount then writes what the model already holds
	// and reports nothing.
	NoRecovery bool
	// Mounts puts the paths of a partitioned disk's ext partitions under their mount points
	// (partition number -> "/boot"); see Volume.Prefix for the default.
	Mounts map[int]string
	// Partitioned, if set, is called once the image is found to have a partition table, before
	// the first op (the csv writer adds its partition column then).
	Partitioned func(*partition.Table)
	// SplitAtFlush ends every run of I/O the coalescer holds at each device flush, so that no
	// line waits for more than the next flush (a live run: record --analyze, analyze --follow).
	// Runs that span a flush then print as several lines: a run with it is compared with a run
	// with it.
	SplitAtFlush bool
	// EmitAsync runs the coalescing and emit on a goroutine of their own, fed in batches, so
	// that the output is formatted and written while the resolver goes on (emitQueue). emit
	// then runs concurrently with Tap and with the resolver: it must share no state with them
	// without its own synchronisation. An error from emit stops the run up to some thousands of
	// ops (the queue's depth) later than it would otherwise, and is returned all the same;
	// Result is complete when Run returns.
	EmitAsync bool
}

// DefaultMaxPending is the coalescer's bound in analyze. It caps memory and how late lines
// come out; 512 still merges interleaved writes to hundreds of files, and a sequential run on
// one file is one entry however long. (A larger bound merges more journal writes and would
// change --metadata output.)
const DefaultMaxPending = 512

// Result is what a run reports besides its ops.
type Result struct {
	resolver.Stats
	// Damage is the log's damage (a *blklog.DamageError) when it ended early; every op before
	// the damage was emitted and is right.
	Damage  error
	Elapsed time.Duration
	Printed map[ops.Type]int64 // ops emitted, by type (after coalescing)
	// Recovery is the journal recovery the starting state came from (nil with NoRecovery;
	// Recovery.Needed is false for an image that needed none).
	Recovery *ext3fs.Recovery
	// Table is the image's partition table (nil for a bare file system); Volumes its ext2/3/4
	// partitions, in table order (Recovery is then the first one's).
	Table   *partition.Table
	Volumes []Volume
}

// InputError is a run refused for its input: an image that is no ext2/3/4 file system, a
// log of another image, a log that cannot be read. The CLI reports it as a usage error.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Run replays in.Log against in.Image and passes every op, in order, to emit. An error from
// emit stops the run and is returned as it is. A damaged log is not an error: the run ends at
// the damage and Result.Damage says where.
func Run(in Input, opt Options, emit func(*ops.Op) error) (*Result, error) {
	start := time.Now()
	h := in.Log.Header()
	if err := blklog.CheckImage(h, in.Image, in.ImageSize); err != nil {
		return nil, &InputError{fmt.Errorf("%s: %w (image %s)", in.LogName, err, in.ImageName)}
	}
	res := &Result{Printed: map[ops.Type]int64{}}
	co := ops.NewCoalescer(func(op *ops.Op) error {
		res.Printed[op.Op]++
		return emit(op)
	})
	co.MaxPending = opt.MaxPending
	if co.MaxPending <= 0 {
		co.MaxPending = DefaultMaxPending
	}
	tab, err := partition.Read(in.Image, in.ImageSize)
	if err != nil {
		return nil, &InputError{fmt.Errorf("%s: %w", in.ImageName, err)}
	}
	var sink opSink = co
	finish := co.Flush
	if opt.EmitAsync {
		q := newEmitQueue(co)
		defer q.Abandon() // after Close, nothing
		sink, finish = q, q.Close
	}
	if tab.Scheme != partition.None {
		res.Table = tab
		res.Stats.Ops = map[ops.Type]int64{}
		if err := runPartitioned(in, opt, tab, res, sink); err != nil {
			return nil, err
		}
		if err := finish(); err != nil {
			return nil, err
		}
		res.Elapsed = time.Since(start)
		return res, nil
	}
	if len(opt.Mounts) > 0 {
		return nil, &InputError{fmt.Errorf("%s: --mount is for a partitioned disk; this one is a bare file system (its paths are the file system's own)", in.ImageName)}
	}
	guard, err := NewSuperblockGuard(h, in.Image, in.LogName)
	if err != nil {
		return nil, &InputError{fmt.Errorf("%s: %w", in.ImageName, err)}
	}
	start0 := in.Image
	if !opt.NoRecovery {
		rc, err := ext3fs.Recover(in.Image)
		switch {
		case err == nil:
			res.Recovery = rc
			start0 = rc
			opt.Resolver.MountReplayBlocks = rc.FastCommitBlocks
			opt.Resolver.RecoveryProblem = errors.Join(rc.Err, rc.FastCommitErr)
		case isFS(in.Image):
			return nil, &InputError{fmt.Errorf("%s: journal recovery: %w", in.ImageName, err)}
		}
		// An image that is no file system at all is refused by resolver.New, as without recovery.
	}
	rv, err := resolver.New(start0, in.ImageSize, opt.Resolver, sink.Add)
	if err != nil {
		return nil, &InputError{fmt.Errorf("%s: %w", in.ImageName, err)}
	}
	if in.Reopen != nil && (opt.Tap == nil || opt.TapReadsKept) {
		again := blklog.NewPayloadSource(in.Reopen)
		defer again.Close()
		blklog.SetPayloadFilter(in.Log, rv.PayloadFilter(again.Record))
	}
	if opt.Ready != nil {
		opt.Ready()
	}
	for {
		rec, err := in.Log.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !isDamage(err) {
				return nil, err
			}
			res.Damage = err
			break
		}
		if err := guard.Check(&rec); err != nil {
			return nil, &InputError{fmt.Errorf("%w (image %s)", err, in.ImageName)}
		}
		if opt.Tap != nil {
			opt.Tap(&rec)
		}
		if err := rv.Record(&rec); err != nil {
			return nil, err
		}
		memoryTick()
		if opt.SplitAtFlush && rec.Type == blklog.TypeFlush {
			if err := sink.Flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := rv.Finish(); err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	res.Stats = rv.Stats()
	res.Elapsed = time.Since(start)
	return res, nil
}

// LogBudget is the memory analyze allows itself for a log on top of what the image needs: the
// resolver's held state (pending writes, unowned content kept, held I/O; each capped in
// pkg/resolver), the log reader's read-ahead and the collector's slack. docs/reliability.md
// gives the measurement.
const LogBudget = 192 << 20

// isDamage reports a damaged log (the run ends there with what it has), as opposed to a failure.
func isDamage(err error) bool {
	var de *blklog.DamageError
	return errors.As(err, &de)
}

// isFS reports whether img opens as a file system (whatever its features).
func isFS(img io.ReaderAt) bool {
	_, err := ext3fs.OpenWith(img, ext3fs.Options{InlineData: true})
	return err == nil
}
