package blklog

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// Tee is the Sink of a recorder whose requests are also analysed live (record --analyze): each
// record goes to the log first, then a copy goes through a bounded queue to the Reader that
// Live returns. Write never waits for the consumer: the guest is never slowed by the analysis.
// When the queue is full (the consumer has fallen behind), the copies stop and the consumer
// continues from the log file itself (OpenFollow, past the records it already had), so it
// still sees every record, in order, only later.
type Tee struct {
	Log  *Writer
	Path string // the log's file, for catching up
	// OnBehind, if set, is called once (on the recorder's goroutine) when the queue overflows.
	OnBehind func(queued int64)

	hdr      Header
	ch       chan Record
	maxBytes int64
	queued   atomic.Int64 // payload bytes in the queue
	n        int64        // records written
	behind   bool         // the queue was closed by an overflow
	finished bool
	clean    atomic.Bool   // Finish(true): the log has its end record
	done     chan struct{} // closed by Finish: the log file is complete as it will be
}

// Default bounds of a Tee's queue: what the analysis may be behind before it reads the log.
const (
	DefaultTeeRecords = 1 << 16
	DefaultTeeBytes   = 64 << 20
)

// NewTee returns a Tee over lw, which was created at path with header h. maxRecords and maxBytes
// bound the queue (0: the defaults).
func NewTee(lw *Writer, path string, h Header, maxRecords int, maxBytes int64) *Tee {
	if maxRecords <= 0 {
		maxRecords = DefaultTeeRecords
	}
	if maxBytes <= 0 {
		maxBytes = DefaultTeeBytes
	}
	// The header as a reader of the file reports it.
	h.Format, h.Version, h.SectorSize = FormatNative, Version, SectorSize
	return &Tee{Log: lw, Path: path, hdr: h, ch: make(chan Record, maxRecords), maxBytes: maxBytes, done: make(chan struct{})}
}

// Write logs r, then queues a copy for the live reader unless it is behind.
func (t *Tee) Write(r *Record) error {
	if err := t.Log.Write(r); err != nil {
		return err
	}
	idx := t.n
	t.n++
	if t.behind || t.finished {
		return nil
	}
	size := int64(len(r.Data))
	if q := t.queued.Load(); q+size > t.maxBytes && q > 0 || len(t.ch) == cap(t.ch) {
		// Full: from here on the reader takes the records from the log file.
		t.behind = true
		close(t.ch)
		if t.OnBehind != nil {
			t.OnBehind(q)
		}
		return nil
	}
	c := *r
	c.Index = idx
	if size > 0 {
		c.Data = append([]byte(nil), r.Data...)
	}
	t.queued.Add(size)
	t.ch <- c // never blocks: only this goroutine sends, and there is room
	return nil
}

// Sync makes the log durable (the queue has nothing to sync).
func (t *Tee) Sync() error { return t.Log.Sync() }

// Behind reports whether the live reader has been sent to the log file.
func (t *Tee) Behind() bool { return t.behind }

// Finish ends the live stream once the log is finished (FinishLog); clean says it got its end
// record. The reader then ends as a reader of the file would: at io.EOF, or, for a log that
// failed, with the same damage.
func (t *Tee) Finish(clean bool) {
	if t.finished {
		return
	}
	t.finished = true
	t.clean.Store(clean)
	if !t.behind {
		close(t.ch)
	}
	close(t.done)
}

// Live returns the consumer's Reader: the records of the log, in order, as they are logged.
// opt.OnWait is called whenever it waits; opt.Stop and opt.Idle are not used (it ends with
// the log). Call it once.
func (t *Tee) Live(opt FollowOptions) Reader {
	return &teeReader{t: t, opt: opt}
}

type teeReader struct {
	t    *Tee
	opt  FollowOptions
	n    int64  // records returned
	file Reader // set once reading from the log file
	err  error
}

func (r *teeReader) Header() Header { return r.t.hdr }

func (r *teeReader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	if r.file != nil {
		return r.fromFile()
	}
	var rec Record
	var ok bool
	select {
	case rec, ok = <-r.t.ch:
	default:
		if r.opt.OnWait != nil {
			r.opt.OnWait()
		}
		rec, ok = <-r.t.ch
	}
	if ok {
		r.t.queued.Add(-int64(len(rec.Data)))
		r.n++
		return rec, nil
	}
	// The queue is closed: the consumer fell behind, or the log is finished.
	select {
	case <-r.t.done:
		if r.t.clean.Load() && !r.t.behind {
			r.err = io.EOF
			return Record{}, io.EOF
		}
	default:
	}
	// Read the rest from the file: it holds every record, and its end says how the log ended.
	f, err := OpenFollow(r.t.Path, FollowOptions{Stop: r.t.done, Poll: r.opt.Poll, OnWait: r.opt.OnWait})
	if err != nil {
		r.err = fmt.Errorf("blklog: live analysis catching up from %s: %w", r.t.Path, err)
		return Record{}, r.err
	}
	r.file = f
	for i := int64(0); i < r.n; i++ {
		if _, err := f.Next(); err != nil {
			if err == io.EOF {
				err = errors.New("the log ends before the records already analysed")
			}
			r.err = fmt.Errorf("blklog: live analysis catching up from %s: record %d: %w", r.t.Path, i, err)
			return Record{}, r.err
		}
	}
	return r.fromFile()
}

func (r *teeReader) fromFile() (Record, error) {
	rec, err := r.file.Next()
	if err != nil {
		r.err = err
		return Record{}, err
	}
	r.n++
	return rec, nil
}

// Close closes the log file if the reader went to it.
func (r *teeReader) Close() error {
	if r.file != nil {
		err := r.file.Close()
		r.file = nil
		return err
	}
	return nil
}
