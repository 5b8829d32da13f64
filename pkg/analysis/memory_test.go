package analysis

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// The soft memory limit follows the live heap: after the heap grows by 64 MiB of data that stays
// live, the next look raises the limit past it (a limit left below the live heap made the
// collector run without pause on a million-file log). It is never lowered.
func TestMemoryLimitFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer memBudget.Store(0)
	SetMemoryBudget(8 << 20)
	before := debug.SetMemoryLimit(-1)
	var keep [][]byte
	for i := 0; i < 64; i++ {
		keep = append(keep, make([]byte, 1<<20))
	}
	runtime.GC()
	for i := 0; i < memoryTickEvery; i++ {
		memoryTick()
	}
	after := debug.SetMemoryLimit(-1)
	runtime.KeepAlive(keep) // live until here
	if after < before+56<<20 {
		t.Errorf("limit %d MiB after 64 MiB more live heap, was %d MiB: it did not follow", after>>20, before>>20)
	}
	keep = nil
	runtime.GC()
	for i := 0; i < memoryTickEvery; i++ {
		memoryTick()
	}
	if now := debug.SetMemoryLimit(-1); now != after {
		t.Errorf("limit went from %d to %d MiB when the heap shrank; it is never lowered", after>>20, now>>20)
	}
}
