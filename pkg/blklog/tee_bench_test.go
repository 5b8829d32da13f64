package blklog

import (
	"io"
	"testing"
)

// BenchmarkTee is what record --analyze adds to the recorder's request path: logging a mix of
// records through a Tee (copy into the queue) against logging them straight to the Writer (the
// reference, same run). "drained" has a consumer keeping up; "behind" a consumer that never
// reads, so the queue overflows at once and Write only logs. Compare the ns/op of each with
// "writer": the ratio is the cost to the guest's requests.
func BenchmarkTee(b *testing.B) {
	recs := sampleRecords(2000, 21)
	var bytes int64
	for i := range recs {
		bytes += int64(len(recs[i].Data))
	}
	h := Header{DiskSize: 1 << 30, Source: "bench"}
	run := func(b *testing.B, sink func(w *Writer) (Sink, func())) {
		b.SetBytes(bytes)
		for i := 0; i < b.N; i++ {
			w, err := NewWriter(io.Discard, h)
			if err != nil {
				b.Fatal(err)
			}
			s, done := sink(w)
			for j := range recs {
				if err := s.Write(&recs[j]); err != nil {
					b.Fatal(err)
				}
			}
			w.Close()
			done()
		}
	}
	b.Run("writer", func(b *testing.B) {
		run(b, func(w *Writer) (Sink, func()) { return w, func() {} })
	})
	b.Run("drained", func(b *testing.B) {
		run(b, func(w *Writer) (Sink, func()) {
			t := NewTee(w, "", h, 0, 0)
			r := t.Live(FollowOptions{})
			end := make(chan struct{})
			go func() {
				for {
					if _, err := r.Next(); err != nil {
						break
					}
				}
				close(end)
			}()
			return t, func() { t.Finish(true); <-end }
		})
	})
	b.Run("behind", func(b *testing.B) {
		run(b, func(w *Writer) (Sink, func()) {
			t := NewTee(w, "", h, 1, 0)
			return t, func() { t.Finish(true) }
		})
	})
}
