package ops

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
)

// synthRun is an untar-like run: n files created in 100 directories, each
// written in 4 contiguous pieces, one in ten renamed.
func synthRun(n int) []Op {
	var run []Op
	seq := int64(0)
	for d := 0; d < 100; d++ {
		run = append(run, Op{Seq: seq, Op: Mkdir, Path: fmt.Sprintf("/src/d%d", d)})
		seq++
	}
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("/src/d%d/file%d.c", i%100, i)
		run = append(run, Op{Seq: seq, Op: Create, Path: p, Ino: uint32(i + 100)})
		for k := 0; k < 4; k++ {
			run = append(run, Op{Seq: seq, T: float64(seq) / 1000, Op: Write, Path: p, Ino: uint32(i + 100),
				Sector: uint64(i*32 + k*8), Bytes: 4096, Kind: KindData})
		}
		run = append(run, Op{Seq: seq, Op: Write, Sector: uint64(1 << 20), Bytes: 4096, Kind: KindJournal})
		if i%10 == 0 {
			run = append(run, Op{Seq: seq, Op: Move, Path: p, To: p + ".orig"})
		}
		seq++
	}
	return run
}

func encodeRun(b *testing.B, run []Op) []byte {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, "jsonl")
	for i := range run {
		if err := w.Write(&run[i]); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	return buf.Bytes()
}

func BenchmarkReadJSONL(b *testing.B) {
	data := encodeRun(b, synthRun(20000))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ReadJSONL(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadJSONLReference is plain line splitting plus json.Unmarshal:
// the floor ReadJSONL's strictness is measured against.
func BenchmarkReadJSONLReference(b *testing.B) {
	data := encodeRun(b, synthRun(20000))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s := bufio.NewScanner(bytes.NewReader(data))
		var out []Op
		for s.Scan() {
			var op Op
			if err := json.Unmarshal(s.Bytes(), &op); err != nil {
				b.Fatal(err)
			}
			out = append(out, op)
		}
		_ = out
	}
}

// BenchmarkWrite measures each output format on the same run, and as reference the jsonl of
// encoding/json (what the jsonl writer used before it wrote its lines itself).
func BenchmarkWrite(b *testing.B) {
	run := synthRun(20000)
	for _, format := range Formats {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				w, _ := NewWriter(io.Discard, format)
				for i := range run {
					_ = w.Write(&run[i])
				}
				w.Close()
			}
		})
	}
	b.Run("jsonl-encoding-json", func(b *testing.B) {
		for b.Loop() {
			bw := bufio.NewWriterSize(io.Discard, 64<<10)
			e := json.NewEncoder(bw)
			e.SetEscapeHTML(false)
			for i := range run {
				_ = e.Encode(viewJSON(&run[i]))
			}
			bw.Flush()
		}
	})
}

func BenchmarkCoalesce(b *testing.B) {
	run := synthRun(20000)
	for b.Loop() {
		_ = Coalesce(run)
	}
}

func BenchmarkBuildStats(b *testing.B) {
	run := synthRun(20000)
	for b.Loop() {
		_ = BuildStats(run)
	}
}

func BenchmarkDiff(b *testing.B) {
	run := synthRun(20000)
	for b.Loop() {
		if _, err := Diff(run, run, DiffOptions{Threshold: 0.2}); err != nil {
			b.Fatal(err)
		}
	}
}
