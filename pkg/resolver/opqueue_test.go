package resolver

import (
	"fmt"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// opQueue behaves as the slice it replaced, across chunk boundaries and resets: ops come back in
// order, a pointer push returned still points at its op after later pushes (nsOp's callers fill
// in fields through it), pushCoalesced merges as appendCoalesced does, and reset lets go of the
// ops' strings while the chunks stay for the next record.
func TestOpQueue(t *testing.T) {
	var q opQueue
	for round := range 3 {
		var ref []ops.Op
		var first *ops.Op
		n := 3*opChunk + 7 + round
		for i := range n {
			op := ops.Op{Seq: int64(i), Op: ops.Write, Path: fmt.Sprintf("/f%d", i/2), Ino: uint32(i / 2), Sector: uint64(8 * i), Bytes: 4096}
			if i%5 == 0 {
				p := q.push(ops.Op{Seq: int64(i), Op: ops.Create, Path: fmt.Sprintf("/n%d", i)})
				ref = append(ref, *p)
				if first == nil {
					first = p
				}
			}
			q.pushCoalesced(op)
			ref = appendCoalesced(ref, op)
		}
		first.To = "kept" // a pointer from push stays the op's after 3 chunks of pushes
		ref[0].To = "kept"
		if q.len() != len(ref) {
			t.Fatalf("round %d: %d ops queued, the slice holds %d", round, q.len(), len(ref))
		}
		for i := range ref {
			if got := *q.at(i); got != ref[i] {
				t.Fatalf("round %d: op %d is %+v, want %+v", round, i, got, ref[i])
			}
		}
		chunks := len(q.chunks)
		q.reset()
		if q.len() != 0 || len(q.chunks) != chunks {
			t.Fatalf("round %d: after reset %d ops, %d chunks (had %d)", round, q.len(), len(q.chunks), chunks)
		}
		for _, c := range q.chunks {
			for i := range c {
				if c[i].Path != "" {
					t.Fatalf("round %d: reset kept the path %q alive", round, c[i].Path)
				}
			}
		}
	}
}
