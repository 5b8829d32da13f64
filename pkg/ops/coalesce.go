package ops

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
type Coalescer struct {
	// MaxPending bounds the ops held back waiting for their run to end;
	// 0 means DefaultMaxPending.
	MaxPending int

	emit  func(*Op) error
	queue []*pending          // in order of first op; head is emitted first
	open  map[string]*pending // open run per path key
	head  int
}

// DefaultMaxPending is the Coalescer's default bound on held-back ops.
const DefaultMaxPending = 4096

type pending struct {
	op     Op
	closed bool
	key    string
}

// NewCoalescer returns a Coalescer that passes finished ops to emit (a
// Writer's Write fits). The *Op given to emit is only valid during the call.
func NewCoalescer(emit func(*Op) error) *Coalescer {
	return &Coalescer{emit: emit, open: make(map[string]*pending)}
}

func runKey(op *Op) string {
	if op.Path == "" {
		return "\x00" + string(op.Kind)
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
			for k, p := range c.open {
				if p.op.Path != "" && (touches(p.op.Path, op.Path) || touches(p.op.Path, op.To)) {
					p.closed = true
					delete(c.open, k)
				}
			}
		}
		p := &pending{op: *op, closed: true}
		c.queue = append(c.queue, p)
		return c.drain()
	}
	key := runKey(op)
	if p := c.open[key]; p != nil {
		if extends(&p.op, op) {
			p.op.Bytes += op.Bytes
			return nil
		}
		p.closed = true
		delete(c.open, key)
	}
	p := &pending{op: *op, key: key}
	c.queue = append(c.queue, p)
	c.open[key] = p
	max := c.MaxPending
	if max <= 0 {
		max = DefaultMaxPending
	}
	if len(c.queue)-c.head > max {
		h := c.queue[c.head]
		if !h.closed {
			h.closed = true
			delete(c.open, h.key)
		}
	}
	return c.drain()
}

// touches reports whether an op naming name concerns path: the same name
// or a directory above it.
func touches(path, name string) bool { return name != "" && UnderPath(path, name) }

// extends reports whether next continues the run r.
func extends(r, next *Op) bool {
	return r.Op == next.Op && r.Path == next.Path && r.Kind == next.Kind && r.Ino == next.Ino &&
		r.Bytes%512 == 0 && r.Sector+uint64(r.Bytes/512) == next.Sector
}

func (c *Coalescer) closeAll() {
	for k, p := range c.open {
		p.closed = true
		delete(c.open, k)
	}
}

// drain emits closed ops from the head of the queue.
func (c *Coalescer) drain() error {
	for c.head < len(c.queue) && c.queue[c.head].closed {
		p := c.queue[c.head]
		c.queue[c.head] = nil
		c.head++
		if err := c.emit(&p.op); err != nil {
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
