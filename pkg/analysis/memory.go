package analysis

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"

	"github.com/ext3replay/ext3replay/internal/hugebuf"
)

// The memory budget. By default the Go collector lets garbage grow to as much as the live heap,
// which on a long log of bulk data doubles analyze's footprint; a soft memory limit of the live
// heap plus a budget keeps garbage to the budget instead (measured: 299 MiB peak RSS for 20 GiB
// of writes to free space without it, 225 MiB with it, same speed).
//
// The limit must follow the live heap, not stay where it was set: the resolver's held state is
// capped, but its model of the disk's metadata and its names table grow with the files a log
// touches (a run creating a million files keeps a million inodes' worth). A fixed limit below
// the live heap makes the collector run without pause: on the generated 1,000,000-file log of
// scripts/bench-scale.sh, 83% of the CPU was the collector and returning memory to the kernel
// (madvise), 59 us per namespace op against 13 at 100,000 files. So the limit is raised as the
// live heap grows (memoryTick), never lowered.
//
// Raised that way, the limit no longer binds while the live heap is under the budget (live +
// 192 MiB is more than twice a live heap of 150 MiB), and the collector's default (GOGC 100:
// garbage up to the live heap) sets the peak: on scripts/bench-soak.sh, whose held state (pending
// writes, read-ahead buffers) is about 120 MiB live, 330 MiB peak RSS against the 256 MiB promised.
// So the collector's target is also halved (GOGC 50): garbage up to half the live heap, or the
// budget, whichever is less. Measured on that soak: 217 MiB, no slower (5 GiB: 4.9 s against 5.3 s);
// on the 6 GiB / 102,000-file bench log: 215-222 MiB against 229-237, the same time. A large live
// heap (a million files) is unaffected: the budget binds first there.

var (
	memBudget atomic.Int64 // 0: no budget set
	memLimit  atomic.Int64 // the limit in force
	memTicks  atomic.Int64
)

// memoryTickEvery is how many records pass between two looks at the live heap (reading the
// metric costs about a microsecond; 256 records, hundreds at least).
const memoryTickEvery = 256

// WarmHeap readies the Go heap for a run over a log of logBytes bytes as stored: a 16th of it, up
// to 64 MiB (none under 8 MiB), mapped in huge pages on a goroutine of its own and handed back to
// the heap by the collection SetMemoryBudget runs (hugebuf.Warm), once wait has returned. The
// replay's own memory is 4 KiB blocks and small tables, which the heap takes page by page as it
// grows, one page fault each: on the 2-core VMs this runs on a fault costs several microseconds,
// and page faults were 18% of the CPU of the bench's `large` case, 14,600 of them (perf,
// 2026-12-04). Warmed with 64 MiB: 8,000 faults, analyze of its dm-log-writes log 0.39 -> 0.35 s
// and of its native log 0.39 -> 0.33 s (medians of 11 alternating runs; zstd -dc 0.23 and
// 0.27 s), peak RSS 118 -> 119 MiB (the heap grows that far anyway); the `rand` case (1 GiB of
// random bytes, few files) 0.19 -> 0.17 s, 73 -> 88 MiB. A small log, whose run would not grow the
// heap so far, is left alone: its resident memory stays its own.
func WarmHeap(logBytes int64) (wait func()) {
	n := warmSize(logBytes)
	if n == 0 {
		return func() {}
	}
	// Beside the image's indexing, which the caller starts now: the kernel's huge pages are not
	// always at hand (it may compact memory to make them), and the touch took 20-90 ms here,
	// which on the replay's goroutine put its first record at 50-170 ms instead of 40-50.
	done := make(chan struct{})
	go func() {
		defer close(done)
		hugebuf.Warm(int(n))
	}()
	return func() { <-done }
}

// warmSize is the heap WarmHeap warms for a log of logBytes: a 16th of it, at most maxWarm,
// nothing under minWarm.
func warmSize(logBytes int64) int64 {
	if n := min(logBytes/16, maxWarm); n >= minWarm {
		return n
	}
	return 0
}

const (
	maxWarm = 64 << 20
	minWarm = 8 << 20
)

// SetMemoryBudget sets the Go runtime's soft memory limit to what is live now (the indexed image)
// plus budget, unless the user set GOMEMLIMIT, and from then on raises it as the live heap grows;
// it sets GOGC to 50 unless the user set GOGC (see the comment above).
func SetMemoryBudget(budget int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	limit := int64(ms.HeapAlloc) + budget
	memBudget.Store(budget)
	memLimit.Store(limit)
	debug.SetMemoryLimit(limit)
}

// memoryTick is called once per record: now and then it raises the limit to the live heap (as
// of the last collection) plus the budget, when that is above it.
func memoryTick() {
	if memTicks.Add(1)%memoryTickEvery != 0 {
		return
	}
	budget := memBudget.Load()
	if budget == 0 {
		return
	}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if want := int64(s[0].Value.Uint64()) + budget; want > memLimit.Load() {
		memLimit.Store(want)
		debug.SetMemoryLimit(want)
	}
}
