package blklog

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"testing"
)

// BenchmarkLogFile compares reading the native log named by
// $EXT3REPLAY_BENCH_LOG with the blklog reader (records, CRCs), plain and
// through ReadAhead, against plain zstd decoding of the same file (the floor). The file is generated
// (>= 1 GiB of write payload) if missing. scripts/bench-log.sh runs it.
func BenchmarkLogFile(b *testing.B) {
	path := os.Getenv("EXT3REPLAY_BENCH_LOG")
	if path == "" {
		b.Skip("set EXT3REPLAY_BENCH_LOG=FILE (scripts/bench-log.sh does)")
	}
	if _, err := os.Stat(path); err != nil {
		generateBenchLog(b, path, 1<<30)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	var payload int64
	b.Run("zstd-floor", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			d, err := newZstdReader(f)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, d)
			if err != nil {
				b.Fatal(err)
			}
			d.Close()
			f.Close()
			b.SetBytes(n)
		}
	})
	b.Run("blklog-reader", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			payload = 0
			for {
				rec, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				payload += int64(len(rec.Data))
			}
			r.Close()
		}
		b.ReportMetric(float64(payload)/(1<<20), "MiB-payload")
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-file")
	})
	// The pipeline analyze uses: decoding on another goroutine, the payload
	// read (summed) on this one, as a consumer that looks at every byte would.
	b.Run("read-ahead", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			readAheadPass(b, path, nil)
		}
	})
	// The same with a payload filter, as analyze reads a log file: units that start with a
	// byte over 16 (a stand-in for the resolver's tests) are left out, and the consumer looks
	// only at the units kept.
	b.Run("read-ahead-filtered", func(b *testing.B) {
		f := &PayloadFilter{Unit: 4096, Skip: func(_ uint64, p []byte) bool { return p[0] > 16 }}
		var left int
		for i := 0; i < b.N; i++ {
			left = readAheadPass(b, path, f)
		}
		b.ReportMetric(float64(left)*4096/(1<<20), "MiB-left-out")
	})
}

// readAheadPass reads the log at path through ReadAhead, with filter f if not nil, looking at
// the first byte of every 4 KiB of payload kept; it returns how many were left out.
func readAheadPass(b *testing.B, path string, f *PayloadFilter) (left int) {
	fr, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	r := ReadAhead(fr)
	defer r.Close()
	if f != nil && !SetPayloadFilter(r, *f) {
		b.Fatal("the filter was refused")
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
		for j := 0; j+8 <= len(rec.Data); j += 4096 {
			if rec.Omitted.Has(j) {
				left++
				continue
			}
			sum += uint64(rec.Data[j])
		}
	}
	if sum == 1 {
		b.Log(sum) // keeps the loop
	}
	return left
}

// generateBenchLog writes a log with size bytes of write payload: 64 KiB
// writes, a quarter random bytes and the rest repetitive (like file data and
// metadata), a flush every 32 writes.
func generateBenchLog(b *testing.B, path string, size int64) {
	b.Logf("generating %s (%d MiB of payload)", path, size>>20)
	// The writes land anywhere in 64 GiB (sector < 2^27): the disk is that big, since readers
	// refuse a record past the header's disk size as damage.
	w, err := Create(path+".tmp", Header{DiskSize: 64<<30 + 1<<20, Source: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 64<<10)
	text := bytes.Repeat([]byte("ext3replay benchmark data, block "), 2048)
	for i, done := 0, int64(0); done < size; i++ {
		for j := 0; j < len(data)/4; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		copy(data[len(data)/4:], text[i%512:])
		rec := Record{Type: TypeWrite, Sector: uint64(rng.IntN(1<<24)) * 8, Length: uint32(len(data)), Data: data, Flags: FlagHasTime, TimeNS: int64(i) * 1000}
		if err := w.Write(&rec); err != nil {
			b.Fatal(err)
		}
		if i%32 == 31 {
			if err := w.Write(&Record{Type: TypeFlush}); err != nil {
				b.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		done += int64(len(data))
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
}
