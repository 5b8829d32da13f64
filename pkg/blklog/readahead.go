package blklog

import (
	"errors"
	"sync"

	"github.com/ext3replay/ext3replay/internal/hugebuf"
)

// Read-ahead: decoding (zstd, record parsing, CRC-32C) runs on its own
// goroutine while the caller consumes records, so on two cores the consumer's
// work hides behind decoding. Records travel in batches through a bounded
// queue and the batch buffers are recycled, so memory stays bounded whatever
// the log size.

// readAheadQueue is how many decoded batches may wait for the consumer besides the one it
// reads and the one being filled: none, a handover. Each batch holds a buffer, and every
// buffer is fresh memory once, which is what decoding pays most for on the VMs this runs on
// (internal/hugebuf): with 16 MiB buffers and no queue, against 8 MiB buffers and a queue of
// two, analyze of the 1 GiB bench captures went from 0.397 to 0.350 s (big, medians of 31
// alternating runs), 1.34 to 1.27 s (real), 0.80 to 0.76 s (large), peak RSS 116 to 96 MiB on
// big. The consumer catches up in bursts; a queue smooths nothing the decoder cannot.
const readAheadQueue = 0

// Batch buffers (a log file's: the decoding window itself; other readers': the
// payload copies) are readAheadMinBuf bytes, grown up to readAheadBuf to hold
// four of the largest records seen: a record that does not fit at the end of
// a buffer is copied to the next one. Real logs of big files hold writes of 1
// to 8 MiB, a few of 8-14 MiB; 16 MiB buffers hold most of those in the
// standard buffers rather than in buffers of their own (below), and on a 1 GiB
// log 4 MiB buffers were 5-10% slower than 8 MiB ones (more records copied to
// the next buffer). A log of small writes keeps small buffers (they are live
// heap, which the GC lets grow twice as large), and they shrink again when the
// large writes stop (settle). A record larger than readAheadBuf gets a larger
// buffer, recycled too (readAheadBig).
const (
	readAheadMinBuf = 1 << 20
	readAheadBuf    = 16 << 20
)

// Buffers for records larger than readAheadBuf (a guest's merged writes reach 8-14 MiB) are
// recycled too, readAheadBig of them at most, their sizes rounded up to readAheadBigStep so that
// the next slightly larger record fits; before, each such record had a new buffer. All of them
// come from hugebuf (fresh memory is dear: see there). On the 1 GiB bench capture
// (scripts/bench-analyze.sh big), one pass of ReadAhead went from 23,100-26,600 page faults and
// 0.75-1.1 s to 6,000-6,500 faults and 0.36-0.59 s (3 alternating single-pass runs each).
const (
	readAheadBig     = 3
	readAheadBigStep = 4 << 20
)

// readAheadRecords caps the records of a batch built by copying (readers other
// than a log file's); a batch of a log file is bounded by its buffer (at most one
// record per 32 bytes, or 1,024 per dm-log-writes discard entry).
const readAheadRecords = 1024

// batch is a run of records decoded ahead and the buffers their Data point into.
type batch struct {
	recs []Record
	bufs [][]byte // owned by the batch until it is released
	err  error    // the reader's error after the last record (io.EOF at the clean end)
}

type readAhead struct {
	r    Reader
	out  chan *batch
	free chan *batch // recycled batches: their record slices and buffers
	bufs chan []byte // recycled buffers of readAheadMinBuf to readAheadBuf bytes
	big  chan []byte // recycled buffers larger than readAheadBuf (readAheadBig at most)
	size int         // the producer's current buffer size
	peak int         // the largest record (with its header) of the batch being filled
	calm int         // batches in a row whose records were all small for size
	made int         // buffers allocated rather than recycled
	stop chan struct{}
	done chan struct{}
	once sync.Once

	cur *batch
	i   int
}

// ReadAhead returns a Reader that decodes r on another goroutine, at most
// about 32 MiB ahead of the caller (the batch being read and the one being
// filled, of up to readAheadBuf bytes each, and readAheadQueue more). Its records, errors and
// Header are r's; Record.Data stays valid until the next call of Next, as
// Reader promises. A log file, native or dm-log-writes, is decoded without
// copying payloads: records point into the decoding window, whose buffers are
// handed over with the batch instead of being reused in place. Close stops the
// goroutine (after its current record) and closes r; r must not be used by
// anyone else meanwhile.
func ReadAhead(r Reader) Reader {
	ra := &readAhead{
		r:    r,
		out:  make(chan *batch, readAheadQueue),
		free: make(chan *batch, readAheadQueue+2),
		bufs: make(chan []byte, 2*(readAheadQueue+2)),
		big:  make(chan []byte, readAheadBig),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		size: readAheadMinBuf,
	}
	inner := r
	if fr, ok := r.(*fileReader); ok {
		inner = fr.Reader
	}
	switch lr := inner.(type) {
	case *nativeReader:
		if lr.err == nil {
			go ra.windowed(lr.win, lr.Next, recHeaderSize)
			return ra
		}
	case *dmLogReader:
		// A followed log is not read through a window: the window reads ahead of the entry
		// the follower waited for.
		if win, ok := lr.r.(*window); ok && lr.err == nil && lr.beforeEntry == nil {
			win.direct = false
			lr.win = win
			go ra.windowed(win, lr.Next, int(lr.ss))
			return ra
		}
	}
	go ra.copying()
	return ra
}

func (ra *readAhead) Header() Header { return ra.r.Header() }

func (ra *readAhead) Next() (Record, error) {
	for ra.cur == nil || ra.i == len(ra.cur.recs) {
		if ra.cur != nil {
			if ra.cur.err != nil {
				return Record{}, ra.cur.err // sticky, like the underlying reader
			}
			ra.release(ra.cur)
		}
		b, ok := <-ra.out
		if !ok {
			// Only after Close: the producer never ends without sending an error.
			ra.cur = &batch{err: errClosed}
			continue
		}
		ra.cur, ra.i = b, 0
	}
	rec := ra.cur.recs[ra.i]
	ra.i++
	return rec, nil
}

// errClosed is returned by Next after Close.
var errClosed = errors.New("blklog: read after Close")

func (ra *readAhead) Close() error {
	ra.once.Do(func() { close(ra.stop) })
	<-ra.done
	ra.cur, ra.i = &batch{err: errClosed}, 0
	return ra.r.Close()
}

// release gives a consumed batch back to the producer.
func (ra *readAhead) release(b *batch) {
	for _, p := range b.bufs {
		switch {
		case cap(p) >= readAheadMinBuf && cap(p) <= readAheadBuf:
			select {
			case ra.bufs <- p[:cap(p)]:
			default:
			}
		case cap(p) > readAheadBuf && cap(p) <= MaxRecordData+readAheadBigStep:
			select {
			case ra.big <- p[:cap(p)]:
			default:
			}
		}
	}
	clear(b.recs) // drop the Data references
	b.recs, b.bufs, b.err = b.recs[:0], b.bufs[:0], nil
	select {
	case ra.free <- b:
	default:
	}
}

// newBatch returns a recycled batch or a new one.
func (ra *readAhead) newBatch() *batch {
	select {
	case b := <-ra.free:
		return b
	default:
		return &batch{}
	}
}

// buffer returns a buffer of at least n bytes and at least ra.size: a
// recycled one when one is large enough.
func (ra *readAhead) buffer(n int) []byte {
	n = max(n, ra.size)
	if n > readAheadBuf {
	recycled:
		for range readAheadBig {
			select {
			case p := <-ra.big:
				if len(p) >= n {
					return p
				}
				// Too small for this record: let it go (a larger one replaces it).
			default:
				break recycled
			}
		}
		return ra.fresh((n + readAheadBigStep - 1) / readAheadBigStep * readAheadBigStep)
	}
	for {
		select {
		case p := <-ra.bufs:
			if len(p) >= n && len(p) <= 2*n {
				return p
			}
			// Smaller than the buffers now used, or larger than they have become: let it
			// go (the collector gives its memory to whoever allocates next).
		default:
			return ra.fresh(n)
		}
	}
}

// fresh allocates a buffer rather than recycling one (counted in made).
func (ra *readAhead) fresh(n int) []byte {
	ra.made++
	return hugebuf.Make(n)
}

// grow raises the buffer size to hold four records of n bytes.
func (ra *readAhead) grow(n int) {
	ra.peak = max(ra.peak, n)
	for ra.size < 4*n && ra.size < readAheadBuf {
		ra.size *= 2
	}
}

// readAheadCalm is how many batches in a row of records at most an eighth of the buffer size
// halve it.
const readAheadCalm = 4

// settle ends a batch for the sizing: after readAheadCalm batches of records small for the
// buffers, they halve, and the large buffers kept for records that no longer come are let go.
// A log's large writes come in phases (a file copied, then many small files created): held
// through the small ones, 30-50 MiB of buffers sat idle while the consumer's own allocations
// took fresh memory, which is dear here (internal/hugebuf).
func (ra *readAhead) settle() {
	if ra.size > readAheadMinBuf && 8*ra.peak <= ra.size {
		ra.calm++
	} else {
		ra.calm = 0
	}
	ra.peak = 0
	if ra.calm < readAheadCalm {
		return
	}
	ra.calm = 0
	ra.size /= 2
	for {
		select {
		case <-ra.big:
		default:
			return
		}
	}
}

// send queues b for the consumer; false if Close was called.
func (ra *readAhead) send(b *batch) bool {
	ra.settle()
	select {
	case ra.out <- b:
		return true
	case <-ra.stop:
		return false
	}
}

// windowed fills batches straight from a reader's window (a native log's, or a dm-log-writes
// log's read in place): a batch ends when the window moves to a new buffer, and takes the old
// one with it. next is the reader's Next; head is the size of a record's header in the window.
func (ra *readAhead) windowed(win *window, next func() (Record, error), head int) {
	defer close(ra.done)
	defer close(ra.out)
	cur := ra.newBatch()
	stopped := false
	win.swap = func(old []byte, n int) []byte {
		// The records so far point into old; the window copies the pending bytes of the next
		// one out of it, which the consumer's reading does not disturb. So the batch goes
		// before the next buffer is taken, and that buffer can be the one the consumer has
		// just given back: two buffers in turn rather than three.
		cur.bufs = append(cur.bufs, old)
		if len(cur.recs) > 0 {
			if !ra.send(cur) {
				stopped = true
				return nil
			}
			cur = ra.newBatch()
		}
		// Grow as the window does (doubling, not trusting a record's length
		// beyond what arrives), but never below the current size.
		return ra.buffer(min(2*len(old), n+windowSize))
	}
	for {
		rec, err := next()
		if stopped {
			return
		}
		if err != nil {
			cur.bufs = append(cur.bufs, win.buf)
			cur.err = err
			ra.send(cur)
			return
		}
		cur.recs = append(cur.recs, rec)
		ra.grow(head + len(rec.Data))
	}
}

// copying fills batches from any other Reader, copying each payload into the batch's buffer
// (Data is only valid until the reader's next call).
func (ra *readAhead) copying() {
	defer close(ra.done)
	defer close(ra.out)
	cur := ra.newBatch()
	var buf []byte // cur's payload buffer, filled up to len
	// room returns n bytes at the end of buf, starting a new buffer if needed.
	room := func(n int) []byte {
		if len(buf)+n > cap(buf) {
			if len(buf) > 0 {
				cur.bufs = append(cur.bufs, buf)
			}
			ra.grow(n)
			buf = ra.buffer(n)[:0]
		}
		k := len(buf)
		buf = buf[:k+n]
		return buf[k : k+n : k+n]
	}
	for {
		rec, err := ra.r.Next()
		if err != nil {
			cur.err = err
			cur.bufs = append(cur.bufs, buf)
			ra.send(cur)
			return
		}
		if len(rec.Data) > 0 {
			p := room(len(rec.Data))
			copy(p, rec.Data)
			rec.Data = p
		}
		cur.recs = append(cur.recs, rec)
		if len(cur.recs) == readAheadRecords || len(buf) >= ra.size/2 {
			cur.bufs = append(cur.bufs, buf)
			buf = nil
			if !ra.send(cur) {
				return
			}
			cur = ra.newBatch()
		}
	}
}
