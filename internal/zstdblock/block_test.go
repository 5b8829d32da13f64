package zstdblock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

// decodeFrames decodes a stream of zstd frames with Decoder, as a caller that follows the
// frames does: headers parsed by zstdframe, raw blocks added to the history by Extend.
func decodeFrames(src []byte) ([]byte, error) {
	var d Decoder
	var out []byte
	for len(src) > 0 {
		h, ok := zstdframe.ParseHeader(src)
		if !ok || h.Dictionary() || h.Window > 1<<22 || h.Window < 0 {
			return out, errors.New("bad frame header")
		}
		src = src[h.Len:]
		window := int(max(h.Window, 1))
		d.Reset(window)
		maxBlock := min(window, MaxBlock)
		for {
			if len(src) < 3 {
				return out, errors.New("short block header")
			}
			b := zstdframe.ParseBlock([3]byte(src[:3]))
			src = src[3:]
			if b.Body() > len(src) {
				return out, errors.New("short block")
			}
			body := src[:b.Body()]
			src = src[b.Body():]
			switch b.Type {
			case zstdframe.Raw:
				if b.Size > maxBlock {
					return out, errors.New("raw block too large")
				}
				out = append(out, body...)
				tail := body[max(0, len(body)-window):]
				copy(d.Extend(len(tail)), tail)
			case zstdframe.RLE:
				if b.Size > maxBlock {
					return out, errors.New("rle block too large")
				}
				out = append(out, d.RLE(body[0], b.Size)...)
			case zstdframe.Compressed:
				if b.Size > maxBlock {
					return out, errors.New("compressed block too large")
				}
				c, err := d.Compressed(body, maxBlock)
				if err != nil {
					return out, err
				}
				out = append(out, c...)
			default:
				return out, errors.New("reserved block type")
			}
			if b.Last {
				break
			}
		}
		if h.Checksum() {
			if len(src) < 4 {
				return out, errors.New("short checksum")
			}
			src = src[4:]
		}
	}
	return out, nil
}

// corpus is content of the shapes the decoder meets: metadata-like blocks, text, runs, random.
func corpus(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	for b.Len() < n {
		switch rng.Intn(6) {
		case 0: // random bytes
			p := make([]byte, rng.Intn(5000)+1)
			rng.Read(p)
			b.Write(p)
		case 1: // a run
			b.Write(bytes.Repeat([]byte{byte(rng.Intn(256))}, rng.Intn(10000)+1))
		case 2: // text
			for i := rng.Intn(200); i >= 0; i-- {
				fmt.Fprintf(&b, "file%d/dir%d name=%x ", rng.Intn(100), rng.Intn(30), rng.Intn(1<<20))
			}
		case 3: // an earlier piece again
			if b.Len() > 0 {
				off := rng.Intn(b.Len())
				l := min(rng.Intn(20000)+1, b.Len()-off)
				b.Write(bytes.Clone(b.Bytes()[off : off+l]))
			}
		case 4: // little-endian records, as inode tables and extents hold
			for i := rng.Intn(300); i >= 0; i-- {
				var r [16]byte
				binary.LittleEndian.PutUint32(r[0:], uint32(rng.Intn(1<<16)))
				binary.LittleEndian.PutUint32(r[4:], uint32(i))
				binary.LittleEndian.PutUint64(r[8:], uint64(rng.Int63n(1<<40)))
				b.Write(r[:])
			}
		case 5: // skewed bytes: Huffman literals
			for i := rng.Intn(8000); i >= 0; i-- {
				b.WriteByte(byte(rng.ExpFloat64() * 8))
			}
		}
	}
	return b.Bytes()[:n]
}

func TestDecoderAgainstKlauspost(t *testing.T) {
	levels := []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression}
	for seed := int64(1); seed <= 6; seed++ {
		data := corpus(seed, 1<<20+int(seed)*7777)
		for _, lvl := range levels {
			for _, win := range []int{1 << 10, 64 << 10, 1 << 20} {
				enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithWindowSize(win), zstd.WithEncoderCRC(true))
				if err != nil {
					t.Fatal(err)
				}
				got, err := decodeFrames(enc.EncodeAll(data, nil))
				if err != nil || !bytes.Equal(data, got) {
					t.Fatalf("seed %d level %v window %d: %v; content the same: %v", seed, lvl, win, err, bytes.Equal(data, got))
				}
			}
		}
	}
}

// TestDecoderAgainstZstdCLI decodes what the reference encoder writes, at the levels users
// compress logs with (its strategies use every literal and sequence mode klauspost's do not).
func TestDecoderAgainstZstdCLI(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("zstd not installed")
	}
	dir := t.TempDir()
	for seed := int64(1); seed <= 3; seed++ {
		data := corpus(seed+100, 3<<20)
		in := dir + "/in"
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, lvl := range []string{"-1", "-3", "-9", "-19", "--fast=5", "--ultra -22"} {
			args := append([]string{"-q", "-f", "-c"}, strings.Fields(lvl)...)
			cmd := exec.Command("zstd", append(args, in)...)
			frame, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeFrames(frame)
			if err != nil || !bytes.Equal(data, got) {
				t.Fatalf("seed %d zstd %s: %v; content the same: %v", seed, lvl, err, bytes.Equal(data, got))
			}
		}
	}
}

// FuzzDecoder feeds arbitrary frames: the decoder must not panic, and where it decodes a frame
// klauspost decodes too, the content must be the same.
func FuzzDecoder(f *testing.F) {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(1<<10))
	for seed := int64(0); seed < 4; seed++ {
		f.Add(enc.EncodeAll(corpus(seed, 3000), nil))
	}
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.IgnoreChecksum(true), zstd.WithDecoderMaxMemory(1<<24))
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := decodeFrames(frame)
		if err != nil {
			return
		}
		want, werr := dec.DecodeAll(frame, nil)
		if werr != nil {
			return // the caller hands such a frame to klauspost, whose error then stands
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("content differs from klauspost's: %d bytes against %d", len(got), len(want))
		}
	})
}

// BenchmarkDecodeFile decodes $ZSTDBLOCK_BENCH_FILE (a zstd file) held in memory, this
// package's way (raw blocks lent, only the last window of a raw run added to the history)
// against klauspost's streaming decoder writing to io.Discard.
func BenchmarkDecodeFile(b *testing.B) {
	name := os.Getenv("ZSTDBLOCK_BENCH_FILE")
	if name == "" {
		b.Skip("ZSTDBLOCK_BENCH_FILE not set")
	}
	src, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("zstdblock", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for i := 0; i < b.N; i++ {
			if _, err := decodeCount(src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("klauspost", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.IgnoreChecksum(true), zstd.WithDecoderMaxWindow(128<<20))
		for i := 0; i < b.N; i++ {
			if err := dec.Reset(bytes.NewReader(src)); err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, dec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// decodeCount decodes like decodeFrames without keeping the content: raw blocks' content is
// added to the history only as far as a following compressed block may reach.
func decodeCount(src []byte) (int64, error) {
	var d Decoder
	var n int64
	for len(src) > 0 {
		h, _ := zstdframe.ParseHeader(src)
		src = src[h.Len:]
		window := int(h.Window)
		d.Reset(window)
		var pending [][]byte
		pendingN := 0
		for {
			b := zstdframe.ParseBlock([3]byte(src[:3]))
			body := src[3 : 3+b.Body()]
			src = src[3+b.Body():]
			switch b.Type {
			case zstdframe.Raw:
				pending = append(pending, body)
				pendingN += len(body)
				for pendingN-len(pending[0]) >= window {
					pendingN -= len(pending[0])
					pending = pending[1:]
				}
				n += int64(len(body))
			default:
				for _, p := range pending {
					p = p[max(0, len(p)-window):]
					copy(d.Extend(len(p)), p)
				}
				pending, pendingN = pending[:0], 0
				if b.Type == zstdframe.RLE {
					n += int64(len(d.RLE(body[0], b.Size)))
					break
				}
				c, err := d.Compressed(body, MaxBlock)
				if err != nil {
					return n, err
				}
				n += int64(len(c))
			}
			if b.Last {
				break
			}
		}
		if h.Checksum() {
			src = src[4:]
		}
	}
	return n, nil
}

func TestRawLiterals(t *testing.T) {
	for _, c := range []struct {
		p    []byte
		want int
	}{
		{[]byte{31 << 3}, 32},           // 1-byte header, 31 literals
		{[]byte{4 | 8<<4, 62}, 1002},    // 2-byte header, 1000
		{[]byte{12, 106, 24}, 100003},   // 3-byte header, 100000
		{[]byte{12, 106}, 0},            // too short to tell
		{[]byte{2 | 31<<3, 0, 0, 0}, 0}, // Huffman-coded literals
		{[]byte{1 | 31<<3, 0xAA}, 0},    // RLE literals
		{nil, 0},
	} {
		if got := RawLiterals(c.p); got != c.want {
			t.Errorf("RawLiterals(% x) = %d, want %d", c.p, got, c.want)
		}
	}
	// A block the Go encoder writes for text followed by random bytes: most of it raw literals.
	rng := rand.New(rand.NewSource(1))
	content := []byte(strings.Repeat("inode 12 block 34\n", 900))
	random := make([]byte, 200<<10)
	rng.Read(random)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	frame := enc.EncodeAll(append(content, random...), nil)
	h, _ := zstdframe.ParseHeader(frame)
	b := zstdframe.ParseBlock([3]byte(frame[h.Len : h.Len+3]))
	if b.Type != zstdframe.Compressed || RawLiterals(frame[h.Len+3:]) < 64<<10 {
		t.Fatalf("first block type %d size %d, raw literals %d: want a compressed block of mostly raw literals", b.Type, b.Size, RawLiterals(frame[h.Len+3:]))
	}
}
