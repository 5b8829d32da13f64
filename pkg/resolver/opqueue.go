package resolver

import "github.com/ext3replay/ext3replay/pkg/ops"

// opQueue holds the ops of the current record until flushRecord puts them, in chunks that
// never move: pushing copies nothing already queued, a pointer to a queued op stays valid until
// reset, and the chunks serve the next record again. A slice grown by append did all three
// badly where one record makes tens of thousands of ops (the commit of a transaction creating
// 20,000 files): on the bench's `large` case its growth copied 11 MB into 22 MB of fresh
// memory per queue, and the page faults of that memory were most of the copy's cost (perf,
// 2026-12-04: 2,500 of the run's 18,000 faults came from the namespace queue alone).
type opQueue struct {
	chunks []*[opChunk]ops.Op // chunks[i] holds ops [i*opChunk, (i+1)*opChunk)
	n      int
}

// opChunk ops make a chunk of about 70 KiB.
const opChunk = 512

func (q *opQueue) len() int { return q.n }

// at is the i-th op queued (i < len).
func (q *opQueue) at(i int) *ops.Op { return &q.chunks[i/opChunk][i%opChunk] }

// push queues op and returns where it lies.
func (q *opQueue) push(op ops.Op) *ops.Op {
	if q.n == len(q.chunks)*opChunk {
		q.chunks = append(q.chunks, new([opChunk]ops.Op))
	}
	p := q.at(q.n)
	*p = op
	q.n++
	return p
}

// pushCoalesced queues an I/O op, or extends the last op queued where op continues it.
func (q *opQueue) pushCoalesced(op ops.Op) {
	if q.n > 0 && ops.Extends(q.at(q.n-1), &op) {
		q.at(q.n - 1).Bytes += op.Bytes
		return
	}
	q.push(op)
}

// reset empties the queue, keeping its chunks; the ops' strings are let go.
func (q *opQueue) reset() {
	for i := 0; i < q.n; i += opChunk {
		clear(q.chunks[i/opChunk][:min(opChunk, q.n-i)])
	}
	q.n = 0
}
