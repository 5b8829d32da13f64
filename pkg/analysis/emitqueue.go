package analysis

import (
	"errors"
	"sync"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// opSink takes a run's ops in order: the coalescer itself, or an emitQueue in front of it.
type opSink interface {
	Add(*ops.Op) error
	Flush() error
}

// emitQueue runs the coalescer and emit on a goroutine of their own, fed in batches of ops, so
// that formatting and writing the output overlaps the resolver's next records. It pays where
// the resolver is the bottleneck and the second core idles: on the 6 GiB bench capture a
// journal transaction deleting 20,000 files produces its ops in one burst, and their jsonl took
// a quarter of that replay on the resolver's goroutine (docs/performance.md).
//
// An error from the coalescer or emit is returned by a later Add (at most the queue's depth of
// batches, emitDepth, after the op that failed: the run stops there all the same) and by Close.
type emitQueue struct {
	sink opSink
	cur  []ops.Op
	out  chan queued
	free chan []ops.Op
	done chan struct{}

	mu  sync.Mutex
	err error // the first error of the sink; set by the goroutine
}

// queued is a batch of ops, then a flush of the sink when flush is set.
type queued struct {
	ops   []ops.Op
	flush bool
}

// emitBatch is how many ops go to the goroutine at a time: a handover costs about a
// microsecond, an op's coalescing and jsonl about as much.
const emitBatch = 256

// emitDepth is how many batches may wait for the goroutine: 8,192 ops, a few MiB at most. A
// transaction's burst of ops (the large bench case's untar commits 40,000 at once) outruns the
// output for a while; with 4 batches the resolver waited 10-15 ms a run for it, and analyze of
// that case took 0.37 s against 0.36 s with 32 (medians of 21 alternating runs, 2026-12-04).
const emitDepth = 32

func newEmitQueue(sink opSink) *emitQueue {
	q := &emitQueue{sink: sink, out: make(chan queued, emitDepth), free: make(chan []ops.Op, emitDepth+2), done: make(chan struct{})}
	q.cur = make([]ops.Op, 0, emitBatch)
	go q.run()
	return q
}

func (q *emitQueue) run() {
	defer close(q.done)
	for b := range q.out {
		if q.failed() == nil {
			err := q.pass(b)
			if err != nil {
				q.mu.Lock()
				q.err = err
				q.mu.Unlock()
			}
		}
		clear(b.ops) // drop the strings
		select {
		case q.free <- b.ops[:0]:
		default:
		}
	}
}

func (q *emitQueue) pass(b queued) error {
	for i := range b.ops {
		if err := q.sink.Add(&b.ops[i]); err != nil {
			return err
		}
	}
	if b.flush {
		return q.sink.Flush()
	}
	return nil
}

func (q *emitQueue) failed() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// Add queues a copy of op.
func (q *emitQueue) Add(op *ops.Op) error {
	q.cur = append(q.cur, *op)
	if len(q.cur) == emitBatch {
		q.send(false)
		return q.failed()
	}
	return nil
}

// Flush queues a flush of the sink after the ops queued so far; it does not wait for it.
func (q *emitQueue) Flush() error {
	q.send(true)
	return q.failed()
}

func (q *emitQueue) send(flush bool) {
	q.out <- queued{ops: q.cur, flush: flush}
	select {
	case q.cur = <-q.free:
	default:
		q.cur = make([]ops.Op, 0, emitBatch)
	}
}

// Close flushes the sink after every op queued, waits for the goroutine and returns the
// sink's first error. The queue must not be used afterwards.
func (q *emitQueue) Close() error {
	q.send(true)
	close(q.out)
	<-q.done
	return q.failed()
}

// Abandon stops the goroutine without flushing the sink (a run that failed); it is a no-op
// after Close.
func (q *emitQueue) Abandon() {
	select {
	case <-q.done:
		return
	default:
	}
	q.mu.Lock()
	if q.err == nil {
		q.err = errAbandoned
	}
	q.mu.Unlock()
	close(q.out)
	<-q.done
}

var errAbandoned = errors.New("analysis: emit queue abandoned")
