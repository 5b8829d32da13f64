package blklog

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// dmBenchLog builds a dm-log-writes log of 64 MiB of incompressible write payload (writes of
// 64 KiB to 1 MiB, a flush after every eighth), raw and zstd-compressed.
func dmBenchLog(b *testing.B) (raw, zst []byte) {
	b.Helper()
	var buf seekBuffer
	w, err := NewDMLogWriter(&buf)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for i, done := 0, 0; done < 64<<20; i++ {
		n := (1 + rng.IntN(16)) * 64 << 10
		rec := Record{Type: TypeWrite, Sector: uint64(rng.IntN(1<<20)) * 8, Length: uint32(n), Data: data[:n]}
		if err := w.Write(&rec); err != nil {
			b.Fatal(err)
		}
		if i%8 == 7 {
			if err := w.Write(&Record{Type: TypeFlush}); err != nil {
				b.Fatal(err)
			}
		}
		done += n
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	return buf.b, enc.EncodeAll(buf.b, nil)
}

// seekBuffer is an in-memory io.WriteSeeker.
type seekBuffer struct {
	b   []byte
	off int
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if need := s.off + len(p); need > len(s.b) {
		s.b = append(s.b, make([]byte, need-len(s.b))...)
	}
	copy(s.b[s.off:], p)
	s.off += len(p)
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		s.off = int(off)
	case io.SeekCurrent:
		s.off += int(off)
	case io.SeekEnd:
		s.off = len(s.b) + int(off)
	}
	return int64(s.off), nil
}

// BenchmarkDMLog reads a dm-log-writes log of incompressible payload, raw and zstd, through
// the reader alone and through ReadAhead (as analyze does, every payload byte looked at),
// against the floor: plain zstd decoding of the same bytes (zst), a plain copy (raw).
func BenchmarkDMLog(b *testing.B) {
	raw, zst := dmBenchLog(b)
	for _, c := range []struct {
		name string
		file []byte
	}{{"raw", raw}, {"zst", zst}} {
		b.Run(c.name+"/floor", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			buf := make([]byte, 256<<10)
			for b.Loop() {
				var src io.Reader = bytes.NewReader(c.file)
				if c.name == "zst" {
					d, err := newZstdReader(src)
					if err != nil {
						b.Fatal(err)
					}
					src = d
					defer d.Close()
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{src}, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, ahead := range []bool{false, true} {
			name := c.name + "/reader"
			if ahead {
				name = c.name + "/read-ahead"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				b.ReportAllocs()
				for b.Loop() {
					r, err := NewReader(bytes.NewReader(c.file), "bench")
					if err != nil {
						b.Fatal(err)
					}
					if ahead {
						r = ReadAhead(r)
					}
					var sum uint64
					for {
						rec, err := r.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						for j := 0; j < len(rec.Data); j += 4096 {
							sum += uint64(rec.Data[j])
						}
					}
					r.Close()
					if sum == 1 {
						b.Log(sum)
					}
				}
			})
		}
	}
}
