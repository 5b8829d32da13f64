package ops

import (
	"strconv"
	"strings"
)

// Coalescer merges consecutive reads or writes of one file into one op, so
// that a 1 MiB sequential write sent as 256 requests prints as one line.
//
// A run on a file is extended by an op with the same op type, path, kind
// and inode whose first sector follows the run's last one. The run ends
// (and is emitted) when:
//   - any other op on the same path arrives (a read between writes, a
//     write of a different kind such as an indirect block, a truncate,
//     or a non-contiguous write);
//   - a namespace op or anomaly names the file or a directory above it
//     (a move of a parent directory changes what the path means); one
//     without a path closes every open run;
//   - Flush is called (the caller may do so at device flushes);
//   - more than MaxPending ops are waiting (bounds memory).
//
// I/O on other files does not end a run: interleaved sequential writes to
// two files still give two lines. Output keeps the order of each run's
// first op, so emitted ops stay sorted by Seq when the input is. A merged
// op keeps the Seq and T of its first piece.
//
// Ops without a path (journal, bitmaps, unowned blocks) coalesce by kind.
//
// Open runs are indexed by every directory above their path, so a namespace
// op costs the runs it ends, not the runs open: a metadata-heavy log keeps
// thousands of files' runs open at once.
type Coalescer struct {
	// MaxPending bounds the ops held back waiting for their run to end;
	// 0 means DefaultMaxPending.
	MaxPending int

	emit  func(*Op) error
	queue []*pending          // in order of first op; head is emitted first
	open  map[string]*pending // open run per path key
	// under holds, for each directory d, the open runs whose path starts
	// with d+"/" (d is "" for the root), keyed by path.
	under map[string]map[string]*pending
	head  int
	free  []*pending // emitted, referenced nowhere: reused by Add (one allocation per op was a tenth of the ops' cost)
}

// DefaultMaxPending is the Coalescer's default bound on held-back ops.
const DefaultMaxPending = 4096

type pending struct {
	op     Op
	closed bool
	key    string
}

// NewCoalescer returns a Coalescer that passes finished ops to emit (a
// Writer's Write fits). The *Op given to emit is only valid during the call,
// and may be the one given to Add: emit must not modify it.
func NewCoalescer(emit func(*Op) error) *Coalescer {
	return &Coalescer{emit: emit, open: make(map[string]*pending), under: make(map[string]map[string]*pending)}
}

func runKey(op *Op) string {
	if op.Path == "" {
		return "\x00" + string(op.Kind) + "\x00" + strconv.Itoa(op.Partition)
	}
	return op.Path
}

// Add feeds the next op, in log order.
func (c *Coalescer) Add(op *Op) error {
	if !op.IsIO() {
		// Close the runs whose path this op may change the meaning of,
		// then queue the op behind the runs that started before it.
		if op.Path == "" && op.To == "" {
			c.closeAll()
		} else {
			c.closeUnder(op.Path)
			c.closeUnder(op.To)
		}
		if c.head == len(c.queue) {
			// Nothing held back before it: out at once, without a copy (a log deleting
			// 50,000 files is 50,000 of these).
			return c.emit(op)
		}
		c.queue = append(c.queue, c.newPending(op, "", true))
		c.bound()
		return c.drain()
	}
	key := runKey(op)
	if p := c.open[key]; p != nil {
		if Extends(&p.op, op) {
			p.op.Bytes += op.Bytes
			return nil
		}
		c.close(p)
	}
	p := c.newPending(op, key, false)
	c.queue = append(c.queue, p)
	c.addOpen(p)
	c.bound()
	return c.drain()
}

// bound ends the oldest run once more than MaxPending ops wait, whatever kind of op the last
// one was: namespace ops queue behind an open run too (before, nothing bounded those: 50,000
// deletes behind one file's open run were 50,000 ops held, in 9 MB of fresh memory).
func (c *Coalescer) bound() {
	max := c.MaxPending
	if max <= 0 {
		max = DefaultMaxPending
	}
	if len(c.queue)-c.head > max {
		if h := c.queue[c.head]; !h.closed {
			c.close(h)
		}
	}
}

// newPending is a pending op, a recycled one if drain left any.
func (c *Coalescer) newPending(op *Op, key string, closed bool) *pending {
	if n := len(c.free); n > 0 {
		p := c.free[n-1]
		c.free = c.free[:n-1]
		*p = pending{op: *op, key: key, closed: closed}
		return p
	}
	return &pending{op: *op, key: key, closed: closed}
}

// addOpen records p as the open run of its key.
func (c *Coalescer) addOpen(p *pending) {
	c.open[p.key] = p
	path := p.op.Path
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			m := c.under[path[:i]]
			if m == nil {
				m = make(map[string]*pending)
				c.under[path[:i]] = m
			}
			m[path] = p
		}
	}
}

// close ends the open run p.
func (c *Coalescer) close(p *pending) {
	p.closed = true
	delete(c.open, p.key)
	path := p.op.Path
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			if m := c.under[path[:i]]; m != nil {
				delete(m, path)
				if len(m) == 0 {
					delete(c.under, path[:i])
				}
			}
		}
	}
}

// closeUnder ends the runs on files an op naming name concerns: the file
// itself and, for a directory, everything below it (underPath).
func (c *Coalescer) closeUnder(name string) {
	switch name {
	case "":
		return
	case "/":
		for _, p := range c.open {
			if p.op.Path != "" {
				c.close(p)
			}
		}
		return
	}
	if p := c.open[name]; p != nil && p.op.Path != "" {
		c.close(p)
	}
	for _, p := range c.under[strings.TrimSuffix(name, "/")] {
		c.close(p) // deletes from the map being ranged over: allowed
	}
}

// Extends reports whether I/O op next continues the run r: the same op, file, kind, inode and
// partition, starting at the sector after r's last. The Coalescer's rule, and the resolver's when
// it merges the pieces of one record.
func Extends(r, next *Op) bool {
	return r.Op == next.Op && r.Path == next.Path && r.Kind == next.Kind && r.Ino == next.Ino && r.Partition == next.Partition &&
		r.Bytes%512 == 0 && r.Sector+uint64(r.Bytes/512) == next.Sector
}

func (c *Coalescer) closeAll() {
	for k, p := range c.open {
		p.closed = true
		delete(c.open, k)
	}
	clear(c.under)
}

// drain emits closed ops from the head of the queue.
func (c *Coalescer) drain() error {
	for c.head < len(c.queue) && c.queue[c.head].closed {
		p := c.queue[c.head]
		c.queue[c.head] = nil
		c.head++
		err := c.emit(&p.op)
		// Closed and out of the queue, p is in no map any more (close, closeAll).
		*p = pending{}
		c.free = append(c.free, p)
		if err != nil {
			return err
		}
	}
	// Reuse the slice once the emitted prefix dominates it.
	if c.head > 0 && c.head*2 >= len(c.queue) {
		n := copy(c.queue, c.queue[c.head:])
		clear(c.queue[n:])
		c.queue = c.queue[:n]
		c.head = 0
	}
	return nil
}

// Flush ends every open run and emits everything held back.
func (c *Coalescer) Flush() error {
	c.closeAll()
	return c.drain()
}

// Coalesce returns ops with runs merged as a Coalescer does.
func Coalesce(in []Op) []Op {
	out := make([]Op, 0, len(in))
	c := NewCoalescer(func(op *Op) error { out = append(out, *op); return nil })
	for i := range in {
		_ = c.Add(&in[i]) // emit never fails
	}
	_ = c.Flush()
	return out
}
