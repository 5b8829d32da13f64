package analysis

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// recordingSink notes what it is given: "add SEQ PATH" and "flush", failing at the op of seq
// failAt (-1: never).
type recordingSink struct {
	got    []string
	failAt int64
}

var errSink = errors.New("sink failed")

func (s *recordingSink) Add(op *ops.Op) error {
	s.got = append(s.got, fmt.Sprint("add ", op.Seq, " ", op.Path))
	if op.Seq == s.failAt {
		return errSink
	}
	return nil
}

func (s *recordingSink) Flush() error {
	s.got = append(s.got, "flush")
	return nil
}

// The sink sees every op and flush in the order they were queued, the ops unchanged even though
// the caller reuses its Op, and a last flush at Close.
func TestEmitQueueOrder(t *testing.T) {
	sink := &recordingSink{failAt: -1}
	q := newEmitQueue(sink)
	var want []string
	var op ops.Op
	for i := range 3*emitBatch + 17 {
		op.Seq, op.Path = int64(i), fmt.Sprint("/f", i)
		must(t, q.Add(&op))
		want = append(want, fmt.Sprint("add ", i, " /f", i))
		if i%100 == 99 {
			must(t, q.Flush())
			want = append(want, "flush")
		}
	}
	must(t, q.Close())
	want = append(want, "flush")
	check(t, fmt.Sprint(sink.got) == fmt.Sprint(want), "the sink saw %d calls, want %d in order", len(sink.got), len(want))
	q.Abandon() // after Close: nothing
}

// A failing sink: a later Add returns its error, Close returns it, and the sink is not called
// again after it failed.
func TestEmitQueueError(t *testing.T) {
	sink := &recordingSink{failAt: 10}
	q := newEmitQueue(sink)
	var err error
	n := 0
	for ; err == nil && n < 100*emitBatch; n++ {
		err = q.Add(&ops.Op{Seq: int64(n)})
	}
	check(t, errors.Is(err, errSink), "Add returned %v, want the sink's error", err)
	check(t, n <= 10+(emitDepth+4)*emitBatch, "the error came back %d ops after it happened", n-10)
	check(t, errors.Is(q.Close(), errSink), "Close did not return the sink's error")
	check(t, len(sink.got) == 11, "the sink was called %d times after failing", len(sink.got)-11)
}

// Abandon stops the goroutine without flushing the sink, and a queue abandoned before Close
// does not block.
func TestEmitQueueAbandon(t *testing.T) {
	sink := &recordingSink{failAt: -1}
	q := newEmitQueue(sink)
	for i := range emitBatch + 1 {
		must(t, q.Add(&ops.Op{Seq: int64(i)}))
	}
	q.Abandon()
	for _, g := range sink.got {
		check(t, g != "flush", "Abandon flushed the sink")
	}
}
