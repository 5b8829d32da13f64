package resolver

import (
	"testing"
)

// TestPendingStamps: pending writes keep their request's seq, time and journaled flag through
// the shared stamps, also after the stamps no write refers to any more have been compacted
// away, and the stamps stay bounded by the pending writes (not by the requests seen).
func TestPendingStamps(t *testing.T) {
	h := newHeldIO(4096)
	want := map[uint64]pendWrite{}
	add := func(b uint64, p pendWrite) {
		if !h.add(b, p) {
			t.Fatalf("block %d added twice", b)
		}
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
		p := pendWrite{seq: int64(10 + i), t: float64(i), n: 4096}
		if i%2 == 1 {
			p.off, p.n = 512, 512 // kept in pendW rather than in a run
		}
		if !h.add(b, p) {
			t.Fatalf("block %d refused", b)
		}
		if got, ok := h.take(b); !ok || got != p {
			t.Fatalf("block %d: took %+v (%v), want %+v", b, got, ok, p)
		}
	}
	if n := len(h.stamps); n > 2*(len(h.pendW)+h.inRuns)+1024+1 {
		t.Errorf("%d stamps kept for %d pending writes", n, len(h.pendW)+h.inRuns)
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

// TestPendingRuns: whole-block writes are held in runs, and every block of a run is found,
// refused a second first write, and taken alone whatever the order of the claims (front, back,
// middle), as the map held them.
func TestPendingRuns(t *testing.T) {
	h := newHeldIO(4096)
	w1 := pendWrite{seq: 1, t: 1, n: 4096}
	w2 := pendWrite{seq: 2, t: 2, n: 4096, journaled: true}
	for b := uint64(100); b < 110; b++ {
		h.add(b, w1)
	}
	for b := uint64(90); b < 100; b++ { // adjacent, another request: its own run
		h.add(b, w2)
	}
	h.add(120, pendWrite{seq: 3, off: 1024, n: 512}) // partial: not in a run
	if len(h.runs) != 2 || h.inRuns != 20 || len(h.pendW) != 1 {
		t.Fatalf("runs %+v (%d blocks), %d in pendW; want 2 runs of 20 blocks, 1 in pendW", h.runs, h.inRuns, len(h.pendW))
	}
	if h.add(105, w2) || h.add(90, w1) || h.add(120, w1) {
		t.Fatal("a block with a pending write took another as its first")
	}
	for _, b := range []uint64{105, 100, 109, 95, 106, 104, 90, 99} {
		want := w1
		if b < 100 {
			want = w2
		}
		if got, ok := h.take(b); !ok || got != want {
			t.Fatalf("block %d: took %+v (%v), want %+v", b, got, ok, want)
		}
		if _, ok := h.take(b); ok {
			t.Fatalf("block %d taken twice", b)
		}
	}
	var left []uint64
	for b := uint64(80); b < 130; b++ {
		if _, ok := h.pend(b); ok {
			left = append(left, b)
		}
	}
	wantLeft := []uint64{91, 92, 93, 94, 96, 97, 98, 101, 102, 103, 107, 108, 120}
	if len(left) != len(wantLeft) {
		t.Fatalf("pending blocks %v, want %v", left, wantLeft)
	}
	for i := range left {
		if left[i] != wantLeft[i] {
			t.Fatalf("pending blocks %v, want %v", left, wantLeft)
		}
	}
	if h.inRuns+len(h.pendW) != len(wantLeft) {
		t.Errorf("counted %d blocks in runs and %d in pendW, want %d in all", h.inRuns, len(h.pendW), len(wantLeft))
	}
	for i := 1; i < len(h.runs); i++ {
		if h.runs[i].start < h.runs[i-1].end() {
			t.Fatalf("runs out of order or overlapping: %+v", h.runs)
		}
	}
}

// TestPendingRunsBounded: claims that cut runs in the middle, far more often than maxPendRuns, keep
// the runs bounded (the rest of a run moves to pendW) and lose no pending write.
func TestPendingRunsBounded(t *testing.T) {
	h := newHeldIO(4096)
	const n = 4 * maxPendRuns * 4
	for q := uint64(0); q < 4; q++ { // four requests, one run each
		for b := q * n / 4; b < (q+1)*n/4; b++ {
			h.add(b, pendWrite{seq: int64(q), n: 4096})
		}
	}
	for b := uint64(1); b < n; b += 2 { // every other block: a split each time
		if _, ok := h.take(b); !ok {
			t.Fatalf("block %d lost", b)
		}
	}
	if len(h.runs) > maxPendRuns {
		t.Errorf("%d runs, more than %d", len(h.runs), maxPendRuns)
	}
	for b := uint64(0); b < n; b++ {
		p, ok := h.pend(b)
		if ok != (b%2 == 0) || ok && (p.seq != int64(b/(n/4)) || p.n != 4096 || p.off != 0) {
			t.Fatalf("block %d: pending %+v %v", b, p, ok)
		}
	}
	if got := h.inRuns + len(h.pendW); got != n/2 {
		t.Errorf("%d blocks counted in runs and pendW, want %d", got, n/2)
	}
}
