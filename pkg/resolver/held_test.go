package resolver

import (
	"testing"
)

// TestPendingStamps: pending writes keep their request's seq, time and journaled flag through
// the shared stamps, also after the stamps no write refers to any more have been compacted
// away, and the stamps stay bounded by the pending writes (not by the requests seen).
func TestPendingStamps(t *testing.T) {
	h := newHeldIO()
	want := map[uint64]pendWrite{}
	add := func(b uint64, p pendWrite) {
		if _, ok := h.pendW[b]; ok {
			t.Fatalf("block %d added twice", b)
		}
		h.pendW[b] = pendRef{stamp: h.stamp(p), off: p.off, n: p.n}
		want[b] = p
	}
	// Request 1: 256 blocks, one stamp.
	for b := uint64(0); b < 256; b++ {
		add(b, pendWrite{seq: 1, t: 0.5, n: 4096})
	}
	if len(h.stamps) != 1 {
		t.Fatalf("one request's writes made %d stamps", len(h.stamps))
	}
	add(1000, pendWrite{seq: 2, t: 0.75, off: 512, n: 1024, journaled: true})
	// Many requests whose writes are claimed at once: stamps must not pile up.
	for i := 0; i < 100000; i++ {
		b := uint64(2000 + i)
		h.pendW[b] = pendRef{stamp: h.stamp(pendWrite{seq: int64(10 + i), t: float64(i), n: 4096}), n: 4096}
		delete(h.pendW, b)
	}
	if n := len(h.stamps); n > 2*len(h.pendW)+1024+1 {
		t.Errorf("%d stamps kept for %d pending writes", n, len(h.pendW))
	}
	for b, w := range want {
		got, ok := h.pend(b)
		if !ok || got != w {
			t.Errorf("block %d: pending %+v (%v), want %+v", b, got, ok, w)
		}
	}
	if _, ok := h.pend(1); !ok {
		t.Error("block 1 lost its pending write")
	}
	if _, ok := h.pend(5000); ok {
		t.Error("a settled block still has a pending write")
	}
}
