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

// The warm-up's size: nothing for a small log (its run's memory stays its own) nor a pipe (0),
// a 16th of a larger one, never more than 64 MiB however large the log.
func TestWarmSize(t *testing.T) {
	for _, c := range []struct{ log, want int64 }{
		{0, 0}, {-1, 0}, {100 << 20, 0}, {128<<20 - 1, 0}, {128 << 20, 8 << 20},
		{400 << 20, 25 << 20}, {1 << 30, 64 << 20}, {1 << 40, 64 << 20},
	} {
		if got := warmSize(c.log); got != c.want {
			t.Errorf("warmSize(%d MiB) = %d bytes, want %d", c.log>>20, got, c.want)
		}
	}
	WarmHeap(1 << 20)() // nothing to wait for: returns at once
}
