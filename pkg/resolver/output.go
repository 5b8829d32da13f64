package resolver

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"sort"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// output is what the current record made certain, queued until flushRecord puts it in order,
// and the emit function it goes to.
type output struct {
	emit func(*ops.Op) error
	err  error   // first error from emit, or what else stopped the run (fail)
	ns   opQueue // namespace ops (and anomalies) of the current batch
	io   opQueue // I/O ops of the current record
	// byRank is ns in the order flushRecord puts it (reused from record to record).
	byRank []rankedOp
	// one is the op put at once by nsRemoval: emit gets a pointer valid only during the call,
	// and an op of the stack would escape through it, one allocation per deleted file.
	one   ops.Op
	stats Stats
}

func newOutput(emit func(*ops.Op) error) output {
	return output{emit: emit, stats: Stats{Ops: make(map[ops.Type]int64)}}
}

// put counts op and passes it on; after the first error of emit it only counts.
func (o *output) put(op *ops.Op) {
	o.stats.Ops[op.Op]++
	if op.Op == ops.Anomaly {
		o.stats.Anomalies++
	}
	if o.err == nil {
		o.err = o.emit(op)
	}
}

// fail stops the run with err (the first one stays): Record returns it.
func (o *output) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// anomaly reports a structure that cannot be valid.
func (r *Resolver) anomaly(path string, block uint64, format string, args ...any) {
	op := ops.Op{Seq: r.now.seq, T: r.now.t, Op: ops.Anomaly, Path: path, Reason: fmt.Sprintf(format, args...)}
	if block != 0 {
		op.Sector = block * r.spb
	}
	r.output.ns.push(op)
}

// nsOp queues a namespace op of the current record.
func (r *Resolver) nsOp(typ ops.Type, ino uint32, path string) *ops.Op {
	return r.output.ns.push(ops.Op{Seq: r.now.seq, T: r.now.t, Op: typ, Path: path, Ino: ino})
}

// nsRemoval reports a name removed: a delete, unlink or rmdir of the current record. Deletes and
// unlinks come first among a record's namespace ops (nsRank 0, in the order they were made), and
// nothing is put between now and the flushRecord that would put them (what is put outside
// flushRecord is put right after one): they are put at once, the output is the same, and a
// transaction deleting 50,000 files does not queue them (growing nsBuf to 6 MiB of new memory
// was a tenth of the resolver's CPU on such a log).
func (r *Resolver) nsRemoval(typ ops.Type, ino uint32, path string) {
	op := ops.Op{Seq: r.now.seq, T: r.now.t, Op: typ, Path: path, Ino: ino}
	if typ == ops.Delete || typ == ops.Unlink {
		r.output.one = op
		r.output.put(&r.output.one)
		r.output.one = ops.Op{} // drop the path
		return
	}
	r.output.ns.push(op)
}

// flushRecord emits the ops the current record made certain: namespace ops first (sorted so
// that a batch reads naturally), then held I/O of inodes that just got a name, then I/O.
func (r *Resolver) flushRecord(drainHeld bool) {
	if r.output.ns.len() > 0 {
		r.output.putNamespace()
	}
	if len(r.held.nameless) > 0 && (drainHeld || (!r.mode.decidedAtFlush() && r.ns.namesGen != r.held.drainGen)) {
		r.held.drainGen = r.ns.namesGen // nothing held can get a name until the names change
		inos := make([]uint32, 0, len(r.held.nameless))
		for ino := range r.held.nameless {
			inos = append(inos, ino)
		}
		sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
		for _, ino := range inos {
			l := r.held.nameless[ino]
			p := r.ioPath(ino)
			if p == "" {
				p = r.ns.orphanPath[ino]
			}
			var keep []ops.Op
			for i := range l {
				switch {
				case p != "":
					l[i].Path = p
				case l[i].Path == "":
					// Still no name: keep holding (the end of the log names it at the latest).
					keep = append(keep, l[i])
					continue
				}
				// else: the file lost its name since; report the path it had then.
				l[i].Seq, l[i].T = r.now.seq, r.now.t
				r.output.put(&l[i])
			}
			if len(keep) == 0 {
				delete(r.held.nameless, ino)
			} else {
				r.held.nameless[ino] = keep
			}
		}
	}
	for i := range r.output.io.len() {
		op := r.output.io.at(i)
		if op.Ino != 0 && !(r.mode.decidedAtFlush() && op.Op == ops.Read) {
			// Paths as they are once this record's namespace changes are decided (a block
			// claimed by a file whose name the same transaction gives).
			p := r.ioPath(op.Ino)
			if r.ns.touched.len() > 0 {
				// Name changes written home are decided at the next flush: until then
				// report the names as last decided.
				p = r.settledPath(op.Ino)
			}
			if p == "" {
				p = r.ns.orphanPath[op.Ino]
			}
			if p != "" {
				op.Path = p
			}
			if op.Path == "" {
				r.held.nameless[op.Ino] = appendCoalesced(r.held.nameless[op.Ino], *op)
				continue
			}
		}
		r.output.put(op)
	}
	r.output.io.reset()
}

// rankedOp is a queued namespace op with its nsRank.
type rankedOp struct {
	rank int
	op   *ops.Op
}

// putNamespace puts the namespace ops queued, in nsRank order (stable), and empties the queue.
// Each op's rank is computed once, not at every comparison as the sort over the queue did.
func (o *output) putNamespace() {
	q := &o.ns
	for i := range q.len() {
		op := q.at(i)
		o.byRank = append(o.byRank, rankedOp{nsRank(op), op})
	}
	slices.SortStableFunc(o.byRank, func(a, b rankedOp) int { return cmp.Compare(a.rank, b.rank) })
	for _, e := range o.byRank {
		o.put(e.op)
	}
	clear(o.byRank) // the pointers into q
	o.byRank = o.byRank[:0]
	q.reset()
}

// maxHeld bounds heldW; past it the oldest are reported by their owner at that moment.
const maxHeld = 1 << 16

// nsRank orders the namespace ops made certain by one record: removals, then directories
// created (parents first), moves, files created, links, directories removed (children first).
func nsRank(op *ops.Op) int {
	depth := bytes.Count([]byte(op.Path), []byte{'/'})
	switch op.Op {
	case ops.Delete, ops.Unlink:
		return 0
	case ops.Mkdir:
		return 1000 + depth
	case ops.Move:
		return 3000
	case ops.Create, ops.Symlink, ops.Mknod:
		return 4000
	case ops.Link:
		return 5000
	case ops.Rmdir:
		return 7000 - depth
	case ops.Truncate:
		return 8000
	}
	return 9000
}
